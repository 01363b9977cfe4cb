"""Which regulators ``gclandscape run`` knocks out, and the checks of ``--knockout``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

from ._context import MAX_SCREEN


def regulators(adata: AnnData) -> list[str]:
    """The genes ``fit_grn`` will model with its defaults: the ones in ``var['gcl_regulator']``
    when marked, else at most 200 highly variable genes."""
    from ..landscape._fit_grn import select_genes

    return select_genes(adata, None)


def screen_genes(adata: AnnData) -> list[str]:
    """The genes ``gclandscape run`` knocks out without ``--knockout``: every regulator of the
    genome, or the :data:`MAX_SCREEN` with the largest total outgoing ``|weight|``."""
    from ..landscape import Genome

    genome = Genome.from_adata(adata)
    if genome.n_genes <= MAX_SCREEN:
        return list(genome.genes)
    out = genome.W.abs().sum(axis=0)  # W is target × source
    return [str(g) for g in out.sort_values(ascending=False, kind="stable").index[:MAX_SCREEN]]


def check_knockouts(genes: Sequence[str], available: Sequence[str]) -> None:
    """Raise a GclError naming every ``--knockout`` gene that is not among ``available``."""
    from .._errors import GclError
    from .._validate import listing

    unknown = [g for g in genes if g not in set(available)]
    if unknown:
        shown = listing(available, limit=60, quote=False)
        raise GclError(
            f"--knockout {', '.join(unknown)}: not among the {len(available)} regulators the "
            f"genome is fitted on ({shown}). Pass regulators only (names are case-sensitive), "
            "or leave --knockout out to screen every regulator."
        )


def check_knockout_names(adata: AnnData, knockouts: Sequence[str] | None) -> list[str] | None:
    """--knockout genes must be genes of the data (and regulators, where those are marked)."""
    from .._errors import GclError
    from .._keys import Key

    if not knockouts:
        return None
    if isinstance(knockouts, str):
        knockouts = [knockouts]
    genes = list(dict.fromkeys(str(g) for g in knockouts))
    if Key.var.regulator in adata.var and adata.var[Key.var.regulator].any():
        check_knockouts(genes, regulators(adata))
    else:
        unknown = [g for g in genes if g not in adata.var_names]
        if unknown:
            raise GclError(
                f"--knockout {', '.join(unknown)}: not a gene of the data ({adata.n_vars} genes, "
                f"e.g. {', '.join(map(str, adata.var_names[:10]))}). Pass regulators the genome "
                "is fitted on (names are case-sensitive), or leave --knockout out."
            )
    return genes
