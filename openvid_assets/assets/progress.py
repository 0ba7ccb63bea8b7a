"""Progress inside a step: throttled log lines the run command (assets/engine.py) prints from the event log."""

import time
from collections.abc import Callable

from dagster import AssetExecutionContext

PROGRESS_PREFIX = "progress:"


def progress_callback(context: AssetExecutionContext, verb: str, every_s: float = 5.0) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback that logs at most every ``every_s`` seconds, and at the end."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every_s:
            last[0] = now
            context.log.info(f"{PROGRESS_PREFIX} {verb} {done}/{total}")

    return report
