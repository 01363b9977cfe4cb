"""Perturb-seq from control cells: predict every knockout's log2 fold changes over all genes.

A synthetic screen from our own simulator (:mod:`_perturbseq_data`): a control population at
the steady state of a signed random network of regulators (mostly acyclic, a few feedback
edges, constitutive inputs: one steady state) with downstream targets, and knockout
populations of strong, weak and null knockouts (classified by the true effect size), all as
counts. Every method sees the control cells only and predicts each knockout's log2 fold
change over all genes; the observed log2 fold changes of the knockout cells are the answer.

Methods:

- ``gclandscape``: the steady-state mode as a user runs it: ``gcl.pp.recipe`` →
  ``gcl.landscape.fit_grn(adata)`` (no time signal: steady-state mode; default genes: the
  expressed regulators in ``var["gcl_regulator"]``, as ``gcl.pp.annotate_regulators`` marks
  them on real data; ``n_bootstrap=0``: the bootstrap only sets edge confidences) →
  ``gcl.sim.perturb(adata, Knockout(g), decode=False)`` → ``res.log2fc``: the genome's genes
  from the simulation, every other gene from the genome's readout
  (:mod:`gclandscape.landscape._readout`, fitted by ``fit_grn``).
- ``gclandscape, regulators only``: the genome's genes of the same result
  (``res.expression["log2fc"]``), every other gene counted as predicted 0: what
  ``res.log2fc`` was before the readout.
- ``gclandscape + benchmark readout``: the same genome, with the non-regulator genes read
  out here, as measured before the package had a readout: a ridge regression (alpha 1) of
  each gene's log-normalised expression on the regulators' unsmoothed model states across
  control cells, applied to the simulated mean shift (``Δ mean log / ln 2``).
- ``co-expression``, ``ridge GRN propagation`` (CellOracle-style), both zero-shot, and
  ``mean of other KOs`` (a reference, not zero-shot): :mod:`_perturbseq_methods`.
- ``true log2FC (ceiling)``: the noise-free true change as the prediction; what the counting
  noise of the observed changes leaves reachable.

Metrics (:mod:`_perturbseq_methods`): Pearson's r over all genes and over the 20 most changed
genes, sign accuracy on those 20 (means over the strong and weak knockouts; a null
knockout's observed change is noise), and Spearman's rho of predicted vs observed effect
size across all knockouts. Dev seeds are for looking, test seeds are reported.

Usage: ``python benchmarks/perturbseq.py [--quick]`` (quick: 50 regulators, one dev and one
test seed; full: 100 regulators × 300 targets, 2,000 control cells, 15 knockouts, dev seed 0
and test seeds 1, 2: about a minute on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _perturbseq_data as D
import _perturbseq_methods as M

QUICK = {"n_regulators": 50, "n_targets": 150, "n_control": 1000, "n_per_ko": 200,
         "k_per_class": 3, "n_sim": 300, "dev": (0,), "test": (1,)}  # fmt: skip
FULL = {"n_regulators": 100, "n_targets": 300, "n_control": 2000, "n_per_ko": 300,
        "k_per_class": 5, "n_sim": 500, "dev": (0,), "test": (1, 2)}  # fmt: skip
GCL = "gclandscape"
GCL_REGULATORS = "gclandscape, regulators only"
GCL_READOUT = "gclandscape + benchmark readout"
ZERO_SHOT = ("co-expression", "ridge GRN propagation")
REFERENCE = "mean of other KOs"
CEILING = "true log2FC (ceiling)"


def gcl_predictions(screen: D.Screen, *, n_sim: int, seed: int = 0) -> tuple[dict, dict]:
    """``({GCL: pred, GCL_REGULATORS: pred, GCL_READOUT: pred}, timing)`` for one screen."""
    import gclandscape as gcl
    from gclandscape.landscape._landscape import _model_states

    adata = screen.controls()
    t0 = time.perf_counter()
    gcl.pp.recipe(adata)
    t_recipe = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        genome = gcl.landscape.fit_grn(adata, n_bootstrap=0, seed=seed)
    t_fit = time.perf_counter() - t0
    params = adata.uns["gcl_genome"]["params"]
    mode = params["mode"]

    # the benchmark-side readout measured before the package had one: every gene's
    # log-normalised expression on the genome's states, control cells
    states, _ = _model_states(adata, genome, "gcl_genome")
    counts = adata.layers["counts"]
    x = M.lognorm(counts.toarray() if hasattr(counts, "toarray") else counts)
    coef = M.ridge_on_sources(np.hstack([states, x]), np.arange(states.shape[1]))
    readout = coef[states.shape[1] :, : states.shape[1]]  # genes × genome genes
    genes = [str(g) for g in adata.var_names]

    returned, regulators, with_readout, t_pert = {}, {}, {}, []
    for ko in screen.knockouts:
        t0 = time.perf_counter()
        res = gcl.sim.perturb(adata, gcl.sim.Knockout(ko), n_cells=n_sim, n_null=0, decode=False)
        t_pert.append(time.perf_counter() - t0)
        returned[ko] = res.log2fc.astype(np.float64)
        fc = res.expression["log2fc"].astype(np.float64)
        regulators[ko] = fc
        shift = (res.expression["perturbed"] - res.expression["wt"]).reindex(genome.genes)
        out = pd.Series(readout @ shift.to_numpy(np.float64) / M.LN2, index=genes)
        out.loc[fc.index.intersection(out.index)] = fc  # the genome's own genes as returned
        with_readout[ko] = out
    preds = {
        GCL: pd.DataFrame(returned).T.reindex(columns=screen.genes),
        GCL_REGULATORS: pd.DataFrame(regulators).T.reindex(columns=screen.genes),
        GCL_READOUT: pd.DataFrame(with_readout).T.reindex(columns=screen.genes),
    }
    timing = {
        "mode": mode,
        "n_genome_genes": len(genome.genes),
        "recipe_s": t_recipe,
        "fit_s": t_fit,
        "readout_s": float(params.get("seconds_readout", float("nan"))),
        "readout_alpha": float(params.get("readout_alpha", float("nan"))),
        "perturb_s_per_ko": float(np.mean(t_pert)),
        "coverage": float(preds[GCL].notna().mean(axis=1).mean()),
    }
    return preds, timing


def run_seed(seed: int, cfg: dict) -> dict:
    """Simulate one screen, run every method, score; returns per-method tables."""
    t0 = time.perf_counter()
    screen = D.simulate_screen(
        cfg["n_regulators"], n_targets=cfg["n_targets"], n_control=cfg["n_control"],
        n_per_ko=cfg["n_per_ko"], k_per_class=cfg["k_per_class"], seed=seed,
    )  # fmt: skip
    t_sim = time.perf_counter() - t0
    ctrl = screen.controls()
    x = M.lognorm(ctrl.layers["counts"].toarray())
    preds, timing = {}, {}
    t0 = time.perf_counter()
    preds["co-expression"] = M.coexpression_log2fc(x, screen.genes, screen.knockouts)
    timing["co-expression"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds["ridge GRN propagation"] = M.ridge_propagation_log2fc(
        x, screen.genes, screen.regulators, screen.knockouts
    )
    timing["ridge GRN propagation"] = time.perf_counter() - t0
    preds[REFERENCE] = M.mean_of_others(screen.observed_log2fc)
    preds[CEILING] = screen.true_log2fc
    gcl_preds, gcl_timing = gcl_predictions(screen, n_sim=cfg["n_sim"])
    preds.update(gcl_preds)
    per_ko = {name: M.score(p, screen.observed_log2fc) for name, p in preds.items()}
    return {"screen": screen, "per_ko": per_ko, "gcl": gcl_timing, "timing": timing,
            "t_sim": t_sim}  # fmt: skip


def summarise(results: list[dict]) -> pd.DataFrame:
    """Method × metric, averaged over the seeds given (knockout means within a seed first)."""
    rows = []
    for res in results:
        classes = pd.Series(res["screen"].classes)
        scored = classes.index[classes != "null"]
        strong = classes.index[classes == "strong"]
        for name, per in res["per_ko"].items():
            rows.append({
                "method": name,
                "r all genes": per.loc[scored, "r_all"].mean(),
                "r top 20": per.loc[scored, "r_top20"].mean(),
                "sign top 20": per.loc[scored, "sign_top20"].mean(),
                "r all, strong KOs": per.loc[strong, "r_all"].mean(),
                "rank effect size": M.rank_effect(per),
            })  # fmt: skip
    table = pd.DataFrame(rows).groupby("method", sort=False).mean()
    return table


def _ratio_line(table: pd.DataFrame) -> str:
    parts = []
    for col in ("r all genes", "r top 20"):
        best = table.loc[list(ZERO_SHOT), col].max()
        for name in (GCL, GCL_REGULATORS, GCL_READOUT):
            parts.append(f"{name} / best zero-shot, {col}: {table.loc[name, col] / best:.2f}")
    return "; ".join(parts) + " (goal >= 1.5 on both)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 regulators, 2 seeds")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    t_all = time.perf_counter()
    print(
        f"Perturb-seq from control cells: {cfg['n_regulators']} regulators + {cfg['n_targets']} "
        f"targets, {cfg['n_control']} control cells, {3 * cfg['k_per_class']} knockouts × "
        f"{cfg['n_per_ko']} cells (strong/weak/null {cfg['k_per_class']} each); "
        f"dev seeds {list(cfg['dev'])}, test seeds {list(cfg['test'])}"
    )
    results: dict[str, list[dict]] = {"dev": [], "test": []}
    for split in ("dev", "test"):
        for seed in cfg[split]:
            res = run_seed(seed, cfg)
            results[split].append(res)
            s, g = res["screen"], res["gcl"]
            eff = s.effect.round(3)
            print(
                f"\n[{split} seed {seed}] simulated in {res['t_sim']:.0f} s: "
                f"{s.info['n_expressed']} expressed regulators, {s.info['n_silent']} silent, "
                f"{s.info['n_feedback']} feedback edges; knockouts (class, true effect): "
                + ", ".join(f"{k} ({s.classes[k]}, {eff[k]})" for k in s.knockouts)
            )
            print(
                f"  gclandscape: mode {g['mode']!r}, {g['n_genome_genes']} genome genes, "
                f"recipe {g['recipe_s']:.1f} s, fit_grn {g['fit_s']:.1f} s (of which the "
                f"readout {g['readout_s']:.1f} s, alpha {g['readout_alpha']:.3g}), perturb "
                f"{g['perturb_s_per_ko']:.1f} s per knockout; res.log2fc covers "
                f"{100 * g['coverage']:.0f} % of the genes. Baselines (all knockouts): "
                + ", ".join(f"{k} {v:.2f} s" for k, v in res["timing"].items())
            )
            per = pd.DataFrame({n: p["r_all"] for n, p in res["per_ko"].items()}).round(2)
            per.insert(0, "class", pd.Series(s.classes))
            print("  Pearson r over all genes, per knockout:")
            print("  " + per.to_string().replace("\n", "\n  "))
    test, dev = summarise(results["test"]), summarise(results["dev"])
    table = test.round(3).astype(str) + " (" + dev.round(3).astype(str) + ")"
    print("\n== test seeds (dev seeds in brackets); Pearson and sign: mean over strong and weak")
    print("   knockouts; rank effect size: Spearman over all knockouts")
    print(table.to_string())
    print(_ratio_line(test))
    print(f"total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
