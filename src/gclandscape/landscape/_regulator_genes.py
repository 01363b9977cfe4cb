"""What ``fit_grn`` models: its genes (the expressed regulators by default) and the edges a
prior network allows among them.

One home for both rules, used by :func:`gclandscape.landscape.fit_grn` and by
``gclandscape run`` (``--organism``, ``--prior``), so that the library and the command line
model the same regulators and read a prior the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._signs import parse_sign
from .._utils import logger

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: At most this many genes are modelled when ``genes`` is None (highly variable genes, or
#: the expressed regulators).
MAX_DEFAULT_GENES = 200
#: A flagged regulator counts as expressed, and is modelled by default, when it is detected
#: in at least this share of the cells (an undetected TF gives the regression no signal).
MIN_DETECTED = 0.05
_RANK_COL = "highly_variable_rank"


def detected_fraction(adata: AnnData) -> pd.Series:
    """Share of the cells in which each gene is detected.

    Parameters
    ----------
    adata
        Annotated data matrix; detection is a count > 0 in ``.layers["counts"]``, or
        ``.X`` > 0 without counts.

    Returns
    -------
    pandas.Series
        Indexed by ``var_names``, values in [0, 1].

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from gclandscape.landscape._regulator_genes import detected_fraction
    >>> detected_fraction(ad.AnnData(np.array([[0.0, 1.0], [2.0, 3.0]]))).tolist()
    [0.5, 1.0]
    """
    matrix = adata.layers.get(Key.layers.counts, adata.X)
    n = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
    return pd.Series(n / max(adata.n_obs, 1), index=adata.var_names)


def expressed_regulators(
    adata: AnnData, *, min_detected: float = MIN_DETECTED, cap: int | None = None
) -> list[str]:
    """The regulators flagged in ``.var["gcl_regulator"]`` detected in at least
    ``min_detected`` of the cells; of more than ``cap``, the most variable.

    The ranking is the one ``fit_grn(genes=n)`` uses: scanpy's ``highly_variable_rank``
    (:func:`gclandscape.pp.recipe`), then, for regulators outside the highly variable genes
    (or without the column), the share of cells that detect them. Variation is what the
    regression learns from; a regulator expressed at a high, constant level tells it little.

    Parameters
    ----------
    adata
        Annotated data matrix with ``.var["gcl_regulator"]``
        (:func:`gclandscape.pp.annotate_regulators`).
    min_detected
        Share of the cells (count > 0, or ``.X`` > 0 without counts) a regulator must be
        detected in.
    cap
        At most this many (default :data:`MAX_DEFAULT_GENES`).

    Returns
    -------
    list of str
        In ``var_names`` order; possibly fewer than 2 (the callers say what to do).

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from gclandscape.landscape._regulator_genes import expressed_regulators
    >>> a = ad.AnnData(np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]]))
    >>> a.var_names = ["Gata1", "Irf8", "Actb"]
    >>> a.var["gcl_regulator"] = [True, True, False]
    >>> expressed_regulators(a)
    ['Gata1']
    """
    cap = MAX_DEFAULT_GENES if cap is None else int(cap)
    flagged = adata.var[Key.var.regulator].to_numpy(dtype=bool)
    detected = detected_fraction(adata).to_numpy()
    keep = np.flatnonzero(flagged & (detected >= min_detected))
    if len(keep) > cap:
        rank = (
            adata.var[_RANK_COL].to_numpy(dtype=np.float64)
            if _RANK_COL in adata.var
            else np.full(adata.n_vars, np.nan)
        )
        rank = np.where(np.isfinite(rank), rank, np.inf)
        order = np.lexsort((-detected[keep], rank[keep]))  # the last key sorts first
        keep = np.sort(keep[order[:cap]])  # data order, as fit_grn keeps it
    return [str(adata.var_names[i]) for i in keep]


def _default_regulators(adata: AnnData) -> list[str]:
    """:func:`expressed_regulators` for ``fit_grn(genes=None)``; fewer than 2 is an error."""
    flagged = adata.var[Key.var.regulator].to_numpy(dtype=bool)
    detected = detected_fraction(adata).to_numpy()
    expressed = flagged & (detected >= MIN_DETECTED)
    if expressed.sum() < 2:
        names = [str(g) for g in adata.var_names[expressed]]
        raise GclError(
            f"{int(expressed.sum())} of the {int(flagged.sum())} regulators flagged in "
            f".var[{Key.var.regulator!r}] are detected in at least {MIN_DETECTED:.0%} of the "
            f"cells ({', '.join(names) or 'none'}); a network needs at least 2. Pass "
            "genes=[...] to fit_grn to choose the genes, or check the annotation (organism, "
            "gene symbols)."
        )
    chosen = expressed_regulators(adata)
    logger.info(
        "fit_grn: %d of %d flagged regulators are expressed (detected in >= %.0f%% of cells); "
        "modelling %d",
        int(expressed.sum()),
        int(flagged.sum()),
        100 * MIN_DETECTED,
        len(chosen),
    )
    return chosen


def select_genes(adata: AnnData, genes: Sequence[str] | int | None) -> list[str]:
    """The genes ``fit_grn(genes=...)`` models (see its ``genes``), checked.

    Parameters
    ----------
    adata
        Annotated data matrix.
    genes
        A list of genes, a number of highly variable genes, or None (the expressed
        regulators when ``.var["gcl_regulator"]`` flags any, else highly variable genes).

    Returns
    -------
    list of str

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from gclandscape.landscape._regulator_genes import select_genes
    >>> a = ad.AnnData(np.ones((3, 3)))
    >>> a.var_names = ["a", "b", "c"]
    >>> select_genes(a, None), select_genes(a, ["c", "a"])
    (['a', 'b', 'c'], ['c', 'a'])
    """
    if genes is None:
        if Key.var.regulator in adata.var and adata.var[Key.var.regulator].to_numpy(bool).any():
            return _default_regulators(adata)
        if Key.var.highly_variable not in adata.var and adata.n_vars <= MAX_DEFAULT_GENES:
            return list(adata.var_names)
        genes = MAX_DEFAULT_GENES
    if isinstance(genes, int | np.integer):
        n = int(genes)
        if n < 2:
            raise GclError(f"genes={n}: a network needs at least 2 genes.")
        if Key.var.highly_variable not in adata.var:
            raise GclError(
                "genes is a number but adata.var has no 'highly_variable' column; run "
                "gcl.pp.recipe(adata) first or pass a list of genes."
            )
        hv = adata.var[Key.var.highly_variable].to_numpy(dtype=bool)
        if _RANK_COL in adata.var and adata.var[_RANK_COL].notna().any():
            order = np.argsort(adata.var[_RANK_COL].fillna(np.inf).to_numpy(), kind="stable")
        else:
            order = np.flatnonzero(hv)
        return [adata.var_names[i] for i in order if hv[i]][:n]
    genes = [genes] if isinstance(genes, str) else [str(g) for g in genes]
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise GclError(
            f"{len(missing)} genes are not in adata.var_names: {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}. Check the spelling or subset the list."
        )
    if len(set(genes)) != len(genes):
        raise GclError("genes has duplicates; pass each gene once.")
    if len(genes) < 2:
        raise GclError("a network needs at least 2 genes.")
    return genes


# ----------------------------------------------------------------------------- prior network
_SIGNS_ACCEPTED = (
    "'+'/'-', 1/-1 (or any signed number), 'activation'/'repression' (any case), or empty"
)


def _parse_sign(value: Any) -> int | None:
    """+1, -1 or 0 (free) for one prior sign, or None when it cannot be read."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return 0
    if isinstance(value, str) and not value.strip():
        return 0
    return parse_sign(value)


