"""Datasets with known single-knockout outcomes for ``knockouts.py``, and how they are scored.

Each loader returns a :class:`KnockoutCase`: the AnnData the pipeline sees (data only), the
obs columns it may use (time, root group, cell types) and, kept apart for scoring only, the
true lost fates of every single knockout.

- ``myeloid``: ``gcl.datasets.myeloid()``; truth ``.uns["gcl_truth"]["knockout_lost_fates"]``
  (the Krumsiek et al. 2011 outcomes that the simulation was tuned to reproduce; 11 knockouts,
  four fates Ery, Mk, Gran, Mono).
- ``random<G>_s<seed>``: ``gcl.datasets.simulate`` on
  :func:`_grn_data.random_signed_network` (``G`` regulators, two mutually repressing toggle
  pairs, 2,000 cells, 50 downstream genes). Truth: :func:`true_knockout_outcomes` develops the
  TRUE vector field (:func:`gclandscape.datasets._simulate.field_from_truth`) from the
  simulation's initial state (the earliest cells) under the wild type and each knockout
  (production removed, as ``Genome.mutate`` and ``simulate`` do), relaxes the end states
  without noise, and names each by the nearest true wild-type attractor over the genes the
  knockout does not set ("novel" when farther than half the distance between the two closest
  attractors, clipped to [0.05, 0.3]: the naming rule of ``gcl.sim.perturb``, applied to the
  true model). The true attractors are the wild type's relaxed end states grouped by their
  binarised pattern (named as ``simulate`` names them, which are the cells' ``celltype``).
  A fate is lost when fewer than 1 % of knockout cells reach it (``gcl.sim``'s rule).
  Choice of networks (:data:`RANDOM_CASES`): for each size ``G`` in (10, 12, 15), the first
  seed from 1 on whose true wild type reaches at least 2 fates and no fate with between 1 %
  and 5 % of trajectories (a fate that rare cannot be scored reliably from 400 trajectories
  and is rarely sampled as a cell type). :func:`select_random_seed` applies the rule.
- ``mCAD``: BEELINE's mCAD simulation (``../shared/data/beeline/mCAD_2000_0``, 2,000 cells,
  5 genes, read with ``gcl.io.read``), rules ``boolean_models/mCAD.txt``. Cell types from the
  data: a cell on exactly one of BEELINE's two pseudotime lineages and past that lineage's
  median pseudotime carries the lineage's label, every other cell is ``progenitor``; each
  lineage is named after the Boolean wild-type fixed point nearest (Hamming) to its late
  cells' binarised mean (levels divided by the gene's 99th percentile, > 0.5): ``anterior``
  (Fgf8, Pax6, Sp8) or ``posterior`` (Coup, Emx2). Truth (:func:`boolean_knockout_truth`):
  every fixed point of the Boolean rules under each knockout (found by enumerating all 2^5
  states, the knocked-out gene held at 0), each named by the nearest wild-type fixed point
  over the other genes (Hamming; a tie is novel); a wild-type fixed point that no knockout
  fixed point is named after is lost. This gives Fgf8 KO and Sp8 KO → anterior lost, the
  other three keep both (``mCAD_ko_fixed_points.json`` beside the rules lists the same fixed
  points; the loader checks it when present).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GCL_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: (regulators, first seed tried) of the three random networks; see the module docstring.
RANDOM_CASES = ((10, 1), (12, 1), (15, 1))
MIN_FRACTION = 0.01  # gcl.sim's lost/gained rule
MIN_SCORED_FRACTION = 0.05
T_RELAX = 20.0
NOVEL = "novel"
TIME_KEY = "bench_pseudotime"
CELLTYPE_KEY = "bench_celltype"


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be loaded here (e.g. ``../shared/data`` is absent)."""


