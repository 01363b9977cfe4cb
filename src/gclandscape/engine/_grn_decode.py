"""Fitting a genome by decoding: develop cells and compare them with the observed population.

The drift regression (:mod:`._grn_fit`) fits the vector field at the observed states; it does
not ask whether development under that field *regenerates* the data. Here a fitted model is
refined by what it regenerates (issue 18 §1): cells start from the root states and develop
with the model's SDE (batched Euler–Maruyama, differentiated through by autograd), and the
loss is

- ``fate``: squared difference between the simulated and the observed terminal fate
  fractions; a simulated cell's fate is a soft assignment to the terminal centroids
  (softmax of minus the squared distance over a temperature), with an extra "none" class for
  cells far from every centroid, whose observed fraction is 0;
- ``sinkhorn``: the Sinkhorn divergence (``geomloss.SamplesLoss``, debiased, ``p = 2``)
  between the simulated end states and the observed terminal cells;
- ``attractor``: every terminal centroid is a stable fixed point: the squared field at the
  centroid, plus the squared distance from the centroid of a few of its type's cells after a
  short noise-free relaxation (they must fall back to it);
- ``drift``: the drift regression's scaled mean squared error on the observed cells, so the
  field stays faithful where the data are;
- ``transport`` (multiple shooting): cells of each time bin (quantiles of the pseudotime)
  develop for a learnt duration and are compared (Sinkhorn) with the cells of the next bin,
  so the field must carry the population along the observed order; short horizons keep the
  gradients informative where a long rollout sits in one basin.

The network's structure is kept: edges absent from the regression fit stay absent (``V`` is
re-masked to the fitted support after every step), sign constraints and the non-negative
output weights are kept as in the regression fit. The engine holds no AnnData: inputs are
plain arrays (:func:`gclandscape.landscape.fit_grn` prepares them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._defaults import NOISE
from ._grn import GRNModel
from ._grn_penalties import _prox
from ._grn_training import _A_MAX

__all__ = ["DecodeResult", "DecodeTargets", "decode_fit", "decode_losses"]

#: Euler step of the differentiated development (coarser than ``DT``: the gradient needs
#: the fate, not the path; 0.1 keeps the Euler map stable for decay rates up to ~10).
DECODE_DT = 0.1
#: Simulated time of the differentiated development (sim's T_DEVELOP is 40; fitted fields bring
#: cells to their fates by t = 10 on the suite's dev networks).
DECODE_T = 20.0
#: Noise-free relaxation time of the attractor term's cells.
RELAX_T = 10.0
#: Default weights of the loss terms. ``transport`` is off: on six of the suite's dev networks it
#: did not beat decoding without it (benchmarks/README.md, "Decoding").
WEIGHTS = {"fate": 10.0, "sinkhorn": 1.0, "attractor": 1.0, "drift": 1.0, "transport": 0.0}
#: Euler steps of each bin-to-bin shot (the step is the shot's learnt duration / this).
SHOT_STEPS = 20
#: Initial duration of a shot between successive time bins.
SHOT_T = 2.5


@dataclass
class DecodeTargets:
    """What the developed population must regenerate (model coordinates).

    Attributes
    ----------
    starts
        ``(n, G)`` root states cells develop from.
    centroids
        ``(K, G)`` terminal cell-type centroids.
    fractions
        ``(K,)`` observed terminal fate fractions (sum 1).
    terminal_cells
        ``(m, G)`` observed terminal cells (the Sinkhorn target), in observed proportions.
    type_cells
        ``K`` arrays of a few cells of each terminal type (the attractor term's starts).
    bins
        Cells in successive time bins (quantiles of the time signal), for the ``transport``
        term; None leaves the term out.
    """

    starts: np.ndarray
    centroids: np.ndarray
    fractions: np.ndarray
    terminal_cells: np.ndarray
    type_cells: list[np.ndarray]
    bins: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        k = len(self.centroids)
        if k < 1 or len(self.fractions) != k or len(self.type_cells) != k:
            raise ValueError("centroids, fractions and type_cells must have one entry per type.")
        if len(self.starts) < 1 or len(self.terminal_cells) < 1:
            raise ValueError("starts and terminal_cells must not be empty.")


@dataclass
class DecodeResult:
    """Outcome of :func:`decode_fit`: the losses before and after, and the history."""

    before: dict[str, float]
    after: dict[str, float]
    history: list[float] = field(default_factory=list)
    n_iter: int = 0
    seconds: float = 0.0
    accepted: bool = True


def _temperature(centroids: torch.Tensor) -> tuple[float, float]:
    """Soft-assignment temperature and the "none" class's squared distance."""
    if len(centroids) > 1:
        d2 = torch.cdist(centroids, centroids).square()
        d2.fill_diagonal_(float("inf"))
        nearest = float(d2.min())
    else:
        nearest = float(centroids.square().sum().clamp_min(1.0))
    # a cell halfway between two centroids is "none" as much as either of them
    return nearest / 16.0, nearest / 4.0


def _develop(
    model: GRNModel, x0: torch.Tensor, *, t: float, dt: float, noise: float, gen: Any
) -> torch.Tensor:
    """Differentiable Euler–Maruyama from ``x0`` (states kept non-negative)."""
    x = x0
    scale = noise * dt**0.5
    for _ in range(round(t / dt)):
        x = x + model(None, x) * dt
        if noise > 0:
            x = x + scale * torch.randn(x.shape, generator=gen)
        x = x.clamp_min(0.0)
    return x


def _sinkhorn(blur: float):
    from geomloss import SamplesLoss

    return SamplesLoss("sinkhorn", p=2, blur=blur, debias=True, backend="tensorized")


def decode_losses(
    model: GRNModel,
    targets: DecodeTargets,
    *,
    x: np.ndarray | torch.Tensor | None = None,
    dxdt: np.ndarray | torch.Tensor | None = None,
    n_cells: int = 256,
    noise: float = NOISE,
    seed: int = 0,
    t: float = DECODE_T,
    dt: float = DECODE_DT,
    terms: tuple[str, ...] = ("fate", "sinkhorn", "attractor", "drift"),
    log_durations: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The decoding loss terms of ``model`` against ``targets`` (differentiable).

    Parameters
    ----------
    model
        The genome's vector field.
    targets
        What development must regenerate (:class:`DecodeTargets`).
    x, dxdt
        Observed states and drift for the ``drift`` term (left out when None).
    n_cells
        Cells developed from the root states (drawn with replacement).
    noise
        Noise of development (the genome's default).
    seed
        Seed of the start cells and the noise.
    t, dt
        Development time and Euler step.
    terms
        The terms to compute (development is skipped without ``fate`` and ``sinkhorn``).
    log_durations
        Log durations of the ``transport`` term's shots (one per pair of bins; default
        :data:`SHOT_T` each).

    Returns
    -------
    ``{"fate", "sinkhorn", "attractor"[, "drift", "transport"]}`` scalar tensors (those in
    ``terms``) and ``"fractions"``: the
    simulated fate fractions (K types, then "none").

    Examples
    --------
    >>> import numpy as np, torch
    >>> from gclandscape.engine._grn import GRNModel
    >>> m = GRNModel(2, hidden=2, generator=torch.Generator().manual_seed(0))
    >>> c = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> tg = DecodeTargets(np.full((4, 2), 0.5), c, np.array([0.5, 0.5]), c, [c[:1], c[1:]])
    >>> sorted(decode_losses(m, tg, n_cells=8, t=1.0))
    ['attractor', 'fate', 'fractions', 'sinkhorn']
    """
    gen = torch.Generator().manual_seed(int(seed))
    starts = torch.as_tensor(targets.starts, dtype=torch.float32)
    cents = torch.as_tensor(targets.centroids, dtype=torch.float32)
    frac = torch.as_tensor(targets.fractions, dtype=torch.float32)
    out: dict[str, torch.Tensor] = {}
    if "fate" in terms or "sinkhorn" in terms:
        idx = torch.randint(len(starts), (int(n_cells),), generator=gen)
        end = _develop(model, starts[idx], t=t, dt=dt, noise=noise, gen=gen)
        tau, none_d2 = _temperature(cents)
        d2 = torch.cdist(end, cents).square()
        logits = torch.cat([-d2, torch.full((len(end), 1), -none_d2)], dim=1) / tau
        p_sim = torch.softmax(logits, dim=1).mean(0)
        p_obs = torch.cat([frac, torch.zeros(1)])
        out.update(fate=(p_sim - p_obs).square().sum(), fractions=p_sim.detach())
        terminal = torch.as_tensor(targets.terminal_cells, dtype=torch.float32)
        out["sinkhorn"] = _sinkhorn(blur=max(tau**0.5, 0.02))(end, terminal)
    # attractors: the field vanishes at each centroid, and its cells relax back to it
    if "attractor" in terms:
        f_c = model(None, cents)
        cells = [torch.as_tensor(c, dtype=torch.float32) for c in targets.type_cells]
        relaxed = _develop(model, torch.cat(cells), t=RELAX_T, dt=dt, noise=0.0, gen=gen)
        home = torch.cat([cents[k].expand(len(c), -1) for k, c in enumerate(cells)])
        out["attractor"] = f_c.square().sum(1).mean() + (relaxed - home).square().sum(1).mean()
    if "transport" in terms and targets.bins is not None and len(targets.bins) > 1:
        bins = [torch.as_tensor(b, dtype=torch.float32) for b in targets.bins]
        if log_durations is None:
            log_durations = torch.full((len(bins) - 1,), float(np.log(SHOT_T)))
        per = max(int(n_cells) // (len(bins) - 1), 16)
        shots = []
        for b in range(len(bins) - 1):
            src = bins[b][torch.randint(len(bins[b]), (per,), generator=gen)]
            step = log_durations[b].exp() / SHOT_STEPS
            for _ in range(SHOT_STEPS):
                src = src + model(None, src) * step
                src = (src + noise * step.sqrt() * torch.randn(src.shape, generator=gen)).clamp_min(
                    0
                )
            shots.append(_sinkhorn(blur=0.05)(src, bins[b + 1]))
        out["transport"] = torch.stack(shots).mean()
    if "drift" in terms and x is not None and dxdt is not None:
        xt = torch.as_tensor(x, dtype=torch.float32)
        yt = torch.as_tensor(dxdt, dtype=torch.float32)
        scale = yt.std(0).clamp_min(1e-6)
        out["drift"] = ((model(None, xt) - yt) / scale).square().mean()
    return out


def _total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    return sum(weights[k] * losses[k] for k in weights if k in losses)


def _project(model: GRNModel, optimizer: torch.optim.Optimizer, support: torch.Tensor) -> None:
    """Keep the fitted network: the regression fit's projections (signs, bounded non-negative
    output weights; its proximal step without a connection cost), then its support."""
    _prox(model, optimizer, 0.0, torch.ones_like(support), _A_MAX)
    with torch.no_grad():
        model.V.mul_(support[:, None, :])


def decode_fit(
    model: GRNModel,
    targets: DecodeTargets,
    *,
    x: np.ndarray | None = None,
    dxdt: np.ndarray | None = None,
    weights: dict[str, float] | None = None,
    n_iter: int = 100,
    lr: float = 0.01,
    n_cells: int = 256,
    noise: float = NOISE,
    seed: int = 0,
) -> DecodeResult:
    """Refine a fitted model in place so that development regenerates ``targets``.

    Adam on the weighted sum of :func:`decode_losses`, with fresh start cells and noise each
    step; the network's support and signs are kept. The refined weights are kept only if the
    total loss on a held-out noise seed went down (else the model is restored and
    ``accepted`` is False).

    Parameters
    ----------
    model
        A fitted :class:`~gclandscape.engine._grn.GRNModel` (changed in place).
    targets
        What development must regenerate.
    x, dxdt
        Observed states and drift (the ``drift`` term); None leaves the term out.
    weights
        Loss weights (default :data:`WEIGHTS`).
    n_iter, lr
        Adam steps and learning rate.
    n_cells
        Cells developed per step.
    noise
        Development noise.
    seed
        Seed of the steps' cells and noise (the held-out check uses another).

    Returns
    -------
    :class:`DecodeResult` with the held-out losses before and after.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from gclandscape.engine._grn import GRNModel
    >>> m = GRNModel(2, hidden=2, generator=torch.Generator().manual_seed(0))
    >>> c = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> tg = DecodeTargets(np.full((4, 2), 0.5), c, np.array([0.5, 0.5]), c, [c[:1], c[1:]])
    >>> decode_fit(m, tg, n_iter=2, n_cells=8).n_iter
    2
    """
    weights = dict(WEIGHTS if weights is None else weights)
    terms = tuple(k for k, w in weights.items() if w)
    t0 = time.perf_counter()
    support = (model.group_norms() > 0).to(torch.float32)
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    check_seed = int(seed) + 10_007
    n_shots = len(targets.bins) - 1 if targets.bins is not None else 0
    log_durations = torch.full((max(n_shots, 1),), float(np.log(SHOT_T)), requires_grad=True)

    def held_out() -> dict[str, float]:
        with torch.no_grad():
            losses = decode_losses(
                model, targets, x=x, dxdt=dxdt, n_cells=max(n_cells, 512), noise=noise,
                seed=check_seed, terms=terms, log_durations=log_durations,
            )  # fmt: skip
        out = {k: float(v.detach()) for k, v in losses.items() if k != "fractions"}
        out["total"] = float(_total(losses, weights).detach())
        return out

    before = held_out()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam([*params, log_durations], lr=lr)
    history = []
    for step in range(int(n_iter)):
        opt.zero_grad()
        losses = decode_losses(
            model, targets, x=x, dxdt=dxdt, n_cells=n_cells, noise=noise, seed=int(seed) + step,
            terms=terms, log_durations=log_durations,
        )  # fmt: skip
        total = _total(losses, weights)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        _project(model, opt, support)
        history.append(float(total.detach()))
    after = held_out()
    accepted = after["total"] < before["total"]
    if not accepted:
        model.load_state_dict(saved)
        after = before
    return DecodeResult(
        before=before,
        after=after,
        history=history,
        n_iter=int(n_iter),
        seconds=time.perf_counter() - t0,
        accepted=accepted,
    )
