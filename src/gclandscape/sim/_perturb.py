"""Re-decode an edited genome: :func:`perturb` and the :class:`PerturbationResult`.

The wild type and the mutant develop from the same start cells with the same noise (common
random numbers), so a fate difference is the perturbation's effect and not sampling noise.
End states are relaxed deterministically under their own genome and named by the nearest
*reference*: a wild-type attractor of the landscape (label = its cell type) or an observed
cell-type centroid, compared on the genes the perturbation does not touch; an end state far
from every reference is ``"novel"``.

The pieces a screen needs (start states, references, the wild-type simulation) live in a
small picklable :class:`_Setup`, so :func:`gclandscape.sim.screen` ships it to Dask workers
instead of the AnnData.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._utils import logger, rng
from ._perturbations import EDGE, KNOCKDOWN, KNOCKOUT, OVEREXPRESSION, Edit, Perturbation

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..landscape import Genome
    from ..latent import LatentModel

#: Simulated time of development from the root cells, then of noise-free relaxation.
T_DEVELOP = 40.0
T_RELAX = 20.0
DT = 0.05
#: A wild-type fate reached by at least this fraction of cells is *lost* when fewer than this
#: fraction of perturbed cells reach it (the rule of the simulated truth); a fate (or
#: ``novel``) reached by at least this fraction of perturbed cells and fewer wild-type cells
#: is *gained*.
MIN_FRACTION = 0.01
#: Root cells: the earliest EARLY_FRACTION (at least MIN_EARLY cells) of the root group.
#: With the true field the earliest cells are best, because a knockout applied after
#: commitment has begun does not undo it; a fitted field is least accurate at the very first
#: states. Measured with ``benchmarks/knockouts.py --seeds 3`` (knockouts right, mean over
#: ``fit_grn`` seeds 0-2): 50 % gave myeloid clock 9.0/11, pseudotime 6.7/11 (its genome sends
#: the earliest half to Gran and Mono), random12 4.3, random15 6.3; 75 % 9.0, 8.0, 4.7, 6.0;
#: 100 % 9.0, 8.0, 4.7, 8.0 (one seed's 11); random10 and mCAD were unchanged. 75 % keeps the
#: gain on pseudotime and still leaves the latest quarter of the root group out.
EARLY_FRACTION = 0.75
#: With ``root=None`` the candidates are all cells: the earliest EARLY_FRACTION_ALL of them.
EARLY_FRACTION_ALL = 0.5
MIN_EARLY = 10
#: Log-fold-change pseudocount in model coordinates (genes scaled to about [0, 1]).
PSEUDOCOUNT = 0.01
N_BOOT = 200
N_TRAJ = 50
N_SAVE = 41
#: Null of random perturbations: how many, with how many cells each.
N_NULL = 20
N_NULL_CELLS = 300
FATES_COLUMNS = ["wt", "perturbed", "delta", "ci_low", "ci_high", "p_value"]
NOVEL = "novel"
UNOBSERVED = "unobserved"  # fit_landscape's label of an attractor no observed cell reaches
STEADY_STATE = "steady_state"


# ------------------------------------------------------------------------------- setup
@dataclass
class _Setup:
    """Everything needed to simulate and classify, without the AnnData (picklable)."""

    genome: dict[str, Any]
    starts: np.ndarray
    ref_states: np.ndarray
    ref_labels: list[str]
    novel_tol: float
    mode: str  # "fates" or STEADY_STATE
    scale: np.ndarray  # per-gene distance scale (model coordinates)
    root_info: str = ""
    genome_key: str = Key.uns.genome
    _genome: Any = field(default=None, repr=False)

    def genome_obj(self) -> Genome:
        from ..landscape import Genome

        if self._genome is None:
            self._genome = Genome.from_dict(self.genome)
        return self._genome

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_genome"] = None
        return state


@dataclass
class _Sim:
    """One condition's simulation: end states and their fate labels."""

    end: np.ndarray
    labels: np.ndarray
    snapshots: np.ndarray | None = None
    times: np.ndarray | None = None


