"""The vector field of a genome whose production is scaled per gene (knockout, knockdown).

Clamped genes (overexpression) are held still by :class:`gclandscape.engine.ClampedField`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def edited_field(base: Any, gamma: np.ndarray, factor: np.ndarray):
    """``f'(x) = factor * (f(x) + gamma x) - gamma x``: production scaled per gene.

    A torch Module (built on first use, so this module imports without torch) so that
    ``.to(dtype)`` converts the base model too, as the fixed-point search does.
    """
    import torch

    class EditedField(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base if isinstance(base, torch.nn.Module) else None
            self._plain = None if self.base is not None else base
            self.flops_per_value = getattr(base, "flops_per_value", 0)  # integrate's threads
            self.register_buffer("gamma", torch.as_tensor(gamma, dtype=torch.float32))
            self.register_buffer("factor", torch.as_tensor(factor, dtype=torch.float32))

        def forward(self, t: float, x: torch.Tensor, args: Any = None) -> torch.Tensor:
            f = (self.base if self.base is not None else self._plain)(t, x, args)
            g, k = self.gamma.to(x.dtype), self.factor.to(x.dtype)
            return k * (f + g * x) - g * x

    return EditedField()
