"""An ensemble of genomes: how its members are stored, and the edges they share.

:func:`~gclandscape.landscape.fit_grn` with ``n_genomes=K`` keeps K member genomes that
differ in structure (resamples of the cells, sparsity levels, with and without the prior);
their disagreement measures what the data cannot decide. One :class:`~gclandscape.landscape.
Genome` object carries them all: it *is* its first member (everything that expects one genome
uses that one) and hands out the others with ``genome.member(i)``.

Storage is plain arrays (``.h5ad``, no pickle): the first member's dict as
:meth:`Genome.to_dict` writes it, plus ``["members"]``, a dict of the same nesting in which
every per-member entry (weights, rates, model parameters, masks) is stacked along a leading
member axis. Strings (genes, kind, edits), the first member's bootstrap ``confidence`` and the
``info`` dict are shared and stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError, GclFormatError

if TYPE_CHECKING:  # pragma: no cover
    from ._genome import Genome

#: Entry of a stored genome dict that holds the stacked members ...
MEMBERS = "members"
#: ... and the number of members inside it.
N_MEMBERS = "n_members"
#: Top-level entries shared by every member (stored once, with the first member).
_SHARED = frozenset({"format", "confidence", "info", MEMBERS})


def _is_numeric(value: Any) -> bool:
    if isinstance(value, str | bytes):
        return False
    arr = np.asarray(value)
    return arr.dtype.kind in "biuf"


def _stack(dicts: Sequence[dict], *, top: bool) -> dict[str, Any]:
    """Stack the numeric entries present in every dict (recursively) along a new axis 0."""
    out: dict[str, Any] = {}
    for name, value in dicts[0].items():
        if (top and name in _SHARED) or any(name not in d for d in dicts[1:]):
            continue
        if isinstance(value, dict):
            if all(isinstance(d[name], dict) for d in dicts):
                out[name] = _stack([d[name] for d in dicts], top=False)
        elif _is_numeric(value):
            arrays = [np.asarray(d[name]) for d in dicts]
            if any(a.shape != arrays[0].shape for a in arrays[1:]):
                raise GclError(
                    f"ensemble members differ in the shape of {name!r} "
                    f"({sorted({a.shape for a in arrays})}); members need the same genes "
                    "and the same model size."
                )
            out[name] = np.stack(arrays)
    return out


def stack_members(dicts: Sequence[dict]) -> dict[str, Any]:
    """The ``["members"]`` entry for member dicts written by :meth:`Genome.to_dict`.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> a = gcl.landscape.Genome(["A", "B"], [[0, 1.0], [0, 0]])
    >>> b = gcl.landscape.Genome(["A", "B"], [[0, 0], [2.0, 0]])
    >>> stacked = stack_members([a.to_dict(), b.to_dict()])
    >>> int(stacked["n_members"]), stacked["W"].shape
    (2, (2, 2, 2))
    """
    out = _stack(dicts, top=True)
    out[N_MEMBERS] = len(dicts)
    return out


def _replace(base: dict, stacked: dict, i: int) -> dict:
    out = dict(base)
    for name, value in stacked.items():
        if isinstance(value, dict):
            out[name] = _replace(dict(base.get(name, {})), value, i)
        else:
            arr = np.asarray(value)
            out[name] = arr[i].item() if arr.ndim == 1 else arr[i]
    return out


def unstack_members(d: dict) -> list[dict]:
    """The member dicts of a stored genome dict (one, the dict itself, without members)."""
    stacked = d.get(MEMBERS)
    base = {k: v for k, v in d.items() if k != MEMBERS}
    if stacked is None:
        return [base]
    try:
        n = int(np.asarray(stacked[N_MEMBERS]))
    except (KeyError, TypeError, ValueError):
        raise GclFormatError(
            f"stored genome ensemble: entry {MEMBERS!r} lacks {N_MEMBERS!r} (expected what "
            "Genome.write_to_adata writes)."
        ) from None
    values = {k: v for k, v in stacked.items() if k != N_MEMBERS}
    others = {k: v for k, v in base.items() if k != "confidence"}
    # the bootstrap confidence was measured for the first member only
    return [_replace(base if i == 0 else others, values, i) for i in range(n)]


def check_members(members: Sequence[Genome]) -> None:
    """Raise a GclError unless the genomes can form one ensemble (same genes and kind)."""
    if not members:
        raise GclError("an ensemble needs at least one member genome.")
    first = members[0]
    for k, m in enumerate(members[1:], start=1):
        if m.genes != first.genes or m.kind != first.kind:
            raise GclError(
                f"ensemble member {k} has genes {m.genes[:5]} ({m.kind}); member 0 has "
                f"{first.genes[:5]} ({first.kind}). Members need the same genes in the same "
                "order and the same model family."
            )
        if m.n_members > 1:
            raise GclError(f"ensemble member {k} is itself an ensemble; pass single genomes.")


def ensemble_edges(genome: Genome) -> pd.DataFrame:
    """Edges held by any member, with the share of members holding each.

    ``weight`` is the mean over members (a member without the edge counts 0), so with one
    member the table is :meth:`Genome.edges` plus ``member_share`` = 1.0.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> a = gcl.landscape.Genome(["A", "B"], [[0, 1.0], [0, 0]])
    >>> b = gcl.landscape.Genome(["A", "B"], [[0, 3.0], [2.0, 0]])
    >>> ens = gcl.landscape.Genome.ensemble([a, b])
    >>> ensemble_edges(ens)[["source", "target", "weight", "member_share"]].values.tolist()
    [['B', 'A', 2.0, 1.0], ['A', 'B', 1.0, 0.5]]
    """
    if genome.n_members == 1:
        df = genome.edges()
        df["member_share"] = 1.0
        return df
    weights = np.stack([m.W.to_numpy() for m in genome])
    held = (weights != 0).mean(axis=0)
    return edge_table(
        genome.genes,
        weights.mean(axis=0),
        held > 0,
        confidence=genome.confidence,
        member_share=held,
    )


def edge_table(
    genes: Sequence[str],
    weight: np.ndarray,
    keep: np.ndarray,
    *,
    confidence: np.ndarray | None = None,
    member_share: np.ndarray | None = None,
) -> pd.DataFrame:
    """Tidy table of the ``keep`` entries of target × source matrices, sorted by ``|weight|``."""
    tgt, src = np.nonzero(keep)
    df = pd.DataFrame(
        {
            "source": [genes[j] for j in src],
            "target": [genes[i] for i in tgt],
            "weight": weight[tgt, src],
        }
    )
    df["sign"] = np.sign(df["weight"]).astype(int)
    if confidence is not None:
        df["confidence"] = confidence[tgt, src]
    if member_share is not None:
        df["member_share"] = member_share[tgt, src]
    order = np.argsort(-np.abs(df["weight"].to_numpy()), kind="stable")
    return df.iloc[order].reset_index(drop=True)
