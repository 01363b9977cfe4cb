"""Perturbation screens: many perturbations against one shared wild-type simulation.

Locally with a progress bar, or on a ``dask.distributed`` cluster. With ``checkpoint`` each
perturbation's rows are written to a Parquet file as soon as it finishes (see
:mod:`._checkpoint`: named by a fingerprint of everything the rows depend on, checked when
read), so a rerun skips what is done and a screen that failed midway resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._utils import logger
from ..landscape._perturbations import Knockout, Overexpression, Perturbation
from . import _checkpoint
from ._result import tidy
from ._simulation import (
    DT,
    STEADY_DT_MAX,
    STEADY_SAFETY,
    STEADY_STATE,
    T_DEVELOP,
    T_RELAX,
    Setup,
    Simulation,
    build_setup,
    check_memory,
    check_n_cells,
    check_perturbation,
    simulate,
)
from ._statistics import (
    MIN_FRACTION,
    N_BOOT,
    N_NULL,
    N_NULL_CELLS,
    P_LOST_CALL,
    fate_table,
    log2fc,
    null_scores,
    null_signature,
    score,
    score_pvalue,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..landscape import Genome

FATE_COLUMNS = [
    "perturbation", "fate", "wt", "perturbed", "delta", "ci_low", "ci_high", "p_value",
    "p_lost", "lost", "gained", "score", "score_pvalue", "q_value",
]  # fmt: skip
STEADY_COLUMNS = ["perturbation", "gene", "wt", "perturbed", "log2fc", "score", "score_pvalue"]
_KINDS = {"knockouts": Knockout, "overexpression": Overexpression}


def _perturbations(spec: Any, genes: list[str]) -> list[Perturbation]:
    if isinstance(spec, str):
        if spec not in _KINDS:
            raise GclError(
                f"screen: unknown screen {spec!r}; use 'knockouts', 'overexpression' or a list "
                "of gcl.sim perturbations."
            )
        return [_KINDS[spec](g) for g in genes]
    if isinstance(spec, Perturbation):
        spec = [spec]
    perts = list(spec)
    if not perts:
        raise GclError("screen: the list of perturbations is empty.")
    for p in perts:
        check_perturbation(p, genes)
    names = [p.name for p in perts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GclError(f"screen: perturbations listed twice: {', '.join(dup)}.")
    return perts


def _normalise(df: pd.DataFrame, steady: bool, *, final: bool = False) -> pd.DataFrame:
    """Fixed columns and dtypes, so a table read back from Parquet equals a computed one.

    One perturbation's rows (``final=False``) have no ``q_value``: it needs the whole table.
    """
    cols = STEADY_COLUMNS if steady else FATE_COLUMNS if final else FATE_COLUMNS[:-1]
    df = df.reindex(columns=cols).reset_index(drop=True)
    for c in cols:
        if c in ("perturbation", "fate", "gene"):
            df[c] = df[c].astype(str).astype(object)
        elif c in ("lost", "gained"):
            df[c] = df[c].astype(bool)
        else:
            df[c] = df[c].astype(np.float64)
    return df


def _screen_one(
    setup: Setup,
    wt: Simulation,
    perturbation: Perturbation,
    n_cells: int,
    seed: int,
    null: np.ndarray,
    keep: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, Simulation]:
    """Rows of one perturbation (runs on a worker for the Dask backend); with ``keep``, the
    rows and the mutant's simulation (for :func:`screen_members`' ``simulations``)."""
    mut = simulate(setup, perturbation, n_cells=n_cells, seed=seed)
    rows = _rows(setup, wt, mut, perturbation, seed, null)
    return (rows, mut) if keep else rows


def _rows(
    setup: Setup,
    wt: Simulation,
    mut: Simulation,
    perturbation: Perturbation,
    seed: int,
    null: np.ndarray,
) -> pd.DataFrame:
    """The table rows of one simulated perturbation."""
    value = score(setup, wt, mut, perturbation)
    pval = score_pvalue(value, null)
    if setup.mode == STEADY_STATE:
        m_wt, m_pt = wt.end.mean(0), mut.end.mean(0)
        df = pd.DataFrame(
            {
                "perturbation": perturbation.name,
                "gene": setup.genome_obj().genes,
                "wt": m_wt,
                "perturbed": m_pt,
                "log2fc": log2fc(m_wt, m_pt),
                "score": value,
                "score_pvalue": pval,
            }
        )
        return _normalise(df, True)
    fates = fate_table(wt, mut, setup.ref_labels, seed)
    return _normalise(tidy(perturbation.name, fates, value, pval), False)


def _fingerprint(setup: Setup, n_cells: int, seed: int, n_null: int) -> str:
    """Everything a screen row depends on: genome, start cells, fate references (attractor
    states and cell-type labels), settings, simulation constants and the package version."""
    from .. import __version__

    return _checkpoint.fingerprint(
        {
            "version": __version__,
            "genomes": setup.members,
            "starts": setup.starts,
            "ref_states": setup.ref_states,
            "ref_labels": list(setup.ref_labels),
            "novel_tol": setup.novel_tol,
            "mode": setup.mode,
            "scale": setup.scale,
            "settings": [n_cells, seed, n_null],
            "constants": [
                T_DEVELOP,
                T_RELAX,
                DT,
                STEADY_DT_MAX,
                STEADY_SAFETY,
                N_BOOT,
                N_NULL_CELLS,
                MIN_FRACTION,
                P_LOST_CALL,
            ],
        }
    )


def screen(
    adata: AnnData,
    perturbations: str | Sequence[Perturbation] = "knockouts",
    *,
    genome_key: str = Key.uns.genome,
    landscape_key: str = Key.uns.landscape,
    root: Any = None,
    backend: str = "local",
    client: Any = None,
    checkpoint: str | Path | None = None,
    n_cells: int = 1000,
    seed: int = 0,
    n_null: int = N_NULL,
    progress: bool = True,
) -> pd.DataFrame:
    """Run many perturbations against one shared wild-type simulation.

    Every perturbation is simulated exactly as :func:`perturb` does (same start cells, noise,
    genome ensemble, fate naming and statistics; the wild type is simulated once), so a row
    equals the corresponding :meth:`PerturbationResult.to_frame` row for the same seed. The perturbation
    score's null is shared by perturbations of one kind and size.

    Parameters
    ----------
    adata
        Annotated data matrix with a genome and (for a developmental genome) a landscape.
    perturbations
        ``"knockouts"`` (every gene of the genome), ``"overexpression"`` (every gene, at twice
        its highest observed level) or a list of perturbations.
    genome_key, landscape_key, root, n_cells, seed, n_null
        As in :func:`perturb`.
    backend
        ``"local"`` (this process, with a progress bar) or ``"dask"`` (a
        ``dask.distributed`` cluster: ``client`` when given, else a new ``LocalCluster`` that
        is closed afterwards).
    client
        A ``distributed.Client`` for ``backend="dask"``.
    checkpoint
        Folder for one Parquet file per finished perturbation. A rerun with the same folder
        reads finished perturbations instead of simulating them when nothing their rows
        depend on changed: the genome, the landscape's attractors and cell-type labels, the
        start cells, ``n_cells``, ``seed``, ``n_null`` and the package version. A file that
        is unreadable (truncated) or holds another perturbation's rows (copied over) is
        recomputed and replaced, with a warning that names it. Files are written atomically.
    progress
        Show a progress bar (local backend).

    Returns
    -------
    Tidy DataFrame, one row per perturbation and fate: ``perturbation``, ``fate``, ``wt``,
    ``perturbed``, ``delta``, ``ci_low``, ``ci_high``, ``p_value``, ``p_lost`` (share of the
    genome ensemble's members in which the fate is lost; 0 or 1 for a single genome),
    ``lost`` (``p_lost`` ≥ 0.5), ``gained``, ``score``, ``score_pvalue`` and ``q_value``
    (Benjamini-Hochberg adjusted ``p_value`` over every row of the table,
    ``scipy.stats.false_discovery_control``). For a steady-state genome one row per
    perturbation and gene:
    ``perturbation``, ``gene``, ``wt``, ``perturbed``, ``log2fc``, ``score``,
    ``score_pvalue``.

    Raises
    ------
    GclError
        An unknown screen name or backend, a gene not in the genome, duplicated
        perturbations, an ``n_cells`` that cannot fit in the memory available, and everything
        :func:`perturb` checks. A perturbation that fails re-raises after every other
        finished perturbation was checkpointed.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (200, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> table = gcl.sim.screen(adata, "knockouts", n_cells=100, n_null=2, progress=False)
    >>> table.loc[table["lost"], ["perturbation", "fate"]].values.tolist()
    [['A KO', 'A-high'], ['B KO', 'B-high']]
    """
    return screen_members(
        adata, perturbations, None,
        genome_key=genome_key, landscape_key=landscape_key, root=root, backend=backend,
        client=client, checkpoint=checkpoint, n_cells=n_cells, seed=seed, n_null=n_null,
        progress=progress,
    )  # fmt: skip


def screen_members(
    adata: AnnData,
    perturbations: str | Sequence[Perturbation],
    members: Sequence[Genome] | None,
    *,
    genome_key: str = Key.uns.genome,
    landscape_key: str = Key.uns.landscape,
    root: Any = None,
    backend: str = "local",
    client: Any = None,
    checkpoint: str | Path | None = None,
    n_cells: int = 1000,
    seed: int = 0,
    n_null: int = N_NULL,
    progress: bool = True,
    simulations: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`screen` with the genome ensemble given as ``members`` (``None``: the stored
    genome's members). Internal entry point, as :func:`~._perturb.perturb_members`.

    ``simulations``: a dict filled with what the screen simulated, so a caller that needs
    each perturbation's cells (``gclandscape run``'s whole-transcriptome log2FC) does not
    simulate them again: ``"setup"`` (:class:`Setup`), ``"wt"`` (the shared wild type) and,
    under each perturbation's name, its mutant :class:`Simulation` (end states only, no
    snapshots). Perturbations read from a checkpoint were not simulated and are absent.
    """
    if backend not in ("local", "dask"):
        raise GclError(f"backend must be 'local' or 'dask', got {backend!r}.")
    if client is not None and backend != "dask":
        raise GclError("client is used with backend='dask' only; pass backend='dask'.")
    n_cells = check_n_cells(n_cells)
    setup = build_setup(
        adata, genome_key=genome_key, landscape_key=landscape_key, root=root, members=members
    )
    perts = _perturbations(perturbations, setup.genome_obj().genes)
    check_memory(setup, n_cells, n_save=None)
    steady = setup.mode == STEADY_STATE
    folder = None
    done: dict[str, pd.DataFrame] = {}
    fingerprint = _fingerprint(setup, n_cells, seed, n_null)
    if checkpoint is not None:
        folder = Path(checkpoint)
        folder.mkdir(parents=True, exist_ok=True)
        for p in perts:
            f = _checkpoint.checkpoint_file(folder, p.name, fingerprint)
            if f.exists():
                rows = _checkpoint.read(
                    f, name=p.name, fp=fingerprint, normalise=lambda d: _normalise(d, steady)
                )
                if rows is not None:
                    done[p.name] = rows
        if done:
            logger.info(
                "screen: %d of %d perturbations read from %s", len(done), len(perts), folder
            )
    todo = [p for p in perts if p.name not in done]
    keep = simulations is not None
    if todo:
        wt = simulate(setup, None, n_cells=n_cells, seed=seed)
        if keep:
            simulations.update(setup=setup, wt=wt)
        nulls: dict[tuple, np.ndarray] = {}
        for p in todo:
            sig = null_signature(p)
            if sig not in nulls:
                nulls[sig] = null_scores(setup, p, n_null, seed) if n_null else np.zeros(0)

        def finished(p: Perturbation, out: Any) -> None:
            df = out
            if keep:
                df, simulations[p.name] = out
            done[p.name] = df
            if folder is not None:
                f = _checkpoint.checkpoint_file(folder, p.name, fingerprint)
                _checkpoint.write(df, f, name=p.name, fp=fingerprint)

        if backend == "local":
            _run_local(setup, wt, todo, n_cells, seed, nulls, finished, progress, keep)
        else:
            _run_dask(setup, wt, todo, n_cells, seed, nulls, finished, client, keep)
    table = pd.concat([done[p.name] for p in perts], ignore_index=True)
    if steady:
        return _normalise(table, steady)
    from scipy.stats import false_discovery_control

    # Benjamini-Hochberg over every (perturbation, fate) test of this screen: the family is
    # the whole table, so it is computed here and not stored in the per-perturbation files
    table["q_value"] = false_discovery_control(table["p_value"].to_numpy(dtype=np.float64))
    return _normalise(table, steady, final=True)


def _run_local(setup, wt, todo, n_cells, seed, nulls, finished, progress, keep=False) -> None:
    from tqdm.auto import tqdm

    for p in tqdm(todo, desc="screen", unit="perturbation", disable=not progress):
        finished(p, _screen_one(setup, wt, p, n_cells, seed, nulls[null_signature(p)], keep))


def _run_dask(setup, wt, todo, n_cells, seed, nulls, finished, client, keep=False) -> None:
    from distributed import Client, LocalCluster, as_completed

    own = client is None
    if own:
        cluster = LocalCluster(threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        setup_f, wt_f = client.scatter([setup, wt], broadcast=True)
        futures = {
            client.submit(
                _screen_one, setup_f, wt_f, p, n_cells, seed, nulls[null_signature(p)], keep,
                pure=False, key=f"gcl-screen-{i}-{abs(hash(p.name))}",
            ): p
            for i, p in enumerate(todo)
        }  # fmt: skip
        first_error: tuple[Perturbation, BaseException] | None = None
        for fut in as_completed(futures):
            p = futures[fut]
            if fut.status == "finished":
                finished(p, fut.result())
            elif first_error is None:
                first_error = (p, fut.exception())
        if first_error is not None:
            p, err = first_error
            raise GclError(
                f"screen: {p.name} failed on the cluster ({type(err).__name__}: {err}); the "
                "finished perturbations are checkpointed when checkpoint= is given, so a rerun "
                "resumes."
            ) from err
    finally:
        if own:
            client.close()
            cluster.close()
