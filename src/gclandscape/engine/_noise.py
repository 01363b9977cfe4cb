"""The noise of batched Euler–Maruyama: one seeded stream per block of cells, drawn ahead.

On the CPU the cells are split into equal blocks (:func:`_cell_blocks`); each block draws its
standard normals from its own generator (:func:`_generators`), so the result does not depend
on how many threads step the blocks, and :class:`_Normals` draws the next steps' noise in a
background thread while the current step runs.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
import torch

#: Batches of at least this many values draw their noise in a background thread.
PREFETCH_MIN = 2**18

#: On the CPU the cells are split into ``ceil(n_cells * n_genes / BLOCK_VALUES)`` blocks of
#: equal size; each block draws its noise from its own generator, and a sigmoid field steps
#: the blocks in parallel. A batch of at most this many values is one block.
BLOCK_VALUES = 2**18


def _cell_blocks(n_cells: int, n_genes: int, device: torch.device) -> list[tuple[int, int]]:
    """``(start, stop)`` cell ranges of the noise blocks (one block off the CPU)."""
    n_blocks = 1 if device.type != "cpu" else min(n_cells, -(-(n_cells * n_genes) // BLOCK_VALUES))
    size = -(-n_cells // n_blocks)  # equal blocks (the last one may be shorter)
    return [(s, min(n_cells, s + size)) for s in range(0, n_cells, size)]


#: Bits of the index into :func:`_normal_table` (a ``2**TABLE_BITS``-entry quantile table).
TABLE_BITS = 16


@functools.cache
def _normal_table(dtype: np.dtype) -> np.ndarray:
    """The ``2**16`` midpoint quantiles ``Φ⁻¹((k + ½) / 2¹⁶)`` of the standard normal,
    rescaled to unit variance: a uniform 16-bit index into it is a draw of a discrete
    distribution with mean 0 and variance 1 whose quantiles match the normal's to 2¹⁶ levels
    (tails cut at 4.3 σ, a mass of 1.5e-5; kurtosis 2.9998)."""
    from scipy.special import ndtri

    q = ndtri((np.arange(2**TABLE_BITS, dtype=np.float64) + 0.5) / 2**TABLE_BITS)
    q /= np.sqrt(np.mean(q**2))
    return q.astype(dtype)


class _TableNormal:
    """Standard normal draws for one block of a multi-block CPU batch: uniform 16-bit indices
    from numpy's SFC64 generator looked up in :func:`_normal_table`.

    Drawn this way because torch's ``normal_`` cost about a third of a kernel step at G = 300
    (``benchmarks/README.md``, "Simulation speed"). Euler–Maruyama converges in distribution with
    any increments of mean 0 and variance 1 and bounded moments (Kloeden & Platen, §14.5);
    these match the normal's quantiles to 2¹⁶ levels.
    """

    def __init__(self, seed_seq: np.random.SeedSequence) -> None:
        self.bits = np.random.SFC64(seed_seq)

    def indices(self, n: int) -> np.ndarray:
        """The next ``n`` uint16 indices into :func:`_normal_table`: the 16-bit quarters of
        ``ceil(n / 4)`` SFC64 words, low quarter first (the rest of the last word unused)."""
        if self.bits is None:
            raise RuntimeError("this noise stream was handed to the fused kernel (state_words)")
        words = self.bits.random_raw(-(-n // 4))  # four 16-bit indices per word
        return words.view(np.uint16)[:n]  # little-endian: low quarter first

    def state_words(self) -> np.ndarray:
        """The SFC64 state ``[a, b, c, counter]`` (numpy's layout) as a uint64 array, for the
        fused sigmoid step, which advances it in place and draws the indices that
        :meth:`indices` would (``engine._step_loops._update_noisy``). The stream is handed
        over: this object draws no more (its draws would repeat the kernel's)."""
        words = np.array(self.bits.state["state"]["state"], dtype=np.uint64)
        self.bits = None
        return words

    def fill_(self, buf: torch.Tensor) -> torch.Tensor:
        """Fill the contiguous CPU tensor ``buf`` with draws; returns it."""
        out = buf.numpy().reshape(-1)
        np.take(_normal_table(out.dtype), self.indices(out.size), out=out, mode="wrap")
        return buf


class _TorchNormal:
    """Standard normal draws from a torch generator (``normal_``)."""

    def __init__(self, gen: torch.Generator) -> None:
        self.gen = gen

    def fill_(self, buf: torch.Tensor) -> torch.Tensor:
        """Fill ``buf`` with draws; returns it."""
        return buf.normal_(generator=self.gen)


def _generators(seed: int, n_blocks: int, device: torch.device) -> list[Any]:
    """One noise stream per block (an object whose ``fill_(buf)`` fills a tensor with standard
    normal draws). A single block (every batch off the CPU, and CPU batches of at most
    ``BLOCK_VALUES``) draws the stream of ``torch.Generator().manual_seed(seed)``; block ``k``
    of a multi-block CPU batch draws from :class:`_TableNormal` seeded with
    :class:`numpy.random.SeedSequence` ``([seed, k])``."""
    if n_blocks == 1:
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed))
        return [_TorchNormal(gen)]
    return [_TableNormal(np.random.SeedSequence([int(seed) % 2**64, k])) for k in range(n_blocks)]


