"""Input checks shared by the tools: each raises a :class:`~gclandscape._errors.GclError` early.

Every message names the problem and the fix, so that a user never sees a stack trace from deep
inside scanpy or scvi-tools for a mistake in their input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from ._errors import GclError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

_MAX_LISTED = 20
_BLOCK = 1 << 20


def listing(names: Iterable[Any], *, limit: int = _MAX_LISTED, quote: bool = True) -> str:
    """Comma-separated, quoted names for an error message, cut after ``limit`` entries.

    Parameters
    ----------
    names
        The names (anything; shown as ``repr(str(name))``).
    limit
        At most this many are shown; the rest are counted.
    quote
        Quote each name (``False``: bare names, for lists a user copies into a command line).

    Returns
    -------
    The listing, or ``"(none)"`` for no names.

    Examples
    --------
    >>> listing(["Gata1", "Spi1", "Cebpa"], limit=2)
    "'Gata1', 'Spi1', … (1 more)"
    >>> listing(["Gata1", "Spi1"], quote=False)
    'Gata1, Spi1'
    >>> listing([])
    '(none)'
    """
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) if quote else n for n in names[:limit])
    if len(names) > limit:
        shown += f", … ({len(names) - limit} more)"
    return shown or "(none)"


def layer_label(layer: str | None) -> str:
    """Human-readable name of a layer (``None`` is ``.X``)."""
    return ".X" if layer is None else f"layer {layer!r}"


def check_obs_key(adata: AnnData, key: str, *, param: str = "key") -> None:
    """Raise when ``key`` is not a column of ``adata.obs``; the message lists the columns.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> a = ad.AnnData(np.ones((2, 1)), obs=pd.DataFrame({"g": ["a", "b"]}, index=["c1", "c2"]))
    >>> check_obs_key(a, "g")
    """
    if key not in adata.obs.columns:
        raise GclError(
            f"{param}={key!r} is not a column of adata.obs. "
            f"Available columns: {listing(adata.obs.columns)}. Pass one of them."
        )


def check_layer(adata: AnnData, layer: str | None, *, param: str = "layer") -> None:
    """Raise when ``layer`` (``None`` meaning ``.X``) does not exist in ``adata``.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> check_layer(ad.AnnData(np.ones((2, 1))), None)
    """
    if layer is None:
        if adata.X is None:
            raise GclError(
                "adata.X is empty. Pass layer= naming the layer that holds the data; "
                f"available layers: {listing(adata.layers.keys())}."
            )
        return
    if layer not in adata.layers:
        raise GclError(
            f"{param}={layer!r} is not a layer of adata. Available layers: "
            f"{listing(adata.layers.keys())}. Pass one of them, or {param}=None to use adata.X."
        )


def get_matrix(adata: AnnData, layer: str | None):
    """The matrix of ``layer`` (``None`` is ``.X``), checked to exist."""
    check_layer(adata, layer)
    return adata.X if layer is None else adata.layers[layer]


def values_of(matrix) -> np.ndarray:
    """The stored values of a dense or sparse matrix as a flat array (a view, never a copy;
    the zeros a sparse matrix does not store are left out).

    Examples
    --------
    >>> values_of(np.eye(2)).tolist()
    [1.0, 0.0, 0.0, 1.0]
    """
    if sparse.issparse(matrix):
        if not hasattr(matrix, "data") or matrix.format not in {"csr", "csc", "coo"}:
            matrix = matrix.tocsr()
        return np.asarray(matrix.data)
    arr = np.asarray(matrix)
    return arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel(order="K")


def integer_summary(matrix) -> tuple[bool, Any, Any]:
    """Whether every stored value is a whole number, and the smallest and largest value.

    The one home of the integer (count) check: one pass over the values in blocks of 2**20,
    so the rounding buffer stays in cache and a large matrix is read from memory once. NaN
    propagates into the minimum and maximum and is not a whole number; infinity is kept in
    the maximum (a caller that needs finite values checks it). Non-numeric data are not whole.

    Examples
    --------
    >>> integer_summary(np.array([[0.0, 3.0], [-1.0, 2.0]]))
    (True, np.float64(-1.0), np.float64(3.0))
    """
    data = values_of(matrix)
    if data.size == 0:
        return True, 0.0, 0.0
    kind = data.dtype.kind
    if kind in "iub":
        return True, data.min(), data.max()
    if kind != "f":
        return False, np.nan, np.nan
    integer, lo, hi = True, data.dtype.type(np.inf), data.dtype.type(-np.inf)
    buf = np.empty(min(data.size, _BLOCK), dtype=data.dtype)
    for start in range(0, data.size, _BLOCK):
        block = data[start : start + _BLOCK]
        lo = np.minimum(lo, block.min())  # np.minimum propagates NaN, builtin min does not
        hi = np.maximum(hi, block.max())
        if integer:
            out = buf[: block.size]
            np.rint(block, out=out)
            integer = bool(np.array_equal(out, block))  # NaN != NaN: NaN is not whole
    return integer, lo, hi


def is_integer_matrix(matrix) -> bool:
    """Whether every value is a finite, non-negative integer (a count matrix).

    Examples
    --------
    >>> is_integer_matrix(np.array([[0, 2], [1, 3]]))
    True
    >>> is_integer_matrix(np.array([[0.5, 2.0]]))
    False
    """
    integer, lo, hi = integer_summary(matrix)
    return bool(integer and lo >= 0 and np.isfinite(hi))


def check_finite(matrix, *, name: str) -> None:
    """Raise when ``matrix`` holds NaN or infinite values.

    Examples
    --------
    >>> check_finite(np.zeros((2, 2)), name="layer 'x'")
    """
    values = values_of(matrix)
    if np.issubdtype(values.dtype, np.number) and not np.issubdtype(values.dtype, np.integer):
        bad = int(np.size(values) - np.isfinite(values).sum())
        if bad:
            raise GclError(
                f"{name} holds {bad} NaN or infinite values. Remove or impute them "
                "(e.g. with np.nan_to_num) before calling this function."
            )


def check_counts(adata: AnnData, layer: str | None, *, param: str = "layer") -> None:
    """Raise unless ``layer`` (``None`` is ``.X``) holds non-negative integer counts.

    The message names the layer and suggests ``layer=`` with the layers that do hold counts.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> check_counts(ad.AnnData(np.array([[1.0, 0.0], [3.0, 2.0]])), None)
    """
    matrix = get_matrix(adata, layer)
    label = layer_label(layer)
    check_finite(matrix, name=label)
    values = values_of(matrix)
    if values.size and np.issubdtype(values.dtype, np.number):
        if values.min() < 0:
            problem = f"negative values (minimum {values.min():g})"
        elif not is_integer_matrix(matrix):
            frac = values[values != np.round(values)]
            problem = f"non-integer values (e.g. {float(frac[0]):g})"
        else:
            return
    elif values.size:
        problem = f"values of dtype {values.dtype}"
    else:
        return
    candidates = [k for k in adata.layers if k != layer and is_integer_matrix(adata.layers[k])]
    if layer is not None and adata.X is not None and is_integer_matrix(adata.X):
        candidates.append(None)
    hint = (
        "Layers that hold counts: " + ", ".join(f"layer={c!r}" for c in candidates) + "."
        if candidates
        else "Pass layer= naming a layer of raw integer UMI/read counts (not normalised or "
        "log-transformed values)."
    )
    raise GclError(
        f"{label} must hold raw counts (non-negative integers) but has {problem}. {hint}"
    )


def check_nonzero_genes(adata: AnnData, layer: str | None) -> None:
    """Raise when some genes have zero counts in every cell, naming them (counts are >= 0).

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> check_nonzero_genes(ad.AnnData(np.array([[1.0, 1.0], [0.0, 2.0]])), None)
    """
    matrix = get_matrix(adata, layer)
    # called after check_counts: values are non-negative, so a zero sum means all zeros
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    empty = np.flatnonzero(totals == 0)
    if empty.size:
        raise GclError(
            f"{empty.size} genes have zero counts in every cell of {layer_label(layer)}: "
            f"{listing(adata.var_names[empty])}. Remove them with gcl.pp.recipe(adata) or "
            "scanpy.pp.filter_genes(adata, min_cells=1)."
        )
