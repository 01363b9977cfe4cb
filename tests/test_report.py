"""report.html of ``gclandscape run``: the helpers, the page of a fast real run, and the page
opened in headless Chromium."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import gclandscape as gcl
from gclandscape import _report
from gclandscape._errors import GclError
from gclandscape.cli import PIPELINE, run_pipeline

KNOCKOUTS = ["Gata1", "Pu.1"]


class _Page(HTMLParser):
    """The parts of a page the tests look at: images, links, scripts, tables and headings."""

    def __init__(self, text: str):
        super().__init__()
        self.imgs: list[dict[str, str]] = []
        self.hrefs: list[str] = []
        self.scripts = 0
        self.tables: list[dict] = []
        self.headings: list[str] = []
        self._in: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs)
        elif tag in ("a", "link"):
            self.hrefs.append(attrs.get("href", ""))
        elif tag == "script":
            self.scripts += 1
        elif tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("caption", "h1", "h2"):
            self._in, self._cell = tag, []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1]["rows"].append(self._row)
            self._row = None
        elif tag == "caption" and self._in == "caption":
            self.tables[-1]["caption"] = "".join(self._cell).strip()
            self._in, self._cell = None, None
        elif tag in ("h1", "h2") and self._in == tag:
            self.headings.append("".join(self._cell).strip())
            self._in, self._cell = None, None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def table(self, caption: str) -> pd.DataFrame:
        found = [t for t in self.tables if t["caption"] == caption]
        assert len(found) == 1, f"no single table captioned {caption!r}"
        rows = found[0]["rows"]
        return pd.DataFrame(rows[1:], columns=rows[0])


def _png(path: Path, size=(2.0, 1.5)) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(path, dpi=50)
    return path


# --------------------------------------------------------------------------------------
# helpers


def test_image_data_uri_round_trips(tmp_path):
    png = _png(tmp_path / "f.png")
    uri = _report.image_data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png.read_bytes()
    (tmp_path / "f.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert _report.image_data_uri(tmp_path / "f.svg").startswith("data:image/svg+xml;base64,")
    (tmp_path / "f.pdf").write_bytes(b"%PDF-")
    with pytest.raises(GclError, match=r"f\.pdf.*only \.png and \.svg"):
        _report.image_data_uri(tmp_path / "f.pdf")


def test_table_html_escapes_rounds_and_truncates():
    table = pd.DataFrame({"gene": ["<b>Gata1</b>", "Pu.1", "Fli1"], "w": [0.123456, -2.0, 1e-5]})
    text = _report.table_html(table, caption="edges & weights", max_rows=2)
    page = _Page(text)
    got = page.table("edges & weights")
    assert got.values.tolist() == [["<b>Gata1</b>", "0.1235"], ["Pu.1", "-2"]]
    assert "<b>" not in text  # the cell is text, not markup
    assert "first 2 of 3 rows" in text
    indexed = table.set_index("gene")
    rows = _Page(_report.table_html(indexed)).tables[0]["rows"]
    assert [rows[0], rows[-1]] == [["gene", "w"], ["Fli1", "1e-05"]]


def test_render_report_is_self_contained(tmp_path):
    figs = [_png(tmp_path / "a.png"), _png(tmp_path / "b.png", size=(3.0, 2.0))]
    sections = [
        _report.Section("First", "some <text>", figures=[(figs[0], "fig A")]),
        _report.Section(
            "Second",
            figures=[(figs[1], "fig B")],
            tables=[("t", pd.DataFrame({"x": [1, 2]}))],
        ),
    ]
    summary = {"input": "toy", "n_cells": 5, "n_genes": 3, "seed": 1, "cell_types": {"A": 5}}
    steps = [
        {"name": "qc", "description": "metrics", "seconds": 1.5, "cpu_seconds": 1.0},
        {"name": "fit", "description": "model", "seconds": 2.25, "cpu_seconds": 4.0},
    ]
    text = _report.render_report(summary, sections, steps=steps, files=["qc.csv"])
    page = _Page(text)
    assert page.headings == ["gclandscape run: toy", "Overview", "First", "Second",
                             "Step times", "Files"]  # fmt: skip
    assert [base64.b64decode(i["src"].split(",", 1)[1]) for i in page.imgs] == [
        f.read_bytes() for f in figs
    ]
    assert [i["alt"] for i in page.imgs] == ["fig A", "fig B"]
    assert page.scripts == 0
    assert all(h.startswith("#") for h in page.hrefs)  # only in-page links
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "some &lt;text&gt;" in text
    times = page.table("time per step (wall clock, and CPU time of this process)")
    assert times["step"].tolist() == ["qc", "fit", "total"]
    assert times["seconds"].astype(float).tolist() == [1.5, 2.25, 3.75]
    assert times["CPU seconds"].astype(float).tolist() == [1.0, 4.0, 5.0]


def test_section_notes_and_details_are_escaped_and_collapsed():
    section = _report.Section(
        "Genome", "first <p>", notes=["second & third"], details=[("the 2 <regs>", "A, B<")]
    )
    text = _report.render_report({"input": "x"}, [section])
    assert "<p>first &lt;p&gt;</p>\n<p>second &amp; third</p>" in text
    assert "<details><summary>the 2 &lt;regs&gt;</summary><p>A, B&lt;</p></details>" in text


# --------------------------------------------------------------------------------------
# the report of a fast real run (small myeloid data, few epochs, two knockouts)


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    adata = gcl.datasets.myeloid(n_cells=400, n_targets=20, seed=0)
    out = tmp_path_factory.mktemp("report_run")
    ctx = run_pipeline(
        adata,
        out,
        epochs=5,
        knockouts=KNOCKOUTS,
        n_bootstrap=0,
        n_sim_cells=100,
        input="myeloid-small",
    )
    return ctx, out


@pytest.mark.slow
def test_report_of_a_run_embeds_every_figure_and_table(fast_run):
    ctx, out = fast_run
    text = (out / "report.html").read_text(encoding="utf-8")
    page = _Page(text)
    assert ctx.files[-2:] == ["report.html", "summary.json"]
    # every figure, embedded byte for byte from its PNG
    names = ["umap", "umap_pseudotime", "grn", "landscape", "vector_field", "screen", "fate_shift"]
    assert list(ctx.figures) == names
    assert len(page.imgs) == len(names)
    for img, name in zip(page.imgs, names):
        assert base64.b64decode(img["src"].split(",", 1)[1]) == (out / f"{name}.png").read_bytes()
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert page.scripts == 0
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert page.headings[1:] == ["Overview", "Quality control", "Latent space and pseudotime",
                                 "Gene-regulatory network (the genome)", "Landscape",
                                 "Knockout screen", "Step times", "Files"]  # fmt: skip

    # QC medians agree with qc.csv
    qc = pd.read_csv(out / "qc.csv", index_col="cell")
    medians = page.table("QC medians per group").set_index("group")
    assert int(medians.loc["all cells", "cells"]) == len(qc) == 400
    assert float(medians.loc["all cells", "median total"]) == pytest.approx(
        qc["total_counts"].median(), rel=1e-3
    )
    for group, part in qc.groupby("celltype"):
        assert int(medians.loc[group, "cells"]) == len(part)

    # strongest GRN edges = the head of grn_edges.csv
    edges = pd.read_csv(out / "grn_edges.csv")
    shown = page.table("strongest edges")
    assert shown[["source", "target"]].values.tolist() == (
        edges[["source", "target"]].head(len(shown)).values.tolist()
    )
    np.testing.assert_allclose(
        shown["weight"].astype(float), edges["weight"].head(len(shown)), rtol=1e-3, atol=1e-4
    )

    # attractors as in attractors.csv
    attractors = pd.read_csv(out / "attractors.csv")
    assert page.table("attractors")["label"].tolist() == attractors["label"].astype(str).tolist()

    # the knockout screen: one row per knockout, the deltas of screen.csv
    screen = pd.read_csv(out / "screen.csv")
    assert sorted(screen["perturbation"].unique()) == sorted(f"{g} KO" for g in KNOCKOUTS)
    grid = page.table("change of each fate's fraction per knockout (* p < 0.05)")
    grid = grid.set_index("knockout")
    for row in screen.itertuples():
        cell = grid.loc[row.perturbation, row.fate]
        assert float(cell.rstrip(" *")) == pytest.approx(row.delta, abs=5e-4)
        assert cell.endswith("*") == (row.p_value < 0.05)
    per = page.table("knockouts, strongest first")
    strongest = json.loads((out / "summary.json").read_text())["screen"]["strongest"]
    assert per["knockout"].iloc[0] == strongest == ctx.strongest.perturbation
    # the uncertainty: p_lost and q_value of every (knockout, fate), as in screen.csv
    calls = page.table(
        "every knockout's fates with their uncertainty (p_lost, q_value), the largest changes first"
    )
    assert len(calls) == len(screen)
    assert calls["fate"].tolist() == [  # largest |delta| first
        screen.loc[i, "fate"] for i in screen["delta"].abs().sort_values(
            ascending=False, kind="stable").index
    ]  # fmt: skip
    keyed = screen.set_index(["perturbation", "fate"])
    for row in calls.itertuples():
        want = keyed.loc[(row.knockout, row.fate)]
        assert float(row.p_lost) == pytest.approx(want["p_lost"], abs=5e-4)
        assert float(row.q_value) == pytest.approx(want["q_value"], rel=1e-3)
    assert "p_lost is the share of the fitted genome ensemble" in text
    genes = list(ctx.work.uns["gcl_genome"]["genes"])
    shown = f"<details><summary>the genome&#x27;s {len(genes)} genes</summary><p>"
    assert shown + ", ".join(genes) + "</p></details>" in text
    # the fate-shift figure's result is the screen's row for that knockout
    rows = screen[screen["perturbation"] == strongest].set_index("fate")
    np.testing.assert_allclose(ctx.strongest.fates.loc[rows.index, "delta"], rows["delta"])

    # every step's time, and the files
    times = page.table("time per step (wall clock, and CPU time of this process)")
    assert times["step"].tolist() == [s.name for s in PIPELINE] + ["total"]
    secs = times["seconds"].astype(float).to_numpy()
    assert secs[-1] == pytest.approx(secs[:-1].sum(), rel=1e-3, abs=1e-3)
    summary = json.loads((out / "summary.json").read_text())
    for step in summary["steps"][:-1]:  # the report's own row is measured just before writing
        got = float(times.set_index("step").loc[step["name"], "seconds"])
        assert got == pytest.approx(step["seconds"], rel=1e-3, abs=6e-4)  # 4 significant digits
    for name in ("qc.csv", "screen.csv", "results.h5ad", "report.html", "summary.json"):
        assert f"<li>{name}</li>" in text


# --------------------------------------------------------------------------------------
# headless Chromium

_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push("error: " + (e.message ||
  (e.target && (e.target.src || e.target.outerHTML || "")).slice(0, 200))), true);
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push("console.error: " + args.join(" "));
  __consoleError(...args); };
window.addEventListener("load", () => {
  const probe = document.createElement("pre");
  probe.id = "__probe";
  probe.textContent = JSON.stringify({
    title: document.title,
    images: [...document.images].map((i) => [i.naturalWidth, i.naturalHeight, i.complete]),
    errors: window.__errors,
  });
  document.body.appendChild(probe);
});
</script>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "no Chromium binary on PATH (chromium, chromium-browser, google-chrome): install "
        "Debian's `apt-get install chromium` (.ci/run does) to open the report in a browser"
    )


def _open_in_chromium(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Load ``page`` (with the probe injected) in headless Chromium; returns what the probe
    saw after the load event (title, image sizes, errors) and the console lines on stderr."""
    text = page.read_text(encoding="utf-8")
    assert text.count("<head>") == 1
    probed = tmp_path / f"probed_{page.name}"
    probed.write_text(text.replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")
    done = subprocess.run(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"the page did not finish loading:\n{done.stdout[:2000]}\n{done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html.unescape(found.group(1))), console


def test_chromium_probe_sees_broken_pages(tmp_path):
    """The browser check can fail: a missing image and a script error are both caught."""
    png = _png(tmp_path / "ok.png")
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        f'<img src="{_report.image_data_uri(png)}"><img src="missing.png">'
        "<script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    probe, console = _open_in_chromium(page, tmp_path)
    assert probe["title"] == "broken"
    assert probe["images"][0] == [100, 75, True]  # 2 x 1.5 inches at 50 dpi
    assert probe["images"][1][:2] == [0, 0]
    assert any("missing.png" in e for e in probe["errors"])
    assert any("undefinedFunction" in e for e in probe["errors"])
    assert any("undefinedFunction" in line for line in console)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(fast_run, tmp_path):
    _chromium()  # skip before anything else when there is no browser
    ctx, out = fast_run
    probe, console = _open_in_chromium(out / "report.html", tmp_path)
    assert probe["title"] == "gclandscape run: myeloid-small"
    assert len(probe["images"]) == len(ctx.figures) == 7
    for (width, height, complete), (name, (path, _)) in zip(probe["images"], ctx.figures.items()):
        assert complete, name
        assert width > 0, f"{name}.png did not render"
        assert height > 0, f"{name}.png did not render"
        with Image.open(path) as image:  # the browser decoded the very PNG written
            assert (width, height) == image.size
    assert probe["errors"] == []
    assert console == [], "console messages:\n" + "\n".join(console)


def test_umap_figure_is_scanpys_embedding_and_writes_nothing():
    import anndata as ad

    rng = np.random.default_rng(0)
    adata = ad.AnnData(
        np.zeros((40, 2)),
        obs=pd.DataFrame(
            {"group": pd.Categorical(rng.choice(["Ery", "Mk", "Mono"], 40)), "t": rng.random(40)}
        ),
    )
    xy = rng.normal(size=(40, 2))
    fig = _report.embedding_figure(xy, obs=adata.obs, color="group", title="cells")
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Ery", "Mk", "Mono"]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), xy)  # scanpy draws all cells
    assert ax.get_title() == "cells"
    fig = _report.embedding_figure(xy, obs=adata.obs, color="t")
    assert len(fig.axes) == 2  # a colour bar for numbers
    assert list(adata.uns.keys()) == []  # scanpy's palette did not land in the data
