"""The observed cells in the genome's model coordinates, and the checks of fit_landscape's inputs.

See :mod:`gclandscape.landscape._landscape` ("Model coordinates") for which slot is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._errors import GclError
from .._keys import Key
from ._genome import Genome

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


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
