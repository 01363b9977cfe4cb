"""Tidy DataFrames read from AnnData slots (no computation beyond reshaping)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._keys import Key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData


def grn_edges(adata: AnnData, *, key: str = Key.uns.genome) -> pd.DataFrame:
    """The genome's edges as a tidy DataFrame sorted by ``|weight|``.

    For an ensemble (``fit_grn(n_genomes=K)``) the rows are the edges held by any member.

    Parameters
    ----------
    adata
        Annotated data matrix with a genome from :func:`gclandscape.landscape.fit_grn` (or a
        stored hand-built one).
    key
        Key the genome was written to.

    Returns
    -------
    DataFrame with ``source``, ``target``, ``weight`` (signed: the production Jacobian averaged
    over cells; for an ensemble its mean over the members, a member without the edge counting
    0), ``sign``, when bootstrapped ``confidence`` (of the first member), and
    ``member_share``: the share of the ensemble's members holding the edge (1.0 with one).

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> a = ad.AnnData(np.zeros((2, 2)))
    >>> a.var_names = ["A", "B"]
    >>> gcl.landscape.Genome(["A", "B"], [[0, -2.0], [1.0, 0]]).write_to_adata(a)
    >>> gcl.get.grn_edges(a)[["source", "target", "weight", "member_share"]].values.tolist()
    [['B', 'A', -2.0, 1.0], ['A', 'B', 1.0, 1.0]]
    """
    from ..landscape._genome import Genome
    from ..landscape._members import ensemble_edges

    return ensemble_edges(Genome.from_adata(adata, key))
