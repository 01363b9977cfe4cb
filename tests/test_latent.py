"""Tests of gcl.latent.fit / LatentModel / gcl.latent.load on small synthetic counts."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import gclandscape as gcl
from gclandscape._errors import GclError, GclFileNotFoundError, GclFormatError
from gclandscape._keys import Key

N_LATENT = 4
EPOCHS = 15
QUIET = {"enable_progress_bar": False}


def branching_counts(n_cells: int = 300, n_genes: int = 60, seed: int = 0) -> ad.AnnData:
    """Negative binomial counts of cells along a branching tree (progenitor → A | B).

    Each cell has a 2-D position: progenitors near the origin, branch A along the first axis,
    branch B along the second. Gene means are ``exp(b + W @ position)``; counts are negative
    binomial with dispersion 5 and a log-normal library size. ``obs["group"]`` holds the
    branch, ``obs["batch"]`` an arbitrary two-level batch.
    """
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, n_cells)
    branch = rng.integers(0, 2, n_cells)
    pos = np.zeros((n_cells, 2))
    after = np.clip(t - 0.3, 0, None) * 3
    pos[branch == 0, 0] = after[branch == 0]
    pos[branch == 1, 1] = after[branch == 1]
    weights = rng.normal(0, 1.0, (2, n_genes))
    base = rng.normal(1.0, 0.5, n_genes)
    lib = rng.lognormal(0, 0.2, (n_cells, 1))
    mu = lib * np.exp(base + pos @ weights)
    r = 5.0
    counts = rng.negative_binomial(r, r / (r + mu)).astype(np.float32)
    group = np.where(t < 0.3, "progenitor", np.where(branch == 0, "A", "B"))
    obs = pd.DataFrame(
        {
            "group": pd.Categorical(group),
            "batch": np.where(rng.uniform(size=n_cells) < 0.5, "b1", "b2"),
            "t": t,
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    return ad.AnnData(np.log1p(counts), obs=obs, var=var, layers={"counts": counts})


@pytest.fixture(scope="module")
def fitted():
    adata = branching_counts()
    before_obs = list(adata.obs.columns)
    model = gcl.latent.fit(
        adata, n_latent=N_LATENT, max_epochs=EPOCHS, seed=0, accelerator="cpu", train_kwargs=QUIET
    )
    return adata, model, before_obs


def test_writes_latent_denoised_and_params(fitted):
    adata, _model, _ = fitted
    z = adata.obsm[Key.obsm.latent]
    assert z.shape == (300, N_LATENT)
    assert np.isfinite(z).all()
    den = adata.layers[Key.layers.denoised]
    assert den.shape == adata.shape
    assert den.dtype == np.float32
    np.testing.assert_allclose(den.sum(1), 1e4, rtol=1e-3)
    info = adata.uns[Key.uns.latent]
    assert info["params"]["model"] == "scvi"
    assert info["params"]["n_latent"] == N_LATENT
    assert info["params"]["layer"] == "counts"
    assert info["params"]["batch_key"] is None
    assert info["epochs_trained"] == EPOCHS == info["max_epochs_used"]
    assert info["stopped_early"] is False
    assert info["device"] == "cpu"
    assert len(info["history"]["elbo_validation"]) == EPOCHS
    assert info["final_losses"]["elbo_validation"] == pytest.approx(
        info["history"]["elbo_validation"][-1]
    )
    # training reduced the loss
    assert info["history"]["elbo_train"][-1] < info["history"]["elbo_train"][0]


def test_no_hidden_writes_and_h5ad_round_trip(fitted, tmp_path):
    adata, _, before_obs = fitted
    assert list(adata.obs.columns) == before_obs
    assert not any(k.startswith("_scvi") for k in adata.uns)
    assert set(adata.layers.keys()) == {"counts", Key.layers.denoised}
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obsm[Key.obsm.latent], adata.obsm[Key.obsm.latent])
    assert back.uns[Key.uns.latent]["params"]["model"] == "scvi"


def test_latent_separates_branches(fitted):
    adata, _, _ = fitted
    acc = cross_val_score(
        KNeighborsClassifier(), adata.obsm[Key.obsm.latent], adata.obs["group"], cv=5
    ).mean()
    assert acc > 0.85, acc  # measured 0.91


def test_encode_new_cells_matches_training_latent(fitted):
    adata, model, _ = fitted
    z = adata.obsm[Key.obsm.latent]
    np.testing.assert_allclose(model.encode(), z, atol=1e-5)
    sub = adata[::7].copy()
    np.testing.assert_allclose(model.encode(sub), z[::7], atol=1e-5)
    np.testing.assert_allclose(model.encode(adata[::7]), z[::7], atol=1e-5)  # a view
    # genes in another order and an extra gene: matched by name
    shuffled = sub[:, sub.var_names[::-1]].copy()
    extra = ad.AnnData(
        np.ones((sub.n_obs, 1), dtype=np.float32),
        obs=pd.DataFrame(index=sub.obs_names),
        var=pd.DataFrame(index=["extra"]),
        layers={"counts": np.ones((sub.n_obs, 1), dtype=np.float32)},
    )
    shuffled = ad.concat([shuffled, extra], axis=1, merge="first")
    np.testing.assert_allclose(model.encode(shuffled), z[::7], atol=1e-5)
    assert "_scvi_batch" not in shuffled.obs
    assert not any(k.startswith("_scvi") for k in sub.uns)


def test_encode_missing_gene_error(fitted):
    adata, model, _ = fitted
    with pytest.raises(GclError, match=r"1 genes of the model are missing.*'gene0'"):
        model.encode(adata[:, 1:].copy())


def test_decode_normalised_and_counts(fitted):
    adata, model, _ = fitted
    z = adata.obsm[Key.obsm.latent][:10]
    expr = model.decode(z)
    assert expr.shape == (10, adata.n_vars)
    np.testing.assert_allclose(expr.sum(1), 1.0, rtol=1e-4)
    # the denoised layer is the decoded expression at each cell's latent mean × 1e4
    np.testing.assert_allclose(
        expr * 1e4, adata.layers[Key.layers.denoised][:10], rtol=1e-4, atol=1e-3
    )
    counts = model.decode(z, library_size=500.0)
    # zero-inflated NB: expected counts are (1 - π) μ ≤ μ = 500 · scale
    assert np.all(counts <= 500.0 * expr * (1 + 1e-4))
    assert counts.sum(1).min() > 0.3 * 500
    assert model.decode(z[0]).shape == (1, adata.n_vars)
    # different latent points decode to different profiles
    assert np.abs(model.decode(z[:1]) - model.decode(z[1:2] + 2.0)).max() > 1e-3


def test_decode_follows_the_branch_genes(fitted):
    """Cells late on branch A decode to higher expression of A's genes than progenitors."""
    adata, model, _ = fitted
    counts = adata.layers["counts"]
    late_a = ((adata.obs["group"] == "A") & (adata.obs["t"] > 0.8)).to_numpy()
    prog = (adata.obs["group"] == "progenitor").to_numpy()
    observed = np.log(counts[late_a].mean(0) + 1) - np.log(counts[prog].mean(0) + 1)
    z = adata.obsm[Key.obsm.latent]
    decoded = (
        np.log(model.decode(z[late_a].mean(0)) * 1e4)[0]
        - np.log(model.decode(z[prog].mean(0)) * 1e4)[0]
    )
    # measured 0.85 with 15 epochs; a decoder ignoring z gives about 0
    assert np.corrcoef(observed, decoded)[0, 1] > 0.7


