"""Baselines and metrics of ``perturbseq.py`` (predicted log2 fold changes from control cells).

Every method sees the control cells only (counts), except the reference ``mean of other
KOs``. Each returns a knockout × gene DataFrame of predicted log2 fold changes.

Baselines, on ``x = log1p(counts normalised to the median library size)`` of the controls:

- ``co-expression`` (zero-shot): for every gene ``j``, the least-squares slope ``b_j`` of
  ``x_j`` on the knocked-out gene's ``x_k`` across control cells; setting ``x_k`` to 0 shifts
  the mean of ``x_j`` by ``b_j * (0 - mean x_k)``, clipped so the mean stays >= 0.
- ``ridge GRN propagation`` (zero-shot, CellOracle-style, Kamimoto et al. 2023): every gene
  regressed by ridge (alpha 1) on the regulators (the base GRN's TFs; no self loops), the
  knockout's shift ``-x_k`` propagated 3 steps through the coefficients
  (:func:`_knockout_baselines.propagate_knockout`), cells clipped at 0.
- ``mean of other KOs`` (not zero-shot; a reference): each knockout predicted by the mean
  observed change of the other knockouts of the same screen.

Both zero-shot baselines predict a change of mean log expression ``d``; it is reported as
``d / ln 2`` (log2 units). Pearson's r, the sign and the ranks do not depend on that scale.

Metrics (:func:`score`), per knockout, over the genes other than the knocked-out one (its own
drop is what every method gets right by construction):

- ``r_all``: Pearson's r of predicted vs observed log2FC over all those genes;
- ``r_top20``: the same over the 20 genes with the largest observed ``|log2FC|``;
- ``sign_top20``: the share of those 20 whose predicted sign is the observed one (a
  prediction of exactly 0 counts as wrong);
- across knockouts, ``rank_effect``: Spearman's rho of the predicted effect size (mean
  ``|predicted log2FC|``) vs the observed one (mean ``|observed log2FC|``): are weak
  knockouts predicted weak.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from _knockout_baselines import mean_others_log2fc, propagate_knockout

LN2 = float(np.log(2.0))
RIDGE_ALPHA = 1.0
N_STEPS = 3
N_TOP = 20


def lognorm(counts: np.ndarray) -> np.ndarray:
    """``log1p`` of counts scaled to the median library size (cells × genes)."""
    counts = np.asarray(counts, dtype=np.float64)
    lib = counts.sum(1)
    return np.log1p(counts / np.where(lib > 0, lib, 1.0)[:, None] * np.median(lib))


def coexpression_log2fc(x: np.ndarray, genes: Sequence[str], knockouts: Sequence[str]):
    """The co-expression regression baseline of the module docstring (knockout × gene)."""
    x = np.asarray(x, dtype=np.float64)
    genes = [str(g) for g in genes]
    mean = x.mean(0)
    xc = x - mean
    rows = {}
    for ko in knockouts:
        k = genes.index(ko)
        var = float(xc[:, k] @ xc[:, k])
        slope = xc.T @ xc[:, k] / var if var > 0 else np.zeros(len(genes))
        shifted = np.clip(mean + slope * (0.0 - mean[k]), 0.0, None)
        shifted[k] = 0.0
        rows[ko] = (shifted - mean) / LN2
    return pd.DataFrame(rows, index=genes).T


def ridge_on_sources(
    x: np.ndarray, sources: Sequence[int], *, alpha: float = RIDGE_ALPHA
) -> np.ndarray:
    """``coef[target, source]``: ridge regression (centred, intercept free) of every gene on
    the ``sources`` columns, a gene never on itself."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(0)
    src = np.asarray(sources, dtype=np.int64)
    S = xc[:, src]
    gram = S.T @ S
    rhs = S.T @ xc  # sources × genes
    coef = np.zeros((x.shape[1], x.shape[1]))
    eye = np.eye(len(src))
    coef[:, src] = np.linalg.solve(gram + alpha * eye, rhs).T  # genes that are no source
    for i, s in enumerate(src):  # a source gene is regressed on the other sources only
        keep = np.arange(len(src)) != i
        sol = np.linalg.solve(gram[np.ix_(keep, keep)] + alpha * eye[:-1, :-1], rhs[keep, s])
        coef[s, src] = 0.0
        coef[s, src[keep]] = sol
    return coef


def ridge_propagation_log2fc(
    x: np.ndarray,
    genes: Sequence[str],
    regulators: Sequence[str],
    knockouts: Sequence[str],
    *,
    alpha: float = RIDGE_ALPHA,
    n_steps: int = N_STEPS,
) -> pd.DataFrame:
    """The CellOracle-style baseline of the module docstring (knockout × gene)."""
    x = np.asarray(x, dtype=np.float64)
    genes = [str(g) for g in genes]
    coef = ridge_on_sources(x, [genes.index(r) for r in regulators], alpha=alpha)
    mean = x.mean(0)
    rows = {}
    for ko in knockouts:
        shifted = propagate_knockout(x, coef, genes.index(ko), n_steps=n_steps).mean(0)
        rows[ko] = (shifted - mean) / LN2
    return pd.DataFrame(rows, index=genes).T


def mean_of_others(observed: pd.DataFrame) -> pd.DataFrame:
    """Each knockout predicted by the mean observed change of the others (reference)."""
    return mean_others_log2fc(observed)


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    if len(p) < 3 or np.std(p) < 1e-12 or np.std(t) < 1e-12:
        return float("nan")
    return float(np.corrcoef(p, t)[0, 1])


def score(pred: pd.DataFrame, observed: pd.DataFrame, *, n_top: int = N_TOP) -> pd.DataFrame:
    """Per-knockout metrics of the module docstring: columns ``r_all``, ``r_top20``,
    ``sign_top20``, ``effect_pred``, ``effect_obs``; genes missing from ``pred`` count as a
    prediction of 0 (no change)."""
    rows = {}
    for ko in observed.index:
        obs = observed.loc[ko].drop(ko, errors="ignore")
        p = pred.loc[ko].reindex(obs.index).fillna(0.0).to_numpy(dtype=np.float64)
        o = obs.to_numpy(dtype=np.float64)
        top = np.argsort(-np.abs(o), kind="stable")[:n_top]
        rows[ko] = {
            "r_all": _pearson(p, o),
            "r_top20": _pearson(p[top], o[top]),
            "sign_top20": float(np.mean(np.sign(p[top]) == np.sign(o[top]))),
            "effect_pred": float(np.mean(np.abs(p))),
            "effect_obs": float(np.mean(np.abs(o))),
        }
    return pd.DataFrame(rows).T


def rank_effect(per_ko: pd.DataFrame) -> float:
    """Spearman's rho of predicted vs observed effect size across knockouts (NaN when the
    prediction is the same for every knockout)."""
    from scipy.stats import spearmanr

    p, o = per_ko["effect_pred"].to_numpy(float), per_ko["effect_obs"].to_numpy(float)
    if np.ptp(p) < 1e-12 or np.ptp(o) < 1e-12:
        return float("nan")
    return float(spearmanr(p, o).statistic)
