"""A synthetic Perturb-seq screen from our own simulator, for ``perturbseq.py``.

Network (:func:`perturbseq_network`): ``G`` regulators ``r000``…; the first ``n_inputs`` have
no inputs (constitutively on), every other regulator has 1–3 inputs drawn from earlier
regulators (sign + with probability 0.6), so the core is acyclic; then a few feedback edges
(from a later to an earlier regulator) are added, and dropped again, last first, while the
noise-free model does not reach one and the same steady state from 8 random starts. A quarter
of the non-input regulators are *silent*: no edge leaves them (a TF whose knockout changes
nothing but itself, as many do in real screens). Rules as ``gcl.datasets.simulate`` builds
them from signed edges (OR of activators AND NOT OR of repressors, Hill coefficient 2,
threshold 0.5, rate 1: :class:`gclandscape.engine.BooleanHillField`).

Downstream targets (``t0000``…): each the mean of 1–3 Hill terms ``h`` or ``1 - h`` (random
sign, threshold U(0.25, 0.75), coefficient 1, 2 or 4) of non-silent regulators, as in
``gcl.datasets.simulate``.

Cells (:func:`simulate_screen`): the true wild-type steady state ``x_wt`` and each
knockout's ``x_ko`` (production removed, developed without noise from ``x_wt``, as
:func:`_knockout_data.true_steady_state_changes` does) are found first; control cells are
then ``n_control`` independent SDE runs (:func:`gclandscape.engine.integrate`, the noise of
``simulate``: ``noise * sqrt(x + 0.01)``, ``noise`` 0.25) of ``T_SAMPLE`` time units from
``x_wt``, and each knockout population ``n_per_ko`` runs from its ``x_ko`` with the gene's
production removed; every run's end state is one cell. Counts: gene scale × (level + 0.02)
× library size, gamma-Poisson with shape 5 (``simulate``'s count model), one scale per gene
shared by every condition. The intrinsic noise 0.25 (``simulate``'s default is 0.1) was
chosen on dev seed 0 of the quick setting by the baselines' numbers alone (not
gclandscape's): at 0.1 the counting noise hides the fluctuations and the co-expression
baseline's Pearson r over all genes is 0.07; at 0.25 it is 0.25, about the level issue 19
measured on a real CRISPR screen (0.29); at 0.4 it is 0.45.

Truth and observation: the *true* log2 fold change of a knockout is
``log2((L_ko + 0.02) / (L_wt + 0.02))`` over all genes at the noise-free steady states (the
ratio of expected counts); its *effect size* is the mean ``|true log2FC|`` over the genes
other than the knocked-out one. The *observed* log2 fold change, which every method is scored
against, is what a screen measures: ``log2((m_ko + 0.1) / (m_ctrl + 0.1))`` of the mean
library-size-normalised counts (each cell scaled to the median library size).

Knockouts (:func:`choose_knockouts`): among the regulators expressed at >= 0.1 in ``x_wt`` (a
screen targets expressed genes), classified by the true effect size: *strong* >= 0.1,
*null* < 0.005 (nothing measurable changes but the gene itself), *weak* in between; ``k`` of
each class, evenly spaced in rank within it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

HILL = 2.0
NOISE = 0.25  # see the module docstring
DT = 0.05
T_RELAX = 60.0  # noise-free relaxation to a steady state (rate 1: e^-60)
T_SAMPLE = 20.0  # each cell's SDE run from the steady state (20 relaxation times)
LEVEL_OFFSET = 0.02  # simulate's count model: mu = scale * (level + 0.02) * library
PSEUDOCOUNT = 0.1  # observed log2FC, on counts normalised to the median library size
EXPRESSED = 0.1
STRONG, NULL = 0.1, 0.005  # true effect size (mean |log2FC| of the other genes) classes
SILENT_FRACTION = 0.25


@dataclass
class Screen:
    """One simulated screen: the counts, what a method may see, and the truth (scoring only)."""

    adata: object  # AnnData of all cells, obs["condition"]: "control" or "<gene> KO"
    regulators: list[str]
    genes: list[str]
    knockouts: list[str]
    classes: dict[str, str]  # knockout -> "strong" / "weak" / "null"
    effect: pd.Series  # true effect size of every knockout (index: knockouts)
    true_log2fc: pd.DataFrame  # knockout × gene, noise-free
    observed_log2fc: pd.DataFrame  # knockout × gene, from the counts
    network: pd.DataFrame
    info: dict = field(default_factory=dict)

    def controls(self):
        """The control cells only (what a control-only method is fitted on), a copy."""
        return self.adata[self.adata.obs["condition"] == "control"].copy()


# --------------------------------------------------------------------------------- network
def _field(genes: list[str], net):
    from gclandscape.engine import BooleanHillField

    ones = np.ones(len(genes))
    return BooleanHillField(
        genes, net.rules, hill=HILL * ones, threshold=0.5 * ones, alpha=ones, gamma=ones
    )


def _relax(field_, x0: np.ndarray, alpha: np.ndarray | None = None, t_max: float = T_RELAX):
    import torch

    from gclandscape.engine import integrate

    args = None if alpha is None else {"alpha": torch.as_tensor(alpha, dtype=torch.float64)}
    x = torch.as_tensor(np.atleast_2d(x0), dtype=torch.float64)
    return integrate(field_, x, t_max=t_max, dt=DT, noise=0.0, args=args).x.numpy()


def boolean_network(edges: pd.DataFrame, genes: list[str]):
    """The rules ``gcl.datasets.simulate`` builds from the edges, over ``genes`` in this order
    (a gene in no edge is constitutively on)."""
    from gclandscape.datasets._rules import BooleanNetwork, Const, network_from_edges

    net = network_from_edges(edges[["source", "target", "sign"]])
    rules = {g: net.rules.get(g, Const(True)) for g in genes}
    return BooleanNetwork(tuple(genes), rules, {}, None, "perturbseq")


def _unique_steady_state(edges: pd.DataFrame, genes: list[str], seed: int) -> bool:
    starts = np.random.default_rng(seed).uniform(0, 1, size=(8, len(genes)))
    ends = _relax(_field(genes, boolean_network(edges, genes)), starts)
    return bool(np.abs(ends - ends[0]).max() < 1e-3)


def perturbseq_network(
    n_regulators: int, *, n_inputs: int = 5, n_feedback: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """The signed regulator network of the module docstring (columns source, target, sign).

    Returns
    -------
    Edge list; ``.attrs["silent"]`` lists the silent regulators, ``.attrs["feedback"]`` the
    feedback edges kept.
    """
    gen = np.random.default_rng(seed)
    genes = [f"r{i:03d}" for i in range(n_regulators)]
    rest = np.arange(n_inputs, n_regulators)
    silent = set(gen.choice(rest, size=int(SILENT_FRACTION * rest.size), replace=False).tolist())
    rows = []
    for t in rest:
        pool = [s for s in range(t) if s not in silent]
        k = int(gen.integers(1, min(3, len(pool)) + 1))
        for s in gen.choice(pool, size=k, replace=False):
            rows.append((genes[int(s)], genes[int(t)], 1 if gen.random() < 0.6 else -1))
    n_feedback = max(2, n_regulators // 20) if n_feedback is None else n_feedback
    feedback = []
    while len(feedback) < n_feedback:
        s, t = sorted(gen.choice([g for g in rest if g not in silent], size=2, replace=False))
        edge = (genes[int(t)], genes[int(s)], 1 if gen.random() < 0.5 else -1)  # later -> earlier
        if edge[:2] not in {r[:2] for r in rows + feedback}:
            feedback.append(edge)
    while True:
        edges = pd.DataFrame(rows + feedback, columns=["source", "target", "sign"])
        if not feedback or _unique_steady_state(edges, genes, seed):
            break
        feedback.pop()
    edges.attrs["silent"] = [genes[i] for i in sorted(silent)]
    edges.attrs["feedback"] = feedback
    edges.attrs["genes"] = genes
    return edges


# --------------------------------------------------------------------------------- targets
def make_targets(
    regulators: list[str], silent: list[str], n_targets: int, gen: np.random.Generator
) -> list[tuple[str, str, int, float, int]]:
    """``(source, target, sign, threshold, hill)`` rows of the downstream targets."""
    pool = [g for g in regulators if g not in set(silent)]
    rows = []
    for j in range(n_targets):
        k = int(gen.integers(1, min(3, len(pool)) + 1))
        for s in gen.choice(pool, size=k, replace=False):
            sign = 1 if gen.random() < 0.5 else -1
            rows.append((str(s), f"t{j:04d}", sign, float(gen.uniform(0.25, 0.75)),
                         int(gen.choice([1, 2, 4]))))  # fmt: skip
    return rows


def target_levels(states: np.ndarray, regulators: list[str], rows, n_targets: int) -> np.ndarray:
    """Target levels (cells × targets) from regulator levels: the mean of each target's terms."""
    pos = {g: i for i, g in enumerate(regulators)}
    acc = np.zeros((states.shape[0], n_targets))
    count = np.zeros(n_targets)
    for src, tgt, sign, thr, nh in rows:
        j = int(tgt[1:])
        xv = np.clip(states[:, pos[src]], 0.0, None) ** nh
        h = xv / (thr**nh + xv)
        acc[:, j] += h if sign > 0 else 1.0 - h
        count[j] += 1
    return acc / np.maximum(count, 1)


