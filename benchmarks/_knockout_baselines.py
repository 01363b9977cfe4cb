"""Baselines of ``knockouts.py``: a CellOracle-style linear knockout simulation and the two
expression baselines of the steady-state check.

CellOracle-style (Kamimoto et al. 2023, ``celloracle.trajectory.oracle_GRN._do_simulation``)
---------------------------------------------------------------------------------------------
1. GRN: for each cell type (CellOracle fits one GRN per cluster; a type with fewer than
   ``min_cells`` cells uses the GRN fitted on all cells) and each target gene, a
   :class:`sklearn.linear_model.Ridge` regression of the target on every other gene, on the
   same cells × genes matrix the genome was fitted on (the genome's model coordinates).
   ``coef[target, source]``.
2. Shift: the knocked-out gene is set to 0 in every cell, ``delta = x_ko - x``; the shift is
   propagated ``n_steps = 3`` times: ``delta <- delta @ coef.T``, the knocked-out gene's entry
   reset to its input value, and ``x + delta`` clipped at 0 (CellOracle's loop).
3. Fates: every observed cell, and every shifted cell, is named by the nearest observed
   cell-type centroid (Euclidean, over the genes the knockout does not set, as
   ``gcl.sim.perturb`` names its end states; the wild-type cells over all genes). Fate
   fractions are over all cells; a wild-type fate is *lost* when at least 1 % of the
   wild-type and fewer than 1 % of the shifted cells carry it (``gcl.sim``'s rule).

Steady-state baselines (predicted log2 fold change per gene, compared with the truth)
-------------------------------------------------------------------------------------
- ``only_target``: only the knocked-out gene changes (-1 there, 0 elsewhere; Pearson's r does
  not depend on the value).
- ``mean_others``: the mean of the TRUE changes of all other knockouts (leave-one-out) — the
  "mean baseline" that published perturbation models often fail to beat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

N_STEPS = 3
RIDGE_ALPHA = 1.0
MIN_CELLS = 30
MIN_FRACTION = 0.01


def ridge_grn(x: np.ndarray, *, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """``coef[target, source]``: Ridge regression of each gene on every other gene (no self
    loops). ``x`` is ``(n_cells, n_genes)``."""
    from sklearn.linear_model import Ridge

    x = np.asarray(x, dtype=np.float64)
    G = x.shape[1]
    coef = np.zeros((G, G))
    for t in range(G):
        src = np.delete(np.arange(G), t)
        model = Ridge(alpha=alpha).fit(x[:, src], x[:, t])
        coef[t, src] = model.coef_
    return coef


def ridge_grns(
    x: np.ndarray,
    groups: Sequence | None,
    *,
    alpha: float = RIDGE_ALPHA,
    min_cells: int = MIN_CELLS,
) -> dict[str, np.ndarray]:
    """One GRN per group (``"__all__"``: all cells, used for groups that are too small)."""
    out = {"__all__": ridge_grn(x, alpha=alpha)}
    if groups is not None:
        groups = np.asarray(groups).astype(str)
        for g in pd.unique(groups):
            m = groups == g
            if m.sum() >= min_cells:
                out[str(g)] = ridge_grn(x[m], alpha=alpha)
    return out


def propagate_knockout(
    x: np.ndarray, coef: np.ndarray, ko: int | Sequence[int], *, n_steps: int = N_STEPS
) -> np.ndarray:
    """Cells after CellOracle's shift propagation of a knockout (set to 0) through ``coef``
    (``[target, source]``); returns the shifted ``(n_cells, n_genes)`` states."""
    x = np.asarray(x, dtype=np.float64)
    ko = np.atleast_1d(np.asarray(ko, dtype=np.int64))
    delta_in = np.zeros_like(x)
    delta_in[:, ko] = -x[:, ko]
    fixed = np.zeros(x.shape[1], dtype=bool)
    fixed[ko] = True
    delta = delta_in.copy()
    for _ in range(n_steps):
        delta = delta @ coef.T
        delta[:, fixed] = delta_in[:, fixed]
        delta = np.clip(x + delta, 0.0, None) - x
    return x + delta


def nearest_centroid(
    x: np.ndarray, centroids: np.ndarray, labels: Sequence[str], keep: np.ndarray | None = None
) -> np.ndarray:
    """Label of the nearest centroid (Euclidean over the genes in ``keep``) for each row."""
    keep = np.ones(x.shape[1], dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    d = ((x[:, None, keep] - centroids[None, :, keep]) ** 2).sum(-1)
    return np.asarray(labels, dtype=object)[d.argmin(1)]


def celloracle_screen(
    x: np.ndarray,
    labels: Sequence[str],
    genes: Sequence[str],
    *,
    knockouts: Sequence[str] | None = None,
    alpha: float = RIDGE_ALPHA,
    n_steps: int = N_STEPS,
    per_group: bool = True,
) -> pd.DataFrame:
    """The CellOracle-style knockout screen of the module docstring.

    Returns
    -------
    Tidy DataFrame: ``perturbation`` (``"<gene> KO"``), ``gene``, ``fate``, ``wt``,
    ``perturbed``, ``delta``, ``lost``.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    genes = [str(g) for g in genes]
    types = list(pd.unique(labels))
    centroids = np.stack([x[labels == t].mean(0) for t in types])
    grns = ridge_grns(x, labels if per_group else None, alpha=alpha)
    wt_lab = nearest_centroid(x, centroids, types)
    wt = pd.Series(wt_lab).value_counts(normalize=True).reindex(types).fillna(0.0)
    rows = []
    for gene in knockouts or genes:
        k = genes.index(gene)
        shifted = np.empty_like(x)
        for t in types:
            m = labels == t
            shifted[m] = propagate_knockout(x[m], grns.get(t, grns["__all__"]), k, n_steps=n_steps)
        keep = np.ones(len(genes), dtype=bool)
        keep[k] = False
        lab = nearest_centroid(shifted, centroids, types, keep)
        pert = pd.Series(lab).value_counts(normalize=True).reindex(types).fillna(0.0)
        for t in types:
            rows.append(
                (f"{gene} KO", gene, t, wt[t], pert[t], pert[t] - wt[t],
                 bool(wt[t] >= MIN_FRACTION and pert[t] < MIN_FRACTION))
            )  # fmt: skip
    return pd.DataFrame(
        rows, columns=["perturbation", "gene", "fate", "wt", "perturbed", "delta", "lost"]
    )


