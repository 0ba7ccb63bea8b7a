"""Progress reporting: throttled in-asset progress, and a terse logger for the run command."""


import logging
import sys
import time
from collections.abc import Callable

from dagster import AssetExecutionContext, DagsterEventType, InitLoggerContext, logger

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


class _ProgressHandler(logging.Handler):
    """Prints step starts/ends and in-asset progress lines; everything else stays in the event log."""

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)
        if meta is None:
            return
        step = meta.get("step_key") or ""
        event = meta.get("dagster_event")
        partition = (meta.get("job_tags") or {}).get("dagster/partition", "")
        where = f"[{partition}] " if partition else ""
        message = meta.get("orig_message") or ""
        if event is None:
            if message.startswith(PROGRESS_PREFIX):
                print(f"  {where}{step}: {message[len(PROGRESS_PREFIX):].strip()}", file=sys.stdout, flush=True)
            return
        if event.event_type == DagsterEventType.STEP_START:
            print(f"  {where}{step}: started", flush=True)
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            seconds = event.event_specific_data.duration_ms / 1000.0
            print(f"  {where}{step}: done in {seconds:.1f}s", flush=True)
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            while error is not None and error.cause is not None:  # the user-facing cause, not Dagster's wrapper
                error = error.cause
            print(f"  {where}{step}: FAILED: {error.message.strip() if error else message}", flush=True)


@logger(description="Terse progress lines for the openvid-assets run command.")
def progress_logger(init_context: InitLoggerContext) -> logging.Logger:
    log = logging.getLogger("openvid_assets.progress")
    log.setLevel(logging.DEBUG)  # step events arrive at DEBUG
    log.propagate = False
    if not log.handlers:
        log.addHandler(_ProgressHandler())
    return log
