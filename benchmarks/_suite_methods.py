"""Methods of the generalisation suite (``suite.py``): what each sees and what it predicts.

Every method gets the same input (:func:`method_input`): the counts, ``obs["celltype"]``, the
root group's name (``"progenitor"``, the simulation's label of uncommitted cells) and
``var["gcl_regulator"]`` (which genes are regulators, like a TF list) — never the simulation
clock, the trajectories, the rules or the truth (``.uns["gcl_truth"]``, ``obs["sim_time"]``
and ``obs["sim_trajectory"]`` are deleted from a copy).

Knockout methods (predicted lost fates of every single regulator knockout):

- ``gclandscape`` (:func:`run_gclandscape`): ``gcl.pp.recipe(n_top_genes=500)`` →
  ``fit_grn(genes=<regulators>, root=<root>, groupby=<cell types>)`` (pseudotime, no latent
  model, ``n_bootstrap=0``: the bootstrap only adds the edges' ``confidence``) →
  ``fit_landscape(groupby=...)`` → ``screen("knockouts", root=..., n_null=0)``. ``n_null``
  only feeds ``score_pvalue`` (``gcl.sim._screen``: the null is drawn for the perturbation
  score; ``lost`` comes from the fate table alone), so the lost fates do not depend on it.
- ``nothing_lost``: every knockout keeps every fate.
- ``specific_regulators`` (:func:`specificity_z`, :func:`specific_lost`): for each fate the
  ``k`` regulators with the highest specificity z-score of mean log expression in that fate
  against all other cells (Welch: ``(m_in - m_out) / sqrt(v_in / n_in + v_out / n_out)``); a
  knockout loses the fates it is among the top ``k`` of. ``k`` in 1..5 is chosen on dev.
- ``linear_propagation`` (:func:`linear_screen`): CellOracle's recipe on log-normalised
  regulator expression: a ridge GRN per cell type (``_knockout_baselines.ridge_grns``), the
  knockout's shift propagated 3 steps (``_knockout_baselines.propagate_knockout``), then each
  cell's transition probabilities to its ``k = 30`` nearest neighbours (same space) are the
  softmax of ``cos(shift_i, x_j - x_i) / 0.05`` (CellOracle's ``sigma_corr``; a cell without
  shift moves uniformly, so the wild type is the unbiased walk), and a Markov walk from the
  root-group cells is absorbed in the cells of the terminal cell types (every type but the
  root): the fate fractions (:func:`absorption`). A fate is lost when its fraction drops below
  1 % or below ``factor`` × its wild-type fraction (``factor`` chosen on dev).

GRN methods (regulator × regulator edges): ``genie3``, ``partial_corr``, ``pearson``
(``_grn_baselines``) on log-normalised regulator expression, and ``fit_grn``'s genome (ranked
by ``|weight|``, as ``grn_recovery.genome_edge_scores``) on the gclandscape row.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _grn_baselines as GB
import _knockout_baselines as KB

ROOT = "progenitor"
GROUPBY = "celltype"
MIN_FRACTION = 0.01
K_CHOICES = (1, 2, 3, 4, 5)
FACTOR_CHOICES = (0.0, 0.05, 0.1, 0.25, 0.5)  # 0: the 1 % rule alone
N_NEIGHBOURS = 30
SIGMA_CORR = 0.05


# ------------------------------------------------------------------------------- inputs
def method_input(adata):
    """A copy of ``adata`` without the truth, the clock and the trajectories."""
    from gclandscape._keys import Key

    ad = adata.copy()
    ad.uns.pop(Key.uns.truth, None)
    for col in (Key.obs.sim_time, Key.obs.trajectory):
        if col in ad.obs:
            del ad.obs[col]
    return ad


def regulators(adata) -> list[str]:
    """The genes flagged ``var["gcl_regulator"]``."""
    from gclandscape._keys import Key

    return [str(g) for g in adata.var_names[adata.var[Key.var.regulator].to_numpy(bool)]]


def log_expression(adata, genes: Sequence[str]) -> np.ndarray:
    """``normalize_total`` + ``log1p`` of the counts, columns ``genes`` (as ``grn_recovery``'s
    baselines see counts data)."""
    from _grn_data import GRNDataset

    ds = GRNDataset("", "", adata, pd.DataFrame(), list(genes), "", counts=True)
    return ds.expression()


# ------------------------------------------------------------------------------- gclandscape
def run_gclandscape(adata, genes: list[str], *, n_sim: int, root: str = ROOT,
                    groupby: str = GROUPBY, fit_kwargs: dict | None = None) -> dict:  # fmt: skip
    """The pipeline of the module docstring; returns ``lost`` (knockout → set of fates),
    ``p_lost`` (knockout → fate → probability, or None), ``wt`` (fate → simulated wild-type
    fraction), ``attractors`` (``label``, ``basin_fraction``), ``edges``
    (:class:`_grn_baselines.EdgeScores`) and ``seconds``; ``fit_kwargs`` go to ``fit_grn``,
    except ``"pseudotime"``: a :func:`gclandscape.tl.pseudotime` method whose time
    ``fit_grn`` is then given (``time_key``)."""
    import gclandscape as gcl
    from grn_recovery import genome_edge_scores
    from knockouts import _lost_sets

    t0 = time.perf_counter()
    ad = adata.copy()
    gcl.pp.recipe(ad, n_top_genes=500)
    fit_kwargs = dict(fit_kwargs or {})
    method = fit_kwargs.pop("pseudotime", None)
    if method is not None:  # another gcl.tl.pseudotime method than fit_grn's (DPT)
        gcl.tl.pseudotime(ad, root=root, groupby=groupby, method=method)
        fit_kwargs.setdefault("time_key", "gcl_pseudotime")
    genome = gcl.landscape.fit_grn(ad, genes=genes, root=root, groupby=groupby, n_bootstrap=0,
                                   **fit_kwargs)  # fmt: skip
    land = gcl.landscape.fit_landscape(ad, groupby=groupby)
    table = gcl.sim.screen(
        ad, "knockouts", root=root, n_cells=n_sim, n_null=0, seed=0, progress=False
    )
    seconds = time.perf_counter() - t0
    table["gene"] = table["perturbation"].str.removesuffix(" KO")
    p_lost = None
    if "p_lost" in table:
        p_lost = {
            str(g): dict(zip(grp["fate"].astype(str), grp["p_lost"].astype(float)))
            for g, grp in table.groupby("gene", sort=False)
        }
    wt = table.drop_duplicates("fate").set_index("fate")["wt"].astype(float)
    return {
        "lost": _lost_sets(table, "gene"),
        "p_lost": p_lost,
        "wt": {str(k): float(v) for k, v in wt.items()},
        "attractors": land.attractors[["label", "basin_fraction"]].copy(),
        "edges": genome_edge_scores(genome, genes)[0],
        "seconds": seconds,
    }


# ------------------------------------------------------------------------------- specificity
def specificity_z(x: np.ndarray, labels: Sequence[str], genes: Sequence[str],
                  fates: Sequence[str]) -> pd.DataFrame:  # fmt: skip
    """Fate × gene Welch z-score of mean log expression in the fate against all other cells.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [1.2, 0.1], [0.0, 1.0], [0.1, 1.1]])
    >>> z = specificity_z(x, ["A", "A", "B", "B"], ["g1", "g2"], ["A", "B"])
    >>> bool(z.loc["A", "g1"] > 0 > z.loc["B", "g1"])
    True
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    rows = {}
    for f in fates:
        inside = labels == str(f)
        a, b = x[inside], x[~inside]
        if len(a) < 2 or len(b) < 2:
            rows[str(f)] = np.full(x.shape[1], np.nan)
            continue
        se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        rows[str(f)] = (a.mean(0) - b.mean(0)) / np.maximum(se, 1e-12)
    return pd.DataFrame.from_dict(rows, orient="index", columns=[str(g) for g in genes])


