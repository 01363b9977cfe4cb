"""The ``gclandscape`` command line: ``gclandscape datasets`` and ``gclandscape run``.

``run`` is the main job. It reads its input (a file or folder :func:`gclandscape.io.read`
understands, or a built-in dataset name) and runs :func:`run_pipeline`: a list of
:class:`Step` objects, each a function of a :class:`RunContext`, timed (wall clock and CPU)
and logged to stderr: QC, recipe, scVI, UMAP, pseudotime, the genome (fit_grn), the landscape,
a knockout screen of the regulators, the figures (gcl.pl, PNG and PDF), ``results.h5ad`` and
one self-contained ``report.html`` (figures embedded as base64 PNG, the key tables, every
step's time). Extend the job by appending steps to :data:`PIPELINE` (or passing ``steps=``).

Only click and the standard library are imported at module level, so ``gclandscape --help``
is fast; scanpy, matplotlib and the datasets load inside the commands.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._pipeline._outdir import OutputFolder, check_out

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

#: Name of the built-in dataset ``gclandscape run`` uses when no INPUT is given.
DEFAULT_INPUT = "myeloid"

#: scVI minibatch size of the run (scvi-tools' default is 128): fewer, larger steps per epoch.
RUN_BATCH_SIZE = 256
#: Bootstrap refits of fit_grn for the edge confidence in the run (the library default is 5).
RUN_N_BOOTSTRAP = 2
#: Cells simulated per condition for each knockout of the screen.
RUN_N_SIM_CELLS = 500


def run_epochs(n_cells: int) -> int:
    """scVI epochs of ``gclandscape run`` when --epochs is not given: ``120000 / n_cells``
    (about 470 minibatches of :data:`RUN_BATCH_SIZE` cells), between 20 and 100.

    The library default (:func:`gclandscape.latent.default_max_epochs`) trains 200 epochs on
    3,000 cells. Measured on the myeloid default (3,000 cells, one thread): 200 epochs of 128
    cells took 88 s CPU; 20-60 epochs of 256 cells give the same cell-type kNN accuracy of the
    latent (0.88) and the same pseudotime order (Spearman with simulation time 0.34-0.37), at a
    validation ELBO 5-10 % above the 200-epoch one. Early stopping may end training sooner.

    Examples
    --------
    >>> run_epochs(3000), run_epochs(500), run_epochs(100_000)
    (40, 100, 20)
    """
    return int(min(100, max(20, round(120_000 / max(n_cells, 1)))))


_log = logging.getLogger("gclandscape")


@dataclass
class RunContext:
    """State shared by the steps of one ``gclandscape run``.

    ``adata`` is the input as read and is never modified; steps work on copies (``work``)
    and record what they produced in ``summary`` (written to ``summary.json``) and the names
    of the files they wrote in ``files``.
    """

    adata: AnnData
    out: Path
    input: str
    groupby: str | None = None
    root: str | None = None
    epochs: int | None = None
    seed: int = 0
    knockouts: list[str] | None = None  # None: screen every regulator of the genome
    n_bootstrap: int = RUN_N_BOOTSTRAP
    n_sim_cells: int = RUN_N_SIM_CELLS
    counts: Any = None  # the count matrix (layer or X), or None for non-count data
    counts_source: str | None = None
    work: AnnData | None = None
    qc: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    #: figures for the report: name -> (PNG path, caption), in the order they were drawn
    figures: dict[str, tuple[Path, str]] = field(default_factory=dict)
    #: the knockout screen (tidy table of gcl.sim.screen) and the strongest knockout's result
    screen: pd.DataFrame | None = None
    strongest: Any = None
    #: name, description, wall and CPU seconds of every step finished so far
    timings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One named step of the main job: ``func(ctx)`` reads and extends the context."""

    name: str
    func: Callable[[RunContext], None]
    description: str = ""


# --------------------------------------------------------------------------------------
# input


def load_input(spec: str | None, *, seed: int = 0) -> tuple[AnnData, str]:
    """Read ``spec``: an existing file/folder through gcl.io.read, or a built-in dataset name.

    Returns the AnnData and a label for the summary. Raises a :class:`~gclandscape._errors.
    GclError` subclass with the reason and the fix otherwise.
    """
    import inspect

    from . import datasets
    from ._errors import GclError, GclFileNotFoundError, GclFormatError

    spec = DEFAULT_INPUT if spec is None else spec
    path = Path(spec).expanduser()
    if path.exists():
        from . import io

        try:
            return io.read(path), str(path)
        except GclError:
            raise
        except Exception as exc:  # a reader deep inside a dependency failed
            raise GclFormatError(
                f"Could not read {path}: {type(exc).__name__}: {exc}. Pass a file or folder in "
                "a format gcl.io.read supports (.h5ad, 10x .h5 or Matrix Market folder, .loom, "
                ".csv/.tsv, .zarr, a BEELINE folder)."
            ) from exc
    from .datasets._registry import names

    name = spec.strip().lower()
    if name == "simulate":
        raise GclError(
            "The 'simulate' dataset needs a network: call gcl.datasets.simulate(network, "
            "n_cells=...) in Python, write the result with gcl.io.write and run on that file."
        )
    if name in names():
        loader = getattr(datasets, name)
        kwargs = {"seed": seed} if "seed" in inspect.signature(loader).parameters else {}
        return datasets.load(name, **kwargs), name
    raise GclFileNotFoundError(
        f"INPUT {spec!r} is neither an existing file or folder nor a built-in dataset "
        f"({', '.join(n for n in names() if n != 'simulate')}). Pass a path gcl.io.read can "
        "read, or a dataset name (`gclandscape datasets` lists them)."
    )