def celloracle_log2fc(
    x: np.ndarray, genes: Sequence[str], *, alpha: float = RIDGE_ALPHA, n_steps: int = N_STEPS,
    pseudocount: float = 0.01,
) -> pd.DataFrame:  # fmt: skip
    """Knockout × gene predicted log2 fold change of the mean state for one population."""
    x = np.asarray(x, dtype=np.float64)
    coef = ridge_grn(x, alpha=alpha)
    m = x.mean(0)
    out = {}
    for k, g in enumerate(genes):
        shifted = propagate_knockout(x, coef, k, n_steps=n_steps).mean(0)
        out[str(g)] = np.log2((shifted + pseudocount) / (m + pseudocount))
    return pd.DataFrame(out, index=[str(g) for g in genes]).T


def only_target_log2fc(genes: Sequence[str]) -> pd.DataFrame:
    """Baseline (a): only the knocked-out gene changes (knockout × gene)."""
    genes = [str(g) for g in genes]
    return pd.DataFrame(-np.eye(len(genes)), index=genes, columns=genes)


def mean_others_log2fc(true: pd.DataFrame) -> pd.DataFrame:
    """Baseline (b): each knockout predicted by the mean true change of the others."""
    v = true.to_numpy(dtype=np.float64)
    n = len(v)
    loo = (v.sum(0, keepdims=True) - v) / max(n - 1, 1)
    return pd.DataFrame(loo, index=true.index, columns=true.columns)


def pearson_rows(
    pred: pd.DataFrame, true: pd.DataFrame, *, exclude_self: bool = False
) -> pd.Series:
    """Pearson r between matching rows (knockouts) over genes; NaN where either row is
    constant. ``exclude_self`` drops each knockout's own gene."""
    out = {}
    for ko in true.index:
        p = pred.loc[ko, true.columns].to_numpy(dtype=np.float64)
        t = true.loc[ko].to_numpy(dtype=np.float64)
        if exclude_self:
            keep = true.columns != ko
            p, t = p[keep], t[keep]
        if np.std(p) < 1e-12 or np.std(t) < 1e-12:
            out[ko] = np.nan
        else:
            out[ko] = float(np.corrcoef(p, t)[0, 1])
    return pd.Series(out, name="pearson_r")
