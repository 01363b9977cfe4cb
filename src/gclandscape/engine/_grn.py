"""The genome: a sparse connectionist gene-regulatory ODE model on plain tensors.

For regulator genes ``x`` (expression scaled to about [0, 1]) the model is

.. math::

    \\frac{dx_i}{dt} = \\alpha_i\\, g_i(x) - \\gamma_i x_i, \\qquad
    g_i(x) = \\sigma\\Big(\\sum_h a_{ih}\\, \\sigma\\big(\\sum_j V_{ihj} u_j + c_{ih}\\big) + d_i\\Big),
    \\qquad u_j = (x_j - \\mu_j) / s_j,

with ``H`` hidden units per target gene (``V`` is a ``(G, H, G)`` tensor: target, hidden
unit, source). A source gene ``j`` regulates target ``i`` exactly when the group
``V[i, :, j]`` is non-zero: the fit (:mod:`gclandscape.engine._grn_fit`) puts a group-lasso
penalty (the "connection cost") on these groups and applies it by a proximal step, so absent
edges are exactly zero. Two hidden sigmoid layers of this size express AND, OR and NOT of
several regulators and XOR-like rules, which the single-sigmoid form
``alpha * sigmoid(W x + b) - gamma * x`` cannot.

The output weights ``a`` are kept non-negative. This costs no expressivity (a negative
weight on ``sigmoid(z)`` equals a positive one on ``sigmoid(-z)`` plus a constant absorbed in
``d``) and makes the sign of an edge through each hidden unit the sign of ``V[i, h, j]``, so a
sign prior is an exact box constraint on ``V``.

The readable signed graph is the production Jacobian ``alpha_i * d g_i / d x_j`` averaged over
observed cells (:func:`edge_scores`, :func:`edges`); it is exactly zero where the group is
zero. The decay term ``-gamma_i`` is not an edge and is left out of self-loop weights.

The model is a vector field with the engine's signature: ``model(t, x, args) -> dx/dt`` for
``x`` of shape ``(n_cells, n_genes)``; ``args`` is accepted and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._errors import GclError, GclFormatError

__all__ = [
    "FAMILY",
    "GRNModel",
    "edge_scores",
    "edges",
]

#: Name stored in serialised models so readers can dispatch on the family.
FAMILY = "connectionist_grn"
_FORMAT_VERSION = 1
#: From this many genes on, a forward pass that needs no gradient runs the faster gene-major
#: form (:meth:`GRNModel._production_gm`). Smaller models keep the plain form operation for
#: operation: a step there costs little either way, and the package's pinned results on its
#: small default genomes were computed with it.
FAST_MIN_GENES = 64


class GRNModel(nn.Module):
    """Sparse connectionist GRN ODE: ``dx/dt = alpha * g(x) - gamma * x``.

    Parameters
    ----------
    n_genes
        Number of regulator genes ``G``.
    hidden
        Hidden units per target gene ``H``.
    mask
        ``(G, G)`` boolean array of allowed edges, target × source (``mask[i, j]`` allows
        ``j -> i``). ``None`` allows every edge including self-loops.
    sign
        ``(G, G)`` array in {-1, 0, +1}: required sign of the edge ``j -> i`` (0: free).
    x_loc, x_scale
        Per-gene centre and scale used to standardise inputs (``u = (x - x_loc) / x_scale``);
        they make the group penalty comparable across source genes. Default 0 and 1.
    gamma
        Fixed degradation rates (scalar or ``(G,)``); ``None`` makes ``gamma`` trainable
        (initialised at 1).
    init_scale
        Standard deviation of the initial hidden pre-activations (``V`` is drawn so that
        ``sum_j V[i, h, j] u_j`` has this scale for standardised inputs).
    generator
        Torch generator for the random initialisation (deterministic with a seed).

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._grn import GRNModel
    >>> model = GRNModel(3, hidden=4, generator=torch.Generator().manual_seed(0))
    >>> model(0.0, torch.rand(5, 3), None).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        n_genes: int,
        *,
        hidden: int = 6,
        mask: Any = None,
        sign: Any = None,
        x_loc: Any = None,
        x_scale: Any = None,
        gamma: Any = None,
        init_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if int(n_genes) != n_genes or n_genes < 1:
            raise GclError(f"n_genes must be a positive integer, got {n_genes!r}.")
        if int(hidden) != hidden or hidden < 1:
            raise GclError(f"hidden must be a positive integer (e.g. 6), got {hidden!r}.")
        g, h = int(n_genes), int(hidden)
        self.n_genes, self.hidden = g, h
        mask_t = _square(mask, g, "mask", dtype=torch.bool, default=True)
        sign_t = _square(sign, g, "sign", dtype=torch.float32, default=0.0)
        if not torch.isin(sign_t, torch.tensor([-1.0, 0.0, 1.0])).all():
            raise GclError("sign must contain only -1, 0 and +1 (0 = sign not constrained).")
        self.register_buffer("mask", mask_t)
        self.register_buffer("sign", sign_t * mask_t)
        self.register_buffer("x_loc", _vector(x_loc, g, "x_loc", 0.0))
        scale = _vector(x_scale, g, "x_scale", 1.0)
        if not bool((scale > 0).all()):
            raise GclError("x_scale must be positive for every gene.")
        self.register_buffer("x_scale", scale)

        n_in = max(int(mask_t.sum(1).max().item()), 1)
        v = torch.randn(g, h, g, generator=generator) * (init_scale / math.sqrt(n_in))
        v = v * mask_t[:, None, :]
        # sign constraints: flip initial weights into the allowed orthant
        v = torch.where(sign_t[:, None, :] != 0, v.abs() * sign_t[:, None, :], v)
        self.V = nn.Parameter(v)
        self.c = nn.Parameter(torch.randn(g, h, generator=generator) * 0.5)
        self.a = nn.Parameter(0.5 + torch.rand(g, h, generator=generator))
        self.d = nn.Parameter(torch.zeros(g))
        self.log_alpha = nn.Parameter(torch.zeros(g))
        gamma_fixed = gamma is not None
        gam = _vector(gamma, g, "gamma", 1.0)
        if not bool((gam > 0).all()):
            raise GclError("gamma must be positive for every gene.")
        self.log_gamma = nn.Parameter(gam.log(), requires_grad=not gamma_fixed)
        #: Connection cost the model was fitted with (set by ``fit``; ``None`` if built by hand).
        self.l1: float | None = None

    # ------------------------------------------------------------------ properties
    @property
    def flops_per_value(self) -> int:
        """Floating-point operations of one evaluation per state value (cell × gene): the
        hidden layer's ``2 * H * G`` multiply-adds. :func:`~gclandscape.engine.integrate`
        reads it to decide whether a batch is worth several threads."""
        return 2 * self.hidden * self.n_genes

    @property
    def alpha(self) -> torch.Tensor:
        """Maximal production rates ``alpha_i`` (positive)."""
        return self.log_alpha.exp()

    @property
    def gamma(self) -> torch.Tensor:
        """Degradation rates ``gamma_i`` (positive)."""
        return self.log_gamma.exp()

    @property
    def gamma_fixed(self) -> bool:
        """Whether ``gamma`` is held fixed during fitting."""
        return not self.log_gamma.requires_grad

    def masked_V(self) -> torch.Tensor:
        """Input weights with disallowed edges zeroed, shape ``(G, H, G)``.

        ``V`` is kept zero outside ``mask`` (at construction, on loading and after every
        fitting step), so the forward pass uses ``V`` directly; this method is for code that
        edits ``V`` by hand.
        """
        return self.V * self.mask[:, None, :]

    def group_norms(self) -> torch.Tensor:
        """``(G, G)`` norms of the edge groups ``||V[i, :, j]||`` (target × source)."""
        return group_norm(self.masked_V().detach())

    def adjacency(self) -> torch.Tensor:
        """``(G, G)`` boolean: ``True`` where the edge ``j -> i`` exists (non-zero group)."""
        return self.group_norms() > 0

    # ------------------------------------------------------------------ forward
    def _hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden pre-activations ``z`` (N, G, H) and output logits ``s`` (N, G)."""
        g, h = self.n_genes, self.hidden
        u = (x - self.x_loc) / self.x_scale
        w = self.V.reshape(g * h, g)
        z = torch.addmm(self.c.reshape(1, g * h), u, w.T).reshape(-1, g, h)
        s = (torch.sigmoid(z) * self.a).sum(-1) + self.d
        return z, s

    def production(self, x: torch.Tensor) -> torch.Tensor:
        """Production term ``alpha_i * g_i(x)``, shape ``(N, G)``."""
        params = (self.V, self.c, self.a, self.d, self.log_alpha)
        wants_grad = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in params)
        )
        if self.n_genes >= FAST_MIN_GENES and not wants_grad:
            return self._production_gm(x.T).T
        _, s = self._hidden(x)
        return self.alpha * torch.sigmoid(s)

    def _production_gm(self, xt: torch.Tensor) -> torch.Tensor:
        """Production gene-major, ``(G, N)`` from ``(G, N)`` states, without autograd.

        Equal to :meth:`production` up to rounding: the standardisation is folded into the
        weights (cached until a parameter changes), the hidden layer is one ``addmm`` of the
        ``(G * H, G)`` weights, every pass after it is in place, and the sum over hidden units
        is a batched product. When simulating a 200-gene genome the ``(N, G, H)`` sum alone had
        cost a quarter of a step (benchmarks/README.md, "Scale").
        """
        g, h = self.n_genes, self.hidden
        key = tuple((p._version, p.data_ptr(), p.dtype) for p in (self.V, self.c, self.x_loc,
                                                                   self.x_scale))  # fmt: skip
        if getattr(self, "_fold", (None,))[0] != key:
            with torch.no_grad():
                w = (self.V / self.x_scale).reshape(g * h, g)
                self._fold = (key, w, self.c.reshape(g * h) - w @ self.x_loc)
        _, w, b = self._fold
        with torch.no_grad():
            z = torch.addmm(b[:, None], w, xt.to(w.dtype)).sigmoid_()
            s = torch.bmm(self.a[:, None, :], z.view(g, h, -1)).view(g, -1)
            return s.add_(self.d[:, None]).sigmoid_().mul_(self.alpha[:, None])

    def forward(self, t: Any, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        """Vector field ``dx/dt = alpha * g(x) - gamma * x`` (engine signature; ``t``, ``args`` unused)."""
        return self.production(x) - self.gamma * x

    def field(self, t: Any, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        """Alias of :meth:`forward` for use as ``integrate(model.field, x0, ...)``."""
        return self.forward(t, x, args)

    # ------------------------------------------------------------------ Jacobians
    def _jacobian_factors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``coef`` (N, G, H) and ``Vs`` (G, H, G) with ``dP_i/dx_j = sum_h coef[n,i,h] Vs[i,h,j]``."""
        z, s = self._hidden(x)
        sz = torch.sigmoid(z)
        ss = torch.sigmoid(s)
        coef = (self.alpha * ss * (1 - ss))[:, :, None] * (sz * (1 - sz)) * self.a
        vs = self.V / self.x_scale
        return coef, vs

    def production_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, G, G)`` Jacobian of production, ``J[n, i, j] = d(alpha_i g_i)/dx_j`` at ``x[n]``."""
        coef, vs = self._jacobian_factors(x)
        return torch.einsum("nih,ihj->nij", coef, vs)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, G, G)`` Jacobian of the vector field (production Jacobian minus ``diag(gamma)``)."""
        return self.production_jacobian(x) - torch.diag(self.gamma)

    # ------------------------------------------------------------------ edits
    def scaled(
        self,
        *,
        edges: Sequence[tuple[int, int, float]] = (),
        production: Sequence[tuple[int, float]] = (),
    ) -> GRNModel:
        """A copy with edited weights (the original is untouched).

        Parameters
        ----------
        edges
            ``(source, target, factor)`` index triples: ``V[target, :, source] *= factor``
            (0 removes the edge exactly).
        production
            ``(gene, factor)`` pairs: ``alpha[gene] *= factor`` (a knockdown).

        Examples
        --------
        >>> import torch
        >>> from gclandscape.engine._grn import GRNModel
        >>> m = GRNModel(2, hidden=2, generator=torch.Generator().manual_seed(0))
        >>> bool(m.scaled(edges=[(0, 1, 0.0)]).adjacency()[1, 0])
        False
        """
        new = GRNModel.from_dict(self.to_dict()).to(self.V.device)
        with torch.no_grad():
            for source, target, factor in edges:
                new.V[int(target), :, int(source)] *= float(factor)
            for gene, factor in production:
                if factor <= 0:
                    raise GclError(f"production factor must be positive, got {factor}.")
                new.log_alpha[int(gene)] += math.log(float(factor))
        return new

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of numpy arrays and scalars (no pickle; fits in ``AnnData.uns``).

        ``GRNModel.from_dict(model.to_dict())`` reproduces the model exactly. Readable
        ``alpha``, ``gamma`` and ``group_norm`` arrays are included for convenience and
        ignored when loading.
        """
        out: dict[str, Any] = {
            "family": FAMILY,
            "version": _FORMAT_VERSION,
            "n_genes": int(self.n_genes),
            "hidden": int(self.hidden),
            "gamma_fixed": bool(self.gamma_fixed),
        }
        for name in ("V", "c", "a", "d", "log_alpha", "log_gamma"):
            out[name] = getattr(self, name).detach().cpu().numpy().astype(np.float32, copy=True)
        out["mask"] = self.mask.cpu().numpy().astype(bool)
        out["sign"] = self.sign.cpu().numpy().astype(np.int8)
        out["x_loc"] = self.x_loc.cpu().numpy().astype(np.float32, copy=True)
        out["x_scale"] = self.x_scale.cpu().numpy().astype(np.float32, copy=True)
        out["alpha"] = self.alpha.detach().cpu().numpy().astype(np.float32)
        out["gamma"] = self.gamma.detach().cpu().numpy().astype(np.float32)
        out["group_norm"] = self.group_norms().cpu().numpy().astype(np.float32)
        if self.l1 is not None:
            out["l1"] = float(self.l1)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GRNModel:
        """Rebuild a model written by :meth:`to_dict` (exact round-trip).

        Examples
        --------
        >>> import torch
        >>> from gclandscape.engine._grn import GRNModel
        >>> m = GRNModel(3, hidden=2, generator=torch.Generator().manual_seed(0))
        >>> m2 = GRNModel.from_dict(m.to_dict())
        >>> x = torch.rand(4, 3)
        >>> bool(torch.equal(m(0, x), m2(0, x)))
        True
        """
        required = ("n_genes", "hidden", "V", "c", "a", "d", "log_alpha", "log_gamma")
        missing = [k for k in required if k not in d]
        if missing:
            raise GclFormatError(
                f"not a serialised GRN model: keys {missing} are missing "
                "(expected the dict written by GRNModel.to_dict())."
            )
        family = str(d.get("family", FAMILY))
        if family != FAMILY:
            raise GclFormatError(f"model family {family!r} is not {FAMILY!r}.")
        g, h = int(d["n_genes"]), int(d["hidden"])
        model = cls(
            g,
            hidden=h,
            mask=np.asarray(d.get("mask", np.ones((g, g), bool))),
            sign=np.asarray(d.get("sign", np.zeros((g, g)))),
            x_loc=np.asarray(d.get("x_loc", np.zeros(g))),
            x_scale=np.asarray(d.get("x_scale", np.ones(g))),
            generator=torch.Generator().manual_seed(
                0
            ),  # overwritten below; keeps global RNG untouched
        )
        shapes = {
            "V": (g, h, g),
            "c": (g, h),
            "a": (g, h),
            "d": (g,),
            "log_alpha": (g,),
            "log_gamma": (g,),
        }
        with torch.no_grad():
            for name, shape in shapes.items():
                arr = np.asarray(d[name], dtype=np.float32)
                if arr.shape != shape:
                    raise GclFormatError(
                        f"serialised GRN model: {name} has shape {arr.shape}, expected {shape}."
                    )
                getattr(model, name).copy_(torch.from_numpy(arr.copy()))
            if bool((model.V * ~model.mask[:, None, :]).any()):
                raise GclFormatError("serialised GRN model: V is non-zero outside its mask.")
        model.log_gamma.requires_grad_(not bool(d.get("gamma_fixed", False)))
        model.l1 = float(d["l1"]) if d.get("l1") is not None else None
        return model


def group_norm(v: torch.Tensor) -> torch.Tensor:
    """``(G, G)`` Euclidean norms over the hidden axis of a ``(G, H, G)`` weight tensor.

    ``sqrt(sum of squares)`` along axis 1 is several times faster on CPU than
    ``torch.linalg.vector_norm(v, dim=1)`` for this strided reduction.
    """
    return v.square().sum(1).sqrt()


# ---------------------------------------------------------------------- edge scores
def edge_scores(
    model: GRNModel,
    x: Any,
    *,
    weights: Any = None,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-edge scores of a fitted model over observed cells, each ``(G, G)`` target × source.

    Parameters
    ----------
    model
        A :class:`GRNModel`.
    x
        ``(n_cells, G)`` states at which the Jacobian is averaged.
    weights
        Optional non-negative cell weights.
    chunk_size
        Cells per chunk for the mean absolute Jacobian (bounded memory); default keeps each
        chunk's ``(n, G, G)`` block near 16 M numbers.

    Returns
    -------
    dict with ``weight`` (mean production Jacobian ``alpha_i dg_i/dx_j``), ``abs_jacobian``
    (mean of its absolute value) and ``group_norm`` (``||V[i, :, j]|| / x_scale_j``). All three
    are exactly zero where the edge group is zero.

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._grn import GRNModel, edge_scores
    >>> m = GRNModel(3, hidden=2, generator=torch.Generator().manual_seed(0))
    >>> sorted(edge_scores(m, torch.rand(20, 3)))
    ['abs_jacobian', 'group_norm', 'weight']
    """
    xt = _as_float_tensor(x, "x", device=model.V.device)
    if xt.ndim != 2 or xt.shape[1] != model.n_genes:
        raise GclError(
            f"x must have shape (n_cells, {model.n_genes}) to match the model, got {tuple(xt.shape)}."
        )
    n, g = xt.shape
    if weights is None:
        w = torch.full((n,), 1.0 / n, device=xt.device)
    else:
        w = _as_float_tensor(weights, "weights", device=xt.device).reshape(-1)
        if w.shape[0] != n or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise GclError("weights must be n_cells non-negative numbers with a positive sum.")
        w = w / w.sum()
    if chunk_size is None:
        chunk_size = max(1, 16_000_000 // max(g * g, 1))
    mean_j = torch.zeros(g, g, device=xt.device)
    mean_abs = torch.zeros(g, g, device=xt.device)
    with torch.no_grad():
        for start in range(0, n, chunk_size):
            sl = slice(start, start + chunk_size)
            coef, vs = model._jacobian_factors(xt[sl])
            coef = coef * w[sl, None, None]
            mean_j += torch.einsum("nih,ihj->ij", coef, vs)
            jac = torch.einsum("nih,ihj->nij", coef, vs)
            mean_abs += jac.abs().sum(0)
        group = model.group_norms() / model.x_scale
    zero = ~model.adjacency()
    mean_j[zero] = 0.0
    mean_abs[zero] = 0.0
    return {
        "weight": mean_j.cpu().numpy().astype(np.float64),
        "abs_jacobian": mean_abs.cpu().numpy().astype(np.float64),
        "group_norm": group.cpu().numpy().astype(np.float64),
    }


def edges(
    model: GRNModel,
    x: Any,
    genes: Sequence[str] | None = None,
    *,
    weights: Any = None,
    confidence: Any = None,
    include_zero: bool = False,
):
    """Tidy edge table of a fitted model, sorted by ``|weight|`` (strongest first).

    Parameters
    ----------
    model
        A fitted :class:`GRNModel`.
    x
        ``(n_cells, G)`` observed states; the Jacobian is averaged over them.
    genes
        ``G`` gene names (default ``"g0"``, ``"g1"``, ...).
    weights
        Optional cell weights for the average.
    confidence
        Optional ``(G, G)`` target × source selection frequencies from
        :func:`~gclandscape.engine._grn_bootstrap.bootstrap_confidence`; adds a ``confidence``
        column.
    include_zero
        Also list allowed edges whose group is exactly zero (weight 0).

    Returns
    -------
    pandas.DataFrame with columns ``source``, ``target``, ``weight`` (mean Jacobian
    ``d production_target / d source``), ``abs_jacobian`` (mean absolute Jacobian),
    ``group_norm``, ``sign`` (-1, 0 or +1, from ``weight``) and, when given, ``confidence``.
    Self-loops appear when the model has them; their weight excludes the decay ``-gamma``.

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._grn import GRNModel, edges
    >>> m = GRNModel(3, hidden=2, generator=torch.Generator().manual_seed(0))
    >>> list(edges(m, torch.rand(20, 3), ["A", "B", "C"]).columns)
    ['source', 'target', 'weight', 'abs_jacobian', 'group_norm', 'sign']
    """
    import pandas as pd

    g = model.n_genes
    if genes is None:
        genes = [f"g{i}" for i in range(g)]
    genes = [str(s) for s in genes]
    if len(genes) != g:
        raise GclError(f"genes has {len(genes)} names but the model has {g} genes.")
    scores = edge_scores(model, x, weights=weights)
    keep = model.mask.cpu().numpy() if include_zero else model.adjacency().cpu().numpy()
    tgt, src = np.nonzero(keep)
    weight = scores["weight"][tgt, src]
    frame = pd.DataFrame(
        {
            "source": np.asarray(genes, dtype=object)[src],
            "target": np.asarray(genes, dtype=object)[tgt],
            "weight": weight,
            "abs_jacobian": scores["abs_jacobian"][tgt, src],
            "group_norm": scores["group_norm"][tgt, src],
            "sign": np.sign(weight).astype(np.int8),
        }
    )
    if confidence is not None:
        conf = np.asarray(confidence, dtype=float)
        if conf.shape != (g, g):
            raise GclError(
                f"confidence must be a ({g}, {g}) target × source array, got {conf.shape}."
            )
        frame["confidence"] = conf[tgt, src]
    order = np.argsort(-np.abs(frame["weight"].to_numpy()), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


# ---------------------------------------------------------------------- helpers
def _as_float_tensor(x: Any, name: str, *, device: Any = "cpu") -> torch.Tensor:
    """Convert array-likes (numpy, torch, scipy sparse, lists) to a float32 tensor."""
    if x is None:
        raise GclError(f"{name} is None; pass an array.")
    if hasattr(x, "toarray") and not isinstance(x, np.ndarray | torch.Tensor):
        x = x.toarray()
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device=device, dtype=torch.float32)
    else:
        try:
            arr = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise GclError(f"{name} must be a numeric array: {err}") from None
        t = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)).to(device)
    return t


def _square(value: Any, g: int, name: str, *, dtype: torch.dtype, default: Any) -> torch.Tensor:
    if value is None:
        return torch.full((g, g), default, dtype=dtype)
    t = torch.as_tensor(np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value))
    if t.shape != (g, g):
        raise GclError(
            f"{name} must be a ({g}, {g}) target × source array, got shape {tuple(t.shape)}."
        )
    if dtype == torch.bool:
        return t != 0
    t = t.to(dtype)
    if not bool(torch.isfinite(t).all()):
        raise GclError(f"{name} contains NaN or infinite values.")
    return t


def _vector(value: Any, g: int, name: str, default: float) -> torch.Tensor:
    if value is None:
        return torch.full((g,), float(default))
    t = torch.as_tensor(
        np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
    )
    if t.ndim == 0:
        t = t.expand(g).clone()
    if t.shape != (g,):
        raise GclError(f"{name} must be a scalar or have shape ({g},), got {tuple(t.shape)}.")
    if not bool(torch.isfinite(t).all()):
        raise GclError(f"{name} contains NaN or infinite values.")
    return t.to(torch.float32)
