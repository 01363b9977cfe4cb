"""Batched Jacobians of row-wise vector fields: closed forms where known, else autograd."""

from __future__ import annotations

from typing import Any

import torch

from .._errors import GclError
from ._field_checks import VectorField, _as_states

__all__ = ["jacobian"]


def _jac(fn: VectorField, x: torch.Tensor, args: Any, t: float = 0.0) -> torch.Tensor:
    """Batched Jacobian ``(n, G, G)`` of a row-wise field (each row depends on its own x only).

    A closed form is used for :class:`~gclandscape.engine.SigmoidField` and for modules with a
    ``jacobian(x)`` method (``GRNModel``) when ``args`` is None; otherwise one vectorised
    reverse-mode pass (``torch.func.jacrev`` of the sum over rows).
    """
    x = x.detach()
    fast = _closed_form_jacobian(fn, x, args)
    if fast is not None:
        return fast
    try:
        jac = torch.func.jacrev(lambda z: fn(t, z, args).sum(0))(x)  # (G_out, n, G_in)
        return jac.permute(1, 0, 2).contiguous()
    except (RuntimeError, NotImplementedError):  # ops without a vmap rule: one pass per output
        xr = x.clone().requires_grad_(True)
        y = fn(t, xr, args)
        rows = [
            torch.autograd.grad(y[:, i].sum(), xr, retain_graph=i < y.shape[1] - 1)[0]
            for i in range(y.shape[1])
        ]
        return torch.stack(rows, dim=1)


def _closed_form_jacobian(fn: Any, x: torch.Tensor, args: Any) -> torch.Tensor | None:
    from ._fields import SigmoidField

    if isinstance(fn, SigmoidField):
        p = fn._override(fn.params(x), args, x)
        s = torch.sigmoid(x @ p["W"].T + p["b"])
        gamma = torch.broadcast_to(p["gamma"], x.shape)
        return (p["alpha"] * s * (1.0 - s))[:, :, None] * p["W"] - torch.diag_embed(gamma)
    if args is None and isinstance(fn, torch.nn.Module) and callable(getattr(fn, "jacobian", None)):
        with torch.no_grad():
            jac = fn.jacobian(x)
        if torch.is_tensor(jac) and jac.shape == (x.shape[0], x.shape[1], x.shape[1]):
            return jac.to(x.dtype)
    return None


def _jac_chunked(fn: VectorField, x: torch.Tensor, args: Any, chunk: int = 1024) -> torch.Tensor:
    return (
        torch.cat([_jac(fn, c, args) for c in x.split(chunk)])
        if len(x)
        else x.new_zeros((0, x.shape[1], x.shape[1]))
    )


def jacobian(field: VectorField, x: Any, args: Any = None, *, t: float = 0.0) -> torch.Tensor:
    """Batched Jacobian of a vector field by torch autograd.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt`` on ``(n, G)`` tensors, row-wise (each
        cell's derivative depends on that cell's state only, as for every engine field).
    x
        States, ``(n, G)`` or ``(G,)``; a tensor keeps its dtype (use float32 for a float32
        module), an array is converted to float64.
    args
        Passed unchanged to ``field``; overrides must not be per-cell (they have to
        broadcast over any number of rows).
    t
        Time passed to the field.

    Returns
    -------
    ``(n, G, G)`` tensor ``J[k, i, j] = d f_i / d x_j`` at ``x[k]`` (target × source, like
    ``W``). One vectorised reverse pass per chunk of 1024 states (``torch.func.jacrev``), no
    Python loop over cells.

    Examples
    --------
    >>> import numpy as np
    >>> from gclandscape.engine import LinearField
    >>> from gclandscape.engine._jacobian import jacobian
    >>> jacobian(LinearField([[-1.0, 2.0], [0.0, -3.0]]), np.zeros((4, 2)))[0].tolist()
    [[-1.0, 2.0], [0.0, -3.0]]
    """
    if not callable(field):
        raise GclError(f"field must be callable as field(t, x, args); got {type(field).__name__}.")
    if torch.is_tensor(x):
        xt = x.detach()
        if not xt.is_floating_point():
            xt = xt.to(torch.float64)
        xt = xt[None, :] if xt.ndim == 1 else xt
        if xt.ndim != 2 or not bool(torch.isfinite(xt).all()):
            raise GclError(f"x must be a finite (n, G) tensor; got shape {tuple(x.shape)}.")
    else:
        xt = torch.from_numpy(_as_states(x, "x"))
    return _jac_chunked(field, xt, args)
