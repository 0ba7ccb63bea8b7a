"""The run command's plan at more shards than Dagster tracks per-partition inputs for (100): what is missing or
stale, read in bulk from a real instance's records, and the backfill requests it becomes."""

from __future__ import annotations

import pytest
from dagster import AssetKey, AssetMaterialization, AssetObservation, DagsterInstance

from openvid_assets.assets.engine import backfill_requests, plan_waves
from openvid_assets.assets.plan import CODE_VERSION_TAG, plan_stale
from openvid_assets.assets.recipe import DATA_VERSION_TAG, record_recipe, recipe_key
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.definitions import build_definitions
from openvid_assets_testing.pipeline import FAST, store_recipe

SHARDS = [f"shard-{i:05d}" for i in range(120)]  # more than 100: Dagster's own resolver stops tracking here


class Root:
    """A data root's instance whose every curation step is recorded as materialized, in dependency order, the way
    a finished run leaves it (runless materializations with the assets' code versions)."""

    def __init__(self, tmp_path, instance: DagsterInstance):
        store_recipe(str(tmp_path / "data"), FAST)
        self.defs = build_definitions(str(tmp_path / "data"))
        self.graph = self.defs.resolve_asset_graph()
        self.instance = instance
        self.keys = [k for wave in plan_waves(self.defs) for k in wave.keys]
        instance.add_dynamic_partitions(shards_partitions.name, SHARDS)
        record_recipe(instance, self.defs.resources["store"].recipe())
        for key in self.keys:  # plan_waves lists parents first
            for shard in self.shards_of(key):
                self.materialize(key, shard)

    def per_shard(self, key: AssetKey) -> bool:
        return self.graph.get(key).partitions_def == shards_partitions

    def shards_of(self, key: AssetKey) -> list[str | None]:
        return SHARDS if self.per_shard(key) else [None]

    def materialize(self, key: AssetKey, shard: str | None = None, code_version: str | None = None) -> None:
        version = code_version or self.graph.get(key).code_version
        self.instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key, partition=shard, tags={CODE_VERSION_TAG: version})
        )

    def plan(self, shards: list[str] = SHARDS):
        return plan_stale(self.instance, self.graph, self.keys, shards, shards_partitions)

    def downstream(self, key: AssetKey) -> set[AssetKey]:
        """Every curation asset below ``key`` (not itself)."""
        below, todo = set(), [key]
        while todo:
            for child in self.graph.get(todo.pop()).child_keys:
                if child in self.keys and child not in below:
                    below.add(child)
                    todo.append(child)
        return below


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    with DagsterInstance.ephemeral() as instance:
        yield Root(tmp_path_factory.mktemp("plan"), instance)


def planned(plan) -> dict[str, set]:
    return {k.path[-1]: v for k, v in plan.partitions.items() if v}


def test_an_up_to_date_root_has_nothing_to_do(root):
    plan = root.plan()
    assert plan.empty, planned(plan)
    assert backfill_requests(plan) == []


