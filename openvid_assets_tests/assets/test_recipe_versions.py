"""Every recipe version's decisions are kept, and two versions compare video by video: a second version that changes
one source's aesthetic rule and the clarity model lists exactly the videos whose fate changed, with the stages and
reasons both lineages give them; a version compared with itself changes nothing."""

import os
import statistics

import polars as pl
import pytest
from dagster import DagsterInstance

from openvid_assets import samples
from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.cli import main
from openvid_assets.definitions import build_definitions
from openvid_assets.recipe import RecipeStore
from openvid_assets.store import TableStore
from openvid_assets.assets.history import STEP_UNITS, measured_costs, step_costs, step_samples
from openvid_assets.store import run_sql
from openvid_assets.store.versions import LINEAGE_VERSIONS, Side, compare, saved_versions
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

OFF = dict.fromkeys(("aesthetic", "temporal", "motion", "clarity"), "off")


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    web, clean, data = root / "web", root / "clean", root / "data"
    for folder, seeds in ((web, (1, 2, 3)), (clean, (4, 5))):
        folder.mkdir()
        for seed in seeds:
            samples.smooth_pan(folder, f"pan_{seed}.mp4", num_frames=36, seed=seed, px_per_frame=1 + seed % 2)
    sources = {"web": {"uri": str(web)}, "clean": {"uri": str(clean)}}
    recipe = {**FAST, "selection": OFF, "captions": {"max_new_tokens": 8}, "filters": {"near_duplicate": "off"}}
    store_recipe(str(data), {**recipe, "sources": sources})
    tables = TableStore(str(data))
    with DagsterInstance.ephemeral() as instance:
        for uri in (web, clean):  # three shards, one run each a wave: the runs the step costs are measured from
            _, new, _ = register_source(tables, str(uri), 2, name="web" if uri == web else "clean")
            instance.add_dynamic_partitions(shards_partitions.name, new)
        materialize_pipeline(build_definitions(str(data)), instance)
        # v2: the web source keeps only its most aesthetic third, and clarity is scored by another model.
        store = RecipeStore(tables.fs)
        current = store.current().recipe
        changed = current.updated(
            {
                "sources": {"web": {**sources["web"], "rules": {"aesthetic": "top:34"}}, "clean": sources["clean"]},
                "models": {"clarity_backend": "dover-tiny"},
            }
        )
        store.save(changed)
        materialize_pipeline(build_definitions(str(data)), instance)
        yield tables, data, instance


def _lineage(tables, version) -> dict[str, dict]:
    frame = pl.read_parquet(tables.fs.local_path(tables.rel_path(LINEAGE_VERSIONS, f"v{version:04d}")))
    return {r["source_uri"]: r for r in frame.iter_rows(named=True)}


def test_each_version_keeps_its_own_decisions(two_versions):
    tables, _, _ = two_versions
    assert saved_versions(tables) == [1, 2]
    v1, v2 = _lineage(tables, 1), _lineage(tables, 2)
    assert set(v1) == set(v2) and len(v1) == 5
    assert all(r["status"] == "kept" for r in v1.values())  # every rule off in v1
    web_dropped = [u for u, r in v2.items() if r["source"] == "web" and r["status"] != "kept"]
    assert len(web_dropped) == 2 and all(v2[u]["stage"] == "quality" for u in web_dropped)
    assert all(v2[u]["status"] == "kept" for u in v2 if v2[u]["source"] == "clean")


