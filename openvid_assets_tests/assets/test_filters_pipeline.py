"""The content filters end to end, in-process: near-duplicates across shards that arrive at different times,
exposure, burnt-in text (the real PP-OCR detector) and black borders (cropped clips, HD by picture size)."""

import json
import re
import shutil
import subprocess

import polars as pl
import pytest
from dagster import DagsterInstance

from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.definitions import build_definitions
from openvid_assets import samples
from openvid_assets.media.probe import probe
from openvid_assets.store import TableStore
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

# Every quality rule off (thresholds_off would turn the content filters off too), so each drop below is a
# content filter's.
RECIPE = {
    **FAST,
    "selection": dict.fromkeys(("aesthetic", "temporal", "motion", "clarity"), "off"),
    "clips": {"detectors": "cascade"},
}
COPIES = {
    "reencoded.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "40"],
    "resized.mp4": ["-vf", "scale=320:180", "-c:v", "libx264"],
    "trimmed.mp4": ["-vf", "trim=start_frame=3:end_frame=45,setpts=PTS-STARTPTS", "-c:v", "libx264"],
}


def originals(folder) -> None:
    """The first arrivals: an original, three distinct pans, and the content cases."""
    samples.smooth_pan(folder, "original.mp4", width=640, height=360, num_frames=48, seed=11, px_per_frame=2)
    for i, seed in enumerate((12, 13, 15)):  # text-free worlds, in palettes other than the original's
        samples.exposed(folder, f"distinct_{i}.mp4", width=640, height=360, seed=seed)


def content_cases(folder) -> None:
    samples.exposed(folder, "dark.mp4", gain=0.15, seed=21)
    samples.exposed(folder, "overexposed.mp4", gain=3.0, offset=160, seed=22)
    samples.exposed(folder, "washed_out.mp4", gain=0.15, offset=110, seed=23)
    samples.burnt_in_text(folder, "subtitles.mp4", "subtitles")
    samples.burnt_in_text(folder, "caption_card.mp4", "card")
    samples.letterboxed(folder, "letterbox.mp4", width=640, height=360, picture=(0, 46, 640, 268))
    samples.letterboxed(folder, "pillarbox.mp4", width=640, height=360, picture=(80, 0, 480, 360), seed=5)
    samples.letterboxed(
        folder, "scope_1080p.mp4", width=1920, height=1080, picture=(0, 140, 1920, 800), num_frames=30, seed=6
    )
    samples.hd_1080p(folder, "full_1080p.mp4", num_frames=30)


def copies(folder, original) -> None:
    """Later arrivals: a re-encoded (VP9), a resized and a trimmed copy of ``original``."""
    for name, args in COPIES.items():
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-nostdin", "-y", "-i", str(original), *args, "-an", str(folder / name)],
            check=True,
        )


def run_arrivals(data, source, batches) -> TableStore:
    """Register ``source`` after each batch writes its videos, and run the whole pipeline each time."""
    store_recipe(str(data), RECIPE)
    tables = TableStore(str(data))
    defs = build_definitions(str(data))
    with DagsterInstance.ephemeral() as instance:
        for batch in batches:
            batch()
            _, new, _ = register_source(tables, str(source), 100)
            instance.add_dynamic_partitions(shards_partitions.name, new)
            materialize_pipeline(defs, instance)
    return tables


@pytest.fixture(scope="module")
def filtered(tmp_path_factory):
    root = tmp_path_factory.mktemp("filters")
    source, data = root / "pool", root / "data"
    source.mkdir()
    stash = root / "stash"  # the copies are made once, then arrive in a later shard
    stash.mkdir()
    originals(stash)
    copies(stash, stash / "original.mp4")
    first = ["original.mp4", "distinct_0.mp4", "distinct_1.mp4", "distinct_2.mp4"]

    def arrive(names):
        return lambda: [shutil.copy(stash / n, source / n) for n in names]

    tables = run_arrivals(data, source, [lambda: (arrive(first)(), content_cases(source)), arrive(list(COPIES))])
    lineage = pl.read_parquet(data / "exports" / "lineage.parquet")
    return tables, data, stash, lineage.with_columns(name=pl.col("source_uri").str.split("/").list.last())


def by_name(lineage: pl.DataFrame) -> dict[str, dict]:
    return {r["name"]: r for r in lineage.iter_rows(named=True)}


def keeper_by_documented_order(tables, rows, names) -> str:
    """Largest picture, then longest, then most aesthetic, then the smallest video id."""
    aesthetic = pl.concat([tables.read("aesthetic_scores", s) for s in tables.shards("aesthetic_scores")])
    score = dict(aesthetic.select("video_id", "score").iter_rows())

    def order(name):
        r = rows[name]
        return (-r["picture_width"] * r["picture_height"], -r["duration_s"], -score[r["video_id"]], r["video_id"])

    return min(names, key=order)


GROUP = ["original.mp4", *COPIES]


def test_every_video_once_and_copies_in_a_later_shard_are_near_duplicates_of_the_original(filtered):
    tables, _, _, lineage = filtered
    assert lineage.height == lineage["source_uri"].n_unique() == 4 + 9 + 3
    assert lineage["shard"].n_unique() == 2  # the copies arrived in a shard of their own
    rows = by_name(lineage)
    assert all(rows[name]["shard"] != rows["original.mp4"]["shard"] for name in COPIES)
    keeper = keeper_by_documented_order(tables, rows, GROUP)
    # The resized copy is smaller and the trimmed one shorter: the original or its same-size re-encode stays.
    assert keeper in ("original.mp4", "reencoded.webm")
    assert rows[keeper]["status"] == "kept"
    for name in set(GROUP) - {keeper}:
        assert rows[name]["stage"] == "dedup" and rows[name]["status"] == "dropped", rows[name]
        assert re.fullmatch(
            rf"near-duplicate of {rows[keeper]['video_id']} \(cos (0\.99\d|1\.000)\)", rows[name]["reason"]
        )
    for i in range(3):
        assert rows[f"distinct_{i}.mp4"]["stage"] != "dedup"
    pairs = tables.read("near_duplicate_pairs", "global")
    assert set(pairs["a"]) | set(pairs["b"]) == {rows[n]["video_id"] for n in GROUP}  # the group and nothing else
    assert (pairs["cosine"] >= 0.9997).all()