# --------------------------------------------------------------------------------------
# the pipeline


def _as_categorical(column: pd.Series) -> pd.Categorical:
    """String categories, in the column's own category order when it has one."""
    import pandas as pd

    values = column.astype(str).to_numpy()
    if isinstance(column.dtype, pd.CategoricalDtype):
        order = [str(c) for c in column.cat.categories]
        order = [c for c in order if c in set(values)]
    else:
        order = sorted(set(values))
    return pd.Categorical(values, categories=order)


def step_qc(ctx: RunContext) -> None:
    """Per-cell QC metrics with scanpy on the counts (or on X for non-count data), with the
    share of mitochondrial counts (genes named ``mt-...``, any case) through ``qc_vars``."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scanpy as sc

    from . import _report
    from ._keys import Key
    from ._validate import is_integer_matrix

    adata = ctx.adata
    if Key.layers.counts in adata.layers:
        ctx.counts_source = f"layers['{Key.layers.counts}']"
        ctx.counts = adata.layers[Key.layers.counts]
    elif is_integer_matrix(adata.X):
        ctx.counts_source, ctx.counts = "X", adata.X
    matrix = ctx.counts if ctx.counts is not None else adata.X
    mito = np.asarray(adata.var_names.str.lower().str.startswith("mt-"))
    # a light AnnData sharing the matrix: scanpy's qc_vars reads a .var column, and the
    # user's object is never written to
    view = ad.AnnData(
        X=matrix,
        obs=pd.DataFrame(index=adata.obs_names),
        var=pd.DataFrame({"mt": mito}, index=adata.var_names),
    )
    top = [n for n in (10, 50, 100, 200, 500) if n < adata.n_vars]
    obs_qc, _ = sc.pp.calculate_qc_metrics(
        view, qc_vars=["mt"] if mito.any() else [], percent_top=top or None, inplace=False,
        log1p=True,
    )  # fmt: skip
    if ctx.groupby is not None:
        obs_qc[ctx.groupby] = adata.obs[ctx.groupby].astype(str).to_numpy()
    ctx.qc = obs_qc
    _report.write_table(obs_qc, ctx.out / "qc.csv")
    ctx.files.append("qc.csv")
    ctx.summary["counts"] = ctx.counts_source
    ctx.summary["qc"] = {
        "median_total_counts": float(np.median(obs_qc["total_counts"])),
        "median_genes_detected": float(np.median(obs_qc["n_genes_by_counts"])),
        "computed_on": ctx.counts_source or "X (not counts)",
    }


def step_recipe(ctx: RunContext) -> None:
    """gcl.pp.recipe on a copy: QC filtering, normalisation, log1p, HVG, PCA."""
    import numpy as np

    from . import pp

    src = ctx.adata
    work = src.copy()
    if ctx.counts is None:
        # not counts (e.g. scanpy's continuous simulations): no count model, PCA of X
        import scanpy as sc

        work.X = np.asarray(work.X, dtype=np.float32)
        n_comps = int(min(50, work.n_obs - 1, work.n_vars - 1))
        if n_comps >= 2:
            sc.pp.pca(work, n_comps=n_comps, random_state=ctx.seed)
        ctx.summary["recipe"] = {"normalized": False, "n_pcs": n_comps}
    else:
        pp.recipe(work, n_top_genes=min(2000, work.n_vars))
        ctx.summary["recipe"] = {
            k: v for k, v in work.uns.get("gcl_recipe", {}).items() if k != "params"
        }
    if ctx.groupby is not None:
        work.obs[ctx.groupby] = _as_categorical(work.obs[ctx.groupby])
    ctx.work = work
    if ctx.knockouts:
        check_knockouts(ctx.knockouts, regulators(work))


def regulators(adata: AnnData) -> list[str]:
    """The genes ``fit_grn`` will model with its defaults: the ones in ``var['gcl_regulator']``
    when marked, else at most 200 highly variable genes."""
    from .landscape._fit_grn import _select_genes

    return _select_genes(adata, None)


#: Without --knockout, a genome with more regulators than this screens only this many: those
#: with the largest total outgoing |weight|. Measured on the Paul15 counts (200 modelled genes,
#: 500 cells per knockout): ~9 s per knockout on 2 cores, so 30 knockouts alone took 281 s.
MAX_SCREEN = 15
#: Random knockouts in the null of the screen's perturbation score.
RUN_N_NULL = 10


def screen_genes(adata: AnnData) -> list[str]:
    """The genes ``gclandscape run`` knocks out without ``--knockout``: every regulator of the
    genome, or the :data:`MAX_SCREEN` with the largest total outgoing ``|weight|``."""
    from .landscape import Genome

    genome = Genome.from_adata(adata)
    if genome.n_genes <= MAX_SCREEN:
        return list(genome.genes)
    out = genome.W.abs().sum(axis=0)  # W is target × source
    return [str(g) for g in out.sort_values(ascending=False, kind="stable").index[:MAX_SCREEN]]


def check_knockouts(genes: Sequence[str], available: Sequence[str]) -> None:
    """Raise a GclError naming every ``--knockout`` gene that is not among ``available``."""
    from ._errors import GclError

    unknown = [g for g in genes if g not in set(available)]
    if unknown:
        shown = ", ".join(available[:60]) + (" ..." if len(available) > 60 else "")
        raise GclError(
            f"--knockout {', '.join(unknown)}: not among the {len(available)} regulators the "
            f"genome is fitted on ({shown}). Pass regulators only (names are case-sensitive), "
            "or leave --knockout out to screen every regulator."
        )


def step_latent(ctx: RunContext) -> None:
    """Latent cell states with scVI (counts only)."""
    from . import latent

    if ctx.counts is None:
        ctx.summary["latent"] = "skipped: the input has no counts"
        return
    epochs = ctx.epochs if ctx.epochs is not None else run_epochs(ctx.work.n_obs)
    model = latent.fit(
        ctx.work,
        max_epochs=epochs,
        seed=ctx.seed,
        train_kwargs={"batch_size": RUN_BATCH_SIZE, "early_stopping_patience": 10},
    )
    params = ctx.work.uns.get("gcl_latent", {})
    ctx.summary["latent"] = {
        "model": "scvi",
        "n_latent": int(model.n_latent),
        "epochs": int(params["epochs_trained"]),
    }


def step_embed(ctx: RunContext) -> None:
    """Neighbours and UMAP of the latent (or of the PCA) for the figures."""
    import scanpy as sc

    from ._keys import Key

    work = ctx.work
    use_rep = next((k for k in (Key.obsm.latent, Key.obsm.pca) if k in work.obsm), None)
    n_neighbors = int(min(15, max(work.n_obs - 1, 2)))
    sc.pp.neighbors(
        work, n_neighbors=n_neighbors, use_rep=use_rep or "X", random_state=ctx.seed,
        key_added="gcl_umap_neighbors",
    )  # fmt: skip
    sc.tl.umap(work, random_state=ctx.seed, neighbors_key="gcl_umap_neighbors")
    ctx.summary["embedding"] = {"use_rep": use_rep or "X", "n_neighbors": n_neighbors}


def _default_root(ctx: RunContext) -> str | None:
    if ctx.root is not None or ctx.groupby is None:
        return ctx.root
    groups = set(ctx.work.obs[ctx.groupby].astype(str))
    return "progenitor" if "progenitor" in groups else None


def step_pseudotime(ctx: RunContext) -> None:
    """Diffusion pseudotime from the --root group (default: 'progenitor' when present)."""
    from . import tl
    from ._errors import GclError

    root = _default_root(ctx)
    if root is None:
        ctx.summary["pseudotime"] = "skipped: no --root group (and no 'progenitor' group)"
        return
    if ctx.groupby is None:
        raise GclError("--root needs --groupby (the obs column the root group is in).")
    tl.pseudotime(ctx.work, root=root, groupby=ctx.groupby)
    ctx.summary["pseudotime"] = {"root": root, "groupby": ctx.groupby}


def step_grn(ctx: RunContext) -> None:
    """Infer the genome (fit_grn) on the pseudotime drift, or in steady-state mode."""
    from . import _report, get, landscape
    from ._keys import Key

    work = ctx.work
    kwargs = {"time_key": Key.obs.pseudotime} if Key.obs.pseudotime in work.obs else {}
    genome = landscape.fit_grn(work, seed=ctx.seed, n_bootstrap=ctx.n_bootstrap, **kwargs)
    edges = get.grn_edges(work)
    _report.write_table(edges, ctx.out / "grn_edges.csv", index=False)
    ctx.files.append("grn_edges.csv")
    params = work.uns[Key.uns.genome]["params"]
    ctx.summary["grn"] = {
        "mode": str(params["mode"]),
        "n_genes": genome.n_genes,
        "n_edges": len(edges),
        "heldout_r2_median": round(float(params["val_r2_median"]), 3),
        "n_bootstrap": ctx.n_bootstrap,
    }
    if ctx.knockouts:  # the genome may have dropped a zero-variance regulator
        check_knockouts(ctx.knockouts, list(genome.genes))


def step_landscape(ctx: RunContext) -> None:
    """Attractors, saddles, paths and the quasi-potential grid -> attractors.csv, paths.csv,
    landscape_grid.csv."""
    import numpy as np
    import pandas as pd

    from . import _report, landscape

    land = landscape.fit_landscape(ctx.work, groupby=ctx.groupby, seed=ctx.seed)
    _report.write_table(land.attractors, ctx.out / "attractors.csv", index=False)
    _report.write_table(land.paths, ctx.out / "paths.csv", index=False)
    grid = land.grid
    yy, xx = np.meshgrid(np.asarray(grid["y"]), np.asarray(grid["x"]), indexing="ij")
    table = pd.DataFrame(
        {
            "x": xx.ravel(),
            "y": yy.ravel(),
            "U": np.asarray(grid["U"]).ravel(),
            "U_empirical": np.asarray(grid["U_empirical"]).ravel(),
        }
    )
    _report.write_table(table, ctx.out / "landscape_grid.csv", index=False)
    ctx.files += ["attractors.csv", "paths.csv", "landscape_grid.csv"]
    att = land.attractors
    ctx.summary["landscape"] = {
        "n_attractors": len(att),
        "attractors": {
            str(r.label): {"basin_fraction": round(float(r.basin_fraction), 3),
                           "purity": round(float(r.purity), 3)}
            for r in att.itertuples()
        },
        "n_paths": len(land.paths),
    }  # fmt: skip


def step_screen(ctx: RunContext) -> None:
    """Knock out every regulator (or the --knockout genes) with gcl.sim.screen -> screen.csv;
    the strongest knockout is re-run with gcl.sim.perturb for its fate-shift figure."""
    from . import _report, sim
    from ._keys import Key

    work = ctx.work
    if ctx.knockouts:
        genes = [str(g) for g in ctx.knockouts]
    else:
        genes = screen_genes(work)
        n_all = len(work.uns[Key.uns.genome]["genes"])
        if len(genes) < n_all:
            _log.info(
                "screen: the %d regulators with the strongest outgoing edges of %d (pass "
                "--knockout GENE ... to choose others)", len(genes), n_all,
            )  # fmt: skip
    knockouts = {sim.Knockout(g).name: g for g in genes}
    _log.info("screen: %d knockouts, %d simulated cells each", len(genes), ctx.n_sim_cells)
    root = _default_root(ctx)
    table = sim.screen(
        work,
        [sim.Knockout(g) for g in genes],
        root=root,
        n_cells=ctx.n_sim_cells,
        seed=ctx.seed,
        n_null=RUN_N_NULL,
    )
    _report.write_table(table, ctx.out / "screen.csv", index=False)
    ctx.files.append("screen.csv")
    work.uns[Key.uns.screen] = table  # results.h5ad keeps the screen too
    ctx.screen = table
    info: dict[str, Any] = {"n_knockouts": len(genes)}
    if "delta" in table and len(table):
        strength = (
            table.assign(abs_delta=table["delta"].abs())
            .groupby("perturbation", sort=False)["abs_delta"]
            .max()
        )
        strongest = str(strength.idxmax())
        info["strongest"] = strongest
        info["max_abs_delta"] = round(float(strength.max()), 3)
        info["lost_fates"] = {
            str(name): sorted(map(str, rows.loc[rows["lost"].astype(bool), "fate"]))
            for name, rows in table.groupby("perturbation", sort=False)
            if rows["lost"].astype(bool).any()
        }
        ctx.strongest = sim.perturb(
            work,
            sim.Knockout(knockouts[strongest]),
            root=root,
            n_cells=ctx.n_sim_cells,
            seed=ctx.seed,
            decode=False,
            n_null=0,
        )
    else:
        info["note"] = (
            "steady-state genome: no fates to shift; screen.csv has each knockout's change "
            "of every regulator's steady state (log2fc)"
        )
    ctx.summary["screen"] = info


def _save(ctx: RunContext, fig, name: str, caption: str) -> None:
    """Save ``fig`` as name.png and name.pdf, register it for the report, close it."""
    from . import _report

    paths = _report.save_figure(fig, ctx.out / name)
    ctx.files += [p.name for p in paths]
    ctx.figures[name] = (paths[0], caption)
    _close(fig)


def _close(fig) -> None:
    import sys

    if "matplotlib.pyplot" in sys.modules:  # a pyplot-managed figure: free it
        sys.modules["matplotlib.pyplot"].close(fig)


def step_plot(ctx: RunContext) -> None:
    """UMAPs by cell type and pseudotime, and the gcl.pl figures of the genome, landscape
    and screen, each as PNG and PDF."""
    import numpy as np

    from . import _report, pl
    from ._keys import Key

    work = ctx.work
    umap = np.asarray(work.obsm[Key.obsm.umap])
    title = f"{Path(ctx.input).name}: {ctx.adata.n_obs} cells"
    fig = _report.embedding_figure(umap, obs=work.obs, color=ctx.groupby, title=title)
    _save(ctx, fig, "umap", "UMAP of the latent cell states" + (
        f", coloured by {ctx.groupby}" if ctx.groupby else ""))  # fmt: skip
    if Key.obs.pseudotime in work.obs:
        fig = _report.embedding_figure(
            umap, obs=work.obs, color=Key.obs.pseudotime, title=f"{title}: pseudotime"
        )
        _save(ctx, fig, "umap_pseudotime", "UMAP coloured by diffusion pseudotime")
    if Key.uns.genome not in work.uns:
        return
    _save(ctx, pl.grn(work), "grn", "The inferred genome: strongest signed edges (red "
          "activation, blue repression; width |weight|; node size out-degree)")  # fmt: skip
    if Key.uns.landscape in work.uns:
        _save(ctx, pl.landscape(work, color=ctx.groupby), "landscape",
              "Quasi-potential landscape with cells, attractors, saddles and minimum-action "
              "paths")  # fmt: skip
        _save(ctx, pl.vector_field(work), "vector_field",
              "The genome's drift on the landscape basis")  # fmt: skip
    if ctx.screen is not None and "fate" in ctx.screen and len(ctx.screen):
        _save(ctx, pl.screen(ctx.screen), "screen",
              "Knockout screen: change of each fate's fraction (perturbed − wild type)")  # fmt: skip
    if ctx.strongest is not None:
        _save(ctx, pl.fate_shift(ctx.strongest), "fate_shift",
              f"Fate fractions, wild type vs {ctx.strongest.perturbation} (the strongest "
              "knockout), with 95 % bootstrap intervals")  # fmt: skip


def step_save(ctx: RunContext) -> None:
    """Everything computed, in one .h5ad (round-trips without pickle)."""
    from . import io

    io.write(ctx.work, ctx.out / "results.h5ad")
    ctx.files.append("results.h5ad")


def _qc_table(ctx: RunContext) -> pd.DataFrame:
    """Per-group QC medians (one row per group and one for all cells)."""
    import pandas as pd

    qc = ctx.qc
    cols = [c for c in ("total_counts", "n_genes_by_counts", "pct_counts_mt") if c in qc]
    names = {"total_counts": "median total", "n_genes_by_counts": "median genes",
             "pct_counts_mt": "median % mito"}  # fmt: skip
    rows = []
    groups = qc.groupby(ctx.groupby, sort=False, observed=True) if ctx.groupby else []
    for name, part in [*groups, ("all cells", qc)]:
        rows.append({"group": str(name), "cells": len(part),
                     **{names[c]: float(part[c].median()) for c in cols}})  # fmt: skip
    return pd.DataFrame(rows)


def _screen_tables(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The screen for the report: knockouts × fates (delta, * where p < 0.05) and one row per
    knockout; for a steady-state genome the largest expression changes of each knockout."""
    import pandas as pd

    if not len(table):
        return []
    if "fate" not in table:  # steady state: perturbation, gene, wt, perturbed, log2fc
        others = table[table["gene"] != table["perturbation"].str.removesuffix(" KO")]
        top = (
            others.assign(abs_log2fc=others["log2fc"].abs())
            .sort_values("abs_log2fc", ascending=False)
            .groupby("perturbation", sort=False)
            .head(3)
            .drop(columns="abs_log2fc")
        )
        return [("largest steady-state changes of the other regulators (3 per knockout)", top)]
    cell = table["delta"].map(lambda d: f"{d:+.3f}") + table["p_value"].map(
        lambda p: " *" if p < 0.05 else ""
    )
    grid = (
        table.assign(cell=cell)
        .pivot(index="perturbation", columns="fate", values="cell")
        .reindex(index=pd.unique(table["perturbation"]), columns=pd.unique(table["fate"]))
    )
    grid.index.name = "knockout"
    grid.columns.name = None
    rows = []
    for name, part in table.groupby("perturbation", sort=False):
        rows.append({
            "knockout": name,
            "lost fates": ", ".join(part.loc[part["lost"].astype(bool), "fate"]),
            "gained fates": ", ".join(part.loc[part["gained"].astype(bool), "fate"]),
            "max |delta|": float(part["delta"].abs().max()),
            "score": float(part["score"].iloc[0]),
            "score p": float(part["score_pvalue"].iloc[0]),
        })  # fmt: skip
    per = pd.DataFrame(rows).sort_values("max |delta|", ascending=False)
    return [
        ("change of each fate's fraction per knockout (* p < 0.05)", grid),
        ("knockouts, strongest first", per),
    ]


