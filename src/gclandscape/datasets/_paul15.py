"""The full Paul et al. (2015) myeloid progenitor dataset: downloaded once with a checksum.

The file is the one scanpy's ``scanpy.datasets.paul15`` uses, ``paul15.h5``: a plain HDF5
file (not an ``.h5ad``) with the MARS-seq UMI matrix (``data.debatched``, genes × cells), the
gene and cell names, Paul et al.'s cluster of every cell (``cluster.id``, 1–19) and their
informative genes (``info.genes_strings``). It is fetched with pooch into a cache folder and
checked against the SHA-256 published in scanpy's dataset registry
(``src/scanpy/datasets/registry.yaml``); later calls read the cached copy without a network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import GclDownloadError, GclFileNotFoundError, GclFormatError
from .._keys import Key
from .._utils import logger

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: Where scanpy 1.11 (``scanpy.datasets.paul15``) downloads ``paul15.h5`` from.
PAUL15_URL = "https://falexwolf.de/data/paul15.h5"
#: Tried in order when :data:`PAUL15_URL` fails: scverse's own bucket, which newer scanpy
#: releases use first (same file, same checksum).
PAUL15_MIRROR_URLS: tuple[str, ...] = ("https://exampledata.scverse.org/scanpy/paul15.h5",)
#: SHA-256 of ``paul15.h5`` (10,297,693 bytes) as published in scanpy's dataset registry.
PAUL15_SHA256 = "6161984f758dd464992edc23f1a8ab89b2081600130c6aa93a1ab12b3ada5bfb"
PAUL15_FILENAME = "paul15.h5"
#: Seconds to wait for the server before a download attempt counts as failed.
DOWNLOAD_TIMEOUT = 60.0
#: Environment variable naming the cache folder (default: ``pooch.os_cache("gclandscape")``).
DATA_DIR_ENV = "GCL_DATA_DIR"

#: Paul et al.'s 19 clusters → the cell-type names used by the tradeSeq/Monocle annotation of
#: the same cells (and by ``../shared/data/paul15``). Cluster 7 ("MEP" in scanpy) is the
#: progenitor population at the root of the trajectory.
PAUL15_CLUSTER_CELLTYPES = {
    **dict.fromkeys(range(1, 7), "Erythrocyte"),
    7: "Multipotent progenitors",
    8: "Megakaryocytes",
    9: "GMP",
    10: "GMP",
    11: "Dendritic cells",
    12: "Basophils",
    13: "Basophils",
    14: "Monocytes",
    15: "Monocytes",
    16: "Neutrophils",
    17: "Neutrophils",
    18: "Eosinophils",
    19: "Lymphoid",
}
#: scanpy's names of the clusters ("1Ery" … "19Lymph"), kept in ``obs["paul15_clusters"]``.
_SCANPY_CLUSTER_NAMES = [
    *(6 * ["Ery"]),
    *["MEP", "Mk", "GMP", "GMP", "DC", "Baso", "Baso", "Mo", "Mo", "Neu", "Neu", "Eos", "Lymph"],
]
_CELLTYPE_ORDER = [
    "Multipotent progenitors",
    "GMP",
    "Erythrocyte",
    "Megakaryocytes",
    "Monocytes",
    "Neutrophils",
    "Basophils",
    "Dendritic cells",
    "Eosinophils",
    "Lymphoid",
]


def cache_dir() -> Path:
    """The folder downloads are cached in: ``$GCL_DATA_DIR`` or pooch's per-user cache."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("gclandscape"))


def _urls() -> list[str]:
    return [PAUL15_URL, *(u for u in PAUL15_MIRROR_URLS if u != PAUL15_URL)]


def _local_file_hint(folder: Path) -> str:
    urls = " or ".join(_urls())
    return (
        f"To use a local copy instead, download {PAUL15_FILENAME} (about 10 MB, sha256 "
        f"{PAUL15_SHA256}) on a machine with internet access from {urls}, copy it to this "
        f'machine and pass it: gcl.datasets.paul15(path="/path/to/{PAUL15_FILENAME}"), or put '
        f"it into the cache folder as {folder / PAUL15_FILENAME} (set ${DATA_DIR_ENV} to choose "
        "another cache folder)."
    )


def _describe(exc: BaseException) -> str:
    """A one-line reason for a failed download (connection refused, DNS error, timeout...)."""
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        kind = "the server did not answer in time"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        kind = "no connection (offline, DNS failure or connection refused)"
    elif isinstance(exc, requests.exceptions.HTTPError):
        kind = "the server returned an error"
    else:
        kind = type(exc).__name__
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{kind}: {detail}" if detail else kind


