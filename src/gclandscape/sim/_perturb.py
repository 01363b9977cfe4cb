"""Re-decode an edited genome: :func:`perturb`.

It develops root cells under the wild-type and the mutated genome (every member of the
genome ensemble, with one noise stream; :mod:`._simulation`), compares fates and expression
(:mod:`._statistics`), decodes the simulated cells over all genes with the latent model, and
returns a :class:`~._result.PerturbationResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._utils import logger
from ..landscape._perturbations import Perturbation
from ._result import PerturbationResult
from ._simulation import (
    N_SAVE,
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
from ._statistics import N_NULL, empty_fate_table, fate_table, log2fc, null_scores, score

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..landscape import Genome
    from ..latent import LatentModel

#: Simulated cells whose paths are kept for the trajectory figure.
N_TRAJ = 50


# ------------------------------------------------------------------------------- decoding
def _decode(
    adata: AnnData, setup: Setup, model: LatentModel, wt: Simulation, mut: Simulation
) -> tuple[AnnData, pd.Series]:
    """Map simulated regulator states to the latent (kNN regression fitted on the observed
    cells) and decode every gene with the scvi-tools decoder (the cells of every member of
    the ensemble, pooled)."""
    import anndata as ad
    from sklearn.neighbors import KNeighborsRegressor

    from ..landscape._cell_states import model_states

    if Key.obsm.latent not in adata.obsm:
        raise GclError(
            f"decode needs the latent adata.obsm[{Key.obsm.latent!r}] of the latent model; "
            "run gcl.latent.fit(adata) first, or pass decode=False."
        )
    genome = setup.genome_obj()
    states, _ = model_states(adata, genome, setup.genome_key)
    latent = np.asarray(adata.obsm[Key.obsm.latent], dtype=np.float64)
    if latent.shape[1] != model.n_latent:
        raise GclError(
            f"adata.obsm[{Key.obsm.latent!r}] has {latent.shape[1]} dimensions but the latent "
            f"model has {model.n_latent}; pass the model that wrote it."
        )
    knn = KNeighborsRegressor(n_neighbors=min(15, len(states)), weights="distance")
    knn.fit(states / setup.scale, latent)
    z = knn.predict(np.vstack([wt.end, mut.end]) / setup.scale)
    expr = model.decode(z)
    n = len(wt.end)
    obs = pd.DataFrame(
        {Key.obs.condition: pd.Categorical(["wt"] * n + ["perturbed"] * len(mut.end),
                                            categories=["wt", "perturbed"])},
        index=[f"sim_{i}" for i in range(len(expr))],
    )  # fmt: skip
    decoded = ad.AnnData(
        np.log1p(expr * 1e4).astype(np.float32), obs=obs, var=pd.DataFrame(index=model.var_names)
    )
    m_wt, m_pt = expr[:n].mean(0), expr[n:].mean(0)
    eps = 1e-5  # 0.1 per 10,000
    fc = np.log2((m_pt.astype(np.float64) + eps) / (m_wt.astype(np.float64) + eps))
    fc = pd.Series(fc, index=model.var_names, name="log2fc")
    return decoded, fc


def _read_out(
    adata: AnnData, setup: Setup, fc: pd.Series, wt: Simulation, mut: Simulation
) -> tuple[pd.Series, str]:
    """``fc`` (the genome's genes) with every gene of the genome's readout added, in the
    order of ``adata.var_names``; unchanged when the genome has no readout."""
    from ..landscape._readout import readout_log2fc, stored_readout

    readout = stored_readout(adata, setup.genome_key, setup.genome_obj().genes)
    if readout is None:
        return fc, "none"
    other = readout_log2fc(readout, wt.end, mut.end)
    both = pd.concat([fc, other.drop(other.index.intersection(fc.index))])
    order = adata.var_names[adata.var_names.isin(both.index)]
    rest = both.index.difference(order, sort=False)  # none, unless the genome names others
    return both.reindex(order.append(rest)).rename("log2fc"), "readout"


def _trajectories(
    adata: AnnData, setup: Setup, landscape_key: str, wt: Simulation, mut: Simulation
) -> dict[str, np.ndarray]:
    """Paths of the first simulated cells (first member) on the landscape's basis."""
    from ..landscape import Landscape
    from ..landscape._cell_states import basis_coordinates, model_states

    if setup.mode == STEADY_STATE or wt.snapshots is None:
        return {}
    from sklearn.decomposition import PCA

    land = Landscape.from_adata(adata, landscape_key)
    genome = setup.genome_obj()
    states, _ = model_states(adata, genome, setup.genome_key)
    land_seed = int(land.params.get("seed", 0))
    if land.basis == "pca:regulators":  # the landscape's own map, even if a latent came later
        to_basis = PCA(n_components=2, random_state=land_seed).fit(states).transform
    else:
        basis = None if land.basis.startswith("pca:") else land.basis
        _, to_basis, _, _ = basis_coordinates(adata, states, basis, land_seed)
    out = {}
    for name, sim in (("wt", wt), ("perturbed", mut)):
        snaps = sim.snapshots[:, :N_TRAJ]
        out[name] = to_basis(snaps.reshape(-1, genome.n_genes)).reshape(*snaps.shape[:2], 2)
    return out


def perturb(
    adata: AnnData,
    perturbation: Perturbation,
    *,
    genome_key: str = Key.uns.genome,
    landscape_key: str = Key.uns.landscape,
    root: Any = None,
    n_cells: int = 1000,
    seed: int = 0,
    decode: bool = True,
    model: LatentModel | None = None,
    n_null: int = N_NULL,
) -> PerturbationResult:
    """Predict a perturbation's effect: develop root cells under the wild-type and the mutated
    genome and compare fates and expression.

    1. **Start cells**: the earliest three quarters (at least 10 cells) of the ``root`` group
       by the genome's time column (or pseudotime), because a perturbation applied after
       commitment has begun does not undo it; not only the very earliest cells, because a
       fitted genome is least accurate there (see :data:`EARLY_FRACTION`). ``root=None``
       takes the earlier half of all cells; without a time column, every cell of the group.
    2. **Development**: ``n_cells`` cells drawn from them develop for 40 time units under each
       genome with the same starts and noise (common random numbers), then relax 20 time
       units without noise. A genome ensemble (``fit_grn(..., n_genomes=K)``) develops the
       same cells with the same noise under every member.
    3. **Fates**: each end state is named by the nearest wild-type attractor of the landscape
       or observed cell-type centroid (root-mean-square distance in model coordinates scaled
       by each gene's maximum, over the genes the perturbation does not set); farther than
       half the distance between the two closest attractors (clipped to [0.05, 0.3]) it is
       ``"novel"``.
    4. **Statistics**: fate fractions averaged over the ensemble's members, paired
       bootstrap intervals (``scipy.stats.bootstrap``; members and cells resampled),
       McNemar's exact test per fate (median over members), ``p_lost`` (the share of members in which the fate is
       lost; ``lost_fates`` are those with ``p_lost`` ≥ 0.5), and a perturbation score
       against ``n_null`` random perturbations of the same kind and size on random genes
       (300 cells each), simulated only when the result's ``null_scores``, ``score_pvalue``
       or ``to_frame()`` is first read.
    5. **Every gene** (``log2fc``): the genome's genes from the simulation (mean levels,
       pseudocount 0.01); with ``decode=True`` and a latent ``model``, every other gene from
       the decoder (simulated end states mapped to the latent by a kNN regression fitted on
       the observed cells, then decoded; pseudocount 0.1 per 10,000); otherwise every other
       gene the genome's readout covers (``fit_grn``'s ridge regression of each gene's
       log-normalised expression on the genome's state,
       :mod:`gclandscape.landscape._readout`): each simulated cell's expression is predicted,
       averaged as normalised counts, and the log2 ratio taken with a pseudocount of 0.1
       normalised counts. A hand-built genome has no readout: the genome's genes only.

    A genome fitted in steady-state mode (no time signal) has no fates: the result is the
    shifted steady state reached from the observed cells (``expression``, ``log2fc``,
    ``decoded``) and an empty fate table. Its cells develop for the same 40 time units, in
    Euler steps of up to 0.4 (eight times the developmental step, smaller for a stiff genome):
    only where they settle matters, and Euler's fixed points do not depend on the step.

    Parameters
    ----------
    adata
        Annotated data matrix with a genome (:func:`~gclandscape.landscape.fit_grn`) and, for a
        developmental genome, a landscape (:func:`~gclandscape.landscape.fit_landscape`; this
        function raises rather than computing one).
    perturbation
        A :class:`Knockout`, :class:`Knockdown`, :class:`Overexpression`,
        :class:`EdgeMutation` or a sum of them.
    genome_key, landscape_key
        Where the genome and the landscape are stored in ``.uns``.
    root
        Group of the landscape's ``groupby`` column to start from, explicit cell positions, or
        ``None`` (the earliest cells overall).
    n_cells
        Cells simulated per condition (at least 10).
    seed
        Seed of the start cells, the noise, the bootstrap and the null.
    decode
        Decode the simulated cells over all genes (needs ``model``).
    model
        The :class:`~gclandscape.latent.LatentModel` fitted on ``adata``
        (:func:`gclandscape.latent.fit` or :func:`gclandscape.latent.load`).
    n_null
        Random perturbations in the null of the score (0 skips it). They are simulated when
        the p-value is first read, not before: a call that reads only ``log2fc`` or the fates
        does not pay for them.

    Returns
    -------
    :class:`PerturbationResult`.

    Raises
    ------
    GclError
        Not a perturbation, a gene not in the genome (with close matches), ``n_cells < 10``
        or too large for the memory available (the message names both), fewer than 10
        observed cells, a negative or out-of-range root cell position, no genome, no
        landscape for a developmental genome, an unknown ``root`` group.

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
    >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("B"), n_cells=200, n_null=3)
    >>> res.lost_fates
    ['B-high']
    >>> float(res.expression.loc["B", "log2fc"]) < -3
    True
    """
    return perturb_members(
        adata, perturbation, None,
        genome_key=genome_key, landscape_key=landscape_key, root=root, n_cells=n_cells,
        seed=seed, decode=decode, model=model, n_null=n_null,
    )  # fmt: skip


def perturb_members(
    adata: AnnData,
    perturbation: Perturbation,
    members: Sequence[Genome] | None,
    *,
    genome_key: str = Key.uns.genome,
    landscape_key: str = Key.uns.landscape,
    root: Any = None,
    n_cells: int = 1000,
    seed: int = 0,
    decode: bool = True,
    model: LatentModel | None = None,
    n_null: int = N_NULL,
) -> PerturbationResult:
    """:func:`perturb` with the genome ensemble given as ``members`` (``None``: the stored
    genome's members). Internal entry point; the stored genome still gives the genes, the
    observed states and the root cells."""
    import time

    t0 = time.perf_counter()
    n_cells = check_n_cells(n_cells)
    setup = build_setup(
        adata, genome_key=genome_key, landscape_key=landscape_key, root=root, members=members
    )
    genome = setup.genome_obj()
    perturbation = check_perturbation(perturbation, genome.genes, measured=adata.var_names)
    save = N_SAVE if setup.mode != STEADY_STATE else None
    check_memory(setup, n_cells, n_save=save)
    if decode and model is not None:
        from ..latent import LatentModel

        if not isinstance(model, LatentModel):
            raise GclError(f"model must be a gcl.latent.LatentModel, got {type(model).__name__}.")
    wt = simulate(setup, None, n_cells=n_cells, seed=seed, n_save=save)
    mut = simulate(setup, perturbation, n_cells=n_cells, seed=seed, n_save=save)
    return perturbation_result(
        adata, setup, perturbation, wt, mut,
        landscape_key=landscape_key, seed=seed, decode=decode, model=model,
        # the null is simulated when its scores are first read (PerturbationResult)
        null=partial(null_scores, setup, perturbation, n_null, seed) if n_null else np.zeros(0),
        t0=t0, n_cells=n_cells, n_null=n_null,
    )  # fmt: skip


def perturbation_result(
    adata: AnnData | None,
    setup: Setup,
    perturbation: Perturbation,
    wt: Simulation,
    mut: Simulation,
    *,
    landscape_key: str,
    seed: int,
    decode: bool,
    model: Any,
    null: np.ndarray | Callable[[], np.ndarray],
    t0: float,
    n_cells: int,
    n_null: int = 0,
) -> PerturbationResult:
    """The :class:`PerturbationResult` of a wild type and a mutant already simulated (by
    :func:`perturb`, or by a screen that kept its simulations: ``gclandscape run``): fate
    table, expression and log2FC (read out or decoded for the other genes), trajectories and
    parameters. ``null`` holds the random knockouts' scores (empty: no p-value), or is a
    function that simulates ``n_null`` of them when they are first read."""
    import time

    genome = setup.genome_obj()
    if setup.mode == STEADY_STATE:
        fates = empty_fate_table()
    else:
        fates = fate_table(wt, mut, setup.ref_labels, seed)
    m_wt, m_pt = wt.end.mean(0), mut.end.mean(0)
    expression = pd.DataFrame(
        {"wt": m_wt, "perturbed": m_pt, "log2fc": log2fc(m_wt, m_pt)},
        index=pd.Index(genome.genes, name="gene"),
    )
    fc = expression["log2fc"].rename("log2fc")
    decoded = None
    if decode and model is not None and adata is not None:
        decoded, fc_all = _decode(adata, setup, model, wt, mut)
        fc_all.loc[fc_all.index.intersection(genome.genes)] = fc
        fc, other_genes = fc_all, "decoder"
    elif adata is not None:
        fc, other_genes = _read_out(adata, setup, fc, wt, mut)
    else:
        other_genes = "none"
    traj = _trajectories(adata, setup, landscape_key, wt, mut) if adata is not None else {}
    params = {
        "perturbation": perturbation.name,
        "mode": setup.mode,
        "n_cells": n_cells,
        "seed": seed,
        "start_cells": setup.root_info,
        "t_develop": T_DEVELOP,
        "t_relax": T_RELAX,
        # the steps used: a stiff genome (or mutant) develops in smaller ones than DT
        "dt": wt.dt,
        "dt_perturbed": mut.dt,
        "novel_tolerance": setup.novel_tol,
        # a deferred null's requested size (it has fewer scores when too few genes to draw from)
        "n_null": n_null if callable(null) else len(null),
        "n_genomes": setup.n_members,
        "log2fc_other_genes": other_genes,
        "seconds": time.perf_counter() - t0,
    }
    res = PerturbationResult(
        perturbation=perturbation.name,
        fates=fates,
        expression=expression,
        log2fc=fc,
        decoded=decoded,
        score=score(setup, wt, mut, perturbation),
        null_scores=null,
        trajectories=traj,
        times=wt.times if wt.times is not None else np.zeros(0),
        params=params,
    )
    logger.info("perturb: %r in %.1f s (%s)", res, params["seconds"], setup.root_info)
    return res
