"""The drift's neighbour graph: scanpy's UMAP connectivities, computed without umap."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gclandscape.tl._drift_inputs import neighbour_graph, umap_connectivities


def _cells(n: int, seed: int) -> np.ndarray:
    """Two elongated clusters of different density, as float32 like a PCA."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n // 2, 8)) * np.linspace(2.0, 0.2, 8)
    b = rng.normal(size=(n - n // 2, 8)) * 0.3 + 4.0
    return np.vstack([a, b]).astype(np.float32)


@pytest.mark.parametrize(("n", "k", "seed"), [(300, 15, 0), (500, 30, 1)])
def test_equals_scanpy_umap_connectivities(n, k, seed):
    import scanpy as sc

    x = _cells(n, seed)
    ref = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(n)]))
    ref.obsm["X_pca"] = x
    sc.pp.neighbors(ref, n_neighbors=k, use_rep="X_pca", random_state=0)  # method="umap"
    expected = sp.csr_matrix(ref.obsp["connectivities"])
    got, rep = neighbour_graph(ref, None, k)
    assert rep == "X_pca"
    assert got.shape == (n, n)
    # the same edges ...
    assert (abs((got != 0).astype(int) - (expected != 0).astype(int))).sum() == 0
    # ... with the same weights up to float32 rounding of the bandwidth search
    assert abs(got - expected).max() < 1e-5
    assert expected.max() > 0.99  # a real graph, not an empty one


def test_weights_are_symmetric_fuzzy_memberships():
    x = _cells(120, 3)
    x[1] = x[0]  # a duplicated cell: distance 0 to a neighbour
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=10).fit(x).kneighbors(x)
    w = umap_connectivities(idx, dist)
    assert abs(w - w.T).max() == 0
    assert w.diagonal().max() == 0
    assert w.data.min() > 0
    assert w.data.max() <= 1.0
    # each cell's nearest other cell is connected with weight 1 (its distance equals rho);
    # with the duplicate, a tie may list the twin before the cell itself
    nearest = np.array([next(j for j in row if j != i) for i, row in enumerate(idx)])
    assert np.allclose(np.asarray(w[np.arange(len(x)), nearest]).ravel(), 1.0)
    # each cell's bandwidth makes its directed weights over its k - 1 neighbours sum to
    # log2(k); the fuzzy union only adds weight, so the symmetrised row sums are at least that
    assert (np.asarray(w.sum(axis=1)).ravel() >= np.log2(10) - 1e-3).all()


def test_the_graph_does_not_import_umap():
    """umap's numba kernels are compiled in every process (~11 s): the drift must not need them."""
    code = (
        "import sys, numpy as np, anndata as ad\n"
        "from gclandscape.tl._drift_inputs import neighbour_graph\n"
        "a = ad.AnnData(np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32))\n"
        "a.obsm['X_pca'] = a.X\n"
        "neighbour_graph(a, None, 15)\n"
        "print('umap' in sys.modules, 'pynndescent' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
