"""Benchmark: ``gcl.latent.fit`` against plain ``scvi.model.SCVI`` on the same data and epochs.

For each dataset — (a) the embedded default ``gcl.datasets.myeloid()`` and (b) a synthetic
20,000-cell × 2,000-gene negative binomial count matrix — the script times

- ``gcl``:  ``gcl.latent.fit(adata, max_epochs=E)`` (input checks, set-up on a lightweight
  copy, training, latent means, the decoded ``gcl_denoised`` layer, the ``.uns`` record);
- ``scvi``: what a user would write with scvi-tools alone: ``SCVI.setup_anndata``,
  ``SCVI(adata).train(max_epochs=E, train_size=0.9, early_stopping=True)`` and
  ``get_latent_representation()``,

with the same number of epochs ``E`` (10 by default), seed, ``n_latent=10`` and accelerator.
Early stopping cannot trigger in 10 epochs (scvi-tools' patience is 45), so both train for
exactly ``E`` epochs. It prints seconds per epoch (total wall time / epochs, so it includes
each method's set-up and output), total seconds, peak memory, and the ratio gcl / scvi (the
overhead gclandscape adds; 1.00 = none).

**Peak memory** is the peak resident set size, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``,
of a fresh child process that runs one fit (so runs do not share a high-water mark). The
"peak Δ" column is that peak minus the process's peak RSS just before the fit (after the
imports and after reading the data), i.e. the memory the fit itself added. On a GPU it is host
memory only. ``tracemalloc`` is not used: it does not see torch's allocations.

Run: ``python benchmarks/latent.py`` (about 2–4 minutes on CPU; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from _machine import cpu_model


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def synthetic_counts(n_cells: int, n_genes: int, seed: int = 0):
    """Sparse negative binomial counts from a 10-D latent structure (float32 CSR AnnData)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.5, (10, n_genes)).astype(np.float32)
    base = rng.normal(-1.5, 1.0, n_genes).astype(np.float32)
    blocks = []
    for start in range(0, n_cells, 5000):
        rows = min(5000, n_cells - start)
        z = rng.normal(size=(rows, 10)).astype(np.float32)
        lib = rng.lognormal(0, 0.3, (rows, 1)).astype(np.float32)
        mu = lib * np.exp(base + z @ weights)
        r = 3.0
        blocks.append(sp.csr_matrix(rng.negative_binomial(r, r / (r + mu)).astype(np.float32)))
    counts = sp.vstack(blocks, format="csr")
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    return ad.AnnData(counts, obs=obs, var=var, layers={"counts": counts.copy()})


# ---------------------------------------------------------------- one measurement (child)
def _child(method: str, path: str, epochs: int, accelerator: str, threads: int | None) -> None:
    import anndata as ad
    import torch

    if threads:
        torch.set_num_threads(threads)
    import scvi

    scvi.settings.dl_num_workers = 0
    import gclandscape as gcl

    adata = ad.read_h5ad(path)
    before = _maxrss_mib()
    quiet = {"enable_progress_bar": False}
    start = time.perf_counter()
    if method == "gcl":
        gcl.latent.fit(
            adata, max_epochs=epochs, seed=0, accelerator=accelerator, train_kwargs=quiet
        )
        trained = int(adata.uns["gcl_latent"]["epochs_trained"])
        device = adata.uns["gcl_latent"]["device"]
    else:
        scvi.settings.seed = 0
        scvi.model.SCVI.setup_anndata(adata, layer="counts")
        model = scvi.model.SCVI(adata, n_latent=10)
        model.train(
            max_epochs=epochs,
            accelerator=accelerator,
            train_size=0.9,
            early_stopping=True,
            check_val_every_n_epoch=1,
            **quiet,
        )
        adata.obsm["X_scvi"] = model.get_latent_representation()
        trained = len(model.history["elbo_train"])
        device = str(model.device)
    total = time.perf_counter() - start
    peak = _maxrss_mib()
    print(
        "RESULT "
        + json.dumps(
            {
                "seconds": total,
                "epochs": trained,
                "peak_mib": peak,
                "peak_delta_mib": peak - before,
                "device": device,
                "threads": torch.get_num_threads(),
            }
        )
    )