def _prior_signs(values: pd.Series) -> np.ndarray:
    """Each row's sign in {-1, 0, +1}; every unreadable value is named in one error."""
    signs = [_parse_sign(v) for v in values]
    bad = sorted({repr(v) for v, s in zip(values, signs) if s is None})
    if bad:
        raise GclError(
            f"prior['sign'] has values that are not a sign: {', '.join(bad[:10])}"
            f"{' ...' if len(bad) > 10 else ''}. Accepted: {_SIGNS_ACCEPTED}; fix or drop "
            "those rows (an empty sign leaves the edge's sign free)."
        )
    return np.asarray(signs, dtype=np.int8)


def prior_edges(prior: Any, genes: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The usable edges of a prior among the modelled ``genes``, and what was dropped.

    A row whose source or target is not among ``genes`` is dropped: a curated prior
    (CollecTRI, :func:`gclandscape.datasets.prior_network`) names thousands of genes a genome
    does not model. A source–target pair given in several rows is one edge; its sign is the
    one its signed rows agree on, and free (0: the data decide) when they disagree (a
    resource that lists a regulator as both activator and repressor of a target supports
    the edge, not a sign). An empty sign next to a signed row adds nothing.

    Parameters
    ----------
    prior
        DataFrame with columns ``source``, ``target`` and optionally ``sign``
        (see ``fit_grn``'s ``prior``).
    genes
        The modelled genes.

    Returns
    -------
    edges
        ``source``, ``target``, ``sign`` (int8 in {-1, 0, +1}), one row per pair, in the
        order of their first row; possibly empty.
    counts
        ``prior_rows``, ``prior_rows_used`` (rows between two modelled genes),
        ``prior_rows_dropped``, ``prior_edges`` (distinct pairs used) and
        ``prior_sign_conflicts`` (pairs whose rows disagree on the sign, left free).

    Examples
    --------
    >>> import pandas as pd
    >>> from gclandscape.landscape._regulator_genes import prior_edges
    >>> prior = pd.DataFrame({"source": ["a", "a", "a", "x"], "target": ["b", "b", "c", "a"],
    ...                       "sign": ["+", "-", "-", "+"]})
    >>> edges, counts = prior_edges(prior, ["a", "b", "c"])
    >>> edges.to_records(index=False).tolist()
    [('a', 'b', 0), ('a', 'c', -1)]
    >>> counts["prior_rows_dropped"], counts["prior_sign_conflicts"]
    (1, 1)
    """
    if not isinstance(prior, pd.DataFrame) or not {"source", "target"} <= set(prior.columns):
        raise GclError(
            "prior must be a DataFrame with columns 'source' and 'target' (and optionally "
            f"'sign': {_SIGNS_ACCEPTED})."
        )
    # every row's sign is read, the dropped ones too: an unreadable sign means a broken file
    signs = _prior_signs(prior["sign"]) if "sign" in prior.columns else None
    rows = pd.DataFrame(
        {
            "source": prior["source"].astype(str).to_numpy(),
            "target": prior["target"].astype(str).to_numpy(),
            "sign": np.zeros(len(prior), np.int8) if signs is None else signs,
        }
    )
    modelled = set(genes)
    used = rows[rows["source"].isin(modelled) & rows["target"].isin(modelled)]
    by_pair = used.groupby(["source", "target"], sort=False)["sign"]
    has_pos = by_pair.max() > 0
    has_neg = by_pair.min() < 0
    sign = np.where(has_pos & ~has_neg, 1, np.where(has_neg & ~has_pos, -1, 0))
    edges = pd.DataFrame(
        {
            "source": has_pos.index.get_level_values(0).astype(str),
            "target": has_pos.index.get_level_values(1).astype(str),
            "sign": sign.astype(np.int8),
        }
    )
    counts = {
        "prior_rows": len(rows),
        "prior_rows_used": len(used),
        "prior_rows_dropped": len(rows) - len(used),
        "prior_edges": len(edges),
        "prior_sign_conflicts": int((has_pos & has_neg).sum()),
    }
    return edges, counts


def _prior_mask(
    prior: Any, genes: list[str], params: dict[str, Any] | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(mask of allowed edges, sign), target × source, from a prior (:func:`prior_edges`).

    The counts of :func:`prior_edges` go into ``params`` when given (fit_grn's record).
    """
    if prior is None:
        return None, None
    edges, counts = prior_edges(prior, genes)
    if counts["prior_rows_dropped"]:
        logger.info(
            "fit_grn: prior: %d of its %d rows name a gene that is not modelled and are "
            "dropped; %d rows (%d edges) among the %d modelled genes are used",
            counts["prior_rows_dropped"],
            counts["prior_rows"],
            counts["prior_rows_used"],
            counts["prior_edges"],
            len(genes),
        )
    if counts["prior_sign_conflicts"]:
        logger.info(
            "fit_grn: prior: %d edges have rows with both signs; their sign is left free",
            counts["prior_sign_conflicts"],
        )
    if not len(edges):
        shown = ", ".join(genes[:10]) + (" ..." if len(genes) > 10 else "")
        raise GclError(
            f"none of the prior's {counts['prior_rows']} rows connects two of the "
            f"{len(genes)} modelled genes ({shown}), and the prior is a hard mask: the "
            "network would be empty. Check that its gene names match adata.var_names "
            "(case-sensitive; e.g. gcl.datasets.prior_network('mouse') for mouse symbols), "
            "pass genes=[...] that include the prior's regulators, or leave prior out."
        )
    if params is not None:
        params.update(counts)
    pos = {g: i for i, g in enumerate(genes)}
    n = len(genes)
    mask = np.zeros((n, n), dtype=bool)
    sign = np.zeros((n, n), dtype=np.int8)
    tgt = edges["target"].map(pos).to_numpy()
    src = edges["source"].map(pos).to_numpy()
    mask[tgt, src] = True
    sign[tgt, src] = edges["sign"].to_numpy()
    return mask, sign
