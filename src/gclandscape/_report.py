"""Writing what ``gclandscape run`` produced: ``summary.json``, ``qc.csv``, figures, a text summary.

Pure output helpers for :mod:`gclandscape.cli`; they compute nothing that the pipeline steps
have not computed. matplotlib is imported inside the figure helper only, and figures are
drawn on a :class:`matplotlib.figure.Figure` (Agg canvas), never through ``pyplot``, so the
caller's backend is left alone and nothing is ever shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
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


def write_table(
    table: pd.DataFrame, path: Path, *, index_label: str = "cell", index: bool = True
) -> Path:
    """Write a table as CSV (per-cell tables with the cell names in the first column)."""
    table.to_csv(path, index_label=index_label if index else None, index=index)
    return path


def _palette(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    cmap = colormaps["turbo"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def embedding_figure(
    coords: np.ndarray,
    *,
    labels: pd.Series | None = None,
    values: np.ndarray | None = None,
    title: str = "",
    xlabel: str = "UMAP1",
    ylabel: str = "UMAP2",
):
    """A scatter plot of a 2-D embedding, coloured by ``labels`` (categorical) or by continuous
    ``values`` (with a colour bar) when given.

    Returns the :class:`matplotlib.figure.Figure`; nothing is shown.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    size = float(np.clip(12000 / max(len(coords), 1), 1.0, 40.0))
    if values is not None:
        finite = np.isfinite(values)
        art = ax.scatter(
            coords[finite, 0], coords[finite, 1], s=size, c=values[finite], cmap="viridis",
            linewidths=0, rasterized=True,
        )  # fmt: skip
        fig.colorbar(art, ax=ax, shrink=0.7)
    elif labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, c="0.3", linewidths=0, rasterized=True)
    else:
        cats = labels.astype("category")
        names = list(cats.cat.categories)
        for name, color in zip(names, _palette(len(names))):
            mask = (cats == name).to_numpy()
            ax.scatter(
                coords[mask, 0],
                coords[mask, 1],
                s=size,
                color=color,
                linewidths=0,
                label=f"{name} ({int(mask.sum())})",
                rasterized=True,
            )
        ax.legend(
            title=labels.name,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            frameon=False,
            markerscale=max(1.0, 4.0 / math.sqrt(size)),
            fontsize="small",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return fig


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
