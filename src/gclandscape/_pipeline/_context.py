"""What every step of ``gclandscape run`` shares: the run's defaults, :class:`RunContext`
and :class:`Step`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

#: The logger every step reports to (the command sends it to stderr).
log = logging.getLogger("gclandscape")

#: Name of the built-in dataset ``gclandscape run`` uses when no INPUT is given.
DEFAULT_INPUT = "myeloid"

#: scVI minibatch size of the run (scvi-tools' default is 128): fewer, larger steps per epoch.
RUN_BATCH_SIZE = 256
#: Bootstrap refits of fit_grn for the edge confidence in the run (the library default is 5).
RUN_N_BOOTSTRAP = 2
#: Cells simulated per condition for each knockout of the screen.
RUN_N_SIM_CELLS = 500

#: Without --knockout, a genome with more regulators than this screens only this many: those
#: with the largest total outgoing |weight|. Measured on the Paul15 counts (200 modelled genes,
#: 500 cells per knockout): ~9 s per knockout on 2 cores, so 30 knockouts alone took 281 s.
MAX_SCREEN = 15
#: Random knockouts in the null of the screen's perturbation score.
RUN_N_NULL = 10


def run_epochs(n_cells: int) -> int:
    """scVI epochs of ``gclandscape run`` when --epochs is not given: ``120000 / n_cells``
    (about 470 minibatches of :data:`RUN_BATCH_SIZE` cells), between 5 and 100.

    The library default (:func:`gclandscape.latent.default_max_epochs`) trains 200 epochs on
    3,000 cells. Measured on the myeloid default (3,000 cells, one thread): 200 epochs of 128
    cells took 88 s CPU; 20-60 epochs of 256 cells give the same cell-type kNN accuracy of the
    latent (0.88) and the same pseudotime order (Spearman with simulation time 0.34-0.37), at a
    validation ELBO 5-10 % above the 200-epoch one. Early stopping may end training sooner.
    The floor was 20 epochs; on ``myeloid(n_cells=50000, n_targets=1989)`` 5 epochs (975
    minibatches, 81 s on 2 cores) gave the same kNN accuracy as 20 (0.884) and a better
    pseudotime order (0.50 against 0.15) in a quarter of the time (302 s), the largest step of
    a 50,000-cell run (``benchmarks/README.md``, "Scale").

    Examples
    --------
    >>> run_epochs(3000), run_epochs(500), run_epochs(100_000)
    (40, 100, 5)
    """
    return int(min(100, max(5, round(120_000 / max(n_cells, 1)))))


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
    organism: str | None = None  # --organism: annotate regulators and model them only
    prior: Path | None = None  # --prior: a local TF -> target network file
    n_genomes: int = 1
    #: the genes the genome models: the expressed regulators with --organism, else None
    #: (fit_grn's default genes)
    genome_genes: list[str] | None = None
    counts: Any = None  # the count matrix (layer or X), or None for non-count data
    counts_source: str | None = None
    work: AnnData | None = None
    model: Any = None  # the scVI LatentModel (decodes the screen's knockouts over all genes)
    qc: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    #: figures for the report: name -> (PNG path, caption), in the order they were drawn
    figures: dict[str, tuple[Path, str]] = field(default_factory=dict)
    #: the knockout screen (tidy table of gcl.sim.screen) and the strongest knockout's result
    screen: pd.DataFrame | None = None
    strongest: Any = None
    #: predicted log2 fold change of every gene (rows) for every screened knockout (columns)
    log2fc: pd.DataFrame | None = None
    #: name, description, wall and CPU seconds of every step finished so far
    timings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One named step of the main job: ``func(ctx)`` reads and extends the context."""

    name: str
    func: Callable[[RunContext], None]
    description: str = ""


def default_root(ctx: RunContext) -> str | None:
    """The root group of the pseudotime: --root, else 'progenitor' when the groups have it."""
    if ctx.root is not None or ctx.groupby is None:
        return ctx.root
    groups = set(ctx.work.obs[ctx.groupby].astype(str))
    return "progenitor" if "progenitor" in groups else None
