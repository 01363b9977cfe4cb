""":class:`LatentModel`: a trained scvi-tools model that encodes cells and decodes latent points.

Training is in ``_fit``, saving and loading in ``_persist``, the hand-over of data to
scvi-tools in ``_setup``.

scvi-tools registers a dataset by writing hidden columns (``_scvi_batch``, ``_scvi_labels``)
and ids into the AnnData it is given. gclandscape never lets it write into the user's object:
the model is set up on a lightweight AnnData that shares the count matrix (no copy) and has
its own small ``.obs`` with only the batch/labels columns. Only the outputs documented in
:func:`fit` are written to the user's AnnData.

Models are saved without pickle: the torch module's ``state_dict`` (read back with
``torch.load(weights_only=True)``) plus a JSON file with the model kind, the constructor
arguments, the setup (layer, batch and label keys with their category order) and the gene
names. scvi-tools' own ``save``/``load`` pickle the registry, which the design rules out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError
from .._validate import check_counts
from ._setup import (
    _CHUNK,
    DENOISED_LIBRARY_SIZE,
    _quiet_setup_transfer,
    _work_adata,
    default_max_epochs,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["LatentModel", "default_max_epochs"]


class LatentModel:
    """A trained scvi-tools model tied to gclandscape's conventions.

    Returned by :func:`fit` and :func:`load`; not meant to be constructed by hand.

    Attributes
    ----------
    kind
        ``"scvi"``, ``"ldvae"`` or ``"scanvi"``.
    scvi_model
        The underlying :mod:`scvi.model` object (set up on a private lightweight AnnData).
    var_names
        Genes of the model, in the order of the columns of :meth:`decode`.
    n_latent
        Number of latent dimensions.
    info
        Parameters and training summary (the same dict :func:`fit` writes to ``.uns``).

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> import gclandscape as gcl
    >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
    >>> adata = ad.AnnData(counts, layers={"counts": counts})
    >>> model = gcl.latent.fit(adata, n_latent=2, max_epochs=1,
    ...                        train_kwargs={"enable_progress_bar": False})
    >>> model.decode(np.zeros((3, 2))).shape
    (3, 20)
    """

    def __init__(
        self,
        scvi_model,
        *,
        kind: str,
        layer: str | None,
        batch_key: str | None,
        labels_key: str | None,
        batch_categories: list[str] | None,
        label_categories: list[str] | None,
        info: dict[str, Any],
    ) -> None:
        self.scvi_model = scvi_model
        self.kind = kind
        self.layer = layer
        self.batch_key = batch_key
        self.labels_key = labels_key
        self.batch_categories = batch_categories
        self.label_categories = label_categories
        self.info = info

    def __repr__(self) -> str:
        batches = f", batches={len(self.batch_categories)}" if self.batch_categories else ""
        return (
            f"LatentModel(kind={self.kind!r}, n_genes={len(self.var_names)}, "
            f"n_latent={self.n_latent}{batches})"
        )

    @property
    def var_names(self) -> pd.Index:
        return self.scvi_model.adata.var_names

    @property
    def n_latent(self) -> int:
        return int(self.scvi_model.module.n_latent)

    @property
    def device(self):
        return self.scvi_model.module.device

    # ------------------------------------------------------------------ encoding
    def _work(self, adata: AnnData) -> AnnData:
        return _work_adata(
            adata,
            layer=self.layer,
            var_names=self.var_names,
            batch_key=self.batch_key,
            batch_categories=self.batch_categories,
            labels_key=self.labels_key,
            label_categories=self.label_categories,
        )

    def encode(self, adata: AnnData | None = None) -> np.ndarray:
        """Latent means (cells × ``n_latent``) of the training cells or of new cells.

        Parameters
        ----------
        adata
            Cells to encode, with the model's genes (any order, extra genes ignored) in the
            count layer the model was trained on, and the batch column when the model has
            batches. ``None`` encodes the training cells. The AnnData is not modified.

        Returns
        -------
        Array of shape ``(n_cells, n_latent)``: the mean of the approximate posterior.

        Examples
        --------
        >>> import anndata as ad, numpy as np
        >>> import gclandscape as gcl
        >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
        >>> adata = ad.AnnData(counts, layers={"counts": counts})
        >>> model = gcl.latent.fit(adata, n_latent=2, max_epochs=1,
        ...                        train_kwargs={"enable_progress_bar": False})
        >>> model.encode(adata[:5]).shape
        (5, 2)
        """
        if adata is None:
            return np.asarray(self.scvi_model.get_latent_representation(give_mean=True))
        if adata.n_obs == 0:
            return np.zeros((0, self.n_latent), dtype=np.float32)
        check_counts(adata, self.layer)
        work = self._work(adata)
        with _quiet_setup_transfer():
            latent = self.scvi_model.get_latent_representation(adata=work, give_mean=True)
        return np.asarray(latent)

    # ------------------------------------------------------------------ decoding
    def _batch_codes(self, batch: str | None, n: int) -> list[Any]:
        """Per-call batch indices: one index, or all batches to average over."""
        import torch

        n_batch = len(self.batch_categories) if self.batch_categories else 1
        if batch is None:
            codes = range(n_batch)
        else:
            if not self.batch_categories or str(batch) not in self.batch_categories:
                known = self.batch_categories or []
                raise GclError(
                    f"batch={batch!r} is not a batch of this model. Known batches: {known} "
                    "(pass batch=None to average over all batches)."
                )
            codes = [self.batch_categories.index(str(batch))]
        return [torch.full((n, 1), c, dtype=torch.long, device=self.device) for c in codes]

    def _decode(self, z: np.ndarray, batch_index: list, log_library, *, counts: bool) -> np.ndarray:
        import torch

        module = self.scvi_model.module
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                zt = torch.as_tensor(z, dtype=torch.float32, device=self.device)
                outs = []
                for b in batch_index:
                    px = module.generative(z=zt, library=log_library, batch_index=b)["px"]
                    value = px.mean if counts else px.scale
                    outs.append(value)
                out = torch.stack(outs).mean(0)
        finally:
            module.train(was_training)
        return out.cpu().numpy()

    def decode(
        self, z, *, library_size: float | None = None, batch: str | None = None
    ) -> np.ndarray:
        """Expression of every gene decoded from latent points (the scvi-tools decoder).

        Parameters
        ----------
        z
            Latent points, array-like of shape ``(n_points, n_latent)`` (or ``(n_latent,)``).
        library_size
            ``None`` returns normalised expression (each row sums to 1, the decoder's ``px
            scale``). A number returns expected counts for a cell with that many counts: the mean
            of the model's count distribution (for the default zero-inflated negative binomial
            of scVI this includes the zero-inflation, ``(1 - π) μ``).
        batch
            Batch whose decoder to use; ``None`` averages over all batches of the model (the
            only choice without batches).

        Returns
        -------
        Array of shape ``(n_points, n_genes)`` in the order of :attr:`var_names`.

        Examples
        --------
        >>> import anndata as ad, numpy as np
        >>> import gclandscape as gcl
        >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
        >>> adata = ad.AnnData(counts, layers={"counts": counts})
        >>> model = gcl.latent.fit(adata, n_latent=2, max_epochs=1,
        ...                        train_kwargs={"enable_progress_bar": False})
        >>> expr = model.decode(np.zeros((4, 2)))
        >>> expr.shape, bool(np.allclose(expr.sum(1), 1.0, atol=1e-4))
        ((4, 20), True)
        """
        import torch

        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None, :]
        if z.ndim != 2 or z.shape[1] != self.n_latent:
            raise GclError(
                f"z must have shape (n_points, {self.n_latent}) for this model, got {z.shape}."
            )
        if not np.isfinite(z).all():
            raise GclError("z holds NaN or infinite values; decode needs finite latent points.")
        if library_size is not None and not (np.isfinite(library_size) and library_size > 0):
            raise GclError(f"library_size must be a positive number or None, got {library_size!r}.")
        out = np.empty((z.shape[0], len(self.var_names)), dtype=np.float32)
        for start in range(0, z.shape[0], _CHUNK):
            chunk = z[start : start + _CHUNK]
            lib = torch.full(
                (len(chunk), 1),
                math.log(library_size if library_size is not None else 1.0),
                device=self.device,
            )
            out[start : start + _CHUNK] = self._decode(
                chunk, self._batch_codes(batch, len(chunk)), lib, counts=library_size is not None
            )
        return out

    def _denoised(self, latent: np.ndarray, work: AnnData) -> np.ndarray:
        """Normalised expression at each cell's latent mean, decoded with the cell's batch."""
        import torch

        out = np.empty((latent.shape[0], len(self.var_names)), dtype=np.float32)
        codes = (
            work.obs[self.batch_key].cat.codes.to_numpy().astype(np.int64)
            if self.batch_key is not None
            else np.zeros(latent.shape[0], dtype=np.int64)
        )
        for start in range(0, latent.shape[0], _CHUNK):
            sl = slice(start, start + _CHUNK)
            b = torch.as_tensor(codes[sl], dtype=torch.long, device=self.device)[:, None]
            lib = torch.zeros((len(b), 1), device=self.device)
            out[sl] = self._decode(latent[sl], [b], lib, counts=False)
        out *= np.float32(DENOISED_LIBRARY_SIZE)  # in place: no second cells × genes copy
        return out

    # ------------------------------------------------------------------ LDVAE
    def loadings(self) -> pd.DataFrame:
        """Gene loadings of the linear decoder: DataFrame genes × latent dimensions (LDVAE only).

        Examples
        --------
        >>> import anndata as ad, numpy as np
        >>> import gclandscape as gcl
        >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
        >>> adata = ad.AnnData(counts, layers={"counts": counts})
        >>> model = gcl.latent.fit(adata, model="ldvae", n_latent=2, max_epochs=1,
        ...                        train_kwargs={"enable_progress_bar": False})
        >>> model.loadings().shape
        (20, 2)
        """
        if self.kind != "ldvae":
            raise GclError(
                f"loadings() exists only for the linearly decoded model; this one is "
                f"{self.kind!r}. Fit with gcl.latent.fit(adata, model='ldvae')."
            )
        frame = self.scvi_model.get_loadings()
        frame.columns = [f"latent_{i}" for i in range(frame.shape[1])]
        frame.index.name = "gene"
        return frame

    # ------------------------------------------------------------------ persistence
    def save(self, dir: str | Path, *, overwrite: bool = False) -> Path:
        """Save the model to a folder (no pickle: JSON + a torch ``state_dict``).

        Parameters
        ----------
        dir
            Folder to create (or reuse with ``overwrite=True``).
        overwrite
            Replace the files of an existing saved model.

        Returns
        -------
        The folder path.

        Examples
        --------
        >>> import tempfile, anndata as ad, numpy as np
        >>> import gclandscape as gcl
        >>> counts = np.random.default_rng(0).poisson(3.0, size=(60, 20)).astype(np.float32)
        >>> adata = ad.AnnData(counts, layers={"counts": counts})
        >>> model = gcl.latent.fit(adata, n_latent=2, max_epochs=1,
        ...                        train_kwargs={"enable_progress_bar": False})
        >>> folder = model.save(tempfile.mkdtemp() + "/model")
        >>> gcl.latent.load(folder, adata).n_latent
        2
        """
        from ._persist import save_model

        return save_model(self, dir, overwrite=overwrite)
