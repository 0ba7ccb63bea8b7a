"""The run command end to end: a real subprocess, a real Dagster instance on disk, real ffmpeg."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from openvid_assets.media.manifest import build_manifest
from openvid_assets.media.sources import list_videos
from openvid_assets.store import TableStore
from openvid_assets_testing.harness import FAST_FLAGS, make_dagster_home, materialize_args, run_cli
from openvid_assets_testing.s3server import upload_tree

# Two shards of the sample set: each its own run, as by default (a run a shard), and the progress of a step after
# each; more shards would add process starts, not proof.
SHARD_SIZE = 14
MANIFEST_FACTS = ["video_id", "width", "height", "fps", "num_frames", "codec", "status"]


# These tests are about orchestration: the fast models (stored in the data root's recipe by the first run).
FAST = FAST_FLAGS


PER_SHARD_TABLES = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "motion_scores",
    "clarity_scores",
]


def table(data_root: str, name: str) -> pl.DataFrame:
    store = TableStore(data_root)
    return pl.concat([store.read(name, s) for s in store.shards(name)]).sort("source_uri", maintain_order=True)


def manifest(data_root: str) -> pl.DataFrame:
    return table(data_root, "video_manifest")


@pytest.fixture
def workdir(sample_videos, tmp_path):
    root, specs = sample_videos
    src = tmp_path / "src"
    shutil.copytree(root, src, symlinks=True)
    env = {**os.environ, "DAGSTER_HOME": str(make_dagster_home(tmp_path / "dagster_home")), "PYTHONUNBUFFERED": "1"}
    return tmp_path, src, specs, env


@pytest.mark.timeout(900)  # the whole pipeline through the daemon, then a re-run: ~180 s beside another test
def test_run_command_manifests_every_video_once_and_records_runs(workdir):
    tmp, src, specs, env = workdir
    done = run_cli(
        "run",
        "--source",
        str(src),
        "--data-root",
        str(tmp / "data"),
        "--shard-size",
        str(SHARD_SIZE),
        *FAST,
        "--rule",
        "aesthetic=top:30",
        env=env,
        cwd=tmp,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    n_shards = -(-len(specs) // SHARD_SIZE)
    assert f"{n_shards} new shard(s)" in done.stdout
    assert "[shard-00000] video_manifest: done" in done.stdout
    assert f"Videos: {len(specs)} ({len(specs) - sum(s.bad for s in specs)} ok" in done.stdout
    # Each finished shard run says how far its step is, and the time left (a new instance: from the shipped table).
    progress = re.findall(r"^Step 1: (\d+) of (\d+) shard\(s\) done(.*)$", done.stdout, re.M)
    assert [p[:2] for p in progress] == [(str(k), str(n_shards)) for k in range(1, n_shards + 1)], done.stdout
    assert "left (from the shipped table of step costs)" in progress[0][2], done.stdout

    frame = manifest(str(tmp / "data"))
    by_name = {
        Path(u).relative_to(src).as_posix(): row for u, row in zip(frame["source_uri"], frame.iter_rows(named=True))
    }
    assert sorted(by_name) == sorted(s.name for s in specs)  # every file exactly once
    for spec in specs:
        row = by_name[spec.name]
        if spec.bad:
            assert row["status"] == "failed" and spec.expected_error in row["error"].lower(), spec.name
        else:
            assert row["status"] == "ok", (spec.name, row["error"])
            assert (row["width"], row["height"], row["num_frames"]) == (spec.width, spec.height, spec.num_frames)
            assert row["fps"] == pytest.approx(spec.fps)

    # Every score table has one row per manifest video, for every shard; clarity only for candidates.
    for name in ["aesthetic_scores", "temporal_scores", "motion_scores"]:
        scores = table(str(tmp / "data"), name)
        assert scores["source_uri"].to_list() == frame["source_uri"].to_list(), name
        assert scores["status"].to_list() == frame["status"].to_list(), name
    candidates = table(str(tmp / "data"), "quality_candidates").filter(pl.col("candidate"))
    assert table(str(tmp / "data"), "clarity_scores")["source_uri"].to_list() == candidates["source_uri"].to_list()
    lineage = pl.read_parquet(tmp / "data" / "exports" / "lineage.parquet")
    assert sorted(lineage["source_uri"]) == frame["source_uri"].to_list()

    # Every selected video was clipped, and every clip has a file and a caption in openvid.csv.
    selected = table(str(tmp / "data"), "selected_videos").filter(pl.col("selected"))
    clips = table(str(tmp / "data"), "clips")
    assert sorted(clips["source_uri"].unique()) == sorted(selected["source_uri"]) and selected.height
    ok_clips = clips.filter(pl.col("status") == "ok")
    csv = pl.read_csv(tmp / "data" / "exports" / "openvid.csv")
    assert sorted(csv["video"]) == sorted(f"{c}.mp4" for c in ok_clips["clip_id"]) and csv.height
    assert csv["caption"].str.len_chars().min() > 0
    assert all(Path(u).is_file() for u in ok_clips["clip_uri"])

    # The runs and per-shard materializations are in the Dagster instance the UI reads.
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        shards = set(instance.get_dynamic_partitions("shards"))
        assert shards == {f"shard-{i:05d}" for i in range(n_shards)}
        for name in PER_SHARD_TABLES + ["quality_candidates", "clarity_scores", "selected_videos", "clips", "captions"]:
            assert instance.get_materialized_partitions(AssetKey(name)) == shards, name
        assert instance.get_latest_materialization_event(AssetKey("lineage")) is not None
        assert all(run.status.value == "SUCCESS" for run in instance.get_runs())

        # Ordinary runs of the code location, made by one Dagster asset backfill and launched from the queue.
        runs = instance.get_runs()
        assert len({r.tags.get("dagster/backfill") for r in runs}) == 1 and runs[0].tags.get("dagster/backfill")
        assert all(r.remote_job_origin is not None and r.tags.get("openvid/command") for r in runs)
        [backfill] = instance.get_backfills()
        assert backfill.status.value == "COMPLETED_SUCCESS" and backfill.tags["openvid/data_root"] == str(tmp / "data")

    # The recipe is stored with the data: the second run (no flags) and a plain `dagster asset materialize`
    # (what the UI launches) use the first run's rule and models.
    thresholds = pl.read_parquet(tmp / "data" / "tables" / "score_thresholds" / "global.parquet")
    assert thresholds.filter(pl.col("score") == "aesthetic")["rule"].to_list() == ["top:30"]
    again = run_cli("run", "--source", str(src), "--data-root", str(tmp / "data"), env=env, cwd=tmp)
    assert again.returncode == 0 and "0 to run" in again.stdout, again.stdout + again.stderr
    assert "stored under" not in again.stdout and "Recipe v1:" in again.stdout  # nothing changed, no new version
    assert manifest(str(tmp / "data")).equals(frame)
    ui = subprocess.run(
        materialize_args(["score_thresholds"], None),
        env={**env, "OPENVID_DATA_ROOT": str(tmp / "data")},
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ui.returncode == 0, ui.stdout + ui.stderr
    thresholds = pl.read_parquet(tmp / "data" / "tables" / "score_thresholds" / "global.parquet")
    assert thresholds.filter(pl.col("score") == "aesthetic")["rule"].to_list() == ["top:30"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a run on S3, a refused one, a run on one local video: ~240 s beside another test
def test_run_command_on_an_s3_source_and_data_root(workdir, s3_bucket, s3_env):
    tmp, src, specs, env = workdir
    (src / "escape.mp4").unlink()  # S3 has no symlinks; "outside the root" is a local-only failure
    uris = upload_tree(src, s3_bucket, "raw")
    env = {
        **env,
        **{
            k: s3_env[k]
            for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
        },
        "OPENVID_SHARDS_PER_RUN": "3",  # the three shards in one run: each run's process downloads several shards
    }
    data_root = f"s3://{s3_bucket}/curated"
    done = run_cli(
        "run",
        "--source",
        f"s3://{s3_bucket}/raw",
        "--data-root",
        data_root,
        "--shard-size",
        "10",
        *FAST,
        env=env,
        cwd=tmp,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    s3_frame = manifest(data_root)
    assert s3_frame["source_uri"].to_list() == sorted(uris)

    # One Dagster instance serves one data root: another data root is refused before anything runs...
    refused = run_cli("run", "--source", str(src), "--data-root", str(tmp / "local"), *FAST, env=env, cwd=tmp)
    assert refused.returncode == 2 and data_root in refused.stderr, refused.stdout + refused.stderr
    # ...and runs with an instance of its own (one video is enough to show it).
    make_dagster_home(tmp / "local_home")
    one = tmp / "one"
    one.mkdir()
    shutil.copy(src / next(s.name for s in specs if not s.bad and (src / s.name).is_file()), one)
    own_home = {**env, "DAGSTER_HOME": str(tmp / "local_home")}
    local = run_cli("run", "--source", str(one), "--data-root", str(tmp / "local"), *FAST, env=own_home, cwd=tmp)
    assert local.returncode == 0, local.stdout + local.stderr
    # Same facts and ids whether the bytes came from a folder or from S3: the manifest step's own code over the
    # same files in the same shards of ten, read from the folder.
    listed = list_videos(str(src))
    local_frame = pl.concat([build_manifest(listed[i : i + 10], str(src), f"s{i}") for i in range(0, len(listed), 10)])
    assert s3_frame.select(MANIFEST_FACTS).equals(local_frame.select(MANIFEST_FACTS))


def test_train_reads_prompts_from_the_command_line_and_a_file(tmp_path):
    from openvid_assets.cli import _prompts, parser

    file = tmp_path / "prompts.txt"
    file.write_text("# evaluation prompts\na red fox runs through snow\n\n  waves break on a rocky shore  \n")
    args = parser().parse_args(["train", "--prompt", "a city street at night", "--prompts", str(file)])
    assert _prompts(args) == ["a city street at night", "a red fox runs through snow", "waves break on a rocky shore"]
    assert _prompts(parser().parse_args(["train"])) == []  # the default: held-out captions
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    for bad, reason in ((tmp_path / "empty.txt", "no prompt"), (tmp_path / "missing.txt", "cannot read")):
        with pytest.raises(SystemExit, match=reason):
            _prompts(parser().parse_args(["train", "--prompts", str(bad)]))