def _download() -> Path:
    """Fetch ``paul15.h5`` into the cache (or find it there) and verify its SHA-256."""
    import pooch
    import requests

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GclDownloadError(
            f"Cannot create the download cache folder {folder} ({exc}). Set ${DATA_DIR_ENV} to "
            "a writable folder, or pass a local file: "
            f'gcl.datasets.paul15(path="/path/to/{PAUL15_FILENAME}").'
        ) from exc
    failures: list[str] = []
    last: BaseException | None = None
    for url in _urls():
        try:
            fname = pooch.retrieve(
                url,
                known_hash=f"sha256:{PAUL15_SHA256}",
                fname=PAUL15_FILENAME,
                path=folder,
                downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT),
            )
            return Path(fname)
        except ValueError as exc:  # pooch: the downloaded file's hash does not match
            if "hash" in str(exc).lower():
                failures.append(
                    f"{url}: the downloaded file failed the checksum test (expected sha256 "
                    f"{PAUL15_SHA256}); it was discarded"
                )
            else:
                failures.append(f"{url}: {exc}")
            last = exc
        except (requests.exceptions.RequestException, OSError) as exc:
            failures.append(f"{url}: {_describe(exc)}")
            last = exc
        logger.warning("Downloading %s failed: %s", url, failures[-1])
    reasons = "\n  ".join(failures)
    raise GclDownloadError(
        f"Downloading the Paul et al. 2015 dataset failed:\n  {reasons}\n{_local_file_hint(folder)}"
    ) from last


def _read_scanpy_h5(path: Path) -> AnnData:
    """Read scanpy's raw ``paul15.h5`` layout (genes × cells) into cells × genes AnnData."""
    import anndata as ad
    import h5py
    import scipy.sparse as sp

    with h5py.File(path, "r") as f:
        missing = [
            k
            for k in ("data.debatched", "data.debatched_rownames", "data.debatched_colnames")
            if k not in f
        ]
        if missing:
            raise GclFormatError(
                f"{path} is an HDF5 file but neither an .h5ad nor scanpy's paul15.h5 (missing "
                f"{missing}). Pass the paul15.h5 file scanpy downloads, or an .h5ad file."
            )
        x = f["data.debatched"][()]
        genes = f["data.debatched_rownames"][()].astype(str)
        cells = f["data.debatched_colnames"][()].astype(str)
        clusters = f["cluster.id"][()].ravel().astype(int) if "cluster.id" in f else None
        info = f["info.genes_strings"][()].astype(str) if "info.genes_strings" in f else None
    x = np.asarray(x, dtype=np.float32).T
    if x.shape != (cells.size, genes.size):
        raise GclFormatError(
            f"{path}: data.debatched has shape {x.shape[::-1]} but there are {genes.size} gene "
            f"and {cells.size} cell names; the file is damaged, download it again."
        )
    if not np.isfinite(x).all() or (x < 0).any():
        raise GclFormatError(f"{path}: the matrix has negative or non-finite values.")
    obs = pd.DataFrame(index=pd.Index(cells, name=None))
    if clusters is not None:
        if clusters.size != cells.size or clusters.min() < 1 or clusters.max() > 19:
            raise GclFormatError(f"{path}: cluster.id does not hold one cluster 1–19 per cell.")
        names = [f"{c}{_SCANPY_CLUSTER_NAMES[c - 1]}" for c in clusters]
        order = [f"{c}{n}" for c, n in enumerate(_SCANPY_CLUSTER_NAMES, start=1)]
        obs["paul15_clusters"] = pd.Categorical(names, categories=order)
    # as scanpy: keep the first of the two equivalent names per gene, then the informative
    # genes of Paul et al. (3,451 of them; the 10 with corrupted names drop out)
    genes = np.array([g.split(";")[0] for g in genes])
    keep = np.ones(genes.size, dtype=bool)
    if info is not None:
        keep = np.isin(genes, info)
        _, first = np.unique(genes, return_index=True)
        unique = np.zeros(genes.size, dtype=bool)
        unique[first] = True
        keep &= unique
    x = x[:, keep]
    genes = genes[keep]
    order = np.argsort(genes, kind="stable")  # scanpy's intersect1d sorts the genes
    x, genes = x[:, order], genes[order]
    integer = bool(np.all(x == np.round(x)))
    adata = ad.AnnData(
        X=sp.csr_matrix(x),
        obs=obs,
        var=pd.DataFrame(index=pd.Index(genes, name=None)),
    )
    if integer:
        adata.layers[Key.layers.counts] = sp.csr_matrix(x.astype(np.int32))
    adata.var_names_make_unique()
    if adata.n_obs == 2730:  # the published file: root cell of Haghverdi et al. (2016), as scanpy
        adata.uns["iroot"] = 840
    return adata


