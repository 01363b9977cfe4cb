"""Genome-level analyses: robustness, evolvability and pleiotropy (:func:`mutational_scan`)
and epistasis between knockouts (:func:`epistasis`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._utils import logger, rng
from ..landscape._perturbations import EDGE, Edit, Knockout, Perturbation
from ._simulation import (
    NOVEL,
    STEADY_STATE,
    build_setup,
    check_memory,
    check_n_cells,
    simulate,
)
from ._statistics import MIN_FRACTION, fate_order

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: A fate "moves" when its fraction changes by more than this.
MOVE = 0.05
#: Standard deviation of the log-normal factor of a weight_noise mutant.
WEIGHT_NOISE_SD = 0.25
KINDS = ("edge_loss", "weight_noise")


def _fractions(labels: np.ndarray, fates: list[str]) -> np.ndarray:
    return np.array([np.mean(labels == f) for f in fates], dtype=np.float64)


def _developmental_setup(adata, genome_key, landscape_key, root, what, n_cells):
    setup = build_setup(adata, genome_key=genome_key, landscape_key=landscape_key, root=root)
    if setup.mode == STEADY_STATE:
        raise GclError(
            f"{what} compares fates, but the genome in adata.uns[{genome_key!r}] was fitted in "
            "steady-state mode (one population, no fates). Fit it with a time signal "
            "(fit_grn(adata, time_key=...) or root=/groupby=), or use gcl.sim.perturb / screen "
            "for expression changes."
        )
    check_memory(setup, n_cells, n_save=None)
    return setup


class MutationalScan:
    """Result of :func:`mutational_scan`.

    Attributes
    ----------
    robustness
        Fraction of mutants that keep every wild-type fate with every fate fraction within
        ±0.05 of the wild type.
    evolvability
        Fraction of mutants in which at least 1 % of cells reach a novel attractor.
    table
        One row per mutant: ``mutant``, ``kind``, ``robust``, ``novel`` (bool), ``novel_fraction``,
        ``max_abs_delta``, then one ``delta`` column per fate (named by the fate).
    pleiotropy
        One row per edge lost in an ``edge_loss`` mutant: ``source``, ``target``, ``weight``,
        ``n_fates`` (fates moved by more than 0.05), ``n_mutants``.
    fates
        The fates (wild-type fates first, ``"novel"`` last when reached).
    wt
        Wild-type fate fractions (Series over ``fates``).

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
    >>> adata.var_names = ["A", "B"]
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata)
    >>> scan = gcl.sim.mutational_scan(adata, n_mutations=4, n_cells=50)
    >>> scan.table["kind"].tolist()
    ['edge_loss', 'weight_noise', 'edge_loss', 'weight_noise']
    """

    def __init__(
        self,
        *,
        table: pd.DataFrame,
        pleiotropy: pd.DataFrame,
        fates: list[str],
        wt: pd.Series,
        params: dict[str, Any],
    ):
        self.table = table
        self.pleiotropy = pleiotropy
        self.fates = list(fates)
        self.wt = wt
        self.params = params
        self.robustness = float(table["robust"].mean()) if len(table) else float("nan")
        self.evolvability = float(table["novel"].mean()) if len(table) else float("nan")

    def __repr__(self) -> str:
        return (
            f"MutationalScan({len(self.table)} mutants, robustness {self.robustness:.2f}, "
            f"evolvability {self.evolvability:.2f})"
        )


def _mutants(genome, n: int, kinds: Sequence[str], seed: int) -> list[tuple[str, Perturbation]]:
    """``n`` mutants cycling through ``kinds``: edge_loss removes one edge (each edge at most
    once, in random order); weight_noise scales every edge by a log-normal factor."""
    gen = rng(seed)
    W = genome.W.to_numpy()
    tgt, src = np.nonzero(W)
    order = gen.permutation(len(tgt))
    edges = [(genome.genes[src[k]], genome.genes[tgt[k]]) for k in order]
    out: list[tuple[str, Perturbation]] = []
    n_lost = 0
    for m in range(n):
        kind = kinds[m % len(kinds)]
        if kind == "edge_loss":
            if n_lost >= len(edges):
                continue
            s, t = edges[n_lost]
            n_lost += 1
            out.append((kind, Perturbation([Edit(EDGE, s, target=t, value=0.0)])))
        else:
            factors = np.exp(gen.normal(0.0, WEIGHT_NOISE_SD, len(edges)))
            p = Perturbation(
                [Edit(EDGE, s, target=t, value=float(f)) for (s, t), f in zip(edges, factors)]
            )
            out.append((kind, p))
    return out


def mutational_scan(
    adata: AnnData,
    *,
    n_mutations: int = 1000,
    kinds: Sequence[str] = KINDS,
    genome_key: str = Key.uns.genome,
    landscape_key: str = Key.uns.landscape,
    root: Any = None,
    n_cells: int = 300,
    seed: int = 0,
    progress: bool = True,
) -> MutationalScan:
    """Robustness, evolvability and pleiotropy of the genome under random mutations.

    Each mutant is developed from the root cells exactly as in :func:`perturb` (common random
    numbers with one shared wild type) and its fate fractions compared with the wild type's.
    Mutants cycle through ``kinds``: ``"edge_loss"`` removes one edge of the network (every
    edge at most once, in random order — so at most as many edge-loss mutants as edges), and
    ``"weight_noise"`` multiplies every edge by an independent log-normal factor
    (``exp(N(0, 0.25²))``).

    Parameters
    ----------
    adata
        Annotated data matrix with a developmental genome and its landscape.
    n_mutations
        Number of mutants requested.
    kinds
        Mutation kinds, a subset of ``("edge_loss", "weight_noise")``.
    genome_key, landscape_key, root, seed
        As in :func:`perturb`.
    n_cells
        Cells simulated per mutant (and for the wild type).
    progress
        Show a progress bar.

    Returns
    -------
    :class:`MutationalScan`.

    Raises
    ------
    GclError
        An unknown kind, ``n_mutations < 1``, a steady-state genome, and what
        :func:`perturb` checks.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (200, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> scan = gcl.sim.mutational_scan(adata, n_mutations=2, kinds=["edge_loss"], n_cells=100)
    >>> scan.pleiotropy[["source", "target", "n_fates"]].values.tolist()
    [['B', 'A', 2], ['A', 'B', 2]]
    """
    from tqdm.auto import tqdm

    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise GclError(f"kinds must be a non-empty subset of {KINDS}, got {list(kinds)}.")
    if not isinstance(n_mutations, (int, np.integer)) or n_mutations < 1:
        raise GclError(f"n_mutations must be a positive integer, got {n_mutations!r}.")
    n_cells = check_n_cells(n_cells)
    setup = _developmental_setup(adata, genome_key, landscape_key, root, "mutational_scan", n_cells)
    genome = setup.genome_obj()
    mutants = _mutants(genome, int(n_mutations), kinds, seed)
    wt = simulate(setup, None, n_cells=n_cells, seed=seed)
    # only the labels are kept: a thousand mutants' end states would not fit in memory
    labels = [
        simulate(setup, p, n_cells=n_cells, seed=seed).labels
        for _, p in tqdm(mutants, desc="mutational scan", unit="mutant", disable=not progress)
    ]
    fates = fate_order(setup.ref_labels, wt.labels, *labels)
    f_wt = _fractions(wt.labels, fates)
    present = (f_wt >= MIN_FRACTION) & (np.array(fates) != NOVEL)
    rows = []
    W = genome.W
    pleio: dict[tuple[str, str], list[int]] = {}
    # end states far from every wild-type attractor already in the wild type do not count
    novel_wt = float(f_wt[fates.index(NOVEL)]) if NOVEL in fates else 0.0
    for (kind, p), lab in zip(mutants, labels):
        f = _fractions(lab, fates)
        delta = f - f_wt
        novel = float(f[fates.index(NOVEL)]) if NOVEL in fates else 0.0
        robust = bool(np.all(np.abs(delta[present]) <= MOVE) and np.all(f[present] > 0))
        rows.append(
            {
                "mutant": p.name if kind == "edge_loss" else f"weight_noise {len(rows)}",
                "kind": kind,
                "robust": robust,
                "novel": novel - novel_wt >= MIN_FRACTION,
                "novel_fraction": novel,
                "max_abs_delta": float(np.abs(delta).max()),
                **{fate: float(d) for fate, d in zip(fates, delta)},
            }
        )
        if kind == "edge_loss":
            e = p.edits[0]
            pleio.setdefault((e.gene, e.target), []).append(int((np.abs(delta) > MOVE).sum()))
    table = pd.DataFrame(rows)
    pleiotropy = pd.DataFrame(
        [
            {
                "source": s,
                "target": t,
                "weight": float(W.loc[t, s]),
                "n_fates": int(max(v)),
                "n_mutants": len(v),
            }
            for (s, t), v in pleio.items()
        ],
        columns=["source", "target", "weight", "n_fates", "n_mutants"],
    )
    params = {
        "n_mutations": int(n_mutations),
        "n_mutants": len(mutants),
        "kinds": list(kinds),
        "n_cells": n_cells,
        "seed": seed,
        "move": MOVE,
        "weight_noise_sd": WEIGHT_NOISE_SD,
        "start_cells": setup.root_info,
    }
    scan = MutationalScan(
        table=table,
        pleiotropy=pleiotropy,
        fates=fates,
        wt=pd.Series(f_wt, index=pd.Index(fates, name="fate"), name="wt"),
        params=params,
    )
    logger.info("mutational_scan: %r", scan)
    return scan


def epistasis(
    adata: AnnData,
    genes: Sequence[str],
    *,
    genome_key: str = Key.uns.genome,
    landscape_key: str = Key.uns.landscape,
    root: Any = None,
    n_cells: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Epistasis between knockouts: each pair's double knockout against the additive
    expectation of its two single knockouts.

    For genes *a*, *b* and each fate, ``delta_a``, ``delta_b`` and ``delta_ab`` are the fate
    fraction changes of the single and double knockouts (common random numbers, one shared
    wild type, as in :func:`perturb`); ``expected = delta_a + delta_b`` and
    ``epistasis = delta_ab - expected`` (0: additive; negative: the double knockout moves the
    fate less than the two singles together, e.g. redundancy or masking; positive: more,
    e.g. synergy).

    Parameters
    ----------
    adata
        Annotated data matrix with a developmental genome and its landscape.
    genes
        At least two of the genome's genes; every pair is tested.
    genome_key, landscape_key, root, n_cells, seed
        As in :func:`perturb`.

    Returns
    -------
    DataFrame with ``gene_a``, ``gene_b``, ``fate``, ``delta_a``, ``delta_b``, ``delta_ab``,
    ``expected``, ``epistasis``: one row per pair and fate.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (200, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> pairs = gcl.sim.epistasis(adata, ["A", "B"], n_cells=200)
    >>> pairs[["gene_a", "gene_b", "fate"]].values.tolist()[:2]
    [['A', 'B', 'A-high'], ['A', 'B', 'B-high']]
    """
    from itertools import combinations

    genes = [genes] if isinstance(genes, str) else [str(g) for g in genes]
    genes = list(dict.fromkeys(genes))
    if len(genes) < 2:
        raise GclError(f"epistasis needs at least two distinct genes, got {genes}.")
    n_cells = check_n_cells(n_cells)
    setup = _developmental_setup(adata, genome_key, landscape_key, root, "epistasis", n_cells)
    Knockout(genes).check(setup.genome_obj().genes)
    wt = simulate(setup, None, n_cells=n_cells, seed=seed)
    singles = {g: simulate(setup, Knockout(g), n_cells=n_cells, seed=seed) for g in genes}
    pairs = list(combinations(genes, 2))
    doubles = {
        (a, b): simulate(setup, Knockout([a, b]), n_cells=n_cells, seed=seed) for a, b in pairs
    }
    sims = [wt, *singles.values(), *doubles.values()]
    fates = fate_order(setup.ref_labels, *(s.labels for s in sims))
    f_wt = _fractions(wt.labels, fates)
    rows = []
    for a, b in pairs:
        da = _fractions(singles[a].labels, fates) - f_wt
        db = _fractions(singles[b].labels, fates) - f_wt
        dab = _fractions(doubles[(a, b)].labels, fates) - f_wt
        for k, fate in enumerate(fates):
            rows.append(
                {
                    "gene_a": a,
                    "gene_b": b,
                    "fate": fate,
                    "delta_a": da[k],
                    "delta_b": db[k],
                    "delta_ab": dab[k],
                    "expected": da[k] + db[k],
                    "epistasis": dab[k] - (da[k] + db[k]),
                }
            )
    return pd.DataFrame(rows)
