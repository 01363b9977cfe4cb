"""``gcl.datasets.prior_network``: a curated, signed TF → target network as a prior for ``fit_grn``.

The resource is CollecTRI (Müller-Dott et al., *Nucleic Acids Research* 51:10934, 2023;
CC BY 4.0): the file ``CollecTRI_regulons.csv`` of Zenodo record 8192729, the one
``decoupler.op.collectri`` reads, downloaded once with pooch and checked against the MD5 that
Zenodo publishes for it. Mouse is translated from human by orthology as decoupler does
(``decoupler.op.translate``): HGNC's HCOP human–mouse table, orthologs supported by at least
3 resources, a human gene with more than 5 mouse orthologs dropped. A local CSV/TSV in any
common sign convention is read with ``path=``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import GclDownloadError, GclError, GclFileNotFoundError, GclFormatError
from .._signs import parse_sign
from .._utils import logger
from ._paul15 import DATA_DIR_ENV, DOWNLOAD_TIMEOUT, _describe, cache_dir

#: CollecTRI v2.0 (human), as read by ``decoupler.op.collectri`` (decoupler 2.x).
COLLECTRI_URL = "https://zenodo.org/records/8192729/files/CollecTRI_regulons.csv"
COLLECTRI_FILENAME = "CollecTRI_regulons.csv"
#: MD5 that Zenodo publishes for the file (4,345,649 bytes; SHA-256
#: 4473c9189dd53dacc80297709ad1452dda1086a1cc2185f9a56146c261668701 as recorded by others).
COLLECTRI_MD5 = "cee4a3943c059e6dd8796ced6dec44f6"
#: HGNC's HCOP human–mouse orthology table, the one ``decoupler.op.translate`` reads.
HCOP_URL = (
    "https://storage.googleapis.com/public-download-files/hcop/"
    "human_mouse_hcop_fifteen_column.txt.gz"
)
HCOP_FILENAME = "human_mouse_hcop_fifteen_column.txt.gz"
#: HGNC publishes no checksum for the HCOP tables and regenerates them with every update, so
#: none can be pinned: the first download is cached and reused as it is.
HCOP_HASH = None
#: decoupler's defaults for the translation: orthology resources needed, most orthologs kept.
MIN_EVIDENCE = 3
ONE_TO_MANY = 5

ORGANISMS = ("human", "mouse")
#: Column names read as the sign, in this order of preference.
_SIGN_COLUMNS = ("sign", "weight", "mor", "mode", "type", "effect", "regulation")
_SIGNS_ACCEPTED = (
    "'+'/'-', 1/-1 or any signed non-zero number, 'activation'/'repression' (any case)"
)


def _fetch(url: str, fname: str, known_hash: str | None, what: str, organism: str) -> Path:
    """Download ``url`` into the cache (or find it there); offline -> GclDownloadError."""
    import pooch
    import requests

    folder = cache_dir()
    hint = (
        f"To work offline, download {url} on a machine with internet access and put it into "
        f"the cache folder as {folder / fname} (set ${DATA_DIR_ENV} to choose another folder), "
        "or pass a local network file: gcl.datasets.prior_network("
        f'"{organism}", path="/path/to/network.csv") with columns source, target and a sign '
        f"({_SIGNS_ACCEPTED})."
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(
            pooch.retrieve(
                url,
                known_hash=known_hash,
                fname=fname,
                path=folder,
                downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT),
            )
        )
    except ValueError as exc:  # pooch: the file's hash does not match
        reason = (
            f"the file failed its checksum ({known_hash}) and was discarded"
            if "hash" in str(exc).lower()
            else str(exc)
        )
        raise GclDownloadError(f"Downloading {what} from {url} failed: {reason}. {hint}") from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise GclDownloadError(
            f"Downloading {what} from {url} failed: {_describe(exc)}. {hint}"
        ) from exc


def _read_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() in {".tsv", ".tab", ".txt"} or ".tsv" in path.name else ","
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise GclFormatError(
            f"{path} could not be read as a {'TSV' if sep == chr(9) else 'CSV'} table ({exc}). "
            "Pass a comma- (.csv) or tab-separated (.tsv) file with a header row: source, "
            "target and a sign column."
        ) from exc


def to_signed_edges(table: pd.DataFrame, *, origin: str = "the network") -> pd.DataFrame:
    """A ``source, target, sign`` DataFrame (sign ±1) from a table in any sign convention.

    The table needs columns ``source`` and ``target`` (any case) and a sign column, the first
    of ``sign``, ``weight``, ``mor``, ``mode``, ``type``, ``effect``, ``regulation``: ``'+'``
    / ``'-'``, ``1`` / ``-1`` or any signed non-zero number, ``activation`` / ``repression``
    (and ``activator``, ``positive``, ``inhibition``, ``negative``...; any case). Repeated
    source–target pairs keep their first row.

    Examples
    --------
    >>> import pandas as pd
    >>> from gclandscape.datasets._prior import to_signed_edges
    >>> t = pd.DataFrame({"source": ["A", "B"], "target": ["B", "C"], "weight": [0.4, -2]})
    >>> to_signed_edges(t)["sign"].tolist()
    [1, -1]
    """
    columns = {str(c).strip().lower(): c for c in table.columns}
    missing = [c for c in ("source", "target") if c not in columns]
    if missing:
        raise GclFormatError(
            f"{origin} has no column {' or '.join(map(repr, missing))} (columns: "
            f"{list(table.columns)[:10]}). A prior network needs columns source, target and a "
            f"sign ({', '.join(_SIGN_COLUMNS)})."
        )
    sign_col = next((columns[c] for c in _SIGN_COLUMNS if c in columns), None)
    if sign_col is None:
        raise GclFormatError(
            f"{origin} has no sign column (looked for {', '.join(_SIGN_COLUMNS)}; columns: "
            f"{list(table.columns)[:10]}). Add one with {_SIGNS_ACCEPTED}."
        )
    source = table[columns["source"]].astype(str).str.strip()
    target = table[columns["target"]].astype(str).str.strip()
    signs = [parse_sign(v) or None for v in table[sign_col]]  # a zero is no sign here
    bad = [i for i, s in enumerate(signs) if s is None]
    empty = (source == "") | (target == "") | source.isin(["nan"]) | target.isin(["nan"])
    if bad:
        shown = ", ".join(repr(table[sign_col].iloc[i]) for i in bad[:5])
        raise GclFormatError(
            f"{origin}: {len(bad)} rows have a {sign_col!r} that is not a sign ({shown}"
            f"{' ...' if len(bad) > 5 else ''}; first at data row {bad[0] + 1}). Accepted: "
            f"{_SIGNS_ACCEPTED}; fix or drop those rows."
        )
    if empty.any():
        raise GclFormatError(
            f"{origin}: {int(empty.sum())} rows have an empty source or target (first at data "
            f"row {int(np.flatnonzero(empty.to_numpy())[0]) + 1}); fix or drop them."
        )
    edges = pd.DataFrame({"source": source.to_numpy(), "target": target.to_numpy()})
    edges["sign"] = np.asarray(signs, dtype=np.int64)
    n = len(edges)
    edges = edges.drop_duplicates(["source", "target"], keep="first").reset_index(drop=True)
    if len(edges) < n:
        logger.info("prior_network: %d repeated source-target rows dropped", n - len(edges))
    if edges.empty:
        raise GclFormatError(f"{origin} has no edges.")
    return edges


def _read_collectri(path: Path) -> pd.DataFrame:
    return to_signed_edges(pd.read_csv(path, dtype=str, keep_default_na=False), origin=str(path))


def _orthologs(path: Path) -> dict[str, list[str]]:
    """Human symbol -> mouse symbols from HCOP, as ``decoupler.op.translate`` filters them."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, compression="gzip")
    need = {"human_symbol", "mouse_symbol", "support"}
    if not need <= set(table.columns):
        raise GclFormatError(
            f"{path} is not HCOP's human-mouse table (columns {sorted(need - set(table.columns))}"
            f" missing); delete it from the cache so that it is downloaded again."
        )
    evidence = table["support"].str.split(",").str.len()
    table = table[(evidence >= MIN_EVIDENCE) & (table["mouse_symbol"] != "")]
    pairs = table[["human_symbol", "mouse_symbol"]].drop_duplicates()
    mapping = pairs.groupby("human_symbol")["mouse_symbol"].apply(list).to_dict()
    return {h: m for h, m in mapping.items() if len(m) <= ONE_TO_MANY}


