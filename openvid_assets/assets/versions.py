"""``recipe_comparison``: what the current recipe version changed against the one before it, from the decisions
both kept (store/versions.py); ``openvid-assets compare vA vB`` compares any two."""

from dagster import MaterializeResult, MetadataValue, asset

from openvid_assets.assets.lineage import EXPORT, lineage
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.charts import inline_png
from openvid_assets.store.versions import Side, compare, saved_versions


@asset(
    **EXPORT,
    deps=[lineage],
    code_version="1",
    description="The current recipe version against the last earlier one with saved decisions: videos that "
    "entered or left the dataset by stage and reason, cut lines and score distributions per source, hours "
    "gained and lost, videos recaptioned; exports/compare/<a>_vs_<b>/ (report.md, plots, differences.parquet).",
)
def recipe_comparison(store: OpenVidStore) -> MaterializeResult:
    tables, stored = store.tables(), store.recipe()
    earlier = [v for v in saved_versions(tables) if v < stored.version]
    if not earlier:
        return MaterializeResult(
            metadata={"compared": False, "note": f"no recipe version before {stored.label} has saved decisions"}
        )
    result = compare(Side(tables, earlier[-1]), Side(tables, stored.version), out=tables)
    overall = result.sources.filter(result.sources["source"] == "all").row(0, named=True)
    return MaterializeResult(
        metadata={
            "compared": f"{result.a.label} vs {result.b.label}",
            **{k: overall[k] for k in ("entered", "left", "moved", "recaptioned")},
            "hours_net": MetadataValue.float(round(overall["hours_gained"] - overall["hours_lost"], 6)),
            "per_source": markdown_table(result.sources),
            "cut_lines_moved": markdown_table(result.thresholds.filter(result.thresholds["changed"])),
            "plots": MetadataValue.md("\n\n".join(inline_png(png, name) for name, png in result.pngs.items())),
            "report": MetadataValue.path(result.differences.rsplit("/", 1)[0] + "/report.md"),
            "differences": MetadataValue.path(result.differences),
        }
    )
