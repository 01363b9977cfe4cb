"""The simulation core of ``gcl.sim``: start cells, development of the wild type and the
mutant, and the naming of end states.

Every member of the genome ensemble develops the same start cells with the same noise
stream (common random numbers), so a difference between the wild type and the mutant, or
between two members, is the genome's and not sampling noise. End states are relaxed
deterministically under their own genome and named by the nearest *reference*: a wild-type
attractor of the landscape (label = its cell type) or an observed cell-type centroid,
compared on the genes the perturbation does not touch; an end state far from every
reference is ``"novel"``.

The pieces a screen needs live in a small picklable :class:`Setup`, so
:func:`gclandscape.sim.screen` ships it to Dask workers instead of the AnnData. The names
here are the package's internal interface (used by ``_perturb``, ``_screen`` and
``_analyses``), not public API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._defaults import DT, EARLY_FRACTION
from .._errors import GclError
from .._keys import Key
from .._utils import rng
from ..landscape._perturbations import KNOCKDOWN, KNOCKOUT, OVEREXPRESSION, Perturbation

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..landscape import Genome

#: Simulated time of development from the root cells, then of noise-free relaxation (both
#: in Euler steps of the package's default ``DT``, halved for a stiff genome: :func:`step`).
T_DEVELOP = 40.0
T_RELAX = 20.0
#: Start cells whose Jacobians measure a genome's stiffness (:func:`step`).
N_STIFFNESS = 32
#: A steady-state genome's step (:func:`step`): up to 8 × DT where Euler does not overshoot.
#: Its end states, not the path, are the result, and Euler's fixed points are the ODE's at
#: any step; on a 200-gene genome 0.4 gave the log2FC of 0.05 to r > 0.9999 (RMS 0.010–0.014,
#: the spread between two seeds at 0.05) in an eighth of the time (benchmarks/README.md,
#: "Scale").
STEADY_DT_MAX = 8 * DT
STEADY_SAFETY = 1.0
#: Start cells whose Jacobians measure a steady-state genome's stiffness: they fluctuate
#: around one state and their Jacobians differ little (largest decaying modulus 1.71-1.81
#: over 34 cells of that genome), while 32 eigenvalue problems of 200 genes cost half a
#: second per simulation.
N_STIFFNESS_STEADY = 8
#: With ``root=None`` the candidates are all cells: the earliest EARLY_FRACTION_ALL of them.
EARLY_FRACTION_ALL = 0.5
MIN_EARLY = 10
#: Snapshots saved per condition by :func:`perturb` (for the trajectories).
N_SAVE = 41
NOVEL = "novel"
UNOBSERVED = "unobserved"  # fit_landscape's label of an attractor no observed cell reaches
STEADY_STATE = "steady_state"
FATES = "fates"


# ------------------------------------------------------------------------------- setup
@dataclass
class Setup:
    """Everything needed to simulate and classify, without the AnnData (picklable).

    ``members`` are the genome ensemble's members as plain dicts (one for a single genome);
    the first is the reference for the genes, their scale and the observed states.
    """

    members: list[dict[str, Any]]
    starts: np.ndarray
    ref_states: np.ndarray
    ref_labels: list[str]
    novel_tol: float
    mode: str  # FATES or STEADY_STATE
    scale: np.ndarray  # per-gene distance scale (model coordinates)
    root_info: str = ""
    genome_key: str = Key.uns.genome
    _genomes: list[Any] | None = field(default=None, repr=False)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def genomes(self) -> list[Genome]:
        """The members as :class:`~gclandscape.landscape.Genome` objects (built once)."""
        from ..landscape import Genome

        if self._genomes is None:
            self._genomes = [Genome.from_dict(d) for d in self.members]
        return self._genomes

    def genome_obj(self) -> Genome:
        """The reference member."""
        return self.genomes()[0]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_genomes"] = None
        return state


@dataclass
class Sim:
    """One member's simulation of one condition: end states and their fate labels."""

    end: np.ndarray
    labels: np.ndarray
    snapshots: np.ndarray | None = None
    times: np.ndarray | None = None
    dt: float = DT  # the Euler step it was developed with (:func:`step`)


