"""The ``gclandscape`` command line: ``gclandscape datasets`` and ``gclandscape run``.

``run`` is the main job. It reads its input (a file or folder :func:`gclandscape.io.read`
understands, or a built-in dataset name) and runs :func:`run_pipeline`: a list of
:class:`Step` objects, each a function of a :class:`RunContext`, timed and logged to stderr.
Later issues extend the job by appending steps to :data:`PIPELINE` (or passing ``steps=``).

Only click and the standard library are imported at module level, so ``gclandscape --help``
is fast; scanpy, matplotlib and the datasets load inside the commands.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

#: Name of the built-in dataset ``gclandscape run`` uses when no INPUT is given.
DEFAULT_INPUT = "myeloid"

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
    counts: Any = None  # the count matrix (layer or X), or None for non-count data
    counts_source: str | None = None
    work: AnnData | None = None
    qc: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


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


def _is_integer_valued(x) -> bool:
    import numpy as np
    import scipy.sparse as sp

    values = x.data if sp.issparse(x) else np.asarray(x)
    if not np.issubdtype(values.dtype, np.number) or values.size == 0:
        return False
    if np.issubdtype(values.dtype, np.integer):
        return bool((values >= 0).all())
    return bool(
        np.isfinite(values).all() and (values >= 0).all() and (values == np.round(values)).all()
    )


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
    """Per-cell QC metrics with scanpy on the counts (or on X for non-count data)."""
    import numpy as np
    import scanpy as sc

    from . import _report
    from ._keys import Key

    adata = ctx.adata
    layer = None
    if Key.layers.counts in adata.layers:
        layer, ctx.counts_source = Key.layers.counts, f"layers['{Key.layers.counts}']"
        ctx.counts = adata.layers[Key.layers.counts]
    elif _is_integer_valued(adata.X):
        ctx.counts_source, ctx.counts = "X", adata.X
    top = [n for n in (10, 50, 100, 200, 500) if n < adata.n_vars]
    obs_qc, _ = sc.pp.calculate_qc_metrics(
        adata, layer=layer, percent_top=top or None, inplace=False, log1p=True
    )
    matrix = ctx.counts if ctx.counts is not None else adata.X
    mito = np.asarray(adata.var_names.str.lower().str.startswith("mt-"))
    if mito.any():
        mt = np.asarray(matrix[:, mito].sum(axis=1)).ravel()
        total = obs_qc["total_counts"].to_numpy()
        obs_qc["pct_counts_mt"] = np.divide(
            100 * mt, total, out=np.zeros_like(mt, dtype=float), where=total > 0
        )
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


def step_latent(ctx: RunContext) -> None:
    """Latent cell states with scVI (counts only)."""
    from . import latent

    if ctx.counts is None:
        ctx.summary["latent"] = "skipped: the input has no counts"
        return
    model = latent.fit(ctx.work, max_epochs=ctx.epochs, seed=ctx.seed)
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
    genome = landscape.fit_grn(work, seed=ctx.seed, **kwargs)
    edges = get.grn_edges(work)
    _report.write_table(edges, ctx.out / "grn_edges.csv", index=False)
    ctx.files.append("grn_edges.csv")
    params = work.uns[Key.uns.genome]["params"]
    ctx.summary["grn"] = {
        "mode": str(params["mode"]),
        "n_genes": genome.n_genes,
        "n_edges": len(edges),
        "heldout_r2_median": round(float(params["val_r2_median"]), 3),
    }


def step_landscape(ctx: RunContext) -> None:
    """Attractors, saddles, paths and the quasi-potential grid -> attractors.csv, paths.csv,
    landscape_grid.csv."""
    import numpy as np
    import pandas as pd

    from . import landscape

    land = landscape.fit_landscape(ctx.work, groupby=ctx.groupby, seed=ctx.seed)
    land.attractors.to_csv(ctx.out / "attractors.csv", index=False)
    land.paths.to_csv(ctx.out / "paths.csv", index=False)
    grid = land.grid
    yy, xx = np.meshgrid(np.asarray(grid["y"]), np.asarray(grid["x"]), indexing="ij")
    pd.DataFrame(
        {
            "x": xx.ravel(),
            "y": yy.ravel(),
            "U": np.asarray(grid["U"]).ravel(),
            "U_empirical": np.asarray(grid["U_empirical"]).ravel(),
        }
    ).to_csv(ctx.out / "landscape_grid.csv", index=False)
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


def step_plot(ctx: RunContext) -> None:
    """UMAP figures coloured by cell type (and by pseudotime), as PNG and PDF."""
    import numpy as np

    from . import _report
    from ._keys import Key

    work = ctx.work
    umap = np.asarray(work.obsm[Key.obsm.umap])
    labels = work.obs[ctx.groupby] if ctx.groupby is not None else None
    title = f"{Path(ctx.input).name}: {ctx.adata.n_obs} cells"
    fig = _report.embedding_figure(umap, labels=labels, title=title)
    for path in _report.save_figure(fig, ctx.out / "umap"):
        ctx.files.append(path.name)
    if Key.obs.pseudotime in work.obs:
        fig = _report.embedding_figure(
            umap, values=work.obs[Key.obs.pseudotime].to_numpy(), title=f"{title}: pseudotime"
        )
        for path in _report.save_figure(fig, ctx.out / "umap_pseudotime"):
            ctx.files.append(path.name)


def step_save(ctx: RunContext) -> None:
    """Everything computed, in one .h5ad (round-trips without pickle)."""
    from . import io

    io.write(ctx.work, ctx.out / "results.h5ad")
    ctx.files.append("results.h5ad")


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
    Step("plot", step_plot, "UMAPs by cell type and pseudotime -> umap*.png, umap*.pdf"),
    Step("save", step_save, "-> results.h5ad"),
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


def run_pipeline(
    adata: AnnData,
    out: str | Path,
    *,
    groupby: str | None = None,
    root: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    input: str = "AnnData",
    steps: Sequence[Step] | None = None,
) -> RunContext:
    """Run the main job's steps on ``adata`` and write their results into ``out``.

    Parameters
    ----------
    adata
        The data as read; not modified.
    out
        Output folder (created if needed).
    groupby
        obs column with cell types; defaults to ``"celltype"`` when present.
    root
        Root group of the pseudotime (default ``"progenitor"`` when ``groupby`` has it).
    epochs
        scVI training epochs (default: chosen from the data size).
    seed
        Seed for everything random (PCA, neighbours, UMAP).
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
        ``groupby`` is not an obs column (the message lists them), or the data are empty.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> from gclandscape.cli import run_pipeline
    >>> ctx = run_pipeline(gcl.datasets.krumsiek11(), "out")  # doctest: +SKIP
    >>> ctx.files  # doctest: +SKIP
    ['qc.csv', 'umap.png', 'umap.pdf', 'summary.json']
    """
    import datetime

    from . import __version__, _report
    from ._errors import GclError

    if adata.n_obs < 3 or adata.n_vars < 1:
        raise GclError(
            f"The input has {adata.n_obs} cells x {adata.n_vars} genes; the run needs at least "
            "3 cells and 1 gene."
        )
    groupby = _resolve_groupby(adata, groupby)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if root is not None:
        if groupby is None:
            raise GclError("--root needs --groupby (the obs column the root group is in).")
        groups = sorted(set(adata.obs[groupby].astype(str)))
        if str(root) not in groups:
            raise GclError(
                f"root group {root!r} is not in obs[{groupby!r}]. Available groups: "
                f"{', '.join(groups)}."
            )
    ctx = RunContext(
        adata=adata, out=out, input=input, groupby=groupby, root=root, epochs=epochs, seed=seed
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
    timings = []
    for i, step in enumerate(steps, start=1):
        _log.info("[%d/%d] %s: %s", i, len(steps), step.name, step.description)
        start = time.perf_counter()
        step.func(ctx)
        seconds = time.perf_counter() - start
        timings.append({"name": step.name, "seconds": round(seconds, 3)})
        _log.info("[%d/%d] %s done in %.2f s", i, len(steps), step.name, seconds)
    ctx.files.append("summary.json")
    ctx.summary.update(
        steps=timings,
        files=list(ctx.files),
        out=str(out),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _report.write_json(ctx.summary, out / "summary.json")
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
    help="Output folder (created if needed).",
)
@click.option("--groupby", default=None, help="obs column with cell types [default: celltype].")
@click.option(
    "--root", default=None, help="Root group of the pseudotime [default: progenitor if present]."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--epochs", default=None, type=int, help="scVI epochs [default: from data size].")
def run_command(
    input: str | None,
    out: Path,
    groupby: str | None,
    root: str | None,
    seed: int,
    epochs: int | None,
) -> None:
    """Run the main job on INPUT and write its results into --out.

    INPUT is a file or folder gcl.io.read understands (.h5ad, 10x .h5 or Matrix Market
    folder, .loom, .csv/.tsv, .zarr, BEELINE folder) or a built-in dataset name
    (see `gclandscape datasets`); default: the embedded `myeloid` dataset.
    """
    from . import _report
    from ._errors import GclError

    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("gclandscape: %(message)s"))
    previous = _log.level
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    try:
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
            adata, out, groupby=groupby, root=root, epochs=epochs, seed=seed, input=label
        )
    except GclError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        _log.removeHandler(handler)
        _log.setLevel(previous)
    click.echo(_report.format_summary(ctx.summary))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
