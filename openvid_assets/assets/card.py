"""``dataset_card``: exports/dataset_card.md with PNG plots and a JSON of its numbers (the paper's Figures 2-3).

Every number comes from SQL over lineage and the curated export (``sql/card_*.sql``), per source and
overall; the category chart is a zero-shot CLIP classification of the frame embeddings already stored,
with text embeddings from the same CLIP model. The asset writes the files and shows the same plots in the UI.
"""

import json

import polars as pl
from dagster import MaterializeResult, MetadataValue, asset

from openvid_assets.assets.clips import CAPTION_CHECKS
from openvid_assets.assets.lineage import EXPORT, curated_dataset, hd_subset, quality_tiers
from openvid_assets.assets.selection import all_shards
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.assets.scores import CODEC_SKIP_NOTE, EMBEDDINGS
from openvid_assets.charts import bars_png, distribution_png, inline_png
from openvid_assets.recipe import ExportSettings, Recipe
from openvid_assets.store import TableStore, run_sql

CARD_DIR = "card"  # exports/card/<plot>.png
BINS = 20
METRICS = {
    "aesthetic": "aesthetic score",
    "motion": "motion score",
    "temporal": "temporal consistency",
    "clarity": "clarity",
    "caption words": "caption length (words)",
    "clip seconds": "clip duration (s)",
}


def category_counts(tables: TableStore, recipe: Recipe, videos: pl.DataFrame) -> pl.DataFrame:
    """(source, part, category, videos): each pool video's closest category prompt, from the mean of its stored
    frame embeddings against the prompts' CLIP text embeddings (one shard of embeddings at a time)."""
    from openvid_assets.models.scorers.clip import text_embeddings, zero_shot
    from openvid_assets.models.shards.tables import video_embeddings

    exporting = recipe.exports
    names = list(exporting.categories)
    text = text_embeddings(recipe.models.resolved_profile().clip, [exporting.category_prompt.format(n) for n in names])
    found: list[pl.DataFrame] = []
    for shard in tables.shards(EMBEDDINGS):
        ids, vectors = video_embeddings(tables.read(EMBEDDINGS, shard))
        if ids and vectors.shape[1] == text.shape[1]:
            found.append(pl.DataFrame({"video_id": ids, "category": [names[i] for i in zero_shot(vectors, text)]}))
    classified = (
        pl.concat(found).unique("video_id")
        if found
        else pl.DataFrame(schema={"video_id": pl.String, "category": pl.String})
    )
    return run_sql("card_categories", {"videos": videos, "classified": classified})


def _histogram_pngs(histograms: pl.DataFrame, sources: list[str]) -> dict[str, bytes]:
    """One plot per metric: the pool and the curated set overall, and each source's curated set."""
    pngs = {}
    for metric, title in METRICS.items():
        rows = histograms.filter(pl.col("metric") == metric)
        if rows.is_empty():
            continue
        rows = rows.with_columns(
            series=pl.when(pl.col("source") == "all")
            .then(pl.col("part"))
            .otherwise(pl.col("source") + " " + pl.col("part"))
        )
        keep = ["pool", "curated"] + ([f"{s} curated" for s in sources] if len(sources) > 1 else [])
        order = pl.col("series").replace_strict(keep, list(range(len(keep))), default=None)
        rows = rows.filter(pl.col("series").is_in(keep)).sort(order, "bin")  # same colours in every plot
        rows = rows.with_columns(share=pl.col("count") / pl.col("count").sum().over("series"))
        pngs[metric.replace(" ", "_")] = distribution_png(rows, title, title)
    return pngs


def _bar_pngs(funnel: pl.DataFrame, categories: pl.DataFrame, resolutions: pl.DataFrame) -> dict[str, bytes]:
    pngs = {}
    overall = funnel.filter(pl.col("source") == "all")
    if overall.height:
        labels = [f"{r['status']} at {r['stage']}" for r in overall.iter_rows(named=True)]
        pngs["funnel"] = bars_png(labels, {"videos": overall["videos"].to_list()}, "where the videos stopped", "videos")
    cats = categories.filter(pl.col("source") == "all")
    if cats.height:
        names = sorted(set(cats["category"]))
        share = {
            part: [
                float(cats.filter((pl.col("part") == part) & (pl.col("category") == n))["share"].sum()) for n in names
            ]
            for part in ("pool", "curated")
        }
        pngs["categories"] = bars_png(names, share, "categories (zero-shot CLIP)", "share of videos")
    for kind in ("resolution", "duration"):
        rows = resolutions.filter((pl.col("source") == "all") & (pl.col("kind") == kind))
        if rows.height:
            pngs[kind] = bars_png(
                rows["class"].to_list(), {"clips": rows["clips"].to_list()}, f"curated clips by {kind}", "clips"
            )
    return pngs


