"""Benchmark: single-knockout predictions of ``gcl.sim.screen`` against known outcomes.

Part 1 — lost fates (issue 6 §5). For each network with known knockout outcomes
(:mod:`_knockout_data`: the default myeloid data, three random ``simulate`` networks, BEELINE
mCAD when ``../shared/data`` exists) the pipeline sees the data only:
``gcl.pp.recipe`` (counts data) → ``gcl.landscape.fit_grn(genes=<regulators>, time_key=...)``
→ ``gcl.landscape.fit_landscape(groupby=<cell types>)`` →
``gcl.sim.screen(adata, "knockouts", root="progenitor")``. On the myeloid data a second
variant fits the drift on a diffusion pseudotime (``fit_grn(root="progenitor",
groupby="celltype")``) instead of the simulation clock, and an oracle variant
(``--only myeloid-oracle``) fits the simulation's TRUE regulator states and dx/dt in place of
``gcl.tl.drift``'s estimates, which bounds what any fit to these cells can reach; with it the
run prints :func:`identifiability`, how well the true dx/dt of a target is explained by its
true inputs against the same inputs with a true regulator replaced by a co-expressed partner
(Fog1 follows Gata1, EgrNab follows cJun). Each knockout's predicted lost fates
(``lost`` rows of the screen: reached by >= 1 % of wild-type and < 1 % of perturbed cells)
are compared with the truth: accuracy (all lost fates right, per knockout), precision and
recall of (knockout, lost fate) pairs over the scored wild-type fates (predicted losses of
``progenitor`` or ``novel`` are ignored). In the same run a CellOracle-style linear baseline
(:mod:`_knockout_baselines`: per-cell-type ridge GRN on the same genes and coordinates,
3-step shift propagation, fates of the shifted cells by the nearest observed cell-type
centroid, the same 1 % rule) is scored on the same truth.

Part 2 — steady-state check (issue 6 §2, last bullet). A random acyclic network with three
constitutive inputs (one steady state), simulated and sampled late without its clock
(:func:`_knockout_data.load_steady_state`), fitted by ``fit_grn`` in steady-state mode; for
every knockout of a gene expressed at >= 0.1 in the true steady state, Pearson's r over the
regulators between the predicted log2 fold change (``gcl.sim.perturb(...).expression``) and
the true one (the true field developed to the knocked-out steady state), against (a) only the
knocked-out gene changes, (b) the mean true change of the other knockouts, and the
CellOracle-style shift of the mean state. r over all regulators, and over the regulators
other than the knocked-out one (where (a) is undefined).

Run: ``.venv/bin/python benchmarks/knockouts.py [--quick] [--skip-mcad] [--only NAME ...]
[--seeds N]``. ``--seeds N`` refits each network's genome with ``fit_grn`` seeds 0..N-1 on the
same drift and prints the accuracy of each (single seeds differ by up to 3 of 11 knockouts on
myeloid, so compare changes over several seeds).
``--quick``: myeloid with 1,500 cells (clock variant only), 300 simulated cells per knockout,
no null, and the steady-state check with 1,000 cells.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _knockout_baselines as B
import _knockout_data as D
from _machine import cpu_model

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 20)


def _fmt(v: float, spec: str = ".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def _misses_text(misses: list[list[str]]) -> str:
    """The wrong knockouts of each fit seed, ``"A,B; none; C"``."""
    return "; ".join(",".join(m) or "none" for m in misses)


def _lost_sets(table: pd.DataFrame, key: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, grp in table.groupby(key, sort=False):
        out[str(name)] = set(grp.loc[grp["lost"], "fate"].astype(str))
    return out


def _model_states(adata):
    import gclandscape as gcl
    from gclandscape.landscape._landscape import _model_states as states

    genome = gcl.landscape.Genome.from_adata(adata)
    return states(adata, genome, "gcl_genome")[0], genome.genes


def _refit_lost(adata, case: D.KnockoutCase, *, seed: int, n_sim: int) -> dict[str, set[str]]:
    """Refit the genome with another ``fit_grn`` seed on the drift already stored in ``adata``
    (same data, drift and cell types), refit the landscape, screen and return the lost fates."""
    import gclandscape as gcl

    ad = adata.copy()
    gcl.landscape.fit_grn(ad, genes=case.genes, n_bootstrap=0, seed=seed)
    gcl.landscape.fit_landscape(ad, groupby=case.groupby)
    table = gcl.sim.screen(
        ad, "knockouts", root=case.root, n_cells=n_sim, n_null=0, seed=0, progress=False
    )
    table["gene"] = table["perturbation"].str.removesuffix(" KO")
    return _lost_sets(table, "gene")


def _use_true_drift(adata, genes: list[str]) -> None:
    """Replace the regulators' estimated states and drift (``gcl.tl.drift``'s layers) by the
    simulation's true states and dx/dt, each gene scaled by its 99th percentile like the
    estimate: the oracle input that bounds what ``fit_grn`` can recover from these cells."""
    truth = adata.uns["gcl_truth"]
    regulators = [str(g) for g in truth["regulators"]]
    cols = [regulators.index(g) for g in genes]
    state = np.asarray(truth["state"], dtype=np.float64)[:, cols]
    scale = np.percentile(state, 99, axis=0)
    velocity = np.asarray(truth["velocity"], dtype=np.float64)[:, cols] / scale
    idx = adata.var_names.get_indexer(genes)
    for layer, value in (
        ("gcl_drift_state", state / scale), ("gcl_drift", velocity), ("gcl_drift_path", velocity)
    ):  # fmt: skip
        arr = adata.layers[layer]
        arr = np.array(arr.toarray() if hasattr(arr, "toarray") else arr, dtype=np.float64)
        arr[:, idx] = value
        adata.layers[layer] = arr
    adata.var.loc[genes, "gcl_drift_scale"] = scale


#: (target, true regulator, partner) triples for the knockouts the myeloid genome gets wrong;
#: the partner is co-expressed with the regulator because one follows the other. Fog1 = Gata1
#: in Krumsiek's rules (Fog1 is a lagged copy of Gata1, and Cebpa is switched off by Gata1,
#: Fog1 and SCL together); EgrNab = Pu.1 and cJun and not Gfi1 (EgrNab follows cJun).
PARTNER_SWAPS = [("Pu.1", "Gata1", "Fog1"), ("Gfi1", "Cebpa", "Fog1"), ("Gfi1", "EgrNab", "cJun")]


def identifiability(case: D.KnockoutCase, *, estimate: bool = True) -> pd.DataFrame:
    """Can the data tell a true regulator from a co-expressed partner? For each triple of
    :data:`PARTNER_SWAPS`, the 5-fold cross-validated R² (gradient-boosted trees,
    scikit-learn) of a target's dx/dt from its true inputs and its own level (its decay),
    against the same inputs with the true regulator replaced by its partner: on the
    simulation's TRUE states and dx/dt, and on what ``fit_grn`` fits (``gcl.tl.drift``'s
    smoothed states and per-cell drift, from the simulation clock and from a diffusion
    pseudotime rooted in ``case.root``; skipped with ``estimate=False``). Where the two R² are
    equal the regulator is not identifiable from these cells; where the partner explains an
    estimate better, that estimate has lost what tells them apart."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import KFold, cross_val_score

    import gclandscape as gcl

    truth = case.adata.uns["gcl_truth"]
    regulators = [str(g) for g in truth["regulators"]]
    sources = {"true states and dx/dt": (truth["state"], truth["velocity"])}
    for name in ("clock", "pseudotime") if estimate else ():
        adata = case.adata.copy()  # as run_case's variants: recipe, then the drift
        if case.counts:
            gcl.pp.recipe(adata, n_top_genes=500)
        idx = adata.var_names.get_indexer(regulators)
        time_key = case.time_key
        if name == "pseudotime":
            gcl.tl.pseudotime(adata, root=case.root, groupby=case.groupby)
            time_key = "gcl_pseudotime"
        gcl.tl.drift(adata, genes=regulators, time_key=time_key)
        sources[f"gcl.tl.drift estimate ({name})"] = (
            adata.layers["gcl_drift_state"][:, idx].toarray(),
            adata.layers["gcl_drift"][:, idx].toarray(),
        )
    net = truth["network"]
    rows = []
    for target, regulator, partner in PARTNER_SWAPS:
        inputs = sorted(set(net.loc[net["target"] == target, "source"].astype(str)) | {target})
        swapped = [partner if g == regulator else g for g in inputs]
        for source, (state, velocity) in sources.items():
            state = np.asarray(state, dtype=np.float64)
            y = np.asarray(velocity, dtype=np.float64)[:, regulators.index(target)]
            r2 = []
            for cols in (inputs, swapped):
                x = state[:, [regulators.index(g) for g in cols]]
                model = HistGradientBoostingRegressor(max_iter=200, random_state=0)
                cv = KFold(5, shuffle=True, random_state=0)
                r2.append(float(cross_val_score(model, x, y, cv=cv, scoring="r2").mean()))
            rows.append({"target": target, "inputs": "+".join(inputs),
                         "swap": f"{regulator} -> {partner}", "data": source,
                         "r2_true": r2[0], "r2_swapped": r2[1]})  # fmt: skip
    return pd.DataFrame(rows)


