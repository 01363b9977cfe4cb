"""``gclandscape run`` on real data (issue 19 §5): --organism, --prior, --n-genomes, the
predicted whole-transcriptome log2FC of the screen's knockouts and the report's p_lost."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._pipeline._regulators import expressed_regulators
from gclandscape._pipeline._runner import check_real_data_options
from gclandscape.cli import RUN_N_SIM_CELLS, main

#: The myeloid simulation's regulators under their MGI symbols (Fog1 = Zfpm1, Scl = Tal1,
#: EKLF = Klf1, PU.1 = Spi1, cJun = Jun, EgrNab = Egr1).
MGI = {"Fog1": "Zfpm1", "EKLF": "Klf1", "SCL": "Tal1", "Pu.1": "Spi1", "cJun": "Jun",
       "EgrNab": "Egr1"}  # fmt: skip
#: Targets renamed to genes that are not transcription factors.
NON_TFS = ["Actb", "Gapdh", "Hbb-bs", "Alas2", "Mpo", "Elane"]
#: A transcription factor detected in too few cells to be modelled (< 5 %).
RARE_TF = "Irf8"


@pytest.fixture(scope="module")
def mouse_file(tmp_path_factory):
    """A small myeloid simulation (300 cells) named like mouse data: the regulators by their
    MGI symbols, six targets as housekeeping/effector genes, and Irf8 detected in 3 cells."""
    adata = gcl.datasets.myeloid(n_cells=300, n_targets=20, seed=0)
    names = [MGI.get(g, g) for g in adata.var_names]
    targets = [i for i, g in enumerate(names) if g.startswith("t0")]
    for i, name in zip(targets, NON_TFS, strict=False):
        names[i] = name
    rare = targets[-1]
    names[rare] = RARE_TF
    counts = adata.layers["counts"].copy()
    counts = counts.toarray() if hasattr(counts, "toarray") else np.asarray(counts)
    counts[:, rare] = 0
    counts[:3, rare] = 2  # detected in 1 % of the cells: kept by the recipe, not modelled
    out = ad.AnnData(
        X=counts.astype(np.float32),
        obs=adata.obs[["celltype"]].copy(),
        var=pd.DataFrame(index=names),
    )
    path = tmp_path_factory.mktemp("mouse") / "mouse.h5ad"
    out.write_h5ad(path)
    return path, out


@pytest.fixture(scope="module")
def prior_file(tmp_path_factory):
    """A local prior with '+'/'-' signs among the regulators, one edge naming a gene the
    genome does not model (dropped), as a TSV."""
    rows = [
        ("Gata1", "Klf1", "+"), ("Gata1", "Spi1", "-"), ("Spi1", "Gata1", "-"),
        ("Spi1", "Cebpa", "+"), ("Cebpa", "Gfi1", "+"), ("Gata2", "Gata1", "+"),
        ("Fli1", "Klf1", "-"), ("Klf1", "Fli1", "-"), ("Gfi1", "Egr1", "-"),
        ("Egr1", "Gfi1", "-"), ("Gata1", "Gata2", "-"), ("Gata1", "Actb", "+"),
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("prior") / "prior.tsv"
    pd.DataFrame(rows, columns=["source", "target", "sign"]).to_csv(path, sep="\t", index=False)
    return path, rows


@pytest.fixture(scope="module")
def real_run(mouse_file, prior_file, tmp_path_factory):
    """One run with --organism mouse and --prior on the mouse-named data (2 scVI epochs)."""
    path, _ = mouse_file
    prior, _ = prior_file
    out = tmp_path_factory.mktemp("run") / "out"
    result = CliRunner().invoke(
        main,
        ["run", str(path), "--out", str(out), "--epochs", "2", "--organism", "mouse",
         "--prior", str(prior), "--knockout", "Gata1", "--knockout", "Spi1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_organism_models_the_expressed_regulators_only(real_run, mouse_file):
    out = real_run
    summary = json.loads((out / "summary.json").read_text())
    regs = summary["regulators"]
    results = gcl.io.read(out / "results.h5ad")
    flagged = set(results.var_names[results.var["gcl_regulator"].to_numpy(bool)])
    assert {"Gata1", "Spi1", "Klf1", "Cebpa", "Gfi1", RARE_TF} <= flagged
    assert not flagged & set(NON_TFS)
    genome_genes = list(results.uns["gcl_genome"]["genes"])
    assert genome_genes == regs["genes"]
    assert set(genome_genes) == flagged - {RARE_TF}  # Irf8 is in 1 % of the cells only
    assert regs["organism"] == "mouse"
    assert regs["n_used"] == len(genome_genes)
    assert regs["n_annotated"] == len(flagged)
    report = (out / "report.html").read_text()
    assert f"the genome models {len(genome_genes)} transcription factors" in report
    assert "<details><summary>the " in report
    assert "Gata1, " in report


@pytest.mark.slow
def test_prior_is_used_and_recorded(real_run, prior_file):
    out = real_run
    prior, rows = prior_file
    summary = json.loads((out / "summary.json").read_text())
    genes = set(summary["regulators"]["genes"])
    kept = [r for r in rows if r[0] in genes and r[1] in genes]
    assert len(kept) >= 8
    assert ("Gata1", "Actb", "+") not in kept
    assert summary["prior"]["file"] == str(prior)
    assert summary["prior"]["n_edges_file"] == len(rows)
    assert summary["prior"]["n_edges_kept"] == len(kept)
    assert summary["prior"]["n_repressing"] == sum(r[2] == "-" for r in kept)
    # the prior is a hard mask with its signs: every fitted edge is a prior edge, same sign
    signs = {(s, t): 1 if g == "+" else -1 for s, t, g in rows}
    edges = pd.read_csv(out / "grn_edges.csv")
    assert len(edges)
    for e in edges.itertuples():
        assert (e.source, e.target) in signs
        assert np.sign(e.weight) in (0, signs[(e.source, e.target)])
    params = gcl.io.read(out / "results.h5ad").uns["gcl_genome"]["params"]
    assert params["prior_file"] == str(prior)
    assert params["prior_n_edges"] == len(kept)
    report = (out / "report.html").read_text()
    assert f"Prior network: {prior}, {len(kept)} of its {len(rows)} edges" in report


@pytest.mark.slow
def test_predicted_log2fc_and_p_lost_in_report(real_run, mouse_file):
    out = real_run
    results = gcl.io.read(out / "results.h5ad")
    fc = pd.read_csv(out / "predicted_log2fc.csv", index_col="gene")
    assert list(fc.columns) == ["Gata1 KO", "Spi1 KO"]
    # every gene of the data: without the decoder only the genome's genes would have a row
    assert list(fc.index) == list(results.var_names)
    assert np.isfinite(fc.to_numpy()).all()
    # the genome's genes: exactly gcl.sim.perturb's simulation with the run's settings
    genes = list(results.uns["gcl_genome"]["genes"])
    for gene in ("Gata1", "Spi1"):
        res = gcl.sim.perturb(
            results, gcl.sim.Knockout(gene), root="progenitor", n_cells=RUN_N_SIM_CELLS,
            decode=False, n_null=0,
        )  # fmt: skip
        np.testing.assert_allclose(
            fc.loc[genes, f"{gene} KO"], res.expression.loc[genes, "log2fc"], atol=1e-6
        )
        assert fc.loc[gene, f"{gene} KO"] < 0  # the knocked-out gene itself drops
    screen = pd.read_csv(out / "screen.csv")
    assert {"p_lost", "q_value"} <= set(screen.columns)
    report = (out / "report.html").read_text()
    assert "p_lost is the share of the fitted genome ensemble&#x27;s members" in report
    assert "--n-genomes 5" in report
    assert "<th>p_lost</th>" in report
    assert "<th>q_value</th>" in report
    assert "predicted_log2fc.csv" in report


def test_bad_prior_path_fails_before_the_input_is_read(tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "no_such_prior.csv"
    result = CliRunner().invoke(
        main, ["run", "no_such_dataset", "--out", str(out), "--prior", str(missing)]
    )
    assert result.exit_code != 0
    assert str(missing) in result.output
    assert "does not exist" in result.output
    assert "reading" not in result.output  # the input was never opened
    assert not out.exists()


def test_bad_prior_format_and_options_fail_early(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("from,to\nA,B\n")
    with pytest.raises(GclError, match="source"):
        check_real_data_options(None, bad, 1)
    with pytest.raises(GclError, match="human or mouse"):
        check_real_data_options("yeast", None, 1)
    with pytest.raises(GclError, match="positive integer"):
        check_real_data_options(None, None, 0)
    result = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "o"), "--n-genomes", "0"])
    assert result.exit_code == 2
    assert "--n-genomes" in result.output


def test_prior_without_organism_is_read_as_is(tmp_path):
    path = tmp_path / "prior.csv"
    path.write_text("source,target,sign\nGeneA,GeneB,-\nGeneB,GeneA,+\n")
    organism, prior, n = check_real_data_options(None, path, 3)
    assert (organism, prior, n) == (None, path, 3)


def test_expressed_regulators_threshold_and_cap():
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, (100, 6)).astype(np.float32)
    counts[:, 1] = 0
    counts[:4, 1] = 1  # 4 % of the cells: below 5 %
    counts[:, 2] = 0
    counts[:5, 2] = 1  # 5 %: kept
    adata = ad.AnnData(counts, var=pd.DataFrame(index=list("ABCDEF")))
    adata.layers["counts"] = adata.X.copy()
    adata.var["gcl_regulator"] = [True, True, True, True, False, True]
    adata.var["highly_variable_rank"] = [3.0, 0.0, 4.0, np.nan, 1.0, 2.0]
    assert expressed_regulators(adata) == ["A", "C", "D", "F"]
    # capped: the best-ranked first (F 2, A 3), returned in the data's order
    assert expressed_regulators(adata, cap=2) == ["A", "F"]


@pytest.mark.slow
def test_n_genomes_reaches_fit_grn(mouse_file, tmp_path):
    from gclandscape.cli import Step, run_pipeline, step_grn, step_qc, step_recipe, step_save

    _, adata = mouse_file
    steps = [Step("qc", step_qc), Step("recipe", step_recipe), Step("grn", step_grn),
             Step("save", step_save)]  # fmt: skip
    ctx = run_pipeline(
        adata, tmp_path / "out", organism="mouse", n_genomes=2, n_bootstrap=0, steps=steps
    )
    assert ctx.summary["grn"]["n_genomes"] == 2
    results = gcl.io.read(tmp_path / "out" / "results.h5ad")
    assert results.uns["gcl_genome"]["params"]["n_genomes"] == 2  # members fitted
    genome = gcl.landscape.Genome.from_adata(results)
    assert genome.n_members == ctx.summary["grn"]["n_members_kept"] >= 1
    assert list(genome.genes) == ctx.summary["regulators"]["genes"]


def test_organism_without_expressed_regulators_is_a_clear_error(tmp_path):
    from gclandscape.cli import Step, run_pipeline, step_qc, step_recipe

    rng = np.random.default_rng(0)
    rate = rng.gamma(2.0, 2.0, 30)[None, :] * rng.lognormal(0.0, 0.5, (80, 1))
    adata = ad.AnnData(
        rng.poisson(rate).astype(np.float32),
        var=pd.DataFrame(index=[f"Gene{i}" for i in range(29)] + ["Spi1"]),
    )
    steps = [Step("qc", step_qc), Step("recipe", step_recipe)]
    with pytest.raises(GclError, match=r"1 of the data's 30 genes .* at least 2"):
        run_pipeline(adata, tmp_path / "out", organism="mouse", steps=steps)
    assert not (tmp_path / "out").exists()
