"""``gcl.io.write``: save an AnnData, with every gclandscape result, as ``.h5ad``."""

from __future__ import annotations

from pathlib import Path

from .._errors import GclError, GclFormatError


def write(adata, path: str | Path) -> None:
    """Write ``adata`` to an ``.h5ad`` file, creating missing parent folders.

    Everything gclandscape stores (arrays, DataFrames, dicts of them, strings and numbers in
    ``.uns``) round-trips through ``.h5ad`` with :func:`gcl.io.read <gclandscape.io.read>`;
    nothing is pickled.

    Parameters
    ----------
    adata
        The AnnData to write.
    path
        Destination; must end in ``.h5ad``. An existing file is replaced.

    Raises
    ------
    GclFormatError
        The suffix is not ``.h5ad``, or a slot holds an object ``.h5ad`` cannot store.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import anndata as ad, numpy as np
    >>> import gclandscape as gcl
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "results" / "cells.h5ad"
    >>> gcl.io.write(ad.AnnData(np.ones((2, 3), dtype=np.float32)), out)
    >>> gcl.io.read(out).shape
    (2, 3)
    """
    import anndata as ad

    if not isinstance(adata, ad.AnnData):
        raise GclError(
            f"gcl.io.write expects an AnnData as its first argument, got {type(adata).__name__}. "
            "Fix: pass the AnnData first and the path second: gcl.io.write(adata, path)."
        )
    path = Path(path).expanduser()
    if path.suffix.lower() != ".h5ad":
        raise GclFormatError(
            f"{path}: gcl.io.write writes .h5ad files only, so every gclandscape result "
            f"round-trips; {path.suffix or 'no suffix'!s} is not supported. Fix: use a path "
            "ending in .h5ad (for other formats call the AnnData's own writers, e.g. "
            "adata.write_zarr or adata.write_loom)."
        )
    if path.is_dir():
        raise GclFormatError(f"{path}: is a folder. Fix: pass a file path ending in .h5ad.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # anndata would otherwise turn string columns into categoricals in the caller's object
        adata.write_h5ad(path, convert_strings_to_categoricals=False)
    except (OSError, MemoryError):
        raise
    except Exception as err:
        notes = " ".join(getattr(err, "__notes__", []))  # anndata names the failing key here
        raise GclFormatError(
            f"{path}: could not be written as .h5ad: {type(err).__name__}: {err} {notes}. "
            "Fix: the slot named above holds an object .h5ad cannot store; keep only arrays, sparse "
            "matrices, DataFrames, strings, numbers and dicts of them in the AnnData "
            "(gclandscape's own results already are), converting other objects first."
        ) from err
