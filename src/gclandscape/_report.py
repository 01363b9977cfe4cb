"""Writing what ``gclandscape run`` produced: ``summary.json``, tables, figures, a text summary
and the self-contained ``report.html``.

Pure output helpers for :mod:`gclandscape.cli`; they compute nothing that the pipeline steps
have not computed. scanpy and matplotlib are imported inside the figure helper only; the UMAPs
are scanpy's :func:`scanpy.pl.embedding` figures, and nothing is ever shown.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers into plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: Mapping[str, Any], path: Path) -> Path:
    """Write ``data`` as indented JSON (numpy scalars converted, NaN → null)."""
    path.write_text(json.dumps(_jsonable(data), indent=2) + "\n", encoding="utf-8")
    return path


#: First characters that make a spreadsheet read a text cell as a formula (OWASP's list for
#: CSV injection): such cells get a leading apostrophe, which spreadsheets show as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _neutral(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _neutral_index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.set_levels([_neutral_index(level) for level in index.levels])
    if index.dtype.kind in "iufcbmM":  # numbers and dates are never formulas
        return index
    return index.map(_neutral)


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells (and names) cannot start a spreadsheet formula.

    Text that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    ``'``; numbers stay numbers (a negative float is not a formula), only text is changed.

    Examples
    --------
    >>> t = pd.DataFrame({"gene": ["=HYPERLINK(1)", "Gata1", "-x"], "delta": [-0.5, 0.1, 2.0]})
    >>> neutralise_formulas(t).to_dict("list")
    {'gene': ["'=HYPERLINK(1)", 'Gata1', "'-x"], 'delta': [-0.5, 0.1, 2.0]}
    """
    out = table.copy(deep=False)
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if isinstance(column.dtype, pd.CategoricalDtype):
            cats = column.cat.categories
            if cats.dtype.kind not in "iufcbmM":
                renamed = cats.map(_neutral)
                if renamed.is_unique:  # two labels differing only by the apostrophe stay apart
                    column = column.cat.rename_categories(renamed)
                else:
                    column = column.astype(object).map(_neutral)
        elif column.dtype.kind in "OSU" or pd.api.types.is_string_dtype(column.dtype):
            column = column.map(_neutral)
        else:
            continue
        out.isetitem(i, column)
    out.columns = _neutral_index(out.columns)
    out.index = _neutral_index(out.index)
    return out


def write_table(
    table: pd.DataFrame, path: Path, *, index_label: str = "cell", index: bool = True
) -> Path:
    """Write a table as CSV (per-cell tables with the cell names in the first column).

    Every CSV gclandscape writes goes through here: text cells that a spreadsheet would run
    as a formula are neutralised first (:func:`neutralise_formulas`).
    """
    neutralise_formulas(table).to_csv(path, index_label=index_label if index else None, index=index)
    return path


def embedding_figure(
    coords: np.ndarray,
    *,
    obs: pd.DataFrame | None = None,
    color: str | None = None,
    title: str = "",
    basis: str = "umap",
):
    """scanpy's :func:`scanpy.pl.embedding` of a 2-D embedding, coloured by ``obs[color]``
    (categorical: a legend; numeric: a colour bar), returned as a Figure; nothing is shown.

    scanpy stores a colour palette in ``.uns`` of the AnnData it draws; it draws a light
    AnnData here that shares ``coords`` and the one column, so no one's data are written to.

    Examples
    --------
    >>> xy = np.random.default_rng(0).normal(size=(30, 2))
    >>> obs = pd.DataFrame({"group": pd.Categorical(["a", "b", "c"] * 10)})
    >>> type(embedding_figure(xy, obs=obs, color="group", title="cells")).__name__
    'Figure'
    """
    import anndata as ad
    import scanpy as sc

    index = pd.RangeIndex(len(coords)).astype(str)
    table = pd.DataFrame(index=index)
    if color is not None:
        table[color] = obs[color].to_numpy() if obs is not None else None
    light = ad.AnnData(obs=table, obsm={f"X_{basis}": np.asarray(coords)})
    return sc.pl.embedding(
        light, basis, color=color, title=title, color_map="viridis", return_fig=True,
        show=False,
    )  # fmt: skip


