"""Statistics of ``gcl.sim``: fate tables with intervals and p-values, the lost/gained rule,
the ensemble's ``p_lost``, fold changes, the perturbation score and its null of random
perturbations.

With a genome ensemble every quantity is computed per member on the same cells and then
combined: fractions are ensemble means, ``p_lost`` is the share of members in which a fate
is lost, and intervals resample members and cells. With one member everything reduces to the
single genome's statistics (``p_lost`` is then 0 or 1).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils import rng
from ..landscape._perturbations import EDGE, Edit, Perturbation
from ._simulation import NOVEL, STEADY_STATE, Setup, Simulation, simulate, touched

if TYPE_CHECKING:  # pragma: no cover
    from ..landscape import Genome

#: A wild-type fate reached by at least this fraction of cells is *lost* when fewer than this
#: fraction of perturbed cells reach it (the rule of the simulated truth); a fate (or
#: ``novel``) reached by at least this fraction of perturbed cells and fewer wild-type cells
#: is *gained*.
MIN_FRACTION = 0.01
#: A fate is in ``lost_fates`` when at least this share of the ensemble's members lose it.
P_LOST_CALL = 0.5
#: Log-fold-change pseudocount in model coordinates (genes scaled to about [0, 1]).
PSEUDOCOUNT = 0.01
N_BOOT = 200
#: Null of random perturbations: how many, with how many cells each.
N_NULL = 20
N_NULL_CELLS = 300
FATES_COLUMNS = ["wt", "perturbed", "delta", "ci_low", "ci_high", "p_value", "p_lost"]


def fate_order(order: list[str], *labels: np.ndarray) -> list[str]:
    """The fates reached in any of ``labels``: reference order first, other labels sorted,
    ``"novel"`` last."""
    seen = set().union(*(set(lab) for lab in labels))
    fates = [f for f in dict.fromkeys(order) if f in seen]
    fates += sorted(f for f in seen if f not in fates and f != NOVEL)
    return [*fates, NOVEL] if NOVEL in seen else fates


def _bootstrap_means(D: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """``(n_fates, N_BOOT)`` bootstrap distribution of the column means of ``D`` (cells
    resampled; the paired wild-type/mutant difference of each cell stays together)."""
    from scipy.stats import bootstrap

    # scipy >= 1.15 names the generator ``rng``; older releases ``random_state``
    key = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    # resamples in batches of at most ~5e6 values, so 10^5 cells do not build one 800 MB array
    batch = max(1, int(5e6 // max(D.size, 1)))
    res = bootstrap(
        (D,), np.mean, axis=0, vectorized=True, n_resamples=N_BOOT, method="percentile",
        batch=min(batch, N_BOOT), **{key: gen},
    )  # fmt: skip
    return np.asarray(res.bootstrap_distribution, dtype=np.float64).reshape(D.shape[1], -1)


def _mcnemar(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """McNemar's exact test per column of paired 0/1 outcomes (wild type ``a``, mutant ``b``)."""
    from scipy.stats import binomtest

    only_wt = ((a == 1) & (b == 0)).sum(0)
    only_pert = ((a == 0) & (b == 1)).sum(0)
    return np.array(
        [
            binomtest(int(c), int(n + c), 0.5).pvalue if n + c > 0 else 1.0
            for n, c in zip(only_wt, only_pert)
        ],
        dtype=np.float64,
    )


