"""The GRN fit's objective: the scaled drift residual, the connection cost and their parts.

The smooth loss is a mean squared error with every gene's residual divided by the standard
deviation of its target (so genes with large drift do not dominate); the connection cost is
the group lasso ``l1 * sum_ij w_ij ||V[i, :, j]||`` divided by the number of genes. Losses are
:class:`LossOutput` dataclasses of named parts (scvi-tools style).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._grn import GRNModel, group_norm

#: Cells per chunk when a loss or gradient is evaluated over all cells (bounds the memory).
_CHUNK = 8192


@dataclass
class LossOutput:
    """Named parts of the GRN fitting objective (scvi-tools ``LossOutput`` style).

    Attributes
    ----------
    mse
        Mean over genes of the per-gene scaled mean squared error (≈ 1 − R² per gene, averaged).
    penalty
        Connection cost ``l1 * sum_ij w_ij ||V[i, :, j]||`` divided by the number of genes (same
        per-gene units as ``mse``).
    total
        ``mse + penalty``: the objective that is minimised and monitored for early stopping.
    """

    mse: Any
    penalty: Any
    total: Any = None

    def __post_init__(self) -> None:
        if self.total is None:
            self.total = self.mse + self.penalty

    def to_floats(self) -> LossOutput:
        """The same losses as Python floats."""
        return LossOutput(*(float(v) for v in (self.mse, self.penalty, self.total)))

    def to_dict(self) -> dict[str, float]:
        """``{"mse": ..., "penalty": ..., "total": ...}`` as floats."""
        f = self.to_floats()
        return {"mse": f.mse, "penalty": f.penalty, "total": f.total}


def _scaled_residual(
    model: GRNModel, x: torch.Tensor, y: torch.Tensor, y_scale: torch.Tensor
) -> torch.Tensor:
    return (model(None, x) - y) / y_scale


@torch.no_grad()
def _penalty(model: GRNModel, l1: float, pen_w: torch.Tensor) -> torch.Tensor:
    """Connection cost per gene: ``l1 * sum_ij w_ij ||V[i, :, j]|| / G``."""
    return l1 * (pen_w * group_norm(model.V)).sum() / model.n_genes


def _smooth_loss(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth loss to differentiate (sum over genes) and the reported mse (mean over genes)."""
    r = _scaled_residual(model, x, y, y_scale)
    per_gene = (w[:, None] * r.square()).sum(0) / w.sum()
    return per_gene.sum(), per_gene.mean().detach()


@torch.no_grad()
def _per_gene_mse(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
) -> torch.Tensor:
    """Weighted per-gene mean squared scaled residual, evaluated in chunks of cells."""
    sse = torch.zeros(model.n_genes, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        r = _scaled_residual(model, x[sl], y[sl], y_scale)
        sse += (w[sl, None] * r.square()).sum(0)
    return sse / w.sum()


def _loss(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
    l1: float,
    pen_w: torch.Tensor,
) -> LossOutput:
    """Reported objective parts on the given cells."""
    mse = _per_gene_mse(model, x, y, w, y_scale).mean()
    return LossOutput(mse=mse, penalty=_penalty(model, l1, pen_w))
