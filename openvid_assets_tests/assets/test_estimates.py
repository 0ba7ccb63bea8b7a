"""Estimates: what a recipe will cost on a source, and the run command's time left, checked against numbers worked
by hand (the step costs measured from real runs: test_recipe_versions.py)."""

import polars as pl
import pytest

from openvid_assets.assets.history import (
    COST_SCHEMA,
    PassRates,
    SourceEstimate,
    TimeLeft,
    estimate_steps,
    recipe_pass_rates,
)
from openvid_assets.assets.engine import Workers
from openvid_assets.cli import main
from openvid_assets.recipe import Recipe


def test_the_papers_rules_imply_its_pass_rates_and_absolute_rules_say_so():
    rates = recipe_pass_rates(Recipe().source_rules("default"))
    assert rates.candidate == pytest.approx(0.20 * 0.85 * 0.85)  # top:20, band:5:90, band:10:95
    assert rates.selected == pytest.approx(0.20 * 0.85 * 0.85 * 0.30)
    absolute = recipe_pass_rates(Recipe().updated({"selection": {"aesthetic": "min:4.5"}}).source_rules("default"))
    assert absolute.candidate == pytest.approx(0.85 * 0.85) and "aesthetic: absolute rules" in absolute.origin


def test_each_step_costs_its_videos_times_its_seconds_over_the_runs_at_once():
    costs = pl.DataFrame(
        [
            {"step": "motion_scores", "unit": "input", "seconds_per_unit": 2.0, "cpu_seconds_per_unit": 3.5}
            | {"runs": 5, "origin": "x"},
            {"step": "clarity_scores", "unit": "candidate", "seconds_per_unit": 4.0, "runs": 5, "origin": "x"},
            {"step": "captions", "unit": "clip", "seconds_per_unit": 10.0, "runs": 5, "origin": "x"},
            {"step": "selected_videos", "unit": "input", "seconds_per_unit": 0.01, "runs": 5, "origin": "x"},
        ],
        schema=COST_SCHEMA,
    )
    rates = PassRates(candidate=0.25, selected=0.1, clip=0.3, origin="hand")
    steps = {r["step"]: r for r in estimate_steps(1000, 10.0, rates, costs, 4, 2.5).iter_rows(named=True)}
    assert steps["motion_scores"]["units"] == 1000 and steps["motion_scores"]["compute_s"] == 2000
    assert steps["motion_scores"]["wall_s"] == 500 and steps["motion_scores"]["hours"] == 10.0
    # CPU seconds where the runs recorded them (3.5 s a video: 1.75 cores busy over its 2 s), unknown where not.
    assert steps["motion_scores"]["cpu_s"] == 3500 and steps["clarity_scores"]["cpu_s"] is None
    assert steps["clarity_scores"]["units"] == 250 and steps["clarity_scores"]["compute_s"] == 1000
    assert steps["captions"]["units"] == 300 and steps["captions"]["device_hours"] == pytest.approx(
        3000 / 3600, abs=1e-4
    )
    assert steps["captions"]["cost"] == pytest.approx(3000 / 3600 * 2.5, abs=0.01)
    assert steps["selected_videos"]["device_hours"] == 0  # SQL: wall time, no device


def test_on_a_cpu_machine_the_wall_time_is_no_less_than_the_cpu_seconds_over_its_cores():
    costs = pl.DataFrame(
        [{"step": "motion_scores", "unit": "input", "seconds_per_unit": 2.0, "cpu_seconds_per_unit": 3.0}],
        schema=COST_SCHEMA,
    )
    steps = estimate_steps(3600, 1.0, PassRates(1, 1, 1, "hand"), costs, 4, None)  # 7200 s of steps, 4 at once

    def wall_hours(workers: Workers) -> float:
        return SourceEstimate("x", None, None, steps, workers, None, "offline").wall_hours

    assert wall_hours(Workers(4, gpus=0, threads=1)) == pytest.approx(3.0 * 3600 / 4 / 3600)  # CPU over 4 cores
    assert wall_hours(Workers(4, gpus=0, threads=4)) == pytest.approx(0.5)  # 16 cores: the steps' own 1,800 s
    assert wall_hours(Workers(4, gpus=4, threads=1)) == pytest.approx(0.5)  # GPUs: the recorded durations


def test_time_left_uses_the_prior_until_enough_shards_are_done_then_the_commands_own_rate():
    clock = TimeLeft({1: 10}, {1: 60.0}, workers=2, origin="from history")
    clock.run_started(1, now=0.0)
    assert clock.run_ended(1, 1, now=20.0) == "Step 1: 1 of 10 shard(s) done, about 4 min left (from history)"
    clock.run_ended(1, 1, now=40.0)
    # Three shards in 60 s: 7 left at 20 s a shard.
    line = clock.run_ended(1, 1, now=60.0)
    assert line == "Step 1: 3 of 10 shard(s) done, about 2 min left (at this command's rate over 3 shards)"
    assert clock.run_ended(1, 7, now=200.0) == "Step 1: 10 of 10 shard(s) done"
    unknown = TimeLeft({2: 5}, {2: None}, workers=1, origin="")
    assert unknown.run_ended(2, 1, now=1.0) == "Step 2: 1 of 5 shard(s) done, time left known after 3"


def test_estimate_refuses_a_bad_source_or_recipe_before_probing_anything(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("selection:\n  aesthetic: top:200\n")
    assert main(["estimate", "--source", str(tmp_path / "missing"), "--data-root", str(tmp_path / "d")]) == 2
    assert "no such folder" in capsys.readouterr().err
    folder = tmp_path / "videos"
    folder.mkdir()
    assert main(["estimate", "--source", str(folder), "--recipe", str(bad), "--data-root", str(tmp_path / "d")]) == 2
    assert "percentages must be between 0 and 100" in capsys.readouterr().err
