"""Input checks shared by the fixed-point and path searches: states, and a float64 field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._errors import GclError
from .._utils import logger

#: The engine's vector-field signature: ``field(t, x, args) -> dx/dt`` on ``(n, G)`` tensors.
VectorField = Callable[[Any, torch.Tensor, Any], torch.Tensor]


def _as_states(x: Any, name: str, n_genes: int | None = None) -> np.ndarray:
    """A finite float64 ``(n, G)`` array (a single ``(G,)`` state becomes ``(1, G)``)."""
    arr = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise GclError(f"{name} must be numeric; got dtype {arr.dtype}.")
    arr = np.array(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise GclError(
            f"{name} must be a non-empty (n_states, n_genes) array; got shape {arr.shape}."
        )
    if n_genes is not None and arr.shape[1] != n_genes:
        raise GclError(f"{name} has {arr.shape[1]} genes (columns) but the field has {n_genes}.")
    if not np.isfinite(arr).all():
        raise GclError(f"{name} contains NaN or infinite values; pass finite states.")
    return arr


def _attractors_and_saddles(attractors: Any, saddles: Any) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(n, G)`` attractors and ``(m, G)`` saddles with the same genes (``None`` or no
    saddles: an empty ``(0, G)`` array)."""
    att = _as_states(attractors, "attractors")
    if saddles is None or len(saddles) == 0:
        return att, np.zeros((0, att.shape[1]))
    return att, _as_states(saddles, "saddles", att.shape[1])


def _prepare_field(
    field: Any, n_genes: int, args: Any, device: torch.device | None = None
) -> VectorField:
    """Return a float64 version of ``field`` (on ``device``, default CPU) after checking that
    it maps (n, G) to (n, G)."""
    device = torch.device("cpu") if device is None else device
    if not callable(field):
        raise GclError(
            f"field must be callable as field(t, x, args) -> dx/dt; got {type(field).__name__}."
        )
    probe = torch.full((2, n_genes), 0.5, dtype=torch.float64, device=device)
    fn = field
    if isinstance(field, torch.nn.Module):
        # a float64 copy without trainable parameters: the analysis never touches the original
        fn = copy.deepcopy(field).to(device=device, dtype=torch.float64).requires_grad_(False)
    try:
        with torch.no_grad():
            out = fn(0.0, probe, args)
    except RuntimeError as err:
        raise GclError(
            f"the vector field cannot be evaluated on float64 states of {n_genes} genes "
            f"({err}); the field must accept an (n, {n_genes}) float64 tensor."
        ) from err
    if not torch.is_tensor(out) or tuple(out.shape) != (2, n_genes):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise GclError(
            f"the vector field returned {shape} for a (2, {n_genes}) state; it must return "
            f"dx/dt with the same (n_cells, n_genes) shape as x."
        )
    if out.dtype != torch.float64:
        logger.warning(
            "the vector field computes in %s; fixed points are limited to its precision.", out.dtype
        )
        inner = fn

        def fn(t: Any, x: torch.Tensor, a: Any) -> torch.Tensor:
            return inner(t, x, a).to(torch.float64)

    return fn
