"""Delimited text matrices (.csv, .tsv, .txt, optionally gzipped): the reader, and the rule
that tells whether rows are genes or cells."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import GclFormatError
from ._checks import check_not_empty
from ._formats import _TEXT_FORMATS, FORMATS, _guard, _quiet_anndata

_BARCODE_RE = re.compile(r"(?<![A-Za-z])[ACGTN]{8,}(?![A-Za-z])")
_CELL_RE = re.compile(r"^(?:cell|cells|barcode|bc)[ _.\-]?\d+$", re.IGNORECASE)
_GENE_RE = re.compile(r"^(?:ENS[A-Z]{0,6}G\d{6,}(?:\.\d+)?|(?:gene|g)[ _.\-]?\d+)$", re.IGNORECASE)
_MARKER_RE = re.compile(r"^(?:mt-[A-Za-z0-9.]+|rp[ls]\d+[a-z]?\d*)$", re.IGNORECASE)
_ORIENTATION_SAMPLE = 2000


def _axis_kind(labels: pd.Index) -> str | None:
    """``"cells"``, ``"genes"`` or ``None`` (no evidence) for one axis of a text matrix."""
    n = len(labels)
    if n == 0:
        return None
    if n > _ORIENTATION_SAMPLE:
        labels = labels[np.linspace(0, n - 1, _ORIENTATION_SAMPLE).astype(int)]
    names = [str(x) for x in labels]
    n = len(names)
    cell = sum(bool(_BARCODE_RE.search(s) or _CELL_RE.match(s)) for s in names)
    gene = sum(bool(_GENE_RE.match(s)) for s in names)
    marker = sum(bool(_MARKER_RE.match(s)) for s in names)
    if cell >= 0.9 * n and gene + marker == 0:
        return "cells"
    if cell == 0 and (gene >= 0.9 * n or marker > 0):
        return "genes"
    return None


def detect_genes_as_rows(rows: pd.Index, columns: pd.Index, *, file: Path | str) -> bool:
    """Decide whether a text matrix has genes as rows, from its row and column names.

    The rule, applied to each axis separately:

    * an axis holds **cells** when at least 90% of its names look like cell barcodes (a run of
      eight or more of the letters A, C, G, T, N, as in 10x's ``AAACCTGAGAAGGCCT-1`` or
      ``sample1_ACGTACGTACGT``, or ``cell_12``-style names) and none looks like a gene;
    * an axis holds **genes** when no name looks like a barcode and either at least 90% of its
      names are Ensembl gene IDs (``ENSMUSG00000005672``) or ``gene_12``/``g12``-style names,
      or it contains mitochondrial or ribosomal-protein gene symbols (``MT-CO1``, ``mt-Nd1``,
      ``RPL13A``, ``Rps6``), which every transcriptome-wide gene list contains.

    The orientation is decided when the evidence points one way (one axis classified, or the
    two axes classified as different things); otherwise the reader raises and asks for
    ``genes_as_rows=``. Matrix dimensions are deliberately not used: neither "more genes than
    cells" nor the opposite holds in general.

    Examples
    --------
    >>> import pandas as pd
    >>> detect_genes_as_rows(pd.Index(["Gata1", "mt-Co1"]), pd.Index(["AAACCTGAGAAGGCCT-1"]), file="x")
    True
    """
    votes = set()
    row_kind, col_kind = _axis_kind(rows), _axis_kind(columns)
    if row_kind is not None:
        votes.add(row_kind == "genes")
    if col_kind is not None:
        votes.add(col_kind == "cells")
    if len(votes) == 1:
        return votes.pop()

    def show(idx: pd.Index) -> str:
        return ", ".join(repr(str(x)) for x in idx[:3]) + (", ..." if len(idx) > 3 else "")

    why = (
        "both axes look like the same kind of name"
        if len(votes) == 2
        else "neither the row names nor the column names look like cell barcodes, Ensembl IDs "
        "or mitochondrial/ribosomal gene symbols"
    )
    raise GclFormatError(
        f"{file}: cannot tell whether rows are genes or cells ({why}; rows: {show(rows)}; "
        f"columns: {show(columns)}; {len(rows)} rows × {len(columns)} columns). "
        "Fix: pass genes_as_rows=True if each row is a gene and each column a cell, or "
        "genes_as_rows=False if each row is a cell."
    )


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return open(path, newline="", encoding="utf-8-sig")


def _read_header(path: Path, sep: str | None, what: str) -> tuple[list[str], str | None]:
    with _guard(path, what), _open_text(path) as fh:
        first = fh.readline()
    first = first.rstrip("\r\n")
    if not first.strip():
        raise GclFormatError(
            f"{path}: the matrix is empty (the file has no header line). Fix: check that the "
            "file is the expression matrix you meant and that it was written completely."
        )
    if sep is None:  # .txt: detect
        sep = "\t" if "\t" in first else "," if "," in first else None
    if sep is None:
        # whitespace-separated, with names quoted as R's write.table writes them by default;
        # the body is read by pandas, which drops the same quotes
        row = next(csv.reader([first.strip()], delimiter=" ", skipinitialspace=True))
        fields = [f for f in row if f != ""]
    else:
        fields = next(csv.reader([first], delimiter=sep))
    return fields, sep


def _non_numeric_error(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    bad_cols = [j for j, dt in enumerate(df.dtypes) if dt.kind not in "iuf"]
    if not bad_cols:
        return
    sub = df.iloc[:, bad_cols].to_numpy(dtype=object)
    flat = pd.Series(sub.ravel(order="C"))  # row by row, as the file reads
    coerced = pd.to_numeric(flat, errors="coerce")
    bad = (coerced.isna() & flat.notna()).to_numpy()
    if flat.map(type).eq(bool).any():
        bad |= flat.map(lambda v: isinstance(v, bool)).to_numpy()
    n_bad = int(bad.sum())
    k = int(np.argmax(bad))
    i, jj = divmod(k, sub.shape[1])
    j = bad_cols[jj]
    raise GclFormatError(
        f"{path}: {n_bad} entr{'ies' if n_bad != 1 else 'y'} of the matrix "
        f"{'are' if n_bad != 1 else 'is'} "
        f"not a number (first at row {df.index[i]!r}, column {columns[j]!r}: {sub[i, jj]!r}). "
        "Fix: a matrix file must hold one name column and numbers only; move annotation "
        "rows or columns (cell types, gene descriptions) into a separate table, or correct "
        "the entry."
    )


def _read_text(path: Path, *, fmt: str, genes_as_rows: bool | None) -> ad.AnnData:
    what = FORMATS[fmt]
    header, sep = _read_header(path, _TEXT_FORMATS[fmt], what)
    with _guard(path, what):
        try:
            df = pd.read_csv(
                path,
                sep=r"\s+" if sep is None else sep,
                header=None,
                skiprows=1,
                index_col=0,
                dtype={0: str},
                float_precision="round_trip",
                compression="gzip" if path.name.lower().endswith(".gz") else None,
            )
        except pd.errors.EmptyDataError:
            df = pd.DataFrame(index=pd.Index([], dtype=str), columns=range(len(header) - 1))
    if df.index.hasnans:  # a name such as "NA" was read as missing: read the names as text
        with _guard(path, what):
            names = pd.read_csv(
                path,
                sep=r"\s+" if sep is None else sep,
                header=None,
                skiprows=1,
                usecols=[0],
                dtype=str,
                keep_default_na=False,
                compression="gzip" if path.name.lower().endswith(".gz") else None,
            ).iloc[:, 0]
        df.index = pd.Index(names.to_numpy(), dtype=object)
    n_fields = df.shape[1]
    if len(header) == n_fields + 1:
        columns = header[1:]
    elif len(header) == n_fields:  # R's write.table: no name for the row-name column
        columns = header
    else:
        raise GclFormatError(
            f"{path}: the header has {len(header)} names but the rows have {n_fields + 1} "
            "fields (a name and one value per column). Fix: make the header hold one name "
            "per value column (optionally preceded by a name for the row-name column), and "
            "check the delimiter."
        )
    rows = pd.Index(df.index.astype(str), dtype=object)
    cols = pd.Index(columns, dtype=object)
    n_obs, n_vars = (n_fields, len(df)) if genes_as_rows else (len(df), n_fields)
    check_not_empty(n_obs, n_vars, file=path)
    _non_numeric_error(df, columns, path)
    if genes_as_rows is None:
        genes_as_rows = detect_genes_as_rows(rows, cols, file=path)
    X = df.to_numpy()
    del df
    if genes_as_rows:
        X = np.ascontiguousarray(X.T)
        obs_names, var_names = cols, rows
    else:
        obs_names, var_names = rows, cols
    return _anndata(X, obs_names, var_names)


def _anndata(X, obs_names, var_names, var: dict | None = None) -> ad.AnnData:
    var_df = pd.DataFrame(var or {}, index=pd.Index(np.asarray(var_names, dtype=str), dtype=object))
    obs_df = pd.DataFrame(index=pd.Index(np.asarray(obs_names, dtype=str), dtype=object))
    with _quiet_anndata():
        return ad.AnnData(X=X, obs=obs_df, var=var_df)