def _strip_suffix(labels: list[str]) -> list[str]:
    """``"Ery_2"`` → ``"Ery"`` when ``"Ery"`` is a label too: one fate per cell type."""
    known = set(labels)
    out = []
    for lab in labels:
        m = re.fullmatch(r"(.+)_(\d+)", lab)
        out.append(m.group(1) if m and m.group(1) in known else lab)
    return out


def _time_column(adata: AnnData, genome_key: str) -> str | None:
    params = adata.uns.get(genome_key, {}).get("params", {})
    for key in (params.get("time_key"), Key.obs.pseudotime, Key.obs.sim_time):
        if key is not None and str(key) in adata.obs:
            return str(key)
    return None


def _root_cells(
    adata: AnnData, root: Any, groupby: str | None, time_col: str | None
) -> tuple[np.ndarray, str]:
    """Positions of the start cells and a description of the rule used."""
    n = adata.n_obs
    if root is None:
        candidates = np.arange(n)
        what = "all cells"
    elif isinstance(root, str):
        if not groupby or groupby not in adata.obs:
            raise GclError(
                f"root={root!r} names a group, but the landscape was fitted without groupby; "
                "refit with gcl.landscape.fit_landscape(adata, groupby='<cell type column>') "
                "or pass root as cell positions."
            )
        values = adata.obs[groupby].astype(str).to_numpy()
        if root not in set(values):
            raise GclError(
                f"root={root!r} is not a group of obs[{groupby!r}]. Available: "
                f"{', '.join(sorted(set(values)))}."
            )
        candidates = np.flatnonzero(values == root)
        what = f"{groupby} == {root!r}"
    else:
        candidates = np.atleast_1d(np.asarray(root))
        if candidates.dtype.kind not in "iu" or candidates.size == 0 or candidates.ndim != 1:
            raise GclError(
                "root must be None, a group name or a non-empty list of integer cell positions; "
                f"got {root!r}."
            )
        # negative positions are refused rather than counted from the end: root=-1 would
        # otherwise start every cell from whichever cell happens to be stored last
        if candidates.min() < 0 or candidates.max() >= n:
            raise GclError(
                f"root must be non-negative cell positions in [0, {n}) (adata has {n} cells; "
                f"negative positions are not counted from the end); got {root!r}. Pass a group "
                "of the landscape's groupby column, e.g. root='progenitor', or valid positions."
            )
        return candidates.astype(np.int64), f"{candidates.size} given cells"
    if time_col is None:
        return candidates, f"{what} (no time column: every cell of it)"
    t = adata.obs[time_col].to_numpy(dtype=np.float64)[candidates]
    fraction = EARLY_FRACTION_ALL if root is None else EARLY_FRACTION
    k = max(MIN_EARLY, round(fraction * len(candidates)))
    order = np.argsort(t, kind="stable")[: min(k, len(candidates))]
    return candidates[order], f"the {len(order)} earliest cells by {time_col} of {what}"


