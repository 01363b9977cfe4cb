"""The steps of ``gclandscape run`` in order, and :func:`run_pipeline`, which runs them into a
staged output folder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

from ._context import RUN_N_BOOTSTRAP, RUN_N_SIM_CELLS, RunContext, Step, log
from ._knockouts import check_knockout_names
from ._outdir import OutputFolder, check_out
from ._regulators import read_prior
from ._steps_cells import step_embed, step_latent, step_pseudotime, step_qc, step_recipe
from ._steps_genome import step_grn, step_landscape, step_screen
from ._steps_output import step_plot, step_report, step_save

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
    Step("screen", step_screen, "knockout screen -> screen.csv, predicted_log2fc.csv"),
    Step("plot", step_plot, "UMAPs, genome, landscape and screen figures -> *.png, *.pdf"),
    Step("save", step_save, "-> results.h5ad"),
    Step("report", step_report, "-> report.html (figures embedded, tables, step times)"),
]


def _resolve_groupby(adata: AnnData, groupby: str | None) -> str | None:
    from .._errors import GclError
    from .._keys import Key

    if groupby is None:
        return Key.obs.celltype if Key.obs.celltype in adata.obs else None
    if groupby not in adata.obs:
        cols = ", ".join(map(str, adata.obs.columns)) or "(none)"
        raise GclError(
            f"groupby column {groupby!r} is not in the data's obs. Available obs columns: "
            f"{cols}. Pass one of them with --groupby, or leave it out."
        )
    return groupby


def check_real_data_options(
    organism: str | None, prior: str | Path | None, n_genomes: int
) -> tuple[str | None, Path | None, int]:
    """--organism, --prior and --n-genomes checked before the data are processed: the prior
    file is read once here, so a wrong path or format fails in a second."""
    from .._errors import GclError

    if organism is not None:
        if not isinstance(organism, str) or organism.lower() not in ("human", "mouse"):
            raise GclError(
                f"--organism {organism!r} is not available; choose human or mouse, or leave "
                "it out to model the most variable genes."
            )
        organism = organism.lower()
    if isinstance(n_genomes, bool) or int(n_genomes) != n_genomes or n_genomes < 1:
        raise GclError(f"--n-genomes must be a positive integer, got {n_genomes!r}.")
    if prior is not None:
        prior = Path(prior).expanduser()
        edges = read_prior(prior, organism)  # GclFileNotFoundError / GclFormatError
        if not len(edges):
            raise GclError(
                f"--prior {prior} has no edges; pass a CSV/TSV with rows source, target, sign, "
                "or leave --prior out."
            )
    return organism, prior, int(n_genomes)


def run_pipeline(
    adata: AnnData,
    out: str | Path,
    *,
    groupby: str | None = None,
    root: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    knockouts: Sequence[str] | None = None,
    organism: str | None = None,
    prior: str | Path | None = None,
    n_genomes: int = 1,
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
    organism
        ``"human"`` or ``"mouse"``: flag the transcription factors after the recipe
        (:func:`gclandscape.pp.annotate_regulators`); the genome then models the regulators
        detected in at least 5 % of the cells (at most 200, the most variable). ``None``:
        fit_grn's default genes.
    prior
        A local TF → target network file (CSV/TSV: source, target, sign), read with
        :func:`gclandscape.datasets.prior_network` and kept to the genome's genes: the
        edges the genome may have. Works without ``organism`` when its names match the data.
    n_genomes
        Members of the genome ensemble (``fit_grn(n_genomes=...)``); with more than one the
        screen's ``p_lost`` is a calibrated share instead of 0 or 1.
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
        lists them), a knockout gene is not a regulator (listed), the data are empty,
        ``out`` cannot be written or holds files that are not an earlier result, an unknown
        ``organism``, a ``prior`` file that is missing or unreadable, ``n_genomes < 1``; or,
        once the data are processed, fewer than 2 expressed regulators or no prior edge
        between the genome's genes.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> from gclandscape.cli import run_pipeline
    >>> ctx = run_pipeline(gcl.datasets.krumsiek11(), "out")  # doctest: +SKIP
    >>> ctx.files  # doctest: +SKIP
    ['qc.csv', 'umap.png', 'umap.pdf', 'summary.json']
    """
    from .._errors import GclError

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
    knockouts = check_knockout_names(adata, knockouts)
    organism, prior, n_genomes = check_real_data_options(organism, prior, n_genomes)
    folder = OutputFolder(out)
    try:
        ctx = _run_steps(
            adata, folder, input=input, groupby=groupby, root=root, epochs=epochs, seed=seed,
            knockouts=knockouts, n_bootstrap=n_bootstrap, n_sim_cells=n_sim_cells, steps=steps,
            organism=organism, prior=prior, n_genomes=n_genomes,
        )  # fmt: skip
        ctx.out = folder.commit()
    except BaseException:  # an interrupted or failed run (or move) leaves --out as it was
        folder.discard()
        raise
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
    organism: str | None,
    prior: Path | None,
    n_genomes: int,
) -> RunContext:
    """Run ``steps`` with their output in ``folder.staging``; summary.json is written last."""
    import datetime

    from .. import __version__, _report

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
        organism=organism,
        prior=prior,
        n_genomes=n_genomes,
    )
    ctx.summary.update(
        input=input,
        n_cells=int(adata.n_obs),
        n_genes=int(adata.n_vars),
        groupby=groupby,
        cell_types=None,
        seed=seed,
        organism=organism,
        n_genomes=n_genomes,
        gclandscape_version=__version__,
    )
    if groupby is not None:
        counts = adata.obs[groupby].astype(str).value_counts()
        ctx.summary["cell_types"] = {str(k): int(v) for k, v in counts.items()}
    steps = PIPELINE if steps is None else list(steps)
    for i, step in enumerate(steps, start=1):
        log.info("[%d/%d] %s: %s", i, len(steps), step.name, step.description)
        start, cpu = time.perf_counter(), time.process_time()
        step.func(ctx)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        ctx.timings.append({
            "name": step.name, "description": step.description,
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
        })  # fmt: skip
        log.info("[%d/%d] %s done in %.2f s (CPU %.2f s)", i, len(steps), step.name, seconds, cpu)
    ctx.files.append("summary.json")
    ctx.summary.update(
        steps=[{k: t[k] for k in ("name", "seconds", "cpu_seconds")} for t in ctx.timings],
        files=list(ctx.files),
        out=str(folder.final),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _report.write_json(ctx.summary, ctx.out / "summary.json")
    return ctx