def step_report(ctx: RunContext) -> None:
    """One self-contained report.html: figures embedded, key tables, each step's time."""
    from . import _report, get
    from ._keys import Key
    from ._report import Section

    start, cpu = time.perf_counter(), time.process_time()
    work, fig = ctx.work, ctx.figures
    sections = []

    def figures(*names: str) -> list:
        return [fig[n] for n in names if n in fig]

    sections.append(Section(
        "Quality control",
        f"Per-cell metrics computed on {ctx.counts_source or 'X (not counts)'}; qc.csv "
        "has every cell.",
        figures=figures("umap"),
        tables=[("QC medians per group", _qc_table(ctx))] if ctx.qc is not None else [],
    ))  # fmt: skip
    latent = ctx.summary.get("latent")
    sections.append(Section(
        "Latent space and pseudotime",
        (f"scVI, {latent['n_latent']} latent dimensions, {latent['epochs']} epochs. "
         if isinstance(latent, dict) else f"Latent: {latent}. ")
        + (f"Pseudotime rooted in {ctx.summary['pseudotime']['root']!r}."
           if isinstance(ctx.summary.get("pseudotime"), dict)
           else f"Pseudotime: {ctx.summary.get('pseudotime')}."),
        figures=figures("umap_pseudotime"),
    ))  # fmt: skip
    if Key.uns.genome in work.uns:
        grn = ctx.summary["grn"]
        edges = get.grn_edges(work).head(25)
        sections.append(Section(
            "Gene-regulatory network (the genome)",
            f"{grn['n_genes']} regulators, {grn['n_edges']} edges, fitted in {grn['mode']} "
            f"mode; median held-out R² {grn['heldout_r2_median']}. grn_edges.csv has all edges.",
            figures=figures("grn"),
            tables=[("strongest edges", edges)],
        ))  # fmt: skip
    if Key.uns.landscape in work.uns:
        from .landscape import Landscape

        land = Landscape.from_adata(work)
        attractors = land.attractors
        keep = [c for c in attractors.columns if c in {
            "label", "stable", "basin_fraction", "purity", "energy", "n_cells"}]  # fmt: skip
        sections.append(Section(
            "Landscape",
            f"{len(attractors)} attractors and {len(land.paths)} minimum-action paths.",
            figures=figures("landscape", "vector_field"),
            tables=[("attractors", attractors[keep or list(attractors.columns)]),
                    ("transition paths", land.paths)],
        ))  # fmt: skip
    if ctx.screen is not None:
        info = ctx.summary.get("screen", {})
        text = (f"{info.get('n_knockouts')} knockouts; strongest: {info['strongest']} "
                f"(largest |Δ fate fraction| {info['max_abs_delta']}). screen.csv has every "
                "row." if "strongest" in info else info.get("note", ""))  # fmt: skip
        sections.append(Section(
            "Knockout screen",
            text,
            figures=figures("screen", "fate_shift"),
            tables=_screen_tables(ctx.screen),
        ))  # fmt: skip
    this = {  # this step's own time, up to the moment the page is written
        "name": "report", "description": "this page",
        "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
    }  # fmt: skip
    _report.write_report(
        ctx.out / "report.html",
        ctx.summary,
        sections,
        steps=[*ctx.timings, this],
        files=[*ctx.files, "report.html", "summary.json"],
    )
    ctx.files.append("report.html")


