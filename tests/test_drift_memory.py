"""tl.drift's memory: sparse drift layers, column statistics of sparse counts, fewer temporaries.

The values must be those of the dense computation it replaced; the references below are that
computation (kept here, not in src/), so a change of values in src/ fails these tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import gclandscape as gcl
import gclandscape.tl._deviation as deviation_mod
import gclandscape.tl._drift as drift_mod
from gclandscape._keys import Key
from gclandscape.tl._smoothing import _row_normalise, _smoothed

LAYERS = ("", "_path", "_state")


@pytest.fixture(scope="module")
def myeloid_counts():
    adata = gcl.datasets.myeloid(n_cells=400, n_targets=80)
    gcl.pp.recipe(adata)
    return adata


def _dense_selection(adata, genes: list[str], max_genes: int) -> np.ndarray:
    """The other genes' library-normalised counts as selected before (all of them dense)."""
    counts = adata.layers[Key.layers.counts]
    lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    libf = np.median(lib) / lib
    others = np.ones(adata.n_vars, dtype=bool)
    others[adata.var_names.get_indexer(genes)] = False
    hv = adata.var[Key.var.highly_variable].to_numpy(dtype=bool)
    if hv[others].sum() >= 10:
        others &= hv
    sub = counts[:, np.flatnonzero(others)]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    measured = sub.astype(np.float64) * libf[:, None]
    mean = measured.mean(axis=0)
    measured, mean = measured[:, mean > 0], mean[mean > 0]
    if measured.shape[1] > max_genes:
        fano = measured.var(axis=0) / mean
        measured = measured[:, np.sort(np.argsort(-fano, kind="stable")[:max_genes])]
    return measured


def _dense_crossgene(xs, scale, measured, libf, smooth, b=8, seed=0):
    """crossgene_deviation as it was: drift and measured genes joined, every step dense."""
    from sklearn.cluster import KMeans

    n, r = xs.shape
    both = np.hstack([xs * scale, measured])
    local = _smoothed(smooth, both, {2, b})
    res2 = (both - local[2]) ** 2
    a, m2 = local[2] * libf[:, None], local[2] ** 2
    theta = 1.0 / max(float(np.sum(m2 * (res2 - a)) / np.sum(m2 * m2)), 1e-3)
    mu = np.maximum(local[b], 1e-3)
    var = mu * libf[:, None] + mu**2 / theta
    y = both - local[b]
    y_r, var_r = y[:, :r] / scale, var[:, :r] / scale**2
    spread = y[:, r:].std(axis=0)
    spread[spread <= 0] = 1.0
    y_t, var_t = y[:, r:] / spread, var[:, r:] / spread**2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = KMeans(2, n_init=4, random_state=seed).fit_predict(local[b][:, :r] / scale)
    assert np.bincount(labels).min() >= max(50, 4 * r)  # the two-cluster branch is tested
    out = np.zeros((n, r))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        total = y_r[idx].var(axis=0)
        prior = np.maximum(total - var_r[idx].mean(axis=0), 0.05 * total) + 1e-12
        w_t = 1.0 / var_t[idx]
        out[idx] = deviation_mod._factor_posterior(
            y_t[idx] * w_t, w_t, y_r[idx], 1.0 / var_r[idx], prior
        )
    return 0.5 * (out + (local[2][:, :r] - local[b][:, :r]) / scale)


def _capture_measured(monkeypatch) -> dict:
    """Replace the cross-gene estimate by a recorder of its inputs."""
    seen: dict = {}

    def record(xs, scale, measured, libf, smooth, **kwargs):
        seen.update(xs=xs, scale=scale, measured=measured.copy(), libf=libf, smooth=smooth)
        return np.zeros_like(xs)

    monkeypatch.setattr(drift_mod, "crossgene_deviation", record)
    return seen


