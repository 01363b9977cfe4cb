"""One rule for fit_grn's genes and prior (issue 19): a prior naming genes the genome does not
model is used for its usable rows (counted), a prior with none is a clear error, duplicate
pairs with both signs are left free, and ``gclandscape run --organism`` models the same
regulators as ``fit_grn(genes=None)``."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key
from gclandscape._pipeline import _regulators as cli_regulators
from gclandscape._pipeline._context import RunContext
from gclandscape.landscape import _fit_grn, _regulator_genes
from gclandscape.landscape._regulator_genes import _prior_mask, prior_edges


def _toy(n: int = 200, genes=("a", "b", "c", "d")) -> ad.AnnData:
    rng = np.random.default_rng(0)
    x = rng.poisson(5, size=(n, len(genes))).astype(np.float32)
    obs = pd.DataFrame({"t": np.linspace(0, 1, n)}, index=[f"c{i}" for i in range(n)])
    a = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=list(genes)))
    a.layers[Key.layers.counts] = x.copy()
    return a


# a curated prior names many genes the genome does not model ("Tf9", "Nope"), and lists one
# pair (c -> d) with both signs
PRIOR = pd.DataFrame(
    [("a", "b", "+"), ("Tf9", "a", "+"), ("b", "c", "-"), ("a", "Nope", "-"),
     ("c", "d", "+"), ("c", "d", "-"), ("Tf9", "Nope", "+")],
    columns=["source", "target", "sign"],
)  # fmt: skip


def test_prior_naming_unmodelled_genes_fits_the_usable_rows(caplog):
    a = _toy()
    with caplog.at_level(logging.INFO, logger="gclandscape"):
        genome = gcl.landscape.fit_grn(
            a, genes=["a", "b", "c", "d"], time_key="t", prior=PRIOR, n_bootstrap=0
        )
    params = a.uns[Key.uns.genome]["params"]
    assert params["prior_rows"] == 7
    assert params["prior_rows_used"] == 4
    assert params["prior_rows_dropped"] == 3
    assert params["prior_edges"] == 3
    assert params["prior_sign_conflicts"] == 1
    assert "3 of its 7 rows name a gene that is not modelled" in caplog.text
    allowed = {("a", "b"): 1, ("b", "c"): -1, ("c", "d"): 0}  # c -> d: sign left free
    for e in genome.edges().itertuples():
        assert (e.source, e.target) in allowed
        if allowed[(e.source, e.target)]:
            assert np.sign(e.weight) in (0, allowed[(e.source, e.target)])


def test_prior_without_a_usable_row_is_a_clear_error():
    prior = pd.DataFrame({"source": ["Tf9", "a"], "target": ["a", "Nope"], "sign": ["+", "-"]})
    with pytest.raises(GclError, match=r"none of the prior's 2 rows .*4 modelled genes.*prior out"):
        gcl.landscape.fit_grn(_toy(), genes=["a", "b", "c", "d"], time_key="t", prior=prior)


def test_duplicate_pairs_conflicting_signs_are_free_agreeing_or_empty_keep_theirs():
    prior = pd.DataFrame(
        [("a", "b", "+"), ("a", "b", "-"), ("b", "c", "-"), ("b", "c", None),
         ("c", "a", "+"), ("c", "a", "+"), ("Tf9", "c", "-")],
        columns=["source", "target", "sign"],
    )  # fmt: skip
    edges, counts = prior_edges(prior, ["a", "b", "c"])
    assert edges.to_records(index=False).tolist() == [("a", "b", 0), ("b", "c", -1), ("c", "a", 1)]
    assert counts == {
        "prior_rows": 7,
        "prior_rows_used": 6,
        "prior_rows_dropped": 1,
        "prior_edges": 3,
        "prior_sign_conflicts": 1,
    }
    mask, sign = _prior_mask(prior, ["a", "b", "c"])
    assert mask.sum() == 3  # target × source
    assert (mask[1, 0], mask[2, 1], mask[0, 2]) == (True, True, True)
    assert (sign[1, 0], sign[2, 1], sign[0, 2]) == (0, -1, 1)


def test_unreadable_sign_is_an_error_even_in_a_dropped_row():
    prior = pd.DataFrame({"source": ["a", "Tf9"], "target": ["b", "a"], "sign": ["+", "dual"]})
    with pytest.raises(GclError, match="'dual'"):
        prior_edges(prior, ["a", "b"])


# ------------------------------------------------------------------ the command line's rules
def _mouse_regulators() -> ad.AnnData:
    """Counts of six mouse TFs and Actb, all detected; the TFs' order by mean is the reverse
    of their highly variable rank, so the two rankings pick different regulators."""
    names = ["Gata1", "Spi1", "Klf1", "Cebpa", "Gfi1", "Fli1", "Actb"]
    rng = np.random.default_rng(0)
    means = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 20.0])
    x = rng.poisson(means, size=(300, len(names))).astype(np.float32)
    a = ad.AnnData(x, var=pd.DataFrame(index=names))
    a.layers[Key.layers.counts] = x.copy()
    a.var["highly_variable_rank"] = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, np.nan]
    return a


def test_cli_and_fit_grn_model_the_same_regulators(tmp_path, monkeypatch):
    monkeypatch.setattr(_regulator_genes, "MAX_DEFAULT_GENES", 3)
    adata = _mouse_regulators()
    ctx = RunContext(adata=adata, out=tmp_path, input="x", organism="mouse", work=adata.copy())
    cli_regulators.annotate(ctx)  # --organism mouse
    # the three most variable regulators, in the data's order (by mean: Gata1, Spi1, Klf1)
    assert ctx.genome_genes == ["Cebpa", "Gfi1", "Fli1"]
    assert _fit_grn.select_genes(ctx.work, None) == ctx.genome_genes
    assert ctx.summary["regulators"]["n_expressed"] == 6
    assert ctx.summary["regulators"]["max_genes"] == 3


def test_cli_prior_is_checked_with_fit_grns_rule(tmp_path):
    path = tmp_path / "prior.csv"
    PRIOR.iloc[[0, 1, 2, 3, 4]].to_csv(path, index=False)
    ctx = RunContext(adata=_toy(), out=tmp_path, input="x", prior=path)
    prior = cli_regulators.prior_for_genome(ctx, ["a", "b", "c", "d"])
    assert len(prior) == 5  # the whole file: fit_grn drops the same rows and counts them
    record = ctx.summary["prior"]
    assert (record["n_edges_file"], record["n_edges_kept"]) == (5, 3)
    assert (record["n_activating"], record["n_repressing"]) == (2, 1)
    with pytest.raises(GclError, match=r"--prior .*none of its 5 edges.*leave --prior out"):
        cli_regulators.prior_for_genome(ctx, ["b", "d"])
