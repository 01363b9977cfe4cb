"""Batched Euler–Maruyama integration of ``dx = f(t, x, args) dt + g dW`` for many cells."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._errors import GclError
from ._device import resolve_device
from ._field_checks import VectorField
from ._noise import _cell_blocks, _generators
from ._step_loops import _loop_autograd, _loop_blocks, _loop_inplace, _needs_autograd, _Run

__all__ = ["Solution", "integrate", "resolve_device"]

#: A step of at least this many floating-point operations runs on torch's threads even in a
#: small batch: a 200-gene GRNModel (2,400 per value) develops 100 cells in 0.084 s on two
#: threads against 0.127 s on one, 1,000 cells in 0.77 s against 1.00 s (40 time units, dt
#: 0.4; benchmarks/README.md, "Scale"); the 11-gene myeloid genome's steps (1.5e6) stay on one.
HEAVY_STEP_FLOPS = 2**24


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
        badly so on a loaded machine) and a step is cheap (under ``HEAVY_STEP_FLOPS`` by the
        field's ``flops_per_value``, which :class:`~gclandscape.engine.GRNModel` states),
        otherwise torch's current setting. For a
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
    numpy's or torch's BLAS, whichever measured faster on this CPU
    (:mod:`gclandscape.engine._blas_choice`), one thread per worker. Other fields draw the
    next step's noise in a background thread while the current step computes. None of this
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
        values = int(np.prod(shape))
        work = values * int(getattr(field, "flops_per_value", 0))
        want = 1 if values < 2**18 and work < HEAVY_STEP_FLOPS else threads
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