@dataclass
class Simulation:
    """One condition simulated by every member of the ensemble (the same start cells and
    noise for each). ``end`` and ``labels`` pool the members (equal cell counts, so pooled
    fractions are ensemble means); snapshots come from the first member."""

    members: list[Sim]

    @property
    def end(self) -> np.ndarray:
        return np.vstack([m.end for m in self.members])

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate([m.labels for m in self.members])

    @property
    def snapshots(self) -> np.ndarray | None:
        return self.members[0].snapshots

    @property
    def times(self) -> np.ndarray | None:
        return self.members[0].times

    @property
    def dt(self) -> float:
        """The smallest Euler step of the members (a stiff member develops in smaller ones)."""
        return min(m.dt for m in self.members)


def strip_suffix(labels: list[str]) -> list[str]:
    """``"Ery_2"`` → ``"Ery"`` when ``"Ery"`` is a label too: one fate per cell type."""
    known = set(labels)
    out = []
    for lab in labels:
        m = re.fullmatch(r"(.+)_(\d+)", lab)
        out.append(m.group(1) if m and m.group(1) in known else lab)
    return out


def time_column(adata: AnnData, genome_key: str) -> str | None:
    """The obs column that orders the cells in time: the genome's ``time_key``, else
    pseudotime, else the simulation clock."""
    params = adata.uns.get(genome_key, {}).get("params", {})
    for key in (params.get("time_key"), Key.obs.pseudotime, Key.obs.sim_time):
        if key is not None and str(key) in adata.obs:
            return str(key)
    return None


def root_cells(
    adata: AnnData, root: Any, groupby: str | None, time_col: str | None
) -> tuple[np.ndarray, str]:
    """Positions of the start cells and a description of the rule used."""
    n = adata.n_obs
    if root is None:
        candidates = np.arange(n)
        what = "all cells"
    elif isinstance(root, str):
        if not groupby or groupby not in adata.obs:
            raise GclError(
                f"root={root!r} names a group, but the landscape was fitted without groupby; "
                "refit with gcl.landscape.fit_landscape(adata, groupby='<cell type column>') "
                "or pass root as cell positions."
            )
        values = adata.obs[groupby].astype(str).to_numpy()
        if root not in set(values):
            raise GclError(
                f"root={root!r} is not a group of obs[{groupby!r}]. Available: "
                f"{', '.join(sorted(set(values)))}."
            )
        candidates = np.flatnonzero(values == root)
        what = f"{groupby} == {root!r}"
    else:
        candidates = np.atleast_1d(np.asarray(root))
        if candidates.dtype.kind not in "iu" or candidates.size == 0 or candidates.ndim != 1:
            raise GclError(
                "root must be None, a group name or a non-empty list of integer cell positions; "
                f"got {root!r}."
            )
        # negative positions are refused rather than counted from the end: root=-1 would
        # otherwise start every cell from whichever cell happens to be stored last
        if candidates.min() < 0 or candidates.max() >= n:
            raise GclError(
                f"root must be non-negative cell positions in [0, {n}) (adata has {n} cells; "
                f"negative positions are not counted from the end); got {root!r}. Pass a group "
                "of the landscape's groupby column, e.g. root='progenitor', or valid positions."
            )
        return candidates.astype(np.int64), f"{candidates.size} given cells"
    if time_col is None:
        return candidates, f"{what} (no time column: every cell of it)"
    t = adata.obs[time_col].to_numpy(dtype=np.float64)[candidates]
    fraction = EARLY_FRACTION_ALL if root is None else EARLY_FRACTION
    k = max(MIN_EARLY, round(fraction * len(candidates)))
    order = np.argsort(t, kind="stable")[: min(k, len(candidates))]
    return candidates[order], f"the {len(order)} earliest cells by {time_col} of {what}"


