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
# # Quickstart: from cells to a landscape to a knockout prediction
#
# gclandscape reads the genome as a *generative model*: a gene-regulatory network (GRN)
# shared by every cell, whose dynamics roll each cell down an energy (Waddington) landscape
# into an attractor, a cell type. In this notebook we
#
# 1. load the embedded default dataset, a simulation of myeloid differentiation
#    (the 11-transcription-factor network of Krumsiek et al. 2011),
# 2. infer the genome (`fit_grn`) and its landscape (`fit_landscape`),
# 3. knock out **Gata1** in silico and see which fates are lost,
# 4. run a knockout screen of every regulator,
# 5. make publication figures.
#
# Because the data are simulated, the true network and the true outcome of every knockout
# are known (`adata.uns["gcl_truth"]`), so at each step we can check the prediction against
# the truth. With your own data (notebook 02) you only have the prediction.
#
# **Run time.** About 1–2 minutes on a CPU with the real settings below (measured: 73 s on
# one core). Set the environment variable `GCL_TUTORIAL_FAST=1` for a quicker run with fewer
# simulated cells and no bootstrap (used by the test suite); the intervals are then wider
# and small effects can differ.

# %%
# %matplotlib inline
import os
from pathlib import Path

import pandas as pd

import gclandscape as gcl

FAST = os.environ.get("GCL_TUTORIAL_FAST", "0") == "1"
N_BOOTSTRAP = 0 if FAST else 5  # bootstrap refits of the GRN for edge confidence
N_SIM_CELLS = 300 if FAST else 1000  # cells simulated per condition in a perturbation
N_NULL = 0 if FAST else 20  # random perturbations in the null of the perturbation score


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
OUT = OUT / "01_quickstart"
OUT.mkdir(parents=True, exist_ok=True)
print(f"gclandscape {gcl.__version__}; fast settings: {FAST}; figures go to {OUT}")

# %% [markdown]
# ## 1. The data
#
# 3000 simulated cells with UMI-like counts for 11 transcription factors and 300 genes they
# drive. `obs["celltype"]` holds the labels a biologist would assign (progenitor, Ery =
# erythrocyte, Mk = megakaryocyte, Gran = granulocyte, Mono = monocyte) and
# `obs["sim_time"]` the simulation clock, which stands in for real time points or a
# pseudotime.

# %%
adata = gcl.datasets.myeloid()
adata

# %%
adata.obs["celltype"].value_counts()

# %% [markdown]
# ## 2. Preprocessing
#
# `gcl.pp.recipe` runs the usual scanpy steps: QC, library-size normalisation, log1p, highly
# variable genes and PCA. The raw counts stay in `layers["counts"]`.

# %%
gcl.pp.recipe(adata)
adata

# %% [markdown]
# ## 3. Infer the genome
#
# `fit_grn` fits a sparse, signed GRN ODE model, `dx/dt = alpha * g(x) - gamma * x`, to a
# per-cell estimate of how expression changes along time. The genes modelled are the
# regulators marked in `var["gcl_regulator"]` (for your own data: highly variable genes or
# a list of transcription factors). We give it the simulation clock. Real data have no
# clock: compute a diffusion pseudotime from the progenitors (`gcl.tl.pseudotime`, best on
# a scVI latent from `gcl.latent.fit`) and pass `time_key="gcl_pseudotime"`, as notebook 02
# does.

# %%
genome = gcl.landscape.fit_grn(adata, time_key="sim_time", n_bootstrap=N_BOOTSTRAP)
genome

# %% [markdown]
# The network is a readable signed graph: one row per edge, with the weight (the production
# Jacobian averaged over cells) and, with bootstrap refits, a confidence.

# %%
edges = gcl.get.grn_edges(adata)
edges.head(10)

# %% [markdown]
# How many of the strongest inferred edges are in the true Krumsiek network (sign ignored)?

# %%
truth = adata.uns["gcl_truth"]
true_edges = {(s, t) for s, t in truth["network"][["source", "target"]].itertuples(index=False)}
top = edges.reindex(edges["weight"].abs().sort_values(ascending=False).index).head(20)
hits = [(s, t) in true_edges for s, t in top[["source", "target"]].itertuples(index=False)]
n_possible = genome.n_genes**2
print(
    f"{sum(hits)} of the 20 strongest edges are true edges "
    f"(random guessing: {20 * len(true_edges) / n_possible:.1f})"
)

# %% [markdown]
# Individual edges are the least reliable part of the model: the strongest edges are only
# somewhat enriched for true ones (`benchmarks/README.md` has the full comparison with
# GENIE3 and partial correlation). The attractors and knockout predictions below depend on
# the network as a whole and hold up better.

# %%
fig_grn = gcl.pl.grn(adata, top_k=25)
fig_grn

