"""Run the pipeline for real, break it, and judge what it left on disk.

Shared by the reliability tests (``openvid_assets_tests/reliability``) and ``bench/bench_faults.py``. Everything is real:
``python -m openvid_assets run`` (or ``dagster asset materialize``) as a subprocess in
its own process group, an on-disk SQLite Dagster instance configured like the
project's ``dagster.yaml``, ``SIGKILL`` to the whole group, ffmpeg-made videos.

What "the same outputs" means: every file under the data root (tables, exports, clip
files) with the same content as an uninterrupted run's. Parquet files are compared as
frames (with the data root's own path in clip paths replaced by a placeholder),
everything else byte for byte. The only columns left out are the threshold
*versions* (:data:`VOLATILE`): a version hashes the rules and the stamps (size and
modification time) of the tables it was computed from, so two runs that write the same
bytes at different times get different versions by design. They are checked for
consistency within a data root instead (:func:`version_problems`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]

# Columns that legitimately differ between two runs writing identical data (see the module docstring).
VOLATILE: dict[str, tuple[str, ...]] = {
    "score_thresholds": ("version",),
    "clarity_threshold": ("version",),
    "quality_candidates": ("thresholds_version",),
    "selected_videos": ("clarity_version",),
    "lineage": ("quality_version", "clarity_version"),
    "lineage_versions": ("quality_version", "clarity_version"),  # a recipe version's saved lineage
    "threshold_versions": ("version",),
    "openvid": ("quality_version", "clarity_version"),  # exports/openvid.parquet
    "openvid_hd": ("quality_version", "clarity_version"),
}
PER_SHARD = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "codec_motion",
    "motion_scores",
    "content_scores",
    "suitability_scores",
    "quality_candidates",
    "clarity_scores",
    "selected_videos",
    "clips",
    "captions",
    "caption_checks",
]
GLOBAL = [
    "score_thresholds",
    "near_duplicates",
    "suitability_model",
    "clarity_threshold",
    "lineage",
    "recipe_comparison",
    "curated_dataset",
    "hd_subset",
    "quality_tiers",
    "dataset_card",
]
# SQLite trouble in any output: locks, and the schema or unique-key races of concurrent first use.
LOCK_ERRORS = re.compile(r"database is locked|database table is locked|OperationalError|IntegrityError", re.I)


# --------------------------------------------------------------------------- environment


def instance_config() -> dict:
    """The project's dagster.yaml minus its folder settings: storage becomes Dagster's default SQLite layout
    under DAGSTER_HOME, every other instance setting (concurrency pools, telemetry, ...) is what users run."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text()) or {}
    for key in (
        "storage",
        "run_storage",
        "event_log_storage",
        "schedule_storage",
        "local_artifact_storage",
        "compute_logs",
    ):
        config.pop(key, None)
    return config


