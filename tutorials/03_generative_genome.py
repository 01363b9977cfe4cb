# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The genome as a generative model
#
# A generative model has latent variables and a decoder that turns them into data. Read the
# genome this way:
#
# | generative model | biology | gclandscape |
# |---|---|---|
# | latent variables | the regulatory weights of the genome, shared by every cell | `genome.W` |
# | decoder | development: noisy dynamics that roll each cell into an attractor | `genome.develop`, `gcl.sim.perturb` |
# | output | the cell types and their proportions | attractors, fate fractions |
# | encoder | evolution, which set the weights | (not modelled) |
#
# Mutation edits the latent variables; re-decoding shows what the organism would look like.
# This notebook asks the questions evolutionary biology asks of a genome, on a genome
# inferred from single-cell data:
#
# - **Robustness**: what fraction of random mutations leaves every cell type in place?
# - **Evolvability**: what fraction produces a *new* stable cell state?
# - **Pleiotropy**: how many cell types does one regulatory edge affect?
# - **Epistasis**: do two knockouts add up, or does one mask or amplify the other?
#
# **Run time.** A few minutes on a CPU with the real settings (1000 mutants; measured:
# 190 s on one core); `GCL_TUTORIAL_FAST=1` runs 40 mutants and fewer cells.

# %%
# %matplotlib inline
import os
from pathlib import Path

import numpy as np
import pandas as pd

import gclandscape as gcl

FAST = os.environ.get("GCL_TUTORIAL_FAST", "0") == "1"
N_MUTATIONS = 40 if FAST else 1000  # random mutants in the scan
N_SCAN_CELLS = 100 if FAST else 300  # cells developed per mutant
N_SIM_CELLS = 300 if FAST else 1000  # cells per condition for knockouts and epistasis


def _repository() -> Path | None:
    """The gclandscape checkout: above the working folder, or the one gclandscape was
    installed from in editable mode (None for a package installed from a wheel)."""
    for folder in (Path.cwd(), *Path.cwd().parents, Path(gcl.__file__).resolve().parents[2]):
        if (folder / "pyproject.toml").is_file() and (folder / "tutorials").is_dir():
            return folder
    return None


REPO = _repository()
OUT = Path(
    os.environ.get("GCL_TUTORIAL_OUT")
    or (REPO / "results" / "tutorials" if REPO else Path("gcl_tutorial_output"))
)
OUT = OUT / "03_generative_genome"
OUT.mkdir(parents=True, exist_ok=True)
print(f"fast settings: {FAST}; figures go to {OUT}")

# %% [markdown]
# ## 1. Infer the genome
#
# As in the quickstart: the simulated myeloid differentiation, its genome fitted on the
# simulation clock, and the landscape with attractors named by cell type.

# %%
adata = gcl.datasets.myeloid()
gcl.pp.recipe(adata)
genome = gcl.landscape.fit_grn(adata, time_key="sim_time", n_bootstrap=0)
land = gcl.landscape.fit_landscape(adata, groupby="celltype")
land.attractors[["label", "stable", "basin_fraction", "purity"]]

# %% [markdown]
# ## 2. The latent variables
#
# The genome's signed network: `W[target, source]` is how strongly a source gene drives a
# target's production (the Jacobian of the production averaged over the observed cells;
# positive = activation, negative = repression).

# %%
genome.W.round(2)

# %%
gcl.pl.grn(genome, top_k=30)

# %% [markdown]
# ## 3. Decoding: development from the genome alone
#
# No data are needed to read the genome's cell types: its stable fixed points. Each is
# matched to the nearest attractor of the landscape (named by the observed cell types).

# %%
from scipy.spatial.distance import cdist

fixed = genome.fixed_points(n_starts=200, seed=0)
stable = fixed[fixed["type"] == "stable"].reset_index(drop=True)
named = land.attractors[land.attractors["stable"]].reset_index(drop=True)
distance = cdist(stable[genome.genes], named[genome.genes])
stable.insert(0, "nearest attractor", named["label"].to_numpy()[distance.argmin(axis=1)])
stable[["nearest attractor", "type", *genome.genes]].round(2)

# %% [markdown]
# Decoding the genome from progenitor cells: develop the earlier half of the observed
# progenitors (in the genome's coordinates, `layers["gcl_drift_state"]`) with the genome's
# noise and without any noise, and name each end state by the nearest attractor. If fates
# were chosen by noise, the deterministic run would send each cell to one default fate; if
# they were set by the progenitor's own state (lineage priming, as Paul et al. 2015 saw in
# real myeloid progenitors), both runs give the same fractions. As a last row: 300 copies of
# the single earliest progenitor.

