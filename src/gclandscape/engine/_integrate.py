"""Batched Euler–Maruyama integration of ``dx = f(t, x, args) dt + g dW`` for many cells."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._errors import GclDivergenceError, GclError

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


def resolve_device(device: str | torch.device | None, like: Any = None) -> torch.device:
    """The torch device to run on.

    ``None`` → the device of ``like`` (CPU for arrays); ``"auto"`` → CUDA when available.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    >>> resolve_device(None, like=torch.zeros(1)).type
    'cpu'
    """
    if device is None:
        return like.device if torch.is_tensor(like) else torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


class _Normals:
    """Standard normal draws shaped like the gene-major state, one per step, in generator order.

    For large batches on the CPU a background thread fills the next buffer while the current
    step computes (torch releases the GIL inside its kernels): the draws are the same values
    in the same order as ``buf.normal_(generator=gen)`` step after step, so seeding is
    unchanged, but drawing noise (a serial Mersenne-Twister stream) overlaps the matrix
    product instead of adding to it. ``next()`` returns a buffer, ``release()`` gives it back.
    """

    def __init__(self, like: torch.Tensor, gen: torch.Generator, n_draws: int) -> None:
        self.gen = gen
        self.thread = None
        prefetch = n_draws > 1 and like.device.type == "cpu" and like.numel() >= PREFETCH_MIN
        n_buf = 2 if prefetch else min(n_draws, 1)
        self.bufs = [torch.empty_like(like) for _ in range(n_buf)]
        if prefetch:
            import queue
            import threading

            self.free: queue.Queue = queue.Queue()
            self.ready: queue.Queue = queue.Queue()
            for b in self.bufs:
                self.free.put(b)
            self.thread = threading.Thread(target=self._fill, args=(n_draws,), daemon=True)
            self.thread.start()

    def _fill(self, n_draws: int) -> None:
        try:
            with torch.no_grad():
                for _ in range(n_draws):
                    buf = self.free.get()
                    if buf is None:
                        return
                    buf.normal_(generator=self.gen)
                    self.ready.put(buf)
        except BaseException as err:  # pragma: no cover - handed to the consumer
            self.ready.put(err)

    def next(self) -> torch.Tensor:
        if self.thread is None:
            return self.bufs[0].normal_(generator=self.gen)
        buf = self.ready.get()
        if isinstance(buf, BaseException):  # pragma: no cover
            raise buf
        return buf

    def release(self, buf: torch.Tensor) -> None:
        if self.thread is not None:
            self.free.put(buf)

    def close(self) -> None:
        if self.thread is not None:
            self.free.put(None)
            self.thread.join()
            self.thread = None


def _randn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n_cells, n_genes = x.shape
    return torch.randn((n_genes, n_cells), generator=gen, device=x.device, dtype=x.dtype).T


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
        Seed of the ``torch.Generator`` drawing the noise: equal seeds give equal paths.
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
        badly so on a loaded machine), otherwise torch's current setting.

    Returns
    -------
    :class:`Solution` with the final state and, with ``n_save``, the snapshots.

    Raises
    ------
    GclDivergenceError
        The state became NaN or infinite; the message names ``dt`` and the time reached.

    Notes
    -----
    The state is kept gene-major and updated in place in preallocated buffers (a
    :class:`~gclandscape.engine.SigmoidField` step is one ``addmm`` plus a few in-place
    passes); for large CPU batches the next step's noise is drawn in a background thread
    while the current step computes. Neither changes a value: a seed gives the same paths as
    the plain out-of-place Euler–Maruyama loop. That plain loop (which autograd can follow)
    runs instead when gradients are wanted: grad mode on and ``x0`` requiring gradients or
    ``field`` a ``torch.nn.Module`` with parameters that do; otherwise no graph is recorded.

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

    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))
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
        field=field, args=args, h=h, sqrt_h=sqrt_h, n_steps=n_steps, gen=gen,
        noise_fn=noise_fn, sigma=sigma, clamp=cl, nonnegative=nonnegative,
        check_every=check_every, save_at=save_at, xs=xs,
    )  # fmt: skip
    if _needs_autograd(field, x):
        x = _loop_autograd(run, x)
    else:
        with torch.no_grad():
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
    gen: torch.Generator
    noise_fn: Callable[[float, torch.Tensor, Any], torch.Tensor] | None
    sigma: torch.Tensor | None
    clamp: tuple[torch.Tensor, torch.Tensor] | None
    nonnegative: bool
    check_every: int
    save_at: dict[int, int]
    xs: torch.Tensor | None

    def check(self, x: torch.Tensor, step: int) -> None:
        x = x.detach()
        # A float64 sum is finite exactly when every element is (it cannot overflow for float32
        # states) and costs one read pass; the elementwise test only confirms a non-finite sum.
        if not math.isfinite(float(x.sum(dtype=torch.float64))) and not bool(
            torch.isfinite(x).all()
        ):
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
            x = x + drift * h + g * sqrt_h * _randn(x, run.gen)
        else:
            x = x + drift * h
        if run.sigma is not None:
            x = x + run.sigma * _randn(x, run.gen)
        if run.nonnegative:
            x = x.clamp_min(0.0)
        if cl is not None:
            x = torch.where(cl[0], cl[1], x)
        if step % run.check_every == 0 or step == run.n_steps:
            run.check(x, step)
        if step in run.save_at:
            run.xs[run.save_at[step]] = x
    return x


def _loop_inplace(run: _Run, x: torch.Tensor) -> torch.Tensor:
    """The same steps as :func:`_loop_autograd`, value for value, without allocating.

    The state lives gene-major in one ``(n_genes, n_cells)`` buffer updated in place (the
    fields see its ``(n_cells, n_genes)`` transpose); drift, noise and scratch buffers are
    allocated once. A field with a ``_drift_gm(t, xt, args, out, work)`` method writes its
    drift straight into the buffer (:class:`~gclandscape.engine.SigmoidField`: one ``addmm``
    and a few in-place passes per step). Every operation rounds as the out-of-place form does
    and the noise comes from the generator in the same order, so a seed gives the same paths.
    """
    h, sqrt_h = run.h, run.sqrt_h
    n_cells, n_genes = x.shape
    xt = x.T.clone(memory_format=torch.contiguous_format)  # owned, gene-major
    d = torch.empty_like(xt)  # drift * h
    work = torch.empty_like(xt)
    fused = getattr(run.field, "_drift_gm", None)

    rows = vals = mask_t = vals_t = None
    if run.clamp is not None:
        mask, values = run.clamp
        values = torch.as_tensor(values, dtype=xt.dtype, device=xt.device)
        if (mask.ndim == 1 or mask.shape[0] == 1) and values.ndim <= 1:  # same genes in all
            rows = mask.reshape(-1).nonzero().reshape(-1)
            full = torch.broadcast_to(values, (n_genes,))
            vals = full.index_select(0, rows)[:, None].expand(-1, n_cells)
        else:  # per-cell mask: one torch.where in place
            mask_t = torch.broadcast_to(mask, (n_cells, n_genes)).T
            vals_t = torch.broadcast_to(values, (n_cells, n_genes)).T

    noisy = run.noise_fn is not None or run.sigma is not None
    draws = _Normals(xt, run.gen, run.n_steps if noisy else 0)
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
                eps = draws.next()
                eps.T.mul_(g * sqrt_h)
                xt.add_(eps)
                draws.release(eps)
            else:
                xt.add_(d)
            if run.sigma is not None:
                eps = draws.next()
                eps.T.mul_(run.sigma)
                xt.add_(eps)
                draws.release(eps)
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
