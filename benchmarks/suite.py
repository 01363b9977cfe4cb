"""Generalisation suite: knockout and GRN accuracy over 40+ ground-truth networks (issue 17 §2).

Networks, families, split and realism levels: ``_suite_networks.py``; methods and their inputs:
``_suite_methods.py``; metrics and tables: ``_suite_scoring.py``.

For each network and realism level, ``gcl.datasets.simulate`` makes the data (:data:`N_CELLS`
cells, :data:`N_TARGETS` downstream genes, :data:`N_TRAJ` trajectories per wild type and per
knockout) with the main truth ``knockout="clamp"`` (germline: the gene is 0 from t = 0, start
state included); a second simulation with ``knockout="production"`` (same seed and
trajectories) gives the second truth column. A fate is lost when < 1 % of knockout
trajectories reach it; the scored fates are the wild-type fates reached by >= 5 %. A network
whose wild type reaches fewer than 2 scored fates at a level is rejected there (printed,
counted). Every method then sees only the data (``_suite_methods.method_input``).

Settings chosen on the dev split only (clamp truth, mean lost-set accuracy, per level): ``k`` of
``specific_regulators`` (1..5) and the relative factor of ``linear_propagation``; both are
printed. A run without dev networks (``--split test``) uses :data:`DEV_CHOICE`, the choices of
the last full run (benchmarks/README.md).

Run: ``OMP_NUM_THREADS=1 python benchmarks/suite.py [--split dev|test|all] [--level
easy|hard|all] [--jobs N] [--json PATH] [--quick] [--only NAME ...] [--list]``.
``--quick``: :data:`QUICK` (networks of both splits), easy level. ``--fit JSON``: extra
``fit_grn`` keyword arguments of the gclandscape row (settings compared on dev;
``'{"time_key": "sim_time"}'`` gives that row alone the simulation's clock: the ceiling of any
time signal; ``'{"pseudotime": "committor"}'`` fits on ``gcl.tl.pseudotime(method=...)``). ``--raw PATH`` appends each
network's records as it finishes; ``--tables-from PATH`` prints the tables of such a file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _suite_methods as M
import _suite_networks as N
import _suite_scoring as S

N_CELLS = 1000
N_TARGETS = 40
N_TRAJ = 300
N_SIM = 200  # simulated cells per knockout in gclandscape's screen
QUICK = ("toggle_cascade_s230", "toggle_cascade_s231", "mi_tree_s250", "mi_tree_s251",
         "ffl_s240", "BF", "TF", "random6_s100")  # fmt: skip
#: (level → (k, factor)) chosen on dev by the full run of 2026-12-06; used when dev is not run.
DEV_CHOICE = {"easy": (2, 0.5), "hard": (2, 0.5)}
KO_METHODS = ("gclandscape", "nothing_lost", "specific_regulators", "linear_propagation")
GRN_METHODS = ("gclandscape", "genie3", "partial_corr", "pearson")


# ------------------------------------------------------------------------------- one network
def _simulate(net: N.SuiteNetwork, level: str, n_cells: int):
    import gclandscape as gcl

    network, base = N.build_network(net)
    kw = N.simulate_kwargs(net, list(network.genes), base, level)
    missing = kw.pop("_missing", [])
    common = {"seed": net.seed, "n_trajectories": N_TRAJ, **kw}
    adata = gcl.datasets.simulate(
        network, n_cells=n_cells, n_targets=N_TARGETS, knockout="clamp", **common
    )
    prod = gcl.datasets.simulate(
        network, n_cells=N_TRAJ, n_targets=0, knockout="production", **common
    )
    return adata, prod.uns["gcl_truth"], missing


def _record(net: N.SuiteNetwork, level: str, truth: str, method: str, **values) -> dict:
    rec = dict.fromkeys(S.RECORD_KEYS)
    rec.update(network=net.name, family=net.family, split=net.split, level=level, truth=truth,
               method=method)  # fmt: skip
    rec.update({k: S._num(v) if isinstance(v, float | np.floating) else v
                for k, v in values.items()})  # fmt: skip
    return rec


def run_network(net: N.SuiteNetwork, level: str, *, n_cells: int, n_sim: int,
                fit_kwargs: dict | None = None) -> dict:  # fmt: skip
    """Simulate, run every method and score: ``{"status", "reason", "records", "notes"}``.
    ``records`` carry a ``setting`` (``k`` or ``factor``) for the methods chosen on dev."""
    import warnings

    warnings.filterwarnings("ignore")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        adata, prod_truth, missing = _simulate(net, level, n_cells)
    except Exception as err:  # a network the simulator cannot run is rejected, not fatal
        return {"status": "rejected", "reason": f"simulate failed: {err}", "records": []}
    truth = adata.uns["gcl_truth"]
    wt_frac = {str(k): float(v) for k, v in truth["wt_fate_fractions"].items()}
    fates = S.scored_fates(wt_frac)
    if len(fates) < 2:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in wt_frac.items())
        return {"status": "rejected", "reason": f"{len(fates)} scored fate(s) ({shown})",
                "records": []}  # fmt: skip
    truths = {
        "clamp": {k: S.D.parse_lost(v) for k, v in truth["knockout_lost_fates"].items()},
        "production": {k: S.D.parse_lost(v) for k, v in prod_truth["knockout_lost_fates"].items()},
    }
    notes = [f"hard level without {missing}: simulate lacks them"] if missing else []
    inp = M.method_input(adata)
    regs = M.regulators(inp)
    labels = inp.obs[M.GROUPBY].astype(str).to_numpy()
    observed = sorted(set(labels) - {M.ROOT})
    x = M.log_expression(inp, regs)
    adj, sign, _ = M.GB.truth_matrices(truth["network"], regs)
    records: list[dict] = []

    def add(method: str, lost, *, p_lost=None, seconds=None, setting=None, **extra):
        for name, tl in truths.items():
            rec = _record(net, level, name, method, seconds=seconds, n_fates=len(fates),
                          brier=S.brier(p_lost, tl, fates), **S.ko_metrics(lost, tl, fates),
                          **extra)  # fmt: skip
            rec["setting"] = setting
            records.append(rec)

    # gclandscape
    g_inp = inp
    if (fit_kwargs or {}).get("time_key") == "sim_time":
        # the ceiling of the time signal: this row alone is given the simulation's clock
        g_inp = inp.copy()
        g_inp.obs["sim_time"] = adata.obs["sim_time"].to_numpy()
    try:
        g = M.run_gclandscape(g_inp, regs, n_sim=n_sim, fit_kwargs=fit_kwargs)
        fid = S.attractor_fidelity(g["attractors"], fates, observed)
        add("gclandscape", g["lost"], p_lost=g["p_lost"], seconds=g["seconds"],
            fates_found=fid["fates_found"], spurious=fid["spurious"],
            wt_tv=S.total_variation(g["wt"], wt_frac, fates),
            auprc_ratio=M.GB.auprc_ratio(adj, g["edges"].score),
            signed_auprc_ratio=M.GB.signed_auprc_ratio(sign, adj, g["edges"].signed))  # fmt: skip
    except Exception as err:  # scored as failed: no prediction, every metric None
        notes.append(f"gclandscape failed: {type(err).__name__}: {err}")
        traceback.print_exc(limit=3)
        for name in truths:
            records.append(_record(net, level, name, "gclandscape") | {"setting": None})
    add("nothing_lost", {r: set() for r in regs}, seconds=0.0)
    t = time.perf_counter()
    z = M.specificity_z(x, labels, regs, observed)
    sec = time.perf_counter() - t
    for k in M.K_CHOICES:
        add("specific_regulators", M.specific_lost(z, k), seconds=sec, setting=k)
    t = time.perf_counter()
    wt_lin, ko_lin = M.linear_screen(x, labels, regs)
    sec = time.perf_counter() - t
    for f in M.FACTOR_CHOICES:
        add("linear_propagation", M.lost_by_factor(wt_lin, ko_lin, f), seconds=sec, setting=f,
            wt_tv=S.total_variation(wt_lin, wt_frac, fates))  # fmt: skip
    for name, (scores, sec) in M.grn_baselines(x).items():
        for tname in truths:
            rec = _record(
                net,
                level,
                tname,
                name,
                seconds=sec,
                auprc_ratio=M.GB.auprc_ratio(adj, scores.score),
                signed_auprc_ratio=M.GB.signed_auprc_ratio(sign, adj, scores.signed),
            )
            rec["setting"] = None
            records.append(rec)
    notes.append(f"{len(regs)} regulators, fates {', '.join(f'{f} {wt_frac[f]:.2f}' for f in fates)}"
                 f"; {time.perf_counter() - t0:.0f} s ({time.process_time() - c0:.0f} s CPU)")  # fmt: skip
    return {"status": "ok", "reason": "", "records": records, "notes": notes,
            "cpu": time.process_time() - c0}  # fmt: skip


def _task(args):
    net, level, n_cells, n_sim, fit_kwargs = args
    import torch

    torch.set_num_threads(1)
    return net, level, run_network(net, level, n_cells=n_cells, n_sim=n_sim,
                                   fit_kwargs=fit_kwargs)  # fmt: skip


# ------------------------------------------------------------------------------- the run
def choose_settings(records: pd.DataFrame, levels: list[str]) -> dict[str, tuple]:
    """Per level, ``(k, factor)`` chosen on the dev split (clamp truth), else :data:`DEV_CHOICE`."""
    out = {}
    for level in levels:
        sub = records[(records["level"] == level) & (records["truth"] == "clamp")]
        if (sub["split"] == "dev").any():
            k = S.choose_on_dev(sub[sub["method"] == "specific_regulators"], "setting")
            f = S.choose_on_dev(sub[sub["method"] == "linear_propagation"], "setting")
            out[level] = (int(k), float(f))
            print(f"chosen on dev ({level}): specific_regulators k = {int(k)}, "
                  f"linear_propagation factor = {float(f)}")  # fmt: skip
        else:
            out[level] = DEV_CHOICE[level]
            print(
                f"no dev networks run ({level}): k, factor = {DEV_CHOICE[level]} "
                "(DEV_CHOICE, chosen on dev by the last full run)"
            )
    return out


def apply_settings(records: pd.DataFrame, settings: dict[str, tuple]) -> pd.DataFrame:
    """Keep each tuned method's rows with the chosen setting; drop the ``setting`` column."""
    keep = np.ones(len(records), dtype=bool)
    for level, (k, f) in settings.items():
        lv = records["level"] == level
        keep &= ~(lv & (records["method"] == "specific_regulators") & (records["setting"] != k))
        keep &= ~(lv & (records["method"] == "linear_propagation") & (records["setting"] != f))
    return records[keep].drop(columns="setting").reset_index(drop=True)