def run_case(
    case: D.KnockoutCase, *, variant: str, n_sim: int, n_null: int, n_seeds: int = 1
) -> dict:
    """Fit, screen, baseline and score one case; prints its tables and returns a summary.

    With ``n_seeds > 1`` the genome is refitted with ``fit_grn`` seeds 1, ..., n_seeds - 1 on
    the same drift, and the accuracy of every seed is reported (the fit is non-convex: on the
    myeloid data single seeds differ by up to 3 of 11 knockouts)."""
    import gclandscape as gcl

    adata = case.adata.copy()
    t0 = time.perf_counter()
    if case.counts:
        gcl.pp.recipe(adata, n_top_genes=500)
    if variant == "dpt":
        gcl.landscape.fit_grn(
            adata, genes=case.genes, root=case.root, groupby=case.groupby, n_bootstrap=0
        )
    elif variant == "oracle":
        gcl.tl.drift(adata, genes=case.genes, time_key=case.time_key)
        _use_true_drift(adata, case.genes)
        gcl.landscape.fit_grn(adata, genes=case.genes, n_bootstrap=0)
    else:
        gcl.landscape.fit_grn(adata, genes=case.genes, time_key=case.time_key, n_bootstrap=0)
    t_grn = time.perf_counter() - t0
    t = time.perf_counter()
    land = gcl.landscape.fit_landscape(adata, groupby=case.groupby)
    t_land = time.perf_counter() - t
    t = time.perf_counter()
    table = gcl.sim.screen(
        adata, "knockouts", root=case.root, n_cells=n_sim, n_null=n_null, seed=0, progress=False
    )
    t_screen = time.perf_counter() - t
    table["gene"] = table["perturbation"].str.removesuffix(" KO")
    ours = _lost_sets(table, "gene")

    t = time.perf_counter()
    x, genes = _model_states(adata)
    base = B.celloracle_screen(x, adata.obs[case.groupby].astype(str).to_numpy(), genes)
    t_base = time.perf_counter() - t
    ridge = _lost_sets(base, "gene")

    s_ours = D.score_knockouts(ours, case.truth_lost, case.fates)
    s_base = D.score_knockouts(ridge, case.truth_lost, case.fates)
    source = {"dpt": "diffusion pseudotime", "oracle": "TRUE states and dx/dt"}
    label = f"{case.name} ({source.get(variant, case.time_key)})"
    print(f"\n== {label}: {adata.n_obs} cells, {len(genes)} regulators, fates {case.fates}")
    for note in case.notes:
        print(f"   note: {note}")
    print(
        f"   fit_grn {t_grn:.0f} s, fit_landscape {t_land:.0f} s, screen {t_screen:.0f} s "
        f"({len(genes)} KOs × {n_sim} cells, n_null={n_null}), ridge baseline {t_base:.1f} s"
    )
    # long pattern names ("g004+g000+g003") are shown as F1, F2, ... in the table
    alias = {f: f for f in case.fates}
    if max(len(f) for f in case.fates) > 12:
        alias = {f: f"F{i + 1}" for i, f in enumerate(case.fates)}
        print("   fate aliases: " + ", ".join(f"{a} = {f}" for f, a in alias.items()))

    att = land.attractors
    print(
        "   attractors: "
        + ", ".join(f"{alias.get(r.label, r.label)} ({r.basin_fraction:.2f}, purity {r.purity:.2f})"
                    for r in att.itertuples())
    )  # fmt: skip

    def show(s: set[str]) -> str:
        scored = sorted(alias[f] for f in s & set(case.fates))
        extra = sorted(s - set(case.fates))
        txt = ",".join(scored) or "-"
        return txt + (f" (+{','.join(extra)})" if extra else "")

    rows = []
    for g in case.truth_lost:
        tr = case.truth_lost[g] & set(case.fates)
        o, r = ours.get(g, set()), ridge.get(g, set())
        rows.append(
            {
                "knockout": g,
                "true lost": show(tr),
                "gcl lost": show(o),
                "gcl ok": "yes" if (o & set(case.fates)) == tr else "NO",
                "ridge lost": show(r),
                "ridge ok": "yes" if (r & set(case.fates)) == tr else "NO",
            }
        )
    wt = table.drop_duplicates("fate").set_index("fate")["wt"]
    wt_txt = ", ".join(f"{alias.get(f, f)} {v:.2f}" for f, v in wt.items())
    print(f"   simulated wild-type fates (gcl): {wt_txt}")
    reached = [f for f in case.fates if wt.get(f, 0.0) >= D.MIN_FRACTION]
    if len(reached) < len(case.fates):
        missing = [alias[f] for f in case.fates if f not in reached]
        print(f"   the fitted genome's wild type does not reach {missing}: they cannot be lost")
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"   {'method':<22}{'accuracy':>12}{'precision':>11}{'recall':>8}")
    for name, s in (("gcl.sim.screen", s_ours), ("CellOracle-style ridge", s_base)):
        print(
            f"   {name:<22}{s['n_right']:>5}/{s['n']:<2} {s['accuracy']:.2f}"
            f"{_fmt(s['precision']):>11}{_fmt(s['recall']):>8}"
        )
    per_seed, misses = [s_ours["n_right"]], [s_ours["wrong"]]
    for seed in range(1, n_seeds):
        lost = _refit_lost(adata, case, seed=seed, n_sim=n_sim)
        s_seed = D.score_knockouts(lost, case.truth_lost, case.fates)
        per_seed.append(s_seed["n_right"])
        misses.append(s_seed["wrong"])
    if n_seeds > 1:
        print(
            f"   gcl accuracy by fit_grn seed 0..{n_seeds - 1}: {per_seed} of {s_ours['n']} "
            f"(mean {np.mean(per_seed):.1f}); wrong: {_misses_text(misses)}"
        )
    return {
        "case": label,
        "reached": f"{len(reached)}/{len(case.fates)}",
        "gcl": s_ours,
        "ridge": s_base,
        "per_seed": per_seed,
        "misses": misses,
        "seconds": time.perf_counter() - t0,
    }