def fate_table(wt: Simulation, mut: Simulation, order: list[str], seed: int) -> pd.DataFrame:
    """Fate fractions (ensemble means), a 95 % bootstrap interval of the difference over
    members and cells, McNemar's exact test on the paired cells (median over members), and
    ``p_lost``."""
    fates = fate_order(order, wt.labels, mut.labels)
    A = [np.stack([w.labels == f for f in fates], axis=1).astype(np.float64) for w in wt.members]
    B = [np.stack([m.labels == f for f in fates], axis=1).astype(np.float64) for m in mut.members]
    gen = rng(seed + 1)
    boots = [_bootstrap_means(b - a, gen) for a, b in zip(A, B)]
    if len(boots) == 1:
        dist = boots[0]
    else:  # two stages: members with replacement, then each member's own cell resample
        pick = gen.integers(0, len(boots), (N_BOOT, len(boots)))
        stacked = np.stack(boots)  # (members, fates, N_BOOT)
        dist = stacked[pick.T, :, np.arange(N_BOOT)[None, :]].mean(0).T
    lo, hi = np.percentile(dist, [2.5, 97.5], axis=1)
    # McNemar per member, then the median over members: pooling the members' cells would
    # give a tiny p-value to a change that half of them do not make
    p = np.median([_mcnemar(a, b) for a, b in zip(A, B)], axis=0)
    f_wt = np.stack([a.mean(0) for a in A])  # (members, fates)
    f_pt = np.stack([b.mean(0) for b in B])
    is_novel = np.array([f == NOVEL for f in fates])
    lost = (f_wt >= MIN_FRACTION) & (f_pt < MIN_FRACTION) & ~is_novel[None, :]
    return pd.DataFrame(
        {
            "wt": f_wt.mean(0),
            "perturbed": f_pt.mean(0),
            "delta": f_pt.mean(0) - f_wt.mean(0),
            "ci_low": lo,
            "ci_high": hi,
            "p_value": p,
            "p_lost": lost.mean(0),
        },
        index=pd.Index(fates, name="fate", dtype=str),
    )


def empty_fate_table() -> pd.DataFrame:
    """The fate table of a steady-state genome: no fates."""
    return pd.DataFrame(
        {c: pd.Series(dtype=np.float64) for c in FATES_COLUMNS},
        index=pd.Index([], name="fate", dtype=str),
    )


def lost_gained(fates: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Lost fates (``p_lost`` ≥ 0.5; without a ``p_lost`` column, the single-genome rule on
    the fractions) and gained ones (reached by ≥ 1 % of perturbed, < 1 % of wild-type cells)."""
    if "p_lost" in fates:
        lost = [str(f) for f, r in fates.iterrows() if r["p_lost"] >= P_LOST_CALL]
    else:
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


def log2fc(wt: np.ndarray, pert: np.ndarray) -> np.ndarray:
    """Log2 fold change of mean levels with :data:`PSEUDOCOUNT`."""
    return np.log2((pert + PSEUDOCOUNT) / (wt + PSEUDOCOUNT))


def score(setup: Setup, wt: Simulation, mut: Simulation, perturbation: Perturbation) -> float:
    """Fate mode: total-variation distance of the (ensemble-mean) fate distributions.
    Steady-state mode: root-mean-square log2 fold change of the genes the perturbation does
    not set."""
    if setup.mode == STEADY_STATE:
        keep = ~touched(setup.genome_obj(), perturbation)
        fc = log2fc(wt.end.mean(0), mut.end.mean(0))[keep]
        return float(np.sqrt(np.mean(fc**2))) if fc.size else 0.0
    lw, lm = wt.labels, mut.labels
    fates = sorted(set(lw) | set(lm))
    a = np.array([np.mean(lw == f) for f in fates])
    b = np.array([np.mean(lm == f) for f in fates])
    return float(0.5 * np.abs(a - b).sum())


def null_perturbations(
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


def null_scores(setup: Setup, perturbation: Perturbation, n_null: int, seed: int) -> np.ndarray:
    """Scores of ``n_null`` random perturbations like ``perturbation`` (300 cells each)."""
    nulls = null_perturbations(perturbation, setup.genome_obj(), n_null, seed + 7)
    if not nulls:
        return np.zeros(0)
    n = N_NULL_CELLS
    wt = simulate(setup, None, n_cells=n, seed=seed)
    return np.array([score(setup, wt, simulate(setup, p, n_cells=n, seed=seed), p) for p in nulls])


def null_signature(perturbation: Perturbation) -> tuple:
    """Perturbations with the same signature share one null (same kinds, values and size)."""
    return tuple(sorted((e.kind, e.value) for e in perturbation.edits))


def score_pvalue(score: float, null: np.ndarray) -> float:
    """``(1 + #null ≥ score) / (1 + n_null)``."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.sum(null >= score)) / (1 + len(null)))
