"""The CPU seconds a per-shard step used, recorded in its materialization's metadata: what the estimates
(assets/history.py) read back beside Dagster's step durations."""

import functools
import os
from collections.abc import Callable

from dagster import MaterializeResult

CPU_SECONDS = "cpu_seconds"  # the metadata key


def process_cpu_seconds() -> float:
    """CPU seconds of this process's threads and of the subprocesses it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measured_step(step: Callable[..., MaterializeResult]) -> Callable[..., MaterializeResult]:
    """A per-shard asset function whose result's metadata also holds the CPU seconds it used (``CPU_SECONDS``).
    Goes under ``@asset``: Dagster reads the wrapped function's parameters."""

    @functools.wraps(step)
    def measured(*args, **kwargs) -> MaterializeResult:
        start = process_cpu_seconds()
        result = step(*args, **kwargs)
        used = round(process_cpu_seconds() - start, 3)
        return MaterializeResult(
            asset_key=result.asset_key,
            metadata={**(result.metadata or {}), CPU_SECONDS: used},
            check_results=result.check_results,
            data_version=result.data_version,
            tags=result.tags,
        )

    return measured
