"""Fixed points of a vector field: search, polishing, deduplication and classification.

Works for any field with the engine signature ``field(t, x, args) -> dx/dt`` on
``(n_cells, n_genes)`` tensors that torch autograd can differentiate (the engine's
:class:`~gclandscape.engine.SigmoidField`, :class:`~gclandscape.engine.BooleanHillField`,
:class:`~gclandscape.engine.LinearField`, a ``GRNModel``). Everything runs in float64; a
``torch.nn.Module`` with float32 parameters is analysed through a float64 copy.

Method of :func:`find_fixed_points`
-----------------------------------
1. **Attractors by integration.** All starts are integrated at once with the engine
   (deterministic Euler, :func:`~gclandscape.engine.integrate`) in chunks; a start stops once
   its speed ``max |f(x)|`` falls below ``conv_tol`` (or at ``t_max``). End states are
   grouped (leader clustering, max-norm ``group_tol``) and a batched Newton iteration (below)
   finishes the best state of each group, so slow directions need no long integration.
2. **Saddles by Newton from the right places.** Forward integration only finds stable points.
   Index-1 saddles sit on the basin boundary between two attractors, so a batched
   Levenberg–Marquardt iteration (damped Gauss–Newton on the "speed" ``|f(x)|²``, i.e. a
   root finder that converges to fixed points of *any* stability) is started from points on
   the segments between every pair of attractors, jittered copies of them, and a subsample of
   the starts. Iterations that reach ``|f| ≈ 0`` are candidate fixed points; local minima of
   the speed with ``|f| > 0`` ("ghosts") are discarded.
3. **Polishing.** Every candidate is polished with :func:`scipy.optimize.root` (``hybr``,
   falling back to ``lm``) using the autograd Jacobian, and kept when ``max |f| <= tol``.
4. **Deduplication** on the max-norm with ``dedup_tol``.
5. **Classification** by the eigenvalues of the autograd Jacobian
   (:func:`torch.linalg.eigvals`): ``index`` = number of eigenvalues with real part
   ``> eig_tol``; ``stable`` when ``index == 0``, ``unstable`` (a source) when no eigenvalue
   has real part ``< -eig_tol``, ``saddle`` otherwise. Zero eigenvalues (e.g. input genes with
   ``dx/dt = 0``) count as neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._defaults import RELAX_DT
from .._errors import GclError
from .._utils import logger, rng
from ._device import resolve_device
from ._field_checks import VectorField, _as_states, _prepare_field
from ._jacobian import _jac_chunked, jacobian
from ._root_finding import (
    _cast_field,
    _leader_cluster,
    _newton,
    _polish,
    _relax,
    _speed,
    stable_dt,
)

__all__ = [
    "FixedPoints",
    "classify_fixed_points",
    "find_fixed_points",
    "fixed_point_starts",
    "jacobian",
]

STABLE, SADDLE, UNSTABLE = "stable", "saddle", "unstable"
_TYPE_ORDER = {STABLE: 0, SADDLE: 1, UNSTABLE: 2}


@dataclass
class FixedPoints:
    """Fixed points of a vector field with their stability.

    Rows are sorted: stable points first (most starts first), then saddles by index, then
    unstable points.

    Attributes
    ----------
    states
        ``(k, G)`` float64 states.
    type
        ``(k,)`` strings: ``"stable"``, ``"saddle"`` or ``"unstable"``.
    eigenvalues
        ``(k, G)`` complex Jacobian eigenvalues, each row sorted by decreasing real part.
    index
        ``(k,)`` number of unstable directions (eigenvalues with real part ``> eig_tol``);
        index-1 saddles are the ones transition paths cross.
    n_starts
        ``(k,)`` number of the given starts whose forward integration ended at the point (a
        basin-size proxy for stable points; usually 0 for saddles, found by Newton).
    residual
        ``(k,)`` ``max |f(x)|`` at the point after polishing.

    Examples
    --------
    >>> import numpy as np
    >>> from gclandscape.engine import LinearField
    >>> from gclandscape.engine._fixed_points import find_fixed_points
    >>> fp = find_fixed_points(LinearField([[-1.0]], c=2.0), np.array([[0.0], [5.0]]))
    >>> fp.type.tolist(), round(float(fp.states[0, 0]), 6), fp.n_starts.tolist()
    (['stable'], 2.0, [2])
    """

    states: np.ndarray
    type: np.ndarray
    eigenvalues: np.ndarray
    index: np.ndarray
    n_starts: np.ndarray
    residual: np.ndarray

    def __len__(self) -> int:
        return len(self.states)

    @property
    def max_real(self) -> np.ndarray:
        """``(k,)`` largest real part of the eigenvalues (negative for stable points)."""
        return self.eigenvalues.real.max(axis=1) if len(self) else np.zeros(0)

    @property
    def is_stable(self) -> np.ndarray:
        """Boolean mask of stable points."""
        return self.type == STABLE

    @property
    def attractors(self) -> np.ndarray:
        """``(n_stable, G)`` states of the stable points."""
        return self.states[self.is_stable]

    @property
    def saddles(self) -> np.ndarray:
        """``(n_saddles, G)`` states of the index-1 saddles (the ones paths go through)."""
        return self.states[(self.type == SADDLE) & (self.index == 1)]

    def select(self, mask: Any) -> FixedPoints:
        """A new :class:`FixedPoints` with the rows in ``mask`` (boolean or indices)."""
        m = np.asarray(mask)
        return FixedPoints(
            self.states[m], self.type[m], self.eigenvalues[m], self.index[m], self.n_starts[m],
            self.residual[m],
        )  # fmt: skip

    def to_frame(self, genes: Any = None) -> Any:
        """A pandas DataFrame: ``type``, ``index``, ``max_real``, ``n_starts``, ``residual``
        and one column per gene (named by ``genes``, default ``x0, x1, ...``)."""
        import pandas as pd

        n_genes = self.states.shape[1]
        genes = [f"x{i}" for i in range(n_genes)] if genes is None else [str(g) for g in genes]
        if len(genes) != n_genes:
            raise GclError(f"genes has {len(genes)} names but the states have {n_genes} genes.")
        meta = pd.DataFrame(
            {
                "type": self.type.astype(str),
                "index": self.index.astype(int),
                "max_real": self.max_real,
                "n_starts": self.n_starts.astype(int),
                "residual": self.residual,
            }
        )
        return pd.concat([meta, pd.DataFrame(self.states, columns=genes)], axis=1)


def _classify(jac: np.ndarray, eig_tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(jac) == 0:
        g = jac.shape[-1]
        return np.zeros((0, g), complex), np.zeros(0, int), np.zeros(0, dtype="<U8")
    # torch (MKL/LAPACK under torch's thread settings) rather than numpy.linalg.eigvals: with
    # torch already holding the cores, OpenBLAS's own threads slowed 100-gene problems ~70x
    ev = torch.linalg.eigvals(torch.from_numpy(jac)).numpy()
    ev = np.take_along_axis(ev, np.argsort(-ev.real, axis=1, kind="stable"), axis=1)
    n_pos = (ev.real > eig_tol).sum(1)
    n_neg = (ev.real < -eig_tol).sum(1)
    kind = np.where(n_pos == 0, STABLE, np.where(n_neg == 0, UNSTABLE, SADDLE)).astype("<U8")
    return ev, n_pos.astype(int), kind


def _build(
    fn: VectorField,
    args: Any,
    states: np.ndarray,
    residual: np.ndarray,
    n_starts: np.ndarray,
    eig_tol: float,
) -> FixedPoints:
    jac = _jac_chunked(fn, torch.from_numpy(np.ascontiguousarray(states)), args).cpu().numpy()
    ev, index, kind = _classify(jac, eig_tol)
    order = np.lexsort((-n_starts, index, np.array([_TYPE_ORDER[k] for k in kind], dtype=int)))
    return FixedPoints(
        states[order], kind[order], ev[order], index[order], n_starts[order].astype(int),
        residual[order],
    )  # fmt: skip


def classify_fixed_points(
    field: VectorField, states: Any, *, args: Any = None, eig_tol: float = 1e-7
) -> FixedPoints:
    """Classify given fixed points by the eigenvalues of the autograd Jacobian.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt``.
    states
        ``(k, G)`` fixed points (not checked to be fixed points; ``residual`` reports
        ``max |f|``).
    args
        Passed to ``field``.
    eig_tol
        Real parts within ``±eig_tol`` of zero count as neither stable nor unstable.

    Returns
    -------
    :class:`FixedPoints` with ``n_starts`` = 0.

    Examples
    --------
    >>> from gclandscape.engine import LinearField
    >>> from gclandscape.engine._fixed_points import classify_fixed_points
    >>> classify_fixed_points(LinearField([[1.0, 0.0], [0.0, -1.0]]), [[0.0, 0.0]]).type.tolist()
    ['saddle']
    """
    x = _as_states(states, "states")
    fn = _prepare_field(field, x.shape[1], args)
    res = _speed(fn, torch.from_numpy(x), args).numpy()
    return _build(fn, args, x, res, np.zeros(len(x), dtype=int), eig_tol)


def fixed_point_starts(
    states: Any,
    *,
    n_jitter: int = 1,
    jitter: float = 0.1,
    max_states: int = 2000,
    attractors: Any = None,
    n_between: int = 3,
    nonnegative: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Starting states for :func:`find_fixed_points`.

    Parameters
    ----------
    states
        ``(n, G)`` observed states (e.g. cells' regulator levels); a random subset of
        ``max_states`` is kept when there are more.
    n_jitter
        Jittered copies of every kept state, each gene perturbed by Gaussian noise with
        standard deviation ``jitter`` times the gene's standard deviation across ``states``
        (or ``jitter`` for a constant gene).
    jitter
        Relative jitter size.
    max_states
        Maximal number of observed states kept.
    attractors
        Optional ``(k, G)`` known attractors: ``n_between`` evenly spaced points on the segment
        between every pair are added (index-1 saddles lie on the boundaries between basins).
    n_between
        Points per attractor pair.
    nonnegative
        Clip the starts at 0 (expression levels).
    seed
        Seed of the subsampling and jitter.

    Returns
    -------
    ``(m, G)`` float64 array: the kept states, their jittered copies, then the between-attractor
    points.

    Examples
    --------
    >>> import numpy as np
    >>> from gclandscape.engine._fixed_points import fixed_point_starts
    >>> x = np.random.default_rng(0).random((10, 3))
    >>> fixed_point_starts(x, n_jitter=2, attractors=[[1, 0, 0], [0, 1, 0]], n_between=1).shape
    (31, 3)
    """
    x = _as_states(states, "states")
    if n_jitter < 0 or int(n_jitter) != n_jitter:
        raise GclError(f"n_jitter must be a non-negative integer; got {n_jitter!r}.")
    if max_states < 1:
        raise GclError(f"max_states must be at least 1; got {max_states!r}.")
    if not (math.isfinite(jitter) and jitter >= 0):
        raise GclError(f"jitter must be a non-negative number; got {jitter!r}.")
    gen = rng(seed)
    if len(x) > max_states:
        x = x[np.sort(gen.choice(len(x), max_states, replace=False))]
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0) * jitter
    parts = [x] + [x + gen.normal(size=x.shape) * sd for _ in range(int(n_jitter))]
    if attractors is not None:
        parts.append(_between(_as_states(attractors, "attractors", x.shape[1]), n_between))
    out = np.concatenate(parts)
    return np.clip(out, 0.0, None) if nonnegative else out


