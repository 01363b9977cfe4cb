"""The landscape's dynamics: fixed points, basins of the observed cells, attractor labels and
transition paths between attractors (:func:`_attractor_analysis`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._defaults import RELAX_DT, T_RELAX
from .._errors import GclError
from .._utils import logger, rng
from ._genome import Genome

#: Speed ``max |dx/dt|`` below which a developing cell counts as arrived.
CONV_TOL = 1e-4
#: At most this many observed states seed the fixed-point search (plus one jittered copy each).
MAX_STARTS = 1000
#: Genomes with more genes than this get fewer observed starts, ``MAX_STARTS * LARGE_GENOME /
#: n_genes`` (:func:`_max_starts`): relaxing one start costs about ``G² H`` per Euler step, so
#: the search's cost grows as ``G²`` at a fixed number of starts (Paul15, 200 genes: 2200 starts
#: took 70 s of a 140 s landscape). Attractors the smaller sample misses are still found: every
#: observed cell is developed to its attractor and the search runs again from the cells that
#: reach none of those found.
LARGE_GENOME = 50
#: Fewest observed starts for a large genome.
MIN_STARTS = 100
#: Attractors of two searches closer than this (max-norm) are the same point (the search's
#: ``dedup_tol``; polished points agree to about 1e-9).
SAME_POINT = 1e-4
#: Random starts in the box of observed levels (for attractors no observed cell reaches).
N_BOX = 200
#: At most this many index-1 saddles get transition paths; points per minimum-action curve;
#: relative tolerance of the action.
MAX_PATH_SADDLES, N_PATH_POINTS, PATH_RTOL = 30, 25, 1e-3
_PATH_COLUMNS = [
    "from", "to", "source", "target", "saddle", "barrier_forward", "barrier_backward",
    "converged",
]  # fmt: skip


def _analysis_field(genome: Genome) -> Any:
    """The genome's field, with clamped (overexpressed) genes held still.

    A ``torch.nn.Module`` wrapping a module field, so the fixed-point search's float64 copy
    (``.to(torch.float64)``) converts the wrapped model too.
    """
    from ..engine import ClampedField

    field = genome.field()
    clamp = genome._clamp()
    if clamp is None:
        return field
    return ClampedField(field, clamp[0], genome.n_genes)


def _relax_cells(
    field: Any, x0: np.ndarray, attractors: np.ndarray, *, dt: float, t_max: float, near: float
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic development of every cell (batched, in chunks of 5 time units).

    A cell stops once it is within ``near`` (max-norm) of an attractor — inside that
    attractor's basin — or once it stops moving (speed below ``CONV_TOL``). Returns the end
    states and the attractor row of each cell (-1: stopped or still moving far from every
    attractor).
    """
    import torch

    from ..engine import integrate

    att = torch.as_tensor(attractors, dtype=torch.float32)
    x = torch.as_tensor(x0, dtype=torch.float32)
    owner = torch.full((len(x),), -1, dtype=torch.long)
    active = torch.arange(len(x))
    chunk, t = 5.0, 0.0
    while len(active):
        xa = x[active]
        d = (xa[:, None, :] - att[None, :, :]).abs().amax(2) if len(att) else None
        if d is not None:
            dmin, arg = d.min(1)
            arrived = dmin <= near
            owner[active[arrived]] = arg[arrived]
        else:
            arrived = torch.zeros(len(active), dtype=torch.bool)
        with torch.no_grad():
            still = field(0.0, xa, None).abs().amax(1) <= CONV_TOL
        active = active[~(arrived | still)]
        if not len(active) or t >= t_max:
            break
        sol = integrate(field, x[active], t_max=min(chunk, t_max - t), dt=dt, noise=0.0)
        x[active] = sol.x
        t += chunk
    return x.numpy().astype(np.float64), owner.numpy()


class _Threads:
    """Torch CPU threads set to ``n`` inside the block (small batched linear algebra, where
    threads only add synchronisation cost, badly so on a loaded machine)."""

    def __init__(self, n: int = 1):
        self.n = n

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def _max_starts(n_genes: int, max_starts: int = MAX_STARTS) -> int:
    """Observed states seeding the fixed-point search: ``max_starts`` up to
    :data:`LARGE_GENOME` genes, then fewer in proportion to ``1 / n_genes`` (at least
    :data:`MIN_STARTS`, never more than ``max_starts``)."""
    if n_genes <= LARGE_GENOME:
        return int(max_starts)
    return int(min(max_starts, max(MIN_STARTS, round(max_starts * LARGE_GENOME / n_genes))))


def _unique_rows(x: np.ndarray, tol: float) -> np.ndarray:
    """One representative per cell of a grid of step ``tol`` (end states → candidate attractors)."""
    _, first = np.unique(np.round(x / tol), axis=0, return_index=True)
    return x[np.sort(first)]


