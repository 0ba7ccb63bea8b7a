"""The run command at more than 100 shards: a file of its own, so the long tier's two workers run it beside the
other run-command tests."""

import os
import subprocess

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from openvid_assets_testing.harness import FAST_FLAGS, make_dagster_home, materialize_args, run_cli

FAST = FAST_FLAGS


@pytest.mark.slow
@pytest.mark.timeout(2400)  # two runs of 104 shards
def test_a_shard_rescored_outside_the_command_redoes_the_global_steps_and_all_after_them_at_over_100_shards(tmp_path):
    """From 100 shards up Dagster's own staleness compares only a global step's latest input; the command's
    plan reads every shard's records, so one shard's score redone from outside (the UI, `dagster asset
    materialize`) makes the next `run` redo the thresholds and every step after them, on every shard, and
    nothing before them. Runs take 52 shards each (OPENVID_SHARDS_PER_RUN), as a deployment at scale would take
    many shards a run; two runs a step, so both cores work and each process start is paid twice, not four times."""
    from openvid_assets.samples import static

    n_shards, rescored = 104, "shard-00050"
    src, data = tmp_path / "src", str(tmp_path / "data")
    src.mkdir()
    for i in range(n_shards):
        # Every tenth shard holds a video (scores for the thresholds to cut), the others one unreadable file: a
        # failed manifest row, no decoding after it. Which steps run depends on the shards' records, not on what
        # they hold, and the test's time then does not grow with video work.
        if i % 10 == 0:
            static(src, f"v{i:03d}.mp4", width=64, height=36, num_frames=8, seed=i)
        else:
            (src / f"v{i:03d}.mp4").write_text(f"not a video {i}\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(make_dagster_home(tmp_path / "home")),
        "PYTHONUNBUFFERED": "1",
        "OPENVID_SHARDS_PER_RUN": "52",
    }
    first = run_cli(
        "run",
        "--source",
        str(src),
        "--data-root",
        data,
        "--shard-size",
        "1",
        *FAST,
        "--no-filters",
        "--set",
        "clips.mode=none",
        env=env,
        cwd=tmp_path,
        timeout=1200,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{n_shards} new shard(s)" in first.stdout

    before_shards = ["video_manifest", "frame_embeddings", "motion_scores", "temporal_scores", "content_scores"]
    after = {
        "per_shard": ["quality_candidates", "clarity_scores", "selected_videos", "clips", "captions"],
        "global": ["score_thresholds", "near_duplicates", "clarity_threshold", "lineage", "curated_dataset"],
    }

    def latest(instance: DagsterInstance, name: str) -> dict[str | None, int]:
        return dict(instance.get_latest_storage_id_by_partition(AssetKey(name), DagsterEventType.ASSET_MATERIALIZATION))

    def last_global(instance: DagsterInstance, name: str) -> int:
        return instance.fetch_materializations(AssetKey(name), limit=1).records[0].storage_id

    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        # 52 shards a run: two runs take the first steps of all 104 shards, not one run a shard.
        assert len([r for r in instance.get_runs() if AssetKey("video_manifest") in (r.asset_selection or ())]) == 2
        was = {name: latest(instance, name) for name in [*before_shards, "aesthetic_scores", *after["per_shard"]]}
        assert all(len(ids) == n_shards for ids in was.values()), {k: len(v) for k, v in was.items()}
        globals_was = {name: last_global(instance, name) for name in after["global"]}

    # One shard's aesthetic scores, redone from outside the command, as the UI launches them.
    ui = subprocess.run(
        materialize_args(["aesthetic_scores"], rescored),
        env={**env, "OPENVID_DATA_ROOT": data},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ui.returncode == 0, ui.stdout + ui.stderr

    again = run_cli("run", "--source", str(src), "--data-root", data, env=env, cwd=tmp_path, timeout=1200)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 new shard(s)" in again.stdout, again.stdout
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        now = {name: latest(instance, name) for name in was}
        for name in before_shards:  # nothing before the thresholds ran again
            assert now[name] == was[name], name
        changed = {shard for shard, sid in now["aesthetic_scores"].items() if sid != was["aesthetic_scores"][shard]}
        assert changed == {rescored}  # only the redone shard (by the UI's run), not redone again by `run`
        for name in after["per_shard"]:  # every shard's steps after the thresholds, redone
            assert all(now[name][s] > was[name][s] for s in was[name]), name
        for name in after["global"]:
            assert last_global(instance, name) > globals_was[name], name
        assert all(run.status.value == "SUCCESS" for run in instance.get_runs())