def test_one_shards_score_recorded_again_redoes_the_thresholds_and_everything_after_them(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        fresh = Root(tmp_path, instance)
        # As a run launched from the UI (or anything else) would record it: one shard's aesthetic scores anew.
        fresh.materialize(AssetKey("aesthetic_scores"), SHARDS[57])
        plan = fresh.plan()
    below = fresh.downstream(AssetKey("aesthetic_scores"))  # thresholds, near-duplicates, suitability, ...
    after = set().union(*(fresh.downstream(k) for k in below if not fresh.per_shard(k)))  # below a global step
    assert AssetKey("score_thresholds") in below and fresh.downstream(AssetKey("score_thresholds")) <= after < below
    assert {k for k, v in plan.partitions.items() if v} == below
    assert plan.partitions[AssetKey("score_thresholds")] == {None}
    for key in after:  # every shard below the thresholds (or another global step): they read them
        assert plan.partitions[key] == set(fresh.shards_of(key)), key
    for key in below - after:  # the shard's own steps that read its scores; the global steps that read every shard
        assert plan.partitions[key] == ({SHARDS[57]} if fresh.per_shard(key) else {None}), key
    for untouched in ("video_manifest", "frame_embeddings", "aesthetic_scores", "temporal_scores", "motion_scores"):
        assert not plan.partitions[AssetKey(untouched)], untouched
    # Everything redone per shard reads a global step: one request over every shard, from the global steps.
    assert not {k for k in below - after if fresh.per_shard(k)}
    [(keys, every)] = backfill_requests(plan)
    assert set(keys) == below and every is None


def test_partitions_made_by_older_code_are_planned_and_only_they(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        old = Root.__new__(Root)
        store_recipe(str(tmp_path / "data"), FAST)
        old.defs = build_definitions(str(tmp_path / "data"))
        old.graph, old.instance = old.defs.resolve_asset_graph(), instance
        old.keys = [k for wave in plan_waves(old.defs) for k in wave.keys]
        instance.add_dynamic_partitions(shards_partitions.name, SHARDS)
        record_recipe(instance, old.defs.resources["store"].recipe())
        motion = AssetKey("motion_scores")
        # The first 30 shards' motion scores were made by the code before the current code version (a run
        # killed after the upgrade had redone only the rest).
        for key in old.keys:
            for shard in old.shards_of(key):
                old.materialize(key, shard, code_version="0" if key == motion and shard in SHARDS[:30] else None)
        for shard in SHARDS[30:]:
            old.materialize(motion, shard)
        plan = old.plan()
    assert plan.partitions[motion] == set(SHARDS[:30])
    assert not plan.partitions[AssetKey("frame_embeddings")]
    assert plan.partitions[AssetKey("score_thresholds")] == {None}


def test_a_changed_recipe_section_plans_its_steps_on_every_shard(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        fresh = Root(tmp_path, instance)
        instance.report_runless_asset_event(
            AssetObservation(asset_key=recipe_key("motion"), tags={DATA_VERSION_TAG: "another-backend"})
        )
        plan = fresh.plan()
    motion = AssetKey("motion_scores")
    assert plan.partitions[motion] == set(SHARDS)
    assert not plan.partitions[AssetKey("frame_embeddings")] and not plan.partitions[AssetKey("aesthetic_scores")]
    assert {k for k, v in plan.partitions.items() if v} == {motion} | fresh.downstream(motion)
    [(keys, shards)] = backfill_requests(plan)  # one request from every shard's motion scores
    assert keys[0] == motion and shards == SHARDS


def test_new_shards_run_their_first_steps_alone_then_the_rest_over_every_shard(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        fresh = Root(tmp_path, instance)
        new = ["shard-00120", "shard-00121"]
        instance.add_dynamic_partitions(shards_partitions.name, new)
        plan = fresh.plan(SHARDS + new)
    (first_keys, first_shards), (rest_keys, rest_shards) = backfill_requests(plan)
    assert first_shards == new  # the old shards' scores are not redone
    assert AssetKey("video_manifest") in first_keys and AssetKey("frame_embeddings") in first_keys
    assert all(fresh.per_shard(k) for k in first_keys)
    # The thresholds change with the new shards' scores: what reads them is redone on every shard.
    assert AssetKey("score_thresholds") in rest_keys and rest_shards is None
    assert plan.partitions[AssetKey("quality_candidates")] == set(SHARDS + new)
    assert not set(first_keys) & set(rest_keys)


def test_forced_assets_are_planned_whole(root):
    thresholds = AssetKey("score_thresholds")
    plan = plan_stale(root.instance, root.graph, root.keys, SHARDS, shards_partitions, force=frozenset({thresholds}))
    assert plan.partitions[thresholds] == {None}
    assert {k for k, v in plan.partitions.items() if v} == {thresholds} | root.downstream(thresholds)
    [(keys, shards)] = backfill_requests(plan)  # from a global step: every shard
    assert keys[0] == thresholds and shards is None
