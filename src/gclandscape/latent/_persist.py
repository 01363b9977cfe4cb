"""Saving and loading a :class:`LatentModel` without pickle: a JSON description and the torch
module's ``state_dict`` (read back with ``torch.load(weights_only=True)``). scvi-tools' own
``save``/``load`` pickle the registry, which the design rules out."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import GclError, GclFileNotFoundError, GclFormatError
from .._validate import check_counts
from ._model import LatentModel
from ._setup import (
    _FORMAT_VERSION,
    _META_FILE,
    _WEIGHTS_FILE,
    MODELS,
    _model_class,
    _plain,
    _setup,
    _work_adata,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


def save_model(model: LatentModel, dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` to a folder: the JSON description and the torch ``state_dict``
    (see :meth:`LatentModel.save`, which calls this)."""
    import torch

    path = Path(dir)
    if (path / _META_FILE).exists() and not overwrite:
        raise GclError(f"{path} already holds a saved model. Pass overwrite=True to replace it.")
    path.mkdir(parents=True, exist_ok=True)
    init = model.scvi_model.init_params_
    kwargs = dict(init.get("non_kwargs", {}))
    for group in init.get("kwargs", {}).values():
        kwargs.update(group)
    kwargs.pop("datamodule", None)
    meta = {
        "format_version": _FORMAT_VERSION,
        "kind": model.kind,
        "layer": model.layer,
        "batch_key": model.batch_key,
        "labels_key": model.labels_key,
        "batch_categories": model.batch_categories,
        "label_categories": model.label_categories,
        "var_names": [str(v) for v in model.var_names],
        "init_kwargs": _plain(kwargs),
        "info": _plain(model.info),
    }
    state = {k: v.detach().cpu() for k, v in model.scvi_model.module.state_dict().items()}
    torch.save(state, path / _WEIGHTS_FILE)
    (path / _META_FILE).write_text(json.dumps(meta, indent=1))
    return path


def _load_weights(file: Path) -> dict:
    """The tensors of a ``module.pt`` written by :meth:`LatentModel.save`, read without pickle.

    Anything else (a damaged file, a pickled object, another program's checkpoint) is a
    :class:`GclFormatError` naming the file. torch's own message is not passed on: it advises
    ``weights_only=False``, which would run whatever code the file holds.
    """
    import torch

    problem = None
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickle protocols: the error says it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        problem = f"it cannot be read as tensors ({type(err).__name__})"
    else:
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            problem = f"it holds a {type(state).__name__}, not a dict of named tensors"
    if problem is not None:
        raise GclFormatError(
            f"{file}: not the weights of a gclandscape / scvi-tools latent model saved by "
            f"model.save(dir): {problem}. Fix: save the model again with model.save(dir) "
            "(or copy the whole saved folder again) and load that folder."
        ) from None
    return state


def load(dir: str | Path, adata: AnnData, *, accelerator: str = "auto") -> LatentModel:
    """Load a model saved with :meth:`LatentModel.save`, attached to ``adata``.

    Parameters
    ----------
    dir
        Folder written by :meth:`LatentModel.save`.
    adata
        Cells with the model's genes in the count layer it was trained on (and its batch
        column, if any). It is not modified; :meth:`LatentModel.encode` without arguments
        then encodes these cells.
    accelerator
        ``"auto"`` puts the model on a GPU when available, ``"cpu"`` keeps it on the CPU.

    Returns
    -------
    The :class:`LatentModel`, which gives the same latent as the saved one.

    Raises
    ------
    GclFileNotFoundError
        When ``dir`` holds no saved model.
    GclFormatError
        When the saved files cannot be read or do not match the model.

    Examples
    --------
    >>> import tempfile, anndata as ad, numpy as np
    >>> import gclandscape as gcl
    >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
    >>> adata = ad.AnnData(counts, layers={"counts": counts})
    >>> model = gcl.latent.fit(adata, n_latent=2, max_epochs=1,
    ...                        train_kwargs={"enable_progress_bar": False})
    >>> loaded = gcl.latent.load(model.save(tempfile.mkdtemp() + "/m"), adata)
    >>> bool(np.allclose(loaded.encode(adata), model.encode(adata), atol=1e-5))
    True
    """
    import torch

    path = Path(dir)
    if not (path / _META_FILE).is_file() or not (path / _WEIGHTS_FILE).is_file():
        raise GclFileNotFoundError(
            f"{path} holds no saved gclandscape latent model ({_META_FILE} and {_WEIGHTS_FILE} "
            "are expected). Save one with model.save(dir)."
        )
    try:
        meta = json.loads((path / _META_FILE).read_text())
    except (OSError, ValueError) as err:
        raise GclFormatError(f"could not read the saved model in {path}: {err}") from err
    if (
        not isinstance(meta, dict)
        or meta.get("format_version") != _FORMAT_VERSION
        or meta.get("kind") not in MODELS
    ):
        raise GclFormatError(f"{path / _META_FILE} is not a gclandscape latent model file.")
    state = _load_weights(path / _WEIGHTS_FILE)
    kind = meta["kind"]
    layer, batch_key, labels_key = meta["layer"], meta["batch_key"], meta["labels_key"]
    check_counts(adata, layer)
    work = _work_adata(
        adata,
        layer=layer,
        var_names=pd.Index(meta["var_names"]),
        batch_key=batch_key,
        batch_categories=meta["batch_categories"],
        labels_key=labels_key,
        label_categories=meta["label_categories"],
    )
    _setup(kind, work, batch_key=batch_key, labels_key=labels_key)
    scvi_model = _model_class(kind)(work, **meta["init_kwargs"])
    try:
        scvi_model.module.load_state_dict(state)
    except RuntimeError as err:
        raise GclFormatError(f"the weights in {path} do not match the saved model: {err}") from err
    scvi_model.is_trained_ = True
    scvi_model.module.eval()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        scvi_model.to_device("cuda")
    info = meta.get("info", {})
    return LatentModel(
        scvi_model,
        kind=kind,
        layer=layer,
        batch_key=batch_key,
        labels_key=labels_key,
        batch_categories=meta["batch_categories"],
        label_categories=meta["label_categories"],
        info=info,
    )
