"""The :class:`Landscape` result: attractors, saddles, paths and energy grids, and their
round trip through ``adata.uns``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError, GclFormatError
from .._keys import Key

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

_FORMAT = 1


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
