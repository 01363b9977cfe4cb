"""The connection cost's scale, its adaptive weights and its proximal step.

The group lasso ``l1 * sum_ij w_ij ||V[i, :, j]||`` is applied by a proximal step after every
Adam step, *in Adam's metric* (see :mod:`gclandscape.engine._grn_fit`), which sets whole
edge groups exactly to zero. ``l1`` defaults to a fraction of ``lambda_max``, the smallest
value that empties the network; the per-edge weights ``w_ij`` of an adaptive group lasso come
from partial correlations of the expression.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._errors import GclError
from ._grn import GRNModel, group_norm
from ._grn_objective import _CHUNK, _scaled_residual

#: Default ``l1`` is this fraction of the data-derived ``lambda_max`` (see :func:`default_l1`).
L1_FRACTION = 0.01


@torch.no_grad()
def _prox(
    model: GRNModel,
    optimizer: torch.optim.Optimizer,
    l1: float,
    pen_w: torch.Tensor,
    a_max: float,
) -> None:
    """Proximal step for the group lasso (in Adam's group metric) plus projections."""
    v = model.V
    if bool(model.sign.any()):
        sign = model.sign[:, None, :]
        v.masked_fill_(sign * v < 0, 0.0)
    shrink = model.mask.to(v.dtype)
    if l1 > 0:
        state = optimizer.state.get(v, {})
        group = optimizer.param_groups[0]
        lr = float(group["lr"])
        if "exp_avg_sq" in state:
            beta2 = group["betas"][1]
            step = float(state["step"])
            v_hat = state["exp_avg_sq"] / (1 - beta2**step)
            precond = v_hat.mean(dim=1).sqrt() + group["eps"]
        else:  # plain SGD metric
            precond = torch.ones_like(pen_w)
        thresh = lr * l1 * pen_w / precond
        norm = group_norm(v)
        shrink = shrink * torch.clamp(1 - thresh / norm.clamp_min(1e-30), min=0.0)
    v.mul_(shrink[:, None, :])
    model.a.clamp_(0.0, a_max)


def _lambda_max(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
    pen_w: torch.Tensor,
) -> float:
    """Smallest ``l1`` at which the empty network (all groups zero) is stationary."""
    empty = GRNModel.from_dict(model.to_dict()).to(x.device)
    with torch.no_grad():
        empty.V.zero_()
    grad = torch.zeros_like(empty.V)
    for start in range(0, x.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        r = _scaled_residual(empty, x[sl], y[sl], y_scale)
        smooth = (w[sl, None] * r.square()).sum() / w.sum()
        grad += torch.autograd.grad(smooth, empty.V)[0]
    gnorm = group_norm(grad)
    allowed = (pen_w > 0) & model.mask
    if not bool(allowed.any()):
        return 0.0
    return float((gnorm[allowed] / pen_w[allowed]).max())


def default_l1(lambda_max: float, n_genes: int) -> float:
    """The default connection cost: ``L1_FRACTION * lambda_max``.

    ``lambda_max`` is the norm of the largest edge-group gradient of the loss at the empty
    network, so the default keeps the rule scale-free (invariant to the units of ``x`` and
    ``dx/dt``).

    Examples
    --------
    >>> default_l1(2.0, 10)
    0.02
    """
    return L1_FRACTION * float(lambda_max)


#: Floor added to the scaled partial correlations in :func:`adaptive_penalty_weights` ...
ADAPTIVE_FLOOR = 0.05
#: ... and the power of the pilot the weight divides by.
ADAPTIVE_EXPONENT = 0.75


def adaptive_penalty_weights(
    z: Any, *, floor: float = ADAPTIVE_FLOOR, exponent: float = ADAPTIVE_EXPONENT
) -> np.ndarray:
    """Per-edge connection-cost weights from the partial correlations of ``z``.

    An adaptive group lasso (Zou 2006; Wang & Leng 2008) takes a pilot estimate of every
    edge and divides its penalty by it, so edges the pilot supports are cheap and the rest
    dear; the fitted network is still the one the dynamics need. The pilot here is the
    absolute partial correlation ``|ρ_ij|`` of genes ``i`` and ``j`` in ``z`` (standardised;
    precision matrix of the Ledoit–Wolf covariance): at a steady state, and along
    trajectories where targets follow their regulators, a direct regulator stays correlated
    with its target given all other genes. The weight is
    ``(|ρ_ij| / max|ρ| + floor) ** -exponent``, divided by its median off the diagonal (so a
    typical edge keeps the cost ``l1``); self-loops get weight 1. The floor and exponent are
    the best measured on the GRN benchmark (``benchmarks/README.md``, "GRN recovery").

    Parameters
    ----------
    z
        ``(n_cells, n_genes)`` expression, best log-scaled (``log1p`` of normalised counts).
    floor
        Added to the scaled ``|ρ|``; caps the largest weight at about ``floor ** -exponent``
        times the smallest.
    exponent
        Power of the pilot (1 is the classical adaptive lasso; smaller trusts it less).

    Returns
    -------
    ``(n_genes, n_genes)`` target × source array of positive weights (symmetric).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=2000)
    >>> b = a + rng.normal(size=2000)  # a -> b; c is independent
    >>> w = adaptive_penalty_weights(np.c_[a, b, rng.normal(size=2000)])
    >>> bool(w[1, 0] < w[2, 0])
    True
    """
    from sklearn.covariance import LedoitWolf

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] < 3:
        raise GclError(f"z must be (n_cells >= 3, n_genes >= 2); got shape {z.shape}.")
    if not np.isfinite(z).all():
        raise GclError("z contains NaN or infinite values.")
    sd = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    precision = np.linalg.pinv(LedoitWolf().fit(z).covariance_)
    d = np.sqrt(np.clip(np.diag(precision), 1e-12, None))
    rho = np.abs(precision / np.outer(d, d))
    np.fill_diagonal(rho, 0.0)
    top = rho.max()
    w = (rho / top + floor) ** -float(exponent) if top > 0 else np.ones_like(rho)
    off = ~np.eye(len(w), dtype=bool)
    w /= np.median(w[off])
    np.fill_diagonal(w, 1.0)
    return w
