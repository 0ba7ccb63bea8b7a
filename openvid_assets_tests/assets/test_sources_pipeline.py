"""Three named sources on their own paths through the pipeline (the OpenVid-1M recipe's shape), in-process."""

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance

from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.definitions import build_definitions
from openvid_assets import samples
from openvid_assets.store import TableStore
from openvid_assets.store.shards import ShardRegistry
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

CAPTIONS = {
    "clean_0.mp4": "A slow pan across a sunlit stone wall covered in moss.",
    "clean_1.mp4": "The camera glides over a field of small coloured tiles.",
    "clean_2.mp4": "A steady sideways view of a textured fabric.",
    "clean_3.mp4": "Warm light on a patterned floor, the camera drifting left.",
    "clean_4.mp4": "A grey surface with small dark marks slides past.",
}
NOT_APPLIED = "temporal, clarity, clips: not applied (recipe)"


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    web, clean, bare = root / "web", root / "clean", root / "bare"
    for folder in (web, clean, bare):
        folder.mkdir()
    # The web pool: panning and static shots, a multi-scene video, a flickering one.
    for i in range(6):
        samples.smooth_pan(web, f"pan_{i}.mp4", num_frames=48, seed=60 + i, px_per_frame=1 + i % 4)
    samples.static(web, "static.mp4")
    samples.hard_cuts(web, "cuts.mp4")
    samples.fast_motion(web, "fast.mp4")
    # A clean source with its own captions (one row names a file it does not have).
    for i in range(5):
        samples.smooth_pan(clean, f"clean_{i}.mp4", num_frames=40, seed=80 + i, px_per_frame=1 + i % 3)
    metadata = root / "clean.csv"
    metadata.write_text(
        "file,caption,category\n"
        + "".join(f'{k},"{v}",scenery\n' for k, v in CAPTIONS.items())
        + "gone.mp4,Not here.,scenery\n"
    )
    # A clean source without captions, with the one 1080p video.
    for i in range(3):
        samples.smooth_pan(bare, f"bare_{i}.mp4", num_frames=40, seed=90 + i)
    samples.hd_1080p(bare, "hd.mp4")

    data = root / "data"
    sources = {
        "web": {
            "uri": str(web),
            "rules": {"aesthetic": "top:60", "temporal": "band:5:95", "motion": "band:5:95", "clarity": "top:70"},
        },
        "clean": {
            "uri": str(clean),
            "metadata": str(metadata),
            "rules": {"aesthetic": "top:80", "motion": "band:0:100"},
            "temporal": False,
            "clarity": False,
            "clips": False,
            "captions": "keep",
        },
        "bare": {
            "uri": str(bare),
            "rules": {"aesthetic": "off", "motion": "off"},
            "temporal": False,
            "clarity": False,
            "clips": False,
        },
    }
    tables = TableStore(str(data))
    unmatched = run_sources(data, sources)
    return tables, data, unmatched, sources


def run_sources(data, sources) -> dict[str, list[str]]:
    """Store the recipe with ``sources``, register them (new videos only) and materialize everything."""
    stored = store_recipe(str(data), FAST, sources=sources)  # the paths through the pipeline, not the models
    tables = TableStore(str(data))
    unmatched = {}
    for name, source in stored.recipe.sources.items():
        _, _, unmatched[name] = register_source(tables, source.uri, 10, name=name, metadata=source.metadata)
    defs = build_definitions(str(data))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(shards_partitions.name, ShardRegistry(tables).keys())
        materialize_pipeline(defs, instance)
    return unmatched


def _lineage(data) -> pl.DataFrame:
    return pl.read_parquet(data / "exports" / "lineage.parquet")


