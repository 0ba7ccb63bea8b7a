"""Store a recipe under a data root, and materialize the whole graph in-process (tests and benchmarks).

Tests of what the assets compute use Dagster's in-process execution (``execute_in_process``) wave by
wave; the run command's engine (runs on the queue, launched by a daemon) has tests of its own
(openvid_assets_tests/test_engine.py, reliability/).
"""

from __future__ import annotations

from typing import Any

from dagster import DagsterInstance, Definitions

from openvid_assets.assets.engine import plan_waves
from openvid_assets.assets.labels import record_labels
from openvid_assets.assets.recipe import record_recipe
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.assets.training import GROUP as TRAINING_GROUP
from openvid_assets.recipe import Recipe, RecipeStore, StoredRecipe
from openvid_assets.store import TableStore
from openvid_assets.definitions import GLOBAL_JOB, SHARD_JOB, TRAINING_JOB, TRAINING_SHARD_JOB

# The job holding a wave's assets: (per shard, training) -> job name, as definitions.py names them.
JOBS = {
    (True, False): SHARD_JOB,
    (False, False): GLOBAL_JOB,
    (True, True): TRAINING_SHARD_JOB,
    (False, True): TRAINING_JOB,
}

# The weight-free motion and clarity backends keep orchestration tests quick; the networks have their own. Short
# captions: the tiny random captioner never ends one by itself (harness.FAST_FLAGS, the same for the command).
FAST = {
    "models": {"profile": "offline", "motion_backend": "farneback", "clarity_backend": "laplacian"},
    "clips": {"detectors": "cascade"},
    "captions": {"max_new_tokens": 16},
}  # TransNetV2 has tests of its own (models/, media/test_scenes.py)


def store_recipe(
    data_root: str, changes: dict[str, dict[str, Any]] | None = None, **sections: dict[str, Any]
) -> StoredRecipe:
    """Store ``Recipe()`` with ``changes`` (and/or ``section={field: value}`` keywords) as the data root's recipe."""
    merged: dict[str, dict[str, Any]] = {}
    for source in (changes or {}, sections):
        for section, fields in source.items():
            merged.setdefault(section, {}).update(fields)
    stored, _ = RecipeStore(TableStore(str(data_root)).fs).save(Recipe().updated(merged))
    return stored


def materialize_pipeline(defs: Definitions, instance: DagsterInstance, training: bool | None = False) -> int:
    """Every asset of the curation graph (or the training group) in dependency order, in this process, for every
    registered shard; returns the number of runs. Raises on the first failed step."""
    store = defs.resources["store"]
    record_recipe(instance, store.recipe())
    record_labels(instance, store.tables())
    shards = sorted(instance.get_dynamic_partitions(shards_partitions.name))
    graph, runs = defs.resolve_asset_graph(), 0
    for wave in plan_waves(defs, training):
        for shard in shards if wave.per_shard else [None]:
            for is_training in sorted({graph.get(k).group_name == TRAINING_GROUP for k in wave.keys}):
                keys = [k for k in wave.keys if (graph.get(k).group_name == TRAINING_GROUP) == is_training]
                job = defs.resolve_job_def(JOBS[(wave.per_shard, is_training)])
                job.execute_in_process(instance=instance, partition_key=shard, asset_selection=keys)
                runs += 1
    return runs


def register_shards(defs: Definitions, instance: DagsterInstance, source: str, shard_size: int) -> list[str]:
    from openvid_assets.assets.shards import store_new_shards

    _, new = store_new_shards(defs.resources["store"].tables(), source, shard_size=shard_size)
    instance.add_dynamic_partitions(shards_partitions.name, new)
    return new