def steady_state(*, n_cells: int, n_genes: int = 12, seed: int = 0, n_sim: int = 500) -> dict:
    import gclandscape as gcl

    t0 = time.perf_counter()
    adata, _net, true = D.load_steady_state(n_genes, n_cells=n_cells, seed=seed)
    gcl.pp.recipe(adata, n_top_genes=200)
    genes = [str(g) for g in adata.uns["gcl_truth"]["regulators"]]
    gcl.landscape.fit_grn(adata, genes=genes, n_bootstrap=0)
    mode = adata.uns["gcl_genome"]["params"]["mode"]
    t_fit = time.perf_counter() - t0
    # score knockouts that change something: genes expressed at >= 0.1 in the true steady state
    import torch

    from gclandscape.datasets._simulate import field_from_truth
    from gclandscape.engine import integrate

    truth = adata.uns["gcl_truth"]
    x_wt = integrate(
        field_from_truth(truth),
        torch.as_tensor(np.asarray(truth["initial"])[None]),
        t_max=60.0,
        dt=0.05,
    ).x.numpy()[0]
    scored = [g for g, v in zip(genes, x_wt) if v >= 0.1]
    true = true.loc[scored, genes]
    t = time.perf_counter()
    pred = {}
    for g in scored:
        res = gcl.sim.perturb(adata, gcl.sim.Knockout(g), n_cells=n_sim, n_null=0, decode=False)
        pred[g] = res.expression["log2fc"].reindex(genes).to_numpy()
    t_pert = time.perf_counter() - t
    ours = pd.DataFrame(pred, index=genes).T
    x, model_genes = _model_states(adata)
    ridge = B.celloracle_log2fc(x, model_genes).reindex(index=genes, columns=genes)
    methods = {
        "gcl.sim.perturb": ours,
        "only the KO gene": B.only_target_log2fc(genes),
        "mean of other KOs": B.mean_others_log2fc(true),
        "CellOracle-style ridge": ridge,
    }
    print(
        f"\n== steady state: {n_genes}-gene acyclic network, {adata.n_obs} cells, fit_grn mode "
        f"{mode!r} ({t_fit:.0f} s incl. simulation), perturb {t_pert:.0f} s for "
        f"{len(scored)} knockouts × {n_sim} cells"
    )
    print(f"   true steady state: {dict(zip(genes, np.round(x_wt, 2)))}")
    per = pd.DataFrame({name: B.pearson_rows(p, true) for name, p in methods.items()}).round(2)
    per.index.name = "knockout"
    print("   Pearson r over all regulators, per knockout:")
    print(per.to_string())
    summary = []
    for name, p in methods.items():
        r_all = B.pearson_rows(p, true)
        r_oth = B.pearson_rows(p, true, exclude_self=True)
        summary.append(
            {
                "method": name,
                "median r (all genes)": _fmt(float(r_all.median())),
                "median r (other genes)": _fmt(float(r_oth.median()) if r_oth.notna().any()
                                               else float("nan")),
                "n": int(r_all.notna().sum()),
            }
        )  # fmt: skip
    summary = pd.DataFrame(summary)
    print(summary.to_string(index=False))
    return {"table": summary, "n": len(scored), "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-mcad", action="store_true")
    parser.add_argument("--skip-steady", action="store_true")
    parser.add_argument(
        "--only", nargs="*", default=None,
        help="subset of: myeloid myeloid-pseudotime myeloid-oracle random mcad",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", type=int, default=1,
        help="fit_grn seeds per network (0..N-1); accuracy is reported for each",
    )  # fmt: skip
    args = parser.parse_args(argv)
    import torch

    t_all = time.perf_counter()
    print(f"machine: {cpu_model()}, torch threads {torch.get_num_threads()}")
    only = set(args.only) if args.only is not None else None
    want = lambda k: only is None or k in only  # noqa: E731
    n_sim = 300 if args.quick else 1000
    n_null = 0
    results = []
    ident = None
    if want("myeloid") or want("myeloid-pseudotime") or want("myeloid-oracle"):
        case = D.load_myeloid(n_cells=1500 if args.quick else 3000)
        for name, variant in (
            ("myeloid", "time"), ("myeloid-pseudotime", "dpt"), ("myeloid-oracle", "oracle")
        ):  # fmt: skip
            if want(name) and (variant == "time" or not args.quick):
                results.append(
                    run_case(case, variant=variant, n_sim=n_sim, n_null=n_null,
                             n_seeds=args.seeds)
                )  # fmt: skip
        if want("myeloid-oracle") and not args.quick:
            ident = identifiability(case)
    if want("random") and not args.quick:
        for n, first in D.RANDOM_CASES:
            seed = D.select_random_seed(n, first)
            case = D.load_random(n, seed)
            results.append(
                run_case(case, variant="time", n_sim=n_sim, n_null=n_null, n_seeds=args.seeds)
            )
    if want("mcad") and not args.skip_mcad and not args.quick:
        try:
            case = D.load_mcad()
        except D.DatasetUnavailable as err:
            print(f"\n== mCAD skipped: {err}")
        else:
            results.append(
                run_case(case, variant="time", n_sim=n_sim, n_null=n_null, n_seeds=args.seeds)
            )
    ss = None
    if not args.skip_steady and only is None:
        ss = steady_state(n_cells=1000 if args.quick else 2000, n_sim=200 if args.quick else 500)

    # ------------------------------------------------------------------ summary
    print("\n" + "=" * 100)
    print("SUMMARY (paste into benchmarks/README.md)\n")
    print("| network (drift from) | fates reached by gcl's wild type | gcl accuracy | "
          "gcl precision | gcl recall | ridge accuracy | ridge precision | ridge recall | "
          "seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        g, b = r["gcl"], r["ridge"]
        print(
            f"| {r['case']} | {r['reached']} | {g['n_right']}/{g['n']} | {_fmt(g['precision'])} | "
            f"{_fmt(g['recall'])} | {b['n_right']}/{b['n']} | {_fmt(b['precision'])} | "
            f"{_fmt(b['recall'])} | {r['seconds']:.0f} |"
        )
    if args.seeds > 1:
        print(f"\ngcl accuracy by fit_grn seed (0..{args.seeds - 1}; the table shows seed 0):")
        for r in results:
            print(f"- {r['case']}: {r['per_seed']} of {r['gcl']['n']}, mean "
                  f"{np.mean(r['per_seed']):.1f} (wrong: {_misses_text(r['misses'])})")  # fmt: skip
    if ident is not None:
        print("\nIdentifiability (myeloid): cross-validated R² of a target's dx/dt from its "
              "true inputs, and with one true regulator replaced by a co-expressed partner\n")  # fmt: skip
        print("| target | inputs | swap | data | R² true inputs | R² partner swapped in |")
        print("|---|---|---|---|---|---|")
        for r in ident.itertuples(index=False):
            print(f"| {r.target} | {r.inputs} | {r.swap} | {r.data} | {r.r2_true:.3f} | "
                  f"{r.r2_swapped:.3f} |")  # fmt: skip
    if ss is not None:
        print(f"\nSteady-state check: Pearson r of predicted vs true log2FC, median over "
              f"{ss['n']} knockouts\n")  # fmt: skip
        print("| method | median r (all genes) | median r (other genes) |")
        print("|---|---|---|")
        for row in ss["table"].itertuples(index=False):
            print(f"| {row[0]} | {row[1]} | {row[2]} |")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s" + (" (--quick)" if args.quick else ""))


if __name__ == "__main__":
    main()
