"""Real data in ``gclandscape run``: the regulators of ``--organism`` (the genome's genes) and
the ``--prior`` network file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

from ._context import RunContext, log


def expressed_regulators(
    adata: AnnData, *, min_detected: float | None = None, cap: int | None = None
) -> list[str]:
    """The regulators ``--organism`` models: fit_grn's own rule for its default genes
    (:func:`gclandscape.landscape._regulator_genes.expressed_regulators`: detected in at
    least ``min_detected`` of the cells, at most ``cap``, the most variable first), so the
    command line and ``fit_grn(genes=None)`` choose the same genes. Imported here on call,
    which keeps ``gclandscape --help`` from importing pandas."""
    from ..landscape import _regulator_genes as rule

    share = rule.MIN_DETECTED if min_detected is None else min_detected
    return rule.expressed_regulators(adata, min_detected=share, cap=cap)


def annotate(ctx: RunContext) -> None:
    """--organism: flag the transcription factors of the recipe's output and choose the
    genome's genes, the expressed ones (ctx.genome_genes); the record goes to the summary."""
    from .. import pp
    from .._errors import GclError
    from .._keys import Key
    from ..landscape._regulator_genes import MAX_DEFAULT_GENES, MIN_DETECTED, detected_fraction

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
    """The --prior network for fit_grn (None without --prior), checked against the genome's
    ``genes`` with fit_grn's own rule (:func:`gclandscape.landscape._regulator_genes.
    prior_edges`: rows naming other genes dropped, a pair listed with both signs left free);
    the record (file, edges in the file and used) goes to the summary."""
    from .._errors import GclError
    from ..landscape._regulator_genes import prior_edges

    if ctx.prior is None:
        return None
    prior = read_prior(ctx.prior, ctx.organism)
    edges, counts = prior_edges(prior, list(genes))
    if not len(edges):
        shown = ", ".join(list(genes)[:10]) + (" ..." if len(genes) > 10 else "")
        raise GclError(
            f"--prior {ctx.prior}: none of its {len(prior)} edges connects two of the genome's "
            f"{len(genes)} genes ({shown}), and the prior is a hard mask (an empty network). "
            "Check that its gene names match the data's (case-sensitive; --organism chooses "
            "the regulators), or leave --prior out."
        )
    ctx.summary["prior"] = {
        "file": str(ctx.prior),
        "n_edges_file": len(prior),
        "n_edges_kept": len(edges),
        "n_activating": int((edges["sign"] > 0).sum()),
        "n_repressing": int((edges["sign"] < 0).sum()),
        "n_sign_conflicts": counts["prior_sign_conflicts"],
    }
    log.info("prior: %d of the %d edges of %s connect the genome's genes", len(edges),
             len(prior), ctx.prior)  # fmt: skip
    # the whole file: fit_grn drops the same rows and records the counts in its params
    return prior


def genome_params(ctx: RunContext) -> dict[str, Any]:
    """fit_grn's keywords for the run's regulators, prior and ensemble size."""
    from ._knockouts import regulators

    genes = ctx.genome_genes if ctx.genome_genes is not None else regulators(ctx.work)
    kwargs: dict[str, Any] = {"n_genomes": ctx.n_genomes}
    if ctx.genome_genes is not None:
        kwargs["genes"] = list(genes)
    prior = prior_for_genome(ctx, genes)
    if prior is not None:
        kwargs["genes"] = list(genes)  # the genes the prior was checked against, explicitly
        kwargs["prior"] = prior
    return kwargs