@pytest.mark.parametrize("dense_counts", [False, True])
def test_sparse_column_statistics_select_the_dense_genes(myeloid_counts, monkeypatch, dense_counts):
    adata = myeloid_counts.copy()
    if dense_counts:
        adata.layers[Key.layers.counts] = adata.layers[Key.layers.counts].toarray()
    regs = list(adata.uns[Key.uns.truth]["regulators"])
    monkeypatch.setattr(drift_mod, "MAX_MEASURED_GENES", 25)  # the cap bites: 80 targets
    monkeypatch.setattr(deviation_mod, "_BLOCK_VALUES", 7 * 80)  # blocks of about 7 rows
    seen = _capture_measured(monkeypatch)
    x, _ = drift_mod.expression_states(adata, regs)
    graph, _ = drift_mod.neighbour_graph(adata, None, 15)
    _, label = drift_mod._deviation_from_counts(adata, regs, x, np.ones(len(regs)), graph, 0)
    assert label == f"{drift_mod.CROSSGENE_LABEL}25 other genes"
    reference = _dense_selection(adata, regs, 25)
    assert seen["measured"].dtype == np.float64
    np.testing.assert_array_equal(seen["measured"], reference)  # same genes, same values


def test_column_moments_equal_numpy_mean_and_var(monkeypatch):
    rng = np.random.default_rng(1)
    counts = sp.random(103, 40, density=0.3, random_state=2, format="csr") * 50
    libf = rng.uniform(0.5, 2.0, 103)
    cols = np.array([0, 3, 4, 17, 39])
    dense = counts.toarray()[:, cols] * libf[:, None]
    for block in (40 * 5, 5 * 1, 10**6):  # several blocks, one row each, one block
        monkeypatch.setattr(deviation_mod, "_BLOCK_VALUES", block)
        mean, var = drift_mod._column_moments(counts, cols, libf)
        np.testing.assert_allclose(mean, dense.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(var, dense.var(axis=0), rtol=1e-12)


def test_crossgene_deviation_equals_the_dense_computation(myeloid_counts, monkeypatch):
    adata = myeloid_counts.copy()
    regs = list(adata.uns[Key.uns.truth]["regulators"])[:4]
    seen = _capture_measured(monkeypatch)
    x, _ = drift_mod.expression_states(adata, regs)
    scale = np.percentile(x, 99, axis=0)
    graph, _ = drift_mod.neighbour_graph(adata, None, 15)
    drift_mod._deviation_from_counts(adata, regs, x / scale, scale, graph, 0)
    xs, measured, libf = seen["xs"], seen["measured"], seen["libf"]
    smooth = _row_normalise(graph + sp.eye(graph.shape[0], format="csr"))
    reference = _dense_crossgene(xs, scale, measured, libf, smooth)
    kept = measured.copy()
    got = deviation_mod.crossgene_deviation(xs, scale, measured, libf, smooth)
    np.testing.assert_array_equal(measured, kept)  # not overwritten unless asked
    # the same arithmetic in another order (blocked sums): equal far below any noise
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-9 * np.abs(reference).max())
    again = deviation_mod.crossgene_deviation(
        xs, scale, measured, libf, smooth, overwrite_measured=True
    )
    np.testing.assert_allclose(again, got, rtol=0, atol=1e-12 * np.abs(got).max())
    assert not np.array_equal(measured, kept)  # its memory was reused


def test_gene_columns_equal_dense_assignment():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(6, 4))
    values[2, 1] = 0.0  # a stored zero stays stored
    idx = np.array([7, 2, 9, 2])  # unsorted, with a gene listed twice (its last column wins)
    layer = drift_mod._gene_columns(values, idx, 12)
    dense = np.zeros((6, 12), dtype=np.float32)
    dense[:, idx] = values
    assert sp.isspmatrix_csr(layer)
    assert layer.dtype == np.float32
    np.testing.assert_array_equal(layer.toarray(), dense)
    assert layer.nnz == 6 * 3
    np.testing.assert_array_equal(np.diff(layer.indptr), 3)
    np.testing.assert_array_equal(layer.indices.reshape(6, 3), np.tile([2, 7, 9], (6, 1)))


