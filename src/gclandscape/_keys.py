"""Every AnnData slot name gclandscape reads or writes, built in one place.

Tools and tests refer to these names instead of string literals, following cellrank's
``Key`` class. ``key_added`` arguments default to the names below.
"""

from __future__ import annotations


class Key:
    """Names of AnnData slots used across gclandscape.

    Examples
    --------
    >>> from gclandscape._keys import Key
    >>> Key.layers.counts
    'counts'
    >>> Key.basin("gcl_landscape")
    'gcl_landscape_basin'
    """

    class layers:
        counts = "counts"
        lognorm = "gcl_lognorm"
        denoised = "gcl_denoised"
        drift = "gcl_drift"
        spliced = "spliced"
        unspliced = "unspliced"

    class obs:
        celltype = "celltype"
        sim_time = "sim_time"
        pseudotime = "gcl_pseudotime"
        trajectory = "sim_trajectory"
        condition = "condition"
        energy = "gcl_energy"

    class obsm:
        latent = "X_gcl"
        pca = "X_pca"
        umap = "X_umap"

    class uns:
        truth = "gcl_truth"
        reference_network = "gcl_reference_network"
        recipe = "gcl_recipe"
        latent = "gcl_latent"
        genome = "gcl_genome"
        landscape = "gcl_landscape"
        screen = "gcl_screen"
        regulator = "gcl_regulator"  # record of gcl.pp.annotate_regulators
        #: scanpy neighbors_key of the kNN graph ``gclandscape run`` draws its UMAP from
        umap_neighbors = "gcl_umap_neighbors"

    class var:
        highly_variable = "highly_variable"
        regulator = "gcl_regulator"

    class drift_params:
        """Entries of a drift's ``.uns[key]["params"]`` that another step reads."""

        #: bool: the restoring term's deviation came from the counts of the other genes
        #: (the cross-gene estimate); ``fit_grn`` then fits the per-cell drift
        crossgene = "crossgene_deviation"

    @staticmethod
    def basin(landscape_key: str) -> str:
        """Name of the ``.obs`` column holding each cell's basin for a landscape key."""
        return f"{landscape_key}_basin"

    @staticmethod
    def energy(landscape_key: str) -> str:
        """Name of the ``.obs`` column holding each cell's energy for a landscape key."""
        return f"{landscape_key}_energy"

    @staticmethod
    def neighbors(pseudotime_key: str) -> str:
        """scanpy ``neighbors_key`` of the kNN graph written by ``gcl.tl.pseudotime``."""
        return f"{pseudotime_key}_neighbors"

    @staticmethod
    def params(key: str) -> str:
        """Documentation helper: parameters of a step live in ``.uns[key]["params"]``."""
        return f"{key}/params"