def _setup(
    adata: AnnData,
    *,
    genome_key: str,
    landscape_key: str,
    root: Any,
) -> _Setup:
    """Validate the inputs and gather start states and fate references."""
    from ..landscape import Genome, Landscape
    from ..landscape._landscape import _model_states

    if genome_key not in adata.uns:
        raise GclError(
            f"No genome in adata.uns[{genome_key!r}]. Fit one with gcl.landscape.fit_grn(adata) "
            "(or store a hand-built Genome with genome.write_to_adata(adata)) first."
        )
    if adata.n_obs < 10:
        raise GclError(f"perturb needs at least 10 observed cells; adata has {adata.n_obs}.")
    genome = Genome.from_adata(adata, genome_key)
    states, _ = _model_states(adata, genome, genome_key)
    steady = genome.info.get("mode") == STEADY_STATE
    scale = np.where(genome.x_max > 0, genome.x_max, 1.0)
    if steady:
        starts = states if root is None else states[_root_cells(adata, root, None, None)[0]]
        return _Setup(
            genome=genome.to_dict(),
            starts=starts,
            ref_states=np.zeros((0, genome.n_genes)),
            ref_labels=[],
            novel_tol=np.inf,
            mode=STEADY_STATE,
            scale=scale,
            root_info="observed cells (steady-state genome)",
            genome_key=genome_key,
            _genome=genome,
        )
    if landscape_key not in adata.uns:
        raise GclError(
            f"No landscape in adata.uns[{landscape_key!r}]: perturb names fates by the "
            "wild-type attractors. Compute it first with gcl.landscape.fit_landscape(adata, "
            "groupby='<cell type column>')."
        )
    land = Landscape.from_adata(adata, landscape_key)
    if list(land.genes) != list(genome.genes):
        raise GclError(
            f"The landscape in adata.uns[{landscape_key!r}] was fitted on another genome "
            f"({len(land.genes)} genes) than adata.uns[{genome_key!r}] ({genome.n_genes}); "
            "re-run gcl.landscape.fit_landscape(adata) after fit_grn."
        )
    groupby = land.params.get("groupby") or None
    idx, root_info = _root_cells(adata, root, groupby, _time_column(adata, genome_key))
    att = land.attractors
    ref_states = [att[genome.genes].to_numpy(dtype=np.float64)]
    ref_labels = [str(x) for x in att["label"]]
    if groupby is not None:  # observed cell-type centroids name what the attractors miss
        groups = adata.obs[groupby].astype(str).to_numpy()
        for g in pd.unique(groups):
            ref_states.append(states[groups == g].mean(0, keepdims=True))
            ref_labels.append(str(g))
    ref = np.vstack(ref_states)
    labels = _strip_suffix(ref_labels)
    z = att[genome.genes].to_numpy(dtype=np.float64) / scale
    d = np.sqrt(((z[:, None] - z[None]) ** 2).mean(-1))
    distinct = d[np.triu_indices(len(z), 1)]
    tol = 0.5 * float(distinct.min()) if distinct.size and distinct.min() > 0 else 0.2
    return _Setup(
        genome=genome.to_dict(),
        starts=states[idx],
        ref_states=ref,
        ref_labels=labels,
        novel_tol=float(np.clip(tol, 0.05, 0.3)),
        mode="fates",
        scale=scale,
        root_info=root_info,
        genome_key=genome_key,
        _genome=genome,
    )


def _touched(genome: Genome, perturbation: Perturbation | None) -> np.ndarray:
    """Mask of genes a perturbation sets directly (excluded when naming end states)."""
    mask = np.zeros(genome.n_genes, dtype=bool)
    if perturbation is not None:
        for e in perturbation.edits:
            if e.kind in (KNOCKOUT, KNOCKDOWN, OVEREXPRESSION):
                mask[genome.genes.index(e.gene)] = True
    return mask


def _simulate(
    setup: _Setup,
    perturbation: Perturbation | None,
    *,
    n_cells: int,
    seed: int,
    n_save: int | None = None,
) -> _Sim:
    """Develop ``n_cells`` start cells under the (mutated) genome and name their end states."""
    genome = setup.genome_obj()
    if perturbation is not None:
        genome = genome.mutate(perturbation)
    gen = rng(seed)
    x0 = setup.starts[gen.integers(0, len(setup.starts), n_cells)]
    if n_save:
        end, times, snaps = genome.develop(x0, t_max=T_DEVELOP, dt=DT, seed=seed, n_save=n_save)
    else:
        end, times, snaps = genome.develop(x0, t_max=T_DEVELOP, dt=DT, seed=seed), None, None
    if setup.mode == STEADY_STATE:
        return _Sim(end=end, labels=np.array([], dtype=object), snapshots=snaps, times=times)
    relaxed = genome.develop(end, t_max=T_RELAX, dt=DT, noise=0.0, seed=seed)
    keep = ~_touched(genome, perturbation)
    if not keep.any():  # every gene is set: compare on all of them
        keep[:] = True
    z = relaxed[:, keep] / setup.scale[keep]
    r = setup.ref_states[:, keep] / setup.scale[keep]
    d = np.sqrt(((z[:, None, :] - r[None]) ** 2).mean(-1))
    # within the tolerance, an observed fate wins over an attractor no cell reaches (they
    # can coincide on the genes left once the perturbed ones are excluded)
    unobserved = np.array([lab.startswith(UNOBSERVED) for lab in setup.ref_labels])
    near = np.where(unobserved[None, :] & (d <= setup.novel_tol), d + 10.0, d).argmin(1)
    labels = np.asarray(setup.ref_labels, dtype=object)[near]
    labels[d[np.arange(len(z)), near] > setup.novel_tol] = NOVEL
    return _Sim(end=end, labels=labels, snapshots=snaps, times=times)


