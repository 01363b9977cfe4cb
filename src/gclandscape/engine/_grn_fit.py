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

import contextlib
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._errors import GclError
from .._utils import logger
from ._grn import GRNModel, _as_float_tensor, group_norm

__all__ = [
    "FitResult",
    "LossOutput",
    "adaptive_penalty_weights",
    "bootstrap_confidence",
    "default_l1",
    "fit",
]

MODES = ("drift", "steady_state")
MIN_CELLS = 10
#: Default ``l1`` is this fraction of the data-derived ``lambda_max`` (see :func:`default_l1`).
L1_FRACTION = 0.01
_A_MAX = 10.0


@dataclass
class LossOutput:
    """Named parts of the GRN fitting objective (scvi-tools ``LossOutput`` style).

    Attributes
    ----------
    mse
        Mean over genes of the per-gene scaled mean squared error (≈ 1 − R² per gene, averaged).
    penalty
        Connection cost ``l1 * sum_ij w_ij ||V[i, :, j]||`` divided by the number of genes (same
        per-gene units as ``mse``).
    total
        ``mse + penalty``: the objective that is minimised and monitored for early stopping.
    """

    mse: Any
    penalty: Any
    total: Any = None

    def __post_init__(self) -> None:
        if self.total is None:
            self.total = self.mse + self.penalty

    def to_floats(self) -> LossOutput:
        """The same losses as Python floats."""
        return LossOutput(*(float(v) for v in (self.mse, self.penalty, self.total)))

    def to_dict(self) -> dict[str, float]:
        """``{"mse": ..., "penalty": ..., "total": ...}`` as floats."""
        f = self.to_floats()
        return {"mse": f.mse, "penalty": f.penalty, "total": f.total}


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


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise GclError(f"device must be 'cpu', 'cuda', 'auto' or a torch device: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GclError(
            "device='cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'."
        )
    return dev


# ---------------------------------------------------------------------- the objective
def _scaled_residual(
    model: GRNModel, x: torch.Tensor, y: torch.Tensor, y_scale: torch.Tensor
) -> torch.Tensor:
    return (model(None, x) - y) / y_scale


@torch.no_grad()
def _penalty(model: GRNModel, l1: float, pen_w: torch.Tensor) -> torch.Tensor:
    """Connection cost per gene: ``l1 * sum_ij w_ij ||V[i, :, j]|| / G``."""
    return l1 * (pen_w * group_norm(model.V)).sum() / model.n_genes