# %%
states = adata.layers["gcl_drift_state"][:, adata.var_names.get_indexer(genome.genes)]
states = states.toarray().astype(np.float64)  # tl.drift's layers are sparse
progenitors = np.flatnonzero(adata.obs["celltype"].to_numpy() == "progenitor")
by_time = progenitors[np.argsort(adata.obs["sim_time"].to_numpy()[progenitors], kind="stable")]
early = by_time[: len(by_time) // 2]


def fate_fractions(end_states: np.ndarray) -> pd.Series:
    """Share of end states nearest to each named attractor."""
    nearest = cdist(end_states, named[genome.genes]).argmin(axis=1)
    return pd.Series(named["label"].to_numpy()[nearest]).value_counts(normalize=True)


development = pd.DataFrame(
    {
        "early progenitors, with noise": fate_fractions(genome.develop(states[early], seed=0)),
        "early progenitors, no noise": fate_fractions(genome.develop(states[early], noise=0.0)),
        "300 copies of the earliest cell": fate_fractions(
            genome.develop(np.repeat(states[by_time[:1]], 300, axis=0), seed=0)
        ),
    }
).T.fillna(0.0)
development.round(2)

# %% [markdown]
# ## 4. Robustness and evolvability: a mutational scan
#
# `mutational_scan` draws random mutants (loss of one regulatory edge, or log-normal noise on
# every weight), develops progenitor cells under each (same starting cells and noise as the
# wild type) and compares fate fractions:
#
# - a mutant is **robust** when every wild-type fate stays within ±0.05 of its share;
# - it is **evolvable** (novel) when at least 1 % of its cells reach a state that is no
#   wild-type attractor.

# %%
scan = gcl.sim.mutational_scan(
    adata, n_mutations=N_MUTATIONS, n_cells=N_SCAN_CELLS, seed=0, progress=False
)
print(f"robustness   = {scan.robustness:.2f}")
print(f"evolvability = {scan.evolvability:.2f}")
scan.table.groupby("kind")[["robust", "novel"]].mean()

# %% [markdown]
# The mutants that move fates most:

# %%
scan.table.sort_values("max_abs_delta", ascending=False).head(8).round(3)

# %% [markdown]
# **Pleiotropy.** For every edge lost in the scan: how many fates moved by more than 0.05.
# An edge that moves no fate is neutral; one that moves several is pleiotropic.

# %%
scan.pleiotropy.sort_values("n_fates", ascending=False).head(10)

# %%
scan.pleiotropy["n_fates"].value_counts().sort_index().rename("number of edges")

# %%
fig_scan = gcl.pl.mutational_scan(scan)
fig_scan

# %% [markdown]
# ## 5. One edge at a time
#
# The most pleiotropic edge, mutated on its own with `gcl.sim.EdgeMutation(source, target,
# factor)` (factor 0 removes the edge), as a full perturbation with intervals and p-values:

# %%
top_edge = scan.pleiotropy.sort_values(["n_fates", "weight"], ascending=False).iloc[0]
edge = gcl.sim.EdgeMutation(top_edge["source"], top_edge["target"], 0.0)
res_edge = gcl.sim.perturb(adata, edge, root="progenitor", n_cells=N_SIM_CELLS, n_null=0)
edge_delta = float(res_edge.fates["delta"].abs().max())
res_edge.fates.round(3)

# %%
gcl.pl.fate_shift(res_edge)

# %% [markdown]
# ## 6. Epistasis between regulators
#
# For each pair of knockouts, `epistasis` compares the double knockout's fate shift to the
# sum of the single knockouts' shifts: `epistasis = delta_ab - (delta_a + delta_b)`.
# Zero means the two act independently; a negative value means the pair moves a fate less
# than the two singles together (redundancy, or one knockout masking the other); positive
# means more (synergy).
#
# We take three regulators of the granulocyte/monocyte choice: PU.1, which both lineages
# need, and Cebpa and Gfi1.

# %%
pairs = gcl.sim.epistasis(
    adata, ["Pu.1", "Cebpa", "Gfi1"], root="progenitor", n_cells=N_SIM_CELLS, seed=0
)
pairs.round(3)

# %%
pairs.pivot_table(index=["gene_a", "gene_b"], columns="fate", values="epistasis").round(2)

# %% [markdown]
# The strongest interaction:

# %%
strongest = pairs.loc[pairs["epistasis"].abs().idxmax()]
print(
    f"{strongest['gene_a']} x {strongest['gene_b']} on {strongest['fate']}: "
    f"single knockouts {strongest['delta_a']:+.2f} and {strongest['delta_b']:+.2f} "
    f"(expected {strongest['expected']:+.2f}), double knockout {strongest['delta_ab']:+.2f}, "
    f"epistasis {strongest['epistasis']:+.2f}"
)

# %% [markdown]
# ## 7. Save

# %%
with gcl.pl.style():
    gcl.pl.mutational_scan(scan).savefig(OUT / "mutational_scan.pdf")
    gcl.pl.fate_shift(res_edge).savefig(OUT / "edge_mutation.pdf")
scan.table.to_csv(OUT / "mutants.csv", index=False)
scan.pleiotropy.to_csv(OUT / "pleiotropy.csv", index=False)
pairs.to_csv(OUT / "epistasis.csv", index=False)
sorted(p.name for p in OUT.iterdir())

# %% [markdown]
# **Caveat.** These are properties of the *inferred* genome, a model fitted to snapshots.
# Robustness and epistasis estimates are as good as the fit: check the attractors against
# the cell types first (section 1), and compare a few predictions with known knockouts
# (notebook 01 does that against the simulation's truth).
