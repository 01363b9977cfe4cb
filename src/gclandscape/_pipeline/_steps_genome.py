"""The steps of ``gclandscape run`` on the genome: fit_grn, the landscape, the knockout screen."""

from __future__ import annotations

from typing import Any

from ._context import RUN_N_NULL, RunContext, default_root, log
from ._knockouts import check_knockouts, screen_genes
from ._regulators import genome_params


def step_grn(ctx: RunContext) -> None:
    """Infer the genome (fit_grn) on the pseudotime drift, or in steady-state mode: on the
    expressed regulators with --organism, within the --prior network, --n-genomes members."""
    from .. import _report, get, landscape
    from .._keys import Key

    work = ctx.work
    kwargs = {"time_key": Key.obs.pseudotime} if Key.obs.pseudotime in work.obs else {}
    kwargs.update(genome_params(ctx))
    genome = landscape.fit_grn(work, seed=ctx.seed, n_bootstrap=ctx.n_bootstrap, **kwargs)
    edges = get.grn_edges(work)
    _report.write_table(edges, ctx.out / "grn_edges.csv", index=False)
    ctx.files.append("grn_edges.csv")
    params = work.uns[Key.uns.genome]["params"]
    if "prior" in ctx.summary:  # fit_grn keeps the mask, not where it came from
        params["prior_file"] = ctx.summary["prior"]["file"]
        params["prior_n_edges"] = ctx.summary["prior"]["n_edges_kept"]
    ctx.summary["grn"] = {
        "mode": str(params["mode"]),
        "n_genes": genome.n_genes,
        "n_edges": len(edges),
        "heldout_r2_median": round(float(params["val_r2_median"]), 3),
        "n_bootstrap": ctx.n_bootstrap,
        "n_genomes": ctx.n_genomes,
        # members that fit the drift worse than the first or miss a fate are dropped
        "n_members_kept": int(genome.n_members),
    }
    if ctx.knockouts:  # the genome may have dropped a zero-variance regulator
        check_knockouts(ctx.knockouts, list(genome.genes))


def step_landscape(ctx: RunContext) -> None:
    """Attractors, saddles, paths and the quasi-potential grid -> attractors.csv, paths.csv,
    landscape_grid.csv."""
    import numpy as np
    import pandas as pd

    from .. import _report, landscape

    land = landscape.fit_landscape(ctx.work, groupby=ctx.groupby, seed=ctx.seed)
    _report.write_table(land.attractors, ctx.out / "attractors.csv", index=False)
    _report.write_table(land.paths, ctx.out / "paths.csv", index=False)
    grid = land.grid
    yy, xx = np.meshgrid(np.asarray(grid["y"]), np.asarray(grid["x"]), indexing="ij")
    table = pd.DataFrame(
        {
            "x": xx.ravel(),
            "y": yy.ravel(),
            "U": np.asarray(grid["U"]).ravel(),
            "U_empirical": np.asarray(grid["U_empirical"]).ravel(),
        }
    )
    _report.write_table(table, ctx.out / "landscape_grid.csv", index=False)
    ctx.files += ["attractors.csv", "paths.csv", "landscape_grid.csv"]
    att = land.attractors
    ctx.summary["landscape"] = {
        "n_attractors": len(att),
        "attractors": {
            str(r.label): {"basin_fraction": round(float(r.basin_fraction), 3),
                           "purity": round(float(r.purity), 3)}
            for r in att.itertuples()
        },
        "n_paths": len(land.paths),
    }  # fmt: skip


