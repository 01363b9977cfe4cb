"""``gcl.landscape.fit_landscape`` and :class:`Landscape`: the genome's energy landscape.

The genome's vector field carves a landscape whose valleys are cell types. ``fit_landscape``
finds its attractors and saddles (:func:`gclandscape.engine.find_fixed_points`), the basin of
every observed cell (deterministic development of each cell), the minimum-action transitions
between attractors with their barrier heights both ways
(:func:`gclandscape.engine.transition_paths`), and two energy surfaces on a 2-D basis: the
quasi-potential ``U = -ln P_ss`` of long stochastic simulations of the genome and the
empirical potential ``-ln p(cells)`` of the observed cells.

Model coordinates
-----------------
The genome works in its own coordinates. For a genome fitted by
:func:`~gclandscape.landscape.fit_grn` (``genome.info["scale"]`` exists) they are the drift
states ``adata.layers[f"{drift_key}_state"]`` when present (already scaled), otherwise the
linear expression of :func:`gclandscape.tl._drift.expression_states` divided by the stored
per-gene scale. A hand-built genome (no scale) reads ``.X`` restricted to its genes as its
coordinates: store the cells' states there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclDivergenceError, GclError, GclFormatError
from .._keys import Key
from .._utils import logger, rng
from ._genome import Genome

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["Landscape", "fit_landscape"]

_FORMAT = 1
#: Euler step of the deterministic basin and fixed-point integrations.
DT = 0.1
#: Longest deterministic development of a cell to its attractor.
T_RELAX = 200.0
#: Speed ``max |dx/dt|`` below which a developing cell counts as arrived.
CONV_TOL = 1e-4
#: At most this many observed states seed the fixed-point search (plus one jittered copy each).
MAX_STARTS = 1000
#: Random starts in the box of observed levels (for attractors no observed cell reaches).
N_BOX = 200
#: Quasi-potential simulations: cells, simulated time, snapshots kept from the second half.
N_SIM, T_SIM, N_SNAP = 2000, 60.0, 6
#: Grid points per axis of the energy surfaces.
GRID = 60
#: At most this many index-1 saddles get transition paths; points per minimum-action curve;
#: relative tolerance of the action.
MAX_PATH_SADDLES, N_PATH_POINTS, PATH_RTOL = 30, 25, 1e-3
#: Neighbours of the kNN regression that maps simulated states onto a nonlinear basis.
N_NEIGHBORS = 15
_PATH_COLUMNS = [
    "from", "to", "source", "target", "saddle", "barrier_forward", "barrier_backward",
    "converged",
]  # fmt: skip


# ---------------------------------------------------------------------------------- result
class Landscape:
    """The energy landscape of a genome: attractors, saddles, transitions and energy surfaces.

    Built by :func:`fit_landscape`; stored in ``adata.uns[key]`` as plain DataFrames, arrays
    and dicts (no pickle) by :meth:`write_to_adata` and read back by :meth:`from_adata`.

    Attributes
    ----------
    attractors
        One row per stable fixed point, largest basin first: ``label`` (majority ``groupby``
        label of its basin, made unique as ``"Ery"``, ``"Ery_2"``; ``"unobserved"`` for a
        basin without cells; ``"attractor_1"``, … without ``groupby``), ``stable``,
        ``basin_fraction`` (fraction of observed cells developing into it), ``n_cells``,
        ``purity`` (fraction of its basin's cells carrying ``label``; NaN without cells or
        ``groupby``), ``energy`` (quasi-potential at its position on the basis), ``basis_1``,
        ``basis_2`` (its position on the basis), then one column per gene (model coordinates).
    saddles
        One row per unstable fixed point (index-1 saddles first): ``type`` (``saddle`` or
        ``unstable``), ``index`` (number of unstable directions), ``max_real``, ``residual``,
        ``energy``, ``basis_1``, ``basis_2`` and one column per gene.
    paths
        One row per index-1 saddle joining two attractors: ``from``, ``to`` (attractor
        labels), ``source``, ``target`` (attractor rows), ``saddle`` (row of ``saddles``),
        ``barrier_forward`` (ΔU from→to), ``barrier_backward`` (ΔU to→from), both in units of
        ``-ln P_ss`` for the genome's noise, and ``converged``.
    path_states, path_states_reverse
        ``(n_paths, n_points, n_genes)`` the minimum-action curves from→saddle→to and
        to→saddle→from, in model coordinates.
    path_basis
        ``(n_paths, n_points, 2)`` the forward curves mapped onto the basis.
    grid
        ``{"x": (n,), "y": (n,), "U": (n, n), "U_empirical": (n, n), "u": (n, n),
        "v": (n, n)}``: the quasi-potential and the empirical potential with ``U[i, j]`` at
        ``(x[j], y[i])`` (the layout of ``matplotlib.pyplot.contourf(x, y, U)``), each
        shifted to a minimum of 0, and the genome's drift projected on the basis
        (``u`` along ``basis_1``, ``v`` along ``basis_2``, same layout; NaN where no cells are
        near). Landscapes stored before the drift was added have no ``"u"``/``"v"``.
    coords
        ``(n_cells, 2)`` the observed cells on the basis.
    basis
        Name of the basis: an ``.obsm`` key, ``"pca:X_gcl"`` (PCA of the latent) or
        ``"pca:regulators"`` (PCA of the genome's model states).
    genes
        The genome's genes (model coordinates).
    params
        Parameters of the fit.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (200, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> toggle.write_to_adata(adata)
    >>> land = gcl.landscape.fit_landscape(adata)
    >>> land.attractors["stable"].tolist(), len(land.paths)
    ([True, True], 1)
    """

    def __init__(
        self,
        *,
        attractors: pd.DataFrame,
        saddles: pd.DataFrame,
        paths: pd.DataFrame,
        path_states: np.ndarray,
        path_states_reverse: np.ndarray,
        path_basis: np.ndarray,
        grid: dict[str, np.ndarray],
        coords: np.ndarray,
        basis: str,
        genes: Sequence[str],
        params: dict[str, Any] | None = None,
    ):
        self.attractors = attractors
        self.saddles = saddles
        self.paths = paths
        self.path_states = path_states
        self.path_states_reverse = path_states_reverse
        self.path_basis = path_basis
        self.grid = grid
        self.coords = coords
        self.basis = str(basis)
        self.genes = [str(g) for g in genes]
        self.params = dict(params or {})

    def __repr__(self) -> str:
        labels = ", ".join(self.attractors["label"].astype(str).tolist()[:8])
        return (
            f"Landscape({len(self.attractors)} attractors [{labels}], {len(self.saddles)} "
            f"saddles, {len(self.paths)} paths, basis {self.basis!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of DataFrames, arrays and strings (h5ad-serialisable, no pickle)."""
        return {
            "format": _FORMAT,
            "attractors": _plain(self.attractors),
            "saddles": _plain(self.saddles),
            "paths": _plain(self.paths),
            "path_states": np.asarray(self.path_states, dtype=np.float64),
            "path_states_reverse": np.asarray(self.path_states_reverse, dtype=np.float64),
            "path_basis": np.asarray(self.path_basis, dtype=np.float64),
            "grid": {k: np.asarray(v, dtype=np.float64) for k, v in self.grid.items()},
            "coords": np.asarray(self.coords, dtype=np.float64),
            "basis": self.basis,
            "genes": np.asarray(self.genes, dtype=object),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Landscape:
        """Rebuild a landscape written by :meth:`to_dict` (or read back from ``.h5ad``)."""
        try:
            return cls(
                attractors=_plain(d["attractors"]),
                saddles=_plain(d["saddles"]),
                paths=_plain(d["paths"]),
                path_states=np.asarray(d["path_states"], dtype=np.float64),
                path_states_reverse=np.asarray(d["path_states_reverse"], dtype=np.float64),
                path_basis=np.asarray(d["path_basis"], dtype=np.float64),
                grid={str(k): np.asarray(v, dtype=np.float64) for k, v in d["grid"].items()},
                coords=np.asarray(d["coords"], dtype=np.float64),
                basis=str(d["basis"]),
                genes=[str(g) for g in np.asarray(d["genes"]).tolist()],
                params=_plain_dict(d.get("params", {})),
            )
        except (KeyError, AttributeError, TypeError) as err:
            raise GclFormatError(
                f"not a stored gclandscape landscape ({err}); expected what "
                "Landscape.write_to_adata or gcl.landscape.fit_landscape writes."
            ) from None

    def write_to_adata(self, adata: AnnData, key: str = Key.uns.landscape) -> None:
        """Store the landscape in ``adata.uns[key]`` (the per-cell basin and energy columns
        are written by :func:`fit_landscape`).

        Examples
        --------
        >>> import anndata as ad, numpy as np, gclandscape as gcl
        >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
        >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
        >>> adata.var_names = ["A", "B"]
        >>> toggle.write_to_adata(adata)
        >>> land = gcl.landscape.fit_landscape(adata)
        >>> other = ad.AnnData(np.zeros((1, 2)))
        >>> land.write_to_adata(other, "copy")
        >>> gcl.landscape.Landscape.from_adata(other, "copy").attractors.shape == land.attractors.shape
        True
        """
        adata.uns[key] = self.to_dict()

    @classmethod
    def from_adata(cls, adata: AnnData, key: str = Key.uns.landscape) -> Landscape:
        """Read a landscape stored by :meth:`write_to_adata` or :func:`fit_landscape`.

        Examples
        --------
        >>> import anndata as ad, numpy as np, gclandscape as gcl
        >>> gcl.landscape.Landscape.from_adata(ad.AnnData(np.zeros((2, 2))))
        Traceback (most recent call last):
        ...
        gclandscape._errors.GclError: No landscape in adata.uns['gcl_landscape']. Compute one with gcl.landscape.fit_landscape(adata) (after gcl.landscape.fit_grn).
        """
        if key not in adata.uns:
            raise GclError(
                f"No landscape in adata.uns[{key!r}]. Compute one with "
                "gcl.landscape.fit_landscape(adata) (after gcl.landscape.fit_grn)."
            )
        return cls.from_dict(adata.uns[key])


def _plain(df: Any) -> pd.DataFrame:
    """A DataFrame with a RangeIndex and plain columns (str labels as object, no categories),
    identical before and after an h5ad round trip."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, got {type(df).__name__}")
    out = df.reset_index(drop=True).copy()
    out.columns = [str(c) for c in out.columns]
    for c in out.columns:
        s = out[c]
        if (
            isinstance(s.dtype, pd.CategoricalDtype)
            or s.dtype == object
            or (
                pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_numeric_dtype(s.dtype)
            )
        ):
            out[c] = np.asarray(s.astype(str).to_numpy(), dtype=object)
    return out


def _plain_dict(d: Any) -> dict[str, Any]:
    out = {}
    for k, v in dict(d).items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "OUS":
            v = np.asarray([str(x) for x in v.tolist()], dtype=object)
        elif isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


# ---------------------------------------------------------------------------------- input
def _model_states(adata: AnnData, genome: Genome, genome_key: str) -> tuple[np.ndarray, str]:
    """The observed cells in the genome's coordinates (see the module docstring)."""
    import scipy.sparse as sp

    missing = [g for g in genome.genes if g not in adata.var_names]
    if missing:
        raise GclError(
            f"{len(missing)} of the genome's genes are not in adata.var_names: "
            f"{', '.join(missing[:10])}. Use the AnnData the genome was fitted on."
        )
    idx = adata.var_names.get_indexer(genome.genes)
    if "scale" in genome.info:
        stored = adata.uns.get(genome_key, {})
        params = stored.get("params", {}) if isinstance(stored, dict) else {}
        drift_key = str(params.get("drift_key", Key.layers.drift))
        layer = f"{drift_key}_state"
        if layer in adata.layers:
            m = adata.layers[layer][:, idx]
            source = f"layers[{layer!r}]"
        else:
            from ..tl._drift import expression_states

            x, src = expression_states(adata, genome.genes, layer=None)
            scale = np.asarray(genome.info["scale"], dtype=np.float64)
            m = x / np.where(scale > 0, scale, 1.0)
            source = f"{src} / scale"
    else:
        m = adata.X[:, idx]
        source = "X"
    x = np.asarray(m.toarray() if sp.issparse(m) else m, dtype=np.float64)
    if not np.isfinite(x).all():
        raise GclError(
            f"the cells' states of the genome's genes ({source}) contain NaN or infinite "
            "values; remove or impute them first."
        )
    return x, source


def _check_inputs(
    adata: AnnData, genome_key: str, groupby: str | None, basis: str | None
) -> Genome:
    if groupby is not None and groupby not in adata.obs:
        raise GclError(
            f"groupby={groupby!r} is not a column of adata.obs. Available: "
            f"{', '.join(map(str, adata.obs.columns)) or '(none)'}."
        )
    if basis is not None:
        if basis not in adata.obsm:
            raise GclError(
                f"basis={basis!r} is not in adata.obsm. Available: "
                f"{', '.join(map(str, adata.obsm.keys())) or '(none)'}; or leave basis=None "
                "for a PCA of the latent (X_gcl) or of the regulators."
            )
        if np.asarray(adata.obsm[basis]).ndim != 2 or adata.obsm[basis].shape[1] < 2:
            raise GclError(f"adata.obsm[{basis!r}] needs at least 2 columns for a 2-D basis.")
    if genome_key not in adata.uns:
        raise GclError(
            f"No genome in adata.uns[{genome_key!r}]. Fit one with "
            "gcl.landscape.fit_grn(adata) (or store a hand-built Genome with "
            "genome.write_to_adata(adata)) before fit_landscape."
        )
    return Genome.from_adata(adata, genome_key)


# ---------------------------------------------------------------------------------- dynamics
def _analysis_field(genome: Genome) -> Any:
    """The genome's field, with clamped (overexpressed) genes held still.

    A ``torch.nn.Module`` wrapping a module field, so the fixed-point search's float64 copy
    (``.to(torch.float64)``) converts the wrapped model too.
    """
    import torch

    field = genome.field()
    clamp = genome._clamp()
    if clamp is None:
        return field
    keep = torch.ones(genome.n_genes, dtype=torch.float64)
    keep[torch.as_tensor(clamp[0])] = 0.0

    class Clamped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = field if isinstance(field, torch.nn.Module) else None
            self.plain = None if self.base is not None else field
            self.register_buffer("keep", keep)

        def forward(self, t: float, x: torch.Tensor, args: Any = None) -> torch.Tensor:
            f = (self.base if self.base is not None else self.plain)(t, x, args)
            return f * self.keep.to(f.dtype)

    return Clamped()


def _relax_cells(
    field: Any, x0: np.ndarray, attractors: np.ndarray, *, dt: float, t_max: float, near: float
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic development of every cell (batched, in chunks of 5 time units).

    A cell stops once it is within ``near`` (max-norm) of an attractor — inside that
    attractor's basin — or once it stops moving (speed below ``CONV_TOL``). Returns the end
    states and the attractor row of each cell (-1: stopped or still moving far from every
    attractor).
    """
    import torch

    from ..engine import integrate

    att = torch.as_tensor(attractors, dtype=torch.float32)
    x = torch.as_tensor(x0, dtype=torch.float32)
    owner = torch.full((len(x),), -1, dtype=torch.long)
    active = torch.arange(len(x))
    chunk, t = 5.0, 0.0
    while len(active):
        xa = x[active]
        d = (xa[:, None, :] - att[None, :, :]).abs().amax(2) if len(att) else None
        if d is not None:
            dmin, arg = d.min(1)
            arrived = dmin <= near
            owner[active[arrived]] = arg[arrived]
        else:
            arrived = torch.zeros(len(active), dtype=torch.bool)
        with torch.no_grad():
            still = field(0.0, xa, None).abs().amax(1) <= CONV_TOL
        active = active[~(arrived | still)]
        if not len(active) or t >= t_max:
            break
        sol = integrate(field, x[active], t_max=min(chunk, t_max - t), dt=dt, noise=0.0)
        x[active] = sol.x
        t += chunk
    return x.numpy().astype(np.float64), owner.numpy()


class _Threads:
    """Torch CPU threads set to ``n`` inside the block (small batched linear algebra, where
    threads only add synchronisation cost, badly so on a loaded machine)."""

    def __init__(self, n: int = 1):
        self.n = n

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def _unique_rows(x: np.ndarray, tol: float) -> np.ndarray:
    """One representative per cell of a grid of step ``tol`` (end states → candidate attractors)."""
    _, first = np.unique(np.round(x / tol), axis=0, return_index=True)
    return x[np.sort(first)]


def _labels(
    basin: np.ndarray, n_att: int, groups: pd.Series | None
) -> tuple[list[str], np.ndarray]:
    """Majority ``groups`` label and its purity for each attractor's basin."""
    labels, purity = [], np.full(n_att, np.nan)
    for k in range(n_att):
        members = basin == k
        if not members.any():
            labels.append("unobserved")
            continue
        if groups is None:
            labels.append(f"attractor_{k + 1}")
            continue
        counts = groups[members].value_counts(dropna=True)
        counts = counts[counts > 0]
        if counts.empty:
            labels.append("unlabelled")
            continue
        labels.append(str(counts.index[0]))
        purity[k] = counts.iloc[0] / members.sum()
    seen: dict[str, int] = {}
    unique = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        unique.append(lab if seen[lab] == 1 else f"{lab}_{seen[lab]}")
    return unique, purity


def _attractor_analysis(
    field: Any,
    states: np.ndarray,
    *,
    genes: Sequence[str],
    groups: pd.Series | None = None,
    noise: Any = 1.0,
    seed: int = 0,
    max_starts: int = MAX_STARTS,
    max_path_saddles: int = MAX_PATH_SADDLES,
    n_path_points: int = N_PATH_POINTS,
    clamp: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Fixed points, basins of the observed ``states``, labels and transition paths.

    Works for any engine field (a genome's, or the true field of a simulated dataset).
    ``clamp`` = (gene indices, levels) of genes the field holds still (overexpression).
    Returns a dict with ``attractors`` and ``saddles`` (DataFrames without the energy and basis
    columns), ``basin`` (attractor row per cell), ``paths`` (DataFrame), ``path_states``,
    ``path_states_reverse``, ``attractor_states``, ``saddle_states``, ``fixed_points``.
    """
    from ..engine import find_fixed_points, fixed_point_starts, transition_paths

    genes = [str(g) for g in genes]
    starts = fixed_point_starts(states, n_jitter=1, max_states=max_starts, seed=seed)
    # plus random states in the observed box: attractors no observed cell flows into
    box = rng(seed).uniform(0.0, 1.0, (N_BOX, states.shape[1])) * states.max(axis=0)
    starts = np.concatenate([starts, box])

    def search(x0: np.ndarray) -> Any:
        if clamp is not None:
            x0[:, clamp[0]] = clamp[1]
        with _Threads(1):
            found = find_fixed_points(field, x0, dt=DT, nonnegative=True, seed=seed)
        if clamp is not None:  # a clamped gene has no dynamics: keep points at its level
            found = found.select((np.abs(found.states[:, clamp[0]] - clamp[1]) <= 1e-6).all(axis=1))
        return found

    fp = search(starts)
    near = 2e-2 * max(1.0, float(np.abs(states).max()))
    # every cell developed deterministically until it reaches an attractor's neighbourhood
    ends, basin = _relax_cells(field, states, fp.attractors, dt=DT, t_max=T_RELAX, near=near)
    if (basin < 0).any():
        # cells that ended elsewhere: attractors the subsampled starts missed (or cells still
        # moving); search again with their end states among the starts
        old = fp.attractors
        extra = _unique_rows(ends[basin < 0], 1e-2)
        fp = search(np.concatenate([extra, starts]))
        if len(old) and len(fp.attractors):  # rows of the first search → rows of this one
            moved = np.abs(old[:, None, :] - fp.attractors[None, :, :]).max(axis=2).argmin(1)
            basin = np.where(basin >= 0, moved[np.clip(basin, 0, None)], -1)
    att = fp.attractors
    if len(att) == 0:
        raise GclError(
            "the genome has no stable fixed point reachable from the observed cells; "
            "its dynamics oscillate or drift away. Check the genome (genome.fixed_points())."
        )
    lost = basin < 0
    if lost.any():
        dist = np.abs(ends[lost][:, None, :] - att[None, :, :]).max(axis=2)
        basin[lost] = dist.argmin(axis=1)
        far = int((dist.min(axis=1) > near).sum())
        if far:
            logger.warning(
                "fit_landscape: %d cells did not reach an attractor within t = %g; "
                "assigned to the nearest one",
                far, T_RELAX,
            )  # fmt: skip
    # attractors ordered by basin size (then by how many search starts reached them)
    sizes = np.bincount(basin, minlength=len(att))
    n_starts = fp.n_starts[fp.is_stable]
    order = np.lexsort((-n_starts, -sizes))
    att = att[order]
    remap = np.empty(len(order), dtype=int)
    remap[order] = np.arange(len(order))
    basin = remap[basin]
    sizes = sizes[order]
    labels, purity = _labels(basin, len(att), groups)
    stable_fp = fp.select(np.flatnonzero(fp.is_stable)[order])
    attractors = pd.DataFrame(
        {
            "label": np.asarray(labels, dtype=object),
            "stable": np.ones(len(att), dtype=bool),
            "basin_fraction": sizes / len(states),
            "n_cells": sizes.astype(np.int64),
            "purity": purity,
            "max_real": stable_fp.max_real,
        }
    )
    attractors = pd.concat([attractors, pd.DataFrame(att, columns=genes)], axis=1)

    # saddles: index-1 first (the rows transition_paths refers to), then the others
    unstable = fp.select(~fp.is_stable)
    saddles = pd.DataFrame(
        {
            "type": np.asarray(unstable.type.astype(str), dtype=object),
            "index": unstable.index.astype(np.int64),
            "max_real": unstable.max_real,
            "residual": unstable.residual,
        }
    )
    saddles = pd.concat([saddles, pd.DataFrame(unstable.states, columns=genes)], axis=1)
    index1 = np.flatnonzero((unstable.type == "saddle") & (unstable.index == 1))
    use = index1[:max_path_saddles]
    if len(index1) > len(use):
        logger.info(
            "fit_landscape: paths through the first %d of %d saddles", len(use), len(index1)
        )
    n_genes = len(genes)
    empty = np.zeros((0, 2 * n_path_points - 1, n_genes))
    paths = pd.DataFrame({c: [] for c in _PATH_COLUMNS})
    fwd, rev = empty, empty
    if len(att) >= 2 and len(use):
        with _Threads(1):
            tp = transition_paths(
                field,
                att,
                unstable.states[use],
                noise=noise,
                n_points=n_path_points,
                dt=DT,
                rtol=PATH_RTOL,
            )
        if len(tp):
            paths = pd.DataFrame(
                {
                    "from": np.asarray([labels[i] for i in tp["source"]], dtype=object),
                    "to": np.asarray([labels[j] for j in tp["target"]], dtype=object),
                    "source": tp["source"].to_numpy(np.int64),
                    "target": tp["target"].to_numpy(np.int64),
                    "saddle": use[tp["saddle"].to_numpy()].astype(np.int64),
                    "barrier_forward": tp["barrier_forward"].to_numpy(np.float64),
                    "barrier_backward": tp["barrier_backward"].to_numpy(np.float64),
                    "converged": tp["converged"].to_numpy(bool),
                }
            )
            fwd = np.stack([np.asarray(p, dtype=np.float64) for p in tp["path"]])
            rev = np.stack([np.asarray(p, dtype=np.float64) for p in tp["path_reverse"]])
    paths = paths.astype(
        {"source": np.int64, "target": np.int64, "saddle": np.int64, "converged": bool,
         "barrier_forward": np.float64, "barrier_backward": np.float64}
    )  # fmt: skip
    for c in ("from", "to"):
        paths[c] = np.asarray(paths[c].astype(str).to_numpy(), dtype=object)
    return {
        "attractors": attractors,
        "saddles": saddles,
        "basin": basin,
        "labels": labels,
        "paths": paths,
        "path_states": fwd,
        "path_states_reverse": rev,
        "attractor_states": att,
        "saddle_states": unstable.states,
        "fixed_points": fp,
    }


# ---------------------------------------------------------------------------------- energy
def _basis(
    adata: AnnData, states: np.ndarray, basis: str | None, seed: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], str, str]:
    """Cells' 2-D coordinates, a map from model states to them, the basis name and method.

    A PCA of the regulators' model states maps any state linearly. Any other basis (UMAP,
    a PCA of the latent) is mapped by a kNN regression from the observed cells' model states
    to their basis coordinates (:class:`sklearn.neighbors.KNeighborsRegressor`): simulated
    states land among the observed cells they resemble, and states unlike any observed cell
    land at their nearest observed neighbours.
    """
    from sklearn.decomposition import PCA

    if basis is None and Key.obsm.latent not in adata.obsm:
        pca = PCA(n_components=2, random_state=seed).fit(states)
        return pca.transform(states), pca.transform, "pca:regulators", "linear"
    if basis is None:
        latent = np.asarray(adata.obsm[Key.obsm.latent], dtype=np.float64)
        coords = PCA(n_components=2, random_state=seed).fit_transform(latent)
        name = f"pca:{Key.obsm.latent}"
    else:
        coords = np.asarray(adata.obsm[basis], dtype=np.float64)[:, :2]
        name = basis
    if not np.isfinite(coords).all():
        raise GclError(f"the basis {name!r} has NaN or infinite coordinates.")
    from sklearn.neighbors import KNeighborsRegressor

    knn = KNeighborsRegressor(n_neighbors=min(N_NEIGHBORS, len(states)), weights="distance")
    knn.fit(states, coords)
    return coords, knn.predict, name, "knn"


def _log_density(points: np.ndarray, at: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Log density of ``points`` at ``at`` (Gaussian KDE, Scott's bandwidth, per-axis scale)."""
    from sklearn.neighbors import KernelDensity

    kde = KernelDensity(kernel="gaussian", bandwidth="scott", rtol=1e-6).fit(points / scale)
    return kde.score_samples(at / scale) - float(np.log(scale).sum())


def _energy(
    coords: np.ndarray, simulated: np.ndarray, extra: np.ndarray, n_grid: int = GRID
) -> dict[str, np.ndarray]:
    """Grid of the basis with the quasi-potential and the empirical potential, plus the
    quasi-potential interpolated (linearly, from the grid) at the cells (``coords``) and at
    ``extra`` points (fixed points; points outside the grid take the value at its edge)."""
    from scipy.interpolate import RegularGridInterpolator

    lo, hi = coords.min(0), coords.max(0)
    pad = 0.1 * np.where(hi > lo, hi - lo, 1.0)
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n_grid)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n_grid)
    xx, yy = np.meshgrid(x, y)
    at = np.column_stack([xx.ravel(), yy.ravel()])
    sd = coords.std(0)
    scale = np.where(sd > 0, sd, 1.0)

    def potential(points: np.ndarray) -> np.ndarray:
        logp = _log_density(points, at, scale)
        finite = np.isfinite(logp)
        floor = logp[finite].min() if finite.any() else 0.0
        u = -np.where(finite, logp, floor)
        return (u - u.min()).reshape(n_grid, n_grid)

    U, U_emp = potential(simulated), potential(coords)
    interp = RegularGridInterpolator((y, x), U)

    def at_points(p: np.ndarray) -> np.ndarray:
        if len(p) == 0:
            return np.zeros(0)
        q = np.column_stack([np.clip(p[:, 1], y[0], y[-1]), np.clip(p[:, 0], x[0], x[-1])])
        return interp(q)

    return {
        "x": x,
        "y": y,
        "U": U,
        "U_empirical": U_emp,
        "cells": at_points(coords),
        "extra": at_points(extra),
    }


def _drift_grid(
    field: Any,
    states: np.ndarray,
    to_basis: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The genome's drift projected on the basis and averaged onto the grid ``(x, y)``.

    At every observed state ``s`` the drift ``f(s)`` is carried through the basis map by a
    central finite step, ``(B(s + h f) - B(s - h f)) / 2h`` (exact for a linear basis; for the
    kNN map the step, a twentieth of the cells' spread, moves each state among its
    neighbours), and the projected drifts of the cells are averaged onto the grid with a
    Gaussian kernel of two grid steps (neighbours within three kernel widths,
    :class:`sklearn.neighbors.NearestNeighbors`). Grid points with less than one cell's worth
    of kernel weight nearby are NaN. Returns ``(u, v)``, each ``(n, n)`` like ``grid["U"]``.
    """
    import torch
    from sklearn.neighbors import NearestNeighbors

    with torch.no_grad():
        f = field(0.0, torch.as_tensor(states, dtype=torch.float32), None)
    f = np.asarray(f.numpy(), dtype=np.float64)
    speed = np.linalg.norm(f, axis=1)
    typical = float(np.median(speed[speed > 0])) if (speed > 0).any() else 1.0
    h = 0.05 * float(np.linalg.norm(states.std(0)) or 1.0) / typical
    proj = (to_basis(states + h * f) - to_basis(states - h * f)) / (2.0 * h)
    step = np.array([x[1] - x[0], y[1] - y[0]]) if len(x) > 1 else np.ones(2)
    step = np.where(step > 0, step, 1.0)
    width = 2.0
    xx, yy = np.meshgrid(x, y)
    at = np.column_stack([xx.ravel(), yy.ravel()]) / step
    nn = NearestNeighbors(radius=3.0 * width).fit(coords / step)
    dist, idx = nn.radius_neighbors(at)
    u = np.full(len(at), np.nan)
    v = np.full(len(at), np.nan)
    for k, (d, i) in enumerate(zip(dist, idx, strict=True)):
        w = np.exp(-0.5 * (d / width) ** 2)
        if w.sum() >= 1.0:
            u[k], v[k] = (w @ proj[i]) / w.sum()
    n = len(y), len(x)
    return u.reshape(n), v.reshape(n)


# ---------------------------------------------------------------------------------- API
def fit_landscape(
    adata: AnnData,
    *,
    genome_key: str = Key.uns.genome,
    groupby: str | None = None,
    basis: str | None = None,
    seed: int = 0,
    key_added: str = Key.uns.landscape,
) -> Landscape:
    """Fit the genome's energy landscape: attractors, saddles, basins, barriers and energy.

    1. **Fixed points** of the genome's vector field from many starts: up to 1000 observed
       states and one jittered copy of each (:func:`gclandscape.engine.fixed_point_starts`),
       200 random states in the box of observed levels (attractors that no cell reaches get
       the label ``"unobserved"``) and the end states of cells that reach none of the
       attractors found, integrated, polished with a root finder and classified by their
       Jacobian eigenvalues (:func:`gclandscape.engine.find_fixed_points`).
    2. **Basins**: every observed cell is developed deterministically (noise 0, one batched
       integration) to its attractor. Each attractor is labelled with the majority
       ``groupby`` label of its basin, with that label's purity.
    3. **Transitions**: minimum-action paths between the attractor pairs joined by an
       index-1 saddle, with a barrier for each direction in units of ``-ln P_ss`` for the
       genome's noise (:func:`gclandscape.engine.transition_paths`).
    4. **Energy** on a 2-D basis: the quasi-potential ``U = -ln P_ss`` from stochastic
       development (the genome's noise) of 2000 observed cells for 60 time units, sampled in
       the second half, and the empirical potential ``-ln p(cells)``; both are Gaussian
       kernel densities (:class:`sklearn.neighbors.KernelDensity`, Scott's bandwidth on axes
       scaled to the cells' spread) on a 60 × 60 grid, shifted to a minimum of 0. Basis:
       ``basis`` (an ``.obsm`` key), else a PCA of the latent ``X_gcl`` when present, else a
       PCA of the genome's model states. Simulated states reach a PCA of the model states by
       the same linear projection; any other basis by a kNN regression from model states to
       basis coordinates fitted on the observed cells.
    5. **Drift on the basis**: the genome's drift at every observed state, carried through
       the basis map by a small central finite step and averaged onto the same grid with a
       Gaussian kernel (NaN where no cells are near): ``grid["u"]``, ``grid["v"]``, what
       :func:`gclandscape.pl.vector_field` draws.

    The genome's coordinates: for a fitted genome, the drift states
    (``.layers["gcl_drift_state"]``) or the linear expression divided by the genome's scale;
    for a hand-built genome, ``.X`` restricted to its genes.

    Parameters
    ----------
    adata
        Annotated data matrix with a genome in ``.uns[genome_key]``.
    genome_key
        Key of the genome (written by :func:`~gclandscape.landscape.fit_grn` or
        :meth:`Genome.write_to_adata`).
    groupby
        ``.obs`` column of cell types used to label the attractors.
    basis
        ``.obsm`` key of a 2-D (or wider: the first two columns are used) embedding.
    seed
        Seed of the start jitter, subsampling and simulations.
    key_added
        Key the landscape is written to.

    Returns
    -------
    The :class:`Landscape`. Also writes ``.uns[key_added]`` (the landscape, with
    ``["params"]``), ``.obs[f"{key_added}_basin"]`` (categorical attractor label per cell)
    and ``.obs[f"{key_added}_energy"]`` (quasi-potential at each cell).

    Raises
    ------
    GclError
        No genome under ``genome_key`` (fit one with ``fit_grn``), ``groupby`` not in
        ``.obs``, ``basis`` not in ``.obsm``, genes of the genome missing from ``adata``.
    GclDivergenceError
        The genome's simulation diverged; the message names the step size that failed.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (300, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> sorted(land.attractors["label"])
    ['A-high', 'B-high']
    >>> round(float(land.paths["barrier_forward"][0]))  # in -ln P_ss units for noise 0.05
    90
    """
    t0 = time.perf_counter()
    genome = _check_inputs(adata, genome_key, groupby, basis)
    states, source = _model_states(adata, genome, genome_key)
    clamp = genome._clamp()
    if clamp is not None:  # an overexpressed gene sits at its clamp level in every cell
        states[:, clamp[0]] = clamp[1]
    field = _analysis_field(genome)
    noise = np.asarray(genome.noise, dtype=np.float64)
    path_noise = np.where(noise > 0, noise, 1.0) if (noise > 0).any() else np.ones_like(noise)
    groups = None if groupby is None else adata.obs[groupby].reset_index(drop=True)
    try:
        res = _attractor_analysis(
            field,
            states,
            genes=genome.genes,
            groups=groups,
            noise=path_noise,
            seed=seed,
            clamp=clamp,
        )
        # quasi-potential: long noisy development of observed cells, snapshots of the 2nd half
        gen = rng(seed)
        pick = gen.choice(len(states), min(N_SIM, len(states)), replace=len(states) < N_SIM)
        _, _, snaps = genome.develop(
            states[pick], t_max=T_SIM, dt=DT, seed=seed, n_save=2 * N_SNAP - 1
        )
    except GclDivergenceError as err:
        gamma = np.asarray(genome.gamma, dtype=np.float64)
        raise GclDivergenceError(
            f"fit_landscape: developing the genome diverged: {err} The genome's degradation "
            f"rates (gamma from {gamma.min():.3g} to {gamma.max():.3g}) are too fast for this "
            "step, or its expression grows without bound; check or rescale the genome."
        ) from err
    simulated = snaps[N_SNAP - 1 :].reshape(-1, genome.n_genes)

    coords, to_basis, basis_name, method = _basis(adata, states, basis, seed)
    att_states, sad_states = res["attractor_states"], res["saddle_states"]
    fixed_xy = to_basis(np.concatenate([att_states, sad_states]))
    energy = _energy(coords, to_basis(simulated), fixed_xy)
    u, v = _drift_grid(field, states, to_basis, energy["x"], energy["y"], coords)
    n_att = len(att_states)
    attractors, saddles = res["attractors"], res["saddles"]
    for frame, xy, e in (
        (attractors, fixed_xy[:n_att], energy["extra"][:n_att]),
        (saddles, fixed_xy[n_att:], energy["extra"][n_att:]),
    ):
        pos = list(frame.columns).index("max_real") + 1
        frame.insert(pos, "energy", e)
        frame.insert(pos + 1, "basis_1", xy[:, 0])
        frame.insert(pos + 2, "basis_2", xy[:, 1])
    fwd = res["path_states"]
    path_basis = (
        to_basis(fwd.reshape(-1, genome.n_genes)).reshape(len(fwd), fwd.shape[1], 2)
        if len(fwd)
        else np.zeros((0, fwd.shape[1], 2))
    )
    params = {
        "genome_key": genome_key,
        "groupby": "" if groupby is None else groupby,
        "basis": basis_name,
        "basis_method": method,
        "seed": int(seed),
        "states": source,
        "dt": DT,
        "n_starts": int(min(MAX_STARTS, len(states)) * 2 + N_BOX),
        "n_sim": len(pick),
        "t_sim": T_SIM,
        "n_snapshots": N_SNAP,
        "grid_size": GRID,
        "barrier_noise": path_noise,
        "seconds": float(time.perf_counter() - t0),
    }
    land = Landscape(
        attractors=attractors,
        saddles=saddles,
        paths=res["paths"],
        path_states=fwd,
        path_states_reverse=res["path_states_reverse"],
        path_basis=path_basis,
        grid={**{k: energy[k] for k in ("x", "y", "U", "U_empirical")}, "u": u, "v": v},
        coords=coords,
        basis=basis_name,
        genes=genome.genes,
        params=params,
    )
    land.write_to_adata(adata, key_added)
    adata.obs[Key.basin(key_added)] = pd.Categorical.from_codes(
        res["basin"], categories=res["labels"]
    )
    adata.obs[Key.energy(key_added)] = energy["cells"]
    logger.info(
        "fit_landscape: %d attractors (%s), %d saddles, %d paths in %.1f s",
        n_att, ", ".join(res["labels"]), len(saddles), len(res["paths"]), params["seconds"],
    )  # fmt: skip
    return land
