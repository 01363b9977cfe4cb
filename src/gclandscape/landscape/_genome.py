"""The genome: a GRN ODE model over named regulator genes, with edits and storage.

A :class:`Genome` is either built by hand (the single-sigmoid family
``dx/dt = alpha * sigmoid(W x + b) - gamma * x``, e.g. a textbook toggle switch or a published
network) or fitted by :func:`~gclandscape.landscape.fit_grn` (the sparse connectionist family
of :mod:`gclandscape.engine._grn`). Both sit behind the engine's one vector-field signature
``field(t, x, args)``, so developing, editing and analysing a genome never depends on how it
was obtained.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._defaults import DT, NOISE
from .._errors import GclError, GclFormatError
from .._keys import Key

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ._perturbations import Perturbation

SIGMOID = "sigmoid"
CONNECTIONIST = "connectionist"
_FORMAT = 1


def _vec(value: Any, n: int, name: str, default: float) -> np.ndarray:
    if value is None:
        return np.full(n, default, dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise GclError(
            f"{name} must be a scalar or have one value per gene ({n}), got {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise GclError(f"{name} has NaN or infinite values.")
    return arr


class Genome:
    """A gene-regulatory ODE model over named genes: the genome as a generative model.

    Parameters
    ----------
    genes
        Gene names (the model's coordinates).
    W
        Target × source weight matrix (array or DataFrame indexed by ``genes``). For a
        hand-built genome it parametrises ``dx/dt = alpha * sigmoid(W x + b) - gamma * x``.
    b, alpha, gamma
        Bias, maximal production and degradation rate per gene (scalars broadcast; defaults
        0, 1, 1).
    noise
        Standard deviation of the additive noise per unit time used by :meth:`develop`
        (scalar or per gene; default 0.05).

    Examples
    --------
    A textbook toggle switch: two genes that repress each other.

    >>> import gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> toggle.edges()[["source", "target", "weight"]].to_numpy().tolist()
    [['B', 'A', -10.0], ['A', 'B', -10.0]]
    >>> fp = toggle.fixed_points()
    >>> sorted(fp["type"].tolist())
    ['saddle', 'stable', 'stable']
    """

    def __init__(
        self,
        genes: Sequence[str],
        W: Any,
        *,
        b: Any = None,
        alpha: Any = None,
        gamma: Any = None,
        noise: Any = None,
    ):
        genes = [str(g) for g in genes]
        if not genes:
            raise GclError("A genome needs at least one gene.")
        if len(set(genes)) != len(genes):
            dup = sorted({g for g in genes if genes.count(g) > 1})
            raise GclError(f"Gene names must be unique; duplicated: {', '.join(dup)}.")
        n = len(genes)
        if isinstance(W, pd.DataFrame):
            missing = [g for g in genes if g not in W.index or g not in W.columns]
            if missing:
                raise GclError(f"W (DataFrame) lacks rows/columns for genes: {missing[:10]}.")
            W = W.loc[genes, genes].to_numpy()
        W = np.asarray(W, dtype=np.float64)
        if W.shape != (n, n):
            raise GclError(f"W must be target × source of shape ({n}, {n}), got {W.shape}.")
        if not np.isfinite(W).all():
            raise GclError("W has NaN or infinite values.")
        self._init(
            genes,
            kind=SIGMOID,
            W=W,
            b=_vec(b, n, "b", 0.0),
            alpha=_vec(alpha, n, "alpha", 1.0),
            gamma=_vec(gamma, n, "gamma", 1.0),
            noise=_vec(noise, n, "noise", NOISE),
        )

    # ------------------------------------------------------------------ construction
    def _init(
        self,
        genes: list[str],
        *,
        kind: str,
        W: np.ndarray,
        gamma: np.ndarray,
        noise: np.ndarray,
        b: np.ndarray | None = None,
        alpha: np.ndarray | None = None,
        model: dict | None = None,
        confidence: np.ndarray | None = None,
        x_max: np.ndarray | None = None,
        production: np.ndarray | None = None,
        clamp: dict[str, float] | None = None,
        edits: Sequence[str] = (),
        info: dict | None = None,
    ) -> None:
        n = len(genes)
        self.genes = list(genes)
        self.kind = kind
        self._W = np.asarray(W, dtype=np.float64)
        self._b = b
        self._alpha = alpha
        self.gamma = np.asarray(gamma, dtype=np.float64)
        self.noise = np.asarray(noise, dtype=np.float64)
        self._model = model
        self.confidence = confidence
        if x_max is None:
            # the highest level the genes can reach: maximal production over degradation
            if kind == SIGMOID:
                x_max = alpha / gamma
            else:
                x_max = np.asarray(model["alpha"], dtype=np.float64) / self.gamma
        self.x_max = np.asarray(x_max, dtype=np.float64)
        self.production = np.ones(n) if production is None else np.asarray(production, float)
        self.clamp = dict(clamp or {})
        self.edits = list(edits)
        self.info = dict(info or {})
        # the other members of an ensemble (fit_grn(n_genomes=K)); this genome is member 0
        self._others: list[Genome] = []

    @classmethod
    def _from_model(
        cls,
        genes: Sequence[str],
        model: dict,
        *,
        W: np.ndarray,
        noise: Any,
        x_max: np.ndarray,
        confidence: np.ndarray | None = None,
        info: dict | None = None,
    ) -> Genome:
        """A fitted connectionist genome (used by :func:`fit_grn`)."""
        self = cls.__new__(cls)
        genes = [str(g) for g in genes]
        self._init(
            genes,
            kind=CONNECTIONIST,
            W=W,
            gamma=np.asarray(model["gamma"], dtype=np.float64),
            noise=_vec(noise, len(genes), "noise", NOISE),
            model=model,
            confidence=confidence,
            x_max=x_max,
            info=info,
        )
        return self

    # ------------------------------------------------------------------ views
    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return len(self.genes)

    @property
    def W(self) -> pd.DataFrame:
        """Signed regulation strengths, target × source (for a fitted genome: the production
        Jacobian averaged over the observed cells)."""
        return pd.DataFrame(self._W, index=self.genes, columns=self.genes)

    def edges(self, *, include_zero: bool = False) -> pd.DataFrame:
        """Tidy edge table sorted by ``|weight|``: ``source``, ``target``, ``weight``, ``sign``
        (and ``confidence`` for fitted genomes with a bootstrap).

        Examples
        --------
        >>> import gclandscape as gcl
        >>> g = gcl.landscape.Genome(["A", "B"], [[0, 2.0], [0, 0]])
        >>> g.edges()[["source", "target", "weight"]].values.tolist()
        [['B', 'A', 2.0]]
        """
        from ._members import edge_table

        keep = np.ones_like(self._W, dtype=bool) if include_zero else self._W != 0
        return edge_table(self.genes, self._W, keep, confidence=self.confidence)

    def __repr__(self) -> str:
        n_edges = int(np.count_nonzero(self._W))
        edits = f", edits: {'; '.join(self.edits)}" if self.edits else ""
        members = f", {self.n_members} members" if self._others else ""
        return f"Genome({self.kind}, {self.n_genes} genes, {n_edges} edges{members}{edits})"

    # ------------------------------------------------------------------ ensemble
    @classmethod
    def ensemble(cls, members: Sequence[Genome]) -> Genome:
        """One genome holding several members (the first acts as the genome).

        Examples
        --------
        >>> import gclandscape as gcl
        >>> a = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
        >>> b = gcl.landscape.Genome(["A", "B"], [[0, -10], [0, 0]], b=5.0)
        >>> ens = gcl.landscape.Genome.ensemble([a, b])
        >>> ens.n_members, [float(m.W.iloc[1, 0]) for m in ens]
        (2, [-10.0, 0.0])
        """
        from ._members import check_members

        members = list(members)
        check_members(members)
        new = copy.copy(members[0])
        new._others = [copy.copy(m) for m in members[1:]]
        return new

    @property
    def n_members(self) -> int:
        """Number of member genomes (1 unless ``fit_grn(n_genomes=K)`` fitted an ensemble)."""
        return 1 + len(self._others)

    def member(self, i: int) -> Genome:
        """Member ``i`` as a single genome; member 0 is this genome itself.

        Examples
        --------
        >>> import gclandscape as gcl
        >>> g = gcl.landscape.Genome(["A"], [[0.0]])
        >>> g.n_members, g.member(0) is g
        (1, True)
        """
        if int(i) != i or not -self.n_members <= i < self.n_members:
            raise GclError(f"member {i!r} does not exist: the genome has {self.n_members}.")
        if int(i) % self.n_members > 0:
            return self._others[int(i) % self.n_members - 1]
        first = copy.copy(self) if self._others else self
        first._others = []
        return first

    def __iter__(self) -> Iterator[Genome]:
        """The members, first to last (one, itself, for a single genome)."""
        return (self.member(i) for i in range(self.n_members))

    # ------------------------------------------------------------------ dynamics
    def field(self, *, device: Any = None):
        """The vector field ``f(t, x, args) -> dx/dt`` (engine signature), edits included.

        Examples
        --------
        >>> import torch, gclandscape as gcl
        >>> g = gcl.landscape.Genome(["A"], [[0.0]], b=0.0, alpha=2.0, gamma=1.0)
        >>> float(g.field()(0.0, torch.zeros(1, 1))[0, 0])
        1.0
        """

        from ..engine import GRNModel, SigmoidField

        if self.kind == SIGMOID:
            base = SigmoidField(self._W, b=self._b, alpha=self._alpha, gamma=self.gamma)
        else:
            base = GRNModel.from_dict(self._model)
            base.requires_grad_(False)
        if device is not None:
            base = base.to(device) if hasattr(base, "to") else base
        if np.all(self.production == 1.0):
            return base
        from ._edited_fields import edited_field

        return edited_field(base, self.gamma, self.production)

    def _clamp(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.clamp:
            return None
        idx = np.array([self.genes.index(g) for g in self.clamp], dtype=np.int64)
        return idx, np.array(list(self.clamp.values()), dtype=np.float64)

    def _states(self, x0: Any) -> np.ndarray:
        if isinstance(x0, pd.DataFrame):
            missing = [g for g in self.genes if g not in x0.columns]
            if missing:
                raise GclError(f"x0 lacks columns for genes {missing[:10]}.")
            x0 = x0[self.genes].to_numpy()
        x = np.asarray(x0, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_genes:
            raise GclError(
                f"x0 must have one column per gene ({self.n_genes}), got shape {x.shape}."
            )
        if not np.isfinite(x).all():
            raise GclError("x0 has NaN or infinite values.")
        return x

    def develop(
        self,
        x0: Any,
        *,
        t_max: float = 50.0,
        dt: float = DT,
        noise: Any = None,
        seed: int = 0,
        n_save: int | None = None,
        device: Any = None,
    ):
        """Develop cells from ``x0``: integrate the genome's SDE (batched Euler–Maruyama).

        Parameters
        ----------
        x0
            ``(n_cells, n_genes)`` start states (array or DataFrame with gene columns).
        t_max, dt
            Simulated time and step.
        noise
            Noise standard deviation per unit time (scalar or per gene); default the genome's.
            ``0`` integrates deterministically.
        seed
            Seed of the noise (the same seed gives the same trajectories).
        n_save
            Also return this many evenly spaced snapshots.
        device
            ``"cpu"``, ``"cuda"`` or ``None`` (CPU).

        Returns
        -------
        End states ``(n_cells, n_genes)``; with ``n_save``, a tuple ``(end, times, snapshots)``
        with snapshots of shape ``(n_save, n_cells, n_genes)``.

        Examples
        --------
        >>> import gclandscape as gcl
        >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
        >>> end = toggle.develop([[0.9, 0.1], [0.1, 0.9]], noise=0.0)
        >>> (end[:, 0] > 0.9).tolist()
        [True, False]
        """
        from ..engine import integrate

        x = self._states(x0)
        sigma = self.noise if noise is None else _vec(noise, self.n_genes, "noise", 0.0)
        sol = integrate(
            self.field(),
            x.astype(np.float32),
            t_max=t_max,
            dt=dt,
            noise=sigma if np.any(sigma) else 0.0,
            seed=seed,
            clamp=self._clamp(),
            n_save=n_save,
            device=device,
        )
        end = sol.x.detach().cpu().numpy().astype(np.float64)
        if n_save is None:
            return end
        return end, sol.ts.cpu().numpy(), sol.xs.detach().cpu().numpy().astype(np.float64)

    def fixed_points(
        self,
        *,
        n_starts: int = 200,
        starts: Any = None,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Fixed points of the genome's vector field from the genome alone (no data needed).

        Starts are ``n_starts`` random states in the box ``[0, x_max]`` (plus ``starts`` when
        given); each is integrated, polished with a root finder and classified by its
        Jacobian's eigenvalues (:func:`gclandscape.engine.find_fixed_points`).

        Returns
        -------
        DataFrame with ``type`` (stable / saddle / unstable), ``index``, ``max_real``,
        ``n_starts``, ``residual`` and one column per gene.

        Examples
        --------
        >>> import gclandscape as gcl
        >>> g = gcl.landscape.Genome(["A"], [[0.0]], b=0.0, alpha=2.0, gamma=1.0)
        >>> fp = g.fixed_points(n_starts=10)
        >>> fp["type"].tolist(), round(float(fp["A"][0]), 6)
        (['stable'], 1.0)
        """
        from ..engine import ClampedField, find_fixed_points

        rng = np.random.default_rng(seed)
        box = rng.uniform(0.0, 1.0, size=(int(n_starts), self.n_genes)) * self.x_max
        if starts is not None:
            box = np.vstack([self._states(starts), box])
        field = self.field()
        clamp = self._clamp()
        if clamp is not None:
            field = ClampedField(field, clamp[0], self.n_genes)
            box[:, clamp[0]] = clamp[1]
        fp = find_fixed_points(field, box, seed=seed, nonnegative=True)
        return fp.to_frame(self.genes)

    # ------------------------------------------------------------------ edits
    def mutate(self, perturbation: Perturbation) -> Genome:
        """A new genome with ``perturbation`` applied; this genome is left untouched.

        Knockout removes a gene's production (its level decays at its degradation rate, as a
        Boolean asynchronous update sets it to 0 when the gene is next updated); Knockdown
        scales production; Overexpression clamps the gene at a level (default twice its
        highest observed level, ``2 * x_max``); EdgeMutation scales one edge.

        Examples
        --------
        >>> import gclandscape as gcl
        >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
        >>> ko = toggle.mutate(gcl.sim.Knockout("A"))
        >>> ko.develop([[0.9, 0.1]], noise=0.0).round(3).tolist()
        [[0.0, 0.993]]
        >>> toggle.edits, ko.edits
        ([], ['A KO'])
        """
        from ._perturbations import EDGE, KNOCKDOWN, KNOCKOUT, OVEREXPRESSION, Perturbation

        if not isinstance(perturbation, Perturbation):
            raise GclError(
                "mutate takes a gcl.sim perturbation (Knockout, Knockdown, Overexpression, "
                f"EdgeMutation, or a sum of them), got {type(perturbation).__name__}."
            )
        perturbation.check(self.genes)
        new = Genome.__new__(Genome)
        production = self.production.copy()
        clamp = dict(self.clamp)
        W = self._W.copy()
        model = None if self._model is None else {k: np.copy(v) for k, v in self._model.items()}
        for e in perturbation.edits:
            i = self.genes.index(e.gene)
            if e.kind == KNOCKOUT:
                production[i] = 0.0
                clamp.pop(e.gene, None)
            elif e.kind == KNOCKDOWN:
                production[i] *= e.value
            elif e.kind == OVEREXPRESSION:
                clamp[e.gene] = float(2.0 * self.x_max[i] if e.value is None else e.value)
            elif e.kind == EDGE:
                j = self.genes.index(e.target)
                W[j, i] *= e.value
                if model is not None:
                    model["V"][j, :, i] *= e.value
        new._init(
            self.genes,
            kind=self.kind,
            W=W,
            gamma=self.gamma,
            noise=self.noise,
            b=self._b,
            alpha=self._alpha,
            model=model,
            confidence=self.confidence,
            x_max=self.x_max,
            production=production,
            clamp=clamp,
            edits=[*self.edits, perturbation.name],
            info=self.info,
        )
        new._others = [m.mutate(perturbation) for m in self._others]
        return new

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of arrays, strings and scalars (h5ad-serialisable, no pickle)."""
        d: dict[str, Any] = {
            "format": _FORMAT,
            "kind": self.kind,
            "genes": np.asarray(self.genes, dtype=object),
            "W": self._W,
            "gamma": self.gamma,
            "noise": self.noise,
            "x_max": self.x_max,
            "production": self.production,
            "clamp_genes": np.asarray(list(self.clamp), dtype=object),
            "clamp_levels": np.asarray(list(self.clamp.values()), dtype=np.float64),
            "edits": np.asarray(self.edits, dtype=object),
        }
        if self.kind == SIGMOID:
            d["b"], d["alpha"] = self._b, self._alpha
        else:
            d["model"] = dict(self._model)
        if self.confidence is not None:
            d["confidence"] = self.confidence
        if self.info:
            d["info"] = self.info
        if self._others:
            from ._members import MEMBERS, stack_members

            d[MEMBERS] = stack_members([dict(d)] + [m.to_dict() for m in self._others])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Genome:
        """Rebuild a genome written by :meth:`to_dict` (with its ensemble members)."""
        from ._members import MEMBERS, unstack_members

        if MEMBERS in d:
            first, *others = [cls.from_dict(m) for m in unstack_members(d)]
            first._others = others
            return first
        try:
            kind = str(d["kind"])
            genes = [str(g) for g in np.asarray(d["genes"]).tolist()]
            clamp_genes = [str(g) for g in np.asarray(d.get("clamp_genes", [])).tolist()]
            clamp = dict(zip(clamp_genes, np.asarray(d.get("clamp_levels", []), float).tolist()))
            edits = [str(e) for e in np.asarray(d.get("edits", [])).tolist()]
            self = cls.__new__(cls)
            self._init(
                genes,
                kind=kind,
                W=np.asarray(d["W"], dtype=np.float64),
                gamma=np.asarray(d["gamma"], dtype=np.float64),
                noise=np.asarray(d["noise"], dtype=np.float64),
                b=np.asarray(d["b"], dtype=np.float64) if kind == SIGMOID else None,
                alpha=np.asarray(d["alpha"], dtype=np.float64) if kind == SIGMOID else None,
                model=dict(d["model"]) if kind == CONNECTIONIST else None,
                confidence=(
                    np.asarray(d["confidence"], dtype=np.float64) if "confidence" in d else None
                ),
                x_max=np.asarray(d["x_max"], dtype=np.float64),
                production=np.asarray(d["production"], dtype=np.float64),
                clamp=clamp,
                edits=edits,
                info=dict(d.get("info", {})),
            )
        except KeyError as err:
            raise GclFormatError(
                f"not a stored gclandscape genome: entry {err} is missing (expected what "
                "Genome.write_to_adata writes)."
            ) from None
        return self

    def write_to_adata(self, adata: AnnData, key: str = Key.uns.genome) -> None:
        """Store the genome in ``adata.uns[key]`` (and ``W`` in ``adata.varp[key]`` when the
        genome's genes are all variables of ``adata``).

        Examples
        --------
        >>> import anndata as ad, numpy as np, gclandscape as gcl
        >>> a = ad.AnnData(np.zeros((3, 2)))
        >>> a.var_names = ["A", "B"]
        >>> gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0).write_to_adata(a)
        >>> gcl.landscape.Genome.from_adata(a).genes
        ['A', 'B']
        """
        adata.uns[key] = self.to_dict()
        idx = adata.var_names.get_indexer(self.genes)
        if (idx >= 0).all():
            import scipy.sparse as sp

            full = np.zeros((adata.n_vars, adata.n_vars))
            full[np.ix_(idx, idx)] = self._W
            adata.varp[key] = sp.csr_matrix(full)

    @classmethod
    def from_adata(cls, adata: AnnData, key: str = Key.uns.genome) -> Genome:
        """Read a genome stored by :meth:`write_to_adata` (or :func:`fit_grn`).

        Examples
        --------
        >>> import anndata as ad, numpy as np, gclandscape as gcl
        >>> a = ad.AnnData(np.zeros((3, 2)))
        >>> gcl.landscape.Genome.from_adata(a)
        Traceback (most recent call last):
        ...
        gclandscape._errors.GclError: No genome in adata.uns['gcl_genome']. Fit one with gcl.landscape.fit_grn(adata) or store a hand-built one with Genome.write_to_adata(adata).
        """
        if key not in adata.uns:
            raise GclError(
                f"No genome in adata.uns[{key!r}]. Fit one with gcl.landscape.fit_grn(adata) "
                "or store a hand-built one with Genome.write_to_adata(adata)."
            )
        return cls.from_dict(adata.uns[key])
