"""Screen checkpoints: one Parquet file per finished perturbation, checked before reuse.

A file is named by a hash of the perturbation and a *fingerprint* of everything its rows
depend on: the genome (every member, all parameters), the start cells, the fate references
(attractor states and cell-type labels), the settings, the simulation constants and the
package version. The file also stores the fingerprint and the perturbation's name in its
Parquet metadata, so a file copied over another, one from another run, or a truncated one
is recognised; such a file is recomputed with a warning that names it (a screen is never
lost to a damaged checkpoint, and never fed a wrong one). Files are written to a temporary
name and moved into place, so an interrupted write leaves no half file under a real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Parquet schema-metadata key of a checkpoint's identity.
META_KEY = b"gclandscape.checkpoint"


def _feed(h: Any, obj: Any) -> None:
    """Hash ``obj`` canonically (dict keys sorted, arrays by dtype, shape and bytes)."""
    if isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(f"[{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, np.ndarray):
        h.update(f"<{obj.dtype.str}{obj.shape}".encode())
        if obj.dtype.kind == "O":
            h.update(json.dumps([str(v) for v in obj.ravel()]).encode())
        else:
            h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, pd.DataFrame | pd.Series):
        _feed(h, obj.to_dict())
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def fingerprint(parts: dict[str, Any]) -> str:
    """SHA-256 of a nested structure of dicts, lists, arrays and scalars.

    Examples
    --------
    >>> fingerprint({"a": 1}) == fingerprint({"a": 1}) != fingerprint({"a": 2})
    True
    """
    h = hashlib.sha256()
    _feed(h, parts)
    return h.hexdigest()


def checkpoint_file(folder: Path, name: str, fp: str) -> Path:
    """The file of perturbation ``name`` under fingerprint ``fp``."""
    digest = hashlib.sha256(f"{fp}|{name}".encode()).hexdigest()[:24]
    return folder / f"{digest}.parquet"


def write(df: pd.DataFrame, path: Path, *, name: str, fp: str) -> None:
    """Write ``df`` with its identity in the metadata, atomically (temp file + ``os.replace``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps({"fingerprint": fp, "perturbation": name}).encode()
    table = table.replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(
    path: Path, *, name: str, fp: str, normalise: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame | None:
    """The rows stored for perturbation ``name``, or ``None`` (with a warning naming the file)
    when the file is unreadable or holds another perturbation or another run's rows."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # any Arrow/OS error: the file is damaged, recompute it
        _warn(path, f"is unreadable ({type(err).__name__}: {err})")
        return None
    raw = (table.schema.metadata or {}).get(META_KEY)
    try:
        ident = json.loads(raw) if raw is not None else {}
    except ValueError:
        ident = {}
    df = table.to_pandas()
    stored = sorted(set(df["perturbation"].astype(str))) if "perturbation" in df else []
    if ident.get("perturbation") != name or stored != [name]:
        held = ", ".join(map(repr, stored)) or "no perturbation"
        _warn(path, f"holds {held}, not {name!r} (copied over or renamed?)")
        return None
    if ident.get("fingerprint") != fp:
        _warn(path, "was written for another genome, landscape or settings")
        return None
    return normalise(df)


def _warn(path: Path, what: str) -> None:
    warnings.warn(
        f"screen checkpoint {path} {what}; recomputing that perturbation and replacing the file.",
        UserWarning,
        stacklevel=4,
    )