# ------------------------------------------------------------------------------- comparison
def _fate_order(order: list[str], *labels: np.ndarray) -> list[str]:
    """The fates reached in any of ``labels``: reference order first, other labels sorted,
    ``"novel"`` last."""
    seen = set().union(*(set(lab) for lab in labels))
    fates = [f for f in dict.fromkeys(order) if f in seen]
    fates += sorted(f for f in seen if f not in fates and f != NOVEL)
    return [*fates, NOVEL] if NOVEL in seen else fates


def _fate_table(wt: np.ndarray, pert: np.ndarray, order: list[str], seed: int) -> pd.DataFrame:
    """Fate fractions, paired bootstrap interval of the difference and McNemar's exact test."""
    from scipy.stats import binomtest

    fates = _fate_order(order, wt, pert)
    A = np.stack([wt == f for f in fates], axis=1).astype(np.float64)
    B = np.stack([pert == f for f in fates], axis=1).astype(np.float64)
    D = B - A
    gen = rng(seed + 1)
    boot = np.stack([D[gen.integers(0, len(D), len(D))].mean(0) for _ in range(N_BOOT)])
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    only_wt = ((A == 1) & (B == 0)).sum(0)
    only_pert = ((A == 0) & (B == 1)).sum(0)
    p = [
        binomtest(int(c), int(b + c), 0.5).pvalue if b + c > 0 else 1.0
        for b, c in zip(only_wt, only_pert)
    ]
    out = pd.DataFrame(
        {
            "wt": A.mean(0),
            "perturbed": B.mean(0),
            "delta": D.mean(0),
            "ci_low": lo,
            "ci_high": hi,
            "p_value": np.asarray(p, dtype=np.float64),
        },
        index=pd.Index(fates, name="fate", dtype=str),
    )
    return out


def _lost_gained(fates: pd.DataFrame) -> tuple[list[str], list[str]]:
    lost = [
        str(f)
        for f, r in fates.iterrows()
        if f != NOVEL and r["wt"] >= MIN_FRACTION and r["perturbed"] < MIN_FRACTION
    ]
    gained = [
        str(f)
        for f, r in fates.iterrows()
        if r["perturbed"] >= MIN_FRACTION and r["wt"] < MIN_FRACTION
    ]
    return lost, gained


def _log2fc(wt: np.ndarray, pert: np.ndarray) -> np.ndarray:
    return np.log2((pert + PSEUDOCOUNT) / (wt + PSEUDOCOUNT))


def _score(setup: _Setup, wt: _Sim, mut: _Sim, perturbation: Perturbation) -> float:
    """Fate mode: total-variation distance of the fate distributions. Steady-state mode:
    root-mean-square log2 fold change of the genes the perturbation does not set."""
    if setup.mode == STEADY_STATE:
        keep = ~_touched(setup.genome_obj(), perturbation)
        fc = _log2fc(wt.end.mean(0), mut.end.mean(0))[keep]
        return float(np.sqrt(np.mean(fc**2))) if fc.size else 0.0
    fates = sorted(set(wt.labels) | set(mut.labels))
    a = np.array([np.mean(wt.labels == f) for f in fates])
    b = np.array([np.mean(mut.labels == f) for f in fates])
    return float(0.5 * np.abs(a - b).sum())


