"""Benchmark: issue 19 §4 "Scale" — the four size goals, each measured once, as ratios to goals.

Parts (``--parts``, default all four), data from our own simulator:

- ``fit``: ``gcl.landscape.fit_grn`` on 200 genes × 5,000 cells, with its defaults (five
  bootstrap refits, the readout of the other genes) and the genes given explicitly, in both
  modes. **Drift mode**: ``gcl.datasets.simulate(random_network(200), n_cells=5000,
  n_targets=1800, knockouts=False)`` after ``gcl.pp.recipe``, ``time_key="sim_time"``.
  **Steady-state mode**: the 5,000 control cells of the synthetic Perturb-seq screen of
  ``perturbseq.py`` (200 regulators, 1,800 downstream targets; ``_perturbseq_data``), a
  population at a steady state as the mode assumes. Goal ≤ 30 s each. The table also gives the
  parts ``fit_grn`` records in ``.uns["gcl_genome"]["params"]``.
- ``log2fc``: the whole-transcriptome log2 fold change of one knockout over 2,000 genes:
  ``gcl.sim.perturb(adata, Knockout(g)).log2fc`` on the steady-state fit above (200 genome
  genes, the other 1,800 from the genome's readout), for three expressed regulators in turn;
  with ``perturb``'s defaults (``n_null=20`` random knockouts for the score's p-value) and with
  ``n_null=0`` (the log2FC does not use the null). Goal ≤ 2 s.
- ``run``: ``gclandscape run FILE --out DIR`` in a child process on
  ``gcl.datasets.myeloid(n_cells=50000, n_targets=1989)`` (2,000 genes, sparse counts written
  to ``.h5ad``). Wall time, and peak memory as ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``
  (the largest resident set of any waited-for child, i.e. the CLI process). While it runs, its
  ``VmRSS`` is sampled every 0.2 s and attributed to the step its log names, so the table says
  which step holds the peak; the steps' times come from its ``summary.json``. Goals ≤ 600 s and
  ≤ 8 GiB.
- ``dask``: ``gcl.sim.screen(adata, perts, backend="dask", client=...)`` of 1,000 perturbations
  (every knockout of 1 to 5 of the 11 myeloid regulators, the first 1,000; 200 cells each,
  ``n_null=2``) on a genome fitted to ``myeloid(n_cells=1000, n_targets=30)``, with a
  ``LocalCluster`` of 1 and then 2 worker processes of one thread each (``OMP_NUM_THREADS=1``
  in the workers). The cluster's start-up is not timed; the screen's own serial part (the
  wild-type simulation and the nulls, in this process) is, and is also timed alone (a local
  screen of one perturbation of each size: an upper estimate) so the table shows the Amdahl bound. Goal speed-up ≥ 1.7.

Every figure is printed with the 1-minute load average (``os.getloadavg``) when it was taken:
the machine this was written on has 2 cores shared with other jobs, and a loaded machine
slows every part and caps the Dask speed-up (two workers need two free cores). ``--quick``
runs every part at a small size (the ratios then do not test the goals). Threads: torch and
OpenMP get ``--threads`` (default 2, the goals' "2 cores").

Run: ``python benchmarks/scale.py`` (about 25 min at load 2–5 on 2 cores; ``--quick``: ~5 min).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _machine import cpu_model

GOALS = {  # issue 19 §4
    "fit_s": 30.0,
    "log2fc_s": 2.0,
    "run_s": 600.0,
    "run_gib": 8.0,
    "dask_speedup": 1.7,
}
FULL = {"fit_genes": 200, "fit_cells": 5000, "fit_targets": 1800, "run_cells": 50_000,
        "run_genes": 2000, "n_perts": 1000, "screen_cells": 200}  # fmt: skip
QUICK = {"fit_genes": 40, "fit_cells": 1000, "fit_targets": 260, "run_cells": 3000,
         "run_genes": 300, "n_perts": 60, "screen_cells": 100}  # fmt: skip
MYELOID_REGULATORS = 11


def load() -> float:
    """The 1-minute load average, printed with every figure."""
    return os.getloadavg()[0]


def ratio_row(
    part: str, measured: float, goal: float, unit: str, at_load: float, higher_is_better=False
):
    """One row of the goal table: measured / goal, whether the goal is met, and the load
    average when the figure was taken."""
    met = measured >= goal if higher_is_better else measured <= goal
    sign = "≥" if higher_is_better else "≤"
    return {"part": part, "measured": f"{measured:.2f} {unit}", "goal": f"{sign} {goal:g} {unit}",
            "measured / goal": round(measured / goal, 2), "met": "yes" if met else "NO",
            "load": round(at_load, 1)}  # fmt: skip


# ---------------------------------------------------------------- data
def drift_data(cfg: dict, seed: int = 0):
    """A random 200-gene Boolean network simulated with its downstream targets (drift mode)."""
    import gclandscape as gcl

    net = gcl.datasets.random_network(cfg["fit_genes"], seed=seed)
    adata = gcl.datasets.simulate(
        net, n_cells=cfg["fit_cells"], n_targets=cfg["fit_targets"], knockouts=False, seed=seed
    )
    genes = list(adata.uns["gcl_truth"]["regulators"])
    return adata, genes


def steady_data(cfg: dict, seed: int = 0):
    """The control cells of the synthetic Perturb-seq screen (steady-state mode) and the
    expressed regulators the screen would knock out."""
    import _perturbseq_data as D

    screen = D.simulate_screen(
        cfg["fit_genes"], n_targets=cfg["fit_targets"], n_control=cfg["fit_cells"],
        n_per_ko=10, k_per_class=1, seed=seed,
    )  # fmt: skip
    return screen.controls(), list(screen.regulators), list(screen.knockouts)


# ---------------------------------------------------------------- parts
def time_fit(adata, genes: list[str], mode: str) -> dict:
    """``fit_grn`` with its defaults on ``genes``; drift mode from ``sim_time``."""
    import warnings

    import gclandscape as gcl

    gcl.pp.recipe(adata)
    kwargs = {"time_key": "sim_time"} if mode == "drift" else {}
    start, cpu, before = time.perf_counter(), time.process_time(), load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        genome = gcl.landscape.fit_grn(adata, genes=genes, seed=0, **kwargs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    params = adata.uns["gcl_genome"]["params"]
    if params["mode"] != mode:
        raise RuntimeError(f"fit_grn ran in {params['mode']} mode, expected {mode}")
    return {
        "mode": mode, "cells": adata.n_obs, "genome genes": genome.n_genes,
        "all genes": adata.n_vars, "seconds": round(seconds, 1), "cpu s": round(cpu, 1),
        "member 0 fit s": round(float(params.get("seconds", float("nan"))), 1),
        "readout s": round(float(params.get("seconds_readout", float("nan"))), 1),
        "load before": round(before, 1), "load after": round(load(), 1),
    }  # fmt: skip


def time_log2fc(adata, knockouts: list[str]) -> list[dict]:
    """``perturb(...).log2fc``: the first knockout with ``n_null=20`` (the default), then each
    knockout with ``n_null=0``."""
    import gclandscape as gcl

    rows = []
    # the default null costs 20 more simulations: timed once, then n_null=0 for each knockout
    for n_null, genes in ((20, knockouts[:1]), (0, knockouts)):
        for gene in genes:
            start, cpu = time.perf_counter(), time.process_time()
            res = gcl.sim.perturb(adata, gcl.sim.Knockout(gene), n_null=n_null, decode=False)
            fc = res.log2fc
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows.append({"knockout": gene, "n_null": n_null, "genes": int(fc.notna().sum()),
                         "seconds": round(seconds, 2), "cpu s": round(cpu, 2),
                         "load": round(load(), 1)})  # fmt: skip
    return rows


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# pynndescent 0.7 returns its kNN graph as a ``csr_array``; scanpy 1.11 (which uses
# pynndescent from 8,192 cells on) expects a ``csr_matrix``: ``sc.pp.neighbors`` fails on
# ``csr_array.getnnz`` (gone in scipy 1.17) and, with ``method="gauss"`` (gcl.tl.pseudotime),
# on ``assert isinstance(distances, np.ndarray)``. So ``gclandscape run`` fails on larger data.
# ``--scipy-shim`` converts the transformer's output to a ``csr_matrix`` (same entries) in
# the CLI's process only, so that time and memory can be measured while a fix is pending.
SHIM = (
    "import sys, scipy.sparse as sp, pynndescent\n"
    "T = pynndescent.PyNNDescentTransformer\n"
    "_fit_transform, _transform = T.fit_transform, T.transform\n"
    "T.fit_transform = lambda self, X, y=None, **kw: sp.csr_matrix(_fit_transform(self, X, y, **kw))\n"
    "T.transform = lambda self, X: sp.csr_matrix(_transform(self, X))\n"
    "from gclandscape.cli import main\n"
    "sys.exit(main())\n"
)


def run_cli(path: Path, out: Path, threads: int, shim: bool = False) -> dict:
    """``gclandscape run`` in a child: wall time, peak RSS, and the peak RSS of each step."""
    exe = [str(Path(sys.executable).with_name("gclandscape"))]
    if shim:
        exe = [sys.executable, "-c", SHIM]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    step = {"name": "start"}
    per_step: dict[str, int] = {}
    log_tail: list[str] = []
    done_lines: list[str] = []  # every step's "done in" line, kept for a failed run's report

    def follow(stream) -> None:
        for line in stream:
            log_tail.append(line)
            del log_tail[:-40]
            if " done in " in line:
                done_lines.append(line)
            if "] " in line and ":" in line and line.startswith("gclandscape: ["):
                name = line.split("] ", 1)[1].split(":", 1)[0].split(" done", 1)[0]
                step["name"] = name

    start, before = time.perf_counter(), load()
    proc = subprocess.Popen(
        [*exe, "run", str(path), "--out", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reader = threading.Thread(target=follow, args=(proc.stderr,), daemon=True)
    reader.start()
    loads = [before]
    while proc.poll() is None:
        rss = _rss_kib(proc.pid)
        per_step[step["name"]] = max(per_step.get(step["name"], 0), rss)
        loads.append(load())
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    proc.stdout.read()
    reader.join(timeout=5)
    if proc.returncode != 0:
        peaks = ", ".join(f"{k} {v / 2**20:.2f} GiB" for k, v in per_step.items())
        raise RuntimeError(
            f"gclandscape run failed after {seconds:.0f} s (load {min(loads):.1f}-"
            f"{max(loads):.1f}); steps finished:\n{''.join(done_lines)}sampled peak RSS per "
            f"step: {peaks}\n--- last lines:\n{''.join(log_tail)}"
        )
    # Linux reports ru_maxrss in KiB: the largest single child waited for so far (the CLI)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads((out / "summary.json").read_text())
    steps = {s["name"]: s for s in summary["steps"]}
    rows = [
        {"step": name, "seconds": steps.get(name, {}).get("seconds", float("nan")),
         "cpu s": steps.get(name, {}).get("cpu_seconds", float("nan")),
         "peak RSS GiB (sampled)": round(kib / 2**20, 2)}
        for name, kib in per_step.items()
    ]  # fmt: skip
    return {
        "seconds": seconds,
        "peak_gib": peak_kib / 2**20,
        "steps": rows,
        "load": (min(loads), max(loads)),
    }


def screen_perturbations(genes: list[str], n: int) -> list:
    """Knockouts of 1, 2, ... genes at a time (all combinations), the first ``n``."""
    import itertools

    import gclandscape as gcl

    out = []
    for k in range(1, len(genes) + 1):
        for combo in itertools.combinations(genes, k):
            out.append(gcl.sim.Knockout(list(combo)))
            if len(out) == n:
                return out
    raise ValueError(f"only {len(out)} knockout combinations of {len(genes)} genes")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def time_dask(cfg: dict) -> dict:
    """The same screen on a LocalCluster of 1 and of 2 single-threaded worker processes."""
    import warnings

    from distributed import Client, LocalCluster

    import gclandscape as gcl

    adata = gcl.datasets.myeloid(n_cells=1000, n_targets=30)
    gcl.pp.recipe(adata, n_top_genes=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        genome = gcl.landscape.fit_grn(adata, time_key="sim_time", n_bootstrap=0)
        gcl.landscape.fit_landscape(adata, groupby="celltype")
    perts = screen_perturbations(list(genome.genes), cfg["n_perts"])
    kwargs = {"n_cells": cfg["screen_cells"], "n_null": 2, "progress": False}
    # the serial part of a screen (this process, before any task is sent): the set-up, the
    # wild type and one null per perturbation size. Measured from above by a local screen of
    # one perturbation of each size (it adds those few perturbations' own time)
    firsts = list({len(p.genes): p for p in reversed(perts)}.values())
    n_sizes = len(firsts)
    start = time.perf_counter()
    gcl.sim.screen(adata, firsts, **kwargs)
    one = time.perf_counter() - start
    out = {"perturbations": len(perts), "sizes": n_sizes, "serial_one_s": one}
    tables = {}
    for n_workers in (1, 2):
        os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the worker processes
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        try:
            # the threads torch uses inside each worker (1 expected: one core per worker)
            out[f"{n_workers}_worker_threads"] = sorted(client.run(_torch_threads).values())
            before = load()
            start = time.perf_counter()
            tables[n_workers] = gcl.sim.screen(
                adata, perts, backend="dask", client=client, **kwargs
            )
            out[f"{n_workers}_s"] = time.perf_counter() - start
            out[f"{n_workers}_load"] = (before, load())
        finally:
            client.close()
            cluster.close()
    # both runs must compute the same table (a screen is deterministic with a seed)
    out["same_table"] = bool(tables[1].equals(tables[2]))
    out["speedup"] = out["1_s"] / out["2_s"]
    return out


# ---------------------------------------------------------------- main
def _print_table(rows: list[dict]) -> None:
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (goals not tested)")
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads")
    parser.add_argument(
        "--parts", default="fit,log2fc,run,dask", help="comma-separated: fit,log2fc,run,dask"
    )
    parser.add_argument(
        "--scipy-shim",
        action="store_true",
        help="give scanpy pynndescent's kNN graph as a csr_matrix in the CLI's process (scanpy "
        "1.11 + pynndescent 0.7 fail in sc.pp.neighbors from 8,192 cells on; see SHIM)",
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    unknown = parts - {"fit", "log2fc", "run", "dask"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    # before torch/numpy start their thread pools; OpenMP's wait policy is the runtime's
    # default, as in the CLI (an OMP_WAIT_POLICY in the environment is kept)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else FULL
    print(f"# gclandscape scale benchmark (issue 19 §4), {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"# {cpu_model()}, {os.cpu_count()} CPUs, threads {args.threads}, load {load():.1f}")
    print(f"# sizes: {cfg}{'  (--quick: the goals are for the full sizes)' if args.quick else ''}")
    goals: list[dict] = []

    if "fit" in parts or "log2fc" in parts:
        t0 = time.perf_counter()
        steady, regulators, knockouts = steady_data(cfg)
        print(f"\n# steady-state data {steady.shape} in {time.perf_counter() - t0:.0f} s")
        rows = []
        if "fit" in parts:
            t0 = time.perf_counter()
            drift, drift_genes = drift_data(cfg)
            print(f"# drift data {drift.shape} in {time.perf_counter() - t0:.0f} s")
            rows.append(time_fit(drift, drift_genes, "drift"))
            del drift
        rows.append(time_fit(steady, regulators, "steady_state"))
        if "fit" in parts:
            print("\n## fit_grn (defaults: n_bootstrap=5, readout=True)")
            _print_table(rows)
            for r in rows:
                goals.append(
                    ratio_row(
                        f"fit_grn {r['mode']}", r["seconds"], GOALS["fit_s"], "s", r["load after"]
                    )
                )
        if "log2fc" in parts:
            lrows = time_log2fc(steady, knockouts[:3])
            print(f"\n## perturb(Knockout).log2fc over {steady.n_vars} genes (1000 cells)")
            _print_table(lrows)
            for n_null in (20, 0):
                sel = sorted((r["seconds"], r["load"]) for r in lrows if r["n_null"] == n_null)
                median, at = sel[len(sel) // 2]
                goals.append(
                    ratio_row(
                        f"log2fc, n_null={n_null} (median)", median, GOALS["log2fc_s"], "s", at
                    )
                )
        del steady

    if "run" in parts:
        import gclandscape as gcl

        t0 = time.perf_counter()
        adata = gcl.datasets.myeloid(
            n_cells=cfg["run_cells"], n_targets=cfg["run_genes"] - MYELOID_REGULATORS
        )
        print(f"\n# myeloid {adata.shape} simulated in {time.perf_counter() - t0:.0f} s; "
              f"X is {type(adata.X).__name__}")  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scale.h5ad"
            adata.write_h5ad(path)
            del adata
            res = run_cli(path, Path(tmp) / "out", args.threads, shim=args.scipy_shim)
        shim = " (with --scipy-shim)" if args.scipy_shim else ""
        print(f"\n## gclandscape run{shim}: {res['seconds']:.0f} s, peak RSS {res['peak_gib']:.2f} GiB "
              f"(load {res['load'][0]:.1f}-{res['load'][1]:.1f})")  # fmt: skip
        _print_table(res["steps"])
        top = res["load"][1]
        goals.append(ratio_row("gclandscape run time", res["seconds"], GOALS["run_s"], "s", top))
        goals.append(
            ratio_row("gclandscape run peak", res["peak_gib"], GOALS["run_gib"], "GiB", top)
        )

    if "dask" in parts:
        res = time_dask(cfg)
        bound = res["1_s"] / (res["serial_one_s"] + (res["1_s"] - res["serial_one_s"]) / 2)
        print(
            f"\n## screen of {res['perturbations']} knockout combinations ({res['sizes']} sizes), "
            f"{cfg['screen_cells']} cells, n_null=2, dask LocalCluster"
        )
        for k in (1, 2):
            print(f"{k} worker(s): {res[f'{k}_s']:.1f} s (load {res[f'{k}_load'][0]:.1f} -> "
                  f"{res[f'{k}_load'][1]:.1f}; torch threads per worker "
                  f"{res[f'{k}_worker_threads']})")  # fmt: skip
        print(
            f"serial part (at most; local screen of one perturbation per size): "
            f"{res['serial_one_s']:.1f} s; "
            f"Amdahl bound on 2 workers {bound:.2f}x; same table: {res['same_table']}"
        )
        goals.append(
            ratio_row(
                "dask 2 vs 1 workers",
                res["speedup"],
                GOALS["dask_speedup"],
                "x",
                res["2_load"][1],
                True,
            )
        )

    print("\n## goals (measured / goal: ≤ 1 is met for times and memory, ≥ 1 for the speed-up)")
    _print_table(goals)


if __name__ == "__main__":
    main()
