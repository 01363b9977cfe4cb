"""The readout (issue 19 §1): every gene outside the genome read from the genome's state, so a
knockout has a whole-transcriptome prediction; regulator-aware default genes; the error for a
knockout of a gene the genome does not model."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key
from gclandscape.landscape import _fit_grn, _regulator_genes
from gclandscape.landscape._readout import (
    READOUT,
    fit_readout,
    lognorm_expression,
    output_genes,
    readout_log2fc,
)


# ------------------------------------------------------------------------------ the regression
def _planted(n: int = 2000, seed: int = 0):
    """Cells × 3 inputs in [0, 1] and 5 outputs that are a known linear map of them."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(0.0, 1.0, (n, 3))
    B = np.array(
        [[2.0, 0.0, 0.0], [0.0, -1.5, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, -0.5]]
    )
    c = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    y = x @ B.T + c + gen.normal(0.0, 0.05, (n, 5))
    return x, B, c, y


def test_readout_recovers_a_planted_linear_map():
    x, B, c, y = _planted()
    y = np.c_[y, np.full(len(y), 3.0)]  # a gene without variance: nothing to read out
    ro = fit_readout(x, y, inputs=["A", "B", "C"], genes=[f"t{i}" for i in range(6)])
    assert ro["genes"].tolist() == ["t0", "t1", "t2", "t3", "t4"]
    raw = ro["coef"] / ro["scale"]  # back from the standardised inputs
    np.testing.assert_allclose(raw, B, atol=0.03)
    np.testing.assert_allclose(ro["intercept"] - raw @ ro["center"], c, atol=0.03)
    assert ro["r2"][[0, 1, 2, 4]].min() > 0.9  # explained; t3 is pure noise
    assert ro["r2"][3] < 0.01
    # sparse expression gives the same fit (densified one block at a time)
    sparse = fit_readout(x, sp.csr_matrix(y), inputs=["A", "B", "C"], genes=list("abcdef"))
    np.testing.assert_allclose(sparse["coef"], ro["coef"], rtol=1e-8, atol=1e-10)
    assert sparse["alpha"] == ro["alpha"]


def test_readout_log2fc_of_mean_expression():
    x, _, _, y = _planted()
    ro = fit_readout(x, y, inputs=["A", "B", "C"], genes=[f"t{i}" for i in range(5)])
    wt = np.full((10, 3), 0.5)
    pert = wt.copy()
    pert[:, 0] = 0.0  # input A from 0.5 to 0: t0 (2 A + 1) falls from log 2 to log 1 units
    fc = readout_log2fc(ro, wt, pert)
    m_wt, m_pt = np.expm1(2.0), np.expm1(1.0)
    assert fc["t0"] == pytest.approx(np.log2((m_pt + 0.1) / (m_wt + 0.1)), abs=0.05)
    assert abs(fc["t1"]) < 0.02  # t1 does not depend on A
    assert fc["t2"] < -0.1  # positive weights on A
    assert fc["t4"] < -0.05


def test_lognorm_expression_sources():
    counts = np.array([[1, 0, 3], [4, 2, 0], [0, 0, 5]], dtype=np.float32)
    a = ad.AnnData(sp.csr_matrix(counts))
    a.var_names = ["A", "B", "C"]
    a.layers[Key.layers.counts] = a.X.copy()
    rows = np.array([0, 1, 2])
    m, source = lognorm_expression(a, rows, ["B", "C"])
    lib = counts.sum(1)
    expected = np.log1p(counts[:, 1:] * (np.median(lib) / lib)[:, None])
    assert sp.issparse(m)
    assert "median library" in source
    np.testing.assert_allclose(m.toarray(), expected, rtol=1e-6)
    a.layers[Key.layers.lognorm] = sp.csr_matrix(np.full((3, 3), 0.25))
    m, source = lognorm_expression(a, rows[1:], ["C"])
    assert source == f"layers[{Key.layers.lognorm!r}]"
    assert m.shape == (2, 1)
    # the highly variable genes when marked, the genome's genes left out
    a.var[Key.var.highly_variable] = [True, False, True]
    assert output_genes(a, ["A"]) == ["C"]


# ------------------------------------------------------------------------------ fit_grn + perturb
@pytest.fixture(scope="module")
def planted():
    """Counts with a planted readout: regulators R1–R3 vary independently across cells (R4 is
    flagged too but detected in about 2 % of them); ``up1`` rises with R1 alone, ``down1``
    falls with it, ``up2`` follows R2, and 40 genes are constant (as most genes of a real
    transcriptome, they keep the normalisation from coupling the few others). Fitted with
    the default genes, in steady-state mode (one population)."""
    gen = np.random.default_rng(0)
    n = 600
    reg = gen.gamma(4.0, 0.25, (n, 3))  # mean 1, coefficient of variation 0.5
    lam = {f"R{k + 1}": 20.0 * reg[:, k] for k in range(3)}
    lam["R4"] = np.full(n, 0.02)
    lam["up1"] = 5.0 * reg[:, 0] ** 1.5
    lam["down1"] = 10.0 / (1.0 + reg[:, 0] ** 2)
    lam["up2"] = 5.0 * reg[:, 1]
    for k in range(40):
        lam[f"bg{k:02d}"] = np.full(n, gen.uniform(1.0, 10.0))
    counts = pd.DataFrame({g: gen.poisson(v) for g, v in lam.items()})
    adata = ad.AnnData(counts.to_numpy(np.float32))
    adata.var_names = list(counts.columns)
    adata.var[Key.var.regulator] = [g.startswith("R") for g in adata.var_names]
    gcl.pp.recipe(adata, n_top_genes=2000)
    gcl.landscape.fit_grn(adata, n_bootstrap=0)
    return adata


