"""Tests of gcl.tl.pseudotime on representations with a known time along a branching tree."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key


def _branching(n_cells: int = 600, seed: int = 0) -> ad.AnnData:
    """A Y-shaped 3-D representation: a stem (t < 0.3) splitting into two branches.

    ``obs["t"]`` is the true time along the tree; ``obs["group"]`` is stem / A / B.
    """
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, n_cells)
    branch = rng.integers(0, 2, n_cells)
    pos = np.zeros((n_cells, 3))
    pos[:, 0] = np.minimum(t, 0.3)
    after = np.clip(t - 0.3, 0, None)
    pos[:, 1] = np.where(branch == 0, after, 0.0)
    pos[:, 2] = np.where(branch == 1, after, 0.0)
    pos += rng.normal(0, 0.01, pos.shape)
    group = np.where(t < 0.3, "stem", np.where(branch == 0, "A", "B"))
    obs = pd.DataFrame(
        {"t": t, "group": pd.Categorical(group)}, index=[f"c{i}" for i in range(n_cells)]
    )
    return ad.AnnData(obs=obs, obsm={"X_pca": pos})


@pytest.fixture(scope="module")
def tree() -> ad.AnnData:
    adata = _branching()
    gcl.tl.pseudotime(adata, root="stem", groupby="group", n_neighbors=15)
    return adata


def test_orders_cells_by_true_time(tree):
    pt = tree.obs[Key.obs.pseudotime].to_numpy()
    assert np.isfinite(pt).all()
    assert pt.min() == 0.0
    assert pt.max() == pytest.approx(1.0)
    rho = spearmanr(pt, tree.obs["t"]).statistic
    assert rho > 0.95, rho
    med = tree.obs.groupby("group", observed=True)[Key.obs.pseudotime].median()
    assert med["stem"] < med["A"]
    assert med["stem"] < med["B"]


def test_root_cell_is_the_tip_of_the_root_group(tree):
    record = tree.uns[Key.obs.pseudotime]
    root = record["root_index"]
    assert tree.obs["group"].iloc[root] == "stem"
    assert record["root_cell"] == tree.obs_names[root]
    # within the earliest ~4 % of cells by true time (positions carry noise of 0.01)
    assert tree.obs["t"].iloc[root] < 0.04, tree.obs["t"].iloc[root]
    assert tree.obs[Key.obs.pseudotime].iloc[root] == 0.0


def test_params_and_graph_written_without_scanpy_leftovers(tree, tmp_path):
    record = tree.uns[Key.obs.pseudotime]
    assert record["params"] == {
        "root": "stem",
        "groupby": "group",
        "use_rep": "X_pca",
        "n_neighbors": 15,
        "n_dcs": 10,
        "method": "dpt",
    }
    assert record["terminal_groups"] == []
    assert record["n_unreachable"] == 0
    assert "iroot" not in tree.uns
    assert "X_diffmap" not in tree.obsm
    assert "dpt_pseudotime" not in tree.obs
    assert "neighbors" not in tree.uns
    nk = Key.neighbors(Key.obs.pseudotime)
    conn = tree.obsp[tree.uns[nk]["connectivities_key"]]
    assert conn.shape == (600, 600)
    assert conn.nnz > 0
    assert tree.uns[nk]["params"]["n_neighbors"] == 15
    tree.write_h5ad(tmp_path / "t.h5ad")
    back = ad.read_h5ad(tmp_path / "t.h5ad")
    np.testing.assert_allclose(back.obs[Key.obs.pseudotime], tree.obs[Key.obs.pseudotime])


def test_root_as_index_and_name_give_the_same_result():
    adata = _branching(300, seed=1)
    start = int(np.argmin(adata.obs["t"]))
    by_index = gcl.tl.pseudotime(adata, root=start, n_neighbors=15, copy=True)
    by_name = gcl.tl.pseudotime(adata, root=adata.obs_names[start], n_neighbors=15, copy=True)
    assert Key.obs.pseudotime not in adata.obs  # copy=True leaves the input alone
    np.testing.assert_allclose(by_index.obs[Key.obs.pseudotime], by_name.obs[Key.obs.pseudotime])
    assert by_index.uns[Key.obs.pseudotime]["root_index"] == start
    assert by_index.obs[Key.obs.pseudotime].iloc[start] == 0.0
    assert spearmanr(by_index.obs[Key.obs.pseudotime], adata.obs["t"]).statistic > 0.9
    # an index from the end of the tree reverses the order
    end = int(np.argmax(adata.obs["t"]))
    rev = gcl.tl.pseudotime(adata, root=end, n_neighbors=15, copy=True)
    assert spearmanr(rev.obs[Key.obs.pseudotime], adata.obs["t"]).statistic < 0


def test_default_rep_prefers_latent():
    adata = _branching(200, seed=2)
    adata.obsm[Key.obsm.latent] = adata.obsm["X_pca"][:, ::-1].copy()
    gcl.tl.pseudotime(adata, root="stem", groupby="group", n_neighbors=10, key_added="pt")
    assert adata.uns["pt"]["params"]["use_rep"] == Key.obsm.latent
    assert "pt" in adata.obs


def test_pca_computed_when_no_rep():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, 150))
    genes = np.c_[t, t**2, 1 - t, np.sin(2 * t), np.cos(2 * t)] + rng.normal(0, 0.01, (150, 5))
    adata = ad.AnnData(genes)
    gcl.tl.pseudotime(adata, root=0, n_neighbors=10)
    assert adata.uns[Key.obs.pseudotime]["params"]["use_rep"] == "X_pca (computed)"
    assert Key.obsm.pca not in adata.obsm
    assert spearmanr(adata.obs[Key.obs.pseudotime], t).statistic > 0.95


def test_pca_of_raw_counts_is_log_normalised(caplog):
    # raw counts in .X and no PCA: the graph is built on a PCA of a normalised, log1p copy
    # (a PCA of raw counts follows library size); nothing is stored
    import scanpy as sc

    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 1, 300))
    rates = np.exp(np.c_[3 * t, 3 * (1 - t), 4 * t * (1 - t), 2 * t**2, np.zeros((300, 6))])
    lib = rng.lognormal(0.0, 0.8, 300)[:, None]  # library sizes vary 10-fold
    adata = ad.AnnData(rng.poisson(5 * rates * lib).astype(np.float32))
    before = adata.X.copy()
    with caplog.at_level("WARNING", logger="gclandscape"):
        gcl.tl.pseudotime(adata, root=0, n_neighbors=15)
    assert "raw counts" in caplog.text
    assert adata.uns[Key.obs.pseudotime]["params"]["use_rep"] == (
        "X_pca of log-normalised .X (computed)"
    )
    assert Key.obsm.pca not in adata.obsm
    np.testing.assert_array_equal(adata.X, before)
    ref = adata.copy()
    light = ad.AnnData(adata.X.copy())
    ref.obsm[Key.obsm.pca] = sc.pp.pca(
        sc.pp.log1p(sc.pp.normalize_total(light, inplace=False)["X"]), n_comps=9
    ).astype(np.float64)
    gcl.tl.pseudotime(ref, root=0, n_neighbors=15)
    np.testing.assert_allclose(
        adata.obs[Key.obs.pseudotime], ref.obs[Key.obs.pseudotime], rtol=0, atol=1e-6
    )
    raw = adata.copy()
    raw.obsm[Key.obsm.pca] = sc.pp.pca(adata.X, n_comps=9).astype(np.float64)
    gcl.tl.pseudotime(raw, root=0, n_neighbors=15)
    r_log = spearmanr(adata.obs[Key.obs.pseudotime], t).statistic
    r_raw = spearmanr(raw.obs[Key.obs.pseudotime], t).statistic
    assert r_log > 0.9
    assert r_log > r_raw + 0.1


def test_disconnected_cells_get_nan_with_warning():
    adata = _branching(300, seed=3)
    far = adata.obsm["X_pca"].copy()
    far[:20] += 100.0  # an island far from everything
    adata.obsm["X_pca"] = far
    adata.obs["group"] = adata.obs["group"].astype(str)
    adata.obs.iloc[:20, adata.obs.columns.get_loc("group")] = "island"
    with pytest.warns(UserWarning, match="20 cells are not connected"):
        gcl.tl.pseudotime(adata, root="stem", groupby="group", n_neighbors=10)
    pt = adata.obs[Key.obs.pseudotime].to_numpy()
    assert np.isnan(pt[:20]).all()
    assert np.isfinite(pt[20:]).all()
    assert adata.uns[Key.obs.pseudotime]["n_unreachable"] == 20


def test_unknown_root_group_lists_groups():
    adata = _branching(100)
    with pytest.raises(GclError, match=r"root='progenitor'.*Available groups: 'A', 'B', 'stem'"):
        gcl.tl.pseudotime(adata, root="progenitor", groupby="group")


def test_missing_groupby_lists_columns():
    adata = _branching(100)
    with pytest.raises(GclError, match=r"groupby='celltype'.*'t', 'group'"):
        gcl.tl.pseudotime(adata, root="stem", groupby="celltype")


def test_bad_root_index_or_name():
    adata = _branching(100)
    with pytest.raises(GclError, match="not a cell index"):
        gcl.tl.pseudotime(adata, root=100)
    with pytest.raises(GclError, match="not a cell name"):
        gcl.tl.pseudotime(adata, root="stem")
    # issue 20 §2.6: a negative index counted from the end (root=-1 picked the last cell)
    for negative in (-1, np.int64(-100)):
        with pytest.raises(GclError, match=r"cell position in 0\.\.99.*group name.*obs_names"):
            gcl.tl.pseudotime(adata, root=negative)
    with pytest.raises(GclError, match="group name, a cell index"):
        gcl.tl.pseudotime(adata, root=True)


def test_missing_rep_lists_obsm():
    adata = _branching(100)
    with pytest.raises(GclError, match=r"use_rep='X_umap'.*'X_pca'"):
        gcl.tl.pseudotime(adata, root=0, use_rep="X_umap")
    adata.obsm["bad"] = np.full((100, 2), np.nan)
    with pytest.raises(GclError, match="NaN"):
        gcl.tl.pseudotime(adata, root=0, use_rep="bad")


# ------------------------------------------------------------------ fate-aware time (issue 18)
def _near_fate(n_per_path: int = 300, seed: int = 0) -> ad.AnnData:
    """A progenitor stem (x from -1 to 0, t < 0.25), then two paths, each ending at t = 1: a
    long transit arm (x from 0 to 4) into fate A (t >= 0.8), and a short arm (y from 0 to 0.3)
    into fate B (t >= 0.6). B's cells move slowly and lie near the root in expression, but they
    are as late as A's.
    """
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, (2, n_per_path))
    stem = np.minimum(t, 0.25)
    after = (np.maximum(t, 0.25) - 0.25) / 0.75
    pos_a = np.c_[-1 + 4 * stem[0] + 4 * after[0], np.zeros(n_per_path)]
    pos_b = np.c_[-1 + 4 * stem[1], 0.3 * after[1]]
    pos = np.r_[pos_a, pos_b] + rng.normal(0, 0.01, (2 * n_per_path, 2))
    path_a = np.where(t[0] < 0.25, "progenitor", np.where(t[0] < 0.8, "transit", "A"))
    group = np.r_[path_a, np.where(t[1] < 0.6, "progenitor", "B")]
    obs = pd.DataFrame(
        {"t": np.r_[t[0], t[1]], "group": pd.Categorical(group)},
        index=[f"c{i}" for i in range(2 * n_per_path)],
    )
    return ad.AnnData(obs=obs, obsm={"X_pca": pos})


def test_committor_orders_a_fate_near_the_root_after_its_progenitors():
    adata = _near_fate()
    dpt = gcl.tl.pseudotime(adata, root="progenitor", groupby="group", method="dpt", copy=True)
    fate = gcl.tl.pseudotime(
        adata, root="progenitor", groupby="group", method="committor", copy=True
    )
    assert fate.uns[Key.obs.pseudotime]["params"]["method"] == "committor"
    assert fate.uns[Key.obs.pseudotime]["terminal_groups"] == ["A", "B"]

    def medians(a):
        return a.obs.groupby("group", observed=True)[Key.obs.pseudotime].median()

    # diffusion pseudotime is a distance from the root: B comes before A's transit cells
    assert medians(dpt)["B"] < medians(dpt)["transit"] - 0.05
    # the committor puts B after them (the transit type is intermediate, not terminal)
    m = medians(fate)
    assert m["B"] > m["transit"] + 0.1
    assert m["A"] > m["transit"] + 0.1
    # and orders the cells by their true time better (0.99 against 0.89)
    rho_dpt = spearmanr(dpt.obs[Key.obs.pseudotime], adata.obs["t"]).statistic
    rho = spearmanr(fate.obs[Key.obs.pseudotime], adata.obs["t"]).statistic
    assert rho > rho_dpt + 0.05, (rho, rho_dpt)


def test_committor_is_harmonic_between_its_boundaries():
    import scipy.sparse as sp

    from gclandscape.tl._committor import committor

    # two chains: 0-1-2-3-4 with both boundaries, and 5-6 (no start: no place in the order)
    w = sp.lil_matrix((7, 7))
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (5, 6)]:
        w[i, j] = w[j, i] = 1.0
    w[2, 3] = w[3, 2] = 3.0  # a strong link: 2 and 3 nearly equal
    start = np.isin(np.arange(7), [0])
    end = np.isin(np.arange(7), [4, 6])
    q = committor(w.tocsr(), start, end)
    # resistances 1, 1, 1/3, 1 in series: q = cumulative resistance / 10/3
    np.testing.assert_allclose(q[:5], [0, 0.3, 0.6, 0.7, 1.0], atol=1e-12)
    assert np.isnan(q[5:]).all()


def test_terminal_groups_are_the_tree_leaves_without_small_groups():
    from gclandscape.tl._committor import terminal_groups

    groups = ["p", "gmp", "mono", "gran", "few"]
    conn = np.array(
        [
            [0, 0.9, 0.05, 0, 0],
            [0.9, 0, 0.8, 0.7, 0],
            [0.05, 0.8, 0, 0.1, 0.6],
            [0, 0.7, 0.1, 0, 0],
            [0, 0, 0.6, 0, 0],
        ]
    )
    labels = np.repeat(groups, [50, 50, 50, 50, 4])  # "few": under 5 % of the non-root cells
    # without the share rule "few" would hang from mono and make it look intermediate
    assert terminal_groups(conn, groups, labels, "p") == ["gran", "mono"]


def test_committor_needs_a_root_group_and_falls_back_without_terminal_types():
    adata = _branching(200, seed=4)
    with pytest.raises(GclError, match="method='committor' needs a root group"):
        gcl.tl.pseudotime(adata, root=0, method="committor")
    with pytest.raises(GclError, match="'committor' or 'dpt'"):
        gcl.tl.pseudotime(adata, root="stem", groupby="group", method="palantir")
    adata.obs["one"] = pd.Categorical(["all"] * adata.n_obs)
    with pytest.warns(UserWarning, match="no terminal cell type"):
        gcl.tl.pseudotime(adata, root="all", groupby="one", n_neighbors=10, method="committor")
    assert adata.uns[Key.obs.pseudotime]["params"]["method"] == "dpt"