def _has_new(found: np.ndarray, known: np.ndarray) -> bool:
    """Whether any of the ``found`` attractors is none of the ``known`` ones."""
    if not len(found):
        return False
    if not len(known):
        return True
    dist = np.abs(found[:, None, :] - known[None, :, :]).max(axis=2).min(axis=1)
    return bool((dist > SAME_POINT).any())


def _labels(
    basin: np.ndarray, n_att: int, groups: pd.Series | None
) -> tuple[list[str], np.ndarray]:
    """Each attractor's label and purity: the ``groups`` label most enriched in its basin.

    Enriched: the largest share of the group's own cells that relax into the basin, not the
    most cells. A numerous transient group (the progenitors, half of which head to one fate)
    otherwise takes the basin of a fate whose own cells are fewer: on the suite's dev networks
    majority labels named 6 fate attractors "progenitor"; enrichment found one more observed
    fate per network and halved the wild type's total variation (benchmarks/README.md).
    ``purity`` is the label's share of the basin's cells.
    """
    labels, purity = [], np.full(n_att, np.nan)
    totals = groups.value_counts(dropna=True) if groups is not None else None
    for k in range(n_att):
        members = basin == k
        if not members.any():
            labels.append("unobserved")
            continue
        if groups is None:
            labels.append(f"attractor_{k + 1}")
            continue
        counts = groups[members].value_counts(dropna=True)
        counts = counts[counts > 0]
        if counts.empty:
            labels.append("unlabelled")
            continue
        enrichment = (counts / totals.reindex(counts.index)).sort_values(
            ascending=False, kind="stable"
        )
        best = enrichment.index[0]
        labels.append(str(best))
        purity[k] = counts[best] / members.sum()
    seen: dict[str, int] = {}
    unique = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        unique.append(lab if seen[lab] == 1 else f"{lab}_{seen[lab]}")
    return unique, purity


