"""Every recipe version's decisions, kept, and the comparison of two of them.

The lineage step saves, under its recipe version, one row per input video (``sql/lineage_version.sql``:
where it stopped and why, its scores, clip and caption counts, a digest of its kept captions) and the cut
lines it was judged by. A comparison of two saved versions (of one data root, or of two data roots of the
same sources) lists every video whose fate differs and why, per source: what entered and left the
dataset, the hours they carry, how each score's cut lines and distribution moved, and which videos'
captions changed; it is written as a report (markdown and plots, like the dataset card) and a parquet of
the per-video differences. Every step is DuckDB over the saved parquet: nothing is read whole into memory.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import polars as pl

from openvid_assets.charts import distribution_png, markdown_text
from openvid_assets.store.sql import copy_sql, run_sql
from openvid_assets.store.tables import TableStore

LINEAGE_VERSIONS, THRESHOLD_VERSIONS = "lineage_versions", "threshold_versions"
COMPARE_DIR = "compare"  # exports/compare/<a>_vs_<b>/
SCORES = ("aesthetic", "temporal", "motion", "clarity")
_LABEL = re.compile(r"^v?(\d+)$")


def version_key(version: int) -> str:
    return f"v{version:04d}"


def parse_version(text: str | int) -> int:
    """``3``, ``"3"``, ``"v3"`` or ``"v0003"`` -> 3."""
    match = _LABEL.match(str(text).strip().lower())
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"not a recipe version: {text!r} (use v1, v2, ...)")
    return int(match.group(1))


def save_version(tables: TableStore, version: int, lineage: object, thresholds: pl.DataFrame) -> None:
    """Keep ``version``'s decisions: its lineage rows (``lineage``: what DuckDB reads for the lineage table) and the
    cut lines. A later lineage of the same version replaces them (new shards, re-runs)."""
    with tables.writing(LINEAGE_VERSIONS, version_key(version)) as path:
        copy_sql("lineage_version", {"lineage": lineage}, path, temp_directory=os.path.dirname(path))
    tables.write(THRESHOLD_VERSIONS, version_key(version), thresholds)


def saved_versions(tables: TableStore) -> list[int]:
    return sorted(parse_version(key) for key in tables.shards(LINEAGE_VERSIONS))


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a data root's saved recipe version."""

    tables: TableStore
    version: int
    name: str = ""  # how the report names it (default: the version, with the data root when two are compared)

    @property
    def label(self) -> str:
        return self.name or f"v{self.version}"

    def lineage(self) -> object:
        if not self.tables.exists(LINEAGE_VERSIONS, version_key(self.version)):
            kept = ", ".join(f"v{v}" for v in saved_versions(self.tables)) or "none yet (materialize lineage)"
            raise FileNotFoundError(
                f"{self.tables.fs.uri('')}: no saved decisions of recipe version v{self.version}; saved: {kept}"
            )
        return self.tables.scan_source(LINEAGE_VERSIONS, [version_key(self.version)])

    def thresholds(self) -> pl.DataFrame:
        return self.tables.read(THRESHOLD_VERSIONS, version_key(self.version))


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    summary: pl.DataFrame  # change, source, stage, reason, videos, hours
    sources: pl.DataFrame  # per source and 'all': kept in each, entered, left, moved, recaptioned, hours
    thresholds: pl.DataFrame  # per source and score: both sides' cut lines, changed
    scores: pl.DataFrame  # per source, score and side: distribution and kept mean
    recaptioned: pl.DataFrame  # the first videos whose kept clips or captions changed
    pngs: dict[str, bytes]
    differences: str  # the per-video differences (parquet), where written

    @property
    def unchanged(self) -> bool:
        return self.summary.is_empty() and not self.thresholds["changed"].any()

    def markdown(self) -> str:
        def table(frame: pl.DataFrame) -> str:
            return markdown_text(frame, "(none)")

        a, b = self.a.label, self.b.label
        overall = self.sources.filter(pl.col("source") == "all").row(0, named=True)
        parts = [
            f"# Recipe comparison: {a} vs {b}",
            "",
            "No video changed its fate, and no cut line moved."
            if self.unchanged
            else f"{overall['entered']} videos entered the dataset ({overall['hours_gained']:.4g} h), "
            f"{overall['left']} left ({overall['hours_lost']:.4g} h), {overall['moved']} dropped elsewhere or "
            f"for another reason, {overall['recaptioned']} kept with other clips or captions. Every video that "
            "changed is in `differences.parquet`.",
            "",
            "## Per source",
            "",
            table(self.sources),
            "",
            "## What changed, where and why",
            "",
            "A video that left is counted where it stopped in the second version; one that entered, where it had "
            "stopped in the first.",
            "",
            table(self.summary),
            "",
            "## Cut lines",
            "",
            table(self.thresholds.with_columns(pl.col("lower_a", "upper_a", "lower_b", "upper_b").round_sig_figs(5))),
            "",
            "## Score distributions",
            "",
            table(self.scores.with_columns(pl.col("mean", "p10", "p50", "p90", "kept_mean").round(4))),
            "",
        ]
        parts += [f"![{name}]({name}.png)" for name in self.pngs]
        parts += ["", "## Videos whose kept clips or captions changed (first 50)", "", table(self.recaptioned)]
        return "\n".join(parts) + "\n"


def compare(a: Side, b: Side, out: TableStore, bins: int = 20) -> Comparison:
    """Compare two sides, writing ``exports/compare/<a>_vs_<b>/`` under ``out``: ``report.md``, one PNG a
    score and ``differences.parquet``."""
    folder = f"{COMPARE_DIR}/{_slug(a.label)}_vs_{_slug(b.label)}"

    def sides() -> dict[str, object]:  # fresh readers for each query (an S3 stream is read once)
        return {"a": a.lineage(), "b": b.lineage()}

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "differences.parquet")
        copy_sql("compare_videos", sides(), path, temp_directory=tmp)
        summary = run_sql("compare_summary", {"differences": [path]})
        sources = run_sql("compare_sources", {**sides(), "differences": [path]})
        recaptioned = run_sql("compare_recaptioned", {"differences": [path]})  # the first 50: the parquet has all
        out.fs.put_file(f"exports/{folder}/differences.parquet", path)
    differences = out.fs.uri(f"exports/{folder}/differences.parquet")
    thresholds = run_sql("compare_thresholds", {"ta": a.thresholds(), "tb": b.thresholds()})
    scores = run_sql("compare_scores", sides())
    bins_frame = run_sql("compare_histograms", sides(), {"bins": bins, "label_a": a.label, "label_b": b.label})
    pngs = {
        f"{score}": distribution_png(
            bins_frame.filter(pl.col("score") == score), f"{score}: {a.label} vs {b.label}", score
        )
        for score in SCORES
        if bins_frame.filter(pl.col("score") == score).height
    }
    result = Comparison(a, b, summary, sources, thresholds, scores, recaptioned, pngs, differences)
    for name, png in pngs.items():
        out.fs.put(f"exports/{folder}/{name}.png", png)
    out.fs.put(f"exports/{folder}/report.md", result.markdown().encode())
    return result


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "side"