TABLES = (
    ("ko_accuracy", "clamp", KO_METHODS, False, "lost-set accuracy (clamp truth)"),
    ("pair_precision", "clamp", KO_METHODS, False, "(knockout, fate) precision (clamp)"),
    ("pair_recall", "clamp", KO_METHODS, False, "(knockout, fate) recall (clamp)"),
    ("brier", "clamp", KO_METHODS, True, "Brier score of p_lost (clamp; lower is better)"),
    ("ko_accuracy", "production", KO_METHODS, False, "lost-set accuracy (production truth)"),
    ("auprc_ratio", "clamp", GRN_METHODS, False, "GRN AUPRC ratio"),
    ("signed_auprc_ratio", "clamp", GRN_METHODS, False, "GRN signed AUPRC ratio"),
    (
        "wt_tv",
        "clamp",
        ("gclandscape", "linear_propagation"),
        True,
        "WT fate-fraction total variation (lower is better)",
    ),
    ("fates_found", "clamp", ("gclandscape",), False, "fates found as attractors"),
    ("n_fates", "clamp", ("gclandscape",), False, "scored fates"),
    ("spurious", "clamp", ("gclandscape",), True, "spurious attractors, basin > 5 %"),
    ("seconds", "clamp", (*KO_METHODS, *GRN_METHODS[1:]), True, "seconds"),
)


