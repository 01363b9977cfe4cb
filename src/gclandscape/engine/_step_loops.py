"""The step loops of :func:`~gclandscape.engine.integrate`: autograd, in place, and blocked.

:func:`_loop_autograd` keeps the graph (no in-place updates), :func:`_loop_inplace` updates one
buffer, and :func:`_loop_blocks` steps the noise blocks of a field with a gene-major drift
(``_drift_gm``) in parallel threads, one BLAS thread each; for a sigmoid field
:class:`_SigmoidFusion` does all of a block's step after its product in one compiled pass.
"""

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

from .._errors import GclDivergenceError
from ._blas_choice import matmul_backend
from ._field_checks import VectorField
from ._noise import _cells, _normal_table, _Normals, _randn, _TableNormal


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
    fusion = _SigmoidFusion.make(run, x)
    blocks = []
    for (s, e), gen in zip(run.blocks, run.gens, strict=True):
        xb = xt_all[:, s:e].contiguous()
        blocks.append(
            {
                "s": s, "e": e, "x": xb, "d": torch.empty_like(xb),
                "eps": None if run.sigma is None or fusion is not None else torch.empty_like(xb),
                "gen": gen,
                "words": gen.state_words() if fusion is not None and run.sigma is not None
                else None,
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
        # block by block, all steps of one block before the next: its buffers stay in this
        # core's cache for the whole run (step by step, a worker cycles through all its blocks
        # and every step reads them from memory again)
        for k in mine:
            b = blocks[k]
            xb = b["x"]
            step = 0
            try:
                for step in range(1, run.n_steps + 1):
                    if step > stop[0]:
                        break
                    if fusion is not None:
                        fusion.step(xb, b["d"], b["words"], blas)
                    else:
                        # fused passes, each rounded once where the plain loop rounds twice
                        drift_gm((step - 1) * h, xb, b["args"], b["d"], None, exact=False,
                                 blas=blas)  # fmt: skip
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
                    if step % run.check_every == 0 or step == run.n_steps:
                        run.check(xb, step)
                    if step in run.save_at:
                        run.xs[run.save_at[step], b["s"] : b["e"]] = xb.T
            except BaseException as err:
                # the other blocks still run up to this step: the error raised is the one
                # of the earliest step (then block), whatever the number of workers
                with lock:
                    errors.append((step, k, err))
                    stop[0] = min(stop[0], step)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # one BLAS thread per worker: the sigmoid field multiplies through numpy's or torch's
    # BLAS here, whichever measured faster on this CPU
    blas_limit = _blas_controller().limit(limits=1, user_api="blas")
    try:
        blas = matmul_backend(x.shape[1], x.dtype) if x.device.type == "cpu" else "torch"
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


#: A run fuses its sigmoid steps (:class:`_SigmoidFusion`) when it updates at least this many
#: values (cells × genes × steps), or once the kernels are loaded in this process: importing
#: numba and loading the compiled kernels takes about 1 s once per process, about what
#: fusing saves on 2^29 updates (~1.3 ns each, ``benchmarks/README.md``).
FUSE_MIN_UPDATES = 2**29


class _SigmoidFusion:
    """One step of a sigmoid field's block after its matrix product, in one compiled pass.

    The plain blocked step reads and writes the block six more times after the product (bias
    and sigmoid aside: the production, the decay, the Euler update, the noise look-up, the
    noise addition and the floor at 0). Here one numba loop does all of them per value while
    the block is in cache: ``x ← max(floor, x + h·(α·s − γ·x) + σ·table[k])`` with ``s`` the
    sigmoid and ``k`` the block's 16-bit noise indices, drawn inside the loop from the
    block's SFC64 words (the same stream and table as
    ``_TableNormal.fill_``; nothing is written to memory).
    Used for a :class:`~gclandscape.engine.SigmoidField` whose parameters and noise scale are
    scalars or per-gene vectors (per-cell ones take the plain passes); see
    ``benchmarks/README.md``, "Simulation speed".
    """

    def __init__(self, p: dict[str, torch.Tensor], sigma: torch.Tensor | None, h: float,
                 nonnegative: bool, like: torch.Tensor) -> None:  # fmt: skip
        n_genes = like.shape[1]
        dt = like.numpy().dtype.type

        def vec(v: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(torch.broadcast_to(v, (n_genes,)).numpy())

        self.W, self.b = p["W"].detach(), p["b"].detach()[:, None]
        self.W_np = self.W.numpy()
        self.alpha, self.gamma = vec(p["alpha"].detach()), vec(p["gamma"].detach())
        self.sigma = None if sigma is None else vec(sigma)
        self.h = dt(h)
        self.floor = dt(0.0 if nonnegative else -np.inf)
        self.table = _normal_table(like.numpy().dtype)
        self.noisy, self.ode = _fused_kernels()

    @classmethod
    def make(cls, run: _Run, x: torch.Tensor) -> _SigmoidFusion | None:
        """The fusion for this run, or ``None`` where the plain passes run (another field,
        per-cell parameters or noise, a device other than the CPU, numba missing, or a run
        too short to repay loading the kernels: ``FUSE_MIN_UPDATES``)."""
        from ._fields import SigmoidField

        if type(run.field) is not SigmoidField or x.device.type != "cpu":
            return None
        if x.dtype not in (torch.float32, torch.float64):
            return None
        if run.sigma is not None and run.sigma.ndim > 1:
            return None
        if not all(isinstance(g, _TableNormal) for g in run.gens):
            return None
        loaded = _fused_kernels.cache_info().currsize > 0
        if not loaded and x.numel() * run.n_steps < FUSE_MIN_UPDATES:
            return None
        p = run.field._override(run.field.params(x), run.args, x)
        if p["W"].ndim != 2 or any(p[k].ndim > 1 for k in ("b", "alpha", "gamma")):
            return None
        try:
            _fused_kernels()
        except ImportError:  # numba comes with scanpy; without it the plain passes run
            return None
        return cls(p, run.sigma, run.h, run.nonnegative, x)

    def step(self, xb: torch.Tensor, d: torch.Tensor, words: np.ndarray | None, blas: str) -> None:
        """One Euler–Maruyama step of the gene-major block ``xb`` in place (``d``: scratch;
        ``words``: the block's SFC64 state from ``_TableNormal.state_words``)."""
        if blas == "numpy":  # one BLAS thread per worker (the caller limits it)
            np.matmul(self.W_np, xb.numpy(), out=d.numpy())
            d.add_(self.b)
        else:
            torch.addmm(self.b, self.W, xb, out=d)
        d.sigmoid_()
        if self.sigma is None:
            self.ode(xb.numpy(), d.numpy(), self.alpha, self.gamma, self.h, self.floor)
        else:
            self.noisy(xb.numpy(), d.numpy(), self.alpha, self.gamma, self.h, self.sigma,
                       self.table, words, self.floor)  # fmt: skip


def _update_noisy(x, s, alpha, gamma, h, sigma, table, words, floor):
    # x, s: (genes, cells) block and its sigmoid; alpha, gamma, sigma: per gene; words: the
    # block's SFC64 state, advanced here as numpy's SFC64 does (sfc64.h), one word per four
    # values, low 16 bits first: the indices _TableNormal.indices would give, without
    # writing them to memory (plain Python, compiled by _fused_kernels)
    u = np.uint64  # uint64 constants: a plain int would turn the arithmetic into float64
    n_genes, n_cells = x.shape
    a0, a1, a2, a3 = words[0], words[1], words[2], words[3]
    w = u(0)
    k = 0
    for i in range(n_genes):
        a, g, sg = alpha[i], gamma[i], sigma[i]
        for j in range(n_cells):
            q = k & 3
            if q == 0:
                w = a0 + a1 + a3
                a3 += u(1)
                a0 = a1 ^ (a1 >> u(11))
                a1 = a2 + (a2 << u(3))
                a2 = ((a2 << u(24)) | (a2 >> u(40))) + w
            k += 1
            v = x[i, j]
            v = v + h * (a * s[i, j] - g * v) + sg * table[(w >> u(16 * q)) & u(0xFFFF)]
            x[i, j] = floor if v < floor else v  # NaN stays NaN (the divergence check)
    words[0], words[1], words[2], words[3] = a0, a1, a2, a3


def _update_ode(x, s, alpha, gamma, h, floor):
    # _update_noisy without noise (the deterministic ODE)
    n_genes, n_cells = x.shape
    for i in range(n_genes):
        a, g = alpha[i], gamma[i]
        for j in range(n_cells):
            v = x[i, j]
            v = v + h * (a * s[i, j] - g * v)
            x[i, j] = floor if v < floor else v


@functools.cache
def _fused_kernels() -> tuple[Callable[..., None], Callable[..., None]]:
    """:func:`_update_noisy` and :func:`_update_ode` compiled by numba (imported here, not
    at module import: ~0.3 s; compiled once per dtype, kept in numba's on-disk cache).
    ``nogil`` lets the worker threads run them at once; no ``fastmath``, so each value
    rounds the same on every CPU (no contraction into fused multiply-adds)."""
    import numba

    try:
        jit = numba.njit(cache=True, nogil=True)
        return jit(_update_noisy), jit(_update_ode)
    except RuntimeError:  # no writable cache location: compiled in each process
        jit = numba.njit(nogil=True)
        return jit(_update_noisy), jit(_update_ode)