def test_every_input_once_with_its_source_and_the_steps_it_skips(three_sources):
    tables, data, unmatched, _ = three_sources
    lineage = _lineage(data)
    assert lineage.height == lineage["source_uri"].n_unique() == 9 + 5 + 4
    assert dict(lineage.group_by("source").len().iter_rows()) == {"web": 9, "clean": 5, "bare": 4}
    assert unmatched == {"web": [], "clean": ["gone.mp4"], "bare": []}
    light = lineage.filter(pl.col("source") != "web")
    assert (light["not_applied"] == NOT_APPLIED).all()
    assert lineage.filter(pl.col("source") == "web")["not_applied"].is_null().all()
    # A skipped step judges nothing: no clean video was dropped for temporal consistency or clarity.
    assert not light["reason"].str.contains("temporal |clarity ").any()
    assert set(light["stage"]) <= {"captioned", "quality"}
    # Reasons name the source's rule.
    dropped = lineage.filter(pl.col("stage") == "quality")
    assert dropped.height and all(f"({s}: " in r for s, r in zip(dropped["source"], dropped["reason"]))


def test_thresholds_are_computed_over_each_sources_own_videos(three_sources):
    tables, _, _, _ = three_sources
    cuts = tables.read("score_thresholds", "global")
    sources = ShardRegistry(tables).sources()
    aesthetic = pl.concat(
        [
            tables.read("aesthetic_scores", s).with_columns(source=pl.lit(sources[s]))
            for s in tables.shards("aesthetic_scores")
        ]
    ).filter(pl.col("status") == "ok")
    for source, top in (("web", 60), ("clean", 80)):
        values = aesthetic.filter(pl.col("source") == source)["score"].to_numpy()
        row = cuts.filter((pl.col("source") == source) & (pl.col("score") == "aesthetic")).row(0, named=True)
        assert row["lower"] == pytest.approx(np.percentile(values, 100 - top)) and row["videos"] == len(values)
    skipped = cuts.filter((pl.col("source") == "clean") & (pl.col("score") == "temporal")).row(0, named=True)
    assert skipped["rule"] == "not applied" and skipped["lower"] is None and skipped["upper"] is None
    clarity = tables.read("clarity_threshold", "global")
    assert clarity.filter(pl.col("source") == "clean")["rule"].to_list() == ["not applied"]
    assert clarity.filter(pl.col("source") == "web")["rule"].to_list() == ["top:70"]
    # No clarity model ran for the sources that skip it.
    for shard, source in sources.items():
        if source != "web" and tables.exists("clarity_scores", shard):
            assert tables.read("clarity_scores", shard).height == 0


def test_imported_captions_reach_the_export_unchanged_and_the_union_and_hd_are_right(three_sources):
    _, data, _, _ = three_sources
    lineage = _lineage(data)
    csv = pl.read_csv(data / "exports" / "openvid.csv")
    parquet = pl.read_parquet(data / "exports" / "openvid.parquet")
    assert csv.columns[:2] == ["video", "caption"] and csv.height == parquet.height
    kept = lineage.filter(pl.col("status") == "kept")
    assert sorted(parquet["source_uri"].unique()) == sorted(kept["source_uri"])
    assert set(parquet["source"]) == {"web", "clean", "bare"}
    assert dict(zip(parquet["source"], parquet["subset"])) == {"web": "full", "clean": "light", "bare": "light"}
    clean = parquet.filter(pl.col("source") == "clean")
    for row in clean.iter_rows(named=True):  # one whole-video clip each, with the imported caption
        name = row["source_uri"].rsplit("/", 1)[1]
        assert row["caption"] == CAPTIONS[name] and row["caption_model"] == "imported"
        assert row["clip_uri"] == row["source_uri"] and row["start_frame"] == 0 and row["category"] == "scenery"
        assert csv.filter(pl.col("video") == row["video"])["caption"].to_list() == [CAPTIONS[name]]
    bare = parquet.filter(pl.col("source") == "bare")
    assert bare.height == 4 and (bare["caption_model"] != "imported").all()  # 'off' rules keep all; captioned
    hd = pl.read_parquet(data / "exports" / "openvid_hd.parquet")
    assert [(s, u.rsplit("/", 1)[1]) for s, u in zip(hd["source"], hd["source_uri"])] == [("bare", "hd.mp4")]