def test_the_comparison_lists_exactly_the_videos_that_moved_with_both_lineages_reasons(two_versions):
    tables, data, _ = two_versions
    result = compare(Side(tables, 1), Side(tables, 2), out=tables)
    v1, v2 = _lineage(tables, 1), _lineage(tables, 2)
    differences = pl.read_parquet(data / "exports" / "compare" / "v1_vs_v2" / "differences.parquet")
    expected_left = {u for u in v1 if v1[u]["status"] == "kept" and v2[u]["status"] != "kept"}
    assert set(differences.filter(pl.col("change") == "left")["source_uri"]) == expected_left and expected_left
    for r in differences.iter_rows(named=True):
        assert (r["status_a"], r["stage_a"], r["reason_a"]) == tuple(
            v1[r["source_uri"]][k] for k in ("status", "stage", "reason")
        )
        assert (r["status_b"], r["stage_b"], r["reason_b"]) == tuple(
            v2[r["source_uri"]][k] for k in ("status", "stage", "reason")
        )
        assert r["reason_b"].startswith("aesthetic ") and r["reason_b"].endswith("(web: top 34%)")
    # Nothing else changed fate: the clean source's videos, and the web video still kept, are not listed (the new
    # clarity model changes scores, not fates, with clarity's rule off).
    assert set(differences["source_uri"]) == expected_left
    per_source = {r["source"]: r for r in result.sources.iter_rows(named=True)}
    assert (per_source["web"]["left"], per_source["clean"]["left"], per_source["all"]["left"]) == (2, 0, 2)
    assert per_source["web"]["hours_lost"] == pytest.approx(
        sum(v1[u]["duration_s"] for u in expected_left) / 3600, abs=1e-6
    )
    clarity = result.scores.filter((pl.col("score") == "clarity") & (pl.col("source") == "all"))
    assert clarity["mean"][0] != clarity["mean"][1]  # the model change shows in the distributions
    moved = result.thresholds.filter(pl.col("changed"))
    assert moved.filter(pl.col("source") == "web")["score"].to_list() == ["aesthetic"]
    report = (data / "exports" / "compare" / "v1_vs_v2" / "report.md").read_text()
    assert "2 left" in report or "0 videos entered the dataset (0 h), 2 left" in report
    assert (data / "exports" / "compare" / "v1_vs_v2" / "aesthetic.png").stat().st_size > 1000


def test_a_version_compared_with_itself_changes_nothing_and_the_command_says_so(two_versions, capsys):
    tables, data, _ = two_versions
    result = compare(Side(tables, 2), Side(tables, 2), out=tables)
    assert result.unchanged and result.summary.is_empty()
    assert main(["compare", "v2", "2", "--data-root", str(data)]) == 0
    assert "no video changed its fate, no cut line moved" in capsys.readouterr().out
    assert main(["compare", "v1", "v9", "--data-root", str(data)]) == 2  # a version never saved: a clear error
    assert "no saved decisions of recipe version v9; saved: v1, v2" in capsys.readouterr().err


def test_step_costs_come_from_the_runs_dagster_recorded_per_video_each_step_worked_on(two_versions):
    tables, _, instance = two_versions
    lineage = tables.scan_source("lineage", ["global"])
    costs = measured_costs(instance, lineage)
    measured = {r["step"]: r for r in costs.iter_rows(named=True)}
    assert {"video_manifest", "motion_scores", "clips", "captions"} <= set(measured) <= set(STEP_UNITS)
    assert all(r["runs"] >= 3 and r["p10"] <= r["seconds_per_unit"] <= r["p90"] for r in measured.values())
    # By hand for one step: each run's step seconds over its shards' input videos, the median over the runs.
    inputs = dict(zip(*run_sql("step_reach", {"lineage": lineage}, {"shards": None}).select("shard", "input")))
    samples = [(shards, s, cpu) for step, shards, s, cpu in step_samples(instance) if step == "motion_scores"]
    motion = [s / sum(inputs[k] for k in shards) for shards, s, _ in samples]
    assert measured["motion_scores"]["seconds_per_unit"] == pytest.approx(statistics.median(motion))
    # The CPU seconds each run's step recorded, per video the same way (the step used CPU, and no more than its
    # process could in its wall time on this machine's cores; the clock counts hundredths).
    cpu = [c / sum(inputs[k] for k in shards) for shards, _, c in samples]
    assert sum(cpu) > 0 and all(0 <= c <= s * (os.cpu_count() or 1) + 0.1 for _, s, c in samples), samples
    assert measured["motion_scores"]["cpu_seconds_per_unit"] == pytest.approx(statistics.median(cpu))
    assert measured["motion_scores"]["runs"] == len(motion) >= 3
    # Clips are measured per selected video, captions per clip: the units of the lineage, not the shard's size.
    assert measured["captions"]["unit"] == "clip" and measured["clarity_scores"]["unit"] == "candidate"
    chosen = step_costs(costs, "offline")
    assert set(chosen.filter(pl.col("origin") == "this instance")["step"]) == set(measured)