def _null_perturbations(
    perturbation: Perturbation, genome: Genome, n: int, seed: int
) -> list[Perturbation]:
    """Random perturbations of the same kinds, values and size on random genes/edges (the
    same for every perturbation of one signature, so a screen shares one null)."""
    gen = rng(seed)
    genes = genome.genes
    others = list(genes)
    W = genome.W.to_numpy()
    edges = [(genes[j], genes[i]) for i, j in zip(*np.nonzero(W))]
    n_gene_edits = sum(e.kind != EDGE for e in perturbation.edits)
    out: list[Perturbation] = []
    seen: set = set()
    for _ in range(20 * n):
        if len(out) >= n:
            break
        picks = list(gen.choice(others, size=min(n_gene_edits, len(others)), replace=False))
        edits = []
        for e in perturbation.edits:
            if e.kind == EDGE:
                if not edges:
                    continue
                s, t = edges[gen.integers(len(edges))]
                edits.append(Edit(EDGE, s, target=t, value=e.value))
            elif picks:
                edits.append(Edit(e.kind, str(picks.pop()), value=e.value))
        if not edits:
            continue
        p = Perturbation(edits)
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _null_scores(setup: _Setup, perturbation: Perturbation, n_null: int, seed: int) -> np.ndarray:
    nulls = _null_perturbations(perturbation, setup.genome_obj(), n_null, seed + 7)
    if not nulls:
        return np.zeros(0)
    n = N_NULL_CELLS
    wt = _simulate(setup, None, n_cells=n, seed=seed)
    return np.array(
        [_score(setup, wt, _simulate(setup, p, n_cells=n, seed=seed), p) for p in nulls]
    )


def _null_signature(perturbation: Perturbation) -> tuple:
    """Perturbations with the same signature share one null (same kinds, values and size)."""
    return tuple(sorted((e.kind, e.value) for e in perturbation.edits))