#: The steps of ``gclandscape run`` in order. Later issues append (knockouts, report) or
#: pass their own list to :func:`run_pipeline`.
PIPELINE: list[Step] = [
    Step("qc", step_qc, "per-cell QC metrics -> qc.csv"),
    Step("recipe", step_recipe, "filter, normalise, log1p, highly variable genes, PCA"),
    Step("latent", step_latent, "scVI latent cell states"),
    Step("embed", step_embed, "neighbours and UMAP of the latent"),
    Step("pseudotime", step_pseudotime, "diffusion pseudotime from the root group"),
    Step("grn", step_grn, "infer the genome (fit_grn) -> grn_edges.csv"),
    Step("landscape", step_landscape, "attractors, paths, quasi-potential -> *.csv"),
    Step("screen", step_screen, "knockout screen of the regulators -> screen.csv"),
    Step("plot", step_plot, "UMAPs, genome, landscape and screen figures -> *.png, *.pdf"),
    Step("save", step_save, "-> results.h5ad"),
    Step("report", step_report, "-> report.html (figures embedded, tables, step times)"),
]


def _resolve_groupby(adata: AnnData, groupby: str | None) -> str | None:
    from ._errors import GclError
    from ._keys import Key

    if groupby is None:
        return Key.obs.celltype if Key.obs.celltype in adata.obs else None
    if groupby not in adata.obs:
        cols = ", ".join(map(str, adata.obs.columns)) or "(none)"
        raise GclError(
            f"groupby column {groupby!r} is not in the data's obs. Available obs columns: "
            f"{cols}. Pass one of them with --groupby, or leave it out."
        )
    return groupby