def save_figure(fig, path_stem: Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``path_stem.<fmt>`` for every format; returns the paths."""
    paths = []
    for fmt in formats:
        path = path_stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150 if fmt == "png" else None)
        paths.append(path)
    return paths


def format_table(table: pd.DataFrame) -> str:
    """A plain-text, left-aligned table (no index) for the terminal."""
    cells = [[str(c) for c in table.columns]] + [
        ["" if v is None else str(v) for v in row] for row in table.itertuples(index=False)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_summary(summary: Mapping[str, Any]) -> str:
    """The short human-readable summary ``gclandscape run`` prints at the end."""
    lines = [f"gclandscape run: {summary['input']}"]
    lines.append(
        f"  {summary['n_cells']} cells x {summary['n_genes']} genes"
        + (f"; counts from {summary['counts']}" if summary.get("counts") else "; no counts")
    )
    qc = summary.get("qc") or {}
    if qc.get("median_total_counts") is not None:
        what = "counts" if summary.get("counts") else "total expression (not counts)"
        lines.append(
            f"  median per cell: {qc['median_total_counts']:.4g} {what}, "
            f"{qc['median_genes_detected']:g} genes detected"
        )
    types = summary.get("cell_types")
    if types:
        shown = ", ".join(f"{k} {v}" for k, v in list(types.items())[:12])
        more = f", ... ({len(types)} groups)" if len(types) > 12 else ""
        lines.append(f"  {summary['groupby']}: {shown}{more}")
    else:
        lines.append("  no cell-type column (pass --groupby COLUMN to colour the figure)")
    steps = summary.get("steps") or []
    total = sum(s["seconds"] for s in steps)
    lines.append(f"  wrote to {summary['out']}: {', '.join(summary['files'])} ({total:.1f} s)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# report.html: one self-contained page (figures as base64 PNG, tables as HTML, inline CSS)


@dataclass
class Section:
    """One section of ``report.html``: a heading, paragraphs, collapsed lists, figures and
    tables.

    ``text`` is one paragraph, ``notes`` more paragraphs after it; ``details`` are
    ``(summary, text)`` pairs shown collapsed in a ``<details>`` element (long lists);
    ``figures`` are ``(png_path, caption)`` pairs, embedded as base64 data URIs; ``tables``
    are ``(caption, DataFrame)`` pairs rendered as HTML tables (index dropped unless named).
    All text is escaped.
    """

    title: str
    text: str = ""
    figures: list[tuple[Path, str]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0 1.2em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
.muted { color: #777; font-size: 0.85em; }
table.overview td { text-align: left; }
details { margin: 0.4em 0 1em 0; } summary { cursor: pointer; }
"""


def image_data_uri(path: Path) -> str:
    """A ``data:`` URI with the file's bytes in base64 (PNG or SVG, from the suffix)."""
    mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(path.suffix.lower())
    if mime is None:
        from ._errors import GclError

        raise GclError(f"Cannot embed {path.name}: only .png and .svg figures are embedded.")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def table_html(table: pd.DataFrame, *, caption: str = "", max_rows: int = 60) -> str:
    """An HTML table (escaped; floats to 4 significant digits; at most ``max_rows`` rows; a
    named index becomes the first column)."""
    shown = table.head(max_rows)
    if shown.index.name is not None or any(shown.index.names[1:]):
        shown = shown.reset_index()  # a named index is a column: one header row
    html_text = shown.to_html(
        index=False,
        escape=True,
        border=0,
        na_rep="",
        float_format=lambda v: f"{v:.4g}",
    )
    if caption:
        head, rest = html_text.split(">", 1)  # '<table class="dataframe">' then the body
        html_text = f"{head}><caption>{html.escape(caption)}</caption>{rest}"
    parts = [html_text]
    if len(table) > max_rows:
        parts.append(f'<p class="muted">first {max_rows} of {len(table)} rows</p>')
    return "\n".join(parts)


def _step_rows(steps: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Steps as rows (name, what, wall and CPU seconds) with a total row."""
    table = pd.DataFrame(
        [
            {
                "step": s["name"],
                "what": s.get("description", ""),
                "seconds": float(s["seconds"]),
                "CPU seconds": float(s.get("cpu_seconds", np.nan)),
            }
            for s in steps
        ],
        columns=["step", "what", "seconds", "CPU seconds"],
    )
    if not len(table):
        return table
    total = {"step": "total", "what": "", "seconds": table["seconds"].sum(),
             "CPU seconds": table["CPU seconds"].sum()}  # fmt: skip
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def render_report(
    summary: Mapping[str, Any],
    sections: Sequence[Section],
    *,
    steps: Sequence[Mapping[str, Any]] = (),
    files: Sequence[str] = (),
    title: str | None = None,
) -> str:
    """The HTML text of ``report.html``: an overview, ``sections``, step times and files.

    Everything is inline (CSS in a ``<style>`` element, figures as ``data:`` URIs): the page
    loads no external resource and runs no script, so it opens offline and can be mailed.
    """
    esc = html.escape
    title = title or f"gclandscape run: {summary.get('input', '')}"
    overview = [
        ("input", summary.get("input")),
        ("cells x genes", f"{summary.get('n_cells')} x {summary.get('n_genes')}"),
        ("counts", summary.get("counts") or "none (continuous values)"),
        ("groupby", summary.get("groupby") or "none"),
        ("seed", summary.get("seed")),
        ("gclandscape", summary.get("gclandscape_version")),
    ]
    types = summary.get("cell_types")
    if types:
        overview.append(("cell types", ", ".join(f"{k} ({v})" for k, v in types.items())))
    body = [f"<h1>{esc(title)}</h1>"]
    nav = [("overview", "Overview")] + [(f"s{i}", s.title) for i, s in enumerate(sections, start=1)]
    if steps:
        nav.append(("steps", "Step times"))
    if files:
        nav.append(("files", "Files"))
    body.append("<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav) + "</nav>")
    body.append('<h2 id="overview">Overview</h2>')
    body.append(
        '<table class="overview">'
        + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in overview)
        + "</table>"
    )
    for i, section in enumerate(sections, start=1):
        body.append(f'<h2 id="s{i}">{esc(section.title)}</h2>')
        for text in [section.text, *section.notes]:
            if text:
                body.append(f"<p>{esc(text)}</p>")
        for summary_text, text in section.details:
            body.append(
                f"<details><summary>{esc(summary_text)}</summary><p>{esc(text)}</p></details>"
            )
        for path, caption in section.figures:
            body.append(
                f'<figure><img src="{image_data_uri(Path(path))}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        for caption, table in section.tables:
            body.append(table_html(table, caption=caption))
    if steps:
        body.append('<h2 id="steps">Step times</h2>')
        body.append(
            table_html(
                _step_rows(steps),
                caption="time per step (wall clock, and CPU time of this process)",
            )
        )
    if files:
        body.append('<h2 id="files">Files</h2>')
        body.append("<ul>" + "".join(f"<li>{esc(f)}</li>" for f in files) + "</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_report(path: Path, summary: Mapping[str, Any], sections: Sequence[Section], **kwargs):
    """Write :func:`render_report` to ``path`` (UTF-8); returns the path."""
    path.write_text(render_report(summary, sections, **kwargs), encoding="utf-8")
    return path
