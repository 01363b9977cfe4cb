"""Issue 19 §4, memory of ``gclandscape run``: the working AnnData shares the input's
matrices instead of copying them, and ``.X`` is the lognorm layer, not a second copy."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from gclandscape._keys import Key
from gclandscape._pipeline._context import RunContext
from gclandscape._pipeline._steps_cells import step_qc, step_recipe


def _counts(n: int = 120, g: int = 40, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    counts = sp.csr_matrix(rng.poisson(3.0, (n, g)).astype(np.float32))
    adata = ad.AnnData(
        X=counts.copy(),
        obs=pd.DataFrame(
            {"celltype": rng.choice(["a", "b"], n)}, index=[f"c{i}" for i in range(n)]
        ),
        var=pd.DataFrame(index=[f"g{j}" for j in range(g)]),
        layers={Key.layers.counts: counts},
        obsm={"X_given": rng.normal(size=(n, 2))},
    )
    adata.raw = adata.copy()
    return adata


def _run(adata: ad.AnnData, tmp_path) -> RunContext:
    ctx = RunContext(adata=adata, out=tmp_path, input="toy", groupby="celltype")
    step_qc(ctx)
    step_recipe(ctx)
    return ctx


def test_work_shares_the_input_counts_and_lognorm_is_x(tmp_path):
    adata = _counts()
    before = adata.copy()
    ctx = _run(adata, tmp_path)
    work = ctx.work
    # the counts are the input's own matrix, not a copy
    assert work.layers[Key.layers.counts] is adata.layers[Key.layers.counts]
    # .X is the lognorm layer itself, and holds log1p of the normalised counts
    assert work.X is work.layers[Key.layers.lognorm]
    counts = before.layers[Key.layers.counts].toarray()
    want = np.log1p(counts / counts.sum(1, keepdims=True) * np.median(counts.sum(1)))
    np.testing.assert_allclose(work.X.toarray(), want, rtol=1e-5)
    # the input is as it was: matrices, annotations, raw
    np.testing.assert_array_equal(adata.X.toarray(), before.X.toarray())
    np.testing.assert_array_equal(adata.layers[Key.layers.counts].toarray(), counts)
    assert list(adata.obs.columns) == list(before.obs.columns)
    assert list(adata.var.columns) == list(before.var.columns)
    assert set(adata.obsm) == {"X_given"}
    assert Key.obsm.pca in work.obsm
    assert work.obsm["X_given"] is not adata.obsm["X_given"]
    assert work.raw is not None
    assert work.raw.shape == before.raw.shape


def test_view_input_is_copied(tmp_path):
    adata = _counts()
    view = adata[:100]
    ctx = _run(view, tmp_path)
    assert ctx.work.n_obs == 100
    assert ctx.work.layers[Key.layers.counts] is not adata.layers[Key.layers.counts]
    np.testing.assert_array_equal(adata.X.toarray(), _counts().X.toarray())


def test_load_input_keeps_one_counts_matrix(tmp_path):
    from gclandscape import io
    from gclandscape._pipeline._input import load_input

    adata = _counts()
    del adata.raw
    path = tmp_path / "counts.h5ad"
    io.write(adata, path)
    read, label = load_input(str(path))
    assert label == str(path)
    assert read.X is read.layers[Key.layers.counts]
    np.testing.assert_array_equal(read.X.toarray(), adata.layers[Key.layers.counts].toarray())
    # .X that differs from the counts (here: scaled) stays its own matrix
    other = _counts()
    del other.raw
    other.X = other.X * 0.5
    path2 = tmp_path / "scaled.h5ad"
    other.write_h5ad(path2)
    read2, _ = load_input(str(path2))
    assert read2.X is not read2.layers[Key.layers.counts]
    np.testing.assert_allclose(read2.X.toarray(), 0.5 * read2.layers[Key.layers.counts].toarray())