# ------------------------------------------------------------------------------- result
class PerturbationResult:
    """What :func:`perturb` predicts for one perturbation.

    Attributes
    ----------
    perturbation
        The perturbation's name, e.g. ``"Gata1 KO"``.
    fates
        DataFrame indexed by fate (the wild-type attractors' cell types, observed cell types
        that end states reach, and ``"novel"`` for end states far from all of them) with
        ``wt`` and ``perturbed`` fate fractions, ``delta`` (perturbed - wt), ``ci_low`` and
        ``ci_high`` (95 % paired bootstrap interval of ``delta``) and ``p_value`` (McNemar's
        exact test on the paired cells). Empty for a steady-state genome.
    lost_fates, gained_fates
        Fates reached by at least 1 % of wild-type (perturbed) cells and by fewer than 1 % of
        perturbed (wild-type) cells.
    expression
        DataFrame indexed by the genome's genes: mean end-state level ``wt`` and ``perturbed``
        (model coordinates, about [0, 1]) and ``log2fc`` (pseudocount 0.01).
    log2fc
        Series over all genes: the genome's genes from the simulation, every other gene from
        the latent model's decoder (only the genome's genes without a latent model).
    decoded
        AnnData of the simulated cells over all genes (``obs["condition"]`` ∈ {``wt``,
        ``perturbed``}, ``.X`` = log1p of decoded expression per 10,000), or ``None``.
    score, score_pvalue
        The perturbation score (fates: total-variation distance between the wild-type and
        perturbed fate distributions; steady state: RMS log2 fold change of the genes it does
        not set) and its p-value against a null of random perturbations of the same kind and
        size, ``(1 + #null ≥ score) / (1 + n_null)``.
    null_scores
        The null's scores.
    trajectories, times
        ``{"wt": (n_save, n_traj, 2), "perturbed": ...}``: paths of the first simulated cells
        on the landscape's basis (empty without a landscape), and the snapshot times.
    params
        Settings of the run.

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
    >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("A"), n_cells=200, n_null=3)
    >>> res.lost_fates, round(float(res.fates.loc["B-high", "perturbed"]), 2)
    (['A-high'], 1.0)
    """

    def __init__(
        self,
        *,
        perturbation: str,
        fates: pd.DataFrame,
        expression: pd.DataFrame,
        log2fc: pd.Series,
        decoded: AnnData | None,
        score: float,
        null_scores: np.ndarray,
        trajectories: dict[str, np.ndarray],
        times: np.ndarray,
        params: dict[str, Any],
    ):
        self.perturbation = perturbation
        self.fates = fates
        self.lost_fates, self.gained_fates = _lost_gained(fates)
        self.expression = expression
        self.log2fc = log2fc
        self.decoded = decoded
        self.score = float(score)
        self.null_scores = np.asarray(null_scores, dtype=np.float64)
        n = len(self.null_scores)
        self.score_pvalue = float((1 + np.sum(self.null_scores >= self.score)) / (1 + n))
        self.trajectories = trajectories
        self.times = times
        self.params = params

    def __repr__(self) -> str:
        if self.fates.empty:
            return (
                f"PerturbationResult({self.perturbation!r}, steady state, score {self.score:.3g})"
            )
        return (
            f"PerturbationResult({self.perturbation!r}, lost {self.lost_fates}, gained "
            f"{self.gained_fates}, score {self.score:.3g} (p = {self.score_pvalue:.3g}))"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows, one per fate: ``perturbation``, ``fate``, ``wt``, ``perturbed``,
        ``delta``, ``ci_low``, ``ci_high``, ``p_value``, ``lost``, ``gained``, ``score``,
        ``score_pvalue``.

        Examples
        --------
        >>> import anndata as ad, numpy as np, gclandscape as gcl
        >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
        >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
        >>> adata.var_names = ["A", "B"]
        >>> toggle.write_to_adata(adata)
        >>> _ = gcl.landscape.fit_landscape(adata)
        >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("B"), n_cells=100, n_null=2)
        >>> list(res.to_frame().columns[:4])
        ['perturbation', 'fate', 'wt', 'perturbed']
        """
        return _tidy(self.perturbation, self.fates, self.score, self.score_pvalue)


def _tidy(name: str, fates: pd.DataFrame, score: float, score_pvalue: float) -> pd.DataFrame:
    lost, gained = _lost_gained(fates)
    df = fates.reset_index()
    df.insert(0, "perturbation", name)
    df["fate"] = df["fate"].astype(str)
    df["lost"] = df["fate"].isin(lost)
    df["gained"] = df["fate"].isin(gained)
    df["score"] = float(score)
    df["score_pvalue"] = float(score_pvalue)
    return df


# ------------------------------------------------------------------------------- decoding
def _decode(
    adata: AnnData, setup: _Setup, model: LatentModel, wt: _Sim, mut: _Sim
) -> tuple[AnnData, pd.Series]:
    """Map simulated regulator states to the latent (kNN regression fitted on the observed
    cells) and decode every gene with the scvi-tools decoder."""
    import anndata as ad
    from sklearn.neighbors import KNeighborsRegressor

    from ..landscape._landscape import _model_states

    if Key.obsm.latent not in adata.obsm:
        raise GclError(
            f"decode needs the latent adata.obsm[{Key.obsm.latent!r}] of the latent model; "
            "run gcl.latent.fit(adata) first, or pass decode=False."
        )
    genome = setup.genome_obj()
    states, _ = _model_states(adata, genome, setup.genome_key)
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


def _trajectories(
    adata: AnnData, setup: _Setup, landscape_key: str, wt: _Sim, mut: _Sim, seed: int
) -> dict[str, np.ndarray]:
    from ..landscape import Landscape
    from ..landscape._landscape import _basis, _model_states

    if setup.mode == STEADY_STATE or wt.snapshots is None:
        return {}
    from sklearn.decomposition import PCA

    land = Landscape.from_adata(adata, landscape_key)
    genome = setup.genome_obj()
    states, _ = _model_states(adata, genome, setup.genome_key)
    land_seed = int(land.params.get("seed", 0))
    if land.basis == "pca:regulators":  # the landscape's own map, even if a latent came later
        to_basis = PCA(n_components=2, random_state=land_seed).fit(states).transform
    else:
        basis = None if land.basis.startswith("pca:") else land.basis
        _, to_basis, _, _ = _basis(adata, states, basis, land_seed)
    out = {}
    for name, sim in (("wt", wt), ("perturbed", mut)):
        snaps = sim.snapshots[:, :N_TRAJ]
        out[name] = to_basis(snaps.reshape(-1, genome.n_genes)).reshape(*snaps.shape[:2], 2)
    return out


# ------------------------------------------------------------------------------- API
def _check_perturbation(perturbation: Any, genome_genes: list[str]) -> Perturbation:
    if not isinstance(perturbation, Perturbation):
        raise GclError(
            "perturbation must be a gcl.sim perturbation (Knockout, Knockdown, Overexpression, "
            f"EdgeMutation or a sum of them), got {type(perturbation).__name__}."
        )
    perturbation.check(genome_genes)
    return perturbation


def _check_n_cells(n_cells: int) -> int:
    if not isinstance(n_cells, (int, np.integer)) or n_cells < 10:
        raise GclError(f"n_cells must be an integer of at least 10, got {n_cells!r}.")
    return int(n_cells)


#: Bytes per simulated cell and gene and condition: the float32 state and noise of the
#: integrator, the field's intermediates and the float64 end and relaxed states.
BYTES_PER_VALUE = 64
#: Bytes per cell, gene and saved snapshot (float32 in torch, float64 copy in numpy).
BYTES_PER_SNAPSHOT = 12
#: Bytes per cell, gene and fate reference of the distance computation (difference, square).
BYTES_PER_DISTANCE = 16


def memory_needed(
    n_cells: int, *, n_genes: int, n_refs: int, n_members: int, n_save: int | None
) -> int:
    """Bytes a simulation of ``n_cells`` wild-type and mutant cells holds at its peak (an
    estimate on the high side), for ``n_members`` genomes of ``n_genes`` genes.

    Examples
    --------
    >>> memory_needed(1000, n_genes=10, n_refs=4, n_members=1, n_save=None)
    1920000
    """
    per_value = 2 * (BYTES_PER_VALUE + (n_save or 0) * BYTES_PER_SNAPSHOT)  # wt and mutant
    per_value += max(n_refs, 1) * BYTES_PER_DISTANCE
    return int(n_members) * int(n_cells) * max(int(n_genes), 1) * per_value


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or ``None`` when it cannot be told.

    psutil when installed, else ``MemAvailable`` of ``/proc/meminfo`` (Linux) or the free
    physical pages of ``os.sysconf``; a cgroup (container) limit lowers it.
    """
    avail: int | None = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            pass
        if avail is None:
            try:
                avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (ValueError, OSError, AttributeError):
                avail = None
    try:  # a container's limit is lower than the machine's memory
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        used = int((cgroup / "memory.current").read_text().strip())
        if limit != "max":
            room = max(int(limit) - used, 0)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def _check_memory(setup: _Setup, n_cells: int, *, n_save: int | None) -> None:
    """Refuse a simulation that cannot fit before allocating any of it."""
    n_genes = len(setup.starts[0]) if len(setup.starts) else 1
    kw = {"n_genes": n_genes, "n_refs": len(setup.ref_labels), "n_members": 1, "n_save": n_save}
    need = memory_needed(n_cells, **kw)
    avail = available_memory()
    if avail is None or need <= avail:
        return
    fits = avail // max(memory_needed(1, **kw), 1)
    raise GclError(
        f"n_cells={n_cells} needs about {need / 2**30:.1f} GB of memory to simulate "
        f"{n_genes} genes, but only {avail / 2**30:.1f} GB available; pass n_cells of at "
        f"most about {fits:,} (a few thousand cells give fate fractions to about 1 %)."
    )


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
       units without noise.
    3. **Fates**: each end state is named by the nearest wild-type attractor of the landscape
       or observed cell-type centroid (root-mean-square distance in model coordinates scaled
       by each gene's maximum, over the genes the perturbation does not set); farther than
       half the distance between the two closest attractors (clipped to [0.05, 0.3]) it is
       ``"novel"``.
    4. **Statistics**: paired bootstrap intervals, McNemar's exact test per fate, and a
       perturbation score against ``n_null`` random perturbations of the same kind and size
       on random genes (300 cells each).
    5. **Decoding** (``decode=True`` and a latent ``model``): simulated end states are mapped
       to the latent by a kNN regression fitted on the observed cells and decoded over all
       genes.

    A genome fitted in steady-state mode (no time signal) has no fates: the result is the
    shifted steady state reached from the observed cells (``expression``, ``log2fc``,
    ``decoded``) and an empty fate table.

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
        Random perturbations in the null of the score (0 skips it).

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
    import time

    t0 = time.perf_counter()
    n_cells = _check_n_cells(n_cells)
    setup = _setup(adata, genome_key=genome_key, landscape_key=landscape_key, root=root)
    genome = setup.genome_obj()
    perturbation = _check_perturbation(perturbation, genome.genes)
    save = N_SAVE if setup.mode != STEADY_STATE else None
    _check_memory(setup, n_cells, n_save=save)
    if decode and model is not None:
        from ..latent import LatentModel

        if not isinstance(model, LatentModel):
            raise GclError(f"model must be a gcl.latent.LatentModel, got {type(model).__name__}.")
    wt = _simulate(setup, None, n_cells=n_cells, seed=seed, n_save=save)
    mut = _simulate(setup, perturbation, n_cells=n_cells, seed=seed, n_save=save)
    return _result(
        adata, setup, perturbation, wt, mut,
        landscape_key=landscape_key, seed=seed, decode=decode, model=model,
        null=_null_scores(setup, perturbation, n_null, seed) if n_null else np.zeros(0),
        t0=t0, n_cells=n_cells,
    )  # fmt: skip


def _result(
    adata: AnnData | None,
    setup: _Setup,
    perturbation: Perturbation,
    wt: _Sim,
    mut: _Sim,
    *,
    landscape_key: str,
    seed: int,
    decode: bool,
    model: Any,
    null: np.ndarray,
    t0: float,
    n_cells: int,
) -> PerturbationResult:
    import time

    genome = setup.genome_obj()
    if setup.mode == STEADY_STATE:
        fates = pd.DataFrame(
            {c: pd.Series(dtype=np.float64) for c in FATES_COLUMNS},
            index=pd.Index([], name="fate", dtype=str),
        )
    else:
        fates = _fate_table(wt.labels, mut.labels, setup.ref_labels, seed)
    m_wt, m_pt = wt.end.mean(0), mut.end.mean(0)
    expression = pd.DataFrame(
        {"wt": m_wt, "perturbed": m_pt, "log2fc": _log2fc(m_wt, m_pt)},
        index=pd.Index(genome.genes, name="gene"),
    )
    log2fc = expression["log2fc"].rename("log2fc")
    decoded = None
    if decode and model is not None and adata is not None:
        decoded, fc_all = _decode(adata, setup, model, wt, mut)
        fc_all.loc[fc_all.index.intersection(genome.genes)] = log2fc
        log2fc = fc_all
    traj = _trajectories(adata, setup, landscape_key, wt, mut, seed) if adata is not None else {}
    params = {
        "perturbation": perturbation.name,
        "mode": setup.mode,
        "n_cells": n_cells,
        "seed": seed,
        "start_cells": setup.root_info,
        "t_develop": T_DEVELOP,
        "t_relax": T_RELAX,
        "dt": DT,
        "novel_tolerance": setup.novel_tol,
        "n_null": len(null),
        "seconds": time.perf_counter() - t0,
    }
    res = PerturbationResult(
        perturbation=perturbation.name,
        fates=fates,
        expression=expression,
        log2fc=log2fc,
        decoded=decoded,
        score=_score(setup, wt, mut, perturbation),
        null_scores=null,
        trajectories=traj,
        times=wt.times if wt.times is not None else np.zeros(0),
        params=params,
    )
    logger.info("perturb: %r in %.1f s (%s)", res, params["seconds"], setup.root_info)
    return res
