"""Shared fixtures for the openvid-assets test suite."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

# Tests run the weight-free profile: tiny random models of the real classes, no downloads.
os.environ["OPENVID_MODELS"] = "offline"
os.environ.pop("OPENVID_ALLOW_DOWNLOADS", None)
# The daemon the run command starts passes over backfills every second (see fast_daemon.py).
os.environ.setdefault("OPENVID_DAGSTER_DAEMON", f"{sys.executable} -m openvid_assets_tests.fast_daemon")
# pytest-xdist's workers share the cores: each worker's torch (and OpenMP, BLAS) gets its share, not every core.
# Two workers with two threads each on two cores spin against each other: the selection pipeline took 143 s
# instead of 95 s beside a copy of itself. The run command sets its own runs' threads (cores / workers).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest

from openvid_assets.samples import VideoSpec, write_sample_set

pytest_plugins = ["openvid_assets_testing.s3server", "openvid_assets_testing.pgserver"]

# pytest-xdist (--dist loadfile --no-loadscope-reorder) hands whole files to its two workers in the order collected.
# The long tier (`-m slow`, a few files of minutes each): the longest files first (measured on 2 cores), so none
# starts last beside an idle worker. The everyday tier: its one run of the command through the daemon first, beside
# the unit-test files, then files with the most tests first (xdist's own default order); handing out its heavy
# files first instead started two of them together, and the tier took longer. Only the order changes: no test
# depends on it.
LONGEST_FIRST = [  # measured in a fresh clone's long tier (2 workers), 2026-12-07: 335, 334, 242, 208, 142, 100, 95, 69 s
    "test_engine.py",
    "reliability/test_against_a_reference_run.py",
    "test_run_command_at_scale.py",
    "test_run_command.py",
    "assets/test_paper_networks_pipeline.py",
    "reliability/test_hostile.py",
    "assets/test_selection_pipeline.py",
    "test_gpu_suite.py",
]
EVERYDAY_FIRST = "test_run_command.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Stable sorts: a file's tests stay together and in order.
    if config.option.markexpr == "slow":
        here, rank = Path(__file__).parent, {name: i for i, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.relative_to(here).as_posix(), len(rank)))
    else:
        tests_in, first = Counter(item.path for item in items), Path(__file__).parent / EVERYDAY_FIRST
        items.sort(key=lambda item: (item.path != first, -tests_in[item.path]))


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[VideoSpec]]:
    """The synthetic sample set (good, hostile-named and bad videos), written once per session.

    Returns ``(root_dir, specs)``; each spec's ``name`` is relative to ``root_dir``.
    The escaping symlink's target lives in the sibling ``<root_dir>_outside``.
    """
    root = tmp_path_factory.mktemp("videos")
    return root, write_sample_set(root)


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty OPENVID_WEIGHTS_DIR (and cache) for this test, downloads off."""
    wdir = tmp_path / "weights"
    monkeypatch.setenv("OPENVID_WEIGHTS_DIR", str(wdir))
    monkeypatch.setenv("OPENVID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("OPENVID_ALLOW_DOWNLOADS", raising=False)
    return wdir
