"""gcl.tl.drift: accuracy against known dx/dt, scaling, and bad input."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key
from gclandscape.tl._drift import (
    decay_rate,
    estimate_drift,
    forward_transition_matrix,
    smooth_states,
)


def _dense(m) -> np.ndarray:
    """A layer's values as a dense array (tl.drift writes sparse layers)."""
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def _pergene_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _dense(a), np.asarray(b)
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


@pytest.fixture
def myeloid_small(myeloid_recipe):
    return myeloid_recipe.copy()


def _curve(n=600, seed=0):
    """Cells along a known 1-D trajectory x(t) with analytic dx/dt, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, n))
    x = np.c_[np.sin(3 * t), t**2, 1 / (1 + np.exp(-10 * (t - 0.5)))]
    dxdt = np.c_[3 * np.cos(3 * t), 2 * t, 10 * x[:, 2] * (1 - x[:, 2])]
    return t, x + rng.normal(0, 0.02, x.shape), dxdt


def _knn_graph(x, k=15):
    from sklearn.neighbors import kneighbors_graph

    g = kneighbors_graph(x, k, include_self=False)
    return ((g + g.T) > 0).astype(float)


def test_forward_matrix_is_stochastic_and_forward_biased():
    t, x, _ = _curve()
    g = _knn_graph(x)
    T = forward_transition_matrix(g, t)
    np.testing.assert_allclose(np.asarray(T.sum(1)).ravel(), 1.0)
    coo = T.tocoo()
    later = t[coo.col] > t[coo.row]
    # most transition mass points forward in time
    assert coo.data[later].sum() > 0.8 * coo.data.sum()


def test_estimate_drift_recovers_known_derivative():
    t, x, dxdt = _curve()
    v = estimate_drift(x, t, _knn_graph(x), restoring=0.0)
    inner = slice(60, -60)  # slopes are one-sided at the ends of the trajectory
    r = _pergene_r(v[inner], dxdt[inner])
    assert (r > 0.8).all(), r
    # shrinkage shortens every gene's slope by about the same factor (a change of time unit),
    # so the relative sizes of the genes' drifts are right
    ratio = np.median(v[inner] / dxdt[inner], axis=0)
    assert ratio.max() / ratio.min() < 1.3, ratio
    # with consistent smoothing of time and no shrinkage the slope is unbiased
    v0 = estimate_drift(x, t, _knn_graph(x), shrinkage=0.0, time_smoothing=3, restoring=0.0)
    ratio0 = np.median(v0[inner] / dxdt[inner], axis=0)
    np.testing.assert_allclose(ratio0, 1.0, atol=0.1)


@pytest.fixture(scope="module")
def myeloid_pseudotime(myeloid_recipe):
    adata = myeloid_recipe.copy()
    gcl.tl.pseudotime(adata, root="progenitor", groupby="celltype", use_rep="X_pca")
    return adata


def _myeloid_r(adata, **kwargs) -> np.ndarray:
    adata = adata.copy()
    gcl.tl.drift(adata, **kwargs)
    truth = adata.uns[Key.uns.truth]
    v = adata[:, list(truth["regulators"])].layers[Key.layers.drift]
    return _pergene_r(_dense(v), np.asarray(truth["velocity"]))


# measured on the myeloid default (seed 0), median r: sim_time 0.483 (path only) and 0.561
# (restoring=1, the default, with the cross-gene deviation); pseudotime 0.452 and 0.519 (the
# issue's goal is 0.5 on both). benchmarks/latent.py --drift-only has 6 seeds
@pytest.mark.parametrize(
    ("time_key", "restoring", "floor"),
    [
        (Key.obs.sim_time, 0.0, 0.45),
        (Key.obs.pseudotime, 0.0, 0.42),
        (Key.obs.sim_time, 1.0, 0.54),
        (Key.obs.pseudotime, 1.0, 0.50),
    ],
)
def test_drift_on_myeloid_correlates_with_truth(myeloid_pseudotime, time_key, restoring, floor):
    r = _myeloid_r(myeloid_pseudotime, time_key=time_key, restoring=restoring)
    # a drift of the wrong sign or unrelated to the dynamics gives r <= 0
    assert np.median(r) > floor, r
    assert (r > 0.15).all(), r


def test_restoring_term_improves_myeloid_drift(myeloid_pseudotime):
    with_pull = _myeloid_r(myeloid_pseudotime, time_key=Key.obs.sim_time, restoring=1.0)
    path_only = _myeloid_r(myeloid_pseudotime, time_key=Key.obs.sim_time, restoring=0.0)
    assert np.median(with_pull) > np.median(path_only) + 0.02, (with_pull, path_only)


@pytest.mark.parametrize("time_key", [Key.obs.sim_time, Key.obs.pseudotime])
def test_crossgene_deviation_beats_the_neighbour_estimate(
    myeloid_pseudotime, monkeypatch, time_key
):
    # the restoring term's deviation from the counts of all genes (a factor model over the
    # 300 targets, averaged with S^2 x - S^8 x) against S^2 x - S^8 x alone; measured on
    # seed 0: 0.527 -> 0.561 (clock), 0.485 -> 0.519 (pseudotime)
    import gclandscape.tl._drift as drift_mod

    adata = myeloid_pseudotime.copy()
    gcl.tl.drift(adata, time_key=time_key)
    assert adata.uns[Key.layers.drift]["params"]["deviation"] == "counts of 300 other genes"
    assert adata.uns[Key.layers.drift]["params"][Key.drift_params.crossgene] is True
    truth = adata.uns[Key.uns.truth]
    regs = list(truth["regulators"])
    crossgene = _pergene_r(adata[:, regs].layers[Key.layers.drift], truth["velocity"])
    monkeypatch.setattr(drift_mod, "MAX_CROSSGENE_GENES", 5)
    gcl.tl.drift(adata, time_key=time_key)
    assert adata.uns[Key.layers.drift]["params"]["deviation"].startswith("neighbours (more than 5")
    assert adata.uns[Key.layers.drift]["params"][Key.drift_params.crossgene] is False
    neighbours = _pergene_r(adata[:, regs].layers[Key.layers.drift], truth["velocity"])
    assert np.median(crossgene) > np.median(neighbours) + 0.025, (crossgene, neighbours)


def test_crossgene_deviation_needs_counts(myeloid_pseudotime):
    adata = myeloid_pseudotime.copy()
    gcl.tl.drift(adata, time_key=Key.obs.sim_time, layer=Key.layers.lognorm)
    assert adata.uns[Key.layers.drift]["params"]["deviation"] == "neighbours"
    assert adata.uns[Key.layers.drift]["params"][Key.drift_params.crossgene] is False
    gcl.tl.drift(adata, time_key=Key.obs.sim_time, restoring=0.0)
    assert adata.uns[Key.layers.drift]["params"]["deviation"] == "neighbours"
    assert adata.uns[Key.layers.drift]["params"][Key.drift_params.crossgene] is False


def test_estimate_drift_takes_a_precomputed_deviation():
    t, x, _ = _curve(n=300)
    g = _knn_graph(x)
    v0 = estimate_drift(x, t, g, restoring=0.0)
    dev = np.ones_like(x)
    v = estimate_drift(x, t, g, deviation=dev)
    smooth = smooth_states(estimate_drift(x, t, g, restoring=0.0, n_post_smooth=1), g, 1)
    # drift = S path - gamma * deviation: a constant deviation shifts every cell alike
    shift = smooth - v
    np.testing.assert_allclose(shift, shift[:1].repeat(len(x), 0), atol=1e-12)
    assert not np.allclose(v, v0)
    with pytest.raises(GclError, match="shape of x"):
        estimate_drift(x, t, g, deviation=dev[:, :2])


def test_decay_rate_of_switching_off_genes():
    """Genes decaying freely at rate 3 (per unit of time): the path slopes give the rate."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, 800))
    x = np.c_[np.exp(-3 * t), 0.8 * np.exp(-3 * t), 1 - np.exp(-3 * t)]
    x_obs = x + rng.normal(0, 0.01, x.shape)
    g = _knn_graph(x_obs)
    v, states, _ = estimate_drift(x_obs, t, g, shrinkage=0.0, restoring=0.0, full_output=True)
    assert decay_rate(v, states) == pytest.approx(3.0, rel=0.2)