def _ensemble(genome: Genome, members: Sequence[Genome] | None) -> list[Genome]:
    """The single genomes to simulate: those given (an ensemble among them counts with each
    of its members), else the stored genome's members (``fit_grn(..., n_genomes=K)``; one
    for a single genome)."""
    given = [genome] if members is None else list(members)
    out = [m for g in given for m in g]  # iterating a Genome yields its members
    if not out:
        raise GclError("the genome ensemble is empty: pass at least one Genome.")
    for k, m in enumerate(out):
        if list(m.genes) != list(genome.genes):
            raise GclError(
                f"member {k} of the genome ensemble has genes {list(m.genes)[:10]}, the "
                f"stored genome {list(genome.genes)[:10]}: every member must have the same "
                "genes in the same order."
            )
    return out


def build_setup(
    adata: AnnData,
    *,
    genome_key: str,
    landscape_key: str,
    root: Any,
    members: Sequence[Genome] | None = None,
) -> Setup:
    """Validate the inputs and gather start states and fate references.

    ``members`` (internal): simulate these genomes as the ensemble instead of the stored
    genome's members; the stored genome still gives the observed states and the genes.
    """
    from ..landscape import Genome, Landscape
    from ..landscape._cell_states import model_states

    if genome_key not in adata.uns:
        raise GclError(
            f"No genome in adata.uns[{genome_key!r}]. Fit one with gcl.landscape.fit_grn(adata) "
            "(or store a hand-built Genome with genome.write_to_adata(adata)) first."
        )
    if adata.n_obs < 10:
        raise GclError(f"perturb needs at least 10 observed cells; adata has {adata.n_obs}.")
    genome = Genome.from_adata(adata, genome_key)
    ensemble = _ensemble(genome, members)
    dicts = [m.to_dict() for m in ensemble]
    states, _ = model_states(adata, genome, genome_key)
    steady = genome.info.get("mode") == STEADY_STATE
    scale = np.where(genome.x_max > 0, genome.x_max, 1.0)
    if steady:
        starts = states if root is None else states[root_cells(adata, root, None, None)[0]]
        return Setup(
            members=dicts,
            starts=starts,
            ref_states=np.zeros((0, genome.n_genes)),
            ref_labels=[],
            novel_tol=np.inf,
            mode=STEADY_STATE,
            scale=scale,
            root_info="observed cells (steady-state genome)",
            genome_key=genome_key,
            _genomes=ensemble,
        )
    if landscape_key not in adata.uns:
        raise GclError(
            f"No landscape in adata.uns[{landscape_key!r}]: perturb names fates by the "
            "wild-type attractors. Compute it first with gcl.landscape.fit_landscape(adata, "
            "groupby='<cell type column>')."
        )
    land = Landscape.from_adata(adata, landscape_key)
    if list(land.genes) != list(genome.genes):
        raise GclError(
            f"The landscape in adata.uns[{landscape_key!r}] was fitted on another genome "
            f"({len(land.genes)} genes) than adata.uns[{genome_key!r}] ({genome.n_genes}); "
            "re-run gcl.landscape.fit_landscape(adata) after fit_grn."
        )
    groupby = land.params.get("groupby") or None
    idx, root_info = root_cells(adata, root, groupby, time_column(adata, genome_key))
    att = land.attractors
    ref_states = [att[genome.genes].to_numpy(dtype=np.float64)]
    ref_labels = [str(x) for x in att["label"]]
    if groupby is not None:  # observed cell-type centroids name what the attractors miss
        groups = adata.obs[groupby].astype(str).to_numpy()
        for g in pd.unique(groups):
            ref_states.append(states[groups == g].mean(0, keepdims=True))
            ref_labels.append(str(g))
    z = att[genome.genes].to_numpy(dtype=np.float64) / scale
    d = np.sqrt(((z[:, None] - z[None]) ** 2).mean(-1))
    distinct = d[np.triu_indices(len(z), 1)]
    tol = 0.5 * float(distinct.min()) if distinct.size and distinct.min() > 0 else 0.2
    return Setup(
        members=dicts,
        starts=states[idx],
        ref_states=np.vstack(ref_states),
        ref_labels=strip_suffix(ref_labels),
        novel_tol=float(np.clip(tol, 0.05, 0.3)),
        mode=FATES,
        scale=scale,
        root_info=root_info,
        genome_key=genome_key,
        _genomes=ensemble,
    )