def test_the_dataset_card_renders_and_its_numbers_match_the_tables(three_sources):
    import json

    from PIL import Image

    _, data, _, _ = three_sources
    exports = data / "exports"
    numbers = json.loads((exports / "dataset_card.json").read_text())
    lineage, parquet = _lineage(data), pl.read_parquet(exports / "openvid.parquet")
    hd = pl.read_parquet(exports / "openvid_hd.parquet")
    summary = {row["source"]: row for row in numbers["summary"]}
    assert set(summary) == {"web", "clean", "bare", "all"}
    for source, row in summary.items():
        videos = lineage if source == "all" else lineage.filter(pl.col("source") == source)
        clips = parquet if source == "all" else parquet.filter(pl.col("source") == source)
        assert row["input_videos"] == videos.height
        assert row["kept_videos"] == videos.filter(pl.col("status") == "kept").height
        assert row["clips"] == clips.height
        assert row["curated_hours"] == pytest.approx(clips["seconds"].sum() / 3600, abs=1e-6)
        kept = videos.filter(pl.col("status") == "kept")["aesthetic"]
        assert row["kept_mean_aesthetic"] == pytest.approx(kept.mean())
    assert summary["all"]["hd_clips"] == hd.height and summary["all"]["hd_share"] == pytest.approx(
        round(hd.height / parquet.height, 4)
    )
    funnel = pl.DataFrame(numbers["funnel"]).filter(pl.col("source") == "all")
    assert funnel["videos"].sum() == lineage.height
    # Every kept video has a category, and the curated histogram counts every kept video's aesthetic score.
    categories = pl.DataFrame(numbers["categories"])
    for source in ("web", "clean", "bare"):
        curated = categories.filter((pl.col("source") == source) & (pl.col("part") == "curated"))
        assert curated["videos"].sum() == summary[source]["kept_videos"]
    histograms = pl.DataFrame(numbers["histograms"])
    aesthetic = histograms.filter((pl.col("metric") == "aesthetic") & (pl.col("source") == "all"))
    assert aesthetic.filter(pl.col("part") == "curated")["count"].sum() == summary["all"]["kept_videos"]
    assert histograms.filter(pl.col("metric") == "clip seconds")["count"].sum() == 2 * parquet.height  # all + own
    # The plots are real PNGs, and the card links every one.
    card = (exports / "dataset_card.md").read_text()
    pngs = sorted((exports / "card").glob("*.png"))
    assert {p.stem for p in pngs} >= {
        "aesthetic",
        "motion",
        "temporal",
        "clarity",
        "caption_words",
        "clip_seconds",
        "funnel",
        "categories",
        "resolution",
        "duration",
    }
    for png in pngs:
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100
        assert f"card/{png.name}" in card


def test_changing_one_sources_rule_changes_only_that_source(three_sources):
    tables, data, _, sources = three_sources
    sources_of = ShardRegistry(tables).sources()
    web = [shard for shard, source in sources_of.items() if source == "web"]
    before = {(t, s): tables.read(t, s) for t in ("clips", "captions", "clarity_scores") for s in web}
    cuts_before = tables.read("score_thresholds", "global")
    lineage_before = _lineage(data)
    changed = {**sources, "clean": {**sources["clean"], "rules": {"aesthetic": "top:40", "motion": "band:0:100"}}}
    run_sources(data, changed)
    cuts = tables.read("score_thresholds", "global")
    same = ["source", "score", "rule", "lower", "upper", "videos"]
    assert (
        cuts.filter(pl.col("source") != "clean")
        .select(same)
        .equals(cuts_before.filter(pl.col("source") != "clean").select(same))
    )
    assert cuts.filter((pl.col("source") == "clean") & (pl.col("score") == "aesthetic"))["rule"].to_list() == ["top:40"]
    for (table, shard), frame in before.items():  # the web pool's clips, captions and clarity: untouched rows
        assert tables.read(table, shard).equals(frame), (table, shard)
    lineage = _lineage(data)
    for source in ("web", "bare"):
        mine = ["source_uri", "status", "stage", "reason"]
        assert (
            lineage.filter(pl.col("source") == source)
            .select(mine)
            .sort("source_uri")
            .equals(lineage_before.filter(pl.col("source") == source).select(mine).sort("source_uri"))
        )
    kept = lineage.filter((pl.col("source") == "clean") & (pl.col("status") == "kept")).height
    assert kept == 2 < lineage_before.filter((pl.col("source") == "clean") & (pl.col("status") == "kept")).height