def _between(att: np.ndarray, n_between: int) -> np.ndarray:
    """Points at fractions ``1/(n+1) .. n/(n+1)`` on the segment between every pair."""
    if len(att) < 2 or n_between < 1:
        return np.zeros((0, att.shape[1]))
    i, j = np.triu_indices(len(att), k=1)
    frac = np.linspace(0.0, 1.0, n_between + 2)[1:-1]
    # midpoints first so that a cap on the number of starts keeps them
    frac = frac[np.argsort(np.abs(frac - 0.5), kind="stable")]
    return np.concatenate([att[i] + f * (att[j] - att[i]) for f in frac])


def find_fixed_points(
    field: VectorField,
    starts: Any,
    *,
    args: Any = None,
    t_max: float = 100.0,
    dt: float = RELAX_DT,
    conv_tol: float = 1e-4,
    tol: float = 1e-9,
    dedup_tol: float = 1e-4,
    group_tol: float = 1e-2,
    polish: bool = True,
    saddles: bool = True,
    include_unstable: bool = True,
    n_between: int = 7,
    n_jitter: int = 4,
    jitter: float = 0.05,
    max_newton_starts: int = 300,
    nonnegative: bool = False,
    eig_tol: float = 1e-7,
    seed: int = 0,
    device: str | torch.device | None = None,
    relax_dtype: torch.dtype = torch.float64,
) -> FixedPoints:
    """Find, polish, deduplicate and classify the fixed points of a vector field.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt`` on ``(n, G)`` tensors, differentiable by
        torch autograd.
    starts
        ``(n, G)`` starting states (observed cells plus jittered states, see
        :func:`fixed_point_starts`).
    args
        Passed to ``field``; overrides must broadcast over any number of rows.
    t_max, dt
        Longest integration time and Euler step of the forward integration. ``dt`` is halved
        where the field is stiff at the starts (:func:`~._root_finding.stable_dt`: a fitted
        genome with a fast degradation rate would make a fixed step diverge).
    conv_tol
        A start stops integrating once ``max |f(x)| <= conv_tol``; Newton finishes it.
    tol
        A polished point is a fixed point when ``max |f(x)| <= tol`` (absolute, in the
        field's units per unit time).
    dedup_tol
        Points closer than this (max-norm) are the same fixed point.
    group_tol
        Integration end states closer than this (max-norm) are finished by one Newton run;
        the group's size is added to the ``n_starts`` of the point it reaches.
    polish
        Polish candidates with :func:`scipy.optimize.root`; without it the integration end
        states and Newton results are used as they are (and ``tol`` applies to them).
    saddles
        Search for saddles and unstable points by Newton from between-attractor points,
        jittered copies and a subsample of the starts (method in the module docstring).
        ``False`` returns only what forward integration reaches (attractors).
    include_unstable
        Keep points with no stable direction (sources).
    n_between, n_jitter, jitter
        Newton starts on the segment between every pair of attractors (``n_between`` evenly
        spaced points), plus ``n_jitter`` jittered copies of each pair's midpoint (Gaussian
        noise of ``jitter`` times the attractors' spread per gene).
    max_newton_starts
        Cap on the number of Newton starts in each stage (the largest groups of end states;
        between-attractor midpoints first).
    nonnegative
        Clip states at 0 during the integration and drop fixed points with a negative
        coordinate (for expression levels; GRN fields keep the orthant invariant anyway).
    eig_tol
        Eigenvalues with ``|Re| <= eig_tol`` count as neither stable nor unstable.
    seed
        Seed of the jitter and subsampling (the integration is deterministic).
    device
        Device of the integration and Newton stages (``None``: CPU; ``"cuda"``, ``"auto"``);
        polishing and classification run on the CPU. ``args`` tensors must be on this device.
    relax_dtype
        Precision of the forward integration (stage 1): ``torch.float32`` about halves its
        cost, which dominates for large genomes (a module field is cast to it), and is ample
        for ``conv_tol`` around 1e-4; Newton, polishing and classification stay in float64.

    Returns
    -------
    :class:`FixedPoints`.

    Raises
    ------
    GclError
        Bad starts or a field that does not map ``(n, G)`` to ``(n, G)``.
    GclDivergenceError
        The forward integration diverged; the message names ``dt``.

    Examples
    --------
    >>> import numpy as np
    >>> from gclandscape.engine import SigmoidField
    >>> from gclandscape.engine._fixed_points import find_fixed_points
    >>> toggle = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)
    >>> fp = find_fixed_points(toggle, np.random.default_rng(0).random((50, 2)))
    >>> fp.type.tolist()
    ['stable', 'stable', 'saddle']
    >>> np.round(fp.states[2], 6).tolist()
    [0.5, 0.5]
    """
    x0 = _as_states(starts, "starts")
    n_genes = x0.shape[1]
    checks = {"t_max": t_max, "dt": dt, "tol": tol, "dedup_tol": dedup_tol, "conv_tol": conv_tol}
    for name, val in {**checks, "group_tol": group_tol}.items():
        if not (isinstance(val, int | float) and math.isfinite(val) and val > 0):
            raise GclError(f"{name} must be a positive number; got {val!r}.")
    if dt > t_max:
        raise GclError(f"dt ({dt}) must not exceed t_max ({t_max}).")
    dev = resolve_device(device)
    fn = _prepare_field(field, n_genes, args)  # CPU: polishing, classification
    fn_dev = fn if dev.type == "cpu" else _prepare_field(field, n_genes, args, dev)
    gen = rng(seed)

    # 1. forward integration (attractors); end states grouped, Newton from each group's best
    if relax_dtype not in (torch.float32, torch.float64):
        raise GclError(f"relax_dtype must be torch.float32 or torch.float64; got {relax_dtype!r}.")
    fn_relax = fn_dev if relax_dtype == torch.float64 else _cast_field(fn_dev, relax_dtype)
    step = stable_dt(fn, x0, dt, args=args)
    if step < dt:
        logger.info("find_fixed_points: Euler step %.3g instead of %.3g (a stiff field)", step, dt)
        dt = step
    ends, speed = _relax(
        fn_relax, x0, args, t_max=t_max, dt=dt, conv_tol=conv_tol, nonnegative=nonnegative,
        device=dev, dtype=relax_dtype,
    )  # fmt: skip
    labels = _leader_cluster(ends, group_tol, order=np.argsort(speed, kind="stable"))
    sizes = np.bincount(labels)
    reps = np.array(
        [np.flatnonzero(labels == g)[np.argmin(speed[labels == g])] for g in range(len(sizes))]
    )
    by_size = np.argsort(-sizes, kind="stable")[:max_newton_starts]
    if len(by_size) < len(sizes):
        logger.info(
            "%d groups of end states; Newton from the %d largest (raise max_newton_starts)",
            len(sizes), len(by_size),
        )  # fmt: skip
    xs, res = _newton(
        fn_dev, args, torch.as_tensor(ends[reps[by_size]], device=dev), tol=tol * 1e-2
    )
    px, pr, pc = _candidates(fn, args, xs, res, sizes[by_size], polish, tol, dedup_tol, nonnegative)

    # 2. Newton (LM) from between-attractor points, jitter and a subsample of the starts
    if saddles:
        att = _merge(fn, args, px, pr, pc, dedup_tol, eig_tol).attractors
        seeds = [_between(att, n_between)]
        if len(att) >= 2 and n_jitter > 0:
            spread = att.max(0) - att.min(0)
            spread = np.where(spread > 0, spread, 1.0) * jitter
            mids = _between(att, 1)
            seeds.extend(mids + gen.normal(size=mids.shape) * spread for _ in range(n_jitter))
        seeds.append(x0[gen.choice(len(x0), min(len(x0), 50), replace=False)])
        seed_x = np.concatenate(seeds)[:max_newton_starts]
        if nonnegative:
            seed_x = np.clip(seed_x, 0.0, None)
        xs, res = _newton(fn_dev, args, torch.as_tensor(seed_x, device=dev), tol=tol * 1e-2)
        if len(px):  # points already known need no second polish
            known = np.abs(xs[:, None, :] - px[None, :, :]).max(axis=2).min(axis=1) <= dedup_tol
            xs, res = xs[~known], res[~known]
        nx, nr, nc = _candidates(
            fn, args, xs, res, np.zeros(len(xs), dtype=int), polish, tol, dedup_tol, nonnegative
        )
        px, pr, pc = np.concatenate([px, nx]), np.concatenate([pr, nr]), np.concatenate([pc, nc])
    fp = _merge(fn, args, px, pr, pc, dedup_tol, eig_tol)
    if not include_unstable:
        fp = fp.select(fp.type != UNSTABLE)
    logger.info(
        "found %d fixed points (%d stable, %d saddles) from %d starts",
        len(fp), int(fp.is_stable.sum()), int((fp.type == SADDLE).sum()), len(x0),
    )  # fmt: skip
    return fp