# ------------------------------------------------------------------------------- checks
def check_perturbation(
    perturbation: Any, genome_genes: list[str], *, measured: Sequence[str] | None = None
) -> Perturbation:
    """``perturbation`` if it is one and names only genes of the genome, else a GclError.

    ``measured`` (the data's genes): a gene measured but not modelled by the genome gets a
    message saying how to model it, rather than the spelling hint for an unknown name."""
    if not isinstance(perturbation, Perturbation):
        raise GclError(
            "perturbation must be a gcl.sim perturbation (Knockout, Knockdown, Overexpression, "
            f"EdgeMutation or a sum of them), got {type(perturbation).__name__}."
        )
    if measured is not None:
        known, data = set(map(str, genome_genes)), set(map(str, measured))
        outside = [g for g in perturbation.genes if g not in known and g in data]
        if outside:
            gene = outside[0]
            raise GclError(
                f"{perturbation.name}: {gene!r} is a gene of adata but not a regulator in the "
                f"genome ({len(known)} genes), so the genome cannot perturb it; its expression "
                "is only read out from the regulators. To model it, refit with "
                f"gcl.landscape.fit_grn(adata, genes=[...the genome's genes..., {gene!r}]), or "
                "flag the regulators with gcl.pp.annotate_regulators(adata, organism=...) "
                "before fit_grn (the expressed ones become the genome's genes)."
            )
    perturbation.check(genome_genes)
    return perturbation


def check_n_cells(n_cells: int) -> int:
    """``n_cells`` as an int of at least 10, else a GclError."""
    if not isinstance(n_cells, (int, np.integer)) or isinstance(n_cells, bool) or n_cells < 10:
        raise GclError(f"n_cells must be an integer of at least 10, got {n_cells!r}.")
    return int(n_cells)


#: Bytes per simulated cell and gene and condition: the float32 state and noise of the
#: integrator, the field's intermediates and the float64 end and relaxed states.
BYTES_PER_VALUE = 64
#: Bytes per cell, gene and saved snapshot (float32 in torch, float64 copy in numpy).
BYTES_PER_SNAPSHOT = 12
#: Bytes per cell, gene and fate reference of the distance computation (difference, square).
BYTES_PER_DISTANCE = 16