def _attractor_analysis(
    field: Any,
    states: np.ndarray,
    *,
    genes: Sequence[str],
    groups: pd.Series | None = None,
    noise: Any = 1.0,
    seed: int = 0,
    max_starts: int = MAX_STARTS,
    max_path_saddles: int = MAX_PATH_SADDLES,
    n_path_points: int = N_PATH_POINTS,
    clamp: tuple[np.ndarray, np.ndarray] | None = None,
    dt: float = RELAX_DT,
) -> dict[str, Any]:
    """Fixed points, basins of the observed ``states``, labels and transition paths.

    Works for any engine field (a genome's, or the true field of a simulated dataset).
    ``clamp`` = (gene indices, levels) of genes the field holds still (overexpression).
    ``dt`` is the Euler step of every integration (:func:`fit_landscape` passes one the
    genome's stiffness allows).
    Returns a dict with ``attractors`` and ``saddles`` (DataFrames without the energy and basis
    columns), ``basin`` (attractor row per cell), ``paths`` (DataFrame), ``path_states``,
    ``path_states_reverse``, ``attractor_states``, ``saddle_states``, ``fixed_points`` and
    ``n_starts`` (starts of the first search: observed states, their jittered copies and the
    random box states; fewer observed ones for a large genome, :func:`_max_starts`).
    """
    import torch

    from ..engine import find_fixed_points, fixed_point_starts, transition_paths

    genes = [str(g) for g in genes]
    max_states = _max_starts(states.shape[1], max_starts)
    starts = fixed_point_starts(states, n_jitter=1, max_states=max_states, seed=seed)
    # plus random states in the observed box: attractors no observed cell flows into
    box = rng(seed).uniform(0.0, 1.0, (N_BOX, states.shape[1])) * states.max(axis=0)
    starts = np.concatenate([starts, box])

    # a large genome relaxes its starts in float32 (half the cost of its dominant stage);
    # small ones keep float64, so their recorded landscapes stay as they were
    relax_dtype = torch.float32 if states.shape[1] > LARGE_GENOME else torch.float64

    def search(x0: np.ndarray, saddles: bool = True) -> Any:
        if clamp is not None:
            x0[:, clamp[0]] = clamp[1]
        with _Threads(1):
            found = find_fixed_points(
                field, x0, dt=dt, nonnegative=True, seed=seed, saddles=saddles,
                relax_dtype=relax_dtype,
            )  # fmt: skip
        if clamp is not None:  # a clamped gene has no dynamics: keep points at its level
            found = found.select((np.abs(found.states[:, clamp[0]] - clamp[1]) <= 1e-6).all(axis=1))
        return found

    fp = search(starts)
    near = 2e-2 * max(1.0, float(np.abs(states).max()))
    # every cell developed deterministically until it reaches an attractor's neighbourhood
    ends, basin = _relax_cells(field, states, fp.attractors, dt=dt, t_max=T_RELAX, near=near)
    if (basin < 0).any():
        # cells that ended elsewhere: attractors the subsampled starts missed, or cells still
        # moving (slow directions, near a saddle). Their end states are relaxed further
        # (attractors only, cheap); the full search runs again with them among its starts
        # only when that finds a new attractor (whose saddles the full search finds). On
        # Paul15 (200 genes) 170 slow cells found nothing new, and repeating the full search
        # anyway had been half of the landscape's time.
        old = fp.attractors
        extra = _unique_rows(ends[basin < 0], 1e-2)
        if _has_new(search(extra.copy(), saddles=False).attractors, old):
            fp = search(np.concatenate([extra, starts]))
            if len(old) and len(fp.attractors):  # rows of the first search → of this one
                moved = np.abs(old[:, None, :] - fp.attractors[None, :, :]).max(axis=2).argmin(1)
                basin = np.where(basin >= 0, moved[np.clip(basin, 0, None)], -1)
    att = fp.attractors
    if len(att) == 0:
        raise GclError(
            "the genome has no stable fixed point reachable from the observed cells; "
            "its dynamics oscillate or drift away. Check the genome (genome.fixed_points())."
        )
    lost = basin < 0
    if lost.any():
        dist = np.abs(ends[lost][:, None, :] - att[None, :, :]).max(axis=2)
        basin[lost] = dist.argmin(axis=1)
        far = int((dist.min(axis=1) > near).sum())
        if far:
            logger.warning(
                "fit_landscape: %d cells did not reach an attractor within t = %g; "
                "assigned to the nearest one",
                far, T_RELAX,
            )  # fmt: skip
    # attractors ordered by basin size (then by how many search starts reached them)
    sizes = np.bincount(basin, minlength=len(att))
    n_starts = fp.n_starts[fp.is_stable]
    order = np.lexsort((-n_starts, -sizes))
    att = att[order]
    remap = np.empty(len(order), dtype=int)
    remap[order] = np.arange(len(order))
    basin = remap[basin]
    sizes = sizes[order]
    labels, purity = _labels(basin, len(att), groups)
    stable_fp = fp.select(np.flatnonzero(fp.is_stable)[order])
    attractors = pd.DataFrame(
        {
            "label": np.asarray(labels, dtype=object),
            "stable": np.ones(len(att), dtype=bool),
            "basin_fraction": sizes / len(states),
            "n_cells": sizes.astype(np.int64),
            "purity": purity,
            "max_real": stable_fp.max_real,
        }
    )
    attractors = pd.concat([attractors, pd.DataFrame(att, columns=genes)], axis=1)

    # saddles: index-1 first (the rows transition_paths refers to), then the others
    unstable = fp.select(~fp.is_stable)
    saddles = pd.DataFrame(
        {
            "type": np.asarray(unstable.type.astype(str), dtype=object),
            "index": unstable.index.astype(np.int64),
            "max_real": unstable.max_real,
            "residual": unstable.residual,
        }
    )
    saddles = pd.concat([saddles, pd.DataFrame(unstable.states, columns=genes)], axis=1)
    index1 = np.flatnonzero((unstable.type == "saddle") & (unstable.index == 1))
    use = index1[:max_path_saddles]
    if len(index1) > len(use):
        logger.info(
            "fit_landscape: paths through the first %d of %d saddles", len(use), len(index1)
        )
    n_genes = len(genes)
    empty = np.zeros((0, 2 * n_path_points - 1, n_genes))
    paths = pd.DataFrame({c: [] for c in _PATH_COLUMNS})
    fwd, rev = empty, empty
    if len(att) >= 2 and len(use):
        with _Threads(1):
            tp = transition_paths(
                field,
                att,
                unstable.states[use],
                noise=noise,
                n_points=n_path_points,
                dt=dt,
                rtol=PATH_RTOL,
            )
        if len(tp):
            paths = pd.DataFrame(
                {
                    "from": np.asarray([labels[i] for i in tp["source"]], dtype=object),
                    "to": np.asarray([labels[j] for j in tp["target"]], dtype=object),
                    "source": tp["source"].to_numpy(np.int64),
                    "target": tp["target"].to_numpy(np.int64),
                    "saddle": use[tp["saddle"].to_numpy()].astype(np.int64),
                    "barrier_forward": tp["barrier_forward"].to_numpy(np.float64),
                    "barrier_backward": tp["barrier_backward"].to_numpy(np.float64),
                    "converged": tp["converged"].to_numpy(bool),
                }
            )
            fwd = np.stack([np.asarray(p, dtype=np.float64) for p in tp["path"]])
            rev = np.stack([np.asarray(p, dtype=np.float64) for p in tp["path_reverse"]])
    paths = paths.astype(
        {"source": np.int64, "target": np.int64, "saddle": np.int64, "converged": bool,
         "barrier_forward": np.float64, "barrier_backward": np.float64}
    )  # fmt: skip
    for c in ("from", "to"):
        paths[c] = np.asarray(paths[c].astype(str).to_numpy(), dtype=object)
    return {
        "attractors": attractors,
        "saddles": saddles,
        "basin": basin,
        "labels": labels,
        "paths": paths,
        "path_states": fwd,
        "path_states_reverse": rev,
        "attractor_states": att,
        "saddle_states": unstable.states,
        "fixed_points": fp,
        "n_starts": len(starts),
    }
