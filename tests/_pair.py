"""The non-identifiable genome pair shared by the ensemble tests of ``gcl.sim`` and ``gcl.pl``.

A and F are always equal in the wild type, so the data cannot tell whether A holds the switch
against B and F follows it (``G1``) or the other way round (``G2``). Both have the same
attractors (A = F = 1, B = 0 and A = F = 0, B = 1); knocking out F loses A-high in ``G2`` only,
knocking out A loses it in ``G1`` only.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

import gclandscape as gcl

GENES = ["A", "B", "F"]


def switch_genome(holder: str, follower: str) -> gcl.landscape.Genome:
    """``holder`` and B repress each other; ``follower`` copies ``holder``."""
    i = {g: k for k, g in enumerate(GENES)}
    W = np.zeros((3, 3))
    W[i[holder], i["B"]] = W[i["B"], i[holder]] = -10.0
    W[i[follower], i[holder]] = 10.0
    b = np.full(3, 5.0)
    b[i[follower]] = -5.0
    return gcl.landscape.Genome(GENES, W, b=b)


G1 = switch_genome("A", "F")
G2 = switch_genome("F", "A")


def pair_adata(n_cells: int) -> ad.AnnData:
    """``n_cells`` wild-type cells (A = F) with the ensemble ``[G1, G2]`` and its landscape."""
    x = np.random.default_rng(0).uniform(0, 1, (n_cells, 2))
    adata = ad.AnnData(np.column_stack([x[:, 0], x[:, 1], x[:, 0]]))
    adata.var_names = GENES
    adata.obs["celltype"] = pd.Categorical(np.where(x[:, 0] > x[:, 1], "A-high", "B-high"))
    gcl.landscape.Genome.ensemble([G1, G2]).write_to_adata(adata)
    gcl.landscape.fit_landscape(adata, groupby="celltype")
    return adata