def _hdf5_kind(path: Path) -> str | None:
    """``"paul15"`` for scanpy's raw layout, ``"h5ad"`` for AnnData, else ``None``."""
    import h5py

    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            if "data.debatched" in f:
                return "paul15"
            if "X" in f and "obs" in f and "var" in f:
                return "h5ad"
    except OSError:  # not HDF5
        return None
    return None


def _read_local(path: Path) -> AnnData:
    kind = _hdf5_kind(path)
    if kind == "paul15":
        return _read_scanpy_h5(path)
    from .. import io

    # an .h5ad saved under a .h5 suffix would otherwise be taken for a 10x .h5 file
    return io.read(path, format="h5ad" if kind == "h5ad" else None)


def _annotate(adata: AnnData) -> AnnData:
    """Add ``obs["celltype"]`` from Paul et al.'s clusters when the file has only those."""
    if Key.obs.celltype in adata.obs or "paul15_clusters" not in adata.obs:
        return adata
    number = (
        adata.obs["paul15_clusters"].astype(str).str.extract(r"^(\d+)", expand=False).astype(float)
    )
    label = number.map(PAUL15_CLUSTER_CELLTYPES)
    if label.isna().any():
        bad = sorted(set(adata.obs["paul15_clusters"].astype(str)[label.isna()]))
        raise GclFormatError(
            f"paul15_clusters has values {bad[:5]} that are not Paul et al.'s clusters 1–19."
        )
    present = [c for c in _CELLTYPE_ORDER if c in set(label)]
    adata.obs[Key.obs.celltype] = pd.Categorical(label.to_numpy(), categories=present)
    return adata


def paul15(*, path: str | os.PathLike | None = None) -> AnnData:
    """Myeloid progenitor development of Paul et al. (2015), all 2,730 cells.

    MARS-seq UMI counts of mouse bone-marrow myeloid progenitors (Paul et al., Cell 163:1663,
    2015), in the version scanpy distributes (``scanpy.datasets.paul15``): 2,730 cells × the
    3,451 informative genes of the paper. With ``path=None`` the file ``paul15.h5`` (10 MB)
    is downloaded once with pooch into the cache folder (``$GCL_DATA_DIR`` if set, otherwise
    ``pooch.os_cache("gclandscape")``) and verified against its published SHA-256; later
    calls read the cached copy and need no network.

    Parameters
    ----------
    path
        A local copy instead of the download: scanpy's ``paul15.h5`` (plain HDF5), or an
        ``.h5ad`` (also accepted under a ``.h5`` suffix) or any other file
        :func:`gclandscape.io.read` reads.

    Returns
    -------
    AnnData
        Cells × genes with the UMI counts in ``X`` (float32) and as integers in
        ``layers["counts"]``, Paul et al.'s clusters in ``obs["paul15_clusters"]`` (scanpy's
        names ``"1Ery"`` … ``"19Lymph"``) and the cell types in ``obs["celltype"]``:
        clusters 1–6 → Erythrocyte, 7 (MEP) → Multipotent progenitors, 8 → Megakaryocytes,
        9–10 → GMP, 11 → Dendritic cells, 12–13 → Basophils, 14–15 → Monocytes,
        16–17 → Neutrophils, 18 → Eosinophils, 19 → Lymphoid (the annotation of the same
        cells in tradeSeq/Monocle, whose 7 trajectory types are those of
        ``../shared/data/paul15``; the last three types lie off the myeloid trajectory).
        An input that already has ``obs["celltype"]`` keeps it. ``uns["iroot"]`` is the root
        cell scanpy sets (840, after Haghverdi et al. 2016).

    Raises
    ------
    GclDownloadError
        The download failed (offline, DNS error, timeout, server error) or the file failed
        its checksum; the message says why and how to pass a local file instead.
    GclFileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.paul15()  # doctest: +SKIP
    >>> adata.shape  # doctest: +SKIP
    (2730, 3451)
    >>> adata = gcl.datasets.paul15(path="paul15.h5")  # doctest: +SKIP
    """
    if path is None:
        file = _download()
        origin = f"downloaded ({file})"
    else:
        file = Path(path).expanduser()
        if not file.exists():
            raise GclFileNotFoundError(
                f"{file} does not exist. Pass the path of a local copy of {PAUL15_FILENAME} "
                f"(from {PAUL15_URL}), or call gcl.datasets.paul15() without a path to download it."
            )
        origin = str(file)
    adata = _annotate(_read_local(file))
    logger.info("paul15: %d cells × %d genes from %s", adata.n_obs, adata.n_vars, origin)
    return adata
