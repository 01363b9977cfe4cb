"""The ``gclandscape`` command line: ``gclandscape datasets`` and ``gclandscape run``.

``run`` is the main job. It reads its input (a file or folder :func:`gclandscape.io.read`
understands, or a built-in dataset name) and runs :func:`run_pipeline`: a list of
:class:`Step` objects, each a function of a :class:`RunContext`, timed (wall clock and CPU)
and logged to stderr: QC, recipe (with ``--organism``: the regulator annotation), scVI, UMAP,
pseudotime, the genome (fit_grn; ``--prior``, ``--n-genomes``), the landscape, a knockout
screen of the regulators with each knockout's predicted log2FC over every gene, the figures
(gcl.pl, PNG and PDF), ``results.h5ad`` and one self-contained ``report.html`` (figures
embedded as base64 PNG, the key tables, every step's time). Extend the job by appending steps to :data:`PIPELINE` (or passing ``steps=``).

This module holds the click commands; the job itself lives in :mod:`gclandscape._pipeline`
(``_context``: defaults, RunContext, Step; ``_input``; ``_steps_cells``, ``_steps_genome``,
``_steps_output``: the steps; ``_knockouts``; ``_regulators``: --organism and --prior;
``_outdir``: the staged output folder;
``_runner``: PIPELINE and run_pipeline). Its names are re-exported here.

Only click and the standard library are imported at module level, so ``gclandscape --help``
is fast; scanpy, matplotlib and the datasets load inside the commands.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from ._pipeline._context import (
    DEFAULT_INPUT,
    MAX_SCREEN,
    RUN_BATCH_SIZE,
    RUN_N_BOOTSTRAP,
    RUN_N_NULL,
    RUN_N_SIM_CELLS,
    RunContext,
    Step,
    run_epochs,
)
from ._pipeline._context import log as _log
from ._pipeline._input import load_input
from ._pipeline._knockouts import check_knockouts, regulators, screen_genes
from ._pipeline._outdir import check_out
from ._pipeline._runner import PIPELINE, check_real_data_options, run_pipeline
from ._pipeline._steps_cells import step_embed, step_latent, step_pseudotime, step_qc, step_recipe
from ._pipeline._steps_genome import step_grn, step_landscape, step_screen
from ._pipeline._steps_output import step_plot, step_report, step_save

__all__ = [
    "DEFAULT_INPUT",
    "MAX_SCREEN",
    "PIPELINE",
    "RUN_BATCH_SIZE",
    "RUN_N_BOOTSTRAP",
    "RUN_N_NULL",
    "RUN_N_SIM_CELLS",
    "RunContext",
    "Step",
    "check_knockouts",
    "load_input",
    "main",
    "regulators",
    "run_epochs",
    "run_pipeline",
    "screen_genes",
    "step_embed",
    "step_grn",
    "step_landscape",
    "step_latent",
    "step_plot",
    "step_pseudotime",
    "step_qc",
    "step_recipe",
    "step_report",
    "step_save",
    "step_screen",
]


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
    # OpenMP's wait policy is left to the user: forcing passive waiting slowed a quiet
    # machine by a fifth (benchmarks/README.md, "Scale", thirteenth session).


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
@click.option(
    "--organism",
    type=click.Choice(["human", "mouse"], case_sensitive=False),
    default=None,
    help="Flag the transcription factors (gcl.pp.annotate_regulators); the genome then models "
    "the regulators detected in >= 5 % of the cells [default: the most variable genes].",
)
@click.option(
    "--prior",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Local TF -> target network (CSV/TSV: source, target, sign '+'/'-'): the edges the "
    "genome may have (gcl.datasets.prior_network(path=FILE)).",
)
@click.option(
    "--n-genomes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Genome ensemble size: each knockout's p_lost is the share of members losing a fate "
    "(with 1 genome it is 0 or 1; 5 gives calibrated calls).",
)
def run_command(input: str | None, out: Path, seed: int, **options: Any) -> None:
    """Run the main job on INPUT and write its results into --out.

    INPUT is a file or folder gcl.io.read understands (.h5ad, 10x .h5 or Matrix Market
    folder, .loom, .csv/.tsv, .zarr, BEELINE folder) or a built-in dataset name
    (see `gclandscape datasets`); default: the embedded `myeloid` dataset.

    Writes the tables (qc, grn_edges, attractors, paths, landscape_grid, screen,
    predicted_log2fc .csv), the figures (.png and .pdf), results.h5ad, summary.json and a
    self-contained report.html.
    """
    from . import _report
    from ._errors import GclError

    # Every other option is a keyword of run_pipeline of the same name, passed on as is: a new
    # option is one @click.option above (and the keyword in run_pipeline and RunContext).
    # Repeatable options arrive as tuples; an empty one means "not given".
    options = {k: (list(v) or None) if isinstance(v, tuple) else v for k, v in options.items()}
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("gclandscape: %(message)s"))
    previous = _log.level
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    try:
        check_out(out)  # before the input is read: a bad --out fails in a second
        check_real_data_options(options["organism"], options["prior"], options["n_genomes"])
        start = time.perf_counter()
        _log.info("reading %s", input or DEFAULT_INPUT)
        adata, label = load_input(input, seed=seed)
        _log.info(
            "read %d cells x %d genes in %.2f s",
            adata.n_obs,
            adata.n_vars,
            time.perf_counter() - start,
        )
        ctx = run_pipeline(adata, out, seed=seed, input=label, **options)
    except GclError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        _log.removeHandler(handler)
        _log.setLevel(previous)
    click.echo(_report.format_summary(ctx.summary))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
