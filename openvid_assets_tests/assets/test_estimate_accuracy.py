"""Estimates from real runs: half a run of a generated source estimated from the other half's recorded runs; the
estimate as the command prints it and as the UI's asset records it."""

import gc
import statistics

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from openvid_assets import samples
from openvid_assets.assets.history import (
    STEP_UNITS,
    estimate_steps,
    history_pass_rates,
    measured_costs,
    reach_of,
    step_samples,
)
from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.cli import main
from openvid_assets.definitions import build_definitions
from openvid_assets.store import TableStore
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

SHARD_SIZE = 2
SHARDS = 13  # the first pays what a process pays once; then the measured shards, alternately of each half
# The steps that work on the videos here (decoding, networks, ffmpeg: 0.15-0.6 s of CPU a shard), each checked on
# its own; the others (SQL, a few hundredths of a second a shard, mostly Dagster's own work) count in the total.
WORKING_STEPS = ("video_manifest", "frame_embeddings", "motion_scores", "clips", "previews")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """One generated source of the same kind of video (other seeds) in shards of two, run wave by wave. Its first
    shard pays what a process pays once (imports, models built), which a run process of the command pays in every
    run and its history then holds. The other shards alternate between the half whose runs are the history and the
    half estimated from them, so both see the machine's same moments (the other test worker's load comes and goes
    in bursts of seconds)."""
    root = tmp_path_factory.mktemp("estimates")
    folder, data = root / "pool", root / "data"
    folder.mkdir()
    for k in range(SHARDS * SHARD_SIZE):  # names sort in shard order
        samples.smooth_pan(folder, f"pan_{k:02d}.mp4", width=320, height=180, num_frames=48, seed=k, px_per_frame=2)
    off = dict.fromkeys(("aesthetic", "temporal", "motion", "clarity"), "off")
    recipe = {
        **FAST,
        "selection": off,
        "captions": {"max_new_tokens": 8},
        "filters": {"near_duplicate": "off", "text_area": "off"},
    }
    store_recipe(str(data), {**recipe, "sources": {"pool": {"uri": str(folder)}}})
    tables = TableStore(str(data))
    with DagsterInstance.ephemeral() as instance:
        _, shards, _ = register_source(tables, str(folder), SHARD_SIZE, name="pool")
        instance.add_dynamic_partitions(shards_partitions.name, shards)
        defs = build_definitions(str(data))
        # Python's full collections walk the whole heap of this test worker (0.1-0.3 s of CPU each, once a shard
        # or so) and land in whichever step is running: at a real shard's size a rounding error, at these
        # 0.3-second steps a doubling. The runs are measured without them.
        gc.disable()
        try:
            materialize_pipeline(defs, instance)
        finally:
            gc.enable()
        yield tables, data, folder, shards, instance, defs


def test_half_a_run_is_estimated_within_30_percent_per_step_of_what_it_then_used(pool):
    """The other half of a run estimated from the history half's recorded runs, against what its own runs then
    recorded: per step, the units (videos, candidates, selected videos, clips) and the CPU seconds within the
    issue's ±30 %. CPU seconds, not wall seconds: what a step uses moves far less than its duration when the other
    test worker shares the machine (a wall-time version of this test failed beside it: 0.61 s a shard estimated
    against 0.37 s taken); it still moves with the core's clock, hence 6 shards a half, alternating. The wall-time
    estimate is the same arithmetic over Dagster's step durations, checked exactly here; its accuracy on an idle
    machine is bench/bench_estimate.py's (docs/BENCHMARKS.md)."""
    tables, _, _, shards, instance, _ = pool
    history_half, estimated_half = shards[1::2], shards[2::2]
    lineage = tables.scan_source("lineage", ["global"])
    history = measured_costs(instance, lineage, only=set(history_half))
    rates = history_pass_rates(lineage, history_half)
    assert (rates.candidate, rates.selected) == (1.0, 1.0)  # every video passes this recipe
    reach = reach_of(lineage, estimated_half)
    videos, hours = int(reach["input"].sum()), float(reach["input_hours"].sum())
    assert videos == len(estimated_half) * SHARD_SIZE
    estimate = {r["step"]: r for r in estimate_steps(videos, hours, rates, history, 1, None).iter_rows(named=True)}

    wall: dict[str, list[float]] = {}  # the history half's seconds per unit of each step, run by run
    for step, run_shards, seconds, _ in step_samples(instance, only=set(history_half)):
        wall.setdefault(step, []).append(seconds / sum(reach_of(lineage, run_shards)[STEP_UNITS[step]]))
    runs: dict[str, list[float]] = {}  # the CPU seconds each run of the estimated half recorded, per step
    for step, _, _, cpu in step_samples(instance, only=set(estimated_half)):
        runs.setdefault(step, []).append(cpu)
    assert set(estimate) == set(wall) == set(runs) == set(STEP_UNITS)  # every per-shard step measured, estimated
    assert all(len(r) == len(estimated_half) for r in runs.values())

    for step in STEP_UNITS:
        took = float(reach[STEP_UNITS[step]].sum())  # the videos (or clips) the step then worked on
        assert estimate[step]["units"] == pytest.approx(took, rel=0.3), step
        assert estimate[step]["compute_s"] == pytest.approx(
            estimate[step]["units"] * statistics.median(wall[step]), abs=0.01 + 1e-6 * estimate[step]["compute_s"]
        ), step
    # The whole run: every step's estimated CPU against the sum of what the runs recorded.
    used = sum(sum(r) for r in runs.values())
    assert sum(r["cpu_s"] for r in estimate.values()) == pytest.approx(used, rel=0.3)
    # Each step against its typical shard (the median run, times the shards), so that one run's stray cost (0.1 to
    # 0.3 s here and there on this machine, in whichever step is running) does not stand for the step.
    typical = {step: statistics.median(r) * len(r) for step, r in runs.items()}
    table = {s: (estimate[s]["cpu_s"], [round(c, 2) for c in runs[s]]) for s in WORKING_STEPS}
    for step in WORKING_STEPS:
        assert estimate[step]["cpu_s"] == pytest.approx(typical[step], rel=0.3), table


