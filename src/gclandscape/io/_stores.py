"""AnnData stores and loom: .h5ad, .zarr (with a check for lost chunks) and .loom."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np

from .._errors import GclFormatError
from ._formats import FORMATS, _guard, _quiet_anndata

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
