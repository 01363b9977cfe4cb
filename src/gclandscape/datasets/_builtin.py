"""The small simulated datasets that ship inside scanpy: ``krumsiek11`` and ``toggleswitch``.

scanpy returns them with duplicated observation names (the simulation time restarts at 0 for
every trajectory) and, for ``krumsiek11``, the fates in ``obs["cell_type"]``. Here every cell
gets a unique name, its trajectory and time step, and its label in ``obs["celltype"]``, the
column every gclandscape dataset uses.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._keys import Key

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: scanpy's fate abbreviations → the fate names of :func:`gclandscape.datasets.myeloid`
#: (Krumsiek et al. 2011 call the two GMP fates monocytes and granulocytes; scanpy's "Neu"
#: is the granulocyte/neutrophil fate).
KRUMSIEK11_CELLTYPES = {
    "progenitor": "progenitor",
    "Ery": "Ery",
    "Mk": "Mk",
    "Mo": "Mono",
    "Neu": "Gran",
}

#: A toggle-switch cell counts as committed once the winning gene exceeds the other by this.
TOGGLESWITCH_COMMIT_MARGIN = 0.5


def _scanpy_dataset(name: str) -> AnnData:
    import scanpy as sc

    with warnings.catch_warnings():
        # the shipped text files repeat time steps as cell names; we rename them below
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        return getattr(sc.datasets, name)()


def _add_trajectories(adata: AnnData, prefix: str) -> None:
    """Number the trajectories (time restarts at 0) and give every cell a unique name."""
    time = np.asarray(adata.obs_names.astype(int))
    trajectory = np.concatenate([[0], np.cumsum(np.diff(time) <= 0)])
    adata.obs[Key.obs.trajectory] = trajectory.astype(np.int64)
    adata.obs[Key.obs.sim_time] = time.astype(np.float64)
    adata.obs_names = [f"{prefix}_t{k}_{t}" for k, t in zip(trajectory, time)]


def krumsiek11() -> AnnData:
    """Simulated myeloid progenitors of Krumsiek et al. (2011), as shipped with scanpy.

    The 11-factor Boolean myeloid network of Krumsiek et al. (PLoS ONE 6:e22649, 2011) was
    simulated by scanpy (``scanpy.tl.sim``) along four trajectories of 160 time steps, each
    starting in the common myeloid progenitor and ending in one fate. Values are continuous
    expression levels, not counts. Works offline: the file ships with scanpy.

    Returns
    -------
    AnnData
        640 cells × 11 genes with

        - ``obs["celltype"]``: ``progenitor``, ``Ery``, ``Mk``, ``Mono`` or ``Gran`` (the fate
          names of :func:`gclandscape.datasets.myeloid`; scanpy's ``Mo`` → ``Mono`` and
          ``Neu`` → ``Gran``);
        - ``obs["cell_type"]``: scanpy's original labels, unchanged;
        - ``obs["sim_trajectory"]`` and ``obs["sim_time"]``: the trajectory number and time
          step of each cell (the cell names are ``krumsiek11_t{trajectory}_{time}``);
        - ``uns["iroot"]`` and ``uns["highlights"]`` as scanpy sets them (the highlights'
          cell-index keys as strings, so the object can be written to ``.h5ad``).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.krumsiek11()
    >>> adata.shape
    (640, 11)
    >>> sorted(adata.obs["celltype"].cat.categories)
    ['Ery', 'Gran', 'Mk', 'Mono', 'progenitor']
    """
    adata = _scanpy_dataset("krumsiek11")
    if "highlights" in adata.uns:  # int keys cannot be stored in .h5ad
        adata.uns["highlights"] = {str(k): v for k, v in adata.uns["highlights"].items()}
    _add_trajectories(adata, "krumsiek11")
    original = adata.obs["cell_type"].astype(str)
    unknown = sorted(set(original) - set(KRUMSIEK11_CELLTYPES))
    if unknown:  # pragma: no cover - guards against a changed scanpy file
        raise RuntimeError(f"scanpy's krumsiek11 has unexpected cell types {unknown}")
    categories = ["progenitor", "Ery", "Mk", "Gran", "Mono"]
    adata.obs[Key.obs.celltype] = pd.Categorical(
        original.map(KRUMSIEK11_CELLTYPES).to_numpy(), categories=categories
    )
    return adata


def toggleswitch() -> AnnData:
    """Simulated two-gene toggle switch (Gardner et al. 2000), as shipped with scanpy.

    Two mutually repressing genes (named ``"0"`` and ``"1"`` as in scanpy) simulated by
    scanpy along two trajectories of 100 time steps from the undecided state where both are
    high; the first trajectory ends with gene ``0`` on, the second with gene ``1`` on. Values
    are continuous expression levels, not counts. Works offline: the file ships with scanpy.

    Returns
    -------
    AnnData
        200 cells × 2 genes with

        - ``obs["celltype"]``: ``progenitor`` while the two genes differ by less than
          :data:`TOGGLESWITCH_COMMIT_MARGIN` (0.5), then ``0-high`` or ``1-high`` after the
          gene that wins (scanpy ships no labels; these are derived from the values);
        - ``obs["sim_trajectory"]`` and ``obs["sim_time"]``: the trajectory number and time
          step of each cell (the cell names are ``toggleswitch_t{trajectory}_{time}``);
        - ``uns["iroot"]`` as scanpy sets it.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.toggleswitch()
    >>> adata.shape
    (200, 2)
    >>> adata.obs["celltype"].value_counts().sort_index().index.tolist()
    ['progenitor', '0-high', '1-high']
    """
    adata = _scanpy_dataset("toggleswitch")
    _add_trajectories(adata, "toggleswitch")
    x = np.asarray(adata.X, dtype=np.float64)
    diff = x[:, 0] - x[:, 1]
    label = np.where(
        diff > TOGGLESWITCH_COMMIT_MARGIN,
        "0-high",
        np.where(-diff > TOGGLESWITCH_COMMIT_MARGIN, "1-high", "progenitor"),
    )
    adata.obs[Key.obs.celltype] = pd.Categorical(
        label, categories=["progenitor", "0-high", "1-high"]
    )
    return adata