def step_screen(ctx: RunContext) -> None:
    """Knock out every regulator (or the --knockout genes) with gcl.sim.screen -> screen.csv;
    each knockout's simulated cells (kept from the screen) are decoded over every gene ->
    predicted_log2fc.csv, and the strongest one's result draws the fate-shift figure."""
    from .. import _report, sim
    from .._keys import Key
    from ..sim._screen import screen_members

    work = ctx.work
    if ctx.knockouts:
        genes = [str(g) for g in ctx.knockouts]
    else:
        genes = screen_genes(work)
        n_all = len(work.uns[Key.uns.genome]["genes"])
        if len(genes) < n_all:
            log.info(
                "screen: the %d regulators with the strongest outgoing edges of %d (pass "
                "--knockout GENE ... to choose others)", len(genes), n_all,
            )  # fmt: skip
    knockouts = {sim.Knockout(g).name: g for g in genes}
    log.info("screen: %d knockouts, %d simulated cells each", len(genes), ctx.n_sim_cells)
    root = default_root(ctx)
    sims: dict[str, Any] = {}  # the screen's simulations, decoded below instead of rerun
    table = screen_members(
        work,
        [sim.Knockout(g) for g in genes],
        None,
        root=root,
        n_cells=ctx.n_sim_cells,
        seed=ctx.seed,
        n_null=RUN_N_NULL,
        simulations=sims,
    )
    _report.write_table(table, ctx.out / "screen.csv", index=False)
    ctx.files.append("screen.csv")
    work.uns[Key.uns.screen] = table  # results.h5ad keeps the screen too
    ctx.screen = table
    info: dict[str, Any] = {"n_knockouts": len(genes)}
    results = _predict_knockouts(ctx, genes, root, sims)
    if "delta" in table and len(table):
        strength = (
            table.assign(abs_delta=table["delta"].abs())
            .groupby("perturbation", sort=False)["abs_delta"]
            .max()
        )
        strongest = str(strength.idxmax())
        info["strongest"] = strongest
        info["max_abs_delta"] = round(float(strength.max()), 3)
        info["lost_fates"] = {
            str(name): sorted(map(str, rows.loc[rows["lost"].astype(bool), "fate"]))
            for name, rows in table.groupby("perturbation", sort=False)
            if rows["lost"].astype(bool).any()
        }
        # the same simulation as the screen's row (same start cells, noise and seed)
        ctx.strongest = results[knockouts[strongest]]
    else:
        info["note"] = (
            "steady-state genome: no fates to shift; screen.csv has each knockout's change "
            "of every regulator's steady state (log2fc)"
        )
    ctx.summary["screen"] = info


def _predict_knockouts(
    ctx: RunContext, genes: list[str], root: Any, sims: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every screened knockout's result, decoded over every gene by the scVI model when there
    is one -> predicted_log2fc.csv (genes × knockouts).

    The screen's table holds fates, not per-gene changes; the screen's own simulations
    (``sims``, filled by ``screen_members(simulations=...)``: the same start cells, noise and
    seed as :func:`gcl.sim.perturb`) are turned into results here, so each knockout is
    simulated once. A knockout missing from ``sims`` is simulated with ``gcl.sim.perturb``
    (without the null: the screen has the score's p-value). The results are returned by
    gene, and the strongest one is the fate-shift figure's (its trajectories are empty: the
    screen keeps end states only).
    """
    import time

    import numpy as np
    import pandas as pd

    from .. import _report, sim
    from .._keys import Key
    from ..sim._perturb import perturbation_result

    work = ctx.work
    sims = sims or {}
    decode = ctx.model is not None
    results, columns = {}, {}
    for gene in genes:
        ko = sim.Knockout(gene)
        if ko.name in sims:
            res = perturbation_result(
                work, sims["setup"], ko, sims["wt"], sims[ko.name],
                landscape_key=Key.uns.landscape, seed=ctx.seed, decode=decode,
                model=ctx.model, null=np.zeros(0), t0=time.perf_counter(),
                n_cells=ctx.n_sim_cells,
            )  # fmt: skip
        else:
            res = sim.perturb(
                work, ko, root=root, n_cells=ctx.n_sim_cells, seed=ctx.seed, decode=decode,
                model=ctx.model, n_null=0,
            )  # fmt: skip
        results[gene] = res
        columns[res.perturbation] = res.log2fc
    table = pd.DataFrame(columns)
    # the data's gene order; genes without a prediction (no decoder or readout) are left out
    table = table.reindex(work.var_names[work.var_names.isin(table.index)])
    table.index.name = "gene"
    _report.write_table(table, ctx.out / "predicted_log2fc.csv", index_label="gene")
    ctx.files.append("predicted_log2fc.csv")
    ctx.log2fc = table
    ctx.summary["predicted_log2fc"] = {
        "n_genes": int(table.shape[0]),
        "n_knockouts": int(table.shape[1]),
        "decoded": ctx.model is not None,
    }
    return results
