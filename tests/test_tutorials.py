"""The tutorials in tutorials/ execute top to bottom (jupytext -> nbclient) with small
settings, and their key results are what the text says they are."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
#: Seconds one cell may run before the execution fails.
CELL_TIMEOUT = 600

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec named ``gcl-tutorial`` that runs this interpreter (the venv's), kept in
    ``tmp_path`` (nothing is registered in the user's home), and the environment the
    notebooks read: fast settings, headless matplotlib, figures under ``tmp_path``."""
    spec = tmp_path / "jupyter" / "kernels" / "gcl-tutorial"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "gclandscape tutorial",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("GCL_TUTORIAL_FAST", "1")
    monkeypatch.setenv("GCL_TUTORIAL_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel is a separate process: keep it to one thread like the test process
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def execute(name: str, cwd: Path, probe: str) -> tuple[object, dict]:
    """Execute ``tutorials/<name>.py`` top to bottom, then a ``probe`` cell that prints one
    JSON object; return the executed notebook and that object."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    nb = jupytext.read(TUTORIALS / f"{name}.py")
    nb.cells.append(nbformat.v4.new_code_cell(f"import json\nprint(json.dumps({probe}))"))
    client = NotebookClient(
        nb,
        kernel_name="gcl-tutorial",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()  # raises CellExecutionError with the cell's traceback on any error
    out = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    got = json.loads("".join(o["text"] for o in out).strip().splitlines()[-1])
    print(f"{name}: {got}")  # shown by pytest when an assertion fails
    return nb, got


def _images(nb) -> int:
    """Number of PNG images the notebook displayed."""
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def _errors(nb) -> list[str]:
    return [
        o.get("ename", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def test_tutorials_are_percent_format_with_fast_switch():
    import jupytext

    names = sorted(p.stem for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert names == ["01_quickstart", "02_your_own_data", "03_generative_genome"]
    for name in names:
        text = (TUTORIALS / f"{name}.py").read_text()
        assert 'os.environ.get("GCL_TUTORIAL_FAST"' in text, name
        nb = jupytext.read(TUTORIALS / f"{name}.py")
        kinds = {c.cell_type for c in nb.cells}
        assert kinds == {"markdown", "code"}, name
        assert nb.cells[0].cell_type == "markdown", name


def test_01_quickstart(kernel_env):
    nb, got = execute(
        "01_quickstart",
        kernel_env,
        "{'lost': ko.lost_fates, 'fates': ko.fates['delta'].to_dict(),"
        " 'attractors': land.attractors.loc[land.attractors['stable'], 'label'].tolist(),"
        " 'n_screen': int(table['perturbation'].nunique()),"
        " 'n_agree': int(compare['agree'].sum())}",
    )
    assert _errors(nb) == []
    # the knockout of the erythroid master regulator loses the erythrocytes
    assert "Ery" in got["lost"]
    assert got["fates"]["Ery"] < -0.15
    assert {"Ery", "Mk", "Gran", "Mono"} <= set(got["attractors"])
    assert got["n_screen"] == 11  # every regulator knocked out
    # measured 7 or 8 of 11 with the fast settings; "nothing lost" everywhere would get 3
    assert got["n_agree"] >= 6
    out = kernel_env / "out" / "01_quickstart"
    for name in ("landscape", "grn", "gata1_fates", "screen"):
        for fmt in ("pdf", "svg", "png"):
            assert (out / f"{name}.{fmt}").stat().st_size > 1000, (name, fmt)
    assert _images(nb) >= 7  # every figure cell rendered inline


@pytest.mark.shared_data
def test_02_your_own_data(kernel_env, shared_data, monkeypatch):
    paul15 = shared_data / "paul15" / "paul15_240genes.h5ad"
    if not paul15.is_file():
        pytest.skip(f"the Paul15 counts are not at {paul15}")
    monkeypatch.setenv("GCL_SHARED_DATA", str(shared_data))
    nb, got = execute(
        "02_your_own_data",
        kernel_env,
        "{'path': str(PATH), 'n_obs': adata.n_obs, 'gene': KO_GENE, 'genes': genome.genes,"
        " 'wt': ko.fates['wt'].to_dict(), 'log2fc': ko.log2fc.to_dict(),"
        " 'attractors': land.attractors['label'].tolist(), 'first': pt_order.index[0],"
        " 'latent': list(adata.obsm['X_gcl'].shape), 'n_decoded': int(ko.decoded.n_vars),"
        " 'n_screened': int(table['perturbation'].nunique()), 'rho': float(rho)}",
    )
    assert _errors(nb) == []
    assert Path(got["path"]) == paul15
    assert got["n_obs"] > 2000
    assert got["latent"][1] == 10
    # pseudotime starts in the progenitors and follows the hierarchy (measured rho 0.61
    # with the fast settings, 0.30 with the real ones)
    assert got["first"] == "Multipotent progenitors"
    assert got["rho"] > 0.2
    # measured in every run: Klf1 among the 30 genes, an erythrocyte attractor
    assert got["gene"] == "Klf1"
    assert got["gene"] in got["genes"]
    assert "Erythrocyte" in got["attractors"]
    assert sum(got["wt"].values()) == pytest.approx(1.0)
    # the knocked-out gene collapses (measured log2fc -3.0); every gene is decoded
    assert got["log2fc"][got["gene"]] < -1.5
    assert len(got["log2fc"]) == got["n_decoded"] == 240
    assert got["n_screened"] >= 3
    assert _images(nb) >= 6


def test_03_generative_genome(kernel_env):
    nb, got = execute(
        "03_generative_genome",
        kernel_env,
        "{'robustness': scan.robustness, 'evolvability': scan.evolvability,"
        " 'n_mutants': len(scan.table), 'n_pleio': len(scan.pleiotropy),"
        " 'pairs': pairs[['gene_a', 'gene_b']].drop_duplicates().values.tolist(),"
        " 'n_fixed': int((fixed['type'] == 'stable').sum()), 'edge_delta': edge_delta,"
        " 'development': development.to_dict(orient='index'),"
        " 'max_epistasis': float(pairs['epistasis'].abs().max())}",
    )
    assert _errors(nb) == []
    assert 0.0 <= got["robustness"] <= 1.0
    assert 0.0 <= got["evolvability"] <= 1.0
    assert got["n_mutants"] >= 20
    assert got["n_pleio"] >= 1
    assert len(got["pairs"]) == 3  # three regulators: every pair
    assert got["max_epistasis"] > 0.05  # measured 0.16: Gfi1 KO masks Pu.1 KO on Gran
    assert got["n_fixed"] >= 4  # the genome alone has the four fates' attractors
    # the most pleiotropic edge, removed on its own, moves a fate (measured 0.19)
    assert got["edge_delta"] > 0.05
    # fates are set by the progenitors' states: with and without noise the same fractions
    # (measured within 0.05), and the deterministic run still reaches all four fates; a few
    # cells may stop at the small progenitor attractor of the genome fitted to the per-cell
    # drift (basin 0.8 % of cells; measured 0.053 without noise, 0.005 with)
    dev = got["development"]
    noisy, quiet = dev["early progenitors, with noise"], dev["early progenitors, no noise"]
    assert max(abs(noisy[f] - quiet[f]) for f in noisy) < 0.1
    assert all(quiet[f] > 0.05 for f in ("Ery", "Mk", "Gran", "Mono"))
    assert quiet.get("progenitor", 0.0) < 0.1
    assert sum(quiet.values()) == pytest.approx(1.0)
    assert _images(nb) >= 3  # network, scan, edge mutation
