"""Batched Euler–Maruyama integration of ``dx = f(t, x, args) dt + g dW`` for many cells."""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from .._errors import GclDivergenceError, GclError
from ._device import resolve_device

__all__ = ["Solution", "integrate", "resolve_device"]

VectorField = Callable[[float, torch.Tensor, Any], torch.Tensor]


@dataclass
class Solution:
    """Result of :func:`integrate`.

    Attributes
    ----------
    x
        Final state, ``(n_cells, n_genes)``.
    ts
        Times of the saved snapshots, ``(n_save,)`` (``None`` without ``n_save``).
    xs
        Saved snapshots, ``(n_save, n_cells, n_genes)`` (``None`` without ``n_save``).
    dt
        The step actually used (``t_max / n_steps``).
    n_steps
        Number of steps taken.
    """

    x: torch.Tensor
    ts: torch.Tensor | None
    xs: torch.Tensor | None
    dt: float
    n_steps: int


def _as_state(x0: Any, device: torch.device) -> torch.Tensor:
    if torch.is_tensor(x0):
        x = x0.detach().clone() if not x0.requires_grad else x0.clone()
        if not x.is_floating_point():
            x = x.to(torch.float32)
    else:
        arr = np.asarray(x0)
        if arr.dtype.kind not in "fiub":
            raise GclError(f"x0 must be numeric; got dtype {arr.dtype}.")
        x = torch.as_tensor(arr, dtype=torch.float64 if arr.dtype == np.float64 else torch.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise GclError(
            f"x0 must be a non-empty (n_cells, n_genes) array; got shape {tuple(x.shape)}."
        )
    if not torch.isfinite(x).all():
        raise GclError("x0 contains NaN or infinite values; pass a finite initial state.")
    # Gene-major storage, (n_cells, n_genes) view: per-gene rows are contiguous, so the
    # fields' matrix products and row gathers run on contiguous memory.
    return x.to(device).T.contiguous().T


def _as_clamp(clamp: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(genes, values)`` → (boolean mask broadcastable to x, values broadcastable to x)."""
    if clamp is None:
        return None
    try:
        genes, values = clamp
    except (TypeError, ValueError):
        raise GclError(
            "clamp must be a pair (genes, values): gene indices or a boolean mask, and the "
            "values to hold them at."
        ) from None
    n_cells, n_genes = x.shape
    g = torch.as_tensor(np.asarray(genes) if not torch.is_tensor(genes) else genes, device=x.device)
    if g.dtype == torch.bool:
        mask = g
        if mask.shape not in ((n_genes,), (n_cells, n_genes), (1, n_genes)):
            raise GclError(
                f"a clamp mask must have shape ({n_genes},) or ({n_cells}, {n_genes}); got {tuple(mask.shape)}."
            )
        vals = torch.as_tensor(values, dtype=x.dtype, device=x.device)
        return mask, torch.broadcast_to(vals, x.shape) if vals.ndim == 2 else vals
    g = g.reshape(-1).long()
    if g.numel() and (g.min() < 0 or g.max() >= n_genes):
        raise GclError(f"clamp gene indices must lie in [0, {n_genes}); got {g.tolist()}.")
    mask = torch.zeros(n_genes, dtype=torch.bool, device=x.device)
    mask[g] = True
    full = torch.zeros(n_genes, dtype=x.dtype, device=x.device)
    full[g] = torch.as_tensor(values, dtype=x.dtype, device=x.device).expand(g.numel())
    return mask, full


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

    About 1.5 ns per value against ~4 ns for torch's ``normal_`` (Mersenne Twister, then
    Box–Muller) on the machines of ``benchmarks/simulate.py``: at G = 300 the Gaussian draws
    had cost about a third of a kernel step. Euler–Maruyama converges in distribution with
    any increments of mean 0 and variance 1 and bounded moments (Kloeden & Platen, §14.5);
    these match the normal's quantiles to 2¹⁶ levels.
    """

    def __init__(self, seed_seq: np.random.SeedSequence) -> None:
        self.bits = np.random.SFC64(seed_seq)

    def fill_(self, buf: torch.Tensor) -> torch.Tensor:
        """Fill the contiguous CPU tensor ``buf`` with draws; returns it."""
        out = buf.numpy().reshape(-1)
        words = self.bits.random_raw(-(-out.size // 4))  # four 16-bit indices per word
        idx = words.view(np.uint16)[: out.size]
        np.take(_normal_table(out.dtype), idx, out=out, mode="wrap")
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


def integrate(
    field: VectorField,
    x0: Any,
    *,
    t_max: float,
    dt: float,
    args: Any = None,
    noise: float | Any | Callable[[float, torch.Tensor, Any], torch.Tensor] = 0.0,
    seed: int = 0,
    clamp: Any = None,
    n_save: int | None = None,
    nonnegative: bool = True,
    device: str | torch.device | None = None,
    check_every: int = 10,
    num_threads: int | None = None,
) -> Solution:
    """Integrate ``dx = field(t, x, args) dt + noise dW`` for a batch of cells (Euler–Maruyama).

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt`` on ``(n_cells, n_genes)`` tensors.
    x0
        Initial states, ``(n_cells, n_genes)`` (or one state ``(n_genes,)``), tensor or array.
        float64 input stays float64; anything else runs in float32.
    t_max, dt
        End time and step; ``dt`` is shortened slightly so a whole number of steps reach
        ``t_max``.
    args
        Passed unchanged to ``field`` (and to a callable ``noise``).
    noise
        Diffusion: a scalar, a per-gene vector, an ``(n_cells, n_genes)`` array, or a callable
        ``g(t, x, args)`` giving the standard deviation per element; each step adds
        ``g * sqrt(dt) * N(0, 1)``.
    seed
        Seed of the noise: equal seeds give equal paths (on the same device, for the same
        number of cells and genes, whatever ``num_threads``). See Notes.
    clamp
        ``(genes, values)``: gene indices (or a boolean mask of shape ``(n_genes,)`` or
        ``(n_cells, n_genes)``) held at ``values`` from the start and after every step
        (knockout = clamp to 0, overexpression = clamp high).
    n_save
        Number of evenly spaced snapshots to keep (the first at t = 0, the last at ``t_max``).
    nonnegative
        Clip states at 0 after every step (expression levels).
    device
        ``None`` (the device of ``x0``), ``"cpu"``, ``"cuda"`` or ``"auto"``.
    check_every
        Steps between checks for NaN/inf (also checked at the end).
    num_threads
        Torch CPU threads during the integration (restored afterwards). Default: 1 when the
        batch is small (under 2^18 values, where threads only add synchronisation cost, and
        badly so on a loaded machine), otherwise torch's current setting. For a
        :class:`~gclandscape.engine.SigmoidField` with a fixed noise scale on a large batch,
        this is the number of worker threads, each running torch single-threaded.

    Returns
    -------
    :class:`Solution` with the final state and, with ``n_save``, the snapshots.

    Raises
    ------
    GclDivergenceError
        The state became NaN or infinite; the message names ``dt`` and the time reached.

    Notes
    -----
    Noise: on the CPU the cells are cut into ``ceil(n_cells * n_genes / 2**18)`` equal
    blocks (``BLOCK_VALUES``). A batch of at most 2^18 values is one block and draws torch's
    Gaussian stream of ``torch.Generator().manual_seed(seed)`` (Mersenne Twister, Box–Muller),
    as earlier versions did. In a larger batch block ``k`` draws from its own numpy SFC64
    generator seeded with :class:`numpy.random.SeedSequence` ``([seed, k])``, each uniform
    16-bit draw looked up in a table of the 2^16 midpoint quantiles of the standard normal
    (rescaled to variance 1; tails cut at 4.3 σ, a mass of 1.5e-5). That is 2.5× cheaper per
    value than torch's draws, which had cost a third of a step at 300 genes, and
    Euler–Maruyama converges in distribution with any increments of mean 0, variance 1 and
    bounded moments (Kloeden & Platen 1992, §14.5). The blocks depend only on the number of
    cells and genes, never on the thread count. On a GPU the whole batch draws from one torch
    generator seeded with ``seed``.

    Speed: the state is kept gene-major and updated in place in preallocated buffers (a
    :class:`~gclandscape.engine.SigmoidField` step is one ``addmm`` plus a few in-place
    passes). For a multi-block CPU batch with a sigmoid field and a fixed noise scale, each
    block runs all its steps on its own small buffers, and ``num_threads`` worker threads
    share the blocks with no synchronisation between steps: the noise, which a single
    generator would draw serially (as long as the matrix product at G = 300), is drawn in
    parallel, and the per-step passes stay in cache; the block's matrix product runs through
    numpy's BLAS, one thread per worker (with OpenBLAS the kernel ran 17-28 % faster than with
    torch's MKL on the AMD CPU of ``benchmarks/simulate.py``). Other fields draw the next
    step's noise in a background thread while the current step computes. None of this
    changes a value beyond rounding (the matrix product per block and its library; in
    blocks, the decay and the noise are added in fused passes ``addcmul`` /
    ``add(alpha=)``, rounded once): a seed gives the paths of the plain out-of-place
    Euler–Maruyama loop with the same noise. That plain loop (which autograd can follow) runs
    instead when gradients are wanted: grad mode on and ``x0`` requiring
    gradients or ``field`` a ``torch.nn.Module`` with parameters that do; otherwise no graph
    is recorded.

    Examples
    --------
    >>> import numpy as np
    >>> from gclandscape.engine import LinearField, integrate
    >>> sol = integrate(LinearField([[-1.0]]), np.ones((1, 1)), t_max=1.0, dt=1e-3)
    >>> round(float(sol.x[0, 0]), 3)  # exp(-1)
    0.368
    """
    threads = torch.get_num_threads()
    want = num_threads
    if want is None:
        shape = tuple(getattr(x0, "shape", np.shape(x0)))
        want = 1 if int(np.prod(shape)) < 2**18 else threads
    if want != threads:
        torch.set_num_threads(int(want))
    try:
        return _integrate(
            field, x0, t_max=t_max, dt=dt, args=args, noise=noise, seed=seed, clamp=clamp,
            n_save=n_save, nonnegative=nonnegative, device=device, check_every=check_every,
        )  # fmt: skip
    finally:
        if want != threads:
            torch.set_num_threads(threads)


def _integrate(
    field: VectorField,
    x0: Any,
    *,
    t_max: float,
    dt: float,
    args: Any,
    noise: Any,
    seed: int,
    clamp: Any,
    n_save: int | None,
    nonnegative: bool,
    device: str | torch.device | None,
    check_every: int,
) -> Solution:
    if not (math.isfinite(t_max) and t_max > 0):
        raise GclError(f"t_max must be a positive number; got {t_max}.")
    if not (math.isfinite(dt) and dt > 0):
        raise GclError(f"dt must be a positive number; got {dt}.")
    dev = resolve_device(device, x0)
    x = _as_state(x0, dev)
    n_cells, n_genes = x.shape
    n_steps = max(1, math.ceil(t_max / dt - 1e-9))
    h = t_max / n_steps
    sqrt_h = math.sqrt(h)

    blocks = _cell_blocks(n_cells, n_genes, dev)
    gens = _generators(seed, len(blocks), dev)
    noise_fn: Callable[[float, torch.Tensor, Any], torch.Tensor] | None = None
    sigma: torch.Tensor | None = None
    if callable(noise):
        noise_fn = noise
    else:
        sigma = torch.as_tensor(np.asarray(noise) if not torch.is_tensor(noise) else noise)
        sigma = sigma.to(dtype=x.dtype, device=dev)
        if sigma.ndim > 2 or (sigma.ndim >= 1 and sigma.shape[-1] != n_genes):
            raise GclError(
                f"noise must be a scalar, a vector of length {n_genes} or an array "
                f"({n_cells}, {n_genes}); got shape {tuple(sigma.shape)}."
            )
        if not torch.isfinite(sigma).all() or (sigma < 0).any():
            raise GclError("noise must be finite and non-negative.")
        if not bool((sigma > 0).any()):
            sigma = None
        else:
            sigma = sigma * sqrt_h

    cl = _as_clamp(clamp, x)
    if cl is not None:
        x = torch.where(cl[0], cl[1], x)

    save_at: dict[int, int] = {}
    xs = ts = None
    if n_save is not None:
        if n_save < 1 or n_save > n_steps + 1:
            raise GclError(
                f"n_save must lie in [1, {n_steps + 1}] for {n_steps} steps; got {n_save}."
            )
        steps = (
            np.linspace(0, n_steps, n_save).round().astype(int)
            if n_save > 1
            else np.array([n_steps])
        )
        save_at = {int(s): k for k, s in enumerate(steps)}
        xs = torch.empty((n_save, n_cells, n_genes), dtype=x.dtype, device=dev)
        ts = torch.as_tensor(steps * h, dtype=x.dtype)
        if 0 in save_at:
            xs[save_at[0]] = x

    run = _Run(
        field=field, args=args, h=h, sqrt_h=sqrt_h, n_steps=n_steps, gens=gens,
        blocks=blocks,
        noise_fn=noise_fn, sigma=sigma, clamp=cl, nonnegative=nonnegative,
        check_every=check_every, save_at=save_at, xs=xs,
    )  # fmt: skip
    if _needs_autograd(field, x):
        x = _loop_autograd(run, x)
    else:
        with torch.no_grad():
            blocked = len(run.blocks) > 1 and run.noise_fn is None
            if blocked and hasattr(field, "_drift_gm"):
                x = _loop_blocks(run, x)
            else:
                x = _loop_inplace(run, x)
    return Solution(x=x.contiguous(), ts=ts, xs=xs, dt=h, n_steps=n_steps)


@dataclass
class _Run:
    """What one integration loop needs (set up once by :func:`_integrate`)."""

    field: VectorField
    args: Any
    h: float
    sqrt_h: float
    n_steps: int
    gens: list[Any]
    blocks: list[tuple[int, int]]
    noise_fn: Callable[[float, torch.Tensor, Any], torch.Tensor] | None
    sigma: torch.Tensor | None
    clamp: tuple[torch.Tensor, torch.Tensor] | None
    nonnegative: bool
    check_every: int
    save_at: dict[int, int]
    xs: torch.Tensor | None

    def check(self, x: torch.Tensor, step: int) -> None:
        x = x.detach()
        # A sum is finite when every element is and costs one read pass; the elementwise test
        # only confirms a non-finite sum (NaN, infinity, or an overflow of finite values).
        if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
            h = self.h
            raise GclDivergenceError(
                f"the integration diverged (NaN or infinite values) by t = {step * h:.4g} "
                f"(step {step} of {self.n_steps}) with dt = {h:.4g}; retry with a smaller dt "
                f"(for example dt = {h / 10:.3g}) or check the vector field for blow-up."
            )


def _needs_autograd(field: VectorField, x: torch.Tensor) -> bool:
    """Whether the caller can differentiate through the result (then no in-place updates)."""
    if not torch.is_grad_enabled():
        return False
    if x.requires_grad:
        return True
    return isinstance(field, torch.nn.Module) and any(p.requires_grad for p in field.parameters())


def _loop_autograd(run: _Run, x: torch.Tensor) -> torch.Tensor:
    """Out-of-place steps, so autograd can follow them (``x0`` or the field needs gradients)."""
    h, sqrt_h, cl = run.h, run.sqrt_h, run.clamp
    for step in range(1, run.n_steps + 1):
        t = (step - 1) * h
        drift = run.field(t, x, run.args)
        if run.noise_fn is not None:
            g = run.noise_fn(t, x, run.args)
            x = x + drift * h + g * sqrt_h * _randn(x, run.gens, run.blocks)
        else:
            x = x + drift * h
        if run.sigma is not None:
            x = x + run.sigma * _randn(x, run.gens, run.blocks)
        if run.nonnegative:
            x = x.clamp_min(0.0)
        if cl is not None:
            x = torch.where(cl[0], cl[1], x)
        if step % run.check_every == 0 or step == run.n_steps:
            run.check(x, step)
        if step in run.save_at:
            run.xs[run.save_at[step]] = x
    return x


def _clamp_gm(run: _Run, xt: torch.Tensor) -> tuple[Any, Any, Any, Any]:
    """The clamp laid out for a gene-major ``(n_genes, n_cells)`` state: ``(rows, values)``
    when the same genes are clamped in every cell (values ``(n_rows, 1)``), otherwise
    ``(mask, values)`` gene-major views for one ``torch.where``."""
    if run.clamp is None:
        return None, None, None, None
    n_genes, n_cells = xt.shape
    mask, values = run.clamp
    values = torch.as_tensor(values, dtype=xt.dtype, device=xt.device)
    if (mask.ndim == 1 or mask.shape[0] == 1) and values.ndim <= 1:  # same genes in all
        rows = mask.reshape(-1).nonzero().reshape(-1)
        full = torch.broadcast_to(values, (n_genes,))
        return rows, full.index_select(0, rows)[:, None], None, None
    # per-cell mask
    mask_t = torch.broadcast_to(mask, (n_cells, n_genes)).T
    return None, None, mask_t, torch.broadcast_to(values, (n_cells, n_genes)).T


def _loop_inplace(run: _Run, x: torch.Tensor) -> torch.Tensor:
    """The same steps as :func:`_loop_autograd`, value for value, without allocating.

    The state lives gene-major in one ``(n_genes, n_cells)`` buffer updated in place (the
    fields see its ``(n_cells, n_genes)`` transpose); drift, noise and scratch buffers are
    allocated once. A field with a ``_drift_gm(t, xt, args, out, work)`` method writes its
    drift straight into the buffer (:class:`~gclandscape.engine.SigmoidField`: one ``addmm``
    and a few in-place passes per step). Every operation rounds as the out-of-place form does
    and the noise comes from the same generators in the same order, so a seed gives the same
    paths.
    """
    h, sqrt_h = run.h, run.sqrt_h
    n_cells, n_genes = x.shape
    xt = x.T.clone(memory_format=torch.contiguous_format)  # owned, gene-major
    d = torch.empty_like(xt)  # drift * h
    work = torch.empty_like(xt)
    fused = getattr(run.field, "_drift_gm", None)
    rows, vals, mask_t, vals_t = _clamp_gm(run, xt)
    if vals is not None:
        vals = vals.expand(-1, n_cells)

    noisy = run.noise_fn is not None or run.sigma is not None
    draws = _Normals(xt, run.gens, run.blocks, run.n_steps if noisy else 0)
    one = len(run.blocks) == 1

    def add_noise(scale: torch.Tensor) -> None:
        eps = draws.next()
        for (s, e), ep in zip(run.blocks, eps, strict=True):
            ep.T.mul_(scale if one else _cells(scale, s, e, n_cells))
            (xt if one else xt[:, s:e]).add_(ep)
        draws.release(eps)

    try:
        for step in range(1, run.n_steps + 1):
            t = (step - 1) * h
            if fused is not None:
                fused(t, xt, run.args, d, work)
                d.mul_(h)
            else:
                drift = run.field(t, xt.T, run.args)
                if drift.shape == (n_cells, n_genes):
                    torch.mul(drift, h, out=d.T)
                else:  # a field that broadcasts (e.g. a constant drift)
                    d.T.copy_(drift * h)
            if run.noise_fn is not None:
                g = run.noise_fn(t, xt.T, run.args)
                xt.add_(d)
                add_noise(torch.as_tensor(g * sqrt_h, dtype=xt.dtype, device=xt.device))
            else:
                xt.add_(d)
            if run.sigma is not None:
                add_noise(run.sigma)
            if run.nonnegative:
                xt.clamp_(min=0.0)
            if rows is not None:
                xt.index_copy_(0, rows, vals)
            elif mask_t is not None:
                torch.where(mask_t, vals_t, xt, out=xt)
            if step % run.check_every == 0 or step == run.n_steps:
                run.check(xt, step)
            if step in run.save_at:
                run.xs[run.save_at[step]] = xt.T
    finally:
        draws.close()
    return xt.T


def _loop_blocks(run: _Run, x: torch.Tensor) -> torch.Tensor:
    """:func:`_loop_inplace` for a field with ``_drift_gm`` and a fixed noise scale, block by
    block: cells are independent, so each block of cells runs all its steps on its own
    contiguous buffers (small enough to stay in cache) with its own generator, and worker
    threads (one per torch thread, each running torch single-threaded) share the blocks with
    no synchronisation between steps. Each block's values are the same whatever the number
    of workers; they differ from :func:`_loop_inplace` only by rounding (the matrix product
    per block, the decay and a scalar noise added in fused passes)."""
    h = run.h
    n_cells = x.shape[0]
    n_workers = max(1, min(torch.get_num_threads(), len(run.blocks)))
    xt_all = x.T  # read only: x may share memory with the caller's array
    rows, vals, mask_t, vals_t = _clamp_gm(run, xt_all)
    args = run.args
    if isinstance(args, Mapping):  # per-cell overrides are cut per block, converted once
        args = {
            k: torch.as_tensor(
                np.asarray(v) if not torch.is_tensor(v) else v, dtype=x.dtype, device=x.device
            )
            for k, v in args.items()
        }
    blocks = []
    for (s, e), gen in zip(run.blocks, run.gens, strict=True):
        xb = xt_all[:, s:e].contiguous()
        blocks.append(
            {
                "s": s, "e": e, "x": xb, "d": torch.empty_like(xb),
                "eps": None if run.sigma is None else torch.empty_like(xb), "gen": gen,
                "args": {k: _cells(v, s, e, n_cells) for k, v in args.items()}
                if isinstance(args, dict) else args,
                "sigma": _sigma_gm(run.sigma, s, e, n_cells),
                "sigma_f": float(run.sigma) if run.sigma is not None and run.sigma.ndim == 0
                else None,
                "vals": None if vals is None else vals.expand(-1, e - s),
                "mask": None if mask_t is None else mask_t[:, s:e],
                "mvals": None if vals_t is None else vals_t[:, s:e],
            }
        )  # fmt: skip
    drift_gm = run.field._drift_gm
    errors: list[tuple[int, int, BaseException]] = []
    stop = [run.n_steps]  # the earliest step at which a block failed
    lock = threading.Lock()

    def work(mine: list[int]) -> None:
        step = k = 0
        try:
            for step in range(1, run.n_steps + 1):
                if step > stop[0]:
                    return
                t = (step - 1) * h
                check = step % run.check_every == 0 or step == run.n_steps
                for k in mine:
                    b = blocks[k]
                    xb = b["x"]
                    # fused passes, each rounded once where the plain loop rounds twice
                    drift_gm(t, xb, b["args"], b["d"], None, exact=False)
                    xb.add_(b["d"], alpha=h)
                    if b["sigma"] is not None:
                        eps = b["gen"].fill_(b["eps"])
                        if b["sigma_f"] is not None:
                            xb.add_(eps, alpha=b["sigma_f"])
                        else:
                            eps.mul_(b["sigma"])
                            xb.add_(eps)
                    if run.nonnegative:
                        xb.clamp_(min=0.0)
                    if rows is not None:
                        xb.index_copy_(0, rows, b["vals"])
                    elif b["mask"] is not None:
                        torch.where(b["mask"], b["mvals"], xb, out=xb)
                    if check:
                        run.check(xb, step)
                    if step in run.save_at:
                        run.xs[run.save_at[step], b["s"] : b["e"]] = xb.T
        except BaseException as err:
            with lock:
                errors.append((step, k, err))
                stop[0] = min(stop[0], step)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # one BLAS thread per worker: the sigmoid field multiplies through numpy's BLAS here
    blas_limit = _blas_controller().limit(limits=1, user_api="blas")
    try:
        if n_workers == 1:
            work(list(range(len(blocks))))
        else:
            n = len(blocks)
            parts = [
                list(range(w * n // n_workers, (w + 1) * n // n_workers)) for w in range(n_workers)
            ]
            pool = [threading.Thread(target=work, args=(p,), daemon=True) for p in parts]
            for th in pool:
                th.start()
            try:
                for th in pool:
                    th.join()
            except BaseException:  # e.g. KeyboardInterrupt: the workers stop at their next step
                stop[0] = 0
                raise
    finally:
        blas_limit.restore_original_limits()
        torch.set_num_threads(threads)
    if errors:
        raise min(errors, key=lambda e: e[:2])[2]
    out = torch.empty_like(xt_all, memory_format=torch.contiguous_format)
    for b in blocks:
        out[:, b["s"] : b["e"]] = b["x"]
    return out.T


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """numpy's BLAS, found once (a fresh ``threadpool_limits`` scans the loaded libraries
    each time: ~7 ms against ~0.02 ms through a kept controller)."""
    return ThreadpoolController()


def _sigma_gm(sigma: torch.Tensor | None, s: int, e: int, n_cells: int) -> torch.Tensor | None:
    """The noise scale of cells ``s:e`` laid out to broadcast against a gene-major block."""
    if sigma is None or sigma.ndim == 0:
        return sigma
    if sigma.ndim == 1:
        return sigma[:, None]
    return _cells(sigma, s, e, n_cells).T
