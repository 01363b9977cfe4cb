"""The output steps of ``gclandscape run``: figures, results.h5ad and report.html."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

from ._context import RunContext


def _save(ctx: RunContext, fig, name: str, caption: str) -> None:
    """Save ``fig`` as name.png and name.pdf, register it for the report, close it."""
    from .. import _report

    paths = _report.save_figure(fig, ctx.out / name)
    ctx.files += [p.name for p in paths]
    ctx.figures[name] = (paths[0], caption)
    _close(fig)


def _close(fig) -> None:
    import sys

    if "matplotlib.pyplot" in sys.modules:  # a pyplot-managed figure: free it
        sys.modules["matplotlib.pyplot"].close(fig)


def step_plot(ctx: RunContext) -> None:
    """UMAPs by cell type and pseudotime, and the gcl.pl figures of the genome, landscape
    and screen, each as PNG and PDF."""
    import numpy as np

    from .. import _report, pl
    from .._keys import Key

    work = ctx.work
    umap = np.asarray(work.obsm[Key.obsm.umap])
    title = f"{Path(ctx.input).name}: {ctx.adata.n_obs} cells"
    fig = _report.embedding_figure(umap, obs=work.obs, color=ctx.groupby, title=title)
    _save(ctx, fig, "umap", "UMAP of the latent cell states" + (
        f", coloured by {ctx.groupby}" if ctx.groupby else ""))  # fmt: skip
    if Key.obs.pseudotime in work.obs:
        fig = _report.embedding_figure(
            umap, obs=work.obs, color=Key.obs.pseudotime, title=f"{title}: pseudotime"
        )
        _save(ctx, fig, "umap_pseudotime", "UMAP coloured by diffusion pseudotime")
    if Key.uns.genome not in work.uns:
        return
    _save(ctx, pl.grn(work), "grn", "The inferred genome: strongest signed edges (red "
          "activation, blue repression; width |weight|; node size out-degree)")  # fmt: skip
    if Key.uns.landscape in work.uns:
        _save(ctx, pl.landscape(work, color=ctx.groupby), "landscape",
              "Quasi-potential landscape with cells, attractors, saddles and minimum-action "
              "paths")  # fmt: skip
        _save(ctx, pl.vector_field(work), "vector_field",
              "The genome's drift on the landscape basis")  # fmt: skip
    if ctx.screen is not None and "fate" in ctx.screen and len(ctx.screen):
        _save(ctx, pl.screen(ctx.screen), "screen",
              "Knockout screen: change of each fate's fraction (perturbed − wild type)")  # fmt: skip
    if ctx.strongest is not None:
        _save(ctx, pl.fate_shift(ctx.strongest), "fate_shift",
              f"Fate fractions, wild type vs {ctx.strongest.perturbation} (the strongest "
              "knockout), with 95 % bootstrap intervals")  # fmt: skip


def step_save(ctx: RunContext) -> None:
    """Everything computed, in one .h5ad (round-trips without pickle)."""
    from .. import io

    io.write(ctx.work, ctx.out / "results.h5ad")
    ctx.files.append("results.h5ad")


def _qc_table(ctx: RunContext) -> pd.DataFrame:
    """Per-group QC medians (one row per group and one for all cells)."""
    import pandas as pd

    qc = ctx.qc
    cols = [c for c in ("total_counts", "n_genes_by_counts", "pct_counts_mt") if c in qc]
    names = {"total_counts": "median total", "n_genes_by_counts": "median genes",
             "pct_counts_mt": "median % mito"}  # fmt: skip
    rows = []
    groups = qc.groupby(ctx.groupby, sort=False, observed=True) if ctx.groupby else []
    for name, part in [*groups, ("all cells", qc)]:
        rows.append({"group": str(name), "cells": len(part),
                     **{names[c]: float(part[c].median()) for c in cols}})  # fmt: skip
    return pd.DataFrame(rows)


def _screen_tables(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The screen for the report: knockouts × fates (delta, * where p < 0.05) and one row per
    knockout; for a steady-state genome the largest expression changes of each knockout."""
    import pandas as pd

    if not len(table):
        return []
    if "fate" not in table:  # steady state: perturbation, gene, wt, perturbed, log2fc
        others = table[table["gene"] != table["perturbation"].str.removesuffix(" KO")]
        top = (
            others.assign(abs_log2fc=others["log2fc"].abs())
            .sort_values("abs_log2fc", ascending=False)
            .groupby("perturbation", sort=False)
            .head(3)
            .drop(columns="abs_log2fc")
        )
        return [("largest steady-state changes of the other regulators (3 per knockout)", top)]
    cell = table["delta"].map(lambda d: f"{d:+.3f}") + table["p_value"].map(
        lambda p: " *" if p < 0.05 else ""
    )
    grid = (
        table.assign(cell=cell)
        .pivot(index="perturbation", columns="fate", values="cell")
        .reindex(index=pd.unique(table["perturbation"]), columns=pd.unique(table["fate"]))
    )
    grid.index.name = "knockout"
    grid.columns.name = None
    rows = []
    for name, part in table.groupby("perturbation", sort=False):
        rows.append({
            "knockout": name,
            "lost fates": ", ".join(part.loc[part["lost"].astype(bool), "fate"]),
            "gained fates": ", ".join(part.loc[part["gained"].astype(bool), "fate"]),
            "max |delta|": float(part["delta"].abs().max()),
            "score": float(part["score"].iloc[0]),
            "score p": float(part["score_pvalue"].iloc[0]),
        })  # fmt: skip
    per = pd.DataFrame(rows).sort_values("max |delta|", ascending=False)
    tables = [
        ("change of each fate's fraction per knockout (* p < 0.05)", grid),
        ("knockouts, strongest first", per),
    ]
    tables.append((
        "every knockout's fates with their uncertainty (p_lost, q_value), the largest "
        "changes first", _fate_calls(table),
    ))  # fmt: skip
    return tables


