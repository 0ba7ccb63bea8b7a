"""Selection end to end, every asset materialized in-process: lineage, exports, re-runs, off switch."""

import os
import shutil

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance

from openvid_assets.assets.lineage import OPENVID_COLUMNS
from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.definitions import build_definitions
from openvid_assets.store import TableStore
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

pytestmark = pytest.mark.slow  # the whole pipeline with clips and captions, then rule changes

MODEL_TABLES = ["frame_embeddings", "aesthetic_scores", "temporal_scores", "motion_scores"]


def run(data_root, **selection):
    # The weight-free motion and clarity backends (the networks have tests of their own); TransNetV2 cuts the clips.
    store_recipe(str(data_root), models=FAST["models"], captions=FAST["captions"], selection=selection)
    defs = build_definitions(str(data_root))
    with DagsterInstance.ephemeral() as instance:
        tables = defs.resources["store"].tables()
        store_new_shards(tables, run.source, shard_size=10)
        instance.add_dynamic_partitions(shards_partitions.name, tables.shards("shard_lists"))
        materialize_pipeline(defs, instance)
    return TableStore(str(data_root))


@pytest.fixture(scope="module")
def pipeline(sample_videos, tmp_path_factory):
    root, specs = sample_videos
    src = tmp_path_factory.mktemp("selection") / "src"
    shutil.copytree(root, src, symlinks=True)
    run.source = str(src)
    data = tmp_path_factory.mktemp("selection") / "data"
    return run(data), data, specs


@pytest.fixture(scope="module")
def unfiltered(pipeline):
    """The same data root run again with selection.thresholds_off (after the rule-change test, which needs the
    filtered run): every decodable video goes on to clips and captions."""
    tables, data, specs = pipeline
    run(data, thresholds_off=True)
    return tables, data, specs


def test_lineage_has_every_input_once_with_readable_reasons(pipeline):
    tables, _, specs = pipeline
    lineage = pl.read_parquet(f"{tables.root}/exports/lineage.parquet")
    assert lineage.height == len(specs) and lineage["source_uri"].n_unique() == len(specs)
    assert set(lineage["status"]) <= {"kept", "dropped", "failed"}
    by_name = {u.rsplit("/", 1)[1]: r for u, r in zip(lineage["source_uri"], lineage.iter_rows(named=True))}
    for spec in specs:
        row = by_name[spec.name.rsplit("/", 1)[-1]]
        assert row["reason"], spec.name
        if spec.bad:
            assert (row["status"], row["stage"]) == ("failed", "probe"), spec.name
    dropped = lineage.filter(pl.col("stage") == "quality")
    assert dropped.height and all(" < " in r or " > " in r for r in dropped["reason"])
    assert lineage.filter(pl.col("status") == "kept").height >= 1

    # The kept videos satisfy the stored cut lines, checked independently of the SQL.
    cuts = {r["score"]: r for r in tables.read("score_thresholds", "global").iter_rows(named=True)}
    cuts.update({r["score"]: r for r in tables.read("clarity_threshold", "global").iter_rows(named=True)})
    for row in lineage.filter(pl.col("status") == "kept").iter_rows(named=True):
        for score, cut in cuts.items():
            assert cut["lower"] is None or row[score] >= cut["lower"]
            assert cut["upper"] is None or row[score] <= cut["upper"]
    aesthetic = pl.concat([tables.read("aesthetic_scores", s) for s in tables.shards("aesthetic_scores")])
    ok = aesthetic.filter(pl.col("status") == "ok")["score"].to_numpy()
    assert cuts["aesthetic"]["lower"] == pytest.approx(np.percentile(ok, 80))
    assert lineage["quality_version"].unique().to_list() == [cuts["aesthetic"]["version"]]


def test_exports_have_the_openvid_columns(pipeline):
    tables, _, _ = pipeline
    csv = pl.read_csv(f"{tables.root}/exports/openvid.csv")
    assert (
        csv.columns
        == OPENVID_COLUMNS
        == [
            "video",
            "caption",
            "aesthetic score",
            "motion score",
            "temporal consistency score",
            "camera motion",
            "frame",
            "fps",
            "seconds",
        ]
    )
    parquet = pl.read_parquet(f"{tables.root}/exports/openvid.parquet")
    assert parquet.columns[: len(OPENVID_COLUMNS)] == OPENVID_COLUMNS
    assert {"source_uri", "clip_start_s", "clip_end_s", "clarity", "video_id", "clip_id"} <= set(parquet.columns)
    kept = pl.read_parquet(f"{tables.root}/exports/lineage.parquet").filter(pl.col("status") == "kept")
    assert sorted(parquet["source_uri"].unique()) == sorted(kept["source_uri"])
    assert pl.read_csv(f"{tables.root}/exports/openvid_hd.csv").columns == OPENVID_COLUMNS


