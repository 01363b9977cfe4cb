"""BEELINE benchmark folders: ExpressionData.csv, PseudoTime.csv and refNetwork.csv."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import GclFileNotFoundError, GclFormatError
from .._keys import Key
from .._signs import parse_sign
from ._formats import _BEELINE_EXPRESSION, _guard
from ._text import _read_text


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
        sign = np.array([parse_sign(v) or 0 for v in df[typ]], dtype=np.int64)
        if (sign == 0).any():
            i = int(np.argmax(sign == 0))
            raise GclFormatError(
                f"{path}: edge {i + 1} ({df[src].iloc[i]} -> {df[tgt].iloc[i]}) has Type "
                f"{df[typ].iloc[i]!r}, which is neither activation nor repression. Fix: use "
                "'+' for activation and '-' for repression."
            )
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