@dataclass
class KnockoutCase:
    """One benchmark network: data for the pipeline, truth for scoring only."""

    name: str
    adata: object
    genes: list[str]
    fates: list[str]
    truth_lost: dict[str, set[str]]
    time_key: str
    root: str = "progenitor"
    groupby: str = "celltype"
    counts: bool = True
    notes: list[str] = field(default_factory=list)
    truth_table: pd.DataFrame | None = None  # knockout × fate fractions, where computed


# ------------------------------------------------------------------------------- scoring
def parse_lost(value: str | Iterable[str] | None) -> set[str]:
    """``"Ery,Mk"`` (as ``simulate`` stores it), a list, or None → a set of fate names."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {v.strip() for v in value.split(",") if v.strip()}
    return {str(v) for v in value}


def score_knockouts(
    predicted: Mapping[str, Iterable[str]],
    truth: Mapping[str, Iterable[str]],
    fates: Sequence[str],
) -> dict[str, float]:
    """Accuracy over knockouts and precision/recall of (knockout, lost fate) pairs.

    Only fates in ``fates`` (the scored wild-type fates) count: a predicted loss of another
    label (``progenitor``, ``novel``) is ignored. A knockout is right when its predicted set of
    lost fates equals the true set exactly (both empty counts as right). Precision is NaN when
    nothing is predicted lost, recall NaN when nothing is truly lost.

    Returns
    -------
    dict with ``n``, ``n_right``, ``accuracy``, ``tp``, ``fp``, ``fn``, ``precision``,
    ``recall`` and ``wrong`` (the knockouts not right, in the order of ``truth``).
    """
    scored = set(fates)
    n_right = tp = fp = fn = 0
    wrong = []
    for ko, true in truth.items():
        t = parse_lost(true) & scored
        p = parse_lost(predicted.get(ko)) & scored
        n_right += int(p == t)
        if p != t:
            wrong.append(ko)
        tp += len(p & t)
        fp += len(p - t)
        fn += len(t - p)
    n = len(truth)
    return {
        "n": n,
        "n_right": n_right,
        "accuracy": n_right / n if n else float("nan"),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "wrong": wrong,
    }


# ------------------------------------------------------------------------------- Boolean truth
def boolean_fixed_points(net, *, knockout: str | None = None) -> list[frozenset[str]]:
    """Every fixed point of a Boolean network (all ``2^G`` states enumerated), as the set of
    genes that are on; ``knockout`` is held at 0. Sorted by (size, names)."""
    genes = list(net.genes)
    G = len(genes)
    if G > 20:
        raise ValueError(f"{G} genes: enumerating 2^{G} states is too many")
    codes = np.arange(2**G, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(G)) & 1).astype(bool)  # (2^G, G)
    if knockout is not None:
        bits = bits[~bits[:, genes.index(knockout)]]
    state = {g: bits[:, i] for i, g in enumerate(genes)}
    nxt = net.step(state)
    if knockout is not None:
        nxt[knockout] = np.zeros(len(bits), dtype=bool)
    same = np.all(
        [np.broadcast_to(np.asarray(nxt[g], bool), (len(bits),)) == bits[:, i]
         for i, g in enumerate(genes)],
        axis=0,
    )  # fmt: skip
    out = [frozenset(g for g, on in zip(genes, row) if on) for row in bits[same]]
    return sorted(out, key=lambda s: (len(s), sorted(s)))


def name_by_nearest(
    state: frozenset[str], references: Mapping[str, frozenset[str]], genes: Sequence[str],
    *, ignore: Iterable[str] = (),
) -> str:  # fmt: skip
    """The reference nearest in Hamming distance over ``genes`` minus ``ignore`` (a tie or no
    reference: ``"novel"``)."""
    keep = [g for g in genes if g not in set(ignore)]
    d = {name: sum((g in state) != (g in ref) for g in keep) for name, ref in references.items()}
    if not d:
        return NOVEL
    best = min(d.values())
    names = [n for n, v in d.items() if v == best]
    return names[0] if len(names) == 1 else NOVEL


def boolean_knockout_truth(
    net, wt_names: Mapping[str, frozenset[str]] | None = None
) -> tuple[dict[str, frozenset[str]], dict[str, list[frozenset[str]]], dict[str, set[str]]]:
    """Wild-type fixed points (named), each knockout's fixed points, and its lost fates.

    ``wt_names`` names the wild-type fixed points (name → set of on genes); by default they
    are named by their on genes joined with ``+``.
    """
    genes = list(net.genes)
    wt = boolean_fixed_points(net)
    if wt_names is None:
        wt_names = {("+".join(sorted(s)) or "all-off"): s for s in wt}
    ko_fps: dict[str, list[frozenset[str]]] = {}
    lost: dict[str, set[str]] = {}
    for g in genes:
        fps = boolean_fixed_points(net, knockout=g)
        ko_fps[g] = fps
        reached = {name_by_nearest(s, wt_names, genes, ignore=[g]) for s in fps}
        lost[g] = {name for name in wt_names if name not in reached}
    return dict(wt_names), ko_fps, lost


# ------------------------------------------------------------------------------- simulated truth
def _attractor_naming(states: np.ndarray, keep: np.ndarray, att: np.ndarray):
    """Nearest attractor (RMS over ``keep``) and the novel tolerance of ``gcl.sim.perturb``."""
    d_att = np.sqrt(((att[:, None] - att[None]) ** 2).mean(-1))
    distinct = d_att[np.triu_indices(len(att), 1)]
    tol = 0.5 * float(distinct.min()) if distinct.size and distinct.min() > 0 else 0.2
    tol = float(np.clip(tol, 0.05, 0.3))
    d = np.sqrt(((states[:, None, keep] - att[None, :, keep]) ** 2).mean(-1))
    near = d.argmin(1)
    return near, d[np.arange(len(states)), near] > tol


def true_knockout_outcomes(
    truth: Mapping, *, n_traj: int = 400, seed: int = 0
) -> tuple[pd.Series, pd.DataFrame, dict[str, set[str]]]:
    """Develop the TRUE field of a ``simulate`` dataset under the wild type and every single
    knockout from the initial state and name the end states by the true attractors (see the
    module docstring).

    Returns
    -------
    ``(wt_fractions, ko_fractions, lost)``: wild-type fate fractions (Series over fate names,
    with ``novel`` and ``unsettled`` never among them), knockout × fate fractions, and each
    knockout's lost fates (wild-type fates with >= 1 % → < 1 %).
    """
    import torch

    from gclandscape.datasets._simulate import _high_name, field_from_truth
    from gclandscape.engine import integrate

    field_ = field_from_truth(truth)
    genes = [str(g) for g in truth["regulators"]]
    G = len(genes)
    p = truth["params"]
    alpha = np.asarray(p["alpha"], dtype=np.float64)
    is_input = alpha == 0
    x0 = np.asarray(truth["initial"], dtype=np.float64)
    N = n_traj * (G + 1)
    X0 = np.tile(x0, (N, 1))
    A = np.tile(alpha, (N, 1))
    mask = np.zeros((N, G), dtype=bool)
    for g in range(G):
        rows = slice((g + 1) * n_traj, (g + 2) * n_traj)
        A[rows, g] = 0.0
        if is_input[g]:
            X0[rows, g] = 0.0
            mask[rows, g] = True
    args = {"alpha": torch.as_tensor(A, dtype=torch.float32)}
    clamp = (torch.as_tensor(mask), 0.0) if mask.any() else None
    noise = float(p["noise"])
    sol = integrate(
        field_, torch.as_tensor(X0, dtype=torch.float32), t_max=float(p["t_max"]),
        dt=float(p["dt"]), args=args, noise=lambda t, x, a: noise * torch.sqrt(x + 0.01),
        seed=seed, clamp=clamp,
    )  # fmt: skip
    relaxed = integrate(
        field_, sol.x, t_max=T_RELAX, dt=float(p["dt"]), args=args, noise=0.0, clamp=clamp
    ).x.cpu().numpy().astype(np.float64)  # fmt: skip

    wt = relaxed[:n_traj]
    pat = wt > 0.5
    keys, inv, counts = np.unique(pat, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    known = {}
    fp = truth.get("fate_patterns")
    if fp is not None and len(fp):
        known = {tuple(np.asarray(r, bool)): str(n) for n, r in fp[genes].iterrows()}
    frac = counts / n_traj
    att_idx = [k for k in range(len(keys)) if frac[k] >= MIN_FRACTION]
    names = [known.get(tuple(keys[k]), _high_name(keys[k], genes)) for k in att_idx]
    att = np.stack([wt[inv == k].mean(0) for k in att_idx])

    def fractions(states: np.ndarray, ko: int | None) -> dict[str, float]:
        keep = np.ones(G, dtype=bool)
        if ko is not None:
            keep[ko] = False
        near, novel = _attractor_naming(states, keep, att)
        lab = np.where(novel, NOVEL, np.asarray(names, dtype=object)[near])
        s = pd.Series(lab).value_counts(normalize=True)
        return {str(k): float(v) for k, v in s.items()}

    wt_frac = pd.Series(fractions(wt, None)).reindex(names).fillna(0.0)
    rows, lost = {}, {}
    for g in range(G):
        f = fractions(relaxed[(g + 1) * n_traj : (g + 2) * n_traj], g)
        rows[genes[g]] = f
        lost[genes[g]] = {
            n for n in names if wt_frac[n] >= MIN_FRACTION and f.get(n, 0.0) < MIN_FRACTION
        }
    cols = list(dict.fromkeys([*names, *(k for r in rows.values() for k in r)]))
    table = pd.DataFrame(
        [[r.get(c, 0.0) for c in cols] for r in rows.values()], index=list(rows), columns=cols
    )
    return wt_frac, table, lost


# ------------------------------------------------------------------------------- loaders
def load_myeloid(*, n_cells: int = 3000, seed: int = 0) -> KnockoutCase:
    """``gcl.datasets.myeloid()`` with its stored knockout truth."""
    import gclandscape as gcl

    adata = gcl.datasets.myeloid(n_cells=n_cells, seed=seed)
    truth = adata.uns["gcl_truth"]
    wt = {k: v for k, v in truth["wt_fate_fractions"].items() if k != "unsettled"}
    fates = [f for f, v in wt.items() if v >= MIN_FRACTION]
    lost = {str(k): parse_lost(v) for k, v in truth["knockout_lost_fates"].items()}
    return KnockoutCase(
        name="myeloid" if n_cells == 3000 else f"myeloid{n_cells}",
        adata=adata,
        genes=[str(g) for g in truth["regulators"]],
        fates=fates,
        truth_lost=lost,
        time_key="sim_time",
    )


def _simulate_random(n: int, seed: int, *, n_cells: int = 2000, n_targets: int = 50):
    import gclandscape as gcl
    from _grn_data import random_signed_network

    net, initial = random_signed_network(n, seed=seed)
    return gcl.datasets.simulate(
        net, n_cells=n_cells, n_targets=n_targets, seed=seed, initial=initial, knockouts=False
    )


def _acceptable(wt_frac: pd.Series) -> bool:
    reached = wt_frac[wt_frac >= MIN_FRACTION]
    return len(reached) >= 2 and bool((reached >= MIN_SCORED_FRACTION).all())


def select_random_seed(n: int, first: int, *, max_tries: int = 20, n_traj: int = 400) -> int:
    """The first seed from ``first`` on that satisfies the rule of the module docstring."""
    for seed in range(first, first + max_tries):
        adata = _simulate_random(n, seed, n_cells=200, n_targets=0)
        wt, _, _ = true_knockout_outcomes(adata.uns["gcl_truth"], n_traj=n_traj, seed=seed)
        if _acceptable(wt):
            return seed
    raise RuntimeError(f"no acceptable random{n} network among seeds {first}..{first + max_tries}")


def load_random(n: int, seed: int, *, n_cells: int = 2000, n_traj: int = 400) -> KnockoutCase:
    """``simulate`` on a random signed network; truth from :func:`true_knockout_outcomes`."""
    adata = _simulate_random(n, seed, n_cells=n_cells)
    truth = adata.uns["gcl_truth"]
    wt, table, lost = true_knockout_outcomes(truth, n_traj=n_traj, seed=seed)
    fates = [f for f, v in wt.items() if v >= MIN_FRACTION]
    observed = adata.obs["celltype"].value_counts()
    notes = [
        f"true wild-type fates {', '.join(f'{f} {wt[f]:.0%}' for f in fates)}; "
        f"{sum(bool(v) for v in lost.values())} of {len(lost)} knockouts lose a fate"
    ]
    missing = [f for f in fates if observed.get(f, 0) == 0]
    if missing:
        notes.append(f"fates without observed cells: {missing}")
    return KnockoutCase(
        name=f"random{n}_s{seed}",
        adata=adata,
        genes=[str(g) for g in truth["regulators"]],
        fates=fates,
        truth_lost=lost,
        time_key="sim_time",
        notes=notes,
        truth_table=table,
    )


def mcad_names() -> dict[str, frozenset[str]]:
    return {
        "anterior": frozenset({"Fgf8", "Pax6", "Sp8"}),
        "posterior": frozenset({"Coup", "Emx2"}),
    }


def load_mcad(root: Path | None = None) -> KnockoutCase:
    """BEELINE mCAD with Boolean knockout truth (see the module docstring)."""
    import gclandscape as gcl
    from gclandscape.datasets._rules import read_rules

    root = root or SHARED_DATA
    folder = root / "beeline" / "mCAD_2000_0"
    rules = root / "boolean_models" / "mCAD.txt"
    if not folder.is_dir() or not rules.is_file():
        raise DatasetUnavailable(f"{folder} or {rules} not found (../shared/data is absent)")
    net = read_rules(rules)
    names = mcad_names()
    wt_fps = set(boolean_fixed_points(net))
    if wt_fps != set(names.values()):
        raise RuntimeError(f"mCAD wild-type fixed points changed: {wt_fps}")
    _, ko_fps, lost = boolean_knockout_truth(net, names)
    notes = []
    js = root / "boolean_models" / "mCAD_ko_fixed_points.json"
    if js.is_file():
        ref = json.loads(js.read_text())
        bad = [
            g for g in net.genes
            if {frozenset(s) for s in ref.get(f"{g}_KO", [])} != set(ko_fps[g])
        ]  # fmt: skip
        notes.append(
            "knockout fixed points agree with mCAD_ko_fixed_points.json"
            if not bad
            else f"knockout fixed points differ from the JSON for {bad}"
        )
    adata = gcl.io.read(folder)
    cols = [c for c in adata.obs.columns if pd.api.types.is_numeric_dtype(adata.obs[c])]
    pt = adata.obs[cols].to_numpy(dtype=np.float64)
    on = ~np.isnan(pt)
    adata.obs[TIME_KEY] = np.nanmin(pt, axis=1)
    x = np.asarray(adata[:, list(net.genes)].X, dtype=np.float64)
    high = x / np.percentile(x, 99, axis=0) > 0.5
    labels = np.full(adata.n_obs, "progenitor", dtype=object)
    genes = list(net.genes)
    for k in range(len(cols)):
        only = on[:, k] & (on.sum(1) == 1)
        late = only & (pt[:, k] >= np.median(pt[only, k]))
        pattern = frozenset(g for g, v in zip(genes, high[late].mean(0) > 0.5) if v)
        labels[late] = name_by_nearest(pattern, names, genes)
    adata.obs[CELLTYPE_KEY] = pd.Categorical(labels)
    counts = adata.obs[CELLTYPE_KEY].value_counts()
    notes.append("cell types from lineages: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return KnockoutCase(
        name="mCAD",
        adata=adata,
        genes=genes,
        fates=list(names),
        truth_lost=lost,
        time_key=TIME_KEY,
        groupby=CELLTYPE_KEY,
        counts=False,
        notes=notes,
    )


# ------------------------------------------------------------------------------- steady state
def steady_state_network(n: int = 12, *, n_inputs: int = 3, seed: int = 0) -> pd.DataFrame:
    """A random signed DAG: ``n_inputs`` genes without inputs (constitutively on), every other
    gene 1–3 inputs from earlier genes (sign + with probability 0.6). Acyclic, so the
    continuous model has exactly one steady state: one population."""
    gen = np.random.default_rng(seed)
    genes = [f"s{i:02d}" for i in range(n)]
    rows = []
    for t in range(n_inputs, n):
        k = int(gen.integers(1, min(3, t) + 1))
        for s in gen.choice(t, size=k, replace=False):
            rows.append((genes[int(s)], genes[t], 1 if gen.random() < 0.6 else -1))
    return pd.DataFrame(rows, columns=["source", "target", "sign"])


def true_steady_state_changes(truth: Mapping, *, t_max: float = 60.0) -> pd.DataFrame:
    """True log2 fold change of every regulator under each single knockout: the TRUE field
    (production of the gene removed) developed without noise from the wild-type steady state
    to the knocked-out one. Pseudocount 0.01 on levels in [0, 1] (as ``gcl.sim``).

    Returns
    -------
    DataFrame knockout × gene.
    """
    import torch

    from gclandscape.datasets._simulate import field_from_truth
    from gclandscape.engine import integrate

    field_ = field_from_truth(truth)
    genes = [str(g) for g in truth["regulators"]]
    G = len(genes)
    alpha = np.asarray(truth["params"]["alpha"], dtype=np.float64)
    dt = float(truth["params"]["dt"])
    x0 = torch.as_tensor(np.asarray(truth["initial"])[None], dtype=torch.float64)
    wt = integrate(field_, x0, t_max=t_max, dt=dt, noise=0.0).x
    A = np.tile(alpha, (G, 1))
    A[np.arange(G), np.arange(G)] = 0.0
    ko = integrate(
        field_, wt.repeat(G, 1), t_max=t_max, dt=dt, noise=0.0,
        args={"alpha": torch.as_tensor(A, dtype=torch.float64)},
    ).x  # fmt: skip
    w = wt.numpy()[0]
    k = ko.numpy()
    return pd.DataFrame(np.log2((k + 0.01) / (w + 0.01)), index=genes, columns=genes)


def load_steady_state(
    n: int = 12, *, n_cells: int = 2000, seed: int = 0, noise: float = 0.2
) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """A single-population dataset (as ``tests/test_fit_grn.py`` builds its steady state:
    cells sampled after the median simulated time, the clock dropped) and the true changes.

    Returns
    -------
    ``(adata, network, true_log2fc)`` with ``true_log2fc`` knockout × gene.
    """
    import gclandscape as gcl

    net = steady_state_network(n, seed=seed)
    adata = gcl.datasets.simulate(
        net, n_cells=2 * n_cells, n_targets=60, seed=seed, knockouts=False, noise=noise,
        hill=2.0,
    )  # fmt: skip
    truth = adata.uns["gcl_truth"]
    adata = adata[adata.obs["sim_time"] > adata.obs["sim_time"].median()].copy()
    del adata.obs["sim_time"], adata.obs["celltype"], adata.obs["sim_trajectory"]
    return adata, net, true_steady_state_changes(truth)
