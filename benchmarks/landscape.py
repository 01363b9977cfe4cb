"""Benchmark of ``gcl.landscape.fit_landscape``.

1. The genome fitted by ``fit_grn`` on the default myeloid dataset: each attractor's label and
   basin purity (the goal: all four fates Ery, Mk, Gran, Mono with purity >= 0.7).
2. Speed: 100 genes × 10,000 cells (a hand-built sigmoid genome of five mutually repressing
   20-gene modules, cells developed from random states), goal < 60 s.
3. Paul15 (when ``../shared/data`` exists): attractors of a genome fitted on 50 highly variable
   genes rooted in "Multipotent progenitors", and how they map to the terminal cell types.

Run: ``.venv/bin/python benchmarks/landscape.py [--skip-myeloid] [--skip-paul15]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

import gclandscape as gcl

GOAL_S = 60.0
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 12)


def _show(land, adata, groupby: str) -> None:
    """Attractors with their basin label and purity, the cell type whose mean state is nearest
    to each attractor (Euclidean, model coordinates) and its three highest genes; paths; and
    the cell type × basin table."""
    from gclandscape.landscape._landscape import _model_states

    genome = gcl.landscape.Genome.from_adata(adata)
    x, _ = _model_states(adata, genome, "gcl_genome")
    means = pd.DataFrame(x, columns=genome.genes).groupby(adata.obs[groupby].to_numpy()).mean()
    table = land.attractors[["label", "basin_fraction", "n_cells", "purity", "energy"]].copy()
    states = land.attractors[genome.genes].to_numpy()
    dist = np.linalg.norm(states[:, None, :] - means.to_numpy()[None], axis=2)
    table["nearest_type"] = means.index[dist.argmin(1)]
    table["top_genes"] = [",".join(np.asarray(genome.genes)[np.argsort(-s)[:3]]) for s in states]
    print(table.round(3).to_string())
    print(land.paths[["from", "to", "barrier_forward", "barrier_backward"]].round(3).to_string())
    print(pd.crosstab(adata.obs[groupby], adata.obs["gcl_landscape_basin"]).to_string())


def myeloid() -> None:
    adata = gcl.datasets.myeloid()
    gcl.pp.recipe(adata, n_top_genes=500)
    t = time.perf_counter()
    gcl.landscape.fit_grn(adata, time_key="sim_time", n_bootstrap=0)
    t_grn = time.perf_counter() - t
    t = time.perf_counter()
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    t_land = time.perf_counter() - t
    print(f"\n== myeloid: fit_grn {t_grn:.1f} s, fit_landscape {t_land:.1f} s")
    _show(land, adata, "celltype")
    fates = ["Ery", "Mk", "Gran", "Mono"]
    att = land.attractors.set_index("label")
    ok = [f for f in fates if f in att.index and att.loc[f, "purity"] >= 0.7]
    print(f"fates as attractors with purity >= 0.7: {len(ok)}/4 ({', '.join(ok)})")


def synthetic(n_genes: int = 100, n_cells: int = 10_000, n_modules: int = 5, seed: int = 0):
    """Mutually repressing modules of self-activating genes: one attractor per module (that
    module on, the others off) plus the all-off state; cells are primed towards one module
    and caught at random points of their development."""
    gen = np.random.default_rng(seed)
    module = np.repeat(np.arange(n_modules), n_genes // n_modules)
    same = module[:, None] == module[None, :]
    W = np.where(same, 14.0, -8.0) / (n_genes // n_modules) * gen.uniform(0.7, 1.3, (n_genes,) * 2)
    np.fill_diagonal(W, 0.0)
    genes = [f"g{i}" for i in range(n_genes)]
    genome = gcl.landscape.Genome(genes, W, b=-3.0, noise=0.05)
    x0 = gen.uniform(0.0, 0.4, (n_cells, n_genes))
    primed = gen.integers(0, n_modules, n_cells)
    x0[module[None, :] == primed[:, None]] += 0.3
    t_cell = gen.uniform(0.5, 15.0, n_cells)
    x = np.empty_like(x0)
    bins = np.digitize(t_cell, np.linspace(0.5, 15.0, 10))
    for k in np.unique(bins):  # cells caught at different times of their development
        sel = bins == k
        x[sel] = genome.develop(x0[sel], t_max=float(t_cell[sel].mean()), dt=0.1, seed=seed)
    end = genome.develop(x, t_max=30.0, dt=0.1, noise=0.0)
    level = np.stack([end[:, module == k].mean(1) for k in range(n_modules)], axis=1)
    fate = np.where(level.max(1) > 0.5, np.char.add("M", level.argmax(1).astype(str)), "off")
    adata = ad.AnnData(x.astype(np.float32))
    adata.var_names = genes
    adata.obs["module"] = pd.Categorical(fate)
    genome.write_to_adata(adata)
    return adata


def speed() -> float:
    adata = synthetic()
    t = time.perf_counter()
    land = gcl.landscape.fit_landscape(adata, groupby="module")
    sec = time.perf_counter() - t
    print(f"\n== speed: fit_landscape on {adata.n_vars} genes × {adata.n_obs} cells: {sec:.1f} s")
    print(
        f"   goal < {GOAL_S:.0f} s: ratio {sec / GOAL_S:.2f} ({'met' if sec < GOAL_S else 'MISSED'})"
    )
    print(land)
    print(land.attractors[["label", "basin_fraction", "purity"]].round(3).to_string())
    return sec


def paul15() -> None:
    path = SHARED / "paul15" / "paul15_240genes.h5ad"
    if not path.exists():
        print(f"\n== paul15: {path} not found; skipped")
        return
    adata = gcl.io.read(path)
    gcl.pp.recipe(adata)
    hv = adata.var.get("highly_variable_rank", None)
    if hv is not None and hv.notna().sum() >= 50:
        genes = list(hv.sort_values().index[:50])
    else:
        genes = 50
    t = time.perf_counter()
    gcl.landscape.fit_grn(
        adata, root="Multipotent progenitors", groupby="celltype", genes=genes, n_bootstrap=0
    )
    t_grn = time.perf_counter() - t
    t = time.perf_counter()
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    print(f"\n== paul15: fit_grn {t_grn:.1f} s, fit_landscape {time.perf_counter() - t:.1f} s")
    _show(land, adata, "celltype")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-myeloid", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-paul15", action="store_true")
    args = parser.parse_args()
    if not args.skip_myeloid:
        myeloid()
    if not args.skip_speed:
        speed()
    if not args.skip_paul15:
        paul15()


if __name__ == "__main__":
    main()
