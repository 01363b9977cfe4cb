"""Networks, split and realism levels of the generalisation suite (``suite.py``, issue 17 §2).

Families (each network has a fixed name, family, split and seed; :func:`suite_networks`):

- ``random``: ``gcl.datasets.random_network(n, seed=...)`` with 6–25 regulators
  (:data:`RANDOM_SIZES`; seeds 100, 101, ...).
- ``beeline``: the BEELINE synthetic rule files in ``<shared data>/boolean_models`` that reach
  >= 2 fates: BF and TF (:data:`BEELINE_FILES`). Measured under ``simulate``'s defaults
  (1,200 cells, seed 0): LI, LL and BFC reach one fate and CY none that settles, so they are
  not listed (:data:`BEELINE_ONE_FATE`, printed by ``--list``).
- ``curated``: mCAD (its rule file, BEELINE's) and the Krumsiek et al. 2011 myeloid network
  with its fates, initial state and tuned thresholds/rates/noise (``gcl.datasets.myeloid``'s
  parameters are part of that network, not of the realism level).
- ``toggle_cascade``: a chain of gated toggle switches (:func:`toggle_cascade_rules`).
- ``ffl``: a toggle switch (optionally a second gated one) with 1–3 feed-forward loops on its
  branch genes: coherent AND, coherent OR or incoherent (:func:`ffl_rules`).
- ``mi_tree``: a tree of mutual-inhibition groups of 2 or 3 genes, each child group gated by a
  leaf gene of its parent, with 3–6 leaves (fates) (:func:`mi_tree_rules`).

Split (:func:`assign_split`): fixed by position within each family — even positions ``test``,
odd positions ``dev`` (curated: mCAD ``test``, myeloid ``dev``, the network gclandscape's
defaults were tuned on). Every family with >= 2 members is in both splits.

Realism levels (:func:`simulate_kwargs`): ``easy`` = ``simulate``'s defaults (plus the
network's own settings); ``hard`` = ``rate_jitter=0.3`` (log-normal sigma of a per-trajectory
factor on every gene's rate), noise × 2, per-gene Hill coefficients drawn from {2, 3, 4} with
the network's seed, ``capture=0.4`` (UMI capture efficiency: more zeros).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _knockout_data import SHARED_DATA

FAMILIES = ("random", "beeline", "curated", "toggle_cascade", "ffl", "mi_tree")
LEVELS = ("easy", "hard")
SPLITS = ("dev", "test")
#: regulators of the random networks, in order (seed = 100 + position).
RANDOM_SIZES = (6, 8, 10, 12, 14, 16, 18, 20, 22, 25, 7, 9, 11, 13,
                15, 17, 19, 21, 23, 24, 6, 10, 14, 18, 22, 25)  # fmt: skip
BEELINE_FILES = {"BF": "dyn-bifurcating", "TF": "dyn-trifurcating"}
BEELINE_ONE_FATE = ("LI", "CY", "LL", "BFC")
N_MOTIF = 5  # networks per motif family
DEFAULT_NOISE = 0.1  # simulate's default
HARD = {"rate_jitter": 0.3, "noise_factor": 2.0, "hill_choices": (2, 3, 4), "capture": 0.4}


@dataclass(frozen=True)
class SuiteNetwork:
    """One network of the suite: its identity and how to build it."""

    name: str
    family: str
    split: str
    seed: int
    n_regulators: int
    source: str  # what to build: "random:<n>", "beeline:<file>", "mcad", "myeloid", "motif"
    rules: str = ""  # rule text of a motif network


# ------------------------------------------------------------------------------- motifs
def toggle_cascade_rules(seed: int) -> str:
    """Rule text of a cascade of ``d`` toggle switches (``d`` in 2..4, ``d + 1`` fates).

    Toggle 1 is ``X1 = not Y1``, ``Y1 = not X1``; toggle ``k`` is gated by the winner of one
    side of toggle ``k - 1`` (``Xk = G and not Yk``, ``Yk = G and not Xk``, ``G`` = a random
    side). Some toggles get a follower marker ``Mk = Xk`` (a regulator without targets, whose
    knockout changes no fate).
    """
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(2, 5))
    lines = ["X1 = not Y1", "Y1 = not X1"]
    for k in range(2, depth + 1):
        gate = f"X{k - 1}" if rng.random() < 0.5 else f"Y{k - 1}"
        lines += [f"X{k} = {gate} and not Y{k}", f"Y{k} = {gate} and not X{k}"]
    for k in range(1, depth + 1):
        if rng.random() < 0.4:
            lines.append(f"M{k} = X{k}")
    return "\n".join(lines)


def ffl_rules(seed: int) -> str:
    """Rule text of a toggle switch (with probability 1/2 a second toggle gated by ``X``) and
    1–3 feed-forward loops, each on a random branch gene ``B``: ``Zi = B`` and
    ``Wi = B and Zi`` (coherent AND: knocking ``Zi`` out changes the fate's pattern),
    ``Wi = B or Zi`` (coherent OR: redundant) or ``Wi = B and not Zi`` (incoherent: ``Wi`` is a
    pulse, and on for good without ``Zi``)."""
    rng = np.random.default_rng(seed)
    lines = ["X = not Y", "Y = not X"]
    branches = ["X", "Y"]
    if rng.random() < 0.5:
        lines += ["U = X and not V", "V = X and not U"]
        branches = ["Y", "U", "V"]
    for i in range(1, int(rng.integers(1, 4)) + 1):
        b = str(rng.choice(branches))
        kind = int(rng.integers(3))
        w = [f"{b} and Z{i}", f"{b} or Z{i}", f"{b} and not Z{i}"][kind]
        lines += [f"Z{i} = {b}", f"W{i} = {w}"]
    return "\n".join(lines)


def mi_tree_rules(seed: int) -> str:
    """Rule text of a tree of mutual-inhibition groups with 3–6 leaves (fates).

    The root group (2 or 3 genes) has ``Ai = not (other members)``; a child group is gated by
    one leaf gene ``P`` of a group above: ``Ci = P and not (other members)``. Groups are added
    under random leaves until the number of leaves reaches a target drawn from 3..6.
    """
    rng = np.random.default_rng(seed)
    target = int(rng.integers(3, 7))
    size = 3 if target >= 3 and rng.random() < 0.4 else 2
    groups: list[tuple[str | None, list[str]]] = [(None, [f"A{j}" for j in range(size)])]
    leaves = list(groups[0][1])
    names = iter("BCDEFGH")
    while len(leaves) < target:
        parent = str(rng.choice(leaves))
        s = 3 if target - len(leaves) >= 2 and rng.random() < 0.4 else 2
        letter = next(names)
        members = [f"{letter}{j}" for j in range(s)]
        groups.append((parent, members))
        leaves.remove(parent)
        leaves += members
    lines = []
    for parent, members in groups:
        for m in members:
            others = " or ".join(o for o in members if o != m)
            rule = f"not ({others})" if parent is None else f"{parent} and not ({others})"
            lines.append(f"{m} = {rule}")
    return "\n".join(lines)


MOTIFS = {"toggle_cascade": toggle_cascade_rules, "ffl": ffl_rules, "mi_tree": mi_tree_rules}


# ------------------------------------------------------------------------------- the list
def assign_split(family: str, position: int, name: str = "") -> str:
    """The fixed split of the ``position``-th network of a family (see the module docstring)."""
    if family == "curated":
        return "dev" if name == "myeloid" else "test"
    return "test" if position % 2 == 0 else "dev"


def _n_genes(rules: str) -> int:
    return sum(1 for line in rules.splitlines() if "=" in line)


def random_network_available() -> bool:
    import gclandscape as gcl

    return hasattr(gcl.datasets, "random_network") or _random_network_module() is not None


def _random_network_module():
    try:
        from gclandscape.datasets import random_network
    except ImportError:
        return None
    return random_network


def suite_networks(*, shared_data: Path | None = None, verbose: bool = False) -> list[SuiteNetwork]:
    """Every network of the suite in a fixed order (families as :data:`FAMILIES`).

    A family whose source is unavailable here (the BEELINE files without ``shared_data``,
    ``random_network`` before it exists) is left out, with the reason printed when
    ``verbose``.
    """
    shared = SHARED_DATA if shared_data is None else Path(shared_data)
    out: list[SuiteNetwork] = []
    if random_network_available():
        for i, n in enumerate(RANDOM_SIZES):
            name = f"random{n}_s{100 + i}"
            out.append(SuiteNetwork(name, "random", assign_split("random", i), 100 + i, n,
                                    f"random:{n}"))  # fmt: skip
    elif verbose:
        print(
            "family random skipped: gcl.datasets.random_network is not available", file=sys.stderr
        )
    models = shared / "boolean_models"
    if models.is_dir():
        from gclandscape.datasets._rules import read_rules

        for i, (short, stem) in enumerate(BEELINE_FILES.items()):
            path = models / f"{stem}.txt"
            n = len(read_rules(path).genes)
            out.append(SuiteNetwork(short, "beeline", assign_split("beeline", i), i, n,
                                    f"beeline:{path}"))  # fmt: skip
        mcad = models / "mCAD.txt"
        n = len(read_rules(mcad).genes)
        out.append(SuiteNetwork("mCAD", "curated", "test", 0, n, f"beeline:{mcad}"))
        if verbose:
            print(
                f"beeline {', '.join(BEELINE_ONE_FATE)} not used: fewer than 2 fates",
                file=sys.stderr,
            )
    elif verbose:
        print(f"family beeline and mCAD skipped: {models} not found", file=sys.stderr)
    out.append(SuiteNetwork("myeloid", "curated", assign_split("curated", 1, "myeloid"), 0, 11,
                            "myeloid"))  # fmt: skip
    for family, make in MOTIFS.items():
        for i in range(N_MOTIF):
            seed = 200 + 10 * FAMILIES.index(family) + i
            rules = make(seed)
            out.append(SuiteNetwork(f"{family}_s{seed}", family, assign_split(family, i), seed,
                                    _n_genes(rules), "motif", rules))  # fmt: skip
    return out


# ------------------------------------------------------------------------------- simulation
def build_network(net: SuiteNetwork):
    """``(network, simulate keyword arguments of the network itself)``."""
    from gclandscape.datasets._rules import parse_rules, read_rules

    if net.source.startswith("random:"):
        fn = _random_network_module()
        return fn(int(net.source.split(":")[1]), seed=net.seed), {}
    if net.source.startswith("beeline:"):
        return read_rules(net.source.split(":", 1)[1]), {}
    if net.source == "myeloid":
        from gclandscape.datasets._myeloid import (
            MYELOID_FATES,
            MYELOID_INITIAL,
            MYELOID_PARAMS,
            myeloid_network,
        )

        p = MYELOID_PARAMS
        kw = {"initial": MYELOID_INITIAL, "fates": MYELOID_FATES, "threshold": p["threshold"],
              "rate": p["rate"], "hill": p["hill"], "noise": p["noise"], "t_max": p["t_max"],
              "dt": p["dt"]}  # fmt: skip
        return myeloid_network(), kw
    return parse_rules(net.rules, source=net.name, name=net.name), {}


def simulate_kwargs(net: SuiteNetwork, genes: list[str], base: dict, level: str) -> dict:
    """Keyword arguments of ``simulate`` for a realism level (see the module docstring).

    ``rate_jitter`` and ``capture`` are passed only when ``simulate`` takes them (the
    returned dict's ``"_missing"`` lists the ones it does not).
    """
    from gclandscape.datasets import simulate

    kw = dict(base)
    if level == "easy":
        return kw
    if level != "hard":
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
    rng = np.random.default_rng(net.seed)
    kw["noise"] = HARD["noise_factor"] * float(base.get("noise", DEFAULT_NOISE))
    kw["hill"] = {g: float(rng.choice(HARD["hill_choices"])) for g in genes}
    params = inspect.signature(simulate).parameters
    missing = []
    for key in ("rate_jitter", "capture"):
        if key in params:
            kw[key] = HARD[key]
        else:
            missing.append(key)
    kw["_missing"] = missing
    return kw
