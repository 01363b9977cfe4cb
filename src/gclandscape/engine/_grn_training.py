"""The GRN fit's training loop: data-driven initialisation, Lightning module and trainer.

Adam minimises the smooth loss (:mod:`gclandscape.engine._grn_objective`) and the proximal
step of the connection cost (:func:`gclandscape.engine._grn_penalties._prox`) follows every
update; early stopping watches the held-out cells, and every epoch's loss parts go into the
history.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from typing import Any

import torch

from .._utils import logger
from ._grn import GRNModel
from ._grn_objective import LossOutput, _loss, _penalty, _smooth_loss
from ._grn_penalties import _prox

#: Upper bound of the non-negative output weights ``a`` (their projection after every step).
_A_MAX = 10.0


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