def make_dagster_home(path: Path) -> Path:
    """A fresh on-disk instance folder whose dagster.yaml is :func:`instance_config`."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    return path


def pipeline_env(dagster_home: Path, **extra: str) -> dict[str, str]:
    """The environment of every subprocess (the models are the recipe's: see run_args)."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONUNBUFFERED": "1"}
    env.pop("OPENVID_ALLOW_DOWNLOADS", None)
    env.update(extra)
    return env


# The orchestration tests' models: the offline profile, the weight-free motion and clarity backends and the library
# cut detectors (the networks and TransNetV2 have tests of their own), and short captions: the tiny random captioner
# never ends a caption by itself, and each of 256 tokens is a decoding step (captioning has tests of its own).
FAST_FLAGS = [
    "--models",
    "offline",
    "--motion-backend",
    "farneback",
    "--clarity-backend",
    "laplacian",
    "--set",
    "clips.detectors=cascade",
    "--set",
    "captions.max_new_tokens=16",
]


def run_cli(*args: str, env: dict, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m openvid_assets *args``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "openvid_assets", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_args(source: Path | str, data_root: Path | str, shard_size: int, *, filters: bool = False) -> list[str]:
    """``python -m openvid_assets run`` with the offline profile, the weight-free motion and clarity backends and
    the library cut detectors (TransNetV2 has tests of its own); without ``filters`` every decodable video goes on to clips and captions."""
    args = [
        sys.executable,
        "-m",
        "openvid_assets",
        "run",
        "--source",
        str(source),
        "--data-root",
        str(data_root),
        *FAST_FLAGS,
        "--shard-size",
        str(shard_size),
    ]
    return args if filters else [*args, "--no-filters"]


# --------------------------------------------------------------------------- a watched subprocess

_STEP = re.compile(r"^Step (\d+): ")
# A run's label: one shard, or the range of shards it takes (OPENVID_SHARDS_PER_RUN), e.g. shard-00000..shard-00001.
_STARTED = re.compile(r"^\s+(?:\[(shard-\d+(?:\.\.shard-\d+)?)\] )?(\w+): started")
_DONE = re.compile(r"^\s+(?:\[(shard-\d+(?:\.\.shard-\d+)?)\] )?(\w+): done")


def _activity(line: str, current: str) -> str:
    """What the run command is doing after printing ``line`` (its progress lines are the only signal)."""
    if line.startswith("Source "):
        return "registered, planning"
    if m := _STARTED.match(line):
        return f"{m[2]} [{m[1]}]" if m[1] else m[2]
    if m := _DONE.match(line):
        return f"after {m[2]} [{m[1]}]" if m[1] else f"after {m[2]}"
    if m := _STEP.match(line):
        return f"step {m[1]} planning"
    if line.startswith("Done in"):
        return "summary"
    return current


class WatchedRun:
    """A subprocess in its own process group whose output is read line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | str):
        self.args = args
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.activity = "start-up (imports, registration)"
        self.elapsed = 0.0  # seconds from start to exit, once it has exited
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
                self.activity = _activity(line, self.activity)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        """Block until a line matches ``pattern`` (regex); False if the output ended or time ran out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for _, line in self.lines[seen:]:
                    if regex.search(line):
                        return True
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    return False
                self._cond.wait(left)

    def kill(self) -> tuple[float, str, bool]:
        """SIGKILL the whole process group now: (seconds since start, what it was doing, whether it was alive)."""
        with self._cond:
            when, doing = time.monotonic() - self.started, self.activity
        alive = self.proc.poll() is None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.elapsed = time.monotonic() - self.started
        self._reader.join(timeout=30)
        return when, doing, alive

    def wait(self, timeout: float) -> int:
        """Wait for a normal exit (killing the group on timeout); returns the exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.elapsed = time.monotonic() - self.started
        self._reader.join(timeout=30)
        return self.proc.returncode


def run_to_end(args: list[str], env: dict[str, str], cwd: Path | str, timeout: float = 600) -> WatchedRun:
    run = WatchedRun(args, env, cwd)
    run.wait(timeout)
    return run


# --------------------------------------------------------------------------- what is on disk


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _volatile(rel: str) -> tuple[str, ...]:
    parts = rel.split("/")
    name = parts[1] if parts[0] == "tables" else Path(parts[-1]).stem
    return VOLATILE.get(name, ())


def is_temporary(path: Path) -> bool:
    """A writer's temporary file: ``atomic_path``'s ``.<name>.<writer>+<random>.tmp<ext>``, any dotfile."""
    return path.name.startswith(".") or path.name.endswith(".tmp") or ".tmp-" in path.name


def snapshot(data_root: Path) -> dict[str, object]:
    """Every non-temporary file under the data root: parquet as a frame (volatile columns dropped), else a hash."""
    out: dict[str, object] = {}
    for path in sorted(data_root.rglob("*")):
        if not path.is_file() or is_temporary(path):
            continue
        rel = path.relative_to(data_root).as_posix()
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            frame = frame.drop([c for c in _volatile(rel) if c in frame.columns])
            # Clip paths name the data root itself: compare them relative to it.
            roots = sorted({str(data_root), str(data_root.resolve())}, key=len, reverse=True)
            text = [c for c, t in frame.schema.items() if t == pl.String]
            for root in roots:
                frame = frame.with_columns(pl.col(text).str.replace_all(root, "<data root>", literal=True))
            out[rel] = frame
        else:
            out[rel] = _sha256(path)
    return out


def differences(reference: dict[str, object], other: dict[str, object]) -> list[str]:
    """Human-readable differences between two snapshots (empty: identical)."""
    problems = [f"missing {rel}" for rel in sorted(set(reference) - set(other))]
    problems += [f"extra {rel}" for rel in sorted(set(other) - set(reference))]
    for rel in sorted(set(reference) & set(other)):
        a, b = reference[rel], other[rel]
        if isinstance(a, pl.DataFrame) and isinstance(b, pl.DataFrame):
            if a.schema != b.schema:
                problems.append(f"{rel}: schema differs")
            elif a.height != b.height:
                problems.append(f"{rel}: {b.height} rows instead of {a.height}")
            elif not a.equals(b):
                cols = [c for c in a.columns if not a[c].equals(b[c])]
                problems.append(f"{rel}: columns differ: {', '.join(cols)}")
        elif a != b:
            problems.append(f"{rel}: content differs")
    return problems


def leftovers(data_root: Path) -> list[str]:
    """Temporary files anywhere under the data root (tables, exports, clips)."""
    return sorted(p.relative_to(data_root).as_posix() for p in data_root.rglob("*") if is_temporary(p))


def partial_files(data_root: Path) -> list[str]:
    """Files under their final name that are not whole: unreadable parquet, an mp4 ffprobe cannot read."""
    bad = []
    for path in sorted(data_root.rglob("*")):
        if not path.is_file() or is_temporary(path):
            continue
        if path.suffix == ".parquet":
            try:
                pq.read_metadata(path)
                pl.read_parquet(path)
            except Exception as e:  # noqa: BLE001 - any failure to read is the finding
                bad.append(f"{path.relative_to(data_root)}: {e}")
        elif path.suffix == ".mp4":
            done = subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", f"file:{path}"],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0 or done.stderr.strip():
                bad.append(f"{path.relative_to(data_root)}: {done.stderr.strip()[:200]}")
    return bad


def lineage_problems(data_root: Path, source: Path | str) -> list[str]:
    """Every video the source lists appears exactly once in lineage (export and table agree), none pending."""
    from openvid_assets.media.sources import list_videos

    path = data_root / "exports" / "lineage.parquet"
    if not path.is_file():
        return ["no exports/lineage.parquet"]
    lineage = pl.read_parquet(path)
    if not lineage.equals(pl.read_parquet(data_root / "tables" / "lineage" / "global.parquet")):
        return ["exports/lineage.parquet differs from tables/lineage/global.parquet"]
    listed = list_videos(str(source))
    counts = Counter(lineage["source_uri"].to_list())
    problems = [f"missing from lineage: {u!r}" for u in listed if counts[u] == 0]
    problems += [f"{n} times in lineage: {u!r}" for u, n in counts.items() if n > 1]
    problems += [f"in lineage but not in the source: {u!r}" for u in counts if u not in set(listed)]
    problems += [
        f"pending: {r['source_uri']!r} at {r['stage']}"
        for r in lineage.filter(pl.col("status") == "pending").iter_rows(named=True)
    ]
    return problems


def version_problems(data_root: Path) -> list[str]:
    """The volatile version columns agree within the data root: one thresholds version judged every shard."""
    tables = data_root / "tables"

    def values(asset: str, column: str) -> set[str]:
        files = sorted((tables / asset).glob("*.parquet"))
        if not files:
            return set()
        return {v for f in files for v in pl.read_parquet(f, columns=[column])[column].to_list() if v is not None}

    problems = []
    quality, clarity = values("score_thresholds", "version"), values("clarity_threshold", "version")
    for name, got, want in [
        ("score_thresholds.version", quality, None),
        ("clarity_threshold.version", clarity, None),
        ("quality_candidates.thresholds_version", values("quality_candidates", "thresholds_version"), quality),
        ("selected_videos.clarity_version", values("selected_videos", "clarity_version"), clarity),
        ("lineage.quality_version", values("lineage", "quality_version"), quality),
        ("lineage.clarity_version", values("lineage", "clarity_version"), clarity),
    ]:
        if len(got) > 1 or (want is not None and got and got != want):
            problems.append(f"{name}: {sorted(got)} (thresholds: {sorted(want or got)})")
    return problems


def instance_problems(dagster_home: Path, shards: list[str]) -> list[str]:
    """The Dagster instance tells the same story: every step materialized, no run left started, no pool slot held."""
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    problems = []
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for name in PER_SHARD:
            missing = sorted(set(shards) - set(instance.get_materialized_partitions(AssetKey(name))))
            if missing:
                problems.append(f"{name} not materialized for {', '.join(missing)}")
        for name in GLOBAL:
            if instance.get_latest_materialization_event(AssetKey(name)) is None:
                problems.append(f"{name} never materialized")
        stuck = [
            r.run_id[:8]
            for r in instance.get_runs()
            if r.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING)
        ]
        if stuck:
            problems.append(f"runs left started: {', '.join(stuck)}")
        try:
            held = instance.event_log_storage.get_concurrency_info("gpu").active_slot_count
        except Exception:  # noqa: BLE001 - an instance without pools has nothing to hold
            held = 0
        if held:
            problems.append(f"{held} gpu pool slot(s) still held")
    return problems


def shard_keys(data_root: Path) -> list[str]:
    return sorted(p.stem for p in (data_root / "tables" / "shard_lists").glob("*.parquet"))


# --------------------------------------------------------------------------- kill -9, then run again


@dataclass
class Trial:
    """One kill -9 and the re-run after it."""

    number: int
    kill_at_s: float
    killed_during: str = ""
    was_running: bool = True
    partial_after_kill: list[str] = field(default_factory=list)
    leftovers_after_kill: list[str] = field(default_factory=list)
    rerun_rc: int | None = None
    rerun_s: float = 0.0
    rerun_summary: str = ""
    differences: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    lineage: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    instance: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def identical(self) -> bool:
        return self.rerun_rc == 0 and not (
            self.differences or self.leftovers or self.lineage or self.versions or self.partial_after_kill
        )


def kill_then_rerun(
    number: int,
    source: Path,
    workdir: Path,
    shard_size: int,
    reference: dict[str, object],
    *,
    kill_at: float | str,
    timeout: float = 600,
    filters: bool = False,
) -> Trial:
    """Start a run in a fresh data root and instance, SIGKILL it at ``kill_at`` (seconds, or the first output
    line matching a regex), check what it left, run again to the end, and compare with ``reference``."""
    data, home = workdir / "data", make_dagster_home(workdir / "dagster_home")
    env = pipeline_env(home)
    args = run_args(source, data, shard_size, filters=filters)
    run = WatchedRun(args, env, workdir)
    if isinstance(kill_at, str):
        if not run.wait_for(kill_at, timeout):
            run.kill()
            raise AssertionError(f"never saw {kill_at!r} before the run ended:\n{run.output}")
    else:
        deadline = run.started + kill_at
        while time.monotonic() < deadline and run.proc.poll() is None:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    when, doing, alive = run.kill()
    trial = Trial(number, when, doing if alive else "(had already finished)", alive)
    trial.partial_after_kill = partial_files(data) if data.exists() else []
    trial.leftovers_after_kill = leftovers(data) if data.exists() else []
    trial.output = run.output
    rerun = run_to_end(args, env, workdir, timeout)
    trial.rerun_rc, trial.rerun_s = rerun.proc.returncode, rerun.elapsed
    trial.rerun_summary = next((line for _, line in rerun.lines if line.startswith("Done in")), "")
    trial.output += "\n--- re-run ---\n" + rerun.output
    if trial.rerun_rc == 0:
        trial.differences = differences(reference, snapshot(data))
        trial.leftovers = leftovers(data)
        trial.lineage = lineage_problems(data, source)
        trial.versions = version_problems(data)
        trial.instance = instance_problems(home, shard_keys(data))
    return trial


# --------------------------------------------------------------------------- parallel shard runs


def register(source: Path, data_root: Path, dagster_home: Path, shard_size: int) -> list[str]:
    """What ``openvid-assets register`` does, in this process: shard lists on disk, partitions in the instance."""
    from dagster import DagsterInstance

    from openvid_assets.assets.shards import register_partitions, store_new_shards
    from openvid_assets.store import TableStore

    tables = TableStore(str(data_root))
    store_new_shards(tables, str(source), shard_size)
    keys = sorted(p.stem for p in (data_root / "tables" / "shard_lists").glob("*.parquet"))
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        register_partitions(instance, keys)
    return keys


def materialize_args(assets: list[str], partition: str | None) -> list[str]:
    """``dagster asset materialize`` of some assets for one shard, steps in the run's own process."""
    args = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "openvid_assets.definitions",
        "--select",
        ",".join(assets),
        # One compute thread, as each run of the run command on a CPU machine: torch's float sums depend on
        # the thread count, and the outputs are compared with the command's bit for bit.
        "--config-json",
        json.dumps({"resources": {"models": {"config": {"threads": 1}}}}),
    ]
    return [*args, "--partition", partition] if partition else args


@dataclass
class ParallelResult:
    seconds: float
    return_codes: list[int]
    lock_errors: list[str]
    outputs: list[str]


def run_in_parallel(commands: list[list[str]], env: dict[str, str], cwd: Path, timeout: float = 600) -> ParallelResult:
    """Start every command at once (each its own process group) and wait for all of them."""
    started = time.monotonic()
    runs = [WatchedRun(args, env, cwd) for args in commands]
    codes = [run.wait(timeout) for run in runs]
    outputs = [run.output for run in runs]
    locks = [line for out in outputs for line in out.splitlines() if LOCK_ERRORS.search(line)]
    return ParallelResult(time.monotonic() - started, codes, locks, outputs)


# --------------------------------------------------------------------------- sources


def bench_source(out: Path) -> Path:
    """Ten inputs for the fault benchmark: seven decodable videos (cuts, fades, portrait, hostile names) and
    three broken files, so every step (clips and captions included) has real work to be killed in."""
    from openvid_assets import samples

    out.mkdir(parents=True, exist_ok=True)
    samples.static(out)
    samples.smooth_pan(out)
    samples.fast_motion(out)
    samples.hard_cuts(out)
    samples.fade_black(out)
    samples.portrait(out)
    samples.smooth_pan(out, samples.HOSTILE_NAMES[2], num_frames=48, seed=31)
    (out / "empty.mp4").write_bytes(b"")
    (out / "notes.mp4").write_bytes(b"not a video\n")
    samples.smooth_pan(out, "truncated.mp4", num_frames=48, seed=32)
    with open(out / "truncated.mp4", "r+b") as f:
        f.truncate(f.seek(0, 2) // 2)
    return out