def print_tables(records: pd.DataFrame) -> None:
    from grn_recovery import markdown

    for level in dict.fromkeys(records["level"]):
        for metric, truth, methods, lower, title in TABLES:
            sub = records[(records["level"] == level) & (records["truth"] == truth)]
            methods = list(dict.fromkeys(methods))
            print(f"\n#### {title} — {level}; mean over networks, test (dev), * = best on test\n")
            print(markdown(S.summary_table(sub, metric, methods, lower_is_better=lower)))
        print(f"\n#### every metric, all families — {level}; test (dev), * = best on test\n")
        print(markdown(overall_table(records[records["level"] == level])))


def overall_table(records: pd.DataFrame) -> pd.DataFrame:
    """Metric × method: the ``overall`` cell of every table of :data:`TABLES` (one level)."""
    rows = {}
    methods = list(dict.fromkeys([*KO_METHODS, *GRN_METHODS]))
    for metric, truth, ms, lower, title in TABLES:
        if metric in ("n_fates", "seconds"):
            continue
        sub = records[records["truth"] == truth]
        t = S.summary_table(sub, metric, list(dict.fromkeys(ms)), lower_is_better=lower)
        rows[title] = t.iloc[-1].reindex(methods).fillna("")
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "metric " + t.index[-1].removeprefix("overall ")
    return out


