"""Fitting the connectionist GRN ODE (:class:`~gclandscape.engine._grn.GRNModel`) to tensors.

Plain arrays in, a fitted model and a :class:`FitResult` out; no AnnData. Two modes:

``"drift"``
    Regress the vector field ``f(x) = alpha * g(x) - gamma * x`` on a given drift ``dx/dt``
    (for example ``gcl.tl.drift``), mean squared error with every gene's residual divided by
    the standard deviation of its target so genes with large drift do not dominate.
``"steady_state"``
    One population fluctuating around a fixed point (CellOracle's assumption): regress
    production on the regulators, ``alpha_i g_i(x_{-i}) ≈ gamma_i x_i``, with ``gamma`` fixed
    (default 1) and self-inputs masked out (otherwise ``x_i`` would trivially explain itself).
    This is the drift regression with target 0, which keeps one code path.

The connection cost is a group lasso ``l1 * sum_ij w_ij ||V[i, :, j]||`` on the input
weights of each source → target edge. Subgradient descent (or Adam on the penalty) leaves
weights hovering near zero; a proximal step sets whole groups exactly to zero (block
soft-thresholding), as in neural Granger causality (Tank et al., 2021). The smooth loss is
minimised with Adam, and after every Adam step the proximal step is taken *in Adam's metric*:
each group is shrunk by ``lr * l1 * w_ij / d_ij`` where ``d_ij`` is the group's root-mean-square
Adam preconditioner. With a group-wise constant preconditioner this is an exact proximal
gradient step (ProxGen, Yun et al., 2021), so the fixed points are the stationary points of the
penalised objective and ``l1`` keeps its meaning (an edge stays absent while the norm of its
loss gradient is below ``l1 * w_ij``); without the rescaling Adam's normalised steps would make
the effective penalty depend on the gradient's scale. Sign constraints are applied in the same
step (projection onto the sign orthant before shrinking, which is the exact proximal map of the
sum), and the non-negative output weights ``a`` are projected onto ``[0, a_max]``.

Training uses Lightning (a :class:`lightning.pytorch.LightningModule` and ``Trainer``) with
early stopping on a held-out split of the cells; losses are :class:`LossOutput` dataclasses of
named parts (scvi-tools style) logged per epoch into :attr:`FitResult.history`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._errors import GclError
from .._utils import logger
from ._device import resolve_device
from ._grn import GRNModel, _as_float_tensor
from ._grn_objective import LossOutput, _loss, _per_gene_mse
from ._grn_penalties import L1_FRACTION, _lambda_max, adaptive_penalty_weights, default_l1
from ._grn_training import _default_epochs, _init_model, _split, _train

__all__ = [
    "FitResult",
    "LossOutput",
    "adaptive_penalty_weights",
    "default_l1",
    "fit",
]

MODES = ("drift", "steady_state")
MIN_CELLS = 10


@dataclass
class FitResult:
    """What :func:`fit` did and how well it fits.

    Attributes
    ----------
    mode
        ``"drift"`` or ``"steady_state"``.
    l1
        Group-lasso strength used.
    l1_rule
        How ``l1`` was chosen (``"given"`` or the default rule with its ``lambda_max``).
    lambda_max
        Smallest ``l1`` at which the empty network is stationary (data-derived scale).
    train, val
        Final :class:`LossOutput` (floats) on the training and held-out cells.
    val_r2
        Held-out R² per gene (1 − SSE/SST of the scaled residual), a ``(G,)`` array.
    n_edges
        Number of non-zero edges (groups) in the fitted network.
    n_epochs
        Epochs run (early stopping may stop before ``max_epochs``).
    seconds
        Wall time of the fit.
    history
        pandas DataFrame, one row per epoch: ``epoch``, ``train_mse``, ``train_penalty``,
        ``train_total``, ``val_mse``, ``val_penalty``, ``val_total``, ``n_edges`` (penalties
        and edge counts at the end of each epoch).
    params
        The fit's parameters (plain values, for ``.uns[key]["params"]``).
    """

    mode: str
    l1: float
    l1_rule: str
    lambda_max: float
    train: LossOutput
    val: LossOutput
    val_r2: np.ndarray
    n_edges: int
    n_epochs: int
    seconds: float
    history: Any
    params: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- input checks
def _check_inputs(
    x: Any,
    dxdt: Any,
    mode: str,
    weights: Any,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if mode not in MODES:
        raise GclError(f"mode must be one of {MODES}, got {mode!r}.")
    xt = _as_float_tensor(x, "x", device=device)
    if xt.ndim != 2:
        raise GclError(f"x must be a 2-D (n_cells, n_genes) array, got shape {tuple(xt.shape)}.")
    n, g = xt.shape
    if g < 2:
        raise GclError(f"x has {g} gene(s); a network needs at least 2 genes.")
    if n < MIN_CELLS:
        raise GclError(
            f"x has {n} cells; fitting a GRN needs at least {MIN_CELLS} cells (more is better)."
        )
    if not bool(torch.isfinite(xt).all()):
        bad = int((~torch.isfinite(xt)).any(1).sum())
        raise GclError(
            f"x contains NaN or infinite values in {bad} cell(s); remove or impute them."
        )
    if mode == "drift":
        if dxdt is None:
            raise GclError(
                "mode='drift' needs dxdt (n_cells, n_genes); pass a drift estimate or use "
                "mode='steady_state' for one population without time signal."
            )
        yt = _as_float_tensor(dxdt, "dxdt", device=device)
        if tuple(yt.shape) != (n, g):
            raise GclError(
                f"dxdt has shape {tuple(yt.shape)} but x has shape {(n, g)}; they must match "
                "(one drift vector per cell)."
            )
        if not bool(torch.isfinite(yt).all()):
            bad = int((~torch.isfinite(yt)).any(1).sum())
            raise GclError(f"dxdt contains NaN or infinite values in {bad} cell(s).")
    else:
        if dxdt is not None:
            raise GclError("mode='steady_state' does not use dxdt; pass dxdt=None.")
        yt = torch.zeros_like(xt)
    if weights is None:
        wt = torch.ones(n, device=device)
    else:
        wt = _as_float_tensor(weights, "weights", device=device).reshape(-1)
        if wt.shape[0] != n:
            raise GclError(f"weights has {wt.shape[0]} entries but x has {n} cells.")
        if not bool(torch.isfinite(wt).all()) or bool((wt < 0).any()) or float(wt.sum()) <= 0:
            raise GclError("weights must be finite, non-negative and not all zero.")
        wt = wt * (n / wt.sum())
    return xt, yt, wt


def fit(
    x: Any,
    dxdt: Any = None,
    *,
    hidden: int = 6,
    l1: float | None = None,
    mask: Any = None,
    prior: Any = None,
    prior_penalty: float = 0.25,
    penalty_weights: Any = None,
    sign: Any = None,
    self_loops: bool | None = None,
    gamma: Any = None,
    mode: str = "drift",
    weights: Any = None,
    max_epochs: int | None = None,
    batch_size: int = 512,
    lr: float = 3e-2,
    val_fraction: float = 0.1,
    patience: int = 20,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    init: GRNModel | None = None,
) -> tuple[GRNModel, FitResult]:
    """Fit a sparse connectionist GRN ODE to states and drift (or to one steady population).

    Parameters
    ----------
    x
        ``(n_cells, n_genes)`` regulator states (expression scaled to about [0, 1]).
    dxdt
        ``(n_cells, n_genes)`` drift estimate at those states (``mode="drift"``); ``None`` for
        ``mode="steady_state"``.
    hidden
        Hidden units per target gene.
    l1
        Connection cost (group-lasso strength). ``None``: ``L1_FRACTION`` (0.01) times the
        data-derived ``lambda_max``, the smallest value that empties the network
        (:func:`default_l1`); the fraction ranked edges best on simulated networks
        (``benchmarks/README.md``, "GRN recovery").
    mask
        ``(G, G)`` boolean target × source array of allowed edges (hard prior); disallowed
        edges stay exactly zero.
    prior
        ``(G, G)`` target × source array; non-zero entries are known edges whose penalty is
        multiplied by ``prior_penalty`` (soft prior).
    prior_penalty
        Penalty factor for prior edges (``0`` leaves them unpenalised).
    penalty_weights
        ``(G, G)`` positive target × source array multiplying each edge's connection cost
        (an adaptive group lasso; :func:`adaptive_penalty_weights`). ``None``: all 1.
    sign
        ``(G, G)`` target × source array in {-1, 0, +1}: required edge signs (0: free).
    self_loops
        Allow ``i -> i`` edges (autoregulation). Default ``True`` in drift mode; always
        ``False`` in steady-state mode.
    gamma
        Fixed degradation rates (scalar or ``(G,)``). ``None``: learned in drift mode, 1 in
        steady-state mode.
    mode
        ``"drift"`` or ``"steady_state"`` (see the module docstring).
    weights
        Optional non-negative per-cell weights of the loss.
    max_epochs
        Upper bound on epochs; ``None`` gives about 2,000 optimiser steps (50–500 epochs).
        Early stopping on the held-out cells usually stops sooner.
    batch_size
        Cells per minibatch.
    lr
        Adam learning rate.
    val_fraction
        Fraction of cells held out for early stopping and :attr:`FitResult.val`.
    patience
        Early-stopping patience in epochs.
    seed
        Seed for initialisation, split and minibatch order (deterministic on CPU).
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    progress
        Show Lightning's progress bar.
    init
        Warm start from this model's parameters (its mask, sign and scalings are kept).

    Returns
    -------
    ``(model, result)``: the fitted :class:`~gclandscape.engine._grn.GRNModel` (on CPU) and a
    :class:`FitResult`.

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._grn_fit import fit
    >>> x = torch.rand(200, 3)
    >>> dxdt = torch.stack([1 - x[:, 0], x[:, 0] - x[:, 1], x[:, 1] - x[:, 2]], 1)
    >>> model, res = fit(x, dxdt, hidden=2, max_epochs=5)
    >>> res.mode, model.n_genes
    ('drift', 3)
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    xt, yt, wt = _check_inputs(x, dxdt, mode, weights, dev)
    n, g = xt.shape
    if int(hidden) != hidden or hidden < 1:
        raise GclError(f"hidden must be a positive integer (e.g. 6), got {hidden!r}.")
    if l1 is not None and (not math.isfinite(float(l1)) or l1 < 0):
        raise GclError(f"l1 must be a non-negative number or None, got {l1!r}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise GclError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not 0 < val_fraction < 0.5:
        raise GclError(f"val_fraction must be in (0, 0.5), got {val_fraction!r}.")
    if max_epochs is not None and (int(max_epochs) != max_epochs or max_epochs < 1):
        raise GclError(f"max_epochs must be a positive integer or None, got {max_epochs!r}.")
    if prior_penalty < 0:
        raise GclError(f"prior_penalty must be non-negative, got {prior_penalty!r}.")
    if self_loops is None:
        self_loops = mode == "drift"
    if self_loops and mode == "steady_state":
        raise GclError(
            "self_loops=True is not allowed in steady_state mode: a gene's own level would "
            "trivially explain its production."
        )
    allowed = torch.ones(g, g, dtype=torch.bool)
    if mask is not None:
        allowed = _bool_square(mask, g, "mask")
    if not self_loops:
        allowed &= ~torch.eye(g, dtype=torch.bool)
    pen_w = torch.ones(g, g)
    if prior is not None:
        pen_w = torch.where(_bool_square(prior, g, "prior"), float(prior_penalty), 1.0)
    if penalty_weights is not None:
        pw = _as_float_tensor(penalty_weights, "penalty_weights", device=torch.device("cpu"))
        if tuple(pw.shape) != (g, g):
            raise GclError(
                f"penalty_weights must be a ({g}, {g}) target × source array; got shape "
                f"{tuple(pw.shape)}."
            )
        if not bool(torch.isfinite(pw).all()) or bool((pw <= 0).any()):
            raise GclError("penalty_weights must be finite and positive.")
        pen_w = pen_w * pw.to(pen_w.dtype)
    pen_w = (pen_w * allowed).to(dev)

    train_idx, val_idx = _split(n, val_fraction, seed, dev)
    xtr, ytr, wtr = xt[train_idx], yt[train_idx], wt[train_idx]
    model, y_scale = _init_model(
        xtr, ytr, mode, hidden=hidden, mask=allowed, sign=sign, gamma=gamma, seed=seed
    )
    if init is not None:
        if init.n_genes != g or init.hidden != hidden:
            raise GclError(
                f"init has {init.n_genes} genes and {init.hidden} hidden units; the fit has "
                f"{g} and {hidden}."
            )
        model = GRNModel.from_dict(init.to_dict()).to(dev)
        if gamma is not None or mode == "steady_state":
            model.log_gamma.requires_grad_(False)
    model.train()
    lam_max = _lambda_max(model, xtr, ytr, wtr, y_scale, pen_w)
    if l1 is None:
        l1_val = default_l1(lam_max, g)
        rule = f"default: {L1_FRACTION} * lambda_max ({lam_max:.4g})"
    else:
        l1_val = float(l1)
        rule = "given"
    epochs = max_epochs if max_epochs is not None else _default_epochs(len(train_idx), batch_size)
    history = _train(
        model,
        xt,
        yt,
        wt,
        y_scale,
        pen_w,
        train_idx,
        val_idx,
        l1=l1_val,
        lr=lr,
        max_epochs=int(epochs),
        batch_size=int(batch_size),
        patience=int(patience),
        seed=seed,
        progress=progress,
    )
    import pandas as pd

    model.eval()
    with torch.no_grad():
        train_parts = _loss(model, xtr, ytr, wtr, y_scale, l1_val, pen_w)
        xv, yv, wv = xt[val_idx], yt[val_idx], wt[val_idx]
        val_parts = _loss(model, xv, yv, wv, y_scale, l1_val, pen_w)
        mse_v = _per_gene_mse(model, xv, yv, wv, y_scale)
        target = yv if mode == "drift" else xv * model.gamma
        mean = (wv[:, None] * target).sum(0) / wv.sum()
        sst = (wv[:, None] * ((target - mean) / y_scale).square()).sum(0) / wv.sum()
        val_r2 = (1 - mse_v / sst.clamp_min(1e-12)).cpu().numpy().astype(np.float64)
    model = model.cpu()
    model.l1 = l1_val
    seconds = time.perf_counter() - t0
    n_edges = int(model.adjacency().sum())
    params = {
        "mode": mode,
        "hidden": int(hidden),
        "l1": l1_val,
        "l1_rule": rule,
        "prior_penalty": float(prior_penalty),
        "penalty_weights": penalty_weights is not None,
        "self_loops": bool(self_loops),
        "gamma_fixed": bool(model.gamma_fixed),
        "max_epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "val_fraction": float(val_fraction),
        "patience": int(patience),
        "seed": int(seed),
        "device": str(dev),
    }
    result = FitResult(
        mode=mode,
        l1=l1_val,
        l1_rule=rule,
        lambda_max=lam_max,
        train=train_parts.to_floats(),
        val=val_parts.to_floats(),
        val_r2=val_r2,
        n_edges=n_edges,
        n_epochs=len(history),
        seconds=seconds,
        history=pd.DataFrame(history),
        params=params,
    )
    logger.info(
        "GRN fit (%s): %d genes, %d cells, %d edges, %d epochs, val mse %.3f, %.1f s",
        mode,
        g,
        n,
        n_edges,
        result.n_epochs,
        result.val.mse,
        seconds,
    )
    return model, result


def _bool_square(value: Any, g: int, name: str) -> torch.Tensor:
    arr = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)
    if arr.shape != (g, g):
        raise GclError(f"{name} must be a ({g}, {g}) target × source array, got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise GclError(f"{name} contains NaN or infinite values.")
    return torch.from_numpy(arr != 0)