def _check_knockout_names(adata: AnnData, knockouts: Sequence[str] | None) -> list[str] | None:
    """--knockout genes must be genes of the data (and regulators, where those are marked)."""
    from ._errors import GclError
    from ._keys import Key

    if not knockouts:
        return None
    if isinstance(knockouts, str):
        knockouts = [knockouts]
    genes = list(dict.fromkeys(str(g) for g in knockouts))
    if Key.var.regulator in adata.var and adata.var[Key.var.regulator].any():
        check_knockouts(genes, regulators(adata))
    else:
        unknown = [g for g in genes if g not in adata.var_names]
        if unknown:
            raise GclError(
                f"--knockout {', '.join(unknown)}: not a gene of the data ({adata.n_vars} genes, "
                f"e.g. {', '.join(map(str, adata.var_names[:10]))}). Pass regulators the genome "
                "is fitted on (names are case-sensitive), or leave --knockout out."
            )
    return genes


def run_pipeline(
    adata: AnnData,
    out: str | Path,
    *,
    groupby: str | None = None,
    root: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    knockouts: Sequence[str] | None = None,
    n_bootstrap: int = RUN_N_BOOTSTRAP,
    n_sim_cells: int = RUN_N_SIM_CELLS,
    input: str = "AnnData",
    steps: Sequence[Step] | None = None,
) -> RunContext:
    """Run the main job's steps on ``adata`` and write their results into ``out``.

    Parameters
    ----------
    adata
        The data as read; not modified.
    out
        Output folder: new, empty, or an earlier run's results, which are replaced when this
        run completes. The run is staged in a hidden folder beside it and moved into place at
        the end, so an interrupted run leaves ``out`` as it was.
    groupby
        obs column with cell types; defaults to ``"celltype"`` when present.
    root
        Root group of the pseudotime (default ``"progenitor"`` when ``groupby`` has it).
    epochs
        scVI training epochs (default: :func:`run_epochs` of the number of cells).
    seed
        Seed for everything random (PCA, neighbours, UMAP, the fits and simulations).
    knockouts
        Regulators to knock out in the screen; default: every regulator of the genome.
    n_bootstrap
        Bootstrap refits of ``fit_grn`` for the edges' confidence.
    n_sim_cells
        Cells simulated per condition in the knockout screen.
    input
        What the data are, for the summary (a path or a dataset name).
    steps
        The steps to run; defaults to :data:`PIPELINE`.

    Returns
    -------
    RunContext
        With ``summary`` (also written to ``out/summary.json``) and ``files``.

    Raises
    ------
    GclError
        ``groupby`` is not an obs column or ``root`` not one of its groups (the message
        lists them), a knockout gene is not a regulator (listed), the data are empty, or
        ``out`` cannot be written or holds files that are not an earlier result.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> from gclandscape.cli import run_pipeline
    >>> ctx = run_pipeline(gcl.datasets.krumsiek11(), "out")  # doctest: +SKIP
    >>> ctx.files  # doctest: +SKIP
    ['qc.csv', 'umap.png', 'umap.pdf', 'summary.json']
    """
    from ._errors import GclError

    if adata.n_obs < 3 or adata.n_vars < 1:
        raise GclError(
            f"The input has {adata.n_obs} cells x {adata.n_vars} genes; the run needs at least "
            "3 cells and 1 gene."
        )
    groupby = _resolve_groupby(adata, groupby)
    out = check_out(out)
    if root is not None:
        if groupby is None:
            raise GclError("--root needs --groupby (the obs column the root group is in).")
        groups = sorted(set(adata.obs[groupby].astype(str)))
        if str(root) not in groups:
            raise GclError(
                f"root group {root!r} is not in obs[{groupby!r}]. Available groups: "
                f"{', '.join(groups)}."
            )
    knockouts = _check_knockout_names(adata, knockouts)
    folder = OutputFolder(out)
    try:
        ctx = _run_steps(
            adata, folder, input=input, groupby=groupby, root=root, epochs=epochs, seed=seed,
            knockouts=knockouts, n_bootstrap=n_bootstrap, n_sim_cells=n_sim_cells, steps=steps,
        )  # fmt: skip
    except BaseException:  # an interrupted or failed run leaves --out as it was
        folder.discard()
        raise
    ctx.out = folder.commit()
    ctx.figures = {k: (ctx.out / Path(p).name, c) for k, (p, c) in ctx.figures.items()}
    return ctx