def select(nets: list[N.SuiteNetwork], args) -> list[N.SuiteNetwork]:
    if args.only:
        unknown = sorted(set(args.only) - {n.name for n in nets})
        if unknown:
            raise SystemExit(f"unknown networks {unknown}; see --list")
        return [n for n in nets if n.name in args.only]
    if args.quick:
        return [n for n in nets if n.name in QUICK]
    return [n for n in nets if args.split == "all" or n.split == args.split]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--list", action="store_true", help="print the networks and exit")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--split", choices=("dev", "test", "all"), default="all")
    p.add_argument("--level", choices=("easy", "hard", "all"), default=None)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="append every network's raw records (all settings) to this JSON-lines file",
    )
    p.add_argument(
        "--tables-from",
        type=Path,
        default=None,
        help="print the tables of a --raw file (e.g. of a run cut short) and exit",
    )
    p.add_argument(
        "--fit",
        type=json.loads,
        default=None,
        help="extra fit_grn keyword arguments of the gclandscape row, as JSON, e.g. '{\"decode\": false}'",
    )
    args = p.parse_args(argv)
    nets = N.suite_networks(verbose=True)
    if args.list:
        for n in nets:
            print(f"{n.name} {n.family} {n.split} {n.n_regulators}")
        return 0
    if args.tables_from:
        rows = [json.loads(line) for line in args.tables_from.read_text().splitlines() if line]
        return _score(pd.DataFrame(rows), nets, args.json)
    level = args.level or ("easy" if args.quick else "all")
    levels = list(N.LEVELS) if level == "all" else [level]
    n_cells, n_sim = N_CELLS, N_SIM
    chosen = select(nets, args)
    from _machine import cpu_model

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}; {cpu_model()}, "
          f"{os.cpu_count()} cores; {len(chosen)} networks × levels {levels}, {n_cells} cells, "
          f"{N_TARGETS} targets, {N_TRAJ} trajectories, screen {n_sim} cells/KO, "
          f"{args.jobs} jobs; fit_grn extra {args.fit or {}}")  # fmt: skip
    tasks = [(n, lv, n_cells, n_sim, args.fit) for lv in levels for n in chosen]
    # easy level first (a cut-short run still has it whole), longest first within a level
    tasks.sort(key=lambda t: (levels.index(t[1]), -t[0].n_regulators))
    t0 = time.perf_counter()
    results = []

    def collect(net, lv, res):
        _report(net, lv, res, t0)
        results.append((net, lv, res))
        if args.raw:
            with args.raw.open("a") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in res["records"])

    if args.jobs <= 1:
        for t in tasks:
            collect(*_task(t))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_task, t) for t in tasks]
            for fut in as_completed(futures):
                collect(*fut.result())
    wall = time.perf_counter() - t0
    cpu = sum(r.get("cpu", 0.0) for _, _, r in results)
    for lv in levels:
        rej = [
            f"{n.name} ({r['reason']})" for n, v, r in results if v == lv and r["status"] != "ok"
        ]
        used = sum(1 for n, v, r in results if v == lv and r["status"] == "ok")
        print(f"\n{lv}: {used} networks used, {len(rej)} rejected" + (": " if rej else "")
              + "; ".join(rej))  # fmt: skip
    rows = [rec for _, _, r in results for rec in r["records"]]
    if not rows:
        print("nothing to score")
        return 1
    rc = _score(pd.DataFrame(rows), nets, args.json)
    print(
        f"\nwall time {wall / 60:.1f} min ({args.jobs} jobs); CPU time of the tasks "
        f"{cpu / 60:.1f} min (on a shared machine, CPU / jobs is the unloaded wall time)"
    )
    return rc


def _score(records: pd.DataFrame, nets: list[N.SuiteNetwork], json_path: Path | None) -> int:
    """Choose the dev settings, print the tables, write the records."""
    levels = [lv for lv in N.LEVELS if lv in set(records["level"])]
    records = apply_settings(records, choose_settings(records, levels))
    order = {n.name: i for i, n in enumerate(nets)}
    records = records.sort_values(["level", "truth", "network"], key=lambda c: c.map(order)
                                  if c.name == "network" else c, kind="stable")  # fmt: skip
    print_tables(records)
    if json_path:
        out = records.replace({np.nan: None}).to_dict(orient="records")
        json_path.write_text(json.dumps(out, indent=1))
        print(f"wrote {len(out)} records to {json_path}")
    return 0


def _report(net: N.SuiteNetwork, level: str, res: dict, t0: float) -> None:
    head = f"[{(time.perf_counter() - t0) / 60:5.1f} min] {net.name} ({net.family}, {net.split}, {level})"
    if res["status"] != "ok":
        print(f"{head}: rejected: {res['reason']}", flush=True)
        return
    acc = {r["method"]: r["ko_accuracy"] for r in res["records"]
           if r["truth"] == "clamp" and r["setting"] in (None, 3, 0.0)}  # fmt: skip
    shown = ", ".join(f"{m} {acc[m]:.2f}" for m in KO_METHODS if acc.get(m) is not None)
    print(f"{head}: {'; '.join(res['notes'])}; accuracy {shown}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