def card_markdown(
    summary: pl.DataFrame,
    funnel: pl.DataFrame,
    categories: pl.DataFrame,
    tiers: pl.DataFrame | None,
    images: list[str],
    exporting: ExportSettings,
    checks: pl.DataFrame | None = None,
    codec_skipped: int = 0,
) -> str:
    def table(frame: pl.DataFrame) -> str:
        return str(markdown_table(frame).value)

    columns = [
        "source",
        "input_videos",
        "pool_videos",
        "pool_hours",
        "kept_videos",
        "clips",
        "curated_hours",
        "hd_clips",
        "hd_share",
        "mean_caption_words",
    ]
    parts = [
        "# Dataset card",
        "",
        "Generated by openvid-assets from the lineage and the curated export: every number is in "
        "`dataset_card.json`, every plot in `card/`.",
        "",
        "## Size, per source and overall",
        "",
        table(summary.select(columns)),
        "",
        "## Mean scores: pool vs kept",
        "",
        table(
            summary.select("source", *[c for c in summary.columns if "_mean_" in c]).with_columns(
                pl.exclude("source").round(4)
            )
        ),
        "",
        "## Where the videos stopped",
        "",
        table(funnel.filter(pl.col("source") == "all")),
        "",
        "## Distributions",
        "",
    ]
    parts += [f"![{name}]({CARD_DIR}/{name}.png)" for name in images]
    parts += [
        "",
        f"## Categories (zero-shot: '{exporting.category_prompt}' against each video's mean CLIP frame embedding)",
        "",
        table(categories.filter(pl.col("source") == "all").sort("videos", descending=True)),
    ]
    if tiers is not None:
        parts += ["", "## Quality tiers", "", table(tiers)]
    parts += [
        "",
        "## Pre-filter and caption checks",
        "",
        f"Videos the codec-motion pre-filter kept from the flow network (selection.codec_motion): {codec_skipped}.",
    ]
    if checks is not None and checks.height:
        parts += ["", "Clips each caption check and defect tag flagged, and how many the recipe dropped for it:", ""]
        parts += [table(checks)]
    return "\n".join(parts) + "\n"


@asset(
    **EXPORT,
    deps=[curated_dataset, hd_subset, quality_tiers, recipe_key("exports")],
    code_version="2",
    description="exports/dataset_card.md with PNG plots (exports/card/) and dataset_card.json: per source and "
    "overall, pool vs curated distributions of every score, caption length, clip duration and resolution, the "
    "funnel, hours, the HD share, quality tiers, and zero-shot CLIP categories from the stored embeddings.",
)
def dataset_card(store: OpenVidStore) -> MaterializeResult:
    tables, recipe = store.tables(), store.recipe().recipe
    if not tables.fs.exists("exports/openvid.parquet"):
        raise FileNotFoundError("exports/openvid.parquet does not exist yet: materialize curated_dataset first")
    dataset = pl.read_parquet(tables.fs.get("exports/openvid.parquet"))
    lineage = pl.read_parquet(
        tables.fs.get("exports/lineage.parquet"),
        columns=[
            "video_id", "source", "status", "stage", "reason", "duration_s", "aesthetic", "motion", "temporal", "clarity"
        ],
    )  # fmt: skip
    checks = (
        run_sql("card_caption_checks", {"checks": all_shards(tables, CAPTION_CHECKS)})
        if tables.shards(CAPTION_CHECKS)
        else None
    )
    codec_skipped = int(lineage["reason"].str.ends_with(CODEC_SKIP_NOTE).sum())
    inputs = {"lineage": lineage, "dataset": dataset}
    summary = run_sql("card_summary", inputs)
    funnel = run_sql("card_funnel", {"lineage": lineage})
    histograms = run_sql("card_histograms", inputs, {"bins": BINS})
    resolutions = run_sql("card_resolutions", {"dataset": dataset})
    categories = category_counts(tables, recipe, lineage)
    tiers = (
        pl.read_csv(tables.fs.get("exports/tiers/tiers.csv")) if tables.fs.exists("exports/tiers/tiers.csv") else None
    )
    sources = sorted(s for s in summary["source"] if s != "all")
    pngs = {**_histogram_pngs(histograms, sources), **_bar_pngs(funnel, categories, resolutions)}
    for name, png in pngs.items():
        tables.fs.put(f"exports/{CARD_DIR}/{name}.png", png)
    numbers = {
        "summary": summary.to_dicts(),
        "funnel": funnel.to_dicts(),
        "histograms": histograms.to_dicts(),
        "resolutions": resolutions.to_dicts(),
        "categories": categories.to_dicts(),
        "tiers": tiers.to_dicts() if tiers is not None else None,
        "caption_checks": checks.to_dicts() if checks is not None else None,
        "codec_skipped": codec_skipped,
        "bins": BINS,
    }
    tables.fs.put("exports/dataset_card.json", json.dumps(numbers, indent=1, default=float).encode())
    markdown = card_markdown(summary, funnel, categories, tiers, list(pngs), recipe.exports, checks, codec_skipped)
    tables.fs.put("exports/dataset_card.md", markdown.encode())
    overall = summary.filter(pl.col("source") == "all").row(0, named=True)
    return MaterializeResult(
        metadata={
            "kept_videos": overall["kept_videos"],
            "clips": overall["clips"],
            "curated_hours": overall["curated_hours"],
            "hd_share": overall["hd_share"],
            "sources": len(sources),
            "summary": markdown_table(summary),
            "plots": MetadataValue.md("\n\n".join(inline_png(png, name) for name, png in pngs.items())),
            "card": MetadataValue.path(tables.fs.uri("exports/dataset_card.md")),
        }
    )
