"""Tests of gcl.pp.recipe on small synthetic counts."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key


def _counts(n_cells: int = 150, n_genes: int = 60, seed: int = 0) -> np.ndarray:
    """Negative binomial counts with gene-specific means and over-dispersion."""
    rng = np.random.default_rng(seed)
    means = rng.lognormal(0.5, 1.0, size=n_genes)
    lib = rng.lognormal(0.0, 0.3, size=(n_cells, 1))
    mu = lib * means
    r = 2.0
    return rng.negative_binomial(r, r / (r + mu)).astype(np.float32)


def _adata(counts: np.ndarray) -> ad.AnnData:
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(counts.shape[0])])
    var = pd.DataFrame(index=[f"gene{j}" for j in range(counts.shape[1])])
    return ad.AnnData(counts.copy(), obs=obs, var=var, layers={"counts": counts.copy()})


def test_lognorm_matches_definition_and_counts_untouched():
    counts = _counts()
    adata = _adata(counts)
    gcl.pp.recipe(adata, n_top_genes=20, target_sum=1e4)
    np.testing.assert_array_equal(adata.layers[Key.layers.counts], counts)
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(adata.layers[Key.layers.lognorm], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adata.X, expected, rtol=1e-5, atol=1e-5)
    # .X and the layer are separate arrays: scaling .X in place leaves the layer alone
    assert not np.shares_memory(adata.X, adata.layers[Key.layers.lognorm])


def test_default_target_sum_is_median_library_size():
    counts = _counts(seed=3)
    adata = _adata(counts)
    gcl.pp.recipe(adata, n_top_genes=20)
    back = np.expm1(adata.layers[Key.layers.lognorm]).sum(1)
    np.testing.assert_allclose(back, np.median(counts.sum(1)), rtol=1e-4)


def test_empty_cells_and_genes_removed_and_reported(caplog):
    counts = _counts()
    counts[[3, 7], :] = 0
    counts[:, [5, 11, 12]] = 0
    adata = _adata(counts)
    with caplog.at_level(logging.INFO, logger="gclandscape"):
        gcl.pp.recipe(adata, n_top_genes=20)
    assert adata.shape == (148, 57)
    assert "cell3" not in adata.obs_names
    assert "gene5" not in adata.var_names
    record = adata.uns[Key.uns.recipe]
    assert record["n_cells_removed"] == 2
    assert record["n_genes_removed"] == 3
    assert "counts" in record["cells_removed_because"]
    assert "cells" in record["genes_removed_because"]
    assert "removed 2 cells" in caplog.text
    assert "removed 3 genes" in caplog.text


def test_min_counts_threshold():
    counts = _counts()
    totals = counts.sum(1)
    threshold = float(np.quantile(totals, 0.25))
    adata = _adata(counts)
    gcl.pp.recipe(adata, n_top_genes=20, min_counts=threshold)
    assert adata.n_obs == int((totals >= threshold).sum())
    assert adata.uns[Key.uns.recipe]["params"]["min_counts"] == threshold


def test_hvg_seurat_v3_on_counts_and_cap():
    adata = _adata(_counts())
    gcl.pp.recipe(adata, n_top_genes=25, n_comps=10)
    assert int(adata.var[Key.var.highly_variable].sum()) == 25
    assert adata.uns[Key.uns.recipe]["hvg_flavor"] == "seurat_v3"
    assert adata.uns["hvg"]["flavor"] == "seurat_v3"
    assert adata.obsm[Key.obsm.pca].shape == (150, 10)
    # PCA used only the highly variable genes
    loadings = adata.varm["PCs"]
    assert np.all(loadings[~adata.var[Key.var.highly_variable].to_numpy()] == 0)

    capped = _adata(_counts())
    gcl.pp.recipe(capped, n_top_genes=5000, n_comps=500)
    assert int(capped.var[Key.var.highly_variable].sum()) == 60
    assert capped.obsm[Key.obsm.pca].shape == (150, 59)
    assert capped.uns[Key.uns.recipe]["n_comps"] == 59
    assert capped.uns[Key.uns.recipe]["params"]["n_top_genes"] == 5000


def test_integer_x_used_as_counts_when_layer_missing():
    counts = _counts()
    adata = ad.AnnData(sparse.csr_matrix(counts))
    gcl.pp.recipe(adata, n_top_genes=20)
    assert adata.uns[Key.uns.recipe]["counts_source"] == ".X"
    np.testing.assert_array_equal(adata.layers[Key.layers.counts].toarray(), counts)
    assert sparse.issparse(adata.X)
    assert float(adata.X.max()) < np.log1p(counts.max()) + 10  # log scale, not counts
    assert not np.allclose(adata.X.toarray(), counts)


def test_lognormalised_x_without_counts_uses_seurat(caplog):
    counts = _counts()
    logx = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    adata = ad.AnnData(logx.copy())
    with caplog.at_level(logging.WARNING, logger="gclandscape"):
        gcl.pp.recipe(adata, n_top_genes=20)
    assert "no counts found" in caplog.text
    assert adata.uns[Key.uns.recipe]["hvg_flavor"] == "seurat"
    assert adata.uns[Key.uns.recipe]["counts_source"] == "none"
    np.testing.assert_allclose(adata.X, logx, rtol=1e-6)
    assert int(adata.var[Key.var.highly_variable].sum()) == 20


def test_copy_leaves_input_untouched():
    counts = _counts()
    counts[0] = 0
    adata = _adata(counts)
    before = adata.copy()
    out = gcl.pp.recipe(adata, n_top_genes=20, copy=True)
    assert out is not None
    assert out.n_obs == 149
    assert adata.shape == before.shape
    np.testing.assert_array_equal(adata.X, before.X)
    assert list(adata.uns.keys()) == []
    assert list(adata.obsm.keys()) == []
    assert list(adata.layers.keys()) == ["counts"]
    assert gcl.pp.recipe(adata, n_top_genes=20) is None


def test_params_stored_and_round_trip(tmp_path):
    adata = _adata(_counts())
    gcl.pp.recipe(adata, n_top_genes=20, n_comps=7, key_added="my_recipe")
    params = adata.uns["my_recipe"]["params"]
    assert params == {
        "n_top_genes": 20,
        "layer": "counts",
        "min_counts": 1,
        "min_cells": 1,
        "target_sum": None,
        "n_comps": 7,
    }
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert back.uns["my_recipe"]["n_highly_variable"] == 20


def test_non_integer_counts_layer_named_in_error():
    counts = _counts()
    adata = _adata(counts)
    adata.layers["counts"] = counts + 0.5
    adata.layers["raw"] = counts
    with pytest.raises(GclError, match=r"layer 'counts'.*non-integer.*layer='raw'"):
        gcl.pp.recipe(adata)


def test_negative_counts_error():
    counts = _counts()
    counts[0, 0] = -1
    adata = _adata(counts)
    with pytest.raises(GclError, match=r"layer 'counts'.*negative"):
        gcl.pp.recipe(adata)


def test_scaled_x_without_counts_error():
    x = np.random.default_rng(0).normal(size=(50, 20))
    with pytest.raises(GclError, match="negative values"):
        gcl.pp.recipe(ad.AnnData(x))


def test_everything_filtered_error():
    adata = _adata(_counts())
    with pytest.raises(GclError, match="remove all cells"):
        gcl.pp.recipe(adata, min_counts=10**9)


def test_nan_in_x_error():
    x = np.log1p(_counts())
    x[1, 1] = np.nan
    with pytest.raises(GclError, match="NaN"):
        gcl.pp.recipe(ad.AnnData(x))


def _snapshot(adata: ad.AnnData) -> dict:
    return {
        "obs": adata.obs.copy(),
        "var": adata.var.copy(),
        "layers": sorted(adata.layers.keys()),
        "uns": sorted(adata.uns.keys()),
        "obsm": sorted(adata.obsm.keys()),
        "X": adata.X.toarray() if sparse.issparse(adata.X) else np.array(adata.X),
    }


def _assert_unchanged(adata: ad.AnnData, before: dict) -> None:
    pd.testing.assert_frame_equal(adata.obs, before["obs"])
    pd.testing.assert_frame_equal(adata.var, before["var"])
    assert sorted(adata.layers.keys()) == before["layers"]
    assert sorted(adata.uns.keys()) == before["uns"]
    assert sorted(adata.obsm.keys()) == before["obsm"]
    x = adata.X.toarray() if sparse.issparse(adata.X) else adata.X
    np.testing.assert_array_equal(x, before["X"])


@pytest.mark.parametrize("to_sparse", [False, True])
@pytest.mark.parametrize("scale", ["large", "small"])
def test_scaled_counts_in_x_are_refused_before_anything_is_written(scale, to_sparse):
    """Counts x 1.13 (as ambient-corrected counts look) are neither counts nor log values."""
    if scale == "large":
        counts = _counts()  # up to hundreds: x 1.13 exceeds any log-normalised value
    else:
        counts = np.random.default_rng(1).poisson(2.0, size=(150, 60)).astype(np.float32)
    x = (counts * 1.13).astype(np.float32)
    adata = ad.AnnData(sparse.csr_matrix(x) if to_sparse else x)
    adata.obs_names = [f"cell{i}" for i in range(adata.n_obs)]
    before = _snapshot(adata)
    with pytest.raises(GclError, match=r"look like scaled or corrected counts.*np\.rint"):
        gcl.pp.recipe(adata, n_top_genes=20)
    _assert_unchanged(adata, before)


def test_everything_filtered_error_leaves_adata_unchanged():
    adata = ad.AnnData(_counts())  # counts in .X: recipe would copy them into a layer
    before = _snapshot(adata)
    with pytest.raises(GclError, match="remove all cells"):
        gcl.pp.recipe(adata, min_counts=10**9)
    _assert_unchanged(adata, before)
