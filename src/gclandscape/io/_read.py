"""``gcl.io.read``: one entry point for every single-cell file format gclandscape accepts."""

from __future__ import annotations

import csv
import gzip
import re
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import GclError, GclFileNotFoundError, GclFormatError
from .._keys import Key
from .._utils import logger
from .._validate import integer_summary, is_integer_matrix
from ._checks import as_float_counts, check_not_empty, check_values, warn_and_make_unique

#: Format names accepted by ``format=`` and what each one reads.
FORMATS: dict[str, str] = {
    "h5ad": "an AnnData .h5ad file",
    "10x_h5": "a 10x Genomics Cell Ranger .h5 file (v2 or v3+ layout)",
    "10x_mtx": "a 10x Matrix Market folder (matrix.mtx[.gz], barcodes.tsv[.gz], "
    "features.tsv[.gz] or genes.tsv[.gz])",
    "loom": "a .loom file",
    "csv": "a comma-separated matrix (.csv, .csv.gz)",
    "tsv": "a tab-separated matrix (.tsv, .tsv.gz)",
    "txt": "a delimited text matrix (.txt, .txt.gz; tab, comma or whitespace, detected)",
    "zarr": "an AnnData .zarr store",
    "beeline": "a BEELINE folder (ExpressionData.csv genes × cells, optional PseudoTime.csv "
    "and refNetwork.csv)",
}

_ALIASES = {
    "h5": "10x_h5",
    "10x": "10x_mtx",
    "mtx": "10x_mtx",
    "10x_h5": "10x_h5",
    "text": "txt",
    "anndata": "h5ad",
}

_TEXT_FORMATS = {"csv": ",", "tsv": "\t", "txt": None}
#: Formats whose integer counts are stored as float32 (as scanpy's readers do).
_COUNT_FORMATS = {"10x_h5", "10x_mtx", "loom", "csv", "tsv", "txt", "beeline"}

_BEELINE_EXPRESSION = "ExpressionData.csv"


def _supported() -> str:
    return "; ".join(f"{name!r}: {what}" for name, what in FORMATS.items())


# --------------------------------------------------------------------------------------------
# error translation


@contextmanager
def _guard(file: Path, what: str) -> Iterator[None]:
    """Turn a dependency's exception while reading ``file`` into a :class:`GclFormatError`."""
    try:
        yield
    except (GclError, MemoryError, KeyboardInterrupt):
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise GclFormatError(
            f"{file}: the compressed file is truncated or corrupt ({err}). "
            f"Fix: copy or download it again (check it with `gzip -t {file}`), or decompress "
            "it with another tool and read the uncompressed file."
        ) from None
    except UnicodeDecodeError:
        raise GclFormatError(
            f"{file}: is not a text file (it holds bytes that are not UTF-8 text) but was read "
            f"as {what}. Fix: check the file, or pass the right format= "
            f"(supported: {', '.join(FORMATS)})."
        ) from None
    except pd.errors.ParserError as err:
        raise GclFormatError(
            f"{file}: could not be parsed as {what}: {err}. Fix: every row of a matrix file "
            "needs the same number of fields (a gene or cell name followed by one value per "
            "column); check the delimiter and any stray header or comment lines."
        ) from None
    except OSError as err:
        if "truncated" in str(err).lower():
            raise GclFormatError(
                f"{file}: the file is truncated ({err}). Fix: copy or download it again."
            ) from None
        raise GclFormatError(
            f"{file}: could not be opened as {what}: {err}. Fix: check that the file is "
            f"complete and really is {what}, or pass the right format= "
            f"(supported: {', '.join(FORMATS)})."
        ) from None
    except Exception as err:
        raise GclFormatError(
            f"{file}: could not be read as {what}: {type(err).__name__}: {err}. Fix: check "
            f"that the file is complete and really is {what}, or pass the right format= "
            f"(supported: {', '.join(FORMATS)})."
        ) from err


