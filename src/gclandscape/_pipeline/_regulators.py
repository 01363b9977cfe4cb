"""Real data in ``gclandscape run``: the regulators of ``--organism`` (the genome's genes) and
the ``--prior`` network file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

from ._context import MIN_DETECTED, RunContext, log


def detected_fraction(adata: AnnData) -> pd.Series:
    """Share of the cells in which each gene is detected (count > 0; X > 0 without counts)."""
    import numpy as np
    import pandas as pd

    from .._keys import Key

    matrix = adata.layers.get(Key.layers.counts, adata.X)
    n = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
    return pd.Series(n / max(adata.n_obs, 1), index=adata.var_names)


def expressed_regulators(
    adata: AnnData, *, min_detected: float = MIN_DETECTED, cap: int | None = None
) -> list[str]:
    """The annotated regulators (``var['gcl_regulator']``) detected in at least
    ``min_detected`` of the cells, at most ``cap`` (fit_grn's default number of genes), the
    most variable first where there are more.

    More than ``cap`` are ranked like fit_grn's default genes: by scanpy's
    ``highly_variable_rank``, then (genes outside the highly variable ones) by detection.
    """
    import numpy as np

    from .._keys import Key
    from ..landscape._fit_grn import MAX_DEFAULT_GENES

    cap = MAX_DEFAULT_GENES if cap is None else int(cap)
    flagged = adata.var[Key.var.regulator].to_numpy(dtype=bool)
    detected = detected_fraction(adata).to_numpy()
    keep = np.flatnonzero(flagged & (detected >= min_detected))
    if len(keep) > cap:
        rank_col = "highly_variable_rank"
        rank = (
            adata.var[rank_col].to_numpy(dtype=np.float64)
            if rank_col in adata.var
            else np.full(adata.n_vars, np.nan)
        )
        rank = np.where(np.isfinite(rank), rank, np.inf)
        order = np.lexsort((-detected[keep], rank[keep]))  # last key sorts first
        keep = np.sort(keep[order[:cap]])  # data order, as fit_grn keeps it
    return [str(adata.var_names[i]) for i in keep]


def annotate(ctx: RunContext) -> None:
    """--organism: flag the transcription factors of the recipe's output and choose the
    genome's genes, the expressed ones (ctx.genome_genes); the record goes to the summary."""
    from .. import pp
    from .._errors import GclError
    from .._keys import Key
    from ..landscape._fit_grn import MAX_DEFAULT_GENES

    work = ctx.work
    pp.annotate_regulators(work, organism=ctx.organism)
    record = work.uns[Key.uns.regulator]
    genes = expressed_regulators(work)
    n_flagged = int(record["n_regulators"])
    if len(genes) < 2:
        raise GclError(
            f"--organism {ctx.organism}: {n_flagged} of the data's {work.n_vars} genes are "
            f"transcription factors and {len(genes)} of them detected in at least "
            f"{MIN_DETECTED:.0%} of the cells; the genome needs at least 2. Check that "
            "--organism matches the data's gene symbols, or leave --organism out to model the "
            "most variable genes."
        )
    ctx.genome_genes = genes
    ctx.summary["regulators"] = {
        "organism": ctx.organism,
        "source": str(record["source"]),
        "n_annotated": n_flagged,
        "n_expressed": int(
            (work.var[Key.var.regulator] & (detected_fraction(work) >= MIN_DETECTED)).sum()
        ),
        "min_detected": MIN_DETECTED,
        "max_genes": MAX_DEFAULT_GENES,
        "n_used": len(genes),
        "genes": genes,
    }
    log.info(
        "regulators: %d of %d genes are %s transcription factors; %d detected in >= %.0f %% "
        "of the cells are the genome's genes", n_flagged, work.n_vars, ctx.organism,
        len(genes), 100 * MIN_DETECTED,
    )  # fmt: skip


def read_prior(
    path: str | Path, organism: str | None, genes: Sequence[str] | None = None
) -> pd.DataFrame:
    """The --prior file as ``source, target, sign`` (only edges between ``genes`` if given).

    The loader reads a local file whatever the organism (it is only recorded), so --prior
    works without --organism; the names must then match the data's genes as they are.
    """
    from .. import datasets

    return datasets.prior_network(organism or "human", path=path, genes=genes)


def prior_for_genome(ctx: RunContext, genes: Sequence[str]) -> pd.DataFrame | None:
    """The --prior edges between the genome's ``genes`` (None without --prior); the record
    (file, edges in the file and kept) goes to the summary."""
    from .._errors import GclError

    if ctx.prior is None:
        return None
    n_file = len(read_prior(ctx.prior, ctx.organism))
    edges = read_prior(ctx.prior, ctx.organism, genes)
    if not len(edges):
        shown = ", ".join(list(genes)[:10]) + (" ..." if len(genes) > 10 else "")
        raise GclError(
            f"--prior {ctx.prior}: none of its {n_file} edges connects two of the genome's "
            f"{len(genes)} genes ({shown}), and the prior is a hard mask (an empty network). "
            "Check that its gene names match the data's (case-sensitive; --organism chooses "
            "the regulators), or leave --prior out."
        )
    ctx.summary["prior"] = {
        "file": str(ctx.prior),
        "n_edges_file": n_file,
        "n_edges_kept": len(edges),
        "n_activating": int((edges["sign"] > 0).sum()),
        "n_repressing": int((edges["sign"] < 0).sum()),
    }
    log.info("prior: %d of the %d edges of %s connect the genome's genes", len(edges), n_file,
             ctx.prior)  # fmt: skip
    return edges


def genome_params(ctx: RunContext) -> dict[str, Any]:
    """fit_grn's keywords for the run's regulators, prior and ensemble size."""
    from ._knockouts import regulators

    genes = ctx.genome_genes if ctx.genome_genes is not None else regulators(ctx.work)
    kwargs: dict[str, Any] = {"n_genomes": ctx.n_genomes}
    if ctx.genome_genes is not None:
        kwargs["genes"] = list(genes)
    prior = prior_for_genome(ctx, genes)
    if prior is not None:
        kwargs["genes"] = list(genes)  # the genes the prior was filtered to, explicitly
        kwargs["prior"] = prior
    return kwargs
