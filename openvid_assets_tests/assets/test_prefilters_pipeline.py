"""The codec-motion pre-filter, the caption checks and the defect tags through the whole pipeline, in-process, with
the offline profile: a static video is kept from the flow network and says why in lineage; every caption is
checked and the recipe's drops reach lineage and the exports; defect tags are asked in the captioning pass."""

import json

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from openvid_assets import samples
from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.definitions import build_definitions
from openvid_assets.models.scorers.caption_checks import CHECKS
from openvid_assets.store import TableStore
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

RECIPE = {
    **FAST,
    # Quality rules off: each drop below is the pre-filter's or a caption check's.
    "selection": {**dict.fromkeys(("aesthetic", "temporal", "motion", "clarity"), "off"), "codec_motion": "min:0.01"},
    # Four new tokens make every caption too short (under 8 words): a drop that does not hang on what the random
    # model happens to say.
    "captions": {"defect_tags": True, "max_new_tokens": 4},
    "filters": {"caption_checks": ["too_short"], "near_duplicate": "off"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefilters")
    source, data = root / "pool", root / "data"
    source.mkdir()
    samples.static(source, "static.mp4")
    samples.smooth_pan(source, "pan.mp4")
    samples.shaky(source, "shaky.mp4")
    store_recipe(str(data), RECIPE)
    tables = TableStore(str(data))
    defs = build_definitions(str(data))
    with DagsterInstance.ephemeral() as instance:
        _, new, _ = register_source(tables, str(source), 100)
        instance.add_dynamic_partitions(shards_partitions.name, new)
        materialize_pipeline(defs, instance)
        records = instance.fetch_materializations(AssetKey("motion_scores"), limit=1).records
    lineage = pl.read_parquet(data / "exports" / "lineage.parquet")
    lineage = lineage.with_columns(name=pl.col("source_uri").str.split("/").list.last())
    return tables, data, {r["name"]: r for r in lineage.iter_rows(named=True)}, records[0].asset_materialization


def test_the_static_video_is_kept_from_the_flow_network_and_lineage_says_why(run):
    tables, _, rows, motion_event = run
    shard = tables.shards("motion_scores")[0]
    codec = {r["source_uri"].rsplit("/", 1)[-1]: r for r in tables.read("codec_motion", shard).iter_rows(named=True)}
    assert codec["static.mp4"]["score"] == 0.0 < codec["pan.mp4"]["score"] < codec["shaky.mp4"]["score"]
    motion = {r["source_uri"].rsplit("/", 1)[-1]: r for r in tables.read("motion_scores", shard).iter_rows(named=True)}
    assert motion["static.mp4"]["status"] == "skipped" and motion["static.mp4"]["score"] is None
    assert {motion["pan.mp4"]["status"], motion["shaky.mp4"]["status"]} == {"ok"}
    static = rows["static.mp4"]
    assert (static["status"], static["stage"]) == ("dropped", "quality")
    assert static["reason"].startswith("static by its motion vectors: codec_motion 0 < 0.01 (min 0.01)")
    assert "flow network not run" in static["reason"] and static["codec_motion"] == 0.0
    assert rows["pan.mp4"]["codec_motion"] == pytest.approx(0.15, abs=0.01)  # 1 px/frame x 24 fps / 160 px
    meta = motion_event.metadata
    assert meta["skipped_by_codec"].value == 1 and meta["network_seconds_saved"].value > 0


def test_every_caption_is_checked_and_the_recipes_drop_reaches_lineage_and_the_exports(run):
    tables, data, rows, _ = run
    shard = tables.shards("caption_checks")[0]
    checks = tables.read("caption_checks", shard)
    captions = tables.read("captions", shard).filter(pl.col("status") == "ok")
    assert sorted(checks["clip_id"]) == sorted(captions["clip_id"]) and checks.height >= 2
    assert set(CHECKS) <= set(checks.columns)
    assert checks["too_short"].str.starts_with("too_short: ").all()
    assert checks["reason"].str.starts_with("too_short: ").all()
    assert checks["agreement_cosine"].is_not_null().all()  # both embeddings were made for every clip
    for name in ("pan.mp4", "shaky.mp4"):
        assert (rows[name]["status"], rows[name]["stage"]) == ("dropped", "captions")
        assert rows[name]["reason"].startswith("too_short: ")
    exported = pl.read_parquet(data / "exports" / "openvid.parquet")
    assert exported.height == 0


def test_defect_tags_are_asked_in_the_captioning_pass(run):
    tables, _, _, _ = run
    captions = tables.read("captions", tables.shards("captions")[0]).filter(pl.col("status") == "ok")
    assert captions.height >= 2
    assert json.loads(captions["params"][0])["defect_tags"] is True
    # The random model's answers do not parse: each is a row that says so, with the raw text kept.
    for r in captions.iter_rows(named=True):
        assert r["defects_status"] in ("ok", "unparsed") and r["defects_raw"]
        if r["defects_status"] == "unparsed":
            assert r["content_type"] is None and r["defect_slideshow"] is None


def test_the_dataset_card_counts_the_pre_filter_and_every_check(run):
    _, data, _, _ = run
    card = json.loads((data / "exports" / "dataset_card.json").read_text())
    assert card["codec_skipped"] == 1
    checks = {(r["kind"], r["name"]): r for r in card["caption_checks"]}
    assert {name for kind, name in checks if kind == "check"} == set(CHECKS)
    short = checks[("check", "too_short")]
    assert short["flagged"] == short["dropped"] >= 2  # every caption of the two kept videos
    assert checks[("check", "repetition")]["dropped"] == 0  # measured, not a drop the recipe asked for
    markdown = (data / "exports" / "dataset_card.md").read_text()
    assert "kept from the flow network (selection.codec_motion): 1" in markdown and "too_short" in markdown
