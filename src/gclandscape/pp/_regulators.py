"""``gcl.pp.annotate_regulators``: flag transcription factors from lists shipped with the package.

The lists (``pp/data/tfs_human.txt``, ``pp/data/tfs_mouse.txt``) come from the factor
annotation of gimmemotifs' ``gimme.vertebrate.v5.0`` motif database (MIT); how they were made
and the licence are in ``pp/data/README.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._utils import logger

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: organism -> (file under ``pp/data``, how its symbols are written)
_LISTS = {
    "human": ("tfs_human.txt", "HGNC symbols, upper case (SPI1)"),
    "mouse": ("tfs_mouse.txt", "MGI symbols, capital first letter (Spi1)"),
}
SOURCE = (
    "gimmemotifs gimme.vertebrate.v5.0 motif2factors (MIT; van Heeringen & Veenstra, "
    "Bioinformatics 27:270, 2011); see gclandscape/pp/data/README.md"
)
#: Fewer flagged genes than this most likely means the wrong organism or Ensembl IDs.
MIN_REGULATORS = 5


def regulator_list(organism: str) -> list[str]:
    """The shipped transcription-factor symbols of an organism (``"human"`` or ``"mouse"``).

    Examples
    --------
    >>> from gclandscape.pp._regulators import regulator_list
    >>> "SPI1" in regulator_list("human"), "Spi1" in regulator_list("mouse")
    (True, True)
    """
    if not isinstance(organism, str) or organism.lower() not in _LISTS:
        raise GclError(
            f"organism={organism!r} has no shipped regulator list; choose one of "
            f"{sorted(_LISTS)}, or pass your own list as regulators=[...]."
        )
    fname, _ = _LISTS[organism.lower()]
    text = resources.files("gclandscape.pp").joinpath("data", fname).read_text()
    return [s for s in (line.strip() for line in text.splitlines()) if s and s[0] != "#"]


def _symbols(adata: AnnData, gene_symbols: str | None) -> pd.Index:
    if gene_symbols is None:
        return pd.Index(adata.var_names.astype(str))
    if gene_symbols not in adata.var:
        raise GclError(
            f"gene_symbols={gene_symbols!r} is not a column of .var (columns: "
            f"{list(adata.var.columns)[:10]}). Name the .var column that holds gene symbols, "
            "or leave gene_symbols out when var_names are symbols."
        )
    return pd.Index(adata.var[gene_symbols].astype(str).fillna(""))


def _match(symbols: pd.Index, listed: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Exact matches, and matches that differ only in case where that is unambiguous.

    A case-insensitive match is used only for a data symbol whose case-folded form is unique
    among the data's symbols: in a mixed human/mouse object (``GATA1`` and ``Gata1`` both
    present) only the organism's own spelling is flagged.
    """
    listed = list(listed)
    exact = symbols.isin(listed)
    folded = pd.Index([s.casefold() for s in symbols])
    unique_fold = ~folded.duplicated(keep=False)
    by_case = ~exact & unique_fold & folded.isin({s.casefold() for s in listed})
    return np.asarray(exact), np.asarray(by_case)


