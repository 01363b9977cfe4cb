"""``gcl.landscape.fit_grn``: infer the genome (a sparse signed GRN ODE model) from data."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._defaults import NOISE
from .._errors import GclError
from .._keys import Key
from .._utils import dense, logger
from ._genome import Genome
from ._regulator_genes import (  # noqa: F401 (the constants: re-exported, CLI and tests)
    MAX_DEFAULT_GENES,
    MIN_DETECTED,
    _prior_mask,
    select_genes,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


#: How drifts written before ``Key.drift_params.crossgene`` existed named the cross-gene
#: deviation in their display label ``params["deviation"]`` (read for old files only).
_LEGACY_CROSSGENE_LABEL = "counts of "


def _fits_per_cell_drift(drift_params: dict) -> bool:
    """Whether the drift's restoring term came from the cross-gene deviation.

    The drift records it as a flag; older AnnData objects only have the display label.
    """
    flag = drift_params.get(Key.drift_params.crossgene)
    if flag is not None:
        return bool(flag)
    return str(drift_params.get("deviation", "")).startswith(_LEGACY_CROSSGENE_LABEL)


def _fidelity_inputs(
    adata: AnnData, x: np.ndarray, groupby: str | None, time_key: str | None
) -> tuple | None:
    """Terminal types for the members' fidelity check, or None without labels or time."""
    from ._ensemble import terminal_types

    if groupby is None or time_key is None or time_key not in adata.obs:
        return None
    return terminal_types(x, adata.obs[groupby].to_numpy(), adata.obs[time_key].to_numpy())


