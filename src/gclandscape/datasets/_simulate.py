"""Ground-truth single-cell data from a Boolean network: noisy continuous model → counts + truth."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._defaults import DT
from .._errors import GclError
from .._keys import Key
from .._utils import logger
from ._fates import (
    NOVEL,
    PROGENITOR,
    UNSETTLED,
    _commit_index,
    _FateNamer,
    _high_name,  # noqa: F401  (benchmarks import it from this module)
    _parse_fates,
    _settle,
)
from ._rules import BooleanNetwork, as_network, parse_rules

__all__ = ["field_from_truth", "simulate"]


def _per_gene(value: Any, genes: Sequence[str], name: str) -> np.ndarray:
    if isinstance(value, Mapping):
        unknown = [g for g in value if g not in genes and g != "*"]
        if unknown:
            raise GclError(f"{name} names unknown genes {unknown}; known genes: {list(genes)}.")
        out = np.full(len(genes), np.nan)
        default = value.get("*", None)
        for i, g in enumerate(genes):
            if g in value:
                out[i] = value[g]
            elif default is not None:
                out[i] = default
        if np.isnan(out).any():
            raise GclError(f"{name} must give a value for every gene (or a default under '*').")
    else:
        out = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(genes),)).copy()
    if not np.isfinite(out).all() or (out <= 0).any():
        raise GclError(f"{name} must be positive and finite; got {out.tolist()}.")
    return out


def _initial_state(net: BooleanNetwork, initial: Any) -> np.ndarray:
    genes = list(net.genes)
    if initial is None:
        x0 = np.array([net.initial.get(g, 0.0) for g in genes], dtype=np.float64)
    elif isinstance(initial, Mapping):
        unknown = [g for g in initial if g not in genes]
        if unknown:
            raise GclError(f"initial names unknown genes {unknown}; known genes: {genes}.")
        x0 = np.array([float(initial.get(g, 0.0)) for g in genes])
    else:
        x0 = np.asarray(initial, dtype=np.float64).reshape(-1)
        if x0.shape != (len(genes),):
            raise GclError(
                f"initial must be a mapping gene → level or a vector of {len(genes)} levels; "
                f"got shape {x0.shape}."
            )
    if not np.isfinite(x0).all() or (x0 < 0).any():
        raise GclError("initial levels must be finite and non-negative.")
    return x0


def _integrate_batch(
    field: Any,
    X0: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray | None,
    mask: np.ndarray,
    *,
    t_max: float,
    dt: float,
    noise: float,
    seed: int,
    device: str | None,
):
    """The SDE run of :func:`simulate` (also :func:`~gclandscape.datasets.random_network`'s
    fate check): per-row ``alpha`` (and ``gamma``), genes under ``mask`` clamped to 0."""
    import torch

    from ..engine import integrate

    dtype = torch.float32
    args = {"alpha": torch.as_tensor(alpha, dtype=dtype)}
    if gamma is not None:
        args["gamma"] = torch.as_tensor(gamma, dtype=dtype)
    return integrate(
        field,
        torch.as_tensor(X0, dtype=dtype),
        t_max=t_max,
        dt=dt,
        args=args,
        noise=lambda t, x, a: noise * torch.sqrt(x + 0.01),
        seed=seed,
        clamp=(torch.as_tensor(mask), 0.0) if mask.any() else None,
        n_save=int(min(201, max(2, round(t_max / dt) + 1))),
        device=device,
    )


def wild_type_ends(
    net: BooleanNetwork,
    *,
    n_trajectories: int,
    seed: int,
    t_max: float = 40.0,
    dt: float = DT,
    noise: float = 0.1,
    hill: float = 4.0,
    threshold: float = 0.5,
    rate: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Settled flags and binarised end states of wild-type trajectories from the network's
    stored initial levels, exactly as :func:`simulate` computes them (the keyword defaults
    are :func:`simulate`'s; a test keeps them equal).

    Examples
    --------
    >>> from gclandscape.datasets._rules import parse_rules
    >>> net = parse_rules("A = not B\\nB = not A")
    >>> settled, end = wild_type_ends(net, n_trajectories=20, seed=0)
    >>> end.shape, bool(settled.all())
    ((20, 2), True)
    """
    from ..engine import BooleanHillField

    genes = list(net.genes)
    is_input = np.array([net.rules[g] is None for g in genes])
    alpha = np.where(is_input, 0.0, rate)
    field = BooleanHillField(
        genes, net.rules, hill=hill, threshold=threshold, alpha=alpha, gamma=alpha.copy()
    )
    x0 = _initial_state(net, None)
    n = int(n_trajectories)
    sol = _integrate_batch(
        field,
        np.tile(x0, (n, 1)),
        np.tile(alpha, (n, 1)),
        None,
        np.zeros((n, len(genes)), dtype=bool),
        t_max=t_max,
        dt=dt,
        noise=noise,
        seed=seed,
        device=None,
    )
    return _settle(sol.xs.cpu().numpy())