def _smooth_loss(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth loss to differentiate (sum over genes) and the reported mse (mean over genes)."""
    r = _scaled_residual(model, x, y, y_scale)
    per_gene = (w[:, None] * r.square()).sum(0) / w.sum()
    return per_gene.sum(), per_gene.mean().detach()


_CHUNK = 8192


@torch.no_grad()
def _per_gene_mse(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
) -> torch.Tensor:
    """Weighted per-gene mean squared scaled residual, evaluated in chunks of cells."""
    sse = torch.zeros(model.n_genes, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        r = _scaled_residual(model, x[sl], y[sl], y_scale)
        sse += (w[sl, None] * r.square()).sum(0)
    return sse / w.sum()


def _loss(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
    l1: float,
    pen_w: torch.Tensor,
) -> LossOutput:
    """Reported objective parts on the given cells."""
    mse = _per_gene_mse(model, x, y, w, y_scale).mean()
    return LossOutput(mse=mse, penalty=_penalty(model, l1, pen_w))


@torch.no_grad()
def _prox(
    model: GRNModel,
    optimizer: torch.optim.Optimizer,
    l1: float,
    pen_w: torch.Tensor,
    a_max: float,
) -> None:
    """Proximal step for the group lasso (in Adam's group metric) plus projections."""
    v = model.V
    if bool(model.sign.any()):
        sign = model.sign[:, None, :]
        v.masked_fill_(sign * v < 0, 0.0)
    shrink = model.mask.to(v.dtype)
    if l1 > 0:
        state = optimizer.state.get(v, {})
        group = optimizer.param_groups[0]
        lr = float(group["lr"])
        if "exp_avg_sq" in state:
            beta2 = group["betas"][1]
            step = float(state["step"])
            v_hat = state["exp_avg_sq"] / (1 - beta2**step)
            precond = v_hat.mean(dim=1).sqrt() + group["eps"]
        else:  # plain SGD metric
            precond = torch.ones_like(pen_w)
        thresh = lr * l1 * pen_w / precond
        norm = group_norm(v)
        shrink = shrink * torch.clamp(1 - thresh / norm.clamp_min(1e-30), min=0.0)
    v.mul_(shrink[:, None, :])
    model.a.clamp_(0.0, a_max)


# ---------------------------------------------------------------------- initialisation
def _init_model(
    x: torch.Tensor,
    y: torch.Tensor,
    mode: str,
    *,
    hidden: int,
    mask: torch.Tensor,
    sign: Any,
    gamma: Any,
    seed: int,
) -> tuple[GRNModel, torch.Tensor]:
    """Data-driven initial model and per-gene residual scales."""
    g = x.shape[1]
    loc = x.mean(0)
    sd = x.std(0)
    floor = max(float(sd.max()) * 1e-3, 1e-8)
    sd = sd.clamp_min(floor)
    if mode == "steady_state" and gamma is None:
        gamma = 1.0
    if gamma is None:
        y_sd = y.std(0)
        rate = float(torch.median(y_sd / sd))
        gam0 = min(max(rate, 1e-3), 1e3) if math.isfinite(rate) and rate > 0 else 1.0
    gen = torch.Generator().manual_seed(int(seed))
    model = GRNModel(
        g,
        hidden=hidden,
        mask=mask.cpu(),
        sign=sign,
        x_loc=loc.cpu(),
        x_scale=sd.cpu(),
        gamma=gamma,
        generator=gen,
    ).to(x.device)
    with torch.no_grad():
        if gamma is None:
            model.log_gamma.fill_(math.log(gam0))
        prod = y + model.gamma * x
        k = max(1, math.ceil(0.99 * prod.shape[0]))
        top = torch.kthvalue(prod, k, dim=0).values  # torch.quantile caps the input size
        alpha = (1.2 * top).clamp_min(max(float(top.max()) * 1e-3, 1e-6))
        model.log_alpha.copy_(alpha.log())
        frac = (prod.mean(0) / alpha).clamp(0.02, 0.98)
        _, s = model._hidden(x)
        model.d.copy_(torch.log(frac / (1 - frac)) - s.mean(0))
        if mode == "drift":
            y_scale = y.std(0)
        else:
            y_scale = model.gamma * x.std(0)
        y_scale = y_scale.clamp_min(max(float(y_scale.max()) * 1e-3, 1e-8))
    return model, y_scale


def _lambda_max(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
    pen_w: torch.Tensor,
) -> float:
    """Smallest ``l1`` at which the empty network (all groups zero) is stationary."""
    empty = GRNModel.from_dict(model.to_dict()).to(x.device)
    with torch.no_grad():
        empty.V.zero_()
    grad = torch.zeros_like(empty.V)
    for start in range(0, x.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        r = _scaled_residual(empty, x[sl], y[sl], y_scale)
        smooth = (w[sl, None] * r.square()).sum() / w.sum()
        grad += torch.autograd.grad(smooth, empty.V)[0]
    gnorm = group_norm(grad)
    allowed = (pen_w > 0) & model.mask
    if not bool(allowed.any()):
        return 0.0
    return float((gnorm[allowed] / pen_w[allowed]).max())


def default_l1(lambda_max: float, n_genes: int) -> float:
    """The default connection cost: ``L1_FRACTION * lambda_max``.

    ``lambda_max`` is the norm of the largest edge-group gradient of the loss at the empty
    network, so the default keeps the rule scale-free (invariant to the units of ``x`` and
    ``dx/dt``).

    Examples
    --------
    >>> default_l1(2.0, 10)
    0.02
    """
    return L1_FRACTION * float(lambda_max)


#: Floor added to the scaled partial correlations in :func:`adaptive_penalty_weights` ...
ADAPTIVE_FLOOR = 0.05
#: ... and the power of the pilot the weight divides by.
ADAPTIVE_EXPONENT = 0.75


def adaptive_penalty_weights(
    z: Any, *, floor: float = ADAPTIVE_FLOOR, exponent: float = ADAPTIVE_EXPONENT
) -> np.ndarray:
    """Per-edge connection-cost weights from the partial correlations of ``z``.

    An adaptive group lasso (Zou 2006; Wang & Leng 2008) takes a pilot estimate of every
    edge and divides its penalty by it, so edges the pilot supports are cheap and the rest
    dear; the fitted network is still the one the dynamics need. The pilot here is the
    absolute partial correlation ``|ρ_ij|`` of genes ``i`` and ``j`` in ``z`` (standardised;
    precision matrix of the Ledoit–Wolf covariance): at a steady state, and along
    trajectories where targets follow their regulators, a direct regulator stays correlated
    with its target given all other genes. The weight is
    ``(|ρ_ij| / max|ρ| + floor) ** -exponent``, divided by its median off the diagonal (so a
    typical edge keeps the cost ``l1``); self-loops get weight 1. Measured on the GRN
    benchmark (``benchmarks/README.md``): with ``z`` the log-normalised expression, the
    simulated networks' median AUPRC ratio of :func:`gclandscape.landscape.fit_grn` rose
    from 2.41 to 4.35 and the BEELINE median stayed about even (3.06 → 3.01). The exponent
    0.75 rather than 1 keeps the myeloid default's Mk attractor when the drift comes from a
    pseudotime (with 1 it was lost, and the BEELINE median was 2.91).

    Parameters
    ----------
    z
        ``(n_cells, n_genes)`` expression, best log-scaled (``log1p`` of normalised counts).
    floor
        Added to the scaled ``|ρ|``; caps the largest weight at about ``floor ** -exponent``
        times the smallest.
    exponent
        Power of the pilot (1 is the classical adaptive lasso; smaller trusts it less).

    Returns
    -------
    ``(n_genes, n_genes)`` target × source array of positive weights (symmetric).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=2000)
    >>> b = a + rng.normal(size=2000)  # a -> b; c is independent
    >>> w = adaptive_penalty_weights(np.c_[a, b, rng.normal(size=2000)])
    >>> bool(w[1, 0] < w[2, 0])
    True
    """
    from sklearn.covariance import LedoitWolf

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] < 3:
        raise GclError(f"z must be (n_cells >= 3, n_genes >= 2); got shape {z.shape}.")
    if not np.isfinite(z).all():
        raise GclError("z contains NaN or infinite values.")
    sd = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    precision = np.linalg.pinv(LedoitWolf().fit(z).covariance_)
    d = np.sqrt(np.clip(np.diag(precision), 1e-12, None))
    rho = np.abs(precision / np.outer(d, d))
    np.fill_diagonal(rho, 0.0)
    top = rho.max()
    w = (rho / top + floor) ** -float(exponent) if top > 0 else np.ones_like(rho)
    off = ~np.eye(len(w), dtype=bool)
    w /= np.median(w[off])
    np.fill_diagonal(w, 1.0)
    return w


# ---------------------------------------------------------------------- Lightning glue
class _IndexData(torch.utils.data.Dataset):
    """Dataset indexed by a whole batch of cell indices at once (no per-item collate)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, idx: Any) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(idx, device=self.tensors[0].device)
        return tuple(t[idx] for t in self.tensors)


_MODULE_CLASS: Any = None


def _lightning_module_class() -> Any:
    """Build the LightningModule class on first use (Lightning is a slow import)."""
    global _MODULE_CLASS
    if _MODULE_CLASS is not None:
        return _MODULE_CLASS
    import lightning.pytorch as pl

    class GRNTrainingModule(pl.LightningModule):
        """Lightning wrapper: Adam on the smooth loss, proximal step after every update."""

        def __init__(self, model, *, y_scale, l1, pen_w, lr, a_max):
            super().__init__()
            self.model = model
            self.register_buffer("y_scale", y_scale)
            self.register_buffer("pen_w", pen_w)
            self.l1 = float(l1)
            self.lr = float(lr)
            self.a_max = float(a_max)
            self.history: list[dict[str, float]] = []
            self._epoch_sums: list[torch.Tensor] = []
            self._last_val: LossOutput | None = None

        def training_step(self, batch, batch_idx):
            x, y, w = batch
            smooth, mse = _smooth_loss(self.model, x, y, w, self.y_scale)
            self._epoch_sums.append(torch.stack([mse * w.sum(), w.sum()]))
            return smooth

        def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
            optimizer.step(closure=optimizer_closure)
            opt = getattr(optimizer, "optimizer", optimizer)
            _prox(self.model, opt, self.l1, self.pen_w, self.a_max)

        def validation_step(self, batch, batch_idx):
            x, y, w = batch
            parts = _loss(self.model, x, y, w, self.y_scale, self.l1, self.pen_w)
            self._last_val = parts
            self.log("val_total", parts.total, prog_bar=True)
            self.log("val_mse", parts.mse)

        def on_train_epoch_end(self):
            sums = torch.stack(self._epoch_sums).sum(0)
            self._epoch_sums = []
            # the penalty at the end of the epoch (it changes slowly within one)
            part = LossOutput(sums[0] / sums[1], _penalty(self.model, self.l1, self.pen_w))
            row = {"epoch": int(self.current_epoch)}
            row.update({f"train_{k}": v for k, v in part.to_dict().items()})
            if self._last_val is not None:
                row.update({f"val_{k}": v for k, v in self._last_val.to_dict().items()})
            row["n_edges"] = int(self.model.adjacency().sum())
            self.history.append(row)
            logger.debug("GRN fit epoch %d: %s", row["epoch"], row)

        def configure_optimizers(self):
            params = [p for p in self.model.parameters() if p.requires_grad]
            return torch.optim.Adam(params, lr=self.lr)

    _MODULE_CLASS = GRNTrainingModule
    return _MODULE_CLASS


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's banner and dataloader hints for the duration of a fit."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*number of training batches.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*isinstance.*treespec.*")
            yield
    finally:
        for lg, lev in zip(loggers, levels):
            lg.setLevel(lev)


def _train(
    model: GRNModel,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    y_scale: torch.Tensor,
    pen_w: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    *,
    l1: float,
    lr: float,
    max_epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    progress: bool,
) -> list[dict[str, float]]:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping

    module = _lightning_module_class()(
        model, y_scale=y_scale, l1=l1, pen_w=pen_w, lr=lr, a_max=_A_MAX
    )
    gen = torch.Generator().manual_seed(int(seed) + 1)
    train_data = _IndexData(x[train_idx], y[train_idx], w[train_idx])
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(len(train_idx)), generator=gen),
        batch_size=min(batch_size, len(train_idx)),
        drop_last=False,
    )
    train_loader = torch.utils.data.DataLoader(train_data, sampler=sampler, batch_size=None)
    val_data = _IndexData(x[val_idx], y[val_idx], w[val_idx])
    val_loader = torch.utils.data.DataLoader(
        val_data, sampler=[list(range(len(val_idx)))], batch_size=None
    )
    accelerator = "gpu" if x.device.type == "cuda" else "cpu"
    with _quiet_lightning():
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            num_sanity_val_steps=0,
            callbacks=[EarlyStopping("val_total", patience=patience, min_delta=1e-5)],
        )
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    return module.history


def _split(n: int, val_fraction: float, seed: int, device: torch.device):
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=gen)
    n_val = max(1, round(n * val_fraction))
    return perm[n_val:].to(device), perm[:n_val].to(device)


def _default_epochs(n_train: int, batch_size: int) -> int:
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    return int(min(500, max(50, math.ceil(2000 / steps_per_epoch))))


# ---------------------------------------------------------------------- public entry points
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
        (:func:`default_l1`). Measured on random 10-gene Hill-logic networks (6 networks,
        exact and SNR-1 drift): fractions 0.005–0.02 rank edges best (AUPRC ratio 4.4–4.5 of
        a possible ~5); 0.1 loses true edges (3.2 with noisy drift).
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
    dev = _resolve_device(device)
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


def bootstrap_confidence(
    x: Any,
    dxdt: Any = None,
    *,
    n_boot: int = 8,
    model: GRNModel | None = None,
    l1: float | None = None,
    max_epochs: int | None = None,
    pilot: Any = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> np.ndarray:
    """Per-edge selection frequency over bootstrap resamples of the cells.

    Each resample draws ``n_cells`` cells with replacement (expressed as integer cell weights,
    so duplicated cells are not split between training and held-out sets), refits with the
    same ``l1``, warm-started from ``model`` and for few epochs, and records which edges are
    non-zero. Warm starts make the refits fast; they measure the stability of the fitted
    network under resampling rather than of fits from scratch. With ``pilot``, each resample
    also recomputes the adaptive connection cost (:func:`adaptive_penalty_weights`) from its
    own cells, so the frequencies include the pilot's sampling variability.

    Parameters
    ----------
    x, dxdt
        As for :func:`fit`.
    n_boot
        Number of bootstrap refits.
    model
        Fitted model to warm-start from; fitted here with ``fit_kwargs`` when ``None``.
    l1
        Connection cost; default: the one ``model`` was fitted with (``model.l1``), so the
        frequencies refer to the same sparsity level.
    max_epochs
        Epochs per refit (default 40).
    pilot
        ``(n_cells, n_genes)`` expression the adaptive penalty weights are computed from (as
        passed to :func:`adaptive_penalty_weights`); replaces ``penalty_weights`` in
        ``fit_kwargs`` by each resample's own weights. ``None``: the weights in
        ``fit_kwargs`` (if any) are used for every resample.
    seed
        Seed of the resampling and refits.
    **fit_kwargs
        Passed to :func:`fit` (``mode``, ``hidden``, ``mask``, ``prior``, ...).

    Returns
    -------
    ``(G, G)`` target × source array of frequencies in [0, 1] (the ``confidence`` column of
    :func:`~gclandscape.engine._grn.edges`).

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._grn_fit import bootstrap_confidence
    >>> x = torch.rand(100, 3)
    >>> dxdt = torch.stack([1 - x[:, 0], x[:, 0] - x[:, 1], x[:, 1] - x[:, 2]], 1)
    >>> bootstrap_confidence(x, dxdt, n_boot=2, hidden=2, max_epochs=3).shape
    (3, 3)
    """
    if int(n_boot) != n_boot or n_boot < 1:
        raise GclError(f"n_boot must be a positive integer, got {n_boot!r}.")
    mode = fit_kwargs.get("mode", "drift")
    device = _resolve_device(fit_kwargs.get("device", "cpu"))
    xt, yt, wt = _check_inputs(x, dxdt, mode, fit_kwargs.get("weights"), device)
    n = xt.shape[0]
    if model is None:
        model, _ = fit(x, dxdt, l1=l1, seed=seed, **fit_kwargs)
    if l1 is None:
        l1 = model.l1
    if l1 is None:
        raise GclError("model has no fitted l1 (built by hand?); pass l1= explicitly.")
    kwargs = {k: v for k, v in fit_kwargs.items() if k not in ("weights", "max_epochs")}
    kwargs["hidden"] = model.hidden
    if pilot is not None:
        pilot = np.asarray(pilot, dtype=np.float64)
        if pilot.ndim != 2 or pilot.shape != (n, model.n_genes):
            raise GclError(
                f"pilot must be (n_cells, n_genes) = ({n}, {model.n_genes}) like x; "
                f"got shape {pilot.shape}."
            )
    epochs = 40 if max_epochs is None else int(max_epochs)
    gen = np.random.default_rng(seed)
    counts = np.zeros((model.n_genes, model.n_genes))
    y_in = None if mode == "steady_state" else yt.cpu().numpy()
    for b in range(int(n_boot)):
        idx = gen.integers(0, n, n)
        w_b = np.bincount(idx, minlength=n).astype(np.float32) * wt.cpu().numpy()
        if (w_b > 0).sum() < MIN_CELLS:
            raise GclError(f"bootstrap resample {b} has fewer than {MIN_CELLS} distinct cells.")
        keep = w_b > 0
        if pilot is not None:
            kwargs["penalty_weights"] = adaptive_penalty_weights(pilot[idx])
        m_b, _ = fit(
            xt.cpu().numpy()[keep],
            None if y_in is None else y_in[keep],
            l1=float(l1),
            weights=w_b[keep],
            max_epochs=epochs,
            seed=seed + 1000 + b,
            init=model,
            **kwargs,
        )
        counts += m_b.adjacency().numpy()
    return counts / int(n_boot)


def _bool_square(value: Any, g: int, name: str) -> torch.Tensor:
    arr = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)
    if arr.shape != (g, g):
        raise GclError(f"{name} must be a ({g}, {g}) target × source array, got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise GclError(f"{name} contains NaN or infinite values.")
    return torch.from_numpy(arr != 0)
