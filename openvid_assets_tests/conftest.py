"""Shared fixtures for the openvid-assets test suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Tests run the weight-free profile: tiny random models of the real classes, no downloads.
os.environ["OPENVID_MODELS"] = "offline"
os.environ.pop("OPENVID_ALLOW_DOWNLOADS", None)
# The daemon the run command starts passes over backfills every second (see fast_daemon.py).
os.environ.setdefault("OPENVID_DAGSTER_DAEMON", f"{sys.executable} -m openvid_assets_tests.fast_daemon")

import pytest

from openvid_assets.samples import VideoSpec, write_sample_set

pytest_plugins = ["openvid_assets_testing.s3server", "openvid_assets_testing.pgserver"]

# pytest-xdist (--dist loadfile --no-loadscope-reorder) hands whole files to its two workers in the order collected.
# The files that take longest (measured on 2 cores, both tiers) go first, so none starts last beside an idle
# worker. Only the order changes: no test depends on it.
LONGEST_FIRST = [
    "reliability/test_against_a_reference_run.py",
    "test_engine.py",
    "assets/test_selection_pipeline.py",
    "test_run_command.py",
    "assets/test_sources_pipeline.py",
    "test_run_command_at_scale.py",
    "assets/test_ablation.py",
    "assets/test_filters_pipeline.py",
    "assets/test_training_pipeline.py",
    "models/test_transnetv2.py",
    "deploy/test_ui.py",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here, rank = Path(__file__).parent, {name: i for i, name in enumerate(LONGEST_FIRST)}
    # A stable sort: a file's tests stay together and in order, the other files in their collected order.
    items.sort(key=lambda item: rank.get(item.path.relative_to(here).as_posix(), len(rank)))


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