def test_restoring_term_is_the_pull_back_to_the_local_mean():
    # drift = S path - gamma * (S^2 x - S^8 x), gamma from the smoothed path velocities; the
    # path velocity (restoring=0) refers to the 3-step smoothed states and is returned as well
    t, x, _ = _curve(n=400)
    x = np.c_[x, np.exp(-3 * t)]  # a decaying gene sets the decay rate
    g = _knn_graph(x)
    v, states, path = estimate_drift(x, t, g, full_output=True)
    v0, states0, path0 = estimate_drift(x, t, g, restoring=0.0, full_output=True)
    np.testing.assert_allclose(states, smooth_states(x, g, 3))
    np.testing.assert_allclose(states0, smooth_states(x, g, 3))
    np.testing.assert_array_equal(path, path0)
    np.testing.assert_array_equal(v0, path0)
    path1 = smooth_states(path0, g, 1)
    gamma = decay_rate(path1, states0)
    assert gamma > 0.5
    pull = -gamma * (smooth_states(x, g, 2) - smooth_states(x, g, 8))
    np.testing.assert_allclose(v, path1 + pull, atol=1e-10)
    # a cell above its neighbours is pulled down: the pull is anti-correlated with the offset
    offset = x - smooth_states(x, g, 8)
    assert (_pergene_r(pull, offset) < -0.3).all()


