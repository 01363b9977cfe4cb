"""Benchmark: generating the embedded dataset and reading large inputs.

Prints the time to generate ``gcl.datasets.myeloid()`` and the time to read a
50,000-cell × 2,000-gene 10x Matrix Market folder and the same data as ``.h5ad`` with
``gcl.io.read``, each against the reader users would otherwise call (``scanpy.read_10x_mtx``,
``anndata.read_h5ad``) timed in the same run. The ratio is gclandscape / baseline (lower is
faster). The input is generated once into a temporary folder: sparse integer counts at about
10 % density, gzipped as Cell Ranger writes them.

Run: ``python benchmarks/io_datasets.py`` (about 1–2 minutes; ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from _machine import cpu_model


def best_of(func: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Minimum wall time over ``repeat`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def random_counts(n_cells: int, n_genes: int, density: float, seed: int = 0) -> sp.csr_matrix:
    """Cells × genes integer counts (1 + Poisson(2) where nonzero), built in row chunks."""
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, n_cells, 5000):
        rows = min(5000, n_cells - start)
        mask = rng.random((rows, n_genes)) < density
        block = np.zeros((rows, n_genes), dtype=np.int32)
        block[mask] = 1 + rng.poisson(2.0, size=int(mask.sum()))
        chunks.append(sp.csr_matrix(block))
    return sp.vstack(chunks, format="csr")


def write_10x_folder(counts: sp.csr_matrix, folder: Path) -> None:
    """Write a Cell Ranger v3 style folder: matrix.mtx.gz (genes × cells), barcodes, features."""
    folder.mkdir(parents=True, exist_ok=True)
    n_cells, n_genes = counts.shape
    with gzip.open(folder / "matrix.mtx.gz", "wb", compresslevel=1) as f:
        scipy.io.mmwrite(f, counts.T.tocoo(), field="integer")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as f:
        f.writelines(f"CELL{i:06d}-1\n" for i in range(n_cells))
    with gzip.open(folder / "features.tsv.gz", "wt") as f:
        f.writelines(f"ENSG{i:011d}\tGene{i}\tGene Expression\n" for i in range(n_genes))


def _total(x) -> float:
    """Exact sum of a (sparse) matrix, in float64 whatever its dtype."""
    return float(x.sum(dtype=np.float64))


def row(name: str, ours: float | None, base: float | None, base_name: str) -> str:
    fmt = lambda t: "n/a" if t is None else f"{t:8.2f} s"  # noqa: E731
    ratio = f"{ours / base:6.2f}" if ours is not None and base else "   n/a"
    return f"{name:<34} {fmt(ours):>10} {fmt(base):>10}  {ratio}   {base_name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cells", type=int, default=50_000)
    parser.add_argument("--n-genes", type=int, default=2_000)
    parser.add_argument("--density", type=float, default=0.10)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per reader (best of)")
    args = parser.parse_args()

    import anndata as ad
    import scanpy as sc

    import gclandscape as gcl

    print("gclandscape benchmark: io_datasets")
    print(f"date:    {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}"
    )
    print(
        f"python {platform.python_version()}, gclandscape {gcl.__version__}, "
        f"scanpy {version('scanpy')}, anndata {version('anndata')}"
    )
    threads = {
        k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ
    }
    if threads:
        print(f"threads: {threads}")
    print()

    lines = [f"{'task':<34} {'gclandscape':>10} {'baseline':>10}  {'ratio':>6}   baseline is"]
    lines.append("-" * len(lines[0]))

    # 1. the embedded default dataset
    try:
        myeloid = gcl.datasets.myeloid
    except (ImportError, AttributeError) as exc:
        print(f"myeloid: not available ({exc})")
        lines.append(row("generate myeloid() (3000 cells)", None, None, "-"))
    else:
        t_gen, adata = best_of(myeloid, 1)
        lines.append(row(f"generate myeloid() {adata.n_obs}x{adata.n_vars}", t_gen, None, "-"))

    # 2. a large 10x Matrix Market folder and the same data as .h5ad
    with tempfile.TemporaryDirectory(prefix="gcl_bench_") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        counts = random_counts(args.n_cells, args.n_genes, args.density)
        folder = tmp / "filtered_feature_bc_matrix"
        write_10x_folder(counts, folder)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(
            f"input: {args.n_cells} cells x {args.n_genes} genes, {counts.nnz:,} nonzeros "
            f"({counts.nnz / np.prod(counts.shape):.1%}), 10x folder {size:.0f} MB gzipped, "
            f"written in {time.perf_counter() - start:.1f} s"
        )
        total = _total(counts)
        del counts

        t_base, ref = best_of(lambda: sc.read_10x_mtx(folder, cache=False), args.repeat)
        t_ours, got = best_of(lambda: gcl.io.read(folder), args.repeat)
        for name, a in (("scanpy", ref), ("gclandscape", got)):
            if a.shape != (args.n_cells, args.n_genes) or _total(a.X) != total:
                raise SystemExit(f"{name} read the 10x folder wrongly: {a.shape}, {_total(a.X)}")
        lines.append(row("read 10x Matrix Market folder", t_ours, t_base, "scanpy.read_10x_mtx"))

        h5ad = tmp / "data.h5ad"
        ref.write_h5ad(h5ad)
        del ref, got
        print(f"       .h5ad {h5ad.stat().st_size / 1e6:.0f} MB (uncompressed)")
        t_base, ref = best_of(lambda: ad.read_h5ad(h5ad), args.repeat)
        t_ours, got = best_of(lambda: gcl.io.read(h5ad), args.repeat)
        if got.shape != ref.shape or _total(got.X) != _total(ref.X):
            raise SystemExit("gcl.io.read read the .h5ad wrongly")
        lines.append(row("read .h5ad", t_ours, t_base, "anndata.read_h5ad"))
    print()
    print("\n".join(lines))
    print("\nratio = gclandscape / baseline (best of", args.repeat, "runs; < 1 is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
