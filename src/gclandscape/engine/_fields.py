"""Vector-field families with one call signature, ``field(t, x, args) -> dx/dt``.

``x`` is a ``(n_cells, n_genes)`` tensor; every family evaluates all cells at once with a few
tensor operations (no Python loop over cells or genes). ``args`` is ``None`` or a mapping that
overrides parameters for this call, e.g. ``{"alpha": per_cell_alpha}`` with shape
``(n_cells, n_genes)`` so a batch can mix wild-type and knocked-down cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._errors import GclError

__all__ = ["BooleanHillField", "ClampedField", "LinearField", "SigmoidField"]

_BLAS_DTYPES = (torch.float32, torch.float64)


def _as_param(value: Any, n: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(
        np.asarray(value, dtype=np.float64) if not torch.is_tensor(value) else value
    )
    t = t.to(torch.float64) if not t.is_floating_point() else t
    if t.ndim == 0:
        t = t.expand(n).clone()
    if t.shape != (n,):
        raise GclError(
            f"{name} must be a scalar or a vector of length {n}; got shape {tuple(t.shape)}."
        )
    return t


class _Field:
    """Base: parameters are cast once per (dtype, device) and cached."""

    n_genes: int

    def __init__(self) -> None:
        self._cache: dict[tuple[torch.dtype, torch.device], dict[str, torch.Tensor]] = {}

    def _params(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameters as tensors on ``like``'s dtype and device."""
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = {
                k: v.to(dtype=like.dtype if v.is_floating_point() else v.dtype, device=like.device)
                for k, v in self._params().items()
            }
        return self._cache[key]

    @staticmethod
    def _override(p: dict[str, torch.Tensor], args: Any, x: torch.Tensor) -> dict[str, Any]:
        if args is None:
            return p
        if not isinstance(args, Mapping):
            raise GclError(
                f"args must be None or a mapping of parameter overrides; got {type(args).__name__}."
            )
        out: dict[str, Any] = dict(p)
        for k, v in args.items():
            if k not in p:
                raise GclError(f"unknown parameter {k!r} in args; known: {sorted(p)}.")
            out[k] = torch.as_tensor(v, dtype=x.dtype, device=x.device)
        return out

    def __call__(
        self, t: float, x: torch.Tensor, args: Any = None
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class LinearField(_Field):
    """``dx/dt = A x + c`` (a test problem with an exact solution).

    Examples
    --------
    >>> import torch
    >>> f = LinearField([[-1.0, 0.0], [0.0, -2.0]])
    >>> f(0.0, torch.ones(1, 2)).tolist()
    [[-1.0, -2.0]]
    """

    def __init__(self, A: Any, c: Any = 0.0) -> None:
        super().__init__()
        self.A = torch.as_tensor(np.asarray(A, dtype=np.float64))
        if self.A.ndim != 2 or self.A.shape[0] != self.A.shape[1]:
            raise GclError(f"A must be a square matrix; got shape {tuple(self.A.shape)}.")
        self.n_genes = self.A.shape[0]
        self.c = _as_param(c, self.n_genes, "c")

    def _params(self) -> dict[str, torch.Tensor]:
        return {"A": self.A, "c": self.c}

    def __call__(self, t: float, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        p = self._override(self.params(x), args, x)
        return x @ p["A"].T + p["c"]


class SigmoidField(_Field):
    """Single-sigmoid GRN: ``dx/dt = alpha * sigmoid(x W^T + b) - gamma * x``.

    Parameters
    ----------
    W
        ``(n_genes, n_genes)`` weights, ``W[i, j]`` = effect of gene ``j`` on gene ``i``
        (target × source).
    b, alpha, gamma
        Bias, maximal production and degradation; scalars or per-gene vectors.

    Examples
    --------
    >>> import torch
    >>> f = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)  # toggle switch
    >>> f(0.0, torch.tensor([[1.0, 0.0]])).shape
    torch.Size([1, 2])
    """

    def __init__(self, W: Any, b: Any = 0.0, alpha: Any = 1.0, gamma: Any = 1.0) -> None:
        super().__init__()
        self.W = torch.as_tensor(np.asarray(W, dtype=np.float64)) if not torch.is_tensor(W) else W
        if self.W.ndim != 2 or self.W.shape[0] != self.W.shape[1]:
            raise GclError(
                f"W must be a square (target × source) matrix; got shape {tuple(self.W.shape)}."
            )
        self.n_genes = int(self.W.shape[0])
        self.b = _as_param(b, self.n_genes, "b")
        self.alpha = _as_param(alpha, self.n_genes, "alpha")
        self.gamma = _as_param(gamma, self.n_genes, "gamma")

    def _params(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "b": self.b, "alpha": self.alpha, "gamma": self.gamma}

    def __call__(self, t: float, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        p = self._override(self.params(x), args, x)
        # one (n_genes × n_genes) @ (n_genes × n_cells) product, gene-major
        z = torch.addmm(p["b"][:, None], p["W"], x.T)
        return p["alpha"] * torch.sigmoid(z).T - p["gamma"] * x

    def _drift_gm(
        self,
        t: float,
        xt: torch.Tensor,
        args: Any,
        out: torch.Tensor,
        work: torch.Tensor | None,
        *,
        exact: bool = True,
        blas: str = "numpy",
    ) -> None:
        """The drift written gene-major into ``out`` (``(n_genes, n_cells)``), no allocation.

        ``xt`` is the gene-major state and ``work`` a scratch buffer of its shape (used only
        with ``exact``; may be ``None`` without it). With ``exact`` the values equal
        ``self(t, xt.T, args).T`` operation for operation; without it, on the CPU, the
        product runs through the BLAS named by ``blas`` (``"numpy"``: call it inside
        ``threadpool_limits``; ``"torch"``) and the decay is subtracted in one fused pass
        (``addcmul``): equal up to rounding. Used by :func:`~gclandscape.engine.integrate`.
        """
        p = self._override(self.params(xt), args, xt)
        numpy_blas = blas == "numpy" and xt.device.type == "cpu" and xt.dtype in _BLAS_DTYPES
        if not exact and numpy_blas and p["W"].ndim == 2:
            # the caller measured numpy's BLAS the faster here (engine/_blas_choice.py) and
            # limits it to one thread per worker
            np.matmul(p["W"].detach().numpy(), xt.numpy(), out=out.numpy())
            out.add_(_gene_major(p["b"]))
        else:
            torch.addmm(_gene_major(p["b"]), p["W"], xt, out=out)
        out.sigmoid_()
        out.mul_(_gene_major(p["alpha"]))
        if exact:
            torch.mul(xt, _gene_major(p["gamma"]), out=work)
            out.sub_(work)
        else:
            out.addcmul_(xt, _gene_major(p["gamma"]), value=-1.0)


def _gene_major(v: torch.Tensor) -> torch.Tensor:
    """A parameter (scalar, per-gene vector or per-cell ``(n_cells, n_genes)`` array) laid
    out to broadcast against a gene-major ``(n_genes, n_cells)`` state."""
    if v.ndim == 1:
        return v[:, None]
    return v.T if v.ndim == 2 else v


class BooleanHillField(_Field):
    """Soft Boolean logic with Hill-function inputs, compiled once into tensor operations.

    For gene ``i`` with rule ``R_i``: ``dx_i/dt = alpha_i * R_i(h(x)) - gamma_i * x_i`` where
    ``h(x_j) = x_j^n / (k^n + x_j^n)`` and the logic is continuous: ``not a = 1 - a``,
    ``a and b = a * b``, ``a or b = 1 - (1 - a)(1 - b)``. Genes without a rule (inputs) have
    ``dx/dt = 0`` and keep their initial level.

    The rule trees are compiled into levels; each level is one matrix product of the
    log-values of all literals with a 0/1 incidence matrix (a product of literals is
    ``exp(sum log)``), so a step costs a handful of matrix products for all cells, whatever
    the number of genes.

    Parameters
    ----------
    genes
        Gene names (the columns of ``x``).
    rules
        Gene → expression tree or ``None`` (input). Nodes follow the protocol of
        :mod:`gclandscape.datasets._rules`: ``op`` in ``var``/``const``/``not``/``and``/``or``
        with ``name``, ``value`` or ``args``.
    hill, threshold
        Hill coefficient ``n`` and threshold ``k``, scalars or per-source-gene vectors.
    alpha, gamma
        Production and degradation rates, scalars or per-gene vectors (input genes get 0).

    Examples
    --------
    >>> import torch
    >>> from gclandscape.datasets._rules import parse_rules
    >>> net = parse_rules("A = not B\\nB = not A")
    >>> f = BooleanHillField.from_network(net)
    >>> [round(v, 3) for v in f(0.0, torch.tensor([[1.0, 0.0]]))[0].tolist()]  # 1 - h(1) for B
    [0.0, 0.059]
    """

    def __init__(
        self,
        genes: Sequence[str],
        rules: Mapping[str, Any],
        *,
        hill: Any = 4.0,
        threshold: Any = 0.5,
        alpha: Any = 1.0,
        gamma: Any = 1.0,
    ) -> None:
        super().__init__()
        self.genes = tuple(genes)
        self.n_genes = len(self.genes)
        index = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in self.genes if g not in rules]
        if missing:
            raise GclError(
                f"no rule for genes {missing}; give a rule (or None for inputs) for every gene."
            )
        G = self.n_genes
        self.hill = _as_param(hill, G, "hill")
        self.threshold = _as_param(threshold, G, "threshold")
        if (self.threshold <= 0).any() or (self.hill <= 0).any():
            raise GclError("hill and threshold must be positive.")
        is_input = torch.tensor([rules[g] is None for g in self.genes])
        self.is_input = is_input
        self.alpha = torch.where(is_input, 0.0, _as_param(alpha, G, "alpha"))
        self.gamma = torch.where(is_input, 0.0, _as_param(gamma, G, "gamma"))

        # Node table, gene-major: rows 0..G-1 are the Hill inputs h(x_j), row G is the
        # constant 1, AND nodes follow level by level. An OR is an AND with negated inputs and
        # a negated output, a NOT only flips a literal, so every internal node is a product.
        self._one = G
        nodes: list[tuple[list[tuple[int, bool]], int]] = []  # (literals, level)
        level_of = [0] * (G + 1)

        def lit(e: Any) -> tuple[int, bool]:
            op = getattr(e, "op", None)
            if op == "var":
                if e.name not in index:
                    raise GclError(f"a rule uses gene {e.name!r}, which is not in genes.")
                return index[e.name], False
            if op == "const":
                return self._one, not bool(e.value)
            if op == "not":
                i, neg = lit(e.args[0])
                return i, not neg
            if op in ("and", "or"):
                lits = [lit(a) for a in e.args]
                if op == "or":  # a or b = not (not a and not b)
                    lits = [(i, not neg) for i, neg in lits]
                lvl = 1 + max(level_of[i] for i, _ in lits)
                nodes.append((lits, lvl))
                level_of.append(lvl)
                return len(level_of) - 1, op == "or"
            raise GclError(f"cannot compile rule node {e!r}; expected var/const/not/and/or nodes.")

        roots = [lit(rules[g]) if rules[g] is not None else (self._one, True) for g in self.genes]
        n_levels = max((lvl for _, lvl in nodes), default=0)
        new_index = {i: i for i in range(G + 1)}
        # per level: indices into cat([V, 1 - V]) of shape (m * width), padded with the row "1"
        self._levels: list[torch.Tensor] = []
        self._widths: list[int] = []
        n_done = G + 1
        for lvl in range(1, n_levels + 1):
            members = [(G + 1 + k, lits) for k, (lits, lv) in enumerate(nodes) if lv == lvl]
            width = max(len(lits) for _, lits in members)
            idx = torch.full((len(members), width), self._one, dtype=torch.long)
            for row, (node, lits) in enumerate(members):
                for col, (i, neg) in enumerate(lits):
                    idx[row, col] = new_index[i] + (n_done if neg else 0)
                new_index[node] = n_done + row
            self._levels.append(idx.reshape(-1))
            self._widths.append(width)
            n_done += len(members)
        self.n_nodes = n_done
        self._root = torch.tensor(
            [new_index[i] + (n_done if neg else 0) for i, neg in roots], dtype=torch.long
        )
        self._int_hill = (
            int(self.hill[0])
            if bool((self.hill == self.hill.round()).all() and (self.hill == self.hill[0]).all())
            else None
        )

    @classmethod
    def from_network(cls, network: Any, **kwargs: Any) -> BooleanHillField:
        """Build from any object with ``genes`` and ``rules`` (a ``BooleanNetwork``)."""
        return cls(network.genes, network.rules, **kwargs)

    def _params(self) -> dict[str, torch.Tensor]:
        p = {
            "hill": self.hill,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "root": self._root,
        }
        p.update({f"level{i}": m for i, m in enumerate(self._levels)})
        return p

    def production(self, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        """The soft-logic value of each gene's rule, in [0, 1] (before ``alpha``)."""
        p = self._override(self.params(x), args, x)
        xt = x.T.clamp_min(0.0)  # gene-major (n_genes, n_cells): row gathers are memcpy
        n_cells = xt.shape[1]
        if self._int_hill is not None and "hill" not in (args or {}):
            xn = _int_power(xt, self._int_hill)
        else:
            xn = xt ** p["hill"][:, None]
        kn = (p["threshold"] ** p["hill"])[:, None]
        v = torch.cat([xn / (kn + xn), torch.ones_like(xt[:1])], dim=0)
        for i, width in enumerate(self._widths):
            lits = torch.cat([v, 1.0 - v], dim=0).index_select(0, p[f"level{i}"])
            v = torch.cat([v, lits.view(-1, width, n_cells).prod(dim=1)], dim=0)
        return torch.cat([v, 1.0 - v], dim=0).index_select(0, p["root"]).T

    def __call__(self, t: float, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        p = self._override(self.params(x), args, x)
        return p["alpha"] * self.production(x, args) - p["gamma"] * x


def _int_power(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x ** n`` for a positive integer ``n`` by repeated squaring (much faster than pow)."""
    out = None
    base = x
    while n:
        if n & 1:
            out = base if out is None else out * base
        n >>= 1
        if n:
            base = base * base
    return out


class ClampedField(torch.nn.Module):
    """A vector field whose clamped genes do not move: ``dx_i/dt = 0`` for ``i`` in ``genes``.

    Wraps any engine field (an overexpressed gene is held at its level, so the fixed points
    of a clamped genome are those of this field). It is a ``torch.nn.Module`` that holds a
    module field as a child, so ``.to(torch.float64)`` (the fixed-point search's float64
    copy) converts the wrapped model too.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt`` on ``(n, n_genes)`` tensors.
    genes
        Indices of the clamped genes.
    n_genes
        Number of genes of the field.

    Examples
    --------
    >>> import torch
    >>> f = ClampedField(LinearField([[-1.0, 0.0], [0.0, -1.0]]), [1], 2)
    >>> f(0.0, torch.ones(1, 2)).tolist()
    [[-1.0, -0.0]]
    """

    def __init__(self, field: Any, genes: Sequence[int] | np.ndarray, n_genes: int) -> None:
        super().__init__()
        self.base = field if isinstance(field, torch.nn.Module) else None
        self.plain = None if self.base is not None else field
        self.flops_per_value = getattr(field, "flops_per_value", 0)  # integrate's threads
        keep = torch.ones(int(n_genes), dtype=torch.float64)
        keep[torch.as_tensor(np.asarray(genes, dtype=np.int64))] = 0.0
        self.register_buffer("keep", keep)

    def forward(self, t: float, x: torch.Tensor, args: Any = None) -> torch.Tensor:
        """``dx/dt`` of the wrapped field with the clamped genes' entries set to zero."""
        f = (self.base if self.base is not None else self.plain)(t, x, args)
        return f * self.keep.to(device=f.device, dtype=f.dtype)