# ------------------------------------------------------------------------------- the screen
def true_steady_states(edges: pd.DataFrame) -> tuple[list[str], object, np.ndarray, np.ndarray]:
    """``(regulators, field, x_wt, x_ko)``: ``x_ko[g]`` is knockout ``g``'s steady state."""
    genes = list(edges.attrs["genes"])
    field_ = _field(genes, boolean_network(edges, genes))
    x_wt = _relax(field_, np.zeros(len(genes)))[0]
    A = np.ones((len(genes), len(genes)))
    A[np.arange(len(genes)), np.arange(len(genes))] = 0.0
    x_ko = _relax(field_, np.tile(x_wt, (len(genes), 1)), A)
    return genes, field_, x_wt, x_ko


def log2fc_levels(ko: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """True log2 fold change of expected counts, ``log2((ko + 0.02) / (wt + 0.02))``."""
    return np.log2((ko + LEVEL_OFFSET) / (wt + LEVEL_OFFSET))


def effect_sizes(true: pd.DataFrame) -> pd.Series:
    """Mean |log2FC| over the genes other than the knocked-out one, per knockout (row)."""
    v = true.to_numpy(dtype=np.float64).copy()
    cols = list(true.columns)
    for i, ko in enumerate(true.index):
        if ko in cols:
            v[i, cols.index(ko)] = np.nan
    return pd.Series(np.nanmean(np.abs(v), axis=1), index=true.index, name="effect")


def classify(effect: float) -> str:
    """``strong`` (true effect >= 0.1), ``null`` (< 0.005) or ``weak`` (in between)."""
    return "strong" if effect >= STRONG else "null" if effect < NULL else "weak"


def choose_knockouts(effect: pd.Series, expressed: list[str], k: int) -> dict[str, str]:
    """Up to ``k`` knockouts of each class among the expressed regulators, evenly spaced in
    rank of the true effect within the class (the class's strongest and weakest included)."""
    ranked = effect.loc[expressed].sort_values(ascending=False)
    out: dict[str, str] = {}
    for cls in ("strong", "weak", "null"):
        members = [g for g in ranked.index if classify(float(ranked[g])) == cls]
        if len(members) > k:
            members = [members[int(i)] for i in np.linspace(0, len(members) - 1, k).round()]
        out.update(dict.fromkeys(members, cls))
    return out


def observed_log2fc(counts: np.ndarray, condition: np.ndarray, genes: list[str]) -> pd.DataFrame:
    """Knockout × gene log2 fold change of mean normalised counts vs the controls."""
    counts = np.asarray(counts, dtype=np.float64)
    lib = counts.sum(1)
    norm = counts / lib[:, None] * np.median(lib)
    ctrl = norm[condition == "control"].mean(0)
    out = {}
    for c in pd.unique(condition):
        if c == "control":
            continue
        m = norm[condition == c].mean(0)
        out[str(c).removesuffix(" KO")] = np.log2((m + PSEUDOCOUNT) / (ctrl + PSEUDOCOUNT))
    return pd.DataFrame(out, index=genes).T


def simulate_screen(
    n_regulators: int = 100,
    *,
    n_targets: int = 300,
    n_control: int = 2000,
    n_per_ko: int = 300,
    k_per_class: int = 5,
    seed: int = 0,
    noise: float = NOISE,
) -> Screen:
    """Simulate the screen of the module docstring; see :class:`Screen`."""
    import anndata as ad
    import scipy.sparse as sp
    import torch

    from gclandscape.engine import integrate

    edges = perturbseq_network(n_regulators, seed=seed)
    regulators, field_, x_wt, x_ko = true_steady_states(edges)
    G = len(regulators)
    gen = np.random.default_rng(seed + 1000)
    trows = make_targets(regulators, edges.attrs["silent"], n_targets, gen)
    genes = regulators + [f"t{j:04d}" for j in range(n_targets)]

    def levels(states: np.ndarray) -> np.ndarray:
        return np.hstack([states, target_levels(states, regulators, trows, n_targets)])

    L_wt, L_ko = levels(x_wt[None])[0], levels(x_ko)
    true_all = pd.DataFrame(log2fc_levels(L_ko, L_wt[None]), index=regulators, columns=genes)
    effect_all = effect_sizes(true_all)
    expressed = [g for g, v in zip(regulators, x_wt) if v >= EXPRESSED]
    classes = choose_knockouts(effect_all, expressed, k_per_class)
    kos = list(classes)

    # cells: SDE runs from the true steady states, one batch
    ko_idx = [regulators.index(g) for g in kos]
    X0 = np.vstack(
        [np.tile(x_wt, (n_control, 1))] + [np.tile(x_ko[i], (n_per_ko, 1)) for i in ko_idx]
    )
    A = np.ones_like(X0)
    for c, i in enumerate(ko_idx):
        A[n_control + c * n_per_ko : n_control + (c + 1) * n_per_ko, i] = 0.0
    sol = integrate(
        field_, torch.as_tensor(X0, dtype=torch.float32), t_max=T_SAMPLE, dt=DT,
        args={"alpha": torch.as_tensor(A, dtype=torch.float32)},
        noise=lambda t, x, a: noise * torch.sqrt(x + 0.01), seed=seed,
    )  # fmt: skip
    state = np.clip(sol.x.numpy().astype(np.float64), 0.0, None)
    condition = np.array(
        ["control"] * n_control + [f"{g} KO" for g in kos for _ in range(n_per_ko)]
    )

    lv = levels(state)
    scale = gen.lognormal(mean=np.log(8.0), sigma=0.8, size=len(genes))
    lib = gen.lognormal(mean=0.0, sigma=0.35, size=len(lv))
    lib /= lib.mean()
    mu = lib[:, None] * scale[None, :] * (lv + LEVEL_OFFSET)
    counts = gen.poisson(gen.gamma(5.0, mu / 5.0)).astype(np.float32)

    adata = ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame({"condition": pd.Categorical(condition)},
                         index=[f"cell{i:06d}" for i in range(len(counts))]),
        var=pd.DataFrame({"gcl_regulator": np.r_[np.ones(G, bool), np.zeros(n_targets, bool)]},
                         index=genes),
    )  # fmt: skip
    adata.layers["counts"] = adata.X.copy()
    return Screen(
        adata=adata,
        regulators=regulators,
        genes=genes,
        knockouts=kos,
        classes=classes,
        effect=effect_all.loc[kos],
        true_log2fc=true_all.loc[kos],
        observed_log2fc=observed_log2fc(counts, condition, genes).loc[kos],
        network=edges,
        info={
            "n_expressed": len(expressed),
            "n_silent": len(edges.attrs["silent"]),
            "n_feedback": len(edges.attrs["feedback"]),
            "x_wt": x_wt,
        },
    )