@contextmanager
def _quiet_anndata() -> Iterator[None]:
    """Silence anndata's notes about non-unique or non-string names; we handle both."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*names are not unique")
        warnings.filterwarnings("ignore", message=r".*Transforming to str index")
        warnings.filterwarnings("ignore", category=ad.ImplicitModificationWarning)
        yield


# --------------------------------------------------------------------------------------------
# format detection


def _strip_gz(name: str) -> tuple[str, bool]:
    name = name.lower()
    if name.endswith(".gz"):
        return name[:-3], True
    return name, False


def _find_mtx(folder: Path) -> Path | None:
    hits = sorted(p for p in folder.iterdir() if p.name.endswith(("matrix.mtx", "matrix.mtx.gz")))
    if len(hits) > 1:
        raise GclFormatError(
            f"{folder}: holds several Matrix Market files ({', '.join(p.name for p in hits)}). "
            "Fix: pass the path of the one .mtx file to read; its barcodes and features "
            "files are found beside it by the same prefix."
        )
    return hits[0] if hits else None


def _detect_format(path: Path) -> str:
    if path.is_dir():
        if (
            path.suffix.lower() == ".zarr"
            or (path / ".zgroup").exists()
            or (path / "zarr.json").exists()
        ):
            return "zarr"
        if (path / _BEELINE_EXPRESSION).is_file():
            return "beeline"
        if _find_mtx(path) is not None:
            return "10x_mtx"
        shown = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise GclFormatError(
            f"{path}: this folder is not a format gcl.io.read knows (it holds: {shown}). "
            "A folder is read as a 10x Matrix Market folder when it holds matrix.mtx[.gz], "
            "as a BEELINE folder when it holds ExpressionData.csv, and as a .zarr store when "
            "it ends in .zarr. Fix: pass the matrix file itself, or format= with one of: "
            f"{_supported()}."
        )
    name, gz = _strip_gz(path.name)
    suffix = Path(name).suffix
    if suffix in {".csv", ".tsv", ".txt"}:
        return suffix[1:]
    if suffix == ".mtx":
        return "10x_mtx"
    if not gz:
        if suffix == ".h5ad":
            return "h5ad"
        if suffix == ".loom":
            return "loom"
        if suffix == ".zarr":
            return "zarr"
        if suffix in {".h5", ".hdf5"}:
            return "h5ad" if _looks_like_h5ad(path) else "10x_h5"
    raise GclFormatError(
        f"{path}: unknown file format {path.name!r}. gcl.io.read recognises .h5ad, .h5 (10x), "
        ".loom, .zarr, .csv/.tsv/.txt (optionally .gz), a 10x Matrix Market folder and a "
        f"BEELINE folder. Fix: rename the file, or pass format= with one of: {_supported()}."
    )


def _looks_like_h5ad(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "obs" in f and "var" in f and "matrix" not in f
    except OSError:
        return False


def _normalise_format(format: str) -> str:
    key = str(format).lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise GclError(
            f"format={format!r} is not a format gcl.io.read knows. Fix: pass one of: "
            f"{_supported()}; or format=None to detect it from the path."
        )
    return key


# --------------------------------------------------------------------------------------------
# orientation of text matrices

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


# --------------------------------------------------------------------------------------------
# readers: each returns an AnnData (cells × genes) with the file's values in .X


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


def _read_lines(path: Path, what: str) -> pd.DataFrame:
    with _guard(path, what):
        try:
            return pd.read_csv(
                path,
                sep="\t",
                header=None,
                dtype=str,
                keep_default_na=False,
                quoting=csv.QUOTE_NONE,
                compression="gzip" if path.name.lower().endswith(".gz") else None,
            )
        except pd.errors.EmptyDataError:
            return pd.DataFrame({0: pd.Series([], dtype=str)})


def _sibling(folder: Path, prefix: str, stems: tuple[str, ...], matrix: Path) -> Path:
    for stem in stems:
        for name in (f"{prefix}{stem}.tsv.gz", f"{prefix}{stem}.tsv"):
            if (folder / name).is_file():
                return folder / name
    wanted = " or ".join(f"{prefix}{s}.tsv[.gz]" for s in stems)
    raise GclFileNotFoundError(
        f"{folder}: the 10x Matrix Market folder has {matrix.name} but no {wanted}. "
        f"Fix: put the {stems[0]} file from the same Cell Ranger run beside {matrix.name} "
        "(it lists one name per line, in matrix order)."
    )


def _read_10x_mtx(path: Path) -> ad.AnnData:
    """A 10x Matrix Market folder (or its .mtx file) as cells × genes.

    Not ``scanpy.read_10x_mtx``: this reader is faster (50,000 × 2,000 gz folder 1.07 s vs
    scanpy's 1.52 s, ``benchmarks/io_datasets.py``), checks the barcode and feature counts
    against the matrix, accepts prefixed names and cells × genes layouts, and raises a
    :class:`GclFormatError` naming the file where scanpy's fails deep inside.
    """
    from scipy.io import mmread

    if path.is_dir():
        matrix = _find_mtx(path)
        if matrix is None:
            raise GclFileNotFoundError(
                f"{path}: no matrix.mtx or matrix.mtx.gz in this folder. Fix: pass the folder "
                "Cell Ranger wrote (e.g. filtered_feature_bc_matrix/), which holds "
                "matrix.mtx.gz, barcodes.tsv.gz and features.tsv.gz."
            )
        folder = path
    else:
        matrix, folder = path, path.parent
    mname = matrix.name
    prefix = mname[: mname.lower().rfind("matrix.mtx")]
    barcodes_file = _sibling(folder, prefix, ("barcodes",), matrix)
    features_file = _sibling(folder, prefix, ("features", "genes"), matrix)

    what = "a Matrix Market (.mtx) matrix"
    with _guard(matrix, what):
        M = mmread(matrix)
    barcodes = _read_lines(barcodes_file, "a 10x barcodes file")
    features = _read_lines(features_file, "a 10x features file")
    n_rows, n_cols = M.shape
    n_bc, n_ft = len(barcodes), len(features)
    if (n_rows, n_cols) == (n_ft, n_bc):
        transposed = False  # Cell Ranger's layout: genes × cells
    elif (n_rows, n_cols) == (n_bc, n_ft):
        transposed = True  # some tools write cells × genes
        logger.info("%s is stored cells × genes; reading it as such", matrix)
    else:
        problems = []
        if n_bc != n_cols:
            problems.append(f"{barcodes_file.name} lists {n_bc} barcodes for its {n_cols} cells")
        if n_ft != n_rows:
            problems.append(f"{features_file.name} lists {n_ft} features for its {n_rows} genes")
        raise GclFormatError(
            f"{folder}: {mname} is {n_rows} × {n_cols} (genes × cells, as Cell Ranger writes "
            f"it), but {' and '.join(problems)}. Fix: use the barcodes and features files "
            "written together with this matrix (a filtered matrix needs the filtered "
            "barcodes), and check that none of them was cut short."
        )
    if sparse.issparse(M):
        M = M.tocoo() if M.format != "coo" else M
        if is_integer_matrix(M):
            M = as_float_counts(M)
        X = (M if transposed else M.T).tocsr()
    else:  # array (dense) Matrix Market files
        X = np.asarray(M if transposed else M.T)
        if is_integer_matrix(X):
            X = as_float_counts(X)
    del M
    var: dict[str, np.ndarray] = {"gene_ids": features[0].to_numpy()}
    var_names = features[1] if features.shape[1] > 1 else features[0]
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    adata = _anndata(X, barcodes[0].to_numpy(), var_names.to_numpy(), var)
    return _gene_expression_only(adata)


def _gene_expression_only(adata: ad.AnnData) -> ad.AnnData:
    """Keep 'Gene Expression' features when a 10x file mixes feature types (as scanpy does)."""
    if "feature_types" not in adata.var:
        return adata
    gex = (adata.var["feature_types"] == "Gene Expression").to_numpy()
    if gex.all() or not gex.any():
        return adata
    logger.info(
        "keeping %d 'Gene Expression' features of %d (other types: %s)",
        int(gex.sum()),
        adata.n_vars,
        sorted(set(adata.var["feature_types"][~gex])),
    )
    return adata[:, gex].copy()


def _check_10x_h5(path: Path) -> None:
    """Check the datasets and their lengths in a Cell Ranger .h5 before scanpy reads it."""
    import h5py

    what = FORMATS["10x_h5"]
    with _guard(path, what), h5py.File(path, "r") as f:
        if "matrix" in f:
            groups = {"matrix": f["matrix"]}
            needed = ("data", "indices", "indptr", "shape", "barcodes", "features/id")
            names_key = "features/id"
        else:
            groups = {k: v for k, v in f.items() if isinstance(v, h5py.Group)}
            needed = ("data", "indices", "indptr", "shape", "barcodes", "genes", "gene_names")
            names_key = "genes"
            if len(groups) > 1:
                raise GclFormatError(
                    f"{path}: this legacy (Cell Ranger v2) file holds several genomes "
                    f"({', '.join(groups)}). Fix: read one genome with "
                    "scanpy.read_10x_h5(path, genome=...) and pass the AnnData on."
                )
        if not groups:
            raise GclFormatError(
                f"{path}: this HDF5 file has no 10x matrix group. Fix: pass a Cell Ranger "
                "filtered_feature_bc_matrix.h5, or format='h5ad' if it is an AnnData file."
            )
        for name, g in groups.items():
            missing = [k for k in needed if k not in g]
            if missing:
                raise GclFormatError(
                    f"{path}: the 10x group {name!r} lacks the datasets {missing}. Fix: pass "
                    "an unmodified Cell Ranger .h5 (v2 or v3+ layout)."
                )
            n_genes, n_cells = (int(v) for v in g["shape"][()])
            n_bc, n_ft = len(g["barcodes"]), len(g[names_key])
            problems = []
            if n_bc != n_cells:
                problems.append(f"{n_bc} barcodes for {n_cells} cells")
            if n_ft != n_genes:
                problems.append(f"{n_ft} features for {n_genes} genes")
            if len(g["indptr"]) != n_cells + 1:
                problems.append(f"indptr of length {len(g['indptr'])}, not {n_cells + 1}")
            elif len(g["data"]) != len(g["indices"]) or len(g["data"]) != int(g["indptr"][-1]):
                problems.append(
                    f"{len(g['data'])} values and {len(g['indices'])} indices for "
                    f"{int(g['indptr'][-1])} stored entries"
                )
            if problems:
                raise GclFormatError(
                    f"{path}: the matrix is {n_genes} genes × {n_cells} cells but the file has "
                    f"{'; '.join(problems)}. Fix: the file is damaged or was edited; copy it "
                    "again from the Cell Ranger output (outs/filtered_feature_bc_matrix.h5)."
                )


def _read_10x_h5(path: Path) -> ad.AnnData:
    _check_10x_h5(path)
    import scanpy as sc

    with _guard(path, FORMATS["10x_h5"]), _quiet_anndata():
        return sc.read_10x_h5(path)


_LOOM_OBS_KEYS = ("CellID", "obs_names", "cell_names", "CellName", "Barcode", "barcode")
_LOOM_VAR_KEYS = ("Gene", "var_names", "gene_names", "GeneName", "Accession")


def _read_loom(path: Path) -> ad.AnnData:
    import h5py

    what = FORMATS["loom"]
    with _guard(path, what), h5py.File(path, "r") as f:
        col_keys = set(f["col_attrs"].keys()) if "col_attrs" in f else set()
        row_keys = set(f["row_attrs"].keys()) if "row_attrs" in f else set()
        layers = f.get("layers", {})
        main = layers["spliced"] if "spliced" in layers else f["matrix"]
        dtype = main.dtype
    obs_key = next((k for k in _LOOM_OBS_KEYS if k in col_keys), "")
    var_key = next((k for k in _LOOM_VAR_KEYS if k in row_keys), "")
    with _guard(path, what), _quiet_anndata():
        adata = ad.io.read_loom(path, obs_names=obs_key, var_names=var_key, dtype=dtype.name)
    adata.obs_names = adata.obs_names.astype(str)
    adata.var_names = adata.var_names.astype(str)
    return adata


def _read_h5ad(path: Path) -> ad.AnnData:
    with _guard(path, FORMATS["h5ad"]):
        return ad.read_h5ad(path)


def _read_zarr(path: Path) -> ad.AnnData:
    with _guard(path, FORMATS["zarr"]):
        _check_zarr_chunks(path)
        return ad.read_zarr(path)


def _missing_chunks(root: Path, arr) -> tuple[list[str], int]:
    """Keys of the chunks of ``arr`` that are not on disk, and the number of chunks."""
    grid = [range(n) for n in arr.cdata_shape]
    keys = [arr.metadata.encode_chunk_key(c) for c in np.ndindex(*map(len, grid))]
    folder = root / arr.path
    return [k for k in keys if not (folder / k).is_file()], len(keys)


def _check_zarr_chunks(path: Path) -> None:
    """Raise when an expression matrix of a local zarr store lacks chunks it should have.

    zarr reads a missing chunk as its fill value, so a store with a lost chunk file reads as
    cells with all-zero expression. But zarr also leaves out, by design, chunks that hold
    only the fill value (``write_empty_chunks=False``, zarr 3's default): a missing chunk
    alone is no proof. The rules, applied to ``X``, ``layers/*`` and ``raw/X``:

    * a dense matrix, or a sparse matrix's ``data`` or ``indices``, with some chunks stored
      and others missing: a whole chunk of zeros beside stored ones is taken as a loss (a
      sparse matrix stores no zeros; a dense count block of thousands of all-zero entries
      is not seen in real data, and the message says how to keep such a store readable);
    * a sparse matrix's ``indptr`` with a missing chunk that breaks its order (``indptr``
      must rise from 0 to the number of stored values).

    An array with every chunk missing is an all-fill-value array and is accepted, as is any
    store zarr cannot list locally (sharded arrays).
    """
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
    except Exception:
        return
    nodes = [k for k in ("X", "raw/X") if k in group]
    if "layers" in group:
        nodes += [f"layers/{k}" for k in group["layers"]]
    for node_key in nodes:
        node = group[node_key]
        if isinstance(node, zarr.Array):
            arrays = {"": node}
        else:
            arrays = {k: node[k] for k in ("data", "indices", "indptr") if k in node}
        for part, arr in arrays.items():
            if getattr(arr, "shards", None) is not None:
                continue
            missing, total = _missing_chunks(path, arr)
            if not missing or (len(missing) == total and part != "indptr"):
                continue
            if part == "indptr":
                indptr = np.asarray(arr[:])
                n_data = arrays["data"].shape[0] if "data" in arrays else indptr[-1]
                if indptr.size and np.all(np.diff(indptr) >= 0) and indptr[-1] == n_data:
                    continue  # leading empty rows: a legitimately omitted chunk of zeros
            fill = arr.metadata.fill_value
            raise GclFormatError(
                f"{path}: the zarr store lacks {len(missing)} of the {total} chunks of "
                f"{arr.path!r} (first missing: {arr.path}/{missing[0]}); zarr would read them "
                f"as {fill!r}, i.e. cells with silently zeroed expression. Fix: copy the "
                "store again completely, or write the data again (adata.write_h5ad, or "
                "write_zarr). If those blocks truly hold only zeros, the store was written "
                "with write_empty_chunks=False: rewrite it as .h5ad to read it."
            )


_SIGNS = {
    "+": 1,
    "+1": 1,
    "1": 1,
    "activation": 1,
    "activator": 1,
    "activates": 1,
    "positive": 1,
    "-": -1,
    "-1": -1,
    "repression": -1,
    "repressor": -1,
    "represses": -1,
    "inhibition": -1,
    "inhibitor": -1,
    "negative": -1,
}


def read_reference_network(path: Path) -> pd.DataFrame:
    """Read a BEELINE ``refNetwork.csv`` (Gene1, Gene2, Type) as source, target, sign (+1/−1).

    The sign is 0 where the file gives no ``Type`` column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "refNetwork.csv"
    >>> _ = p.write_text("Gene1,Gene2,Type\\ng1,g2,+\\ng2,g1,-\\n")
    >>> read_reference_network(p)["sign"].tolist()
    [1, -1]
    """
    with _guard(path, "a BEELINE refNetwork.csv"):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = {c.lower(): c for c in df.columns}
    src = cols.get("gene1", cols.get("source"))
    tgt = cols.get("gene2", cols.get("target"))
    typ = cols.get("type", cols.get("sign"))
    if src is None or tgt is None:
        raise GclFormatError(
            f"{path}: a reference network needs columns Gene1 and Gene2 (or source and "
            f"target); this file has {list(df.columns)}. Fix: name the regulator column Gene1 "
            "and the target column Gene2, with an optional Type column of + / -."
        )
    if typ is None:
        sign = np.zeros(len(df), dtype=np.int64)
    else:
        key = df[typ].str.strip().str.lower()
        mapped = key.map(_SIGNS)
        if mapped.isna().any():
            i = int(np.argmax(mapped.isna().to_numpy()))
            raise GclFormatError(
                f"{path}: edge {i + 1} ({df[src].iloc[i]} -> {df[tgt].iloc[i]}) has Type "
                f"{df[typ].iloc[i]!r}, which is neither activation nor repression. Fix: use "
                "'+' for activation and '-' for repression."
            )
        sign = mapped.to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "source": df[src].to_numpy(dtype=str).astype(object),
            "target": df[tgt].to_numpy(dtype=str).astype(object),
            "sign": sign,
        },
        index=pd.Index([str(i) for i in range(len(df))], dtype=object),
    )


def _read_beeline(path: Path) -> ad.AnnData:
    folder = path if path.is_dir() else path.parent
    expression = folder / _BEELINE_EXPRESSION
    if not expression.is_file():
        raise GclFileNotFoundError(
            f"{folder}: a BEELINE folder needs {_BEELINE_EXPRESSION} (genes × cells). Fix: pass "
            "the folder that holds ExpressionData.csv, PseudoTime.csv and refNetwork.csv."
        )
    adata = _read_text(expression, fmt="csv", genes_as_rows=True)
    pseudotime = folder / "PseudoTime.csv"
    if pseudotime.is_file():
        with _guard(pseudotime, "a BEELINE PseudoTime.csv"):
            pt = pd.read_csv(pseudotime, index_col=0, float_precision="round_trip")
        pt.index = pt.index.astype(str)
        bad = [c for c in pt.columns if pt[c].dtype.kind not in "iuf"]
        if bad:
            raise GclFormatError(
                f"{pseudotime}: column {bad[0]!r} is not numeric. Fix: PseudoTime.csv holds "
                "one numeric column per lineage (empty or NA where a cell is not on it)."
            )
        missing = adata.obs_names.difference(pt.index)
        extra = pt.index.difference(adata.obs_names)
        if len(missing) or len(extra) or not pt.index.is_unique:
            raise GclFormatError(
                f"{pseudotime}: its cells do not match {_BEELINE_EXPRESSION}: "
                f"{len(missing)} expression cells have no pseudotime (e.g. "
                f"{list(missing[:3])}), {len(extra)} pseudotime rows are not in the "
                f"expression matrix (e.g. {list(extra[:3])}). Fix: use the PseudoTime.csv "
                "written with this ExpressionData.csv (one row per cell)."
            )
        pt = pt.reindex(adata.obs_names)
        for col in pt.columns:
            adata.obs[str(col)] = pt[col].to_numpy(dtype=np.float64)
    network = folder / "refNetwork.csv"
    if network.is_file():
        adata.uns[Key.uns.reference_network] = read_reference_network(network)
    return adata


_READERS: dict[str, Callable[..., ad.AnnData]] = {
    "h5ad": _read_h5ad,
    "10x_h5": _read_10x_h5,
    "10x_mtx": _read_10x_mtx,
    "loom": _read_loom,
    "zarr": _read_zarr,
    "beeline": _read_beeline,
}


# --------------------------------------------------------------------------------------------
# the entry point


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