def test_the_same_pool_keeps_the_same_videos_whatever_the_order_it_arrives_in(filtered, tmp_path):
    _, _, stash, lineage = filtered
    rows = by_name(lineage)
    # The copies first, the original later.
    source, data = tmp_path / "pool", tmp_path / "data"
    source.mkdir()
    batches = [
        lambda: [shutil.copy(stash / n, source / n) for n in COPIES],
        lambda: shutil.copy(stash / "original.mp4", source / "original.mp4"),
    ]
    run_arrivals(data, source, batches)
    again = by_name(
        pl.read_parquet(data / "exports" / "lineage.parquet").with_columns(
            name=pl.col("source_uri").str.split("/").list.last()
        )
    )
    assert {n: (again[n]["stage"], again[n]["reason"]) for n in GROUP if again[n]["stage"] == "dedup"} == {
        n: (rows[n]["stage"], rows[n]["reason"]) for n in GROUP if rows[n]["stage"] == "dedup"
    }
    assert sum(again[n]["stage"] == "dedup" for n in GROUP) == 3


def test_exposure_and_text_rules_drop_with_readable_reasons(filtered):
    _, _, _, lineage = filtered
    rows = by_name(lineage)
    expected = {
        "dark.mp4": "too dark: brightness",
        "overexposed.mp4": "too bright: brightness",
        "washed_out.mp4": "washed out: contrast",
        "subtitles.mp4": "burnt-in text: text_area",
        "caption_card.mp4": "burnt-in text: text_area",
    }
    for name, reason in expected.items():
        assert rows[name]["stage"] == "content" and rows[name]["status"] == "dropped", rows[name]
        assert reason in rows[name]["reason"], rows[name]["reason"]
    assert "overexposed: bright_share" in rows["overexposed.mp4"]["reason"]
    # Ordered as their exposure is: dark < pans < overexposed; clean pans have no text.
    assert rows["dark.mp4"]["brightness"] < rows["original.mp4"]["brightness"] < rows["overexposed.mp4"]["brightness"]
    assert rows["caption_card.mp4"]["text_area"] > rows["subtitles.mp4"]["text_area"] > 0.01
    assert all(rows[f"distinct_{i}.mp4"]["text_area"] < 0.005 for i in range(3))
    assert all(r["nsfw"] is not None and r["nsfw"] <= 0 for r in rows.values() if r["status"] == "kept")


def test_bordered_videos_get_their_crop_box_and_cropped_clips(filtered):
    tables, _, _, lineage = filtered
    rows = by_name(lineage)
    clips = pl.concat([tables.read("clips", s) for s in tables.shards("clips")]).filter(pl.col("status") == "ok")
    for name, (x, y, w, h) in {
        "letterbox.mp4": (0, 46, 640, 268),
        "pillarbox.mp4": (80, 0, 480, 360),
        "scope_1080p.mp4": (0, 140, 1920, 800),
    }.items():
        row = rows[name]
        assert row["status"] == "kept" and row["bordered"], row
        assert abs(row["picture_width"] - w) <= 2 and abs(row["picture_height"] - h) <= 2
        mine = clips.filter(pl.col("video_id") == row["video_id"])
        assert mine.height >= 1
        for clip in mine.iter_rows(named=True):
            cw, ch, cx, cy = (int(v) for v in clip["crop"].split(":"))
            assert max(abs(cx - x), abs(cy - y), abs(cw - w), abs(ch - h)) <= 2
            on_disk = probe(clip["clip_uri"])
            assert (on_disk.width, on_disk.height) == (clip["width"], clip["height"]) == (cw, ch)
    unbordered = clips.filter(pl.col("video_id") == rows["original.mp4"]["video_id"])
    assert unbordered["crop"].is_null().all()


def test_hd_subset_uses_the_picture_size(filtered):
    _, data, _, lineage = filtered
    rows = by_name(lineage)
    hd = pl.read_parquet(data / "exports" / "openvid_hd.parquet")
    assert rows["full_1080p.mp4"]["video_id"] in set(hd["video_id"])
    assert rows["scope_1080p.mp4"]["video_id"] not in set(hd["video_id"])  # 1920x800 of picture is not 1080p
    card = json.loads((data / "exports" / "dataset_card.json").read_text())
    assert card  # the card still builds with the new stages


def test_every_column_schema_in_the_ui_is_the_table_written(filtered):
    """``dagster/column_schema`` (the UI's column list) names exactly the columns and types each table has."""
    tables = filtered[0]
    graph = build_definitions(str(filtered[1])).resolve_asset_graph()
    shown = {
        key.path[-1]: graph.get(key).metadata.get("dagster/column_schema")
        for key in graph.get_all_asset_keys()
        if graph.get(key).metadata.get("dagster/column_schema")
    }
    assert {"video_manifest", "clips", "captions", "score_thresholds", "near_duplicates"} <= set(shown)
    for name, schema in shown.items():
        written = tables.read(name, tables.shards(name)[0])
        assert [(c.name, c.type) for c in schema.columns] == [(c, str(t)) for c, t in written.schema.items()], name
