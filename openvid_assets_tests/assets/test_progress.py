"""Progress lines: at most one every few seconds over all the shards a run's step works through, and a long
shard's last line."""

from types import SimpleNamespace

from dagster import AssetKey

from openvid_assets.assets import progress
from openvid_assets.assets.progress import PROGRESS_PREFIX, progress_callback


def _context(lines: list[str], run_id: str = "run-1") -> SimpleNamespace:
    log = SimpleNamespace(info=lines.append)
    return SimpleNamespace(run_id=run_id, asset_key=AssetKey("video_manifest"), log=log)


def test_many_small_shards_of_one_run_log_one_line_not_one_each(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    lines: list[str] = []
    context = _context(lines)
    for _ in range(50):  # 50 one-video shards within a second
        progress_callback(context, "probed")(1, 1)
        clock[0] += 0.02
    assert lines == [f"{PROGRESS_PREFIX} probed 1/1"]
    clock[0] += 5
    progress_callback(context, "probed")(1, 1)  # the clock is the run's step's: 5 s on, a line again
    assert len(lines) == 2
    progress_callback(_context(lines, "run-2"), "probed")(1, 1)  # another run has its own clock
    assert len(lines) == 3


def test_a_long_shard_logs_every_few_seconds_and_its_end(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    lines: list[str] = []
    report = progress_callback(_context(lines, "run-long"), "probed")
    for done in range(1, 101):  # a video a second
        report(done, 100)
        clock[0] += 1.0
    numbers = [int(line.split()[-1].split("/")[0]) for line in lines]
    assert numbers[0] == 1 and numbers[-1] == 100  # the first, then every 5 s, and the end
    assert all(b - a == 5 for a, b in zip(numbers, numbers[1:-1]))
