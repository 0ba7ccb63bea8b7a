"""Formatting helpers for asset metadata shown in the Dagster UI."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue


def markdown_table(frame: pl.DataFrame, empty: str = "_none_") -> MetadataValue:
    if frame.is_empty():
        return MetadataValue.md(empty)
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.iter_rows()]
    return MetadataValue.md("\n".join([header, rule, *rows]))


def histogram_image(values: list[float], title: str, cut_lines: dict[str, float] | None = None,
                    bins: int = 30) -> MetadataValue:  # fmt: skip
    """A small PNG histogram inlined as markdown, optionally with labelled vertical cut lines."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.6), dpi=90)
    if values:
        ax.hist(values, bins=bins, color="#4c72b0")
    for label, x in (cut_lines or {}).items():
        ax.axvline(x, color="#c44e52", linestyle="--", linewidth=1.5)
        ax.annotate(label, (x, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                    fontsize=8, color="#c44e52")  # fmt: skip
    ax.set_title(f"{title} (n={len(values)})", fontsize=10)
    ax.set_ylabel("videos", fontsize=8)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})")