def test_drift_writes_slots_and_scaling(myeloid_small):
    adata = myeloid_small.copy()
    out = gcl.tl.drift(adata, time_key="sim_time", copy=True)
    assert Key.layers.drift not in adata.layers  # copy=True leaves the input alone
    regs = out.var_names[out.var[Key.var.regulator].to_numpy(bool)]
    assert out.var[f"{Key.layers.drift}_gene"].sum() == len(regs)
    others = ~out.var[f"{Key.layers.drift}_gene"].to_numpy(bool)
    assert np.all(_dense(out.layers[Key.layers.drift])[:, others] == 0)
    scale = out.var.loc[regs, f"{Key.layers.drift}_scale"].to_numpy()
    assert np.all(scale > 0)
    params = out.uns[Key.layers.drift]["params"]
    assert params["time_key"] == "sim_time"
    assert params["time_smoothing"] == 4  # a simulation clock is smoothed
    assert list(params["genes"]) == list(regs)
    # the per-cell drift is the path velocity plus the restoring term, both stored
    path = _dense(out.layers[f"{Key.layers.drift}_path"])
    assert np.all(path[:, others] == 0)
    assert not np.allclose(path, _dense(out.layers[Key.layers.drift]))
    plain = gcl.tl.drift(adata, time_key="sim_time", restoring=0.0, copy=True)
    np.testing.assert_array_equal(_dense(plain.layers[Key.layers.drift]), path)
    np.testing.assert_array_equal(_dense(plain.layers[f"{Key.layers.drift}_path"]), path)


def test_denoised_layer_is_used_only_when_asked_for(myeloid_small):
    # the VAE's denoised layer lowered drift accuracy and knockout predictions on the myeloid
    # benchmark, so the default stays on the normalised counts even when a latent was fitted
    adata = myeloid_small.copy()
    plain = gcl.tl.drift(adata, time_key="sim_time", copy=True)
    rng = np.random.default_rng(0)
    adata.layers[Key.layers.denoised] = rng.uniform(0, 5, adata.shape)
    default = gcl.tl.drift(adata, time_key="sim_time", copy=True)
    assert default.uns[Key.layers.drift]["params"]["expression"] == "normalised counts"
    np.testing.assert_array_equal(
        _dense(default.layers[Key.layers.drift]), _dense(plain.layers[Key.layers.drift])
    )
    asked = gcl.tl.drift(adata, time_key="sim_time", layer=Key.layers.denoised, copy=True)
    assert asked.uns[Key.layers.drift]["params"]["expression"] == Key.layers.denoised
    assert not np.allclose(
        _dense(asked.layers[Key.layers.drift]), _dense(plain.layers[Key.layers.drift])
    )


