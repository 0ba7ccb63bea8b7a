"""One tiny source and one uninterrupted reference run, shared by the kill and parallel tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from openvid_assets import samples
from openvid_assets_testing.harness import make_dagster_home, pipeline_env, run_args, run_to_end, snapshot

SHARD_SIZE = 1  # four inputs, four shards: enough for four parallel shard runs
# The run command's runs take two shards each (OPENVID_SHARDS_PER_RUN): half the run processes, and a kill lands
# in a run of several shards, the harder case (one shard's tables written and recorded, the other's not yet).
SHARDS_PER_RUN = "2"
# Runs that nothing interrupts take all four shards: one process a step (the outputs do not depend on the batching).
ALL_SHARDS_PER_RUN = "4"


def tiny_source(out: Path) -> Path:
    """Four inputs, cheap to run: two short pans (one with a hard cut, so two clips), an empty file and a text file."""
    out.mkdir(parents=True, exist_ok=True)
    samples.smooth_pan(out, num_frames=48)
    samples.hard_cuts(out, scene_frames=(30, 30))
    (out / "empty.mp4").write_bytes(b"")
    (out / "notes.mp4").write_bytes(b"shot list, day 2\n")
    return out


@dataclass(frozen=True)
class Reference:
    source: Path
    data: Path
    snapshot: dict[str, object]
    seconds: float
    output: str


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The tiny source run once, uninterrupted, by the run command, into its own data root and instance."""
    root = tmp_path_factory.mktemp("reliability")
    source = tiny_source(root / "src")
    data, home = root / "reference", make_dagster_home(root / "reference_home")
    env = pipeline_env(home, OPENVID_SHARDS_PER_RUN=ALL_SHARDS_PER_RUN)
    run = run_to_end(run_args(source, data, SHARD_SIZE), env, root, timeout=600)
    assert run.proc.returncode == 0, run.output
    return Reference(source, data, snapshot(data), run.elapsed, run.output)