def _toarray(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def test_drift_layers_are_sparse_and_equal_the_dense_reference(myeloid_counts, monkeypatch):
    adata = myeloid_counts.copy()
    gcl.tl.drift(adata, time_key=Key.obs.sim_time)
    regs = list(adata.uns[Key.uns.truth]["regulators"])
    cols = np.sort(adata.var_names.get_indexer(regs))
    for suffix in LAYERS:
        layer = adata.layers[f"{Key.layers.drift}{suffix}"]
        assert sp.isspmatrix_csr(layer)
        assert layer.dtype == np.float32
        assert layer.nnz == adata.n_obs * len(regs)  # memory: cells × drift genes
        np.testing.assert_array_equal(layer.indices.reshape(adata.n_obs, -1)[0], cols)
        np.testing.assert_array_equal(np.ptp(layer.indices.reshape(adata.n_obs, -1), axis=0), 0)
    # the dense computation (selection and cross-gene estimate as before, dense layers)
    reference = adata.copy()

    def dense_deviation(adata, genes, xs, scale, graph, seed):
        measured = _dense_selection(adata, genes, drift_mod.MAX_MEASURED_GENES)
        counts = adata.layers[Key.layers.counts]
        lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        smooth = _row_normalise(graph + sp.eye(graph.shape[0], format="csr"))
        dev = _dense_crossgene(xs, scale, measured, np.median(lib) / lib, smooth, seed=seed)
        return dev, f"{drift_mod.CROSSGENE_LABEL}{measured.shape[1]} other genes"

    monkeypatch.setattr(drift_mod, "_deviation_from_counts", dense_deviation)
    gcl.tl.drift(reference, time_key=Key.obs.sim_time)
    assert (
        reference.uns[Key.layers.drift]["params"]["deviation"]
        == adata.uns[Key.layers.drift]["params"]["deviation"]
    )
    for suffix in LAYERS:
        key = f"{Key.layers.drift}{suffix}"
        want = _toarray(reference.layers[key])
        assert np.all(want[:, np.setdiff1d(np.arange(adata.n_vars), cols)] == 0)
        np.testing.assert_allclose(
            _toarray(adata.layers[key]), want, rtol=0, atol=1e-6 * np.abs(want).max()
        )


def test_sparse_drift_layers_roundtrip_h5ad_and_feed_fit_grn(myeloid_counts, tmp_path):
    adata = myeloid_counts.copy()
    gcl.tl.drift(adata, time_key=Key.obs.sim_time)
    gcl.io.write(adata, tmp_path / "d.h5ad")
    back = gcl.io.read(tmp_path / "d.h5ad")
    for suffix in LAYERS:
        key = f"{Key.layers.drift}{suffix}"
        assert sp.issparse(back.layers[key])
        assert back.layers[key].dtype == np.float32
        assert back.layers[key].nnz == adata.layers[key].nnz
        np.testing.assert_array_equal(back.layers[key].toarray(), adata.layers[key].toarray())
    # fit_grn reads the stored drift of the sparse layers (no recomputation: same values)
    genes = list(adata.uns[Key.uns.truth]["regulators"])
    genome = gcl.landscape.fit_grn(back, genes=genes, n_bootstrap=0, readout=False, seed=0)
    assert back.uns["gcl_genome"]["params"]["mode"] == "drift"
    dense = back.copy()
    for suffix in LAYERS:
        key = f"{Key.layers.drift}{suffix}"
        dense.layers[key] = back.layers[key].toarray()
    from_dense = gcl.landscape.fit_grn(dense, genes=genes, n_bootstrap=0, readout=False, seed=0)
    np.testing.assert_array_equal(genome.W, from_dense.W)
