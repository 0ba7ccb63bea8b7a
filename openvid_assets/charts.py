"""Small matplotlib charts as PNG bytes or inline markdown: the assets' metadata in the Dagster UI and the
review page draw with these. Pure (no Dagster, nothing of the package), so any layer may use them."""

from __future__ import annotations

import polars as pl


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 2.6), dpi=90)


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def inline_png(png: bytes, title: str) -> str:
    """PNG bytes as inline markdown (how the Dagster UI shows an image in metadata)."""
    import base64

    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _inline_png(fig, title: str) -> str:
    return inline_png(png_bytes(fig), title)


def distribution_png(bins: pl.DataFrame, title: str, xlabel: str) -> bytes:
    """Overlaid step histograms, one line per ``series`` of (series, bin_start, bin_width, share) rows."""
    fig, ax = _figure()
    for series, group in bins.group_by("series", maintain_order=True):
        group = group.sort("bin_start")
        edges = group["bin_start"].to_list() + [group["bin_start"][-1] + group["bin_width"][-1]]
        ax.stairs(group["share"].to_list(), edges, label=str(series[0]), linewidth=1.4)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("share", fontsize=8)
    ax.tick_params(labelsize=8)
    if bins.height:
        ax.legend(fontsize=7)
    return png_bytes(fig)


def bars_png(labels: list[str], series: dict[str, list[float]], title: str, xlabel: str) -> bytes:
    """Horizontal grouped bars: one bar per label and series."""
    import numpy as np

    fig, ax = _figure()
    height = 0.8 / max(1, len(series))
    y = np.arange(len(labels))
    for k, (name, values) in enumerate(series.items()):
        ax.barh(y + k * height, values, height=height, label=name)
    ax.set_yticks(y + height * (len(series) - 1) / 2, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    if len(series) > 1:
        ax.legend(fontsize=7)
    return png_bytes(fig)


def line_image(steps: list[int], values: list[float], title: str, ylabel: str) -> str:
    """A small PNG line chart (e.g. a loss curve, with its running mean) as inline markdown."""
    fig, ax = _figure()
    ax.plot(steps, values, color="#4c72b0", linewidth=0.8, alpha=0.6)
    window = max(1, len(values) // 20)
    if window > 1:
        smooth = pl.Series(values).rolling_mean(window, min_samples=1).to_list()
        ax.plot(steps, smooth, color="#c44e52", linewidth=1.5, label=f"mean of {window}")
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_yscale("log")
    ax.tick_params(labelsize=8)
    return _inline_png(fig, title)


def histogram_image(bins: pl.DataFrame, title: str, cut_lines: dict[str, float] | None = None) -> str:
    """A small PNG histogram (from sql/score_histogram.sql bins) as inline markdown, with labelled cut lines."""
    fig, ax = _figure()
    if not bins.is_empty():
        ax.bar(bins["bin_start"], bins["videos"], width=bins["bin_width"], align="edge", color="#4c72b0")
    for label, x in (cut_lines or {}).items():
        ax.axvline(x, color="#c44e52", linestyle="--", linewidth=1.5)
        ax.annotate(
            f" {label} {x:.4g}",
            (x, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color="#c44e52",
        )
    total = int(bins["videos"].sum()) if not bins.is_empty() else 0
    ax.set_title(f"{title} (n={total})", fontsize=10)
    ax.set_ylabel("videos", fontsize=8)
    ax.tick_params(labelsize=8)
    return _inline_png(fig, title)


def pr_curve_png(curve: pl.DataFrame, lower: float | None, upper: float | None, title: str) -> bytes:
    """Precision and recall of keeping what is at or above each labelled value (curation.calibration.pr_curve),
    with the fitted cut lines."""
    fig, ax = _figure()
    curve = curve.sort("threshold")
    ax.step(curve["threshold"], curve["precision"], where="post", label="precision", color="#4c72b0")
    ax.step(curve["threshold"], curve["recall"], where="post", label="recall", color="#55a868")
    for label, x in (("cut", lower), ("upper cut", upper)):
        if x is not None:
            ax.axvline(x, color="#c44e52", linestyle="--", linewidth=1.5)
            ax.annotate(
                f" {label} {x:.4g}",
                (x, 0.02),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="bottom",
                ha="right",
                fontsize=8,
                color="#c44e52",
            )
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("score (keep at or above)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="lower left")
    return png_bytes(fig)


def pr_curve_image(curve: pl.DataFrame, lower: float | None, upper: float | None, title: str) -> str:
    return inline_png(pr_curve_png(curve, lower, upper, title), title)


def markdown_text(frame: pl.DataFrame, empty: str = "_none_") -> str:
    """A table as markdown (reports, the UI's metadata); ``empty`` for a frame without rows."""
    if frame.is_empty():
        return empty
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])