def memory_needed(
    n_cells: int, *, n_genes: int, n_refs: int, n_members: int, n_save: int | None
) -> int:
    """Bytes a simulation of ``n_cells`` wild-type and mutant cells holds at its peak (an
    estimate on the high side), for ``n_members`` genomes of ``n_genes`` genes.

    Examples
    --------
    >>> memory_needed(1000, n_genes=10, n_refs=4, n_members=1, n_save=None)
    1920000
    """
    per_value = 2 * (BYTES_PER_VALUE + (n_save or 0) * BYTES_PER_SNAPSHOT)  # wt and mutant
    per_value += max(n_refs, 1) * BYTES_PER_DISTANCE
    return int(n_members) * int(n_cells) * max(int(n_genes), 1) * per_value


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or ``None`` when it cannot be told.

    psutil when installed, else ``MemAvailable`` of ``/proc/meminfo`` (Linux) or the free
    physical pages of ``os.sysconf``; a cgroup (container) limit lowers it.
    """
    avail: int | None = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            pass
        if avail is None:
            try:
                avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (ValueError, OSError, AttributeError):
                avail = None
    try:  # a container's limit is lower than the machine's memory
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        used = int((cgroup / "memory.current").read_text().strip())
        if limit != "max":
            room = max(int(limit) - used, 0)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def check_memory(setup: Setup, n_cells: int, *, n_save: int | None) -> None:
    """Refuse a simulation that cannot fit, before allocating any of it."""
    n_genes = len(setup.scale)
    kw = {
        "n_genes": n_genes,
        "n_refs": len(setup.ref_labels),
        "n_members": setup.n_members,
        "n_save": n_save,
    }
    need = memory_needed(n_cells, **kw)
    avail = available_memory()
    if avail is None or need <= avail:
        return
    fits = avail // max(memory_needed(1, **kw), 1)
    raise GclError(
        f"n_cells={n_cells} needs about {need / 2**30:.1f} GB of memory to simulate "
        f"{n_genes} genes ({setup.n_members} genome(s)), but only {avail / 2**30:.1f} GB "
        f"available; pass n_cells of at most about {fits:,} (a few thousand cells give fate "
        "fractions to about 1 %)."
    )


# ------------------------------------------------------------------------------- simulation
def touched(genome: Genome, perturbation: Perturbation | None) -> np.ndarray:
    """Mask of genes a perturbation sets directly (excluded when naming end states)."""
    mask = np.zeros(genome.n_genes, dtype=bool)
    if perturbation is not None:
        for e in perturbation.edits:
            if e.kind in (KNOCKOUT, KNOCKDOWN, OVEREXPRESSION):
                mask[genome.genes.index(e.gene)] = True
    return mask


def step(genome: Genome, x0: np.ndarray, *, steady: bool = False) -> float:
    """The Euler step of ``genome``'s simulations: ``DT``, halved while the Jacobian at the
    start cells has a decaying eigenvalue of modulus above ``1.8 / dt`` (a fitted genome with
    a fast gene, whose fixed-step development would diverge;
    :func:`~gclandscape.engine._root_finding.stable_dt`). A ``steady`` genome's cells only
    settle, so their step starts at ``STEADY_DT_MAX`` and is halved while ``dt * rho > 1``.
    Deterministic, so the screen and :func:`perturb` simulate a perturbation alike."""
    from ..engine._root_finding import stable_dt

    if steady:
        return stable_dt(
            genome.field(), x0, STEADY_DT_MAX, n_states=N_STIFFNESS_STEADY, safety=STEADY_SAFETY
        )
    return stable_dt(genome.field(), x0, DT, n_states=N_STIFFNESS)


def _classify(
    setup: Setup, genome: Genome, end: np.ndarray, perturbation, seed, dt: float = DT
) -> np.ndarray:
    """Relax end states without noise and name each by its nearest reference."""
    relaxed = genome.develop(end, t_max=T_RELAX, dt=dt, noise=0.0, seed=seed)
    keep = ~touched(genome, perturbation)
    if not keep.any():  # every gene is set: compare on all of them
        keep[:] = True
    z = relaxed[:, keep] / setup.scale[keep]
    r = setup.ref_states[:, keep] / setup.scale[keep]
    d = np.sqrt(((z[:, None, :] - r[None]) ** 2).mean(-1))
    # within the tolerance, an observed fate wins over an attractor no cell reaches (they
    # can coincide on the genes left once the perturbed ones are excluded)
    unobserved = np.array([lab.startswith(UNOBSERVED) for lab in setup.ref_labels])
    near = np.where(unobserved[None, :] & (d <= setup.novel_tol), d + 10.0, d).argmin(1)
    labels = np.asarray(setup.ref_labels, dtype=object)[near]
    labels[d[np.arange(len(z)), near] > setup.novel_tol] = NOVEL
    return labels


def simulate(
    setup: Setup,
    perturbation: Perturbation | None,
    *,
    n_cells: int,
    seed: int,
    n_save: int | None = None,
) -> Simulation:
    """Develop ``n_cells`` start cells under every (mutated) member and name the end states.

    The start cells and the noise depend on ``seed`` only, so every member and both
    conditions see the same ones. ``n_save`` snapshots are kept for the first member."""
    gen = rng(seed)
    x0 = setup.starts[gen.integers(0, len(setup.starts), n_cells)]
    out = []
    for k, genome in enumerate(setup.genomes()):
        if perturbation is not None:
            genome = genome.mutate(perturbation)
        dt = step(genome, x0, steady=setup.mode == STEADY_STATE)
        times = snaps = None
        if n_save and k == 0:  # the trajectories show the first member's cells only
            end, times, snaps = genome.develop(x0, t_max=T_DEVELOP, dt=dt, seed=seed, n_save=n_save)
        else:
            end = genome.develop(x0, t_max=T_DEVELOP, dt=dt, seed=seed)
        if setup.mode == STEADY_STATE:
            labels = np.array([], dtype=object)
        else:
            labels = _classify(setup, genome, end, perturbation, seed, dt)
        out.append(Sim(end=end, labels=labels, snapshots=snaps, times=times, dt=dt))
    return Simulation(out)
