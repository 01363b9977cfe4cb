"""Datasets with a known signed network for ``grn_recovery.py``.

Each loader returns a :class:`GRNDataset`: the AnnData (counts or continuous expression), the
obs column ``fit_grn`` should take as ``time_key`` (and a ``root``/``groupby`` pair where cell
types exist), the reference network (``source``, ``target``, ``sign``) and the genes to score.

- ``LI``, ``CY``, ``LL``, ``BF``, ``BFC``, ``TF``: the BEELINE synthetic networks (BoolODE,
  2,000 cells, continuous expression) read with ``gcl.io.read`` from
  ``../shared/data/beeline/dyn-<NAME>_2000_0``. ``PseudoTime.csv`` has one column per lineage
  (``Time`` for the single-lineage ones) with NaN off the lineage; every cell lies on exactly
  one lineage, so the row-wise ``nanmin`` over the columns is that cell's own pseudotime. It is
  written to ``obs["bench_pseudotime"]`` and the lineage index to ``obs["bench_lineage"]`` (the
  SCODE-like baseline fits each lineage's derivatives separately). All genes are scored.
- ``myeloid``: ``gcl.datasets.myeloid()`` (3,000 cells, counts); the 11 regulators are scored
  against ``.uns["gcl_truth"]["network"]``; time ``obs["sim_time"]``, root ``"progenitor"``,
  ``groupby="celltype"``.
- ``random20``, ``random50``, ``random100``: ``gcl.datasets.simulate`` on a random sparse signed
  network (:func:`random_signed_network`) with 2,000 cells, 50 downstream targets and no
  knockouts; the regulators are scored.
- ``speed``: a 200-regulator random network simulated for 5,000 cells without targets (the
  speed line of issue 4 §3).

mCAD is not here on purpose: 13 of its 20 possible edges are true, so every ranking scores
near the maximum and the AUPRC ratio cannot separate methods (issue 4).

Expression for the baselines (:meth:`GRNDataset.expression`): for counts, ``normalize_total``
(median library size) + ``log1p`` over all genes, then the scored genes; BEELINE's continuous
values are used as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GCL_SHARED_DATA", REPO.parent / "shared" / "data"))
BEELINE = ("LI", "CY", "LL", "BF", "BFC", "TF")
RANDOM = {"random20": 20, "random50": 50, "random100": 100}
ALL = (*BEELINE, "myeloid", *RANDOM)
TIME_KEY = "bench_pseudotime"
LINEAGE_KEY = "bench_lineage"


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be loaded here (e.g. ``../shared/data`` is absent); the message says why."""


@dataclass
class GRNDataset:
    """One benchmark dataset with its truth."""

    name: str
    group: str
    adata: object
    network: pd.DataFrame
    genes: list[str]
    time_key: str
    counts: bool
    lineage_key: str | None = None
    root: str | None = None
    groupby: str | None = None
    notes: list[str] = field(default_factory=list)

    def expression(self) -> np.ndarray:
        """``(n_cells, n_genes)`` float64 matrix of the scored genes for the baselines."""
        import scanpy as sc

        ad = self.adata
        if self.counts:
            tmp = sc.AnnData(ad.X.copy())
            sc.pp.normalize_total(tmp)
            sc.pp.log1p(tmp)
            idx = ad.var_names.get_indexer(self.genes)
            x = tmp.X[:, idx]
        else:
            x = ad[:, self.genes].X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        return np.asarray(x, dtype=np.float64)

    def pseudotime(self) -> np.ndarray:
        return self.adata.obs[self.time_key].to_numpy(dtype=np.float64)

    def lineage(self) -> np.ndarray | None:
        if self.lineage_key is None:
            return None
        return self.adata.obs[self.lineage_key].to_numpy()


def load_beeline(name: str, root: Path | None = None) -> GRNDataset:
    """A BEELINE synthetic network (see the module docstring)."""
    import gclandscape as gcl

    folder = (root or SHARED_DATA / "beeline") / f"dyn-{name}_2000_0"
    if not folder.is_dir():
        raise DatasetUnavailable(f"{folder} not found (../shared/data is absent)")
    adata = gcl.io.read(folder)
    cols = [c for c in adata.obs.columns if pd.api.types.is_numeric_dtype(adata.obs[c])]
    pt = adata.obs[cols].to_numpy(dtype=np.float64)
    on = ~np.isnan(pt)
    if not on.any(axis=1).all():
        raise DatasetUnavailable(f"{folder}: some cells have no pseudotime")
    adata.obs[TIME_KEY] = np.nanmin(pt, axis=1)
    adata.obs[LINEAGE_KEY] = np.argmax(on, axis=1)
    notes = []
    if (on.sum(1) > 1).any():
        notes.append(f"{int((on.sum(1) > 1).sum())} cells on several lineages (nanmin used)")
    return GRNDataset(
        name=name,
        group="BEELINE synthetic",
        adata=adata,
        network=adata.uns["gcl_reference_network"].copy(),
        genes=[str(g) for g in adata.var_names],
        time_key=TIME_KEY,
        counts=False,
        lineage_key=LINEAGE_KEY if len(cols) > 1 else None,
        notes=notes,
    )


