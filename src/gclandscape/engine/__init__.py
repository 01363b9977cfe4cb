"""Pure torch/numpy dynamics, no AnnData: vector fields, batched SDE integration, GRN fits.

Every vector field has the signature ``field(t, x, args) -> dx/dt`` on ``(n_cells, n_genes)``
tensors, and :func:`integrate` runs any of them for thousands of cells at once
(Euler–Maruyama, deterministic with a seed, with clamps for knockouts and overexpression).
The connectionist GRN ODE (:class:`GRNModel`) is fitted to tensors by :func:`fit_grn_model`
(``fit`` in :mod:`._grn_fit`; named here so it cannot be taken for ``gcl.landscape.fit_grn``,
which wraps it for AnnData).

Examples
--------
>>> import numpy as np
>>> from gclandscape.engine import SigmoidField, integrate
>>> f = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)
>>> sol = integrate(f, np.array([[0.9, 0.1]]), t_max=20.0, dt=0.05)
>>> bool(sol.x[0, 0] > 0.9 and sol.x[0, 1] < 0.1)
True
"""

from __future__ import annotations

from ._device import resolve_device
from ._fields import BooleanHillField, ClampedField, LinearField, SigmoidField
from ._fixed_points import (
    FixedPoints,
    classify_fixed_points,
    find_fixed_points,
    fixed_point_starts,
    jacobian,
)
from ._grn import GRNModel, edge_scores
from ._grn_bootstrap import bootstrap_confidence
from ._grn_decode import DecodeResult, DecodeTargets, decode_fit
from ._grn_fit import FitResult, LossOutput, adaptive_penalty_weights, default_l1
from ._grn_fit import fit as fit_grn_model
from ._integrate import Solution, integrate
from ._paths import TransitionPath, minimum_action_path, saddle_connections, transition_paths

__all__ = [
    "BooleanHillField",
    "ClampedField",
    "DecodeResult",
    "DecodeTargets",
    "FitResult",
    "FixedPoints",
    "GRNModel",
    "LinearField",
    "LossOutput",
    "SigmoidField",
    "Solution",
    "TransitionPath",
    "adaptive_penalty_weights",
    "bootstrap_confidence",
    "classify_fixed_points",
    "decode_fit",
    "default_l1",
    "edge_scores",
    "find_fixed_points",
    "fit_grn_model",
    "fixed_point_starts",
    "integrate",
    "jacobian",
    "minimum_action_path",
    "resolve_device",
    "saddle_connections",
    "transition_paths",
]