def _cells(v: Any, start: int, stop: int, n_cells: int) -> Any:
    """The rows ``start:stop`` of a per-cell ``(n_cells, n_genes)`` value; anything that
    broadcasts (scalar, per-gene vector, one row) unchanged."""
    if torch.is_tensor(v) and v.ndim == 2 and v.shape[0] == n_cells and n_cells > 1:
        return v[start:stop]
    return v


class _Normals:
    """Standard normal draws for the gene-major state, one set per step: a list with one
    contiguous ``(n_genes, block_cells)`` buffer per cell block, block ``k`` filled by the
    noise stream ``gens[k]`` (:func:`_generators`), step after step.

    For large batches on the CPU a background thread fills the next set while the current
    step computes (torch releases the GIL inside its kernels): the values are unchanged, but
    drawing noise (serial Mersenne-Twister streams) overlaps the field evaluation instead of
    adding to it. ``next()`` returns a set, ``release()`` gives it back.
    """

    def __init__(
        self,
        like: torch.Tensor,
        gens: list[Any],
        blocks: list[tuple[int, int]],
        n_draws: int,
    ) -> None:
        self.gens = gens
        self.thread = None
        prefetch = n_draws > 1 and like.device.type == "cpu" and like.numel() >= PREFETCH_MIN
        n_buf = 2 if prefetch else min(n_draws, 1)
        self.bufs = [
            [like.new_empty((like.shape[0], e - s)) for s, e in blocks] for _ in range(n_buf)
        ]
        if prefetch:
            import queue

            self.free: queue.Queue = queue.Queue()
            self.ready: queue.Queue = queue.Queue()
            for b in self.bufs:
                self.free.put(b)
            self.thread = threading.Thread(target=self._fill, args=(n_draws,), daemon=True)
            self.thread.start()

    def _draw(self, bufs: list[torch.Tensor]) -> list[torch.Tensor]:
        for buf, gen in zip(bufs, self.gens, strict=True):
            gen.fill_(buf)
        return bufs

    def _fill(self, n_draws: int) -> None:
        try:
            with torch.no_grad():
                for _ in range(n_draws):
                    bufs = self.free.get()
                    if bufs is None:
                        return
                    self.ready.put(self._draw(bufs))
        except BaseException as err:  # pragma: no cover - handed to the consumer
            self.ready.put(err)

    def next(self) -> list[torch.Tensor]:
        if self.thread is None:
            return self._draw(self.bufs[0])
        bufs = self.ready.get()
        if isinstance(bufs, BaseException):  # pragma: no cover
            raise bufs
        return bufs

    def release(self, bufs: list[torch.Tensor]) -> None:
        if self.thread is not None:
            self.free.put(bufs)

    def close(self) -> None:
        if self.thread is not None:
            self.free.put(None)
            self.thread.join()
            self.thread = None


def _randn(x: torch.Tensor, gens: list[Any], blocks: list[tuple[int, int]]):
    """The noise of one step as an ``(n_cells, n_genes)`` tensor, the values of
    :class:`_Normals` (block by block)."""
    n_genes = x.shape[1]
    parts = [
        g.fill_(torch.empty((n_genes, e - s), device=x.device, dtype=x.dtype))
        for (s, e), g in zip(blocks, gens, strict=True)
    ]
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)).T