def test_default_genes_are_the_expressed_flagged_regulators(planted):
    genome = gcl.landscape.Genome.from_adata(planted)
    assert genome.genes == ["R1", "R2", "R3"]  # R4 is flagged but detected in ~2 % of cells
    ro = planted.uns[Key.uns.genome][READOUT]
    assert ro["genes"].tolist() == [g for g in planted.var_names if g not in genome.genes]
    assert planted.uns[Key.uns.genome]["params"]["readout_genes"] == planted.n_vars - 3


def test_log2fc_covers_every_gene_and_a_driven_target_moves(planted):
    res = gcl.sim.perturb(planted, gcl.sim.Knockout("R1"), n_cells=200, n_null=0)
    assert res.log2fc.index.tolist() == planted.var_names.tolist()
    assert res.params["log2fc_other_genes"] == "readout"
    assert np.isfinite(res.log2fc).all()
    # the genome's genes come from the simulation itself
    pd.testing.assert_series_equal(
        res.log2fc.loc[res.expression.index], res.expression["log2fc"], check_names=False
    )
    assert res.expression.loc["R1", "log2fc"] < -2  # the knockout itself
    # R1's targets move as planted, far more than R2's target
    assert res.log2fc["up1"] < -1.0
    assert res.log2fc["down1"] > 1.0
    assert abs(res.log2fc["up2"]) < 0.5 * min(-res.log2fc["up1"], res.log2fc["down1"])
    # without the readout (a genome fitted with readout=False) the genome's genes only
    bare = planted.copy()
    gcl.landscape.fit_grn(bare, n_bootstrap=0, readout=False, key_added="bare")
    plain = gcl.sim.perturb(bare, gcl.sim.Knockout("R1"), n_cells=50, n_null=0, genome_key="bare")
    assert plain.log2fc.index.tolist() == ["R1", "R2", "R3"]
    assert plain.params["log2fc_other_genes"] == "none"


def test_h5ad_round_trip_keeps_the_readout(planted, tmp_path):
    path = tmp_path / "planted.h5ad"
    gcl.io.write(planted, path)
    back = gcl.io.read(path)
    a, b = planted.uns[Key.uns.genome][READOUT], back.uns[Key.uns.genome][READOUT]
    assert set(a) == set(b)
    for key in ("coef", "intercept", "center", "scale", "r2"):
        np.testing.assert_array_equal(np.asarray(b[key]), a[key])
    assert list(b["genes"]) == list(a["genes"])
    res_a = gcl.sim.perturb(planted, gcl.sim.Knockout("R2"), n_cells=50, n_null=0)
    res_b = gcl.sim.perturb(back, gcl.sim.Knockout("R2"), n_cells=50, n_null=0)
    pd.testing.assert_series_equal(res_a.log2fc, res_b.log2fc)


def test_knockout_of_a_gene_outside_the_genome_says_what_to_do(planted):
    for gene in ("up1", "R4"):  # a target; a flagged regulator too rarely detected
        with pytest.raises(GclError, match=rf"'{gene}'.*not a regulator in the genome.*genes="):
            gcl.sim.perturb(planted, gcl.sim.Knockout(gene), n_cells=20, n_null=0)
    # a name that is no gene of adata at all keeps the spelling hint
    with pytest.raises(GclError, match="did you mean 'R1'"):
        gcl.sim.perturb(planted, gcl.sim.Knockout("r1"), n_cells=20, n_null=0)


# ------------------------------------------------------------------------------ default genes
def _flagged(detect: dict[str, float], n: int = 200) -> ad.AnnData:
    """Counts in which gene g is detected (count 1 or more) in a share detect[g] of cells, and
    every gene but 'other' is flagged as a regulator."""
    gen = np.random.default_rng(0)
    cols = {}
    for g, share in detect.items():
        on = gen.permutation(n) < round(share * n)
        cols[g] = np.where(on, gen.integers(1, 6, n), 0)
    a = ad.AnnData(pd.DataFrame(cols).to_numpy(np.float32))
    a.var_names = list(detect)
    a.layers[Key.layers.counts] = a.X.copy()
    a.var[Key.var.regulator] = [g != "other" for g in detect]
    return a


def test_default_genes_are_the_expressed_regulators(monkeypatch):
    a = _flagged({"R1": 0.9, "R2": 0.5, "R3": 0.06, "R4": 0.03, "other": 1.0})
    assert _fit_grn.select_genes(a, None) == ["R1", "R2", "R3"]  # R4: in 3 % of cells
    monkeypatch.setattr(_regulator_genes, "MAX_DEFAULT_GENES", 2)
    assert _fit_grn.select_genes(a, None) == ["R1", "R2"]  # the two detected most often
    # without the annotation, as before: every gene of a small object
    del a.var[Key.var.regulator]
    monkeypatch.setattr(_regulator_genes, "MAX_DEFAULT_GENES", 200)
    assert _fit_grn.select_genes(a, None) == list(a.var_names)


def test_too_few_expressed_regulators_is_an_error():
    a = _flagged({"R1": 0.9, "R2": 0.01, "other": 1.0})
    with pytest.raises(GclError, match=r"R1.*genes="):
        _fit_grn.select_genes(a, None)