def test_decode_bad_input(fitted):
    _, model, _ = fitted
    with pytest.raises(GclError, match=r"shape \(n_points, 4\)"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(GclError, match="NaN"):
        model.decode(np.full((1, N_LATENT), np.nan))
    with pytest.raises(GclError, match="library_size"):
        model.decode(np.zeros((1, N_LATENT)), library_size=-1)
    with pytest.raises(GclError, match="not a batch"):
        model.decode(np.zeros((1, N_LATENT)), batch="b1")


def test_save_load_same_latent(fitted, tmp_path):
    adata, model, _ = fitted
    folder = model.save(tmp_path / "model")
    assert (folder / "gcl_latent.json").is_file()
    assert (folder / "module.pt").is_file()
    with pytest.raises(GclError, match="overwrite=True"):
        model.save(folder)
    model.save(folder, overwrite=True)
    fresh = branching_counts()  # same data, a new object with nothing written yet
    loaded = gcl.latent.load(folder, fresh, accelerator="cpu")
    assert loaded.kind == "scvi"
    assert loaded.n_latent == N_LATENT
    np.testing.assert_allclose(loaded.encode(), adata.obsm[Key.obsm.latent], atol=1e-5)
    z = adata.obsm[Key.obsm.latent][:5]
    np.testing.assert_allclose(loaded.decode(z), model.decode(z), rtol=1e-5)
    assert loaded.info["params"]["n_latent"] == N_LATENT
    assert list(fresh.obs.columns) == ["group", "batch", "t"]


def test_load_missing_folder(tmp_path):
    with pytest.raises(GclFileNotFoundError, match="no saved gclandscape latent model"):
        gcl.latent.load(tmp_path / "nothing", branching_counts(20))


def test_same_seed_same_latent_on_cpu():
    a = branching_counts(120, 30, seed=1)
    b = branching_counts(120, 30, seed=1)
    c = branching_counts(120, 30, seed=1)
    kw = {"n_latent": 3, "max_epochs": 3, "accelerator": "cpu", "train_kwargs": QUIET}
    gcl.latent.fit(a, seed=7, **kw)
    gcl.latent.fit(b, seed=7, **kw)
    gcl.latent.fit(c, seed=8, **kw)
    np.testing.assert_array_equal(a.obsm[Key.obsm.latent], b.obsm[Key.obsm.latent])
    assert np.abs(a.obsm[Key.obsm.latent] - c.obsm[Key.obsm.latent]).max() > 1e-3


def test_ldvae_loadings():
    adata = branching_counts(150, 30, seed=2)
    model = gcl.latent.fit(adata, model="ldvae", n_latent=3, max_epochs=3, train_kwargs=QUIET)
    loadings = model.loadings()
    assert loadings.shape == (30, 3)
    assert list(loadings.index) == list(adata.var_names)
    assert list(loadings.columns) == ["latent_0", "latent_1", "latent_2"]
    assert np.isfinite(loadings.to_numpy()).all()
    assert loadings.abs().to_numpy().max() > 0
    assert adata.uns[Key.uns.latent]["scvi_class"] == "LinearSCVI"


def test_loadings_only_for_ldvae(fitted):
    _, model, _ = fitted
    with pytest.raises(GclError, match="model='ldvae'"):
        model.loadings()


def test_scanvi_with_missing_labels(tmp_path):
    adata = branching_counts(150, 30, seed=3)
    labels = adata.obs["group"].astype(object).to_numpy()
    labels[::3] = None  # a third of the cells unlabeled
    adata.obs["label"] = labels
    model = gcl.latent.fit(
        adata, model="scanvi", labels_key="label", n_latent=3, max_epochs=3, train_kwargs=QUIET
    )
    info = adata.uns[Key.uns.latent]
    assert info["scvi_class"] == "SCANVI"
    # 3 SCVI epochs, then scvi-tools' rule min(10, max(2, round(3 / 3))) = 2 scANVI epochs
    assert info["max_epochs_used"] == 5
    assert info["epochs_trained"] == 5
    assert "pretrain_elbo_train" in info["history"]
    assert adata.obsm[Key.obsm.latent].shape == (150, 3)
    assert adata.obs["label"].isna().sum() == 50  # labels not rewritten
    loaded = gcl.latent.load(model.save(tmp_path / "s"), adata)
    np.testing.assert_allclose(loaded.encode(), adata.obsm[Key.obsm.latent], atol=1e-5)
    # new cells without the labels column can still be encoded
    new = adata[:10].copy()
    del new.obs["label"]
    np.testing.assert_allclose(model.encode(new), adata.obsm[Key.obsm.latent][:10], atol=1e-5)


def test_batch_key_and_key_added(tmp_path):
    adata = branching_counts(150, 30, seed=4)
    model = gcl.latent.fit(
        adata, batch_key="batch", n_latent=3, max_epochs=2, key_added="X_b", train_kwargs=QUIET
    )
    assert "X_b" in adata.obsm
    assert "X_b_denoised" in adata.layers
    assert "X_b_latent" in adata.uns
    assert Key.uns.latent not in adata.uns
    assert model.batch_categories == ["b1", "b2"]
    z = np.zeros((2, 3))
    e1, e2 = model.decode(z, batch="b1"), model.decode(z, batch="b2")
    np.testing.assert_allclose(model.decode(z), (e1 + e2) / 2, rtol=1e-5)
    loaded = gcl.latent.load(model.save(tmp_path / "b"), adata)
    np.testing.assert_allclose(loaded.decode(z, batch="b2"), e2, rtol=1e-5)
    other = adata[:5].copy()
    other.obs["batch"] = "b3"
    with pytest.raises(GclError, match=r"not trained on: \['b3'\]"):
        model.encode(other)


def test_default_max_epochs():
    from gclandscape.latent._model import default_max_epochs

    assert default_max_epochs(300) == 200
    assert default_max_epochs(20_000) == 200
    assert default_max_epochs(80_000) == 100
    assert default_max_epochs(10**7) == 1


# ------------------------------------------------------------------ bad input
def test_non_integer_counts_error_names_layer():
    adata = branching_counts(50, 10)
    adata.layers["counts"] = adata.layers["counts"] + 0.25
    adata.layers["raw"] = np.round(adata.layers["counts"])
    with pytest.raises(GclError, match=r"layer 'counts'.*non-integer.*layer='raw'"):
        gcl.latent.fit(adata)


def test_log_values_in_x_error_suggests_counts_layer():
    adata = branching_counts(50, 10)
    with pytest.raises(GclError, match=r"\.X must hold raw counts.*layer='counts'"):
        gcl.latent.fit(adata, layer=None)


def test_negative_counts_error():
    adata = branching_counts(50, 10)
    adata.layers["counts"][0, 0] = -2
    with pytest.raises(GclError, match=r"layer 'counts'.*negative"):
        gcl.latent.fit(adata)


def test_missing_layer_error_lists_layers():
    adata = branching_counts(50, 10)
    with pytest.raises(GclError, match=r"layer='raw' is not a layer.*'counts'"):
        gcl.latent.fit(adata, layer="raw")


def test_missing_batch_and_labels_key_list_columns():
    adata = branching_counts(50, 10)
    with pytest.raises(GclError, match=r"batch_key='sample'.*'group', 'batch', 't'"):
        gcl.latent.fit(adata, batch_key="sample")
    with pytest.raises(GclError, match=r"labels_key='celltype'.*'group', 'batch', 't'"):
        gcl.latent.fit(adata, model="scanvi", labels_key="celltype")
    with pytest.raises(GclError, match="needs labels_key"):
        gcl.latent.fit(adata, model="scanvi")


def test_fewer_cells_than_latent_dims():
    adata = branching_counts(8, 10)
    with pytest.raises(GclError, match=r"8 cells but n_latent=10"):
        gcl.latent.fit(adata, n_latent=10)


def test_all_zero_genes_named():
    adata = branching_counts(50, 10)
    adata.layers["counts"][:, [2, 5]] = 0
    with pytest.raises(GclError, match=r"2 genes have zero counts.*'gene2', 'gene5'.*recipe"):
        gcl.latent.fit(adata)


def test_unknown_model():
    adata = branching_counts(50, 10)
    with pytest.raises(GclError, match=r"model='vae' is not known.*'scvi', 'ldvae', 'scanvi'"):
        gcl.latent.fit(adata, model="vae")


class _NotWeights:
    """An arbitrary object: pickling it into module.pt makes a file torch refuses to load."""


@pytest.mark.parametrize("content", ["pickled_object", "garbage", "list"])
def test_load_bad_weights_file_names_it_and_never_advises_unsafe_loading(tmp_path, content):
    import json

    import torch

    folder = tmp_path / "model"
    folder.mkdir()
    meta = {"format_version": 1, "kind": "scvi", "layer": "counts", "batch_key": None}
    (folder / "gcl_latent.json").write_text(json.dumps(meta))
    weights = folder / "module.pt"
    if content == "pickled_object":
        torch.save({"encoder.weight": _NotWeights()}, weights)
    elif content == "garbage":
        weights.write_bytes(b"\x80\x04 this is not a torch checkpoint")
    else:
        torch.save([torch.zeros(2)], weights)
    counts = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(GclFormatError) as err:
        gcl.latent.load(folder, ad.AnnData(counts, layers={"counts": counts}))
    message = str(err.value)
    assert str(weights) in message
    assert "model.save" in message
    assert "weights_only" not in message
