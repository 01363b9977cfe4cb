"""``gcl.io.read``: one entry point for every single-cell file format gclandscape accepts.

The readers live by format family: ``_text`` (csv/tsv/txt), ``_tenx`` (10x Matrix Market
and .h5), ``_stores`` (.h5ad, .zarr, .loom), ``_beeline``; ``_formats`` names the formats,
detects them from a path and translates dependency errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
from scipy import sparse

from .._errors import GclError, GclFileNotFoundError
from .._keys import Key
from .._validate import integer_summary
from ._beeline import _read_beeline, read_reference_network
from ._checks import as_float_counts, check_not_empty, check_values, warn_and_make_unique
from ._formats import (
    _BEELINE_EXPRESSION,
    _COUNT_FORMATS,
    _TEXT_FORMATS,
    FORMATS,
    _detect_format,
    _normalise_format,
)
from ._stores import _read_h5ad, _read_loom, _read_zarr
from ._tenx import _read_10x_h5, _read_10x_mtx
from ._text import _read_text, detect_genes_as_rows

__all__ = ["FORMATS", "detect_genes_as_rows", "read", "read_reference_network"]

_READERS: dict[str, Callable[..., ad.AnnData]] = {
    "h5ad": _read_h5ad,
    "10x_h5": _read_10x_h5,
    "10x_mtx": _read_10x_mtx,
    "loom": _read_loom,
    "zarr": _read_zarr,
    "beeline": _read_beeline,
}


def _finish(adata: ad.AnnData, path: Path, fmt: str) -> ad.AnnData:
    """Checks and the counts layer, shared by every format."""
    check_not_empty(adata.n_obs, adata.n_vars, file=path)
    warn_and_make_unique(adata, file=path, stacklevel=4)
    X = adata.X
    if X is None:
        return adata
    if not sparse.issparse(X) and not isinstance(X, np.ndarray):
        X = adata.X = np.asarray(X)
    summary = integer_summary(X)
    integer = summary[0]
    if integer and fmt in _COUNT_FORMATS and X.dtype != np.float32:
        X = adata.X = as_float_counts(X)
        summary = integer_summary(X)
    # AnnData stores may hold processed values (scaled, centred): negative values are fine
    # there unless .X holds whole numbers, i.e. counts.
    store = fmt not in _COUNT_FORMATS
    check_values(
        X,
        file=path,
        obs_names=adata.obs_names,
        var_names=adata.var_names,
        allow_negative=store and not integer,
        summary=summary,
    )
    counts = Key.layers.counts
    if counts in adata.layers:
        check_values(
            adata.layers[counts],
            file=path,
            obs_names=adata.obs_names,
            var_names=adata.var_names,
            what=f"layer {counts!r}",
        )
    elif integer:
        adata.layers[counts] = X.copy()
    return adata


def read(
    path: str | Path, *, format: str | None = None, genes_as_rows: bool | None = None
) -> ad.AnnData:
    """Read single-cell expression data into an AnnData (cells × genes).

    The format is detected from the path unless ``format`` is given:

    * ``.h5ad``: AnnData (:func:`anndata.read_h5ad`);
    * ``.h5``: 10x Genomics Cell Ranger HDF5, v2 or v3+ (:func:`scanpy.read_10x_h5`, only
      'Gene Expression' features); an AnnData file named ``.h5`` is recognised and read as one;
    * a folder with ``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]`` and ``features.tsv[.gz]`` or
      ``genes.tsv[.gz]``: 10x Matrix Market (a common prefix such as ``sampleA_`` is allowed,
      a path to the ``.mtx`` file works too; the barcode and feature counts must match the
      matrix);
    * ``.loom``: :func:`anndata.io.read_loom` (cell names from ``CellID`` or ``obs_names``,
      gene names from ``Gene`` or ``var_names``);
    * ``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``: a text matrix, a header line of names
      then one name and one value per column on each line (``.txt``: tab, comma or whitespace);
    * ``.zarr`` (or a folder holding ``zarr.json``/``.zgroup``): :func:`anndata.read_zarr`;
    * a BEELINE folder: ``ExpressionData.csv`` (genes × cells), ``PseudoTime.csv`` (one
      ``.obs`` column per lineage, named as in the file, NaN where a cell is not on it) and
      ``refNetwork.csv`` (``.uns["gcl_reference_network"]``: a DataFrame with columns
      ``source``, ``target`` and ``sign`` = +1 activation / −1 repression).

    Whether a text matrix has genes or cells as rows is taken from ``genes_as_rows``; when it
    is ``None`` it is detected from the names (see :func:`detect_genes_as_rows`: cell
    barcodes, Ensembl IDs, mitochondrial and ribosomal gene symbols; a file named
    ``ExpressionData.csv`` is BEELINE's genes × cells) and an error asks for it when the names
    do not tell.

    Integer-valued data (every value a whole number) are also stored in
    ``.layers["counts"]`` unless the file has that layer already. ``.X`` keeps the file's
    values; integer counts from 10x, Matrix Market, loom and text files are stored as float32
    (exact up to 2**24, float64 beyond), as scanpy's readers do, while ``.h5ad`` and ``.zarr``
    keep their dtype. Duplicate gene (or cell) names are made unique with a
    :class:`UserWarning` that names them.

    Parameters
    ----------
    path
        A file or folder.
    format
        One of ``"h5ad"``, ``"10x_h5"``, ``"10x_mtx"``, ``"loom"``, ``"csv"``, ``"tsv"``,
        ``"txt"``, ``"zarr"``, ``"beeline"``; ``None`` detects it from the path.
    genes_as_rows
        For text matrices only: ``True`` if each row is a gene, ``False`` if each row is a cell,
        ``None`` to detect it.

    Returns
    -------
    AnnData with cells as observations and genes as variables.

    Raises
    ------
    GclFileNotFoundError
        The path (or a file a folder format needs) does not exist.
    GclFormatError
        Unknown format; an empty matrix; negative, NaN or infinite values (negative values are
        accepted in ``.h5ad``/``.zarr`` files whose ``.X`` is not integer-valued, such as
        scaled data); non-numeric text cells; barcodes or features that do not match the
        matrix; a truncated or corrupt file; an orientation that cannot be detected.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import gclandscape as gcl
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "counts.csv"
    >>> _ = p.write_text("gene,AAACCTGAGAAGGCCT-1,AAACCTGAGACAGACC-1\\nGata1,3,0\\nmt-Co1,1,7\\n")
    >>> adata = gcl.io.read(p)
    >>> adata.shape, list(adata.var_names), adata.layers["counts"].sum()
    ((2, 2), ['Gata1', 'mt-Co1'], np.float32(11.0))
    """
    path = Path(path).expanduser()
    if genes_as_rows is not None and not isinstance(genes_as_rows, bool | np.bool_):
        raise GclError(
            f"genes_as_rows={genes_as_rows!r} must be True (rows are genes), False (rows are "
            "cells) or None (detect)."
        )
    if not path.exists():
        parent = path.parent
        hint = (
            f"the folder {parent} exists but has no {path.name!r}"
            if parent.is_dir()
            else f"the folder {parent} does not exist either"
        )
        raise GclFileNotFoundError(
            f"{path}: no such file or folder ({hint}; relative paths are taken from "
            f"{Path.cwd()}). Fix: check the path and its spelling."
        )
    fmt = _detect_format(path) if format is None else _normalise_format(format)
    if fmt in _TEXT_FORMATS:
        if genes_as_rows is None and path.name == _BEELINE_EXPRESSION:
            genes_as_rows = True  # BEELINE's convention
        adata = _read_text(path, fmt=fmt, genes_as_rows=genes_as_rows)
    else:
        if genes_as_rows is not None:
            raise GclError(
                f"genes_as_rows= only applies to text matrices (csv/tsv/txt), but {path} is "
                f"read as {FORMATS[fmt]}, whose orientation is stored in the file. Fix: leave "
                "genes_as_rows=None (transpose the AnnData with .T afterwards if you must)."
            )
        adata = _READERS[fmt](path)
    return _finish(adata, path, fmt)