def field_from_truth(truth: Mapping[str, Any]):
    """Rebuild the wild-type vector field of a simulated dataset from its ``.uns`` truth.

    Parameters
    ----------
    truth
        ``adata.uns["gcl_truth"]`` written by :func:`simulate`.

    Returns
    -------
    :class:`gclandscape.engine.BooleanHillField` over the regulators, with the nominal rates
    (a run with ``rate_jitter`` drew other rates per trajectory).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> ad = gcl.datasets.simulate("A = not B\\nB = not A", n_cells=20, n_targets=5, knockouts=False)
    >>> field_from_truth(ad.uns["gcl_truth"]).genes
    ('A', 'B')
    """
    from ..engine import BooleanHillField

    genes = [str(g) for g in truth["regulators"]]
    rules = truth["rules"]
    text = "\n".join(f"{g} = {rules[g]}" for g in genes)
    net = parse_rules(text, source="gcl_truth rules")
    p = truth["params"]
    return BooleanHillField(
        genes,
        net.rules,
        hill=np.asarray(p["hill"]),
        threshold=np.asarray(p["threshold"]),
        alpha=np.asarray(p["alpha"]),
        gamma=np.asarray(p["gamma"]),
    )


def simulate(
    network: Any,
    *,
    n_cells: int,
    n_targets: int = 200,
    seed: int = 0,
    initial: Mapping[str, float] | Sequence[float] | None = None,
    fates: Mapping[str, str] | None = None,
    n_trajectories: int | None = None,
    n_knockout_trajectories: int | None = None,
    knockouts: bool = True,
    knockout: str = "production",
    t_max: float = 40.0,
    dt: float = DT,
    noise: float = 0.1,
    hill: float | Mapping[str, float] = 4.0,
    threshold: float | Mapping[str, float] = 0.5,
    rate: float | Mapping[str, float] = 1.0,
    rate_jitter: float = 0.0,
    capture: float = 1.0,
    min_fraction: float = 0.01,
    sample_until: float | None = None,
    device: str | None = None,
):
    """Simulate single-cell counts with known truth from a Boolean gene-regulatory network.

    The network's rules become a continuous model (:class:`~gclandscape.engine.BooleanHillField`:
    ``dx_i/dt = rate_i * (R_i(h(x)) - x_i)``, soft logic over Hill inputs
    ``h(x) = x^n / (k^n + x^n)``), integrated as an SDE with additive noise by
    :func:`~gclandscape.engine.integrate` for many trajectories from the initial state. Snapshot
    cells are sampled along the wild-type trajectories, downstream target genes are added, and
    levels are turned into UMI counts.

    Fates: a trajectory's fate is its end state binarised at half the maximal level (0.5),
    provided that pattern is stable over the last 10 % of ``t_max`` (otherwise ``"unsettled"``).
    A pattern is named by the first matching condition in ``fates``, otherwise by its high
    genes (``"A+B"``, ``"all-off"``). A cell is labelled with its trajectory's fate from the
    snapshot at which the trajectory's pattern reaches its final pattern for good, and
    ``"progenitor"`` before.

    Knockouts: each regulator in turn has its production removed from t = 0
    (``knockout="production"``: the level decays from the initial state, as a Boolean
    asynchronous update sets it to 0 only when it is updated) or is clamped to 0 from the
    start (``knockout="clamp"``). End states are named with the wild-type names (conditions,
    or the wild-type pattern ignoring the knocked-out gene); others are ``"novel:<high genes>"``.
    A wild-type fate reached by at least ``min_fraction`` of wild-type trajectories is *lost*
    when fewer than ``min_fraction`` of knockout trajectories reach it.

    Parameters
    ----------
    network
        A rule file path, rule text (``target = expr`` lines, BoolODE table, ``.bnet``), a
        :class:`~gclandscape.datasets._network.BooleanNetwork`, or a signed edge list (DataFrame
        with ``source``, ``target``, ``sign``; rule: OR of activators AND NOT OR of repressors;
        genes without inputs are constitutively on).
    n_cells
        Number of cells sampled.
    n_targets
        Number of downstream genes; each is driven by 1–3 random regulators with random sign
        (mean of Hill terms ``h`` or ``1 - h`` with random threshold and coefficient 1, 2 or 4).
    seed
        Seed of every random choice (noise, sampling, targets, counts).
    initial
        Initial levels (mapping gene → level, or a vector). Default: the levels read with the
        network (BoolODE ``_ics.txt`` and inputs), every other gene 0 (all off).
    fates
        Optional mapping fate name → Boolean condition on the binarised end state, e.g.
        ``{"Ery": "Gata1 and EKLF"}``, tried in order.
    n_trajectories
        Wild-type trajectories (default ``clip(n_cells // 5, 100, 2000)``, at most ``n_cells``).
    n_knockout_trajectories
        Trajectories per knockout (default ``n_trajectories``).
    knockouts
        Simulate every single-regulator knockout for the truth.
    knockout
        ``"production"`` (default) or ``"clamp"``, see above.
    t_max, dt, noise
        Simulated time (in units of 1/rate), Euler–Maruyama step, additive noise std per unit
        time.
    hill, threshold, rate
        Hill coefficient, threshold and rate (production = degradation rate), scalars or
        mappings gene → value (key ``"*"`` for the default); Hill coefficients may differ
        between genes (any positive value, not only integers).
    rate_jitter
        Standard deviation of a log-normal factor (median 1) drawn per trajectory and gene
        that scales that gene's production and degradation rates alike in that trajectory
        (knockout trajectories included), so that genes switching at the same time in the
        rules switch in a random order. ``0`` (default): every trajectory has the rates of
        ``rate``. The true velocity of a cell uses its trajectory's rates.
    capture
        Mean capture efficiency relative to the default depth: the expected UMI counts of
        every cell are multiplied by it (``0.3`` keeps 30 % of the molecules, so more zeros).
    min_fraction
        Fraction below which a fate counts as not reached.
    sample_until
        Cells are sampled at times uniform in ``[0, sample_until]``. Default: 1.5 × the 90th
        percentile of wild-type commitment times (so early progenitors and committed cells are
        both present), at most ``t_max``.
    device
        Torch device for the simulation (``None`` = CPU, ``"auto"``).

    Returns
    -------
    AnnData with integer counts in ``.X`` and ``.layers["counts"]``, ``var["gcl_regulator"]``,
    ``obs["celltype"]`` (categorical), ``obs["sim_time"]``, ``obs["sim_trajectory"]``, and the
    truth in ``.uns["gcl_truth"]``: ``network`` (source, target, sign), ``target_network``,
    ``regulators``, ``rules``, ``initial``, ``state`` and ``velocity`` (each cell's regulator
    levels and dx/dt there), ``fate_patterns``, ``wt_fate_fractions``,
    ``knockout_fate_fractions`` (knocked-out gene × fate), ``knockout_lost_fates`` and
    ``knockout_novel_fates`` (comma-joined), ``trajectories`` and ``params``.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> ad = gcl.datasets.simulate("A B -\\nB A -", n_cells=100, n_targets=10, initial={"A": 1, "B": 1})
    >>> sorted(ad.uns["gcl_truth"]["wt_fate_fractions"])
    ['A', 'B']
    """
    import anndata as ad
    import scipy.sparse as sp
    import torch

    from ..engine import BooleanHillField

    t_start = time.perf_counter()
    if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 1:
        raise GclError(f"n_cells must be a positive integer; got {n_cells!r}.")
    if isinstance(n_targets, bool) or not isinstance(n_targets, int | np.integer) or n_targets < 0:
        raise GclError(f"n_targets must be a non-negative integer; got {n_targets!r}.")
    if knockout not in ("production", "clamp"):
        raise GclError(f"knockout must be 'production' or 'clamp'; got {knockout!r}.")
    if not (0 < min_fraction < 1):
        raise GclError(f"min_fraction must lie in (0, 1); got {min_fraction}.")
    if not (np.isfinite(noise) and noise >= 0):
        raise GclError(f"noise must be a non-negative number; got {noise}.")
    if not (np.isfinite(rate_jitter) and rate_jitter >= 0):
        raise GclError(
            f"rate_jitter must be a non-negative number (log-normal sigma; 0 = no jitter); "
            f"got {rate_jitter}."
        )
    if not (np.isfinite(capture) and capture > 0):
        raise GclError(
            f"capture must be a positive number (1.0 = the default depth); got {capture}."
        )
    net = as_network(network)
    genes = list(net.genes)
    G = len(genes)
    conditions = _parse_fates(fates, genes)
    x0 = _initial_state(net, initial)
    hill_v = _per_gene(hill, genes, "hill")
    thr_v = _per_gene(threshold, genes, "threshold")
    rate_v = _per_gene(rate, genes, "rate")
    is_input = np.array([net.rules[g] is None for g in genes])
    alpha = np.where(is_input, 0.0, rate_v)
    gamma = alpha.copy()
    n_traj = int(n_trajectories or min(n_cells, int(np.clip(n_cells // 5, 100, 2000))))
    n_ko = int(n_knockout_trajectories or n_traj)
    if n_traj < 1 or n_ko < 1:
        raise GclError("n_trajectories and n_knockout_trajectories must be positive.")

    field = BooleanHillField(
        genes, net.rules, hill=hill_v, threshold=thr_v, alpha=alpha, gamma=gamma
    )

    # one batch: wild type, then each knockout
    ko_genes = list(range(G)) if knockouts else []
    sizes = [n_traj] + [n_ko] * len(ko_genes)
    N = sum(sizes)
    X0 = np.tile(x0, (N, 1))
    A = np.tile(alpha, (N, 1))
    mask = np.zeros((N, G), dtype=bool)
    offsets = np.cumsum([0, *sizes])
    for c, g in enumerate(ko_genes, start=1):
        rows = slice(offsets[c], offsets[c + 1])
        A[rows, g] = 0.0
        if knockout == "clamp" or is_input[g]:
            X0[rows, g] = 0.0
            mask[rows, g] = True
    Gm = None
    if rate_jitter > 0:
        # its own stream (seed, 1): the noise and the sampling draw what they draw without it
        factor = np.random.default_rng([seed, 1]).lognormal(0.0, rate_jitter, size=(N, G))
        A = A * factor
        Gm = gamma * factor
    sol = _integrate_batch(
        field, X0, A, Gm, mask, t_max=t_max, dt=dt, noise=noise, seed=seed, device=device
    )
    xs = sol.xs.cpu().numpy()  # (n_save, N, G)
    ts = sol.ts.cpu().numpy().astype(np.float64)
    n_save = xs.shape[0]
    t_sim = time.perf_counter() - t_start

    patterns = xs > 0.5
    settled, end = _settle(xs)
    namer = _FateNamer(genes, conditions)

    # wild type
    wt = slice(0, n_traj)
    wt_fate = np.array(
        [namer.name_wt(end[j]) if settled[j] else UNSETTLED for j in range(n_traj)], dtype=object
    )
    commit = _commit_index(np.concatenate([patterns[:, wt], end[None, wt]], axis=0))
    commit = np.where(settled[wt], commit, n_save)  # unsettled: never committed

    def fractions(names: np.ndarray) -> dict[str, float]:
        s = pd.Series(names).value_counts(normalize=True, sort=False)
        return {str(k): float(v) for k, v in s.sort_index().items()}

    wt_frac = fractions(wt_fate)
    wt_fates = [f for f, v in wt_frac.items() if v >= min_fraction and f != UNSETTLED]
    ko_rows: dict[str, dict[str, float]] = {}
    lost: dict[str, str] = {}
    novel: dict[str, str] = {}
    for c, g in enumerate(ko_genes, start=1):
        rows = range(offsets[c], offsets[c + 1])
        names = np.array(
            [namer.name_ko(end[j], g) if settled[j] else UNSETTLED for j in rows], dtype=object
        )
        frac = fractions(names)
        ko_rows[genes[g]] = frac
        lost[genes[g]] = ",".join(f for f in wt_fates if frac.get(f, 0.0) < min_fraction)
        novel[genes[g]] = ",".join(
            f for f, v in frac.items() if f.startswith(NOVEL) and v >= min_fraction
        )
    all_fates = list(dict.fromkeys([*wt_frac, *(f for r in ko_rows.values() for f in r)]))
    ko_table = pd.DataFrame(
        [[r.get(f, 0.0) for f in all_fates] for r in ko_rows.values()],
        index=pd.Index(list(ko_rows), name="knockout", dtype=str),
        columns=pd.Index(all_fates, dtype=str),
        dtype=np.float64,
    )

    # sample cells along wild-type trajectories
    rng = np.random.default_rng(seed)
    committed_t = ts[np.minimum(commit, n_save - 1)][commit < n_save]
    if sample_until is None:
        t_hi = 1.5 * float(np.quantile(committed_t, 0.9)) if committed_t.size else float(t_max)
        t_hi = float(np.clip(t_hi, min(t_max, 5 * ts[1]), t_max))
    else:
        if not (0 < sample_until <= t_max):
            raise GclError(f"sample_until must lie in (0, t_max={t_max}]; got {sample_until}.")
        t_hi = float(sample_until)
    traj = rng.permutation(np.resize(np.arange(n_traj), n_cells))
    t_cell = rng.uniform(0.0, t_hi, size=n_cells)
    snap = np.clip(np.rint(t_cell / ts[-1] * (n_save - 1)).astype(int), 0, n_save - 1)
    state = xs[snap, traj].astype(np.float32)
    with torch.no_grad():
        rates = None if Gm is None else {"alpha": A[traj], "gamma": Gm[traj]}
        velocity = field(0.0, torch.as_tensor(state), rates).numpy().astype(np.float32)
    label = np.where(snap >= commit[traj], wt_fate[traj], PROGENITOR)
    label = np.where(label == UNSETTLED, PROGENITOR, label)

    # downstream targets: mean of Hill terms of 1-3 regulators with random sign
    regs_pool = np.arange(G)
    t_edges = []
    levels_t = np.zeros((n_cells, n_targets), dtype=np.float64)
    for j in range(n_targets):
        k = int(rng.integers(1, min(3, G) + 1))
        srcs = rng.choice(regs_pool, size=k, replace=False)
        acc = np.zeros(n_cells)
        for s in srcs:
            sign = 1 if rng.random() < 0.5 else -1
            thr = float(rng.uniform(0.25, 0.75))
            nh = int(rng.choice([1, 2, 4]))
            xv = np.clip(state[:, s].astype(np.float64), 0.0, None) ** nh
            h = xv / (thr**nh + xv)
            acc += h if sign > 0 else 1.0 - h
            t_edges.append((genes[s], f"t{j:04d}", sign, thr, nh))
        levels_t[:, j] = acc / k
    target_names = [f"t{j:04d}" for j in range(n_targets)]

    # UMI counts: gene scale × level, per-cell library size, gamma-Poisson (negative binomial)
    levels = np.concatenate([np.clip(state.astype(np.float64), 0.0, None), levels_t], axis=1)
    n_genes = levels.shape[1]
    scale = rng.lognormal(mean=np.log(8.0), sigma=0.8, size=n_genes)
    lib = rng.lognormal(mean=0.0, sigma=0.35, size=n_cells)
    lib /= lib.mean()
    mu = lib[:, None] * scale[None, :] * (levels + 0.02)
    if capture != 1.0:
        mu = mu * capture
    theta = 5.0
    counts = rng.poisson(rng.gamma(theta, mu / theta)).astype(np.float32)
    X = sp.csr_matrix(counts)

    obs = pd.DataFrame(
        {
            Key.obs.celltype: pd.Categorical(
                label, categories=[PROGENITOR, *sorted(set(label) - {PROGENITOR})]
            ),
            Key.obs.sim_time: ts[snap],
            Key.obs.trajectory: traj.astype(np.int64),
        },
        index=pd.Index([f"cell{i:05d}" for i in range(n_cells)]),
    )
    var = pd.DataFrame(
        {Key.var.regulator: np.r_[np.ones(G, bool), np.zeros(n_targets, bool)]},
        index=pd.Index(genes + target_names),
    )
    pattern_df = pd.DataFrame(
        np.array(list(namer.wt_patterns.values()), dtype=np.int64).reshape(-1, G),
        index=pd.Index(list(namer.wt_patterns), dtype=str),
        columns=pd.Index(genes, dtype=str),
    )
    traj_df = pd.DataFrame(
        {
            "fate": wt_fate.astype(str),
            "commit_time": np.where(commit < n_save, ts[np.minimum(commit, n_save - 1)], np.nan),
        },
        index=pd.Index([str(i) for i in range(n_traj)], name="trajectory"),
    )
    truth = {
        "network": net.edges(),
        "target_network": pd.DataFrame(
            t_edges, columns=["source", "target", "sign", "threshold", "hill"]
        ).astype({"sign": np.int64, "hill": np.int64}),
        "regulators": np.array(genes, dtype=str),
        "rules": net.rule_text(),
        "initial": x0.astype(np.float64),
        "state": state,
        "velocity": velocity,
        "fate_patterns": pattern_df,
        "wt_fate_fractions": wt_frac,
        "knockout_fate_fractions": ko_table,
        "knockout_lost_fates": lost,
        "knockout_novel_fates": novel,
        "trajectories": traj_df,
        "params": {
            "n_cells": int(n_cells),
            "n_targets": int(n_targets),
            "seed": int(seed),
            "n_trajectories": n_traj,
            "n_knockout_trajectories": n_ko if knockouts else 0,
            "knockout": knockout,
            "t_max": float(t_max),
            "dt": float(sol.dt),
            "noise": float(noise),
            "rate_jitter": float(rate_jitter),
            "capture": float(capture),
            "hill": hill_v,
            "threshold": thr_v,
            "alpha": alpha,
            "gamma": gamma,
            "min_fraction": float(min_fraction),
            "sample_until": t_hi,
            "network_name": net.name,
        },
    }
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.layers[Key.layers.counts] = X.copy()
    adata.uns[Key.uns.truth] = truth
    logger.info(
        "simulated %d cells (%d trajectories, %d knockouts) in %.2f s (integration %.2f s)",
        n_cells, n_traj, len(ko_genes), time.perf_counter() - t_start, t_sim,
    )  # fmt: skip
    return adata