def annotate_regulators(
    adata: AnnData,
    *,
    organism: str = "human",
    gene_symbols: str | None = None,
    regulators: Iterable[str] | None = None,
    key_added: str = Key.var.regulator,
    copy: bool = False,
) -> AnnData | None:
    """Flag the transcription factors among the genes in ``.var[key_added]``.

    The genes are matched against a list of transcription factors shipped with the package:
    1,111 human and 1,112 mouse symbols of vertebrate TFs with a known DNA-binding motif,
    from the factor annotation of gimmemotifs' ``gimme.vertebrate.v5.0`` motif database (MIT
    licence; van Heeringen & Veenstra, *Bioinformatics* 27:270, 2011; the database CellOracle
    uses by default). ``gclandscape/pp/data/README.md`` says how the lists were made. The
    broader census of Lambert et al. (2018, *Cell* 172:650) carries no licence that permits
    redistribution; pass it, or any list of your own, as ``regulators=``.

    Symbols are matched exactly; a symbol that differs from a listed one only in case (``Spi1``
    in a human object) is also flagged when that is unambiguous, i.e. no other gene of the
    object has the same symbol up to case. When most flagged genes matched only by case, a
    warning says the symbols look like another organism's.

    Parameters
    ----------
    adata
        Annotated data matrix, cells × genes.
    organism
        ``"human"`` (HGNC symbols, ``SPI1``) or ``"mouse"`` (MGI symbols, ``Spi1``).
    gene_symbols
        Column of ``.var`` holding gene symbols, when ``var_names`` are other identifiers
        (Ensembl IDs, scanpy convention). ``None``: ``var_names`` are symbols.
    regulators
        Your own list of regulator symbols instead of the shipped one (``organism`` is then
        only recorded).
    key_added
        Boolean ``.var`` column to write; the record goes to ``.uns[key_added]``.
    copy
        Return an annotated copy instead of writing into ``adata``.

    Returns
    -------
    The annotated copy if ``copy=True``, else ``None``; ``adata`` (or the copy) gets

    - ``.var[key_added]``: ``True`` for the transcription factors,
    - ``.uns[key_added]``: ``"params"`` (organism, gene_symbols, source), ``"n_regulators"``,
      ``"n_case_insensitive"`` (genes matched only up to case) and ``"source"``.

    Nothing else is changed.

    Raises
    ------
    GclError
        For an unknown ``organism``, a ``gene_symbols`` column that does not exist, or an
        empty ``regulators`` list.

    Warns
    -----
    UserWarning
        When fewer than 5 genes are flagged (wrong organism, or Ensembl IDs as ``var_names``:
        pass ``gene_symbols=``), or when most were matched only up to case.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> import gclandscape as gcl
    >>> genes = ["SPI1", "GATA1", "CEBPA", "STAT1", "IRF1", "GAPDH", "ACTB"]
    >>> adata = ad.AnnData(np.ones((3, len(genes)), dtype=np.float32))
    >>> adata.var_names = genes
    >>> gcl.pp.annotate_regulators(adata, organism="human")
    >>> adata.var["gcl_regulator"].tolist()
    [True, True, True, True, True, False, False]
    """
    if regulators is None:
        listed = regulator_list(organism)
        source = SOURCE
    else:
        if isinstance(regulators, str):
            raise GclError(
                "regulators= must be a list of gene symbols, not a single string; "
                f"pass [{regulators!r}] for one gene."
            )
        listed = [str(s).strip() for s in regulators if str(s).strip()]
        if not listed:
            raise GclError("regulators= is empty; pass gene symbols, or leave it out.")
        source = f"user list ({len(listed)} symbols)"
        if not isinstance(organism, str):
            raise GclError(f"organism must be a string, got {organism!r}.")
    symbols = _symbols(adata, gene_symbols)
    exact, by_case = _match(symbols, listed)
    flagged = exact | by_case
    n, n_case = int(flagged.sum()), int(by_case.sum())

    if n < MIN_REGULATORS:
        example = ", ".join(map(str, symbols[:3]))
        hint = (
            f" The genes are named like {example!r}: if these are Ensembl IDs, pass the .var "
            "column with symbols as gene_symbols=."
            if gene_symbols is None
            else ""
        )
        warnings.warn(
            f"annotate_regulators flagged only {n} of {adata.n_vars} genes as transcription "
            f"factors (organism={organism!r}, {_LISTS.get(str(organism).lower(), ('', 'your list'))[1]})."
            f"{hint} Check that organism matches the data.",
            UserWarning,
            stacklevel=2,
        )
    elif n_case > n / 2:
        warnings.warn(
            f"annotate_regulators: {n_case} of the {n} flagged genes matched only up to case "
            f"(e.g. {symbols[by_case][0]!r}); the symbols look like another organism's. Check "
            f"organism={organism!r}.",
            UserWarning,
            stacklevel=2,
        )
    logger.info(
        "annotate_regulators: %d of %d genes are transcription factors (%s)",
        n,
        adata.n_vars,
        organism,
    )

    if copy:
        adata = adata.copy()
    adata.var[key_added] = flagged
    adata.uns[key_added] = {
        "params": {
            "organism": str(organism),
            "gene_symbols": gene_symbols,
            "regulators": "user" if regulators is not None else "shipped",
        },
        "source": source,
        "n_regulators": n,
        "n_case_insensitive": n_case,
    }
    return adata if copy else None
