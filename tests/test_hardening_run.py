"""Hardening of ``gclandscape run``: the output folder is written all at once or not at all,
a bad ``--out`` fails before the input is read, and CSV cells cannot start a spreadsheet
formula."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import gclandscape.cli as cli
from gclandscape._errors import GclError
from gclandscape.cli import Step, main, run_pipeline


def _toy(n_cells: int = 30, n_genes: int = 8) -> ad.AnnData:
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(n_cells, n_genes)).astype(np.float32)
    return ad.AnnData(
        counts,
        obs=pd.DataFrame(
            {"celltype": pd.Categorical(np.repeat(["A", "B", "C"], n_cells // 3))},
            index=[f"cell{i}" for i in range(n_cells)],
        ),
        var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]),
    )


def _write_seed(ctx) -> None:
    (ctx.out / "seed.txt").write_text(str(ctx.seed))
    ctx.files.append("seed.txt")


class _Hooks:
    fail: BaseException | None = None


def _tail(ctx) -> None:
    if _Hooks.fail is not None:
        raise _Hooks.fail


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


STEPS = [Step("qc", cli.step_qc), Step("seed", _write_seed), Step("tail", _tail)]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), RuntimeError("screen failed")])
def test_interrupted_rerun_keeps_the_previous_result(tmp_path, monkeypatch, interrupt):
    out = tmp_path / "res"
    run_pipeline(_toy(), out, steps=STEPS, seed=0)
    first = _contents(out)
    assert sorted(first) == ["qc.csv", "seed.txt", "summary.json"]

    monkeypatch.setattr(_Hooks, "fail", interrupt)
    with pytest.raises(type(interrupt)):
        run_pipeline(_toy(), out, steps=STEPS, seed=1)
    assert _contents(out) == first  # nothing of the second run, nothing of the first lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no staging folder left

    # a completed re-run replaces the folder whole: the first run's extra file is gone
    monkeypatch.setattr(_Hooks, "fail", None)
    ctx = run_pipeline(_toy(), out, steps=[STEPS[0]], seed=2)
    assert ctx.out == out.resolve()
    assert sorted(_contents(out)) == ["qc.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["seed"], summary["out"]) == (2, str(out.resolve()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_unwritable_out_fails_before_the_input_is_read(tmp_path, monkeypatch):
    def no_read(*args, **kwargs):
        raise AssertionError("the input was read before --out was checked")

    monkeypatch.setattr(cli, "load_input", no_read)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["run", "myeloid", "--out", str(blocker / "res")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "cannot be written" in result.output
    assert str(blocker) in result.output


def test_out_with_other_files_is_refused_and_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "load_input", lambda *a, **k: pytest.fail("input read"))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["run", "--out", str(out)])
    assert result.exit_code == 1
    assert "notes.txt" in result.output
    assert "would be lost" in result.output
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(GclError, match=r"notes\.txt"):
        run_pipeline(_toy(), out, steps=STEPS[:1])


def test_csv_cells_cannot_start_a_formula(tmp_path):
    from gclandscape import _report

    table = pd.DataFrame(
        {
            "gene": ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "Gata1"],
            "delta": [-0.5, 1.0, -2.0, 0.0, 3.0, -1e-3],
            "group": pd.Categorical(["-a", "b", "-a", "b", "b", "b"]),
        },
        index=pd.Index(["=c1", "c2", "c3", "c4", "c5", "c6"], name="cell"),
    )
    path = _report.write_table(table, tmp_path / "t.csv")
    back = pd.read_csv(path, index_col="cell", keep_default_na=False)
    assert list(back.index) == ["'=c1", "c2", "c3", "c4", "c5", "c6"]
    assert list(back["gene"]) == ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1)", "'\tx", "Gata1"]
    np.testing.assert_array_equal(back["delta"], table["delta"])  # numbers stay numbers
    assert list(back["group"]) == ["'-a", "b", "'-a", "b", "b", "b"]
    assert table.loc["=c1", "gene"].startswith("=")  # the caller's table is not changed


def test_run_csv_outputs_are_neutralised(tmp_path):
    adata = _toy()
    adata.obs_names = ["=HYPERLINK(1)", *adata.obs_names[1:]]
    adata.obs["celltype"] = pd.Categorical(np.repeat(["@A", "B", "-C"], 10))
    run_pipeline(adata, tmp_path / "o", steps=STEPS[:1])
    qc = pd.read_csv(tmp_path / "o" / "qc.csv", index_col="cell")
    assert qc.index[0] == "'=HYPERLINK(1)"
    assert set(qc["celltype"]) == {"'@A", "B", "'-C"}
    assert (qc["total_counts"] > 0).all()


def test_every_run_csv_goes_through_the_one_writer():
    """Each CSV of the run is written by _report.write_table, which neutralises formulas."""
    import gclandscape

    root = Path(gclandscape.__file__).parent
    sources = [root / "cli.py", *sorted((root / "_pipeline").glob("*.py"))]
    offenders = [p.name for p in sources if ".to_csv(" in p.read_text()]
    assert offenders == []
    assert ".csv" in "".join(p.read_text() for p in sources)  # the run does write CSVs


def test_qc_mitochondrial_share_through_scanpy_qc_vars(tmp_path):
    adata = _toy()
    adata.var_names = [*adata.var_names[:-2], "mt-Co1", "MT-ND1"]
    before_var = adata.var.copy()
    run_pipeline(adata, tmp_path / "o", steps=STEPS[:1])
    qc = pd.read_csv(tmp_path / "o" / "qc.csv", index_col="cell")
    x = adata.X
    np.testing.assert_allclose(qc["pct_counts_mt"], x[:, -2:].sum(1) / x.sum(1) * 100, rtol=1e-5)
    np.testing.assert_allclose(qc["total_counts_mt"], x[:, -2:].sum(1))
    pd.testing.assert_frame_equal(adata.var, before_var)  # no 'mt' column left behind