def specific_lost(z: pd.DataFrame, k: int) -> dict[str, set[str]]:
    """Knockout → fates it is among the ``k`` most specific regulators of (ties: gene order).

    Examples
    --------
    >>> z = pd.DataFrame([[3.0, 1.0, -2.0], [-1.0, 0.5, 4.0]], index=["A", "B"],
    ...                  columns=["g1", "g2", "g3"])
    >>> specific_lost(z, 1)
    {'g1': {'A'}, 'g2': set(), 'g3': {'B'}}
    """
    out: dict[str, set[str]] = {str(g): set() for g in z.columns}
    for fate, row in z.iterrows():
        v = np.nan_to_num(row.to_numpy(dtype=np.float64), nan=-np.inf)
        order = np.argsort(-v, kind="stable")[:k]
        for j in order:
            if np.isfinite(v[j]):
                out[str(z.columns[j])].add(str(fate))
    return out


# ------------------------------------------------------------------------------- Markov walk
def knn(x: np.ndarray, k: int = N_NEIGHBOURS) -> np.ndarray:
    """Indices ``(n, k)`` of each row's ``k`` nearest other rows (Euclidean)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(x) - 1)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    return idx[:, 1:]


def transition_matrix(x: np.ndarray, neighbours: np.ndarray, shift: np.ndarray | None,
                      *, sigma: float = SIGMA_CORR) -> np.ndarray:  # fmt: skip
    """Row-stochastic ``(n, n)`` transitions to each cell's neighbours: softmax over them of
    ``cos(shift_i, x_j - x_i) / sigma`` (0 where the cell has no shift: uniform).

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [2.0]])
    >>> nb = np.array([[1, 2], [0, 2], [1, 0]])
    >>> transition_matrix(x, nb, None)[1].tolist()
    [0.5, 0.0, 0.5]
    """
    n, k = neighbours.shape
    cos = np.zeros((n, k))
    if shift is not None:
        d = x[neighbours] - x[:, None, :]  # (n, k, G)
        norm_s = np.linalg.norm(shift, axis=1)
        norm_d = np.linalg.norm(d, axis=2)
        dot = np.einsum("nkg,ng->nk", d, shift)
        ok = (norm_s[:, None] > 1e-9) & (norm_d > 1e-12)
        cos = np.where(ok, dot / np.maximum(norm_s[:, None] * norm_d, 1e-300), 0.0)
    w = np.exp((cos - cos.max(1, keepdims=True)) / sigma)
    w /= w.sum(1, keepdims=True)
    P = np.zeros((n, n))
    np.add.at(P, (np.repeat(np.arange(n), k), neighbours.reshape(-1)), w.reshape(-1))
    return P


def absorption(
    P: np.ndarray, absorbing: Sequence[str | None], start: np.ndarray
) -> dict[str, float]:
    """Fate fractions of a Markov walk on ``P`` started uniformly on the ``start`` cells and
    absorbed at the first cell whose ``absorbing`` label is not None (labels are the fates).
    Mass that never reaches an absorbing cell (a closed transient component) is left out and
    the fractions renormalised.

    Examples
    --------
    A walk on 0-1-2-3-4 (absorbing ends ``A`` and ``B``) from cell 1 ends in ``B`` with
    probability 1/4 (gambler's ruin):

    >>> P = np.zeros((5, 5))
    >>> for i in range(1, 4):
    ...     P[i, i - 1] = P[i, i + 1] = 0.5
    >>> out = absorption(P, ["A", None, None, None, "B"], np.array([0, 1, 0, 0, 0], bool))
    >>> round(out["B"], 6)
    0.25
    """
    lab = np.array([None if a is None else str(a) for a in absorbing], dtype=object)
    is_abs = np.array([a is not None for a in lab])
    start = np.asarray(start, dtype=bool)
    fates = sorted({str(a) for a in lab[is_abs]})
    if not fates:
        return {}
    tr = np.flatnonzero(~is_abs)
    R = np.stack([P[np.ix_(tr, np.flatnonzero(lab == f))].sum(1) for f in fates], axis=1)
    Q = P[np.ix_(tr, tr)]
    # a tiny leak keeps I - Q invertible when a transient component is closed
    B = np.linalg.solve(np.eye(len(tr)) - (1.0 - 1e-9) * Q, R)
    pos = {c: i for i, c in enumerate(tr)}
    frac = np.zeros(len(fates))
    for c in np.flatnonzero(start):
        frac += B[pos[c]] if c in pos else (np.array(fates) == lab[c]).astype(float)
    total = frac.sum()
    return {f: float(v / total) if total > 0 else 0.0 for f, v in zip(fates, frac)}


def linear_screen(x: np.ndarray, labels: Sequence[str], genes: Sequence[str], *,
                  root: str = ROOT) -> tuple[dict[str, float], dict[str, dict[str, float]]]:  # fmt: skip
    """Wild-type and knockout fate fractions of ``linear_propagation`` (module docstring).

    Returns
    -------
    ``(wt, ko)``: fate → fraction, and knockout → fate → fraction.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    absorbing = [None if lab == root else lab for lab in labels]
    start = labels == root
    nb = knn(x)
    wt = absorption(transition_matrix(x, nb, None), absorbing, start)
    grns = KB.ridge_grns(x, labels)
    ko: dict[str, dict[str, float]] = {}
    for k, g in enumerate(genes):
        shifted = np.empty_like(x)
        for t in pd.unique(labels):
            m = labels == t
            shifted[m] = KB.propagate_knockout(x[m], grns.get(t, grns["__all__"]), k)
        ko[str(g)] = absorption(transition_matrix(x, nb, shifted - x), absorbing, start)
    return wt, ko


def lost_by_factor(wt: dict[str, float], ko: dict[str, dict[str, float]],
                   factor: float) -> dict[str, set[str]]:  # fmt: skip
    """Knockout → fates reached by >= 1 % in the wild type whose fraction falls below 1 % or
    below ``factor`` × the wild-type fraction.

    Examples
    --------
    >>> lost_by_factor({"A": 0.5, "B": 0.5}, {"g": {"A": 0.2, "B": 0.8}}, 0.5)
    {'g': {'A'}}
    """
    out = {}
    for g, frac in ko.items():
        out[g] = {
            f for f, w in wt.items()
            if w >= MIN_FRACTION and (frac.get(f, 0.0) < MIN_FRACTION
                                      or frac.get(f, 0.0) < factor * w)
        }  # fmt: skip
    return out


# ------------------------------------------------------------------------------- GRN
def grn_baselines(x: np.ndarray) -> dict[str, tuple[GB.EdgeScores, float]]:
    """``genie3`` (one job), ``partial_corr`` and ``pearson`` scores with their seconds."""
    import warnings

    out = {}
    fns = {
        "genie3": lambda: GB.genie3(x, n_jobs=1, seed=0),
        "partial_corr": lambda: GB.partial_correlation(x),
        "pearson": lambda: GB.pearson(x),
    }
    for name, fn in fns.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = GB.timed(fn)
    return out