def load_myeloid() -> GRNDataset:
    """The embedded default ``gcl.datasets.myeloid()``; the 11 regulators are scored."""
    import gclandscape as gcl

    adata = gcl.datasets.myeloid()
    truth = adata.uns["gcl_truth"]
    return GRNDataset(
        name="myeloid",
        group="simulated",
        adata=adata,
        network=truth["network"].copy(),
        genes=[str(g) for g in truth["regulators"]],
        time_key="sim_time",
        counts=True,
        root="progenitor",
        groupby="celltype",
    )


def random_signed_network(
    n: int, *, seed: int, mean_inputs: float = 2.0, p_activation: float = 0.6, n_toggles=None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """A random sparse signed network with toggle switches (for multistability).

    ``n_toggles`` (default ``max(2, n // 25)``) disjoint gene pairs repress each other and
    have no other input (rule ``a = not b``: a bistable toggle switch) and start both on, so
    noise decides each pair's state and the network has several fates. ``max(1, n // 20)``
    other genes activate themselves (a self-activating gene, once on, stays on: memory).
    Every non-toggle gene gets ``1 + Poisson(mean_inputs - 1)`` inputs from random other genes
    (activating with probability ``p_activation``). Under ``simulate``'s edge-list rule (OR of
    activators AND NOT OR of repressors) a gene whose activators are all off stays off, and a
    gene with no input is constitutively on. (Self-activation inside the toggle, ``a = a and
    not b``, was tried first: from both-on both genes often decay together to all-off, which
    left the 50- and 100-gene networks with a single fate.)

    Returns
    -------
    ``(edges, initial)``: DataFrame ``source``, ``target``, ``sign`` and the initial state
    (toggle genes at 1, every other gene 0).
    """
    rng = np.random.default_rng(seed)
    genes = [f"g{i:03d}" for i in range(n)]
    n_toggles = max(2, n // 25) if n_toggles is None else n_toggles
    toggles = rng.permutation(n)[: 2 * n_toggles].reshape(-1, 2)
    in_toggle = set(toggles.ravel().tolist())
    edges: dict[tuple[int, int], int] = {}
    for a, b in toggles:
        edges[(a, b)] = edges[(b, a)] = -1
    others = np.setdiff1d(np.arange(n), toggles.ravel())
    for a in rng.choice(others, size=max(1, n // 20), replace=False):
        edges[(int(a), int(a))] = 1
    for t in range(n):
        k = 0 if t in in_toggle else 1 + int(rng.poisson(mean_inputs - 1))
        pool = np.delete(np.arange(n), t)
        for s in rng.choice(pool, size=min(k, n - 1), replace=False):
            edges.setdefault((int(s), t), 1 if rng.random() < p_activation else -1)
    frame = pd.DataFrame(
        [(genes[s], genes[t], sg) for (s, t), sg in edges.items()],
        columns=["source", "target", "sign"],
    )
    initial = {genes[i]: 1.0 for i in sorted(in_toggle)}
    return frame, initial


def load_random(
    n: int, *, seed: int | None = None, n_cells: int = 2000, n_targets: int = 50
) -> GRNDataset:
    """``simulate`` on :func:`random_signed_network` of ``n`` regulators."""
    import gclandscape as gcl

    seed = n if seed is None else seed
    net, initial = random_signed_network(n, seed=seed)
    adata = gcl.datasets.simulate(
        net, n_cells=n_cells, n_targets=n_targets, knockouts=False, seed=seed, initial=initial
    )
    truth = adata.uns["gcl_truth"]
    frac = dict(truth["wt_fate_fractions"])
    unsettled = frac.pop("unsettled", 0.0)
    fates = {k: v for k, v in frac.items() if v >= 0.01}
    notes = [
        f"{len(net)} edges (incl. self loops), {len(fates)} fates reached by >= 1% of "
        f"trajectories (largest {max(fates.values(), default=0.0):.0%}; {len(frac)} in all), "
        f"{unsettled:.0%} unsettled at t_max"
    ]
    return GRNDataset(
        name=f"random{n}",
        group="simulated",
        adata=adata,
        network=truth["network"].copy(),
        genes=[str(g) for g in truth["regulators"]],
        time_key="sim_time",
        counts=True,
        root="progenitor",
        groupby="celltype",
        notes=notes,
    )


def load(name: str) -> GRNDataset:
    """Load a dataset by its benchmark name (one of :data:`ALL` or ``"speed"``)."""
    if name in BEELINE:
        return load_beeline(name)
    if name == "myeloid":
        return load_myeloid()
    if name in RANDOM:
        return load_random(RANDOM[name])
    if name == "speed":
        ds = load_random(200, seed=200, n_cells=5000, n_targets=0)
        ds.name = "speed"
        return ds
    raise KeyError(f"unknown dataset {name!r}; choose from {[*ALL, 'speed']}")