def _fate_calls(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (knockout, fate): delta, p_lost and the screen-wide q_value, largest
    |delta| first (the page shows the first rows; screen.csv has them all)."""
    cols = [c for c in ("perturbation", "fate", "wt", "perturbed", "delta", "p_lost",
                        "lost", "p_value", "q_value") if c in table]  # fmt: skip
    calls = table[cols].rename(columns={"perturbation": "knockout"})
    order = calls["delta"].abs().sort_values(ascending=False, kind="stable").index
    return calls.loc[order].reset_index(drop=True)


#: What the report says about p_lost (issue 18 §2).
P_LOST_TEXT = (
    "p_lost is the share of the fitted genome ensemble's members in which the fate is lost "
    "(reached by at least 1 % of that member's wild-type cells and by fewer than 1 % of its "
    "knockout cells); a fate is called lost when p_lost >= 0.5. Near 0.5 the wild-type data "
    "cannot decide between genomes that keep and lose it. With one genome p_lost is 0 or 1, "
    "a call without its uncertainty: rerun with --n-genomes 5 for calibrated calls. q_value "
    "is the Benjamini-Hochberg adjusted p-value over every row of the screen."
)


def _genome_notes(ctx: RunContext) -> tuple[list[str], list[tuple[str, str]]]:
    """The report's sentences on the regulators used, the prior and the ensemble, and the
    regulator list (collapsed)."""
    notes, details = [], []
    regs = ctx.summary.get("regulators")
    if regs:
        notes.append(
            f"Regulators: the genome models {regs['n_used']} transcription factors, the "
            f"{regs['organism']} regulators of {regs['source']} ({regs['n_annotated']} of the "
            f"data's genes) detected in at least {regs['min_detected']:.0%} of the cells"
            + (f", the {regs['max_genes']} most variable of {regs['n_expressed']}"
               if regs["n_expressed"] > regs["n_used"] else "")
            + " (--organism)."
        )  # fmt: skip
        details.append((f"the {regs['n_used']} regulators", ", ".join(regs["genes"])))
    else:
        from .._keys import Key

        notes.append(
            "Regulators: no --organism given, so the genome models the most variable genes "
            "(or the data's gcl_regulator column); pass --organism human|mouse to model the "
            "transcription factors."
        )
        genes = [str(g) for g in ctx.work.uns[Key.uns.genome]["genes"]]
        details.append((f"the genome's {len(genes)} genes", ", ".join(genes)))
    prior = ctx.summary.get("prior")
    if prior:
        notes.append(
            f"Prior network: {prior['file']}, {prior['n_edges_kept']} of its "
            f"{prior['n_edges_file']} edges connect the genome's genes ({prior['n_activating']} "
            f"activating, {prior['n_repressing']} repressing) and are the only edges the "
            "genome may have (--prior)."
        )
    grn = ctx.summary.get("grn", {})
    if grn.get("n_genomes", 1) > 1:
        notes.append(
            f"Ensemble: {grn['n_genomes']} genomes fitted (--n-genomes), "
            f"{grn['n_members_kept']} kept; the figures and edges show the first."
        )
    return notes, details


def step_report(ctx: RunContext) -> None:
    """One self-contained report.html: figures embedded, key tables, each step's time."""
    from .. import _report, get
    from .._keys import Key
    from .._report import Section

    start, cpu = time.perf_counter(), time.process_time()
    work, fig = ctx.work, ctx.figures
    sections = []

    def figures(*names: str) -> list:
        return [fig[n] for n in names if n in fig]

    sections.append(Section(
        "Quality control",
        f"Per-cell metrics computed on {ctx.counts_source or 'X (not counts)'}; qc.csv "
        "has every cell.",
        figures=figures("umap"),
        tables=[("QC medians per group", _qc_table(ctx))] if ctx.qc is not None else [],
    ))  # fmt: skip
    latent = ctx.summary.get("latent")
    sections.append(Section(
        "Latent space and pseudotime",
        (f"scVI, {latent['n_latent']} latent dimensions, {latent['epochs']} epochs. "
         if isinstance(latent, dict) else f"Latent: {latent}. ")
        + (f"Pseudotime rooted in {ctx.summary['pseudotime']['root']!r}."
           if isinstance(ctx.summary.get("pseudotime"), dict)
           else f"Pseudotime: {ctx.summary.get('pseudotime')}."),
        figures=figures("umap_pseudotime"),
    ))  # fmt: skip
    if Key.uns.genome in work.uns:
        grn = ctx.summary["grn"]
        edges = get.grn_edges(work).head(25)
        notes, details = _genome_notes(ctx)
        sections.append(Section(
            "Gene-regulatory network (the genome)",
            f"{grn['n_genes']} regulators, {grn['n_edges']} edges, fitted in {grn['mode']} "
            f"mode; median held-out R² {grn['heldout_r2_median']}. grn_edges.csv has all edges.",
            figures=figures("grn"),
            tables=[("strongest edges", edges)],
            notes=notes,
            details=details,
        ))  # fmt: skip
    if Key.uns.landscape in work.uns:
        from ..landscape import Landscape

        land = Landscape.from_adata(work)
        attractors = land.attractors
        keep = [c for c in attractors.columns if c in {
            "label", "stable", "basin_fraction", "purity", "energy", "n_cells"}]  # fmt: skip
        sections.append(Section(
            "Landscape",
            f"{len(attractors)} attractors and {len(land.paths)} minimum-action paths.",
            figures=figures("landscape", "vector_field"),
            tables=[("attractors", attractors[keep or list(attractors.columns)]),
                    ("transition paths", land.paths)],
        ))  # fmt: skip
    if ctx.screen is not None:
        info = ctx.summary.get("screen", {})
        text = (f"{info.get('n_knockouts')} knockouts; strongest: {info['strongest']} "
                f"(largest |Δ fate fraction| {info['max_abs_delta']}). screen.csv has every "
                "row." if "strongest" in info else info.get("note", ""))  # fmt: skip
        notes = [P_LOST_TEXT] if "p_lost" in ctx.screen else []
        fc = ctx.summary.get("predicted_log2fc")
        if fc:
            notes.append(
                f"predicted_log2fc.csv: the predicted log2 fold change (knockout vs wild type) "
                f"of {fc['n_genes']} genes (rows) for each of the {fc['n_knockouts']} screened "
                "knockouts (columns); "
                + ("the genome's genes from the simulation, every other gene decoded by the "
                   "scVI model from the simulated cells." if fc["decoded"] else
                   "the genes the genome predicts (no latent model to decode the others).")
            )  # fmt: skip
        sections.append(Section(
            "Knockout screen",
            text,
            figures=figures("screen", "fate_shift"),
            tables=_screen_tables(ctx.screen),
            notes=notes,
        ))  # fmt: skip
    this = {  # this step's own time, up to the moment the page is written
        "name": "report", "description": "this page",
        "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
    }  # fmt: skip
    _report.write_report(
        ctx.out / "report.html",
        ctx.summary,
        sections,
        steps=[*ctx.timings, this],
        files=[*ctx.files, "report.html", "summary.json"],
    )
    ctx.files.append("report.html")
