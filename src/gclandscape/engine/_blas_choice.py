"""Which BLAS multiplies the blocks of the CPU kernel: numpy's or torch's, by measurement.

The blocked kernel (:func:`~gclandscape.engine._step_loops._loop_blocks`) spends most of a step
in one ``(G, G) @ (G, cells)`` product per block, one thread per worker. Which library does
that fastest depends on the CPU: numpy's OpenBLAS beat torch's MKL on the AMD EPYC the
kernel was first tuned on, and MKL is the faster library on Intel CPUs. The choice is made
once per process and gene count by timing both on a block of the kernel's size; a near tie
keeps numpy's, so a machine where both are about as fast always takes the same one (the two
libraries round differently, and a seed should give the same paths run after run).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch

#: Force the block product through ``"numpy"`` or ``"torch"``; ``None`` chooses by measurement.
MATMUL_BACKEND: str | None = None
#: torch's BLAS is chosen only when numpy's took this many times as long (a margin against
#: timing noise: a near tie keeps numpy's).
TORCH_MARGIN = 1.1
#: Values per block the measurement multiplies (the kernel's block size, ``BLOCK_VALUES``).
_PROBE_VALUES = 2**18
#: Timed repetitions per library (the best counts).
_REPEATS = 5


def pick_backend(numpy_seconds: float, torch_seconds: float) -> str:
    """``"torch"`` when numpy's product took more than ``TORCH_MARGIN`` times torch's.

    Examples
    --------
    >>> pick_backend(2.0, 1.0), pick_backend(1.05, 1.0), pick_backend(1.0, 2.0)
    ('torch', 'numpy', 'numpy')
    """
    return "torch" if numpy_seconds > TORCH_MARGIN * torch_seconds else "numpy"


def matmul_backend(n_genes: int, dtype: torch.dtype) -> str:
    """The BLAS for the kernel's block products of ``n_genes`` genes (see the module docstring).

    Call it with one BLAS thread and torch single-threaded, as the kernel's workers run.

    Examples
    --------
    >>> matmul_backend(50, torch.float32) in ("numpy", "torch")
    True
    """
    if MATMUL_BACKEND is not None:
        return MATMUL_BACKEND
    return _measured_backend(int(n_genes), dtype)


@functools.cache
def _measured_backend(n_genes: int, dtype: torch.dtype) -> str:
    cells = max(1, _PROBE_VALUES // n_genes)
    gen = torch.Generator().manual_seed(0)
    w = torch.rand((n_genes, n_genes), generator=gen, dtype=dtype)
    x = torch.rand((n_genes, cells), generator=gen, dtype=dtype)
    out = torch.empty((n_genes, cells), dtype=dtype)
    w_np, x_np, out_np = w.numpy(), x.numpy(), out.numpy()
    runs = {
        "numpy": lambda: np.matmul(w_np, x_np, out=out_np),
        "torch": lambda: torch.mm(w, x, out=out),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(2):  # interleaved, so both see the same load
        for name, run in runs.items():
            run()  # warm-up (first call loads kernels, touches the buffers)
            for _ in range(_REPEATS):
                t0 = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - t0)
    return pick_backend(best["numpy"], best["torch"])