def measure(method: str, path: Path, epochs: int, accelerator: str, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", method, str(path), "--epochs", str(epochs)]
    cmd += ["--accelerator", accelerator]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{method} on {path.name} failed:\n{out.stderr[-3000:]}")


# ---------------------------------------------------------------- drift accuracy (issue 3 §4)
def _pergene_r(a, b):
    import numpy as np

    a = np.asarray(a, dtype=float) - np.mean(a, axis=0)
    b = np.asarray(b, dtype=float) - np.mean(b, axis=0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def drift_accuracy_table(args: argparse.Namespace) -> None:
    """Drift accuracy (issue 3 §4): per-gene Pearson r between ``gcl.tl.drift`` and the true
    dx/dt of the simulation, on the myeloid default (6 seeds), from the simulation clock
    (``sim_time``) and from ``gcl.tl.pseudotime`` rooted in the progenitors. Columns: the
    default (path velocity + restoring term), the path velocity alone (``restoring=0``), and
    the plain forward mean of Δx/Δt over later neighbours (the estimator the issue measured at
    r ≈ 0.05) on the same graph and coordinates, and the restoring term with each cell's
    deviation from its neighbours (``S^2 x - S^8 x``, ``estimate_drift`` without the
    cross-gene deviation ``gcl.tl.drift`` computes from the counts of all genes). The
    restoring term's settings were chosen on seeds 0–2; seeds 3–5 are held out.
    """
    import numpy as np
    import scipy.sparse as sp

    import gclandscape as gcl
    from gclandscape.tl._drift import estimate_drift, expression_states
    from gclandscape.tl._drift_inputs import neighbour_graph

    def neighbour_deviation(adata, regs, t, time_smoothing):
        graph, _ = neighbour_graph(adata, None, 30)
        x, _ = expression_states(adata, regs)
        t = (t - t.min()) / (t.max() - t.min())
        return estimate_drift(
            x / np.percentile(x, 99, axis=0), t, graph, time_smoothing=time_smoothing
        )

    def forward_mean(adata, regs, t):
        graph, _ = neighbour_graph(adata, None, 30)
        x, _ = expression_states(adata, regs)
        x = x / np.percentile(x, 99, axis=0)
        coo = sp.coo_matrix(graph)
        later = t[coo.col] > t[coo.row]
        rows, cols = coo.row[later], coo.col[later]
        dt = t[cols] - t[rows]
        v = np.zeros_like(x)
        np.add.at(v, rows, (x[cols] - x[rows]) / dt[:, None])
        n = np.bincount(rows, minlength=len(t))[:, None]
        return v / np.maximum(n, 1)

    print(
        "\ndrift accuracy on gcl.datasets.myeloid() (3000 cells; per-gene Pearson r, 11 regulators)"
    )
    print(
        f"{'seed':>9} {'time':>10} {'gcl.tl.drift median':>20} {'min':>6} "
        f"{'path only median':>17} {'min':>6} {'forward-mean baseline':>22} "
        f"{'neighbour deviation':>20}"
    )
    medians: dict = {}
    for seed in range(6):
        held_out = seed >= 3
        adata = gcl.datasets.myeloid(seed=seed)
        gcl.pp.recipe(adata, n_top_genes=500)
        truth = adata.uns["gcl_truth"]
        regs = list(truth["regulators"])
        true_v = np.asarray(truth["velocity"])
        gcl.tl.pseudotime(adata, root="progenitor", groupby="celltype", use_rep="X_pca")
        for key, label in (("sim_time", "sim_time"), ("gcl_pseudotime", "pseudotime")):
            gcl.tl.drift(adata, time_key=key)
            r = _pergene_r(adata[:, regs].layers["gcl_drift"].toarray(), true_v)
            rp = _pergene_r(adata[:, regs].layers["gcl_drift_path"].toarray(), true_v)
            t = adata.obs[key].to_numpy(float)
            base = _pergene_r(forward_mean(adata, regs, t), true_v)
            smoothing = adata.uns["gcl_drift"]["params"]["time_smoothing"]
            rn = _pergene_r(neighbour_deviation(adata, regs, t, smoothing), true_v)
            for group in ("all", "held out" if held_out else "chosen on"):
                medians.setdefault((label, group), []).append(
                    (float(np.median(r)), float(np.median(rp)), float(np.median(rn)))
                )
            name = f"{seed}{' (h)' if held_out else ''}"
            print(
                f"{name:>9} {label:>10} {np.median(r):>20.3f} {r.min():>6.2f} "
                f"{np.median(rp):>17.3f} {rp.min():>6.2f} {np.nanmedian(base):>22.3f} "
                f"{np.median(rn):>20.3f}"
            )
    print("(h) = held out: the restoring term's settings were chosen on seeds 0-2")
    for (label, group), values in medians.items():
        default, path, neighbours = np.mean(values, axis=0)
        print(
            f"mean over seeds ({group}), {label}: median r = {default:.3f} (default), "
            f"{path:.3f} (path only), {neighbours:.3f} (neighbour deviation) (goal: >= 0.5)"
        )


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--accelerator", default="auto", help="auto (GPU if present) or cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--drift-only", action="store_true", help="only the drift table")
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.epochs, args.accelerator, args.threads)
        return
    if args.drift_only:
        drift_accuracy_table(args)
        return

    import torch

    print(f"# gclandscape latent benchmark, {datetime.date.today()}")
    print(
        f"# {cpu_model()}, torch {version('torch')} (threads {args.threads or torch.get_num_threads()}), "
        f"scvi-tools {version('scvi-tools')}, gpu: "
        f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}, "
        f"accelerator={args.accelerator}, epochs={args.epochs}, n_latent=10"
    )
    datasets: list[tuple[str, object]] = []
    try:
        import gclandscape as gcl

        datasets.append(("myeloid()", gcl.datasets.myeloid()))
    except (ImportError, AttributeError) as err:
        print(f"# skipping gcl.datasets.myeloid(): not importable yet ({err})")
    datasets.append(
        (f"synthetic {args.cells}x{args.genes}", synthetic_counts(args.cells, args.genes))
    )

    header = (
        f"{'dataset':<24} {'cells x genes':>14} {'method':>6} {'epochs':>6} {'s/epoch':>8} "
        f"{'total s':>8} {'peak MiB':>9} {'peak Δ MiB':>11}"
    )
    print("\n" + header)
    print("-" * len(header))
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, adata in datasets:
            path = Path(tmp) / "data.h5ad"
            adata.write_h5ad(path)
            shape = f"{adata.n_obs}x{adata.n_vars}"
            res = {}
            for method in ("scvi", "gcl"):
                r = measure(method, path, args.epochs, args.accelerator, args.threads)
                res[method] = r
                print(
                    f"{name:<24} {shape:>14} {method:>6} {r['epochs']:>6} "
                    f"{r['seconds'] / r['epochs']:>8.3f} {r['seconds']:>8.2f} "
                    f"{r['peak_mib']:>9.0f} {r['peak_delta_mib']:>11.0f}"
                )
            ratio = res["gcl"]["seconds"] / res["scvi"]["seconds"]
            base = res["scvi"]["peak_delta_mib"]
            mem = res["gcl"]["peak_delta_mib"] / base if base >= 1.0 else float("nan")
            ratios.append((name, ratio, mem, res["gcl"]["device"]))
    print("\noverhead gcl.latent.fit / plain scvi.model.SCVI (same epochs, same run):")
    for name, ratio, mem, device in ratios:
        mem_txt = f"{mem:.2f}x" if mem == mem else "n/a (no increase for either)"
        print(f"  {name:<24} time {ratio:.2f}x   peak Δ memory {mem_txt}   (device {device})")

    drift_accuracy_table(args)


if __name__ == "__main__":
    main()
