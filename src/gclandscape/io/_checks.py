"""Vectorised validation helpers for the readers.

Every check works on the stored values only (``.data`` of a sparse matrix, the flat buffer of a
dense one) with whole-array NumPy reductions, so validating a 50,000 × 2,000 matrix costs a few
passes over memory. The slow path that locates the first offending entry runs only when a check
has already failed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import GclFormatError
from .._validate import values_of

#: Integer-valued matrices are stored as float32 when every value is at most this large, because
#: float32 represents every integer up to 2**24 exactly.
FLOAT32_EXACT_MAX = 2**24


def as_float_counts(X):
    """Store an integer-valued matrix as float32 when that is exact, else as float64.

    Counts from text and Matrix Market files arrive as int64; scanpy and scvi-tools expect
    floating point, and float32 halves the memory. A sparse matrix keeps its structure.
    """
    data = values_of(X)
    if data.dtype == np.float32:
        return X
    top = max(data.max(), -data.min()) if data.size else 0
    dtype = np.float32 if top <= FLOAT32_EXACT_MAX else np.float64
    if data.dtype == dtype:
        return X
    if not sparse.issparse(X):
        return np.asarray(X).astype(dtype)
    new = data.astype(dtype)
    # Rebuild around the same index arrays: scipy's own .astype of a COO matrix first sums
    # duplicate entries, which costs seconds on a large matrix.
    if X.format == "coo":
        return type(X)((new, (X.row, X.col)), shape=X.shape)
    if X.format in {"csr", "csc"}:
        return type(X)((new, X.indices, X.indptr), shape=X.shape)
    return X.astype(dtype)


def _locate(X, flat_index: int) -> tuple[int, int]:
    """Row and column of the ``flat_index``-th stored value of ``X``."""
    if sparse.issparse(X):
        fmt = X.format
        if fmt == "coo":
            return int(X.row[flat_index]), int(X.col[flat_index])
        if fmt in {"csr", "csc"}:
            major = int(np.searchsorted(X.indptr, flat_index, side="right") - 1)
            minor = int(X.indices[flat_index])
            return (major, minor) if fmt == "csr" else (minor, major)
        return _locate(X.tocsr(), flat_index)
    arr = np.asarray(X)
    if arr.flags.c_contiguous:
        return tuple(int(i) for i in np.unravel_index(flat_index, arr.shape))
    order = "F" if arr.flags.f_contiguous else "C"
    return tuple(int(i) for i in np.unravel_index(flat_index, arr.shape, order=order))


def _name(names: Sequence[str] | None, i: int, what: str) -> str:
    if names is None:
        return f"{what} #{i}"
    return f"{what} {names[i]!r}"


def check_values(
    X,
    *,
    file: Path | str,
    obs_names: Sequence[str] | None = None,
    var_names: Sequence[str] | None = None,
    allow_negative: bool = False,
    what: str = "the expression matrix",
    summary: tuple[bool, float, float] | None = None,
) -> None:
    """Raise :class:`GclFormatError` if ``X`` holds NaN, infinite or (unless allowed) negative values.

    Two reductions (min and max, which propagate NaN; or ``summary`` from
    :func:`gclandscape._validate.integer_summary`)
    decide the common case; only a failing matrix is scanned again to count the offending
    values and name the first one.

    Examples
    --------
    >>> import numpy as np
    >>> check_values(np.array([[1.0, -2.0]]), file="x.csv", obs_names=["c1"], var_names=["A", "B"])
    Traceback (most recent call last):
    ...
    gclandscape._errors.GclFormatError: x.csv: the expression matrix has 1 negative value (first at cell 'c1', gene 'B': -2.0). ...
    """
    data = values_of(X)
    if data.size == 0 or data.dtype.kind not in "iuf":
        return
    lo, hi = (data.min(), data.max()) if summary is None else summary[1:]
    finite = bool(np.isfinite(lo) and np.isfinite(hi))
    if finite and (allow_negative or lo >= 0):
        return
    if not finite:
        bad = ~np.isfinite(data)
        n_nan = int(np.isnan(data).sum())
        n_inf = int(bad.sum()) - n_nan
        k = int(np.argmax(bad))
        r, c = _locate(X, k)
        parts = []
        if n_nan:
            parts.append(f"{n_nan} NaN (missing) value{'s' if n_nan != 1 else ''}")
        if n_inf:
            parts.append(f"{n_inf} infinite value{'s' if n_inf != 1 else ''}")
        raise GclFormatError(
            f"{file}: {what} has {' and '.join(parts)} (first at "
            f"{_name(obs_names, r, 'cell')}, {_name(var_names, c, 'gene')}: {data[k]}). "
            "Expression values must be finite numbers. Fix: replace missing or infinite "
            "entries in the file (for counts, a missing value usually means 0), or drop the "
            "affected cells/genes, and read it again."
        )
    bad = data < 0
    n_neg = int(bad.sum())
    k = int(np.argmax(bad))
    r, c = _locate(X, k)
    raise GclFormatError(
        f"{file}: {what} has {n_neg} negative value{'s' if n_neg != 1 else ''} (first at "
        f"{_name(obs_names, r, 'cell')}, {_name(var_names, c, 'gene')}: {data[k]}). "
        "Counts and expression levels cannot be negative. Fix: read the raw (unscaled, "
        "uncentred) counts file instead of a scaled or log-ratio matrix, or correct the "
        "negative entries."
    )


def check_not_empty(n_obs: int, n_vars: int, *, file: Path | str) -> None:
    """Raise :class:`GclFormatError` when a matrix has no cells or no genes.

    Examples
    --------
    >>> check_not_empty(0, 5, file="x.csv")
    Traceback (most recent call last):
    ...
    gclandscape._errors.GclFormatError: x.csv: the matrix is empty (0 cells × 5 genes). ...
    """
    if n_obs == 0 or n_vars == 0:
        raise GclFormatError(
            f"{file}: the matrix is empty ({n_obs} cells × {n_vars} genes). "
            "Fix: check that the file is the expression matrix you meant (not a header-only "
            "export or a filtered-away selection) and that it was written completely."
        )


def duplicated(names: pd.Index) -> list[str]:
    """The distinct names that occur more than once, in order of first appearance."""
    dup = names[names.duplicated(keep="first")]
    return list(pd.unique(np.asarray(dup, dtype=object)))


def warn_and_make_unique(adata, *, file: Path | str, stacklevel: int = 2) -> None:
    """Make gene (and cell) names unique in place, warning with the duplicated names.

    The names are de-duplicated with anndata's ``var_names_make_unique`` /
    ``obs_names_make_unique`` (``Gata1``, ``Gata1-1``, ...). The :class:`UserWarning` names
    the first duplicated names so that the user can check them.
    """
    for axis, label in (("var", "gene"), ("obs", "cell")):
        names = adata.var_names if axis == "var" else adata.obs_names
        if names.is_unique:
            continue
        dups = duplicated(names)
        shown = ", ".join(repr(str(d)) for d in dups[:10])
        more = f" and {len(dups) - 10} more" if len(dups) > 10 else ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # anndata's own notes about suffixes
            if axis == "var":
                adata.var_names_make_unique()
            else:
                adata.obs_names_make_unique()
        warnings.warn(
            f"{file}: {len(dups)} duplicated {label} name{'s' if len(dups) != 1 else ''} "
            f"({shown}{more}) {'were' if len(dups) != 1 else 'was'} made unique by appending '-1', '-2', ... "
            f"(anndata's {axis}_names_make_unique). Check these {label}s if you look them up "
            "by name.",
            UserWarning,
            stacklevel=stacklevel,
        )