def _translate(edges: pd.DataFrame, orthologs: dict[str, list[str]]) -> pd.DataFrame:
    out = edges.assign(source=edges["source"].map(orthologs), target=edges["target"].map(orthologs))
    out = out.dropna(subset=["source", "target"]).explode("source").explode("target")
    return out.drop_duplicates(["source", "target"]).reset_index(drop=True)


def prior_network(
    organism: str = "human",
    *,
    path: str | os.PathLike | None = None,
    genes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """A curated, signed transcription factor → target network to use as a prior.

    Without ``path`` this is CollecTRI (Müller-Dott et al., *Nucleic Acids Research*
    51:10934, 2023; licence CC BY 4.0): about 43,000 signed TF → target edges of 1,186 human
    regulators collected from 12 resources, the file ``CollecTRI_regulons.csv`` of Zenodo
    record 8192729 that ``decoupler.op.collectri`` reads. It is downloaded once with pooch
    into the cache folder (``$GCL_DATA_DIR`` if set, otherwise
    ``pooch.os_cache("gclandscape")``) and checked against the MD5 that Zenodo publishes;
    later calls read the cached copy and need no network. For ``organism="mouse"`` the human
    network is translated by orthology as ``decoupler.op.translate`` does it: HGNC's HCOP
    human–mouse table (downloaded and cached the same way; HGNC publishes no checksum for it),
    orthologs supported by at least 3 resources, human genes with more than 5 mouse orthologs
    dropped, each edge copied to every ortholog pair. The complexes ``AP1`` and ``NFKB`` are
    kept as sources in human and drop out in mouse.

    Parameters
    ----------
    organism
        ``"human"`` or ``"mouse"``. With ``path`` it is only recorded: the file is read as is.
    path
        A local network instead of the download: a CSV (``.csv``) or TSV (``.tsv``, ``.txt``)
        with a header row, columns ``source`` and ``target`` and a sign column (the first of
        ``sign``, ``weight``, ``mor``, ``mode``, ``type``, ``effect``, ``regulation``):
        ``'+'``/``'-'``, ``1``/``-1`` or a signed weight, or ``activation``/``repression``.
        A CollecTRI file saved by decoupler (``ct.to_csv(...)``) works as it is.
    genes
        Keep only the edges whose source and target are both among these genes, e.g. the
        genes ``fit_grn`` will model (optional: ``fit_grn`` drops and counts the rows that
        name genes it does not model).

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``target``, ``sign`` (``+1`` activation, ``-1`` repression), one
        row per source–target pair (a repeated pair keeps its first row), ready for
        ``gcl.landscape.fit_grn(adata, prior=...)``.

    Raises
    ------
    GclDownloadError
        The download failed (offline, DNS error, timeout, server error) or the file failed
        its checksum; the message names the URL and how to pass a local file instead.
    GclFileNotFoundError
        ``path`` does not exist.
    GclFormatError
        The file lacks a source, target or sign column, or has a row whose sign cannot be
        read (the message shows it and the accepted conventions).
    GclError
        An unknown ``organism``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import gclandscape as gcl
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "prior.csv"
    >>> _ = f.write_text("source,target,mode\\nSpi1,Cebpa,activation\\nGata1,Spi1,repression\\n")
    >>> gcl.datasets.prior_network("mouse", path=f)
      source target  sign
    0   Spi1  Cebpa     1
    1  Gata1   Spi1    -1
    >>> ct = gcl.datasets.prior_network("human")  # doctest: +SKIP
    """
    if not isinstance(organism, str) or organism.lower() not in ORGANISMS:
        raise GclError(
            f"organism={organism!r} is not available; choose one of {list(ORGANISMS)}, or pass "
            "a local network of any organism with path=."
        )
    organism = organism.lower()
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise GclFileNotFoundError(
                f"{file} does not exist. Pass the path of a CSV/TSV network (source, target, "
                f"sign), or call gcl.datasets.prior_network({organism!r}) without a path to "
                "download CollecTRI."
            )
        edges = to_signed_edges(_read_table(file), origin=str(file))
        origin = str(file)
    else:
        file = _fetch(
            COLLECTRI_URL, COLLECTRI_FILENAME, f"md5:{COLLECTRI_MD5}", "CollecTRI", organism
        )
        edges = _read_collectri(file)
        origin = f"CollecTRI ({file})"
        if organism == "mouse":
            hcop = _fetch(HCOP_URL, HCOP_FILENAME, HCOP_HASH, "the HCOP orthology table", organism)
            edges = _translate(edges, _orthologs(hcop))
            origin += f", translated to mouse with HCOP ({hcop})"
    if genes is not None:
        keep = {str(g) for g in ([genes] if isinstance(genes, str) else genes)}
        edges = edges[edges["source"].isin(keep) & edges["target"].isin(keep)]
        edges = edges.reset_index(drop=True)
    logger.info("prior_network: %d signed edges from %s", len(edges), origin)
    return edges
