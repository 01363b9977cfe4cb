"""The formats ``gcl.io.read`` knows, how it tells them from a path, and how a dependency's
error while reading becomes a :class:`~gclandscape._errors.GclFormatError` naming the file."""

from __future__ import annotations

import gzip
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import pandas as pd

from .._errors import GclError, GclFormatError

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
