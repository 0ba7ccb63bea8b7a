"""Progress inside a step: throttled log lines the run command (assets/engine.py) prints from the event log."""

import time
from collections.abc import Callable

from dagster import AssetExecutionContext

PROGRESS_PREFIX = "progress:"

# When each step of each run last logged progress: one clock for all the shards a run's step works through, so a
# run of many small shards logs a line every few seconds, not one a shard (each line is an event-log write).
_last_logged: dict[tuple[str, str], float] = {}  # (run id, asset) -> monotonic seconds


def progress_callback(context: AssetExecutionContext, verb: str, every_s: float = 5.0) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback for one shard that logs at most every ``every_s`` seconds over the run's step,
    and at the shard's end when it logged before (a long shard says it finished)."""
    step = (context.run_id, context.asset_key.to_user_string())
    logged = [False]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - _last_logged.get(step, float("-inf")) >= every_s or (done == total and logged[0]):
            _last_logged[step] = now
            logged[0] = True
            context.log.info(f"{PROGRESS_PREFIX} {verb} {done}/{total}")

    return report
