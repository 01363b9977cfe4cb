"""Metrics, dev-split choices and tables of the generalisation suite (``suite.py``).

Per network × method (one record, :data:`RECORD_KEYS`; None where a metric does not apply):

- ``ko_accuracy``, ``pair_precision``, ``pair_recall``: ``_knockout_data.score_knockouts``
  over the scored fates (exact lost set per knockout; (knockout, fate) pairs).
- ``brier``: mean over (knockout, scored fate) of ``(p_lost - lost)^2`` where a method gives
  probabilities (:func:`brier`).
- ``fates_found`` / ``n_fates``: scored fates that are attractors of the fitted genome (an
  attractor label equal to the fate, or the fate with a ``_2``-style suffix);
  ``spurious``: attractors with basin fraction > 5 % whose label is not an observed terminal
  cell type (``unlabelled``, ``unobserved``, ``progenitor``, ...) (:func:`attractor_fidelity`).
- ``wt_tv``: total variation between the simulated wild-type fate fractions and the observed
  ones (the truth's wild-type fractions), both over the scored fates, renormalised
  (:func:`total_variation`).
- ``auprc_ratio``, ``signed_auprc_ratio``: ``_grn_baselines`` over regulator pairs.
- ``seconds``: the method's wall time.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _knockout_data as D

MIN_SCORED = 0.05
SPURIOUS_BASIN = 0.05
RECORD_KEYS = ("network", "family", "split", "level", "truth", "method", "ko_accuracy",
               "pair_precision", "pair_recall", "brier", "fates_found", "n_fates", "spurious",
               "wt_tv", "auprc_ratio", "signed_auprc_ratio", "seconds")  # fmt: skip


def _num(v) -> float | None:
    """A JSON-friendly number: None for None/NaN."""
    if v is None:
        return None
    v = float(v)
    return None if np.isnan(v) else v


def scored_fates(wt_fractions: Mapping[str, float], min_fraction: float = MIN_SCORED) -> list[str]:
    """Wild-type fates reached by >= ``min_fraction`` of trajectories (never ``unsettled``).

    Examples
    --------
    >>> scored_fates({"A": 0.6, "B": 0.37, "C": 0.02, "unsettled": 0.01})
    ['A', 'B']
    """
    return [str(f) for f, v in wt_fractions.items() if v >= min_fraction and f != "unsettled"]


def ko_metrics(predicted: Mapping[str, Iterable[str]], truth: Mapping[str, Iterable[str]],
               fates: Sequence[str]) -> dict[str, float | None]:  # fmt: skip
    """``ko_accuracy``, ``pair_precision``, ``pair_recall`` (``score_knockouts``).

    Examples
    --------
    >>> ko_metrics({"a": {"X"}, "b": set()}, {"a": {"X"}, "b": {"Y"}}, ["X", "Y"])
    {'ko_accuracy': 0.5, 'pair_precision': 1.0, 'pair_recall': 0.5}
    """
    s = D.score_knockouts(predicted, truth, fates)
    return {"ko_accuracy": _num(s["accuracy"]), "pair_precision": _num(s["precision"]),
            "pair_recall": _num(s["recall"])}  # fmt: skip


def brier(p_lost: Mapping[str, Mapping[str, float]] | None, truth: Mapping[str, Iterable[str]],
          fates: Sequence[str]) -> float | None:  # fmt: skip
    """Mean ``(p - y)^2`` over (knockout, scored fate); a missing probability counts as 0.
    None without probabilities.

    Examples
    --------
    >>> brier({"a": {"X": 0.8, "Y": 0.1}}, {"a": {"X"}}, ["X", "Y"])  # (0.04 + 0.01) / 2
    0.025
    """
    if p_lost is None:
        return None
    err = []
    for ko, true in truth.items():
        t = D.parse_lost(true)
        for f in fates:
            p = float(p_lost.get(ko, {}).get(f, 0.0))
            err.append((p - float(f in t)) ** 2)
    return float(np.mean(err)) if err else None


def _base_label(label: str, names: Iterable[str]) -> str:
    """``"Ery_2"`` → ``"Ery"`` when ``Ery`` is one of ``names`` (``fit_landscape``'s suffix)."""
    label = str(label)
    names = set(names)
    if label in names:
        return label
    m = re.fullmatch(r"(.+)_\d+", label)
    return m.group(1) if m and m.group(1) in names else label


def attractor_fidelity(attractors: pd.DataFrame, fates: Sequence[str],
                       observed: Sequence[str]) -> dict[str, int]:  # fmt: skip
    """``fates_found`` (scored fates among the attractor labels), ``n_fates`` and
    ``spurious`` (attractors with basin fraction > 5 % whose label is not an observed
    terminal cell type).

    Examples
    --------
    >>> att = pd.DataFrame({"label": ["A", "A_2", "unlabelled", "progenitor", "C"],
    ...                     "basin_fraction": [0.5, 0.2, 0.1, 0.04, 0.16]})
    >>> attractor_fidelity(att, ["A", "B"], ["A", "B", "C"])
    {'fates_found': 1, 'n_fates': 2, 'spurious': 1}
    """
    observed = [str(o) for o in observed]
    labels = [_base_label(lab, observed) for lab in attractors["label"].astype(str)]
    basin = attractors["basin_fraction"].to_numpy(dtype=np.float64)
    found = sum(1 for f in fates if str(f) in labels)
    spurious = sum(1 for lab, b in zip(labels, basin) if b > SPURIOUS_BASIN and lab not in observed)
    return {"fates_found": int(found), "n_fates": len(fates), "spurious": int(spurious)}


def total_variation(simulated: Mapping[str, float], observed: Mapping[str, float],
                    fates: Sequence[str]) -> float | None:  # fmt: skip
    """Total variation ``0.5 * sum |p - q|`` between two fate distributions over ``fates``,
    each renormalised over them (1.0 when the simulated one puts no mass there).

    Examples
    --------
    >>> total_variation({"A": 0.3, "B": 0.1, "x": 0.6}, {"A": 0.5, "B": 0.5}, ["A", "B"])
    0.25
    """
    if not fates:
        return None
    p = np.array([float(simulated.get(f, 0.0)) for f in fates])
    q = np.array([float(observed.get(f, 0.0)) for f in fates])
    if q.sum() <= 0:
        return None
    if p.sum() <= 0:
        return 1.0
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# ------------------------------------------------------------------------------- dev choices
def choose_on_dev(candidates: pd.DataFrame, setting: str) -> object:
    """The ``setting`` value with the highest mean ``ko_accuracy`` over dev networks (ties:
    the first in the order of appearance). ``candidates`` has ``split``, ``setting`` and
    ``ko_accuracy`` columns; only ``split == "dev"`` rows are used.

    Examples
    --------
    >>> c = pd.DataFrame({"split": ["dev", "dev", "dev", "dev", "test", "test"],
    ...                   "k": [1, 2, 1, 2, 1, 2], "ko_accuracy": [0.5, 0.7, 0.6, 0.6, 1, 0]})
    >>> choose_on_dev(c, "k")
    2
    """
    dev = candidates[candidates["split"] == "dev"]
    if dev.empty:
        raise ValueError("no dev rows to choose on")
    means = dev.groupby(setting, sort=False)["ko_accuracy"].mean()
    return means.index[int(np.argmax(means.to_numpy()))]


# ------------------------------------------------------------------------------- tables
def summary_table(records: pd.DataFrame, metric: str, methods: Sequence[str], *,
                  lower_is_better: bool = False) -> pd.DataFrame:  # fmt: skip
    """Family (and ``overall``) × method: ``"test (dev)"`` means over networks of ``metric``,
    the best test value per row marked with ``*`` (when several methods have one). ``records`` holds one level and truth."""
    rows = {}
    fams = list(dict.fromkeys(records["family"]))
    for fam in [*fams, "overall"]:
        sub = records if fam == "overall" else records[records["family"] == fam]
        means = {
            split: sub[sub["split"] == split].groupby("method")[metric].mean()
            for split in ("test", "dev")
        }
        n = {s: sub.loc[sub["split"] == s, "network"].nunique() for s in ("test", "dev")}
        test = means["test"].reindex(methods)
        best = None
        if test.notna().sum() > 1:
            best = test.min() if lower_is_better else test.max()
        cells = {}
        for m in methods:
            t, d = test.get(m, np.nan), means["dev"].reindex(methods).get(m, np.nan)
            txt = ("–" if pd.isna(t) else f"{t:.2f}") + (
                "*" if best is not None and not pd.isna(t) and t == best else ""
            )
            cells[m] = f"{txt} ({'–' if pd.isna(d) else f'{d:.2f}'})"
        rows[f"{fam} ({n['test']}/{n['dev']})"] = cells
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "family (n test/dev)"
    return out
