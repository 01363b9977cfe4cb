"""The ``gclandscape`` command line, through click's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import gclandscape as gcl
from gclandscape.cli import PIPELINE, Step, main, run_pipeline

N_CELLS, N_GENES = 90, 60
TYPES = ["A", "B", "C"]


def _toy(seed: int = 0) -> ad.AnnData:
    """Three groups with different expression programmes; integer counts in X."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(3), [40, 30, 20])
    rate = np.full((3, N_GENES), 1.0)
    for g in range(3):
        rate[g, g * 20 : (g + 1) * 20] = 8.0
    counts = rng.poisson(rate[group]).astype(np.float32)
    names = [f"Gene{i}" for i in range(N_GENES - 2)] + ["mt-Co1", "mt-Nd1"]
    return ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame(
            {
                "celltype": pd.Categorical(np.array(TYPES)[group]),
                "batch": rng.integers(0, 2, N_CELLS).astype(str),
            },
            index=[f"cell{i}" for i in range(N_CELLS)],
        ),
        var=pd.DataFrame(index=names),
    )


@pytest.fixture
def toy_file(tmp_path):
    adata = _toy()
    path = tmp_path / "toy.h5ad"
    adata.write_h5ad(path)
    return path, adata


def _runner() -> CliRunner:
    return CliRunner()


