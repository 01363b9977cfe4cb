"""The observed cells in the genome's model coordinates and on the landscape's 2-D basis, and
the checks of fit_landscape's inputs.

See :mod:`gclandscape.landscape._landscape` ("Model coordinates") for which slot is read.
:func:`model_states` and :func:`basis_coordinates` are also used by :mod:`gclandscape.sim`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .._errors import GclError
from .._keys import Key
from .._utils import dense
from ._genome import Genome

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: Neighbours of the kNN regression that maps simulated states onto a nonlinear basis.
N_NEIGHBORS = 15


def model_states(adata: AnnData, genome: Genome, genome_key: str) -> tuple[np.ndarray, str]:
    """The observed cells in the genome's coordinates (see the module docstring)."""
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
            from ..tl._drift_inputs import expression_states

            x, src = expression_states(adata, genome.genes, layer=None)
            scale = np.asarray(genome.info["scale"], dtype=np.float64)
            m = x / np.where(scale > 0, scale, 1.0)
            source = f"{src} / scale"
    else:
        m = adata.X[:, idx]
        source = "X"
    x = dense(m)
    if not np.isfinite(x).all():
        raise GclError(
            f"the cells' states of the genome's genes ({source}) contain NaN or infinite "
            "values; remove or impute them first."
        )
    return x, source


def basis_coordinates(
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