def test_changing_a_rule_recomputes_sql_only_and_lineage_follows(pipeline):
    tables, data, _ = pipeline
    before = {(t, s): tables.read(t, s) for t in MODEL_TABLES for s in tables.shards(t)}
    old_version = tables.read("score_thresholds", "global")["version"][0]
    run(data, aesthetic="top:60")
    for (t, s), frame in before.items():  # every model score reused from its row cache, unchanged
        assert tables.read(t, s).equals(frame), (t, s)
    new = tables.read("score_thresholds", "global")
    assert new["version"][0] != old_version and new.filter(pl.col("score") == "aesthetic")["rule"][0] == "top:60"
    lineage = pl.read_parquet(f"{tables.root}/exports/lineage.parquet")
    assert lineage["quality_version"].unique().to_list() == [new["version"][0]]


def test_thresholds_off_keeps_every_decodable_video_that_has_a_scene(unfiltered):
    tables, data, specs = unfiltered
    lineage = pl.read_parquet(f"{tables.root}/exports/lineage.parquet")
    kept = lineage.filter(pl.col("status") == "kept")
    # Every frame of the flicker video is a new scene: no scene is long enough for a clip.
    no_scene = lineage.filter(pl.col("stage") == "clips")
    assert [u.rsplit("/", 1)[1] for u in no_scene["source_uri"]] == ["flicker.mp4"]
    assert no_scene["status"].to_list() == ["dropped"] and "no scene" in no_scene["reason"][0]
    assert kept.height == sum(not s.bad for s in specs) - 1
    assert (kept["captioned"] == kept["clips"]).all() and kept["clips"].min() >= 1
    hd = pl.read_parquet(f"{tables.root}/exports/openvid_hd.parquet")
    assert [u.rsplit("/", 1)[1] for u in hd["source_uri"]] == ["hd_1080p.mp4"]  # the only landscape >= 1920x1080
    assert hd["video"].to_list() == [f"{hd['clip_id'][0]}.mp4"] and (hd["width"] >= 1920).all()


def test_every_clip_in_the_export_has_a_caption_and_a_file(unfiltered):
    tables, data, specs = unfiltered
    csv = pl.read_csv(f"{tables.root}/exports/openvid.csv")
    parquet = pl.read_parquet(f"{tables.root}/exports/openvid.parquet")
    clips = pl.concat([tables.read("clips", s) for s in tables.shards("clips")]).filter(pl.col("status") == "ok")
    assert csv.height == parquet.height == clips["clip_id"].n_unique() > 0
    assert csv["caption"].str.len_chars().min() > 0
    assert not csv["caption"].str.starts_with("The video shows").any()
    assert set(csv["camera motion"]) <= {
        "static",
        "pan_left",
        "pan_right",
        "tilt_up",
        "tilt_down",
        "zoom_in",
        "zoom_out",
    }
    for row in parquet.iter_rows(named=True):
        assert row["video"] == row["clip_id"] + ".mp4" and row["clip_uri"].endswith(row["video"])
        assert os.path.isfile(row["clip_uri"])
        assert row["frame"] == row["end_frame"] - row["start_frame"] + 1
        assert row["seconds"] == pytest.approx(row["frame"] / row["fps"])
    # The hard-cut video became one clip per scene; the fade and dissolve two clips each.
    per_source = parquet.group_by("source_uri").agg(pl.len()).iter_rows()
    counts = {uri.rsplit("/", 1)[1]: n for uri, n in per_source}
    assert counts["hard_cuts.mp4"] == 4 and counts["fade_black.mp4"] == 2 and counts["cross_dissolve.mp4"] == 2


def _percent_ranks(values: np.ndarray) -> np.ndarray:
    """(rank - 1) / (n - 1) with ties sharing their lowest rank, missing values ranked worst (as 0)."""
    filled = np.where(np.isnan(values), -np.inf, values)
    ranks = np.array([(filled < v).sum() for v in filled], float)
    return np.where(np.isnan(values), 0.0, ranks / max(1, len(values) - 1))