@pytest.mark.slow
def test_fit_grn_fits_the_per_cell_drift_only_with_the_crossgene_deviation(
    myeloid_small, monkeypatch
):
    # the per-cell drift is fitted when its restoring term comes from the cross-gene
    # deviation; with the neighbourhood deviation (here forced by a lower gene cap) or no
    # restoring term, the path velocity is, so those two genomes are identical
    import gclandscape.tl._drift as drift_module

    def fitted(restoring: float):
        adata = myeloid_small.copy()
        gcl.tl.drift(adata, time_key="sim_time", restoring=restoring)
        genome = gcl.landscape.fit_grn(adata, n_bootstrap=0)
        return genome, adata.uns["gcl_genome"]["params"]

    crossgene, params = fitted(1.0)
    assert params["target"] == "per-cell drift"
    assert params["deviation"].startswith(drift_module.CROSSGENE_LABEL)
    path_only, params = fitted(0.0)
    assert params["target"] == "path velocity"
    monkeypatch.setattr(drift_module, "MAX_CROSSGENE_GENES", 5)
    neighbours, params = fitted(1.0)
    assert params["target"] == "path velocity"
    assert params["deviation"].startswith("neighbours")
    np.testing.assert_array_equal(path_only.W, neighbours.W)
    assert not np.allclose(crossgene.W, path_only.W)


def test_drift_roundtrips_h5ad(myeloid_small, tmp_path):
    adata = myeloid_small.copy()
    gcl.tl.drift(adata, time_key="sim_time")
    gcl.io.write(adata, tmp_path / "d.h5ad")
    back = gcl.io.read(tmp_path / "d.h5ad")
    np.testing.assert_array_equal(
        _dense(back.layers[Key.layers.drift]), _dense(adata.layers[Key.layers.drift])
    )
    assert back.uns[Key.layers.drift]["params"]["method"] == "neighbour_slope"


def test_velocity_layer_is_scaled_by_expression_scale(myeloid_small):
    adata = myeloid_small.copy()
    rng = np.random.default_rng(0)
    adata.layers["velocity"] = rng.normal(size=adata.shape).astype(np.float32)
    genes = list(adata.var_names[:5])
    gcl.tl.drift(adata, genes=genes, velocity_layer="velocity")
    # a velocity layer has no restoring term, so fit_grn fits the path (the velocity itself)
    assert adata.uns[Key.layers.drift]["params"][Key.drift_params.crossgene] is False
    scale = adata.var.loc[genes, f"{Key.layers.drift}_scale"].to_numpy()
    np.testing.assert_allclose(
        _dense(adata[:, genes].layers[Key.layers.drift]),
        adata[:, genes].layers["velocity"] / scale,
        rtol=1e-5,
    )


def test_ordered_time_points_are_accepted():
    t, x, dxdt = _curve(n=400)
    adata = ad.AnnData(x.astype(np.float32))
    adata.obsm["X_pca"] = x
    labels = pd.cut(t, [-0.01, 0.25, 0.5, 0.75, 1.0], labels=["d0", "d2", "d4", "d6"])
    adata.obs["day"] = pd.Categorical(labels, ordered=True)
    gcl.tl.drift(adata, time_key="day")
    r = _pergene_r(_dense(adata.layers[Key.layers.drift])[50:-50], dxdt[50:-50])
    assert np.median(r) > 0.5, r  # four coarse time points: less than a real clock


def test_no_time_signal_lists_the_three_ways():
    adata = ad.AnnData(np.ones((10, 2), dtype=np.float32))
    with pytest.raises(GclError, match=r"time_key=.*gcl\.tl\.pseudotime.*velocity_layer"):
        gcl.tl.drift(adata)


@pytest.mark.parametrize(
    ("obs", "kwargs", "match"),
    [
        ({"t": np.arange(10.0)}, {"time_key": "nope"}, "Available columns: t"),
        ({"t": [np.nan, *range(9)]}, {"time_key": "t"}, "1 missing or infinite"),
        ({"t": pd.Categorical(list("ab") * 5)}, {"time_key": "t"}, "unordered categorical"),
        ({"t": np.zeros(10)}, {"time_key": "t"}, "constant"),
        ({"t": np.arange(10.0)}, {"time_key": "t", "genes": ["zzz"]}, "zzz"),
        ({"t": np.arange(10.0)}, {"velocity_layer": "velo"}, "velocity_layer='velo'"),
        ({"t": np.arange(10.0)}, {"time_key": "t", "restoring": -1.0}, "restoring must be"),
    ],
)
def test_bad_input(obs, kwargs, match):
    adata = ad.AnnData(
        sp.random(10, 3, density=0.5, format="csr", random_state=0, dtype=np.float32),
        obs=pd.DataFrame(obs, index=[f"c{i}" for i in range(10)]),
    )
    with pytest.raises(GclError, match=match):
        gcl.tl.drift(adata, **kwargs)
