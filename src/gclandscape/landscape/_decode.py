"""``fit_grn(decode=True)``: what the developed wild type must regenerate, from the data.

The targets of :func:`gclandscape.engine.decode_fit` come from labels, a time signal and the
root group only (no clock, no trajectories): the terminal cell types (:func:`terminal_labels`),
their centroids and a few of their late cells, their observed fractions, the root cells
development starts from, and cells in successive time bins (the transport term).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._defaults import EARLY_FRACTION
from .._errors import GclError

#: Root cells without a root group: the earliest this share of all cells (with one, the
#: earliest EARLY_FRACTION of the group, as the simulations start).
EARLY_FRACTION_ALL = 0.1
#: Cells of each terminal type the attractor term relaxes, and terminal cells the Sinkhorn
#: term compares with (subsampled for speed).
CELLS_PER_TYPE = 8
MAX_TERMINAL = 400
#: Time bins of the transport term (quantiles of the time signal) and cells kept per bin.
N_BINS = 5
CELLS_PER_BIN = 200
#: A terminal type holds at least this share of the non-root cells ...
MIN_SHARE = 0.05
#: ... and its latest cells reach this quantile of all cells' times.
LATE_QUANTILE = 0.6


def _late(x: np.ndarray, labels: np.ndarray, time: np.ndarray, name: str) -> np.ndarray:
    """The later half (by time) of the cells labelled ``name``."""
    pos = np.flatnonzero(labels == name)
    return x[pos[time[pos] >= np.quantile(time[pos], 0.5)]]


def terminal_labels(labels: Any, time: Any, root: Any) -> list[str]:
    """Labels of terminal cell types: not the root, holding at least :data:`MIN_SHARE` of the
    other cells, and reaching late times (their 90th time percentile at or above the 60th of
    all cells; an intermediate type, such as a GMP between progenitors and monocytes, ends
    earlier).

    Examples
    --------
    >>> terminal_labels(["p", "p", "m", "a", "a", "b", "b"], [0, 0, 1, 2, 3, 2, 3], "p")
    ['a', 'b']
    """
    labels = np.asarray(pd.Series(labels).astype(str))
    time = np.asarray(time, dtype=np.float64)
    other = labels != str(root) if root is not None else np.ones(len(labels), bool)
    shares = pd.Series(labels[other]).value_counts(normalize=True)
    late = np.quantile(time, LATE_QUANTILE)
    return sorted(
        str(n) for n, share in shares.items()
        if share >= MIN_SHARE and np.quantile(time[labels == n], 0.9) >= late
    )  # fmt: skip


def decode_targets(x: np.ndarray, labels: Any, time: Any, root: Any, *, seed: int = 0) -> Any:
    """The :class:`~gclandscape.engine.DecodeTargets` of cells ``x`` (model coordinates).

    Parameters
    ----------
    x
        ``(n_cells, G)`` states.
    labels
        Cell types (``groupby``), one per cell.
    time
        Time signal (pseudotime or time), one per cell.
    root
        Root group name, or None (the earliest cells of all).
    seed
        Seed of the subsamples.

    Returns
    -------
    DecodeTargets, or None when fewer than 2 terminal types are found (nothing to decode).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.full((20, 2), 0.5), np.tile([0.9, 0.1], (30, 1)), np.tile([0.1, 0.9], (10, 1))]
    >>> lab = ["p"] * 20 + ["A"] * 30 + ["B"] * 10
    >>> t = np.r_[np.zeros(20), np.ones(40)]
    >>> decode_targets(x, lab, t, "p").fractions.round(2).tolist()
    [0.75, 0.25]
    """
    from ..engine import DecodeTargets

    labels = np.asarray(pd.Series(labels).astype(str))
    time = np.asarray(time, dtype=np.float64)
    rng = np.random.default_rng(seed)
    names = terminal_labels(labels, time, root)
    if len(names) < 2:
        return None
    late = [_late(x, labels, time, n) for n in names]
    centroids = np.array([cells.mean(axis=0) for cells in late])
    type_cells = [c[rng.choice(len(c), min(CELLS_PER_TYPE, len(c)), replace=False)] for c in late]
    # observed fractions over all cells of each type, not only the latest: a poor pseudotime
    # misplaces cells in time more than it mislabels them
    counts = np.array([(labels == n).sum() for n in names], dtype=np.float64)
    fractions = counts / counts.sum()
    terminal = np.flatnonzero(np.isin(labels, names))
    terminal = rng.choice(terminal, min(MAX_TERMINAL, len(terminal)), replace=False)
    if root is None:
        cand = np.arange(len(x))
        share = EARLY_FRACTION_ALL
    else:
        cand = np.flatnonzero(labels == str(root))
        if cand.size == 0:
            raise GclError(f"root={root!r} names no cell; pass a group of groupby.")
        share = EARLY_FRACTION
    order = cand[np.argsort(time[cand], kind="stable")]
    starts = x[order[: max(10, int(np.ceil(share * len(order))))]]
    edges = np.quantile(time, np.linspace(0, 1, N_BINS + 1))
    which = np.clip(np.searchsorted(edges, time, side="right") - 1, 0, N_BINS - 1)
    bins = []
    for b in range(N_BINS):
        pos = np.flatnonzero(which == b)
        if pos.size:
            bins.append(x[rng.choice(pos, min(CELLS_PER_BIN, pos.size), replace=False)])
    return DecodeTargets(
        bins=bins,
        starts=starts,
        centroids=centroids,
        fractions=fractions,
        terminal_cells=x[terminal],
        type_cells=type_cells,
    )


def decode_model(
    model: Any,
    x: np.ndarray,
    dxdt: np.ndarray | None,
    labels: Any,
    time: Any,
    root: Any,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Refine a fitted model in place by decoding; returns the ``params`` entries.

    ``decode`` in the returned dict says what happened: ``"refined"``, ``"rejected"`` (the
    held-out decoding loss did not go down, the regression fit is kept) or why it was
    skipped.
    """
    from ..engine import decode_fit

    if labels is None or time is None:
        return {"decode": "skipped: needs groupby and a time signal"}
    root = root if isinstance(root, str) else None
    targets = decode_targets(x, labels, time, root, seed=seed)
    if targets is None:
        return {"decode": "skipped: fewer than 2 terminal cell types"}
    res = decode_fit(model, targets, x=x, dxdt=dxdt, seed=seed)
    return {
        "decode": "refined" if res.accepted else "rejected",
        "decode_loss_before": res.before["total"],
        "decode_loss_after": res.after["total"],
        "decode_fate_before": res.before["fate"],
        "decode_fate_after": res.after["fate"],
        "seconds_decode": res.seconds,
    }