def fit_grn(
    adata: AnnData,
    *,
    genes: Sequence[str] | int | None = None,
    time_key: str | None = None,
    root: str | int | None = None,
    groupby: str | None = None,
    drift_key: str | None = None,
    velocity_layer: str | None = None,
    prior: pd.DataFrame | None = None,
    l1: float | None = None,
    n_bootstrap: int = 5,
    n_genomes: int = 1,
    decode: bool = False,
    readout: bool = True,
    seed: int = 0,
    device: str = "auto",
    key_added: str = Key.uns.genome,
) -> Genome:
    """Infer the genome: a sparse, signed, combinatorial GRN ODE model of the data.

    Each gene's production is a small connectionist function of its regulators (a few hidden
    units per gene whose inputs are masked by the network, :mod:`gclandscape.engine._grn`), so
    AND, OR and NOT of several regulators can be expressed; a group-lasso "connection cost"
    makes the network sparse, and the readable signed graph is the production Jacobian
    averaged over cells. The cost is adaptive: each edge's is divided by the partial
    correlation of source and target in the log expression (a pilot estimate,
    :func:`~gclandscape.engine.adaptive_penalty_weights`), so the dynamics choose
    among the edges the co-expression supports. On the GRN benchmark this raised the median
    AUPRC ratio on simulated networks from 2.41 to 4.35 (``benchmarks/README.md``).

    What the model is fitted to:

    - **Drift mode** (a time signal exists): the vector field is regressed on the drift of
      :func:`gclandscape.tl.drift` — computed here from ``time_key``, from a pseudotime
      rooted in ``root`` within ``groupby`` (:func:`gclandscape.tl.pseudotime`), or from
      ``velocity_layer`` (overwriting ``.layers[drift_key]``); with none of them given, a
      drift already in ``.layers[drift_key]`` is used. The regression target is the
      per-cell drift (path velocity plus restoring term) when its deviations were estimated
      from the counts of the other genes (the cross-gene estimate: counts data and at most
      30 genes), and the path velocity otherwise: with the cruder neighbourhood deviation
      the restoring term cost accuracy; with the cross-gene one it raised the knockout
      predictions on simulated networks and left edge recovery about even
      (``benchmarks/README.md``). ``.uns[key_added]["params"]`` records the ``target``.
    - **Steady-state mode** (no ``time_key``, ``root``, ``groupby``, ``velocity_layer`` or
      drift: one population, as in a Perturb-seq control arm): the cells fluctuate around a
      fixed point, so each gene's production is regressed on its regulators at the observed
      states (CellOracle's assumption). This is logged and recorded in the parameters.

    **Ensemble mode** (``n_genomes=K > 1``): wild-type snapshots often cannot tell genomes
    apart (a regulator and its follower explain a target equally well), so K member genomes
    are fitted that differ in structure, not only in seed (:mod:`._ensemble`): member 0 is the
    single-genome fit; each further member is fitted from scratch to a bootstrap resample of
    the cells, at a connection cost spread around member 0's (× 0.5, 2, 0.7, 1.4, 0.35, 2.8,
    cycled), without a random quarter of the candidate edges (as a random forest draws its
    features: of two regulators that explain a target equally well, a fit keeps both, so
    members differ where one is unavailable) and, when a ``prior`` is given, alternately
    without and with it (with it, all of its edges are candidates). Their disagreement
    measures what the data cannot decide (``member_share`` in
    :func:`gclandscape.get.grn_edges`). Each member costs about one fit
    (``params["seconds_ensemble"]``: the members after the first and the checks). Members
    that explain some gene's drift worse than member 0 (R² lower by more than 0.1) are
    dropped (``params["n_dropped_fit"]``). With ``groupby`` and a time signal, members that
    fail wild-type fidelity are dropped and counted (``params["n_dropped_fidelity"]``; all
    drops in ``params["n_dropped"]``): a member passes when every observed terminal cell type
    (the ``groupby`` labels holding ≥ 10 % of the latest fifth of the cells by time) has a
    stable fixed point of the member near its centroid (closer than half the distance to the
    nearest other terminal centroid). If no member passes, all are kept with a warning naming
    the fates no member regenerates, and ``params["reliable"]`` is False: a warning rather
    than an error, so that the fit can still be inspected (and its landscape shows what is
    missing). Without ``groupby`` or a time signal the check is skipped
    (``params["wt_fidelity"]`` says so). The returned genome is the first kept member and
    holds the others (``genome.n_members``, ``genome.member(i)``, iteration).

    Coordinates: linear expression scaled per gene to about [0, 1] (the drift's coordinates,
    :func:`gclandscape.tl.drift`); the per-gene scale is stored with the genome.

    **Readout** (``readout=True``): every other gene (the highly variable ones when marked,
    else all; with variance) is regressed on the genome genes' states of the observed cells
    (ridge, strength by leave-one-out, at most 20,000 cells:
    :mod:`gclandscape.landscape._readout`), so that :func:`gclandscape.sim.perturb` predicts
    a knockout's log2 fold change over the whole transcriptome without a latent model. On the
    Perturb-seq benchmark (``--quick``, test seed) it raised the all-gene Pearson's r of the
    predicted log2FC from 0.115 (regulators only) to 0.222 (``benchmarks/README.md``). ``params`` records ``readout_genes``,
    ``readout_alpha``, ``readout_r2_median`` (in-sample R² per gene) and ``seconds_readout``.

    Parameters
    ----------
    adata
        Annotated data matrix.
    genes
        Genes to model: a list; an int (that many highly variable genes); or None: the
        expressed regulators when ``.var["gcl_regulator"]`` marks any
        (:func:`gclandscape.pp.annotate_regulators`): those detected in at least 5 % of the
        cells (:data:`MIN_DETECTED`; of more than 200, the most variable by scanpy's
        ``highly_variable_rank``, then the most often detected; fewer than 2 is an error;
        ``gclandscape run --organism`` models the same genes), else at most 200 highly
        variable genes (all genes when there are at most 200 and no highly variable ones).
        Zero-variance genes are dropped with a warning.
    time_key
        ``.obs`` column with time (pseudotime, simulation time, ordered time points).
    root
        Root group (in ``groupby``) or cell for a diffusion pseudotime.
    groupby
        ``.obs`` column of cell types; needed with ``root``.
    drift_key
        Layer with a precomputed drift (default ``"gcl_drift"`` when present).
    velocity_layer
        RNA-velocity layer to take the drift from.
    prior
        DataFrame ``source``, ``target`` (optionally ``sign``: ``'+'``/``'-'`` as BEELINE
        writes them, ``1``/``-1`` or any signed weight, ``'activation'``/``'repression'``
        in any case; empty leaves the sign free): the allowed edges (a hard mask; signs are
        enforced where given). Rows whose source or target is not modelled are dropped (a
        curated prior such as :func:`gclandscape.datasets.prior_network` names thousands of
        genes), with a logged note and the counts in ``params`` (``prior_rows``,
        ``prior_rows_used``, ``prior_rows_dropped``, ``prior_edges``,
        ``prior_sign_conflicts``); a pair given in several rows is one edge, its sign left
        free when the rows disagree. A prior with no usable row is an error.
    l1
        Connection cost (group-lasso strength); default: a data-derived fraction of the value
        that empties the network (:func:`gclandscape.engine.default_l1`).
    n_bootstrap
        Bootstrap refits over cells for the edge ``confidence`` (0 to skip); of member 0.
    n_genomes
        Number of member genomes; K > 1 is the ensemble mode (above). The default 1 was
        chosen on the benchmark suite's dev split: K = 3 and 5 changed the knockout calls'
        accuracy by +0.005 and their Brier score by -0.005 and -0.008 at 3-3.4× the time,
        because the members mostly agree (``benchmarks/README.md``, "Twelfth session: ensemble
        size").
    decode
        Refine member 0 by decoding (drift mode with ``groupby`` and a time signal;
        :mod:`gclandscape.engine._grn_decode`): cells develop from the root group's earliest
        cells and the field is trained so that the developed population regenerates the
        observed one: terminal fate fractions, a Sinkhorn divergence (``geomloss``) to the
        observed terminal cells, every terminal cell type's centroid a stable fixed point its
        cells relax to, and the drift regression's fit kept. The network's edges and signs
        stay; the refinement is kept only if a held-out decoding loss went down.
        ``params["decode"]`` says ``"refined"``, ``"rejected"`` or why it was skipped, with
        the losses before and after. Off by default for its cost: on the suite's 21 dev
        networks (easy) it raised lost-set accuracy 0.32 -> 0.34 and lowered the wild type's
        fate-fraction total variation 0.34 -> 0.29 (spurious attractors 0.33 -> 0.15), at
        3.8 x the CPU time (``benchmarks/README.md``, "Decoding").
    readout
        Fit the readout of the other genes (above); ``False`` skips it.
    seed
        Random seed (initialisation, minibatches, bootstrap, the readout's cells).
    device
        ``"auto"`` (GPU when available), ``"cpu"`` or ``"cuda"``.
    key_added
        Key in ``.uns`` (and ``.varp``) the genome is written to.

    Returns
    -------
    The fitted :class:`~gclandscape.landscape.Genome` (with its members in ensemble mode);
    also written to ``.uns[key_added]`` (with ``["params"]``; an ensemble's members stacked
    as plain arrays under ``["members"]``, see :mod:`gclandscape.landscape._members`; the
    readout as plain arrays under ``["readout"]``), ``.varp[key_added]`` (target × source weights, of member 0), and — when the
    drift was computed here — the drift layers of :func:`gclandscape.tl.drift`.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.myeloid(n_cells=600, n_targets=30)
    >>> genome = gcl.landscape.fit_grn(adata, time_key="sim_time", n_bootstrap=0)
    >>> genome.n_genes
    11
    >>> gcl.get.grn_edges(adata).columns[:3].tolist()
    ['source', 'target', 'weight']
    """
    from ..engine import (
        adaptive_penalty_weights,
        bootstrap_confidence,
        edge_scores,
        fit_grn_model,
        resolve_device,
    )
    from ..tl._drift_inputs import expression_states, neighbour_graph
    from ..tl._smoothing import smooth_states
    from ._ensemble import fit_ensemble, fit_member, member_specs

    specs = member_specs(n_genomes, seed=seed, has_prior=prior is not None)
    device = str(resolve_device(device))  # "auto" -> cuda or cpu; a bad name fails here
    gene_list = select_genes(adata, genes)
    if groupby is not None and groupby not in adata.obs:
        raise GclError(
            f"groupby={groupby!r} is not a column of adata.obs. Available: "
            f"{', '.join(map(str, adata.obs.columns)) or '(none)'}."
        )
    drift_key = Key.layers.drift if drift_key is None else drift_key
    have_drift = (
        drift_key in adata.layers
        and f"{drift_key}_state" in adata.layers
        and f"{drift_key}_gene" in adata.var
        and bool(adata.var.loc[gene_list, f"{drift_key}_gene"].all())
    )
    wants_time = time_key is not None or root is not None or velocity_layer is not None
    # an explicit time signal always (re)computes the drift; a stored one is used otherwise
    have_drift = have_drift and not wants_time
    if not have_drift and not wants_time and groupby is not None:
        raise GclError(
            f"fit_grn got groupby={groupby!r} but no way to compute a drift. Give one of: "
            "(1) time_key='<obs column>' with pseudotime or time; (2) root='<progenitor group>' "
            "with groupby (a diffusion pseudotime is computed); (3) velocity_layer='<layer>'. "
            "For one population without any time signal, leave all of them out "
            "(steady-state mode)."
        )
    if root is not None and groupby is not None:
        n_groups = adata.obs[groupby].nunique()
        if n_groups < 2:
            raise GclError(
                f"obs[{groupby!r}] has a single cell type; a developmental fit needs several. "
                "For one population, call fit_grn without time_key/root/groupby "
                "(steady-state mode)."
            )
    mode = "drift" if (have_drift or wants_time) else "steady_state"

    # expression, checked before anything is computed
    x_raw, source = expression_states(adata, gene_list, layer=None)
    if not np.isfinite(x_raw).all():
        raise GclError(
            f"the expression of the modelled genes ({source}) has NaN or infinite values; "
            "remove or impute them first."
        )
    var = x_raw.var(axis=0)
    flat = [g for g, v in zip(gene_list, var) if v <= 0]
    if flat:
        warnings.warn(
            f"fit_grn: dropping {len(flat)} zero-variance genes: {', '.join(flat[:20])}",
            UserWarning,
            stacklevel=2,
        )
        keep = var > 0
        gene_list = [g for g, k in zip(gene_list, keep) if k]
        x_raw = x_raw[:, keep]
        if len(gene_list) < 2:
            raise GclError("fewer than 2 genes vary; nothing to fit.")
    if adata.n_obs < 10:
        raise GclError(f"fit_grn needs at least 10 cells; adata has {adata.n_obs}.")

    params: dict[str, Any] = {
        "mode": mode,
        "genes": np.asarray(gene_list, dtype=object),
        "seed": seed,
        "n_bootstrap": n_bootstrap,
        "expression": source,
    }
    if mode == "drift":
        if not have_drift:
            from ..tl import drift as compute_drift
            from ..tl import pseudotime

            if velocity_layer is None and time_key is None:
                if groupby is None:
                    raise GclError(
                        "root needs groupby (the obs column the root group is in), e.g. "
                        "fit_grn(adata, root='progenitor', groupby='celltype')."
                    )
                pseudotime(adata, root=root, groupby=groupby)
                time_key = Key.obs.pseudotime
            compute_drift(
                adata,
                genes=gene_list,
                time_key=time_key,
                velocity_layer=velocity_layer,
                key_added=drift_key,
                seed=seed,
            )
        idx = adata.var_names.get_indexer(gene_list)
        # tl.drift writes sparse layers; those of older versions are dense
        x = dense(adata.layers[f"{drift_key}_state"][:, idx])
        # the per-cell drift (path velocity plus restoring term) when its deviation came from
        # the counts of the other genes (tl.drift's cross-gene estimate: better knockout
        # predictions); otherwise the path velocity at the smoothed states, as a restoring
        # term from the neighbourhood estimate lost accuracy (benchmarks/README.md, "GRN
        # recovery"); a drift stored without a path layer (older versions) is its path velocity
        drift_params = adata.uns.get(drift_key, {}).get("params", {})
        target = "per-cell drift" if _fits_per_cell_drift(drift_params) else "path velocity"
        layer = f"{drift_key}_path"
        if target == "per-cell drift" or layer not in adata.layers:
            layer = drift_key
        dxdt = dense(adata.layers[layer][:, idx])
        scale = adata.var[f"{drift_key}_scale"].to_numpy()[idx]
        params.update(drift_key=drift_key, target=target, **{
            k: v for k, v in drift_params.items()
            if k in ("time_key", "velocity_layer", "method", "deviation")
        })  # fmt: skip
        logger.info("fit_grn: drift mode on %d genes × %d cells", len(gene_list), adata.n_obs)
    else:
        # counts are noisy: average over the neighbour graph as the drift does (kNN
        # moments); measured to double the AUPRC ratio on a simulated steady state
        graph, _ = neighbour_graph(adata, None, 30)
        x_smooth = smooth_states(x_raw, graph, 3)
        scale = np.percentile(x_smooth, 99, axis=0)
        scale[scale <= 0] = x_smooth.max(axis=0)[scale <= 0]
        x = x_smooth / scale
        dxdt = None
        logger.info(
            "fit_grn: no time signal (no time_key, root, groupby, velocity_layer or drift): "
            "fitting the steady-state form (cells fluctuate around one fixed point)"
        )
    if not np.isfinite(x).all() or (dxdt is not None and not np.isfinite(dxdt).all()):
        raise GclError("the drift or states contain NaN; recompute the drift with gcl.tl.drift.")

    mask, sign = _prior_mask(prior, gene_list, params)  # records the prior's counts
    # adaptive connection cost: an edge costs less the more the partial correlations of the
    # log expression support it; counts are log-normalised, .X is taken as it is (usually
    # log-scaled already; on the BEELINE expression log1p lowered the median AUPRC ratio
    # from 2.91 to 2.72). benchmarks/README.md, "GRN recovery"
    counts = Key.layers.counts in adata.layers
    pilot = np.log1p(x_raw) if counts else x_raw
    params["edge_pilot"] = f"partial correlation of {'log1p ' if counts else ''}{source}"
    fit_kwargs: dict[str, Any] = {
        "mode": mode,
        "mask": mask,
        "sign": sign,
        "device": device,
        "penalty_weights": adaptive_penalty_weights(pilot),
    }
    model, result = fit_grn_model(x, dxdt, l1=l1, seed=seed, **fit_kwargs)
    if decode and mode == "drift":
        from ._decode import decode_model

        labels = adata.obs[groupby].to_numpy() if groupby is not None else None
        tcol = adata.obs[time_key].to_numpy() if time_key in adata.obs else None
        params.update(decode_model(model, x, dxdt, labels, tcol, root, seed=seed))
    confidence = None
    if n_bootstrap and n_bootstrap > 0:
        confidence = bootstrap_confidence(
            x, dxdt, n_boot=int(n_bootstrap), model=model, pilot=pilot, seed=seed, **fit_kwargs
        )
    info = {"scale": np.asarray(scale, dtype=np.float64), "expression": source, "mode": mode}

    def genome_of(fitted: Any, conf: np.ndarray | None = None) -> Genome:
        return Genome._from_model(
            gene_list,
            fitted.to_dict(),
            W=edge_scores(fitted, x)["weight"],
            noise=NOISE,
            x_max=x.max(axis=0),
            confidence=conf,
            info=info,
        )

    genome = genome_of(model, confidence)
    if len(specs) > 1:
        genome, ensemble_params = fit_ensemble(
            genome,
            specs,
            fit_one=lambda spec: genome_of(
                fit_member(
                    spec,
                    x=x,
                    dxdt=dxdt,
                    pilot=pilot,
                    l1=result.l1,
                    mask=mask,
                    sign=sign,
                    mode=mode,
                    device=device,
                )
            ),
            x=x,
            dxdt=dxdt,
            fidelity=_fidelity_inputs(adata, x, groupby, params.get("time_key")),
        )
        params.update(ensemble_params)
    params["n_members"] = genome.n_members
    params.update(
        l1=float(result.l1),
        l1_rule=str(result.l1_rule),
        n_edges=int(result.n_edges),
        n_epochs=int(result.n_epochs),
        val_r2_median=float(np.median(result.val_r2)),
        seconds=float(result.seconds),
        device=str(device),
    )
    genome.write_to_adata(adata, key_added)
    if readout:
        import time

        from ._readout import READOUT, fit_readout_adata

        t0 = time.perf_counter()
        # the states the genome was fitted on (smoothed in steady-state mode): on the
        # Perturb-seq benchmark's dev seeds they read the other genes out better than the
        # unsmoothed states (all-gene r 0.23 against 0.18, benchmarks/README.md)
        fitted = fit_readout_adata(adata, x, gene_list, seed=seed)
        if fitted is not None:
            adata.uns[key_added][READOUT] = fitted
            params.update(
                readout_genes=len(fitted["genes"]),
                readout_alpha=float(fitted["alpha"]),
                readout_r2_median=float(np.median(fitted["r2"])) if len(fitted["r2"]) else 0.0,
                seconds_readout=time.perf_counter() - t0,
            )
    adata.uns[key_added]["params"] = params
    logger.info(
        "fit_grn: %d edges among %d genes (held-out R² median %.2f, %.1f s)",
        result.n_edges,
        len(gene_list),
        float(np.median(result.val_r2)),
        result.seconds,
    )
    return genome