def test_the_estimate_command_prints_each_step_and_the_totals(pool, tmp_path, monkeypatch, capsys):
    _, data, folder, _, _, _ = pool
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # an instance with no runs: the shipped table's costs
    args = ["estimate", "--source", str(folder), "--data-root", str(data), "--price", "2.5", "--workers", "2"]
    assert main(args) == 0
    out, n = capsys.readouterr().out, SHARDS * SHARD_SIZE
    assert f"{folder}: {n} videos; of {n} probed, {n} readable" in out
    assert f"from this data root's lineage ({n} videos)" in out  # every video passed
    for step in STEP_UNITS:
        assert f"| {step} |" in out
    assert (
        "shipped table:" in out and "total: about" in out and "2 run(s) at once" in out and "at 2.5/device-hour" in out
    )
    assert f"CPU-hours ({len(STEP_UNITS)} steps measured)" in out  # the shipped table has every step's CPU


def test_the_estimate_asset_estimates_every_source_of_the_recipe_from_this_instance(pool):
    tables, _, folder, _, instance, defs = pool
    job = defs.resolve_implicit_global_asset_job_def()
    config = {"ops": {"recipe_estimate": {"config": {"price": 3.0, "workers": 1}}}}
    result = job.execute_in_process(instance=instance, asset_selection=[AssetKey("recipe_estimate")], run_config=config)
    assert result.success
    meta = {k: v.value for k, v in instance.get_latest_materialization_event(AssetKey("recipe_estimate"))
            .asset_materialization.metadata.items()}  # fmt: skip
    assert meta["videos"] == SHARDS * SHARD_SIZE
    report = tables.fs.get("exports/estimate/estimate.md").decode()
    assert "## pool" in report and str(folder) in report
    steps = pl.read_parquet(tables.fs.local_path("exports/estimate/steps.parquet"))
    assert set(steps["source"]) == {"pool"} and set(steps["step"]) == set(STEP_UNITS)
    assert set(steps["cost_from"]) == {"this instance"}  # 7 runs of every step: this instance's own costs
    assert meta["cost"] == pytest.approx(float(steps["cost"].sum()), abs=0.01)
    assert meta["device_hours"] == pytest.approx(float(steps["device_hours"].sum()), abs=1e-4)
    assert meta["cpu_hours"] == pytest.approx(float(steps["cpu_s"].sum()) / 3600, abs=1e-4) and meta["cpu_hours"] > 0


def test_the_estimate_asset_names_a_missing_source_folder_before_listing_anything(tmp_path):
    data = tmp_path / "data"
    store_recipe(str(data), {"sources": {"gone": {"uri": str(tmp_path / "gone")}}})
    job = build_definitions(str(data)).resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=[AssetKey("recipe_estimate")], raise_on_error=False
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert (
        f"no such source folder: gone ({tmp_path / 'gone'})" in failure.step_failure_data.user_failure_data.description
    )
