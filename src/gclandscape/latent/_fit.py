"""``gcl.latent.fit``: train an scVI, LDVAE or scANVI model on counts and write the latent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import GclError
from .._keys import Key
from .._utils import logger
from ._model import LatentModel
from ._setup import (
    DENOISED_LIBRARY_SIZE,
    UNLABELED,
    _categories,
    _check_inputs,
    _model_class,
    _plain,
    _setup,
    _work_adata,
    default_max_epochs,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


def fit(
    adata: AnnData,
    *,
    model: str = "scvi",
    layer: str | None = Key.layers.counts,
    batch_key: str | None = None,
    labels_key: str | None = None,
    n_latent: int = 10,
    max_epochs: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    key_added: str = Key.obsm.latent,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
) -> LatentModel:
    """Fit an scvi-tools model to counts and write the latent cell states.

    The model is trained with scvi-tools' own loop (PyTorch Lightning), with 10 % of the
    cells held out for validation and early stopping on the validation ELBO, and scvi-tools'
    progress bar. All genes of ``adata`` are modelled; to model only the highly variable ones,
    pass ``adata[:, adata.var["highly_variable"]].copy()``.

    Parameters
    ----------
    adata
        Annotated data matrix with raw integer counts in ``layer``.
    model
        ``"scvi"`` (:class:`scvi.model.SCVI`), ``"ldvae"`` (:class:`scvi.model.LinearSCVI`,
        linear decoder with interpretable :meth:`LatentModel.loadings`) or ``"scanvi"``
        (:class:`scvi.model.SCANVI`: an SCVI model is trained first, then turned into scANVI
        with :meth:`scvi.model.SCANVI.from_scvi_model` and trained further for
        ``min(10, max(2, round(max_epochs / 3)))`` epochs, scvi-tools' own rule).
    layer
        Layer with the raw counts; ``None`` uses ``.X``.
    batch_key
        Column of ``.obs`` with batches to correct for (no missing values).
    labels_key
        Column of ``.obs`` with cell labels; required for ``"scanvi"``, where missing values
        mark unlabeled cells.
    n_latent
        Number of latent dimensions.
    max_epochs
        Maximum training epochs; ``None`` uses :func:`default_max_epochs` (scvi-tools'
        size heuristic capped at 200 epochs).
    seed
        Seed for scvi-tools (``scvi.settings.seed``, which seeds torch, NumPy and Python's
        ``random`` globally): on CPU the same seed gives the same latent.
    accelerator
        Lightning accelerator: ``"auto"`` uses a GPU when one is available, else the CPU;
        ``"cpu"`` or ``"gpu"`` force one.
    key_added
        Key in ``.obsm`` for the latent.
    model_kwargs
        Extra arguments for the scvi-tools model constructor (e.g. ``gene_likelihood="nb"``,
        ``n_hidden=64``).
    train_kwargs
        Extra arguments for ``train`` (e.g. ``enable_progress_bar=False``,
        ``early_stopping_patience=20``, ``batch_size=256``).

    Returns
    -------
    The trained :class:`LatentModel`. ``adata`` gets

    - ``.obsm[key_added]``: latent means, cells × ``n_latent``;
    - ``.layers["gcl_denoised"]`` (``f"{key_added}_denoised"`` when ``key_added`` is not the
      default): the decoder's normalised expression at each cell's latent mean, decoded with
      the cell's batch, scaled to 10,000 counts per cell (dense float32, cells × genes);
    - ``.uns["gcl_latent"]`` (``f"{key_added}_latent"`` likewise): ``"params"`` (model, layer,
      batch and label keys, n_latent, max_epochs, seed, accelerator, key_added, model and train
      kwargs) and the training summary (epochs used and trained, whether early stopping ended
      training, final training and validation losses, per-epoch ELBO history, device, scvi-tools
      version).

    No other slot of ``adata`` is written (scvi-tools is set up on a private lightweight copy).

    Raises
    ------
    GclError
        Unknown ``model``; missing layer, ``batch_key`` or ``labels_key`` (the message lists
        what exists); negative, non-integer or non-finite values in the count layer (the
        message suggests ``layer=``); no more cells than ``n_latent``; genes with zero counts
        in every cell (named; run :func:`gclandscape.pp.recipe` or filter them).

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> import gclandscape as gcl
    >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
    >>> adata = ad.AnnData(counts, layers={"counts": counts})
    >>> model = gcl.latent.fit(adata, n_latent=2, max_epochs=2,
    ...                        train_kwargs={"enable_progress_bar": False})
    >>> adata.obsm["X_gcl"].shape, adata.uns["gcl_latent"]["epochs_trained"]
    ((60, 2), 2)
    """
    import scvi
    import torch

    _check_inputs(
        adata,
        model=model,
        layer=layer,
        batch_key=batch_key,
        labels_key=labels_key,
        n_latent=n_latent,
        max_epochs=max_epochs,
    )
    model_kwargs = dict(model_kwargs or {})
    train_kwargs = dict(train_kwargs or {})
    if "n_latent" in model_kwargs:
        raise GclError("Pass n_latent= directly, not inside model_kwargs.")

    batch_categories = (
        _categories(adata, batch_key, param="batch_key") if batch_key is not None else None
    )
    label_categories = (
        _categories(adata, labels_key, param="labels_key", unlabeled=True)
        if labels_key is not None
        else None
    )
    work = _work_adata(
        adata,
        layer=layer,
        var_names=adata.var_names,
        batch_key=batch_key,
        batch_categories=batch_categories,
        labels_key=labels_key,
        label_categories=label_categories,
    )
    epochs = int(max_epochs) if max_epochs is not None else default_max_epochs(adata.n_obs)
    train_args = {
        "max_epochs": epochs,
        "accelerator": accelerator,
        "train_size": 0.9,
        "early_stopping": True,
        "check_val_every_n_epoch": 1,
        **train_kwargs,
    }

    scvi.settings.seed = int(seed)
    first_kind = "scvi" if model == "scanvi" else model
    _setup(first_kind, work, batch_key=batch_key, labels_key=labels_key)
    scvi_model = _model_class(first_kind)(work, n_latent=int(n_latent), **model_kwargs)
    logger.info("latent: training %s for up to %d epochs", type(scvi_model).__name__, epochs)
    scvi_model.train(**train_args)
    history = _history(scvi_model)
    if model == "scanvi":
        scanvi_epochs = int(min(10, max(2, round(epochs / 3))))
        scvi_model = scvi.model.SCANVI.from_scvi_model(
            scvi_model, unlabeled_category=UNLABELED, labels_key=labels_key
        )
        scvi_model.train(**{**train_args, "max_epochs": scanvi_epochs})
        scanvi_history = _history(scvi_model)
        history = {
            "pretrain_elbo_train": history.get("elbo_train", []),
            "pretrain_elbo_validation": history.get("elbo_validation", []),
            **scanvi_history,
        }
        epochs_used = epochs + scanvi_epochs
    else:
        epochs_used = epochs

    latent_model = LatentModel(
        scvi_model,
        kind=model,
        layer=layer,
        batch_key=batch_key,
        labels_key=labels_key,
        batch_categories=batch_categories,
        label_categories=label_categories,
        info={},
    )
    latent = latent_model.encode()
    epochs_trained = len(history.get("elbo_train", [])) + len(
        history.get("pretrain_elbo_train", [])
    )
    info = {
        "params": {
            "model": model,
            "layer": layer,
            "batch_key": batch_key,
            "labels_key": labels_key,
            "n_latent": int(n_latent),
            "max_epochs": max_epochs,
            "seed": int(seed),
            "accelerator": accelerator,
            "key_added": key_added,
            "model_kwargs": _plain(model_kwargs),
            "train_kwargs": _plain(train_kwargs),
        },
        "scvi_class": type(scvi_model).__name__,
        "max_epochs_used": int(epochs_used),
        "epochs_trained": int(epochs_trained),
        "stopped_early": bool(epochs_trained < epochs_used),
        "final_losses": {k: float(v[-1]) for k, v in history.items() if len(v)},
        "history": {k: np.asarray(v, dtype=np.float64) for k, v in history.items()},
        "device": str(latent_model.device),
        "denoised_library_size": DENOISED_LIBRARY_SIZE,
        "scvi_version": str(scvi.__version__),
        "torch_version": str(torch.__version__),
    }
    latent_model.info = info
    denoised = latent_model._denoised(latent, work)

    adata.obsm[key_added] = latent.astype(np.float32)
    adata.layers[_denoised_key(key_added)] = denoised
    adata.uns[_uns_key(key_added)] = info
    return latent_model


def _denoised_key(key_added: str) -> str:
    return Key.layers.denoised if key_added == Key.obsm.latent else f"{key_added}_denoised"


def _uns_key(key_added: str) -> str:
    return Key.uns.latent if key_added == Key.obsm.latent else f"{key_added}_latent"


def _history(scvi_model) -> dict[str, list[float]]:
    """Per-epoch ELBO and loss curves from scvi-tools' history (train and validation)."""
    keep = ("elbo_train", "elbo_validation", "reconstruction_loss_validation", "train_loss")
    out = {}
    for key in keep:
        frame = scvi_model.history.get(key)
        if frame is not None and len(frame):
            out[key] = [float(v) for v in np.asarray(frame.iloc[:, 0], dtype=float)]
    return out