def _run_steps(
    adata: AnnData,
    folder: OutputFolder,
    *,
    input: str,
    groupby: str | None,
    root: str | None,
    epochs: int | None,
    seed: int,
    knockouts: list[str] | None,
    n_bootstrap: int,
    n_sim_cells: int,
    steps: Sequence[Step] | None,
) -> RunContext:
    """Run ``steps`` with their output in ``folder.staging``; summary.json is written last."""
    import datetime

    from . import __version__, _report

    ctx = RunContext(
        adata=adata,
        out=folder.staging,
        input=input,
        groupby=groupby,
        root=root,
        epochs=epochs,
        seed=seed,
        knockouts=knockouts,
        n_bootstrap=int(n_bootstrap),
        n_sim_cells=int(n_sim_cells),
    )
    ctx.summary.update(
        input=input,
        n_cells=int(adata.n_obs),
        n_genes=int(adata.n_vars),
        groupby=groupby,
        cell_types=None,
        seed=seed,
        gclandscape_version=__version__,
    )
    if groupby is not None:
        counts = adata.obs[groupby].astype(str).value_counts()
        ctx.summary["cell_types"] = {str(k): int(v) for k, v in counts.items()}
    steps = PIPELINE if steps is None else list(steps)
    for i, step in enumerate(steps, start=1):
        _log.info("[%d/%d] %s: %s", i, len(steps), step.name, step.description)
        start, cpu = time.perf_counter(), time.process_time()
        step.func(ctx)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        ctx.timings.append({
            "name": step.name, "description": step.description,
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
        })  # fmt: skip
        _log.info("[%d/%d] %s done in %.2f s (CPU %.2f s)", i, len(steps), step.name, seconds, cpu)
    ctx.files.append("summary.json")
    ctx.summary.update(
        steps=[{k: t[k] for k in ("name", "seconds", "cpu_seconds")} for t in ctx.timings],
        files=list(ctx.files),
        out=str(folder.final),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _report.write_json(ctx.summary, ctx.out / "summary.json")
    return ctx


# --------------------------------------------------------------------------------------
# commands


class _StderrHandler(logging.Handler):
    """Send gclandscape's log records to the current stderr (click's, under CliRunner)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(message="gclandscape %(version)s", version=None, package_name="gclandscape")
def main() -> None:
    """gclandscape: gene-regulatory landscapes from single-cell data."""
    # OpenMP runtimes spin-wait between parallel regions by default. After scanpy's recipe
    # (numba, scikit-learn) has started its thread pools, the spinning threads starve torch:
    # measured on the 2-core machine, scVI training ran 20x slower in CPU time (7 s vs 0.3 s
    # for 3 epochs of 1000 cells). Passive waiting, unless the user chose a policy. It must be
    # set before torch or scanpy are imported, which only happens inside the commands.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@main.command("datasets")
def datasets_command() -> None:
    """List the built-in datasets."""
    from . import _report
    from .datasets import available

    table = available()
    table["needs_download"] = table["needs_download"].map({True: "yes", False: "no"})
    click.echo(_report.format_table(table))


@main.command("run")
@click.argument("input", required=False, metavar="[INPUT]")
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: new, empty or earlier results (replaced once the run completes).",
)
@click.option("--groupby", default=None, help="obs column with cell types [default: celltype].")
@click.option(
    "--root", default=None, help="Root group of the pseudotime [default: progenitor if present]."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--epochs", default=None, type=int, help="scVI epochs [default: from data size].")
@click.option(
    "--knockout",
    "knockouts",
    multiple=True,
    metavar="GENE",
    help="Regulator to knock out in the screen (repeat for several) [default: every one].",
)
def run_command(
    input: str | None,
    out: Path,
    groupby: str | None,
    root: str | None,
    seed: int,
    epochs: int | None,
    knockouts: tuple[str, ...],
) -> None:
    """Run the main job on INPUT and write its results into --out.

    INPUT is a file or folder gcl.io.read understands (.h5ad, 10x .h5 or Matrix Market
    folder, .loom, .csv/.tsv, .zarr, BEELINE folder) or a built-in dataset name
    (see `gclandscape datasets`); default: the embedded `myeloid` dataset.

    Writes the tables (qc, grn_edges, attractors, paths, landscape_grid, screen .csv), the
    figures (.png and .pdf), results.h5ad, summary.json and a self-contained report.html.
    """
    from . import _report
    from ._errors import GclError

    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("gclandscape: %(message)s"))
    previous = _log.level
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    try:
        check_out(out)  # before the input is read: a bad --out fails in a second
        start = time.perf_counter()
        _log.info("reading %s", input or DEFAULT_INPUT)
        adata, label = load_input(input, seed=seed)
        _log.info(
            "read %d cells x %d genes in %.2f s",
            adata.n_obs,
            adata.n_vars,
            time.perf_counter() - start,
        )
        ctx = run_pipeline(
            adata,
            out,
            groupby=groupby,
            root=root,
            epochs=epochs,
            seed=seed,
            knockouts=list(knockouts) or None,
            input=label,
        )
    except GclError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        _log.removeHandler(handler)
        _log.setLevel(previous)
    click.echo(_report.format_summary(ctx.summary))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