def test_help_is_fast_and_light():
    code = (
        "import sys; from gclandscape.cli import main; "
        "print(','.join(m for m in ('scanpy', 'anndata', 'matplotlib', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    result = _runner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "datasets" in result.output
    assert "run" in result.output


def test_datasets_lists_builtin_names():
    result = _runner().invoke(main, ["datasets"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["name", "description"]
    names = [line.split()[0] for line in lines[2:]]
    assert names == ["myeloid", "simulate", "krumsiek11", "toggleswitch", "paul15"]
    paul = next(line for line in lines if line.startswith("paul15"))
    assert " yes " in paul


@pytest.mark.slow
def test_run_writes_every_file(toy_file, tmp_path):
    path, adata = toy_file
    out = tmp_path / "out"
    result = _runner().invoke(
        main,
        ["run", str(path), "--out", str(out), "--seed", "3", "--epochs", "3",
         "--knockout", "Gene1", "--knockout", "Gene25"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # steady-state genome (no root group): no fates, so no landscape/fate figures of a screen
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "attractors.csv", "grn.pdf", "grn.png", "grn_edges.csv", "landscape.pdf",
        "landscape.png", "landscape_grid.csv", "paths.csv", "qc.csv", "report.html",
        "results.h5ad", "screen.csv", "summary.json", "umap.pdf", "umap.png",
        "vector_field.pdf", "vector_field.png", "predicted_log2fc.csv",
    ])  # fmt: skip
    edges = pd.read_csv(out / "grn_edges.csv")
    assert list(edges.columns[:3]) == ["source", "target", "weight"]
    assert set(edges["source"]) <= set(adata.var_names)
    results = gcl.io.read(out / "results.h5ad")
    assert "gcl_genome" in results.uns
    screen = pd.read_csv(out / "screen.csv")
    stored = results.uns["gcl_screen"]
    assert list(stored.columns) == list(screen.columns)
    np.testing.assert_allclose(stored["score"].to_numpy(float), screen["score"].to_numpy(float))
    assert "X_gcl" in results.obsm  # the scVI latent
    attractors = pd.read_csv(out / "attractors.csv")
    n_att = json.loads((out / "summary.json").read_text())["landscape"]["n_attractors"]
    assert len(attractors) == n_att >= 1
    assert attractors["basin_fraction"].sum() == pytest.approx(1.0, abs=1e-6)
    grid = pd.read_csv(out / "landscape_grid.csv")
    assert list(grid.columns) == ["x", "y", "U", "U_empirical"]
    assert np.isfinite(grid["U_empirical"]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cells"] == N_CELLS
    assert summary["n_genes"] == N_GENES
    assert summary["groupby"] == "celltype"
    assert summary["cell_types"] == {"A": 40, "B": 30, "C": 20}
    assert summary["input"] == str(path)
    assert summary["seed"] == 3
    assert summary["gclandscape_version"] == gcl.__version__
    assert summary["counts"] == "layers['counts']"
    assert [s["name"] for s in summary["steps"]] == [s.name for s in PIPELINE]
    assert all(s["seconds"] >= 0 for s in summary["steps"])
    assert all(s["cpu_seconds"] >= 0 for s in summary["steps"])
    assert summary["files"] == [
        "qc.csv", "grn_edges.csv", "attractors.csv", "paths.csv", "landscape_grid.csv",
        "screen.csv", "predicted_log2fc.csv", "umap.png", "umap.pdf", "grn.png", "grn.pdf", "landscape.png",
        "landscape.pdf", "vector_field.png", "vector_field.pdf", "results.h5ad", "report.html",
        "summary.json",
    ]  # fmt: skip
    assert summary["latent"]["epochs"] == 3
    # the screen of the two knockouts, steady-state form: every regulator's change
    screen = pd.read_csv(out / "screen.csv")
    assert list(screen.columns[:5]) == ["perturbation", "gene", "wt", "perturbed", "log2fc"]
    assert set(screen["perturbation"]) == {"Gene1 KO", "Gene25 KO"}
    assert summary["screen"]["n_knockouts"] == 2
    knocked = screen[screen["perturbation"] == screen["gene"] + " KO"]
    assert len(knocked) == 2
    assert (knocked["perturbed"] < 0.5 * knocked["wt"]).all()  # a knocked-out gene drops
    # every gene's predicted change for each knockout; the genome's genes as in screen.csv
    fc = pd.read_csv(out / "predicted_log2fc.csv", index_col="gene")
    assert list(fc.columns) == ["Gene1 KO", "Gene25 KO"]
    assert list(fc.index) == list(adata.var_names)
    for row in screen.itertuples():
        assert fc.loc[row.gene, row.perturbation] == pytest.approx(row.log2fc, abs=1e-6)
    report = (out / "report.html").read_text()
    assert "Knockout screen" in report
    assert report.count("<img ") == 4  # umap, grn, landscape, vector field

    qc = pd.read_csv(out / "qc.csv", index_col="cell")
    x = adata.X.toarray()
    assert list(qc.index) == list(adata.obs_names)
    np.testing.assert_allclose(qc["total_counts"], x.sum(1))
    np.testing.assert_array_equal(qc["n_genes_by_counts"], (x > 0).sum(1))
    np.testing.assert_allclose(qc["log1p_total_counts"], np.log1p(x.sum(1)))
    top10 = np.sort(x, axis=1)[:, ::-1][:, :10].sum(1) / x.sum(1) * 100
    np.testing.assert_allclose(qc["pct_counts_in_top_10_genes"], top10, rtol=1e-6)
    np.testing.assert_allclose(qc["pct_counts_mt"], x[:, -2:].sum(1) / x.sum(1) * 100, rtol=1e-6)
    assert (qc["celltype"] == adata.obs["celltype"].astype(str).to_numpy()).all()
    assert summary["qc"]["median_total_counts"] == pytest.approx(np.median(x.sum(1)))

    assert (out / "umap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "umap.pdf").read_bytes()[:5] == b"%PDF-"

    # the human-readable summary and the per-step log
    assert f"{N_CELLS} cells x {N_GENES} genes" in result.stdout
    assert "celltype: A 40, B 30, C 20" in result.stdout
    for step in PIPELINE:
        assert f"{step.name} done in" in result.stderr


@pytest.mark.slow
def test_run_groupby_other_column(toy_file, tmp_path):
    path, adata = toy_file
    out = tmp_path / "out"
    result = _runner().invoke(
        main,
        ["run", str(path), "--out", str(out), "--groupby", "batch", "--epochs", "2",
         "--knockout", "Gene1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groupby"] == "batch"
    assert summary["cell_types"] == adata.obs["batch"].value_counts().to_dict()


def test_missing_groupby_lists_columns(toy_file, tmp_path):
    path, _ = toy_file
    out = tmp_path / "out"
    result = _runner().invoke(main, ["run", str(path), "--out", str(out), "--groupby", "cluster"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "'cluster'" in result.output
    assert "celltype, batch" in result.output
    assert not (out / "summary.json").exists()


def test_unreadable_input_errors_cleanly(tmp_path):
    bad = tmp_path / "broken.h5ad"
    bad.write_bytes(b"this is not an HDF5 file")
    result = _runner().invoke(main, ["run", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Error:" in result.output
    assert "broken.h5ad" in result.output
    assert "Traceback" not in result.output


def test_unknown_input_name_errors_cleanly(tmp_path):
    result = _runner().invoke(main, ["run", "no_such_dataset", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "neither an existing file or folder nor a built-in dataset" in result.output
    assert "krumsiek11" in result.output


@pytest.mark.slow
def test_run_on_builtin_name_without_counts(tmp_path):
    """krumsiek11 has continuous values: QC runs on X, normalisation is skipped."""
    out = tmp_path / "k"
    result = _runner().invoke(main, ["run", "krumsiek11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"] == "krumsiek11"
    assert (summary["n_cells"], summary["n_genes"]) == (640, 11)
    assert summary["cell_types"] == {"progenitor": 320, "Ery": 80, "Gran": 80, "Mk": 80, "Mono": 80}
    assert summary["counts"] is None
    assert summary["recipe"]["normalized"] is False
    assert summary["latent"].startswith("skipped")
    assert summary["pseudotime"]["root"] == "progenitor"
    assert summary["grn"]["mode"] == "drift"


@pytest.mark.slow
def test_run_pipeline_extensible_and_input_untouched(tmp_path):
    adata = _toy()
    before = adata.copy()
    seen = []
    extra = Step("extra", lambda ctx: seen.append(ctx.work.obsm["X_umap"].shape), "test step")
    ctx = run_pipeline(
        adata,
        tmp_path / "o",
        steps=[*PIPELINE, extra],
        input="toy",
        epochs=2,
        knockouts=["Gene3"],
        n_bootstrap=0,
        n_sim_cells=50,
    )
    assert seen == [(N_CELLS, 2)]
    assert [s["name"] for s in ctx.summary["steps"]] == [
        "qc", "recipe", "latent", "embed", "pseudotime", "grn", "landscape", "screen", "plot",
        "save", "report", "extra",
    ]  # fmt: skip
    # the user's object is not modified
    assert list(adata.obs.columns) == list(before.obs.columns)
    assert adata.uns.keys() == before.uns.keys()
    assert adata.obsm.keys() == before.obsm.keys()
    np.testing.assert_array_equal(adata.X.toarray(), before.X.toarray())


@pytest.mark.slow
def test_run_default_myeloid(tmp_path):
    out = tmp_path / "m"
    result = _runner().invoke(main, ["run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"] == "myeloid"
    listed = gcl.datasets.available().set_index("name").loc["myeloid"]
    assert (
        (summary["n_cells"], summary["n_genes"])
        == (listed["n_obs"], listed["n_vars"])
        == (3000, 311)
    )
    assert set(summary["cell_types"]) <= {"progenitor", "Ery", "Mk", "Gran", "Mono"}
    assert sum(summary["cell_types"].values()) == 3000
    assert summary["counts"] == "layers['counts']"
    qc = pd.read_csv(out / "qc.csv", index_col="cell")
    assert len(qc) == 3000
    assert (qc["total_counts"] > 0).all()
    assert (out / "umap.png").stat().st_size > 10_000
    # the fitted landscape keeps all four fates of the data (an adaptive connection cost with
    # exponent 1 lost Mk here; benchmarks/README.md, "GRN recovery")
    attractors = pd.read_csv(out / "attractors.csv").set_index("label")
    for fate in ("Ery", "Mk", "Gran", "Mono"):
        assert bool(attractors.loc[fate, "stable"])
        assert attractors.loc[fate, "basin_fraction"] > 0.1


@pytest.mark.slow
@pytest.mark.shared_data
def test_run_paul15_subset(shared_data, tmp_path):
    path = shared_data / "paul15" / "paul15_240genes.h5ad"
    out = tmp_path / "p"
    # 10 scVI epochs (default 45 for 2,660 cells): nothing below depends on the latent's fit
    result = _runner().invoke(main, ["run", str(path), "--out", str(out), "--epochs", "10"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n_cells"], summary["n_genes"]) == (2660, 240)
    assert summary["cell_types"] == {
        "Erythrocyte": 1095,
        "Monocytes": 559,
        "Basophils": 369,
        "GMP": 216,
        "Neutrophils": 186,
        "Multipotent progenitors": 167,
        "Megakaryocytes": 68,
    }
    qc = pd.read_csv(out / "qc.csv", index_col="cell")
    src = ad.read_h5ad(path)
    np.testing.assert_allclose(qc["total_counts"], np.asarray(src.X.sum(1)).ravel())
    assert (out / "umap.pdf").stat().st_size > 0
    # a large genome screens its MAX_SCREEN strongest regulators, not all of them
    from gclandscape.cli import MAX_SCREEN

    assert pd.read_csv(out / "screen.csv")["perturbation"].nunique() == MAX_SCREEN


@pytest.mark.slow
def test_run_without_celltype_column(tmp_path):
    adata = _toy()
    del adata.obs["celltype"]
    adata.write_h5ad(tmp_path / "plain.h5ad")
    out = tmp_path / "o"
    result = _runner().invoke(
        main,
        ["run", str(tmp_path / "plain.h5ad"), "--out", str(out), "--epochs", "2",
         "--knockout", "Gene1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groupby"] is None
    assert summary["cell_types"] is None
    assert "celltype" not in pd.read_csv(out / "qc.csv").columns
    assert (out / "umap.png").exists()
    assert "no cell-type column" in result.stdout


def test_missing_root_lists_groups(toy_file, tmp_path):
    path, _ = toy_file
    out = tmp_path / "out"
    result = _runner().invoke(main, ["run", str(path), "--out", str(out), "--root", "stem"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "root group 'stem' is not in obs['celltype']" in result.output
    assert "Available groups: A, B, C" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_unknown_knockout_errors_before_any_work(toy_file, tmp_path):
    path, _ = toy_file
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--knockout", "Gene1", "--knockout", "Gata1"]
    result = _runner().invoke(main, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "--knockout Gata1: not a gene of the data" in result.output
    assert "Gene0, Gene1" in result.output
    assert not out.exists()  # nothing was computed, nothing created


def test_knockout_must_be_a_regulator(tmp_path):
    """On data with marked regulators, a target gene is refused with the regulators listed,
    before any step runs."""
    adata = gcl.datasets.myeloid(n_cells=200, n_targets=5)
    target = str(adata.var_names[~adata.var["gcl_regulator"].to_numpy(dtype=bool)][0])
    with pytest.raises(gcl._errors.GclError) as err:
        run_pipeline(adata, tmp_path / "o", knockouts=["Gata1", target, "gata2"])
    message = str(err.value)
    assert f"--knockout {target}, gata2: not among the 11 regulators" in message
    assert "Gata2, Gata1, Fog1, EKLF, Fli1, SCL, Cebpa, Pu.1, cJun, EgrNab, Gfi1" in message
    assert "case-sensitive" in message
    assert sorted(tmp_path.iterdir()) == []  # neither the folder nor a staging folder


def test_cli_leaves_the_openmp_wait_policy_alone():
    """The CLI once forced passive OpenMP waiting; it cost a fifth of a quiet run, so a
    user's policy (or none) is what the run gets."""
    code = (
        "import os; from gclandscape.cli import main; "
        "main(['datasets'], standalone_mode=False); "
        "print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    )
    for policy in (None, "ACTIVE"):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        assert out.stdout.strip().splitlines()[-1] == (policy or "unset")


def test_screen_genes_caps_at_the_strongest_regulators():
    from gclandscape.cli import MAX_SCREEN, screen_genes

    n = MAX_SCREEN + 10
    genes = [f"g{i}" for i in range(n)]
    W = np.zeros((n, n))
    W[0, :] = np.arange(n)  # source j regulates g0 with weight j: the last genes are strongest
    adata = ad.AnnData(np.zeros((3, n)))
    adata.var_names = genes
    gcl.landscape.Genome(genes, W).write_to_adata(adata)
    assert screen_genes(adata) == genes[::-1][:MAX_SCREEN]
    small = ad.AnnData(np.zeros((3, 2)))
    small.var_names = ["a", "b"]
    gcl.landscape.Genome(["a", "b"], np.zeros((2, 2))).write_to_adata(small)
    assert screen_genes(small) == ["a", "b"]