def _candidates(
    fn: VectorField,
    args: Any,
    xs: np.ndarray,
    res: np.ndarray,
    counts: np.ndarray,
    polish: bool,
    tol: float,
    dedup_tol: float,
    nonnegative: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton results → deduplicated, polished fixed points (states, residuals, start counts)."""
    ok = res <= max(1e3 * tol, 1e-6)  # near a root: the polish finishes the job
    xs, res, counts = xs[ok], res[ok], np.asarray(counts)[ok]
    if len(xs) == 0:
        return xs, res, counts.astype(int)
    lab = _leader_cluster(xs, dedup_tol, order=np.argsort(res, kind="stable"))
    groups = range(lab.max() + 1)
    best = np.array([np.flatnonzero(lab == g)[np.argmin(res[lab == g])] for g in groups])
    n = np.array([counts[lab == g].sum() for g in groups], dtype=int)
    out, r = [], []
    for row in xs[best]:
        if polish:
            p_, r_ = _polish(fn, args, row, tol)
        else:
            p_, r_ = row, float(_speed(fn, torch.from_numpy(row)[None], args)[0])
        out.append(p_)
        r.append(r_)
    states = np.asarray(out, dtype=np.float64).reshape(len(best), xs.shape[1])
    r = np.asarray(r, dtype=np.float64)
    keep = r <= tol
    if nonnegative:
        keep &= (states >= -max(tol, 1e-9)).all(axis=1)
    return states[keep], r[keep], n[keep]


def _merge(
    fn: VectorField,
    args: Any,
    x: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    dedup_tol: float,
    eig_tol: float,
) -> FixedPoints:
    """Merge duplicates (keeping the smallest residual, summing start counts) and classify."""
    if len(x) == 0:
        return _build(fn, args, x, r, c, eig_tol)
    lab = _leader_cluster(x, dedup_tol, order=np.argsort(r, kind="stable"))
    groups = range(lab.max() + 1)
    best = np.array([np.flatnonzero(lab == g)[np.argmin(r[lab == g])] for g in groups])
    n = np.array([c[lab == g].sum() for g in groups])
    return _build(fn, args, x[best], r[best], n, eig_tol)