def test_quality_tiers_partition_the_dataset_in_rank_order(unfiltered):
    tables, data, _ = unfiltered
    dataset = pl.read_parquet(f"{tables.root}/exports/openvid.parquet")
    folder = os.path.join(str(tables.root), "exports", "tiers")
    tiers = {
        name: pl.read_parquet(os.path.join(folder, name, "openvid.parquet"))
        for name in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, name))
    }
    assert dataset.height >= 5 and sorted(tiers) == [f"tier_{i}" for i in range(1, 6)]
    # Every clip in exactly one tier; the sizes in tiers.csv and the CSVs match.
    ids = [cid for frame in tiers.values() for cid in frame["clip_id"]]
    assert sorted(ids) == sorted(dataset["clip_id"]) and len(set(ids)) == len(ids)
    summary = pl.read_csv(os.path.join(folder, "tiers.csv"))
    assert dict(zip(summary["tier"], summary["clips"])) == {k: v.height for k, v in tiers.items()}
    for name, frame in tiers.items():
        assert pl.read_csv(os.path.join(folder, name, "openvid.csv")).height == frame.height
    # The combined rank, recomputed here: the mean percent rank of aesthetic, clarity and temporal consistency.
    scores = [
        dataset[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for c in ("aesthetic score", "clarity", "temporal consistency score")
    ]
    expected = dict(zip(dataset["clip_id"], np.mean([_percent_ranks(s) for s in scores], axis=0)))
    for frame in tiers.values():
        for cid, combined in zip(frame["clip_id"], frame["combined_rank"]):
            assert combined == pytest.approx(expected[cid])
    # Better tiers hold better clips: every clip of tier k ranks at least as high as every clip of tier k+1.
    for k in range(1, 5):
        assert tiers[f"tier_{k}"]["combined_rank"].min() >= tiers[f"tier_{k + 1}"]["combined_rank"].max()


def test_conditioned_captions_carry_the_scores_and_leave_the_caption_alone(unfiltered):
    tables, data, _ = unfiltered
    plain = pl.read_csv(f"{tables.root}/exports/openvid.csv")
    conditioned = pl.read_csv(f"{tables.root}/exports/openvid_conditioned.csv")
    assert conditioned["video"].to_list() == plain["video"].to_list()
    assert conditioned["caption"].to_list() == plain["caption"].to_list()
    for row in conditioned.iter_rows(named=True):
        expected = (
            f"{row['caption']} aesthetic score: {row['aesthetic score']:.1f}. motion score: "
            f"{row['motion score']:.1f}. camera motion: {row['camera motion']}."
        )
        assert row["conditioned caption"] == expected
    assert not plain["caption"].str.contains("aesthetic score:").any()


def test_a_clip_whose_caption_the_caption_filter_drops_leaves_lineage_and_the_export(pipeline):
    from openvid_assets.assets.caption_filter import CAPTION_SCORES, CAPTION_SCORES_SCHEMA
    from openvid_assets.assets.lineage import lineage_inputs
    from openvid_assets.store import run_sql
    from openvid_assets.recipe import RecipeStore

    tables, _, _ = pipeline
    kept = pl.read_parquet(f"{tables.root}/exports/lineage.parquet").filter(pl.col("status") == "kept")
    video = kept["video_id"][0]
    captions = pl.concat([tables.read("captions", s) for s in tables.shards("captions")])
    clips = captions.filter((pl.col("video_id") == video) & (pl.col("status") == "ok"))["clip_id"].unique()
    reason = "bad caption (caption filter): caption_quality 0.1 < 0.5 (min 0.5)"
    verdicts = pl.DataFrame(
        {"clip_id": clips, "video_id": video, "caption_quality": 0.1, "reason": reason}, schema=CAPTION_SCORES_SCHEMA
    )
    tables.write(CAPTION_SCORES, "global", verdicts)
    try:
        recipe = RecipeStore(tables.fs).current().recipe
        lineage = run_sql("lineage", lineage_inputs(tables, recipe))
        row = lineage.filter(pl.col("video_id") == video).row(0, named=True)
        assert (row["status"], row["stage"], row["reason"]) == ("dropped", "captions", reason)
        assert lineage.filter(pl.col("status") == "kept").height == kept.height - 1  # nothing else moved
        export = run_sql(
            "openvid_export",
            {
                "lineage": lineage,
                "clips": pl.concat([tables.read("clips", s) for s in tables.shards("clips")]),
                "captions": captions,
                "imported": pl.DataFrame(
                    schema={"source_uri": pl.String, "category": pl.String, "source_id": pl.String}
                ),
                "caption_verdicts": verdicts,
            },
            {"hd_only": False, "conditioned": False},
        )
        assert video not in set(export["video_id"]) and not set(clips) & set(export["clip_id"])
        assert export.height > 0
    finally:
        os.remove(tables.fs.local_path(tables.rel_path(CAPTION_SCORES, "global")))  # the other tests' data root