# %% [markdown]
# ## 4. The landscape
#
# `fit_landscape` finds the genome's attractors (stable fixed points), the saddles between
# them and the minimum-action paths over the saddles (with barrier heights), and a
# quasi-potential `U = -ln P_ss` from long simulations. Each attractor is named by the
# majority cell type of its basin; `purity` is that majority's share. **Attractors ↔ cell
# types is the first thing to check.**

# %%
land = gcl.landscape.fit_landscape(adata, groupby="celltype")
land.attractors[["label", "stable", "basin_fraction", "purity", "energy"]]

# %%
land.paths

# %%
fig_landscape = gcl.pl.landscape(adata)
fig_landscape

# %% [markdown]
# The same landscape as a 3-D surface, and the genome's drift as a streamplot:

# %%
fig_surface = gcl.pl.landscape(adata, kind="surface", cells=False)
fig_surface

# %%
fig_field = gcl.pl.vector_field(adata)
fig_field

# %% [markdown]
# ## 5. Knock out Gata1
#
# `gcl.sim.perturb` develops progenitor cells under the wild-type genome and under the
# edited one (Gata1 clamped to 0), with the same starting cells and the same noise, and
# names each end state by the nearest wild-type attractor (`novel` when none is close). The
# fate table gives the change in each fate's share with a 95 % bootstrap interval and a
# p-value.

# %%
ko = gcl.sim.perturb(
    adata, gcl.sim.Knockout("Gata1"), root="progenitor", n_cells=N_SIM_CELLS, n_null=N_NULL
)
ko.fates.round(3)

# %%
print("lost fates:  ", ko.lost_fates)
print("gained fates:", ko.gained_fates)
print("true outcome of the Gata1 knockout: lost", truth["knockout_lost_fates"]["Gata1"])

# %% [markdown]
# Gata1 is the erythroid master regulator: without it no erythrocytes form, and the model
# finds this from the data alone. In the true network the knockout also loses the
# megakaryocytes (Gata1 is needed for both); compare the printed truth with the prediction,
# which may miss that second loss. Cells that would have become erythrocytes end in a
# `novel` state. The expression table shows the regulators' mean end states:

# %%
ko.expression.round(3)

# %%
fig_fates = gcl.pl.fate_shift(ko)
fig_fates

# %%
fig_paths = gcl.pl.trajectories(adata, ko)
fig_paths

# %% [markdown]
# ## 6. A knockout screen
#
# `gcl.sim.screen` runs every single knockout against one shared wild-type simulation (use
# `backend="dask"` to spread a large screen over a cluster, and `checkpoint=` to resume an
# interrupted one). The result is a tidy table: one row per knockout and fate.

# %%
table = gcl.sim.screen(
    adata, "knockouts", root="progenitor", n_cells=N_SIM_CELLS, n_null=N_NULL, progress=False
)
table.head()

# %%
fig_screen = gcl.pl.screen(table)
fig_screen

# %% [markdown]
# Predicted against true lost fates, knockout by knockout. The truth comes from simulating
# the true network; a prediction is right when it names the same lost fates.


# %%
lost = table[table["lost"]].groupby("perturbation")["fate"].agg(lambda f: ",".join(sorted(f)))
compare = pd.DataFrame(index=[p.removesuffix(" KO") for p in table["perturbation"].unique()])
compare["predicted lost"] = [lost.get(f"{g} KO", "") for g in compare.index]
compare["true lost"] = [
    ",".join(sorted(filter(None, truth["knockout_lost_fates"][g].split(","))))
    for g in compare.index
]
compare["agree"] = compare["predicted lost"] == compare["true lost"]
print(f"{compare['agree'].sum()} of {len(compare)} knockouts predicted exactly")
compare

# %% [markdown]
# ## 7. Figures for the paper
#
# Every `gcl.pl` function returns a matplotlib Figure; `gcl.pl.style()` sets small
# sans-serif fonts, editable text in PDF/SVG and 300 dpi for raster formats. Draw inside the
# style block, then save in any format.

# %%
with gcl.pl.style():
    figures = {
        "landscape": gcl.pl.landscape(adata),
        "grn": gcl.pl.grn(adata, top_k=25),
        "gata1_fates": gcl.pl.fate_shift(ko),
        "screen": gcl.pl.screen(table),
    }
    for name, fig in figures.items():
        for fmt in ("pdf", "svg", "png"):
            fig.savefig(OUT / f"{name}.{fmt}")
sorted(p.name for p in OUT.iterdir())

# %% [markdown]
# Everything computed above lives in the AnnData object and round-trips through `.h5ad`:

# %%
gcl.io.write(adata, OUT / "quickstart.h5ad")
back = gcl.io.read(OUT / "quickstart.h5ad")
print(gcl.landscape.Genome.from_adata(back).genes == genome.genes)

# %% [markdown]
# **Next:** notebook 02 runs the same pipeline on your own counts (the Paul et al. 2015
# myeloid progenitors), and notebook 03 treats the genome as a generative model: random
# mutations, robustness, evolvability and epistasis.
