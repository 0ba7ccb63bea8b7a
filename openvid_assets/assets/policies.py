"""How Dagster schedules, retries, backfills and throttles the assets (one place for every policy).

- Automation: every curation asset is ``eager``: a new shard (a newly missing
  partition) flows through each per-shard step as soon as its inputs exist, and a
  global step refreshes when any input was updated. Nothing current is redone.
  The training group has no condition: a training run is always asked for.
  The conditions act once the ``curation_automation`` sensor is turned on.
- Retries: a step that raises (S3 or network trouble, a GPU that runs out of memory
  even at batch size 1, a killed worker) is retried with exponential backoff and
  jitter. Bad videos never raise: they are rows with a status and a reason.
- Backfills: every per-shard step of the curation has one policy: one shard a run
  by default (a failure costs one shard, and runs spread over machines), or
  ``OPENVID_SHARDS_PER_RUN`` shards a run (a run costs seconds to start: at tens of
  thousands of shards fewer, larger runs keep the backfill daemon's queueing short).
  One policy lets a backfill put a shard's consecutive steps (the SQL ones, which
  take milliseconds, with the model step after them) in one run. The ablation's
  per-shard SQL step takes every shard in a single run.
- Concurrency: model steps are in the ``gpu`` pool, so runs never put more model
  steps on a machine than the pool's limit (dagster.yaml ``concurrency.pools``).
"""

import warnings

from dagster import AutomationCondition, Backoff, BackfillPolicy, Jitter, RetryPolicy

from openvid_assets import settings

# Backfill policies are a documented, deliberate choice here; Dagster's "beta" notice would print on every import.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta")

GPU_POOL = "gpu"
TRANSIENT_RETRY = RetryPolicy(max_retries=3, delay=15, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
SHARDS_PER_RUN = BackfillPolicy.multi_run(max_partitions_per_run=settings.shards_per_run())
ONE_PARTITION_PER_RUN = BackfillPolicy.multi_run(max_partitions_per_run=1)
ALL_SHARDS_IN_ONE_RUN = BackfillPolicy.single_run()
CURATION_AUTOMATION = AutomationCondition.eager()

# Keyword arguments for @asset, by kind of step.
MODEL_STEP = {
    "retry_policy": TRANSIENT_RETRY,
    "backfill_policy": SHARDS_PER_RUN,
    "pool": GPU_POOL,
    "automation_condition": CURATION_AUTOMATION,
}
IO_STEP = {
    "retry_policy": TRANSIENT_RETRY,
    "backfill_policy": SHARDS_PER_RUN,
    "automation_condition": CURATION_AUTOMATION,
}
SQL_SHARD_STEP = {
    "retry_policy": TRANSIENT_RETRY,
    "backfill_policy": SHARDS_PER_RUN,
    "automation_condition": CURATION_AUTOMATION,
}
GLOBAL_STEP = {"retry_policy": TRANSIENT_RETRY, "automation_condition": CURATION_AUTOMATION}
TRAINING_STEP = {"retry_policy": TRANSIENT_RETRY, "pool": GPU_POOL}
TRAINING_SHARD_STEP = {**TRAINING_STEP, "backfill_policy": SHARDS_PER_RUN}  # latents: shards a run, as the curation
# The ablation is asked for, never automatic: one shard a run, the pools of their kind.
ASKED_MODEL_STEP = {"retry_policy": TRANSIENT_RETRY, "backfill_policy": ONE_PARTITION_PER_RUN, "pool": GPU_POOL}
ASKED_IO_STEP = {"retry_policy": TRANSIENT_RETRY, "backfill_policy": ONE_PARTITION_PER_RUN}
ASKED_SQL_STEP = {"retry_policy": TRANSIENT_RETRY, "backfill_policy": ALL_SHARDS_IN_ONE_RUN}
ASKED_GLOBAL_STEP = {"retry_policy": TRANSIENT_RETRY}
