"""Engine benchmark: the run command through Dagster's queue with 1 and 2 workers, the cost of that path per
run against in-process execution, and start-up times.

All in one run on one machine (ratios; absolute times only mean something on a quiet machine or a GPU):

1. A source of ``--shards`` x ``--per-shard`` generated videos (pans and cuts, 320x180, 6 s at 24 fps).
2. ``openvid-assets run --workers 1`` and ``--workers 2`` (offline profile, weight-free motion and clarity
   backends, filters off so every video reaches clips and captions), each into a fresh data root and a
   fresh instance: wall time, and the speed-up of 2 workers over 1.
3. The same graph executed in-process (``execute_in_process``, one run per shard per wave, in this process:
   what the old run command did), on a fresh data root: wall time. (Dagster path with 1 worker - in-process)
   / runs = the cost of a queued run (launch, process start, code location load, event polling).
4. With ``--shards-per-run K``: ``run --workers 2`` again with ``OPENVID_SHARDS_PER_RUN=K`` (the per-shard steps'
   backfill policy): wall time and runs against one shard a run, on the same source (use many small shards,
   e.g. ``--shards 24 --per-shard 1``).
5. Start-up: ``openvid-assets --help`` and a run worker's load of the code location
   (``import openvid_assets.definitions``), each the median of 5 fresh processes.

    .venv/bin/python bench/bench_engine.py                 # 8 shards x 2 videos
    .venv/bin/python bench/bench_engine.py --shards 4      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._report import machine_facts, markdown
from openvid_assets_testing.harness import run_args


def make_source(out: Path, shards: int, per_shard: int) -> None:
    from openvid_assets import samples

    for i in range(shards * per_shard):
        if i % 2:
            samples.hard_cuts(out, f"cuts_{i:03d}.mp4", scene_frames=(72, 72), width=320, height=180, seed=i)
        else:
            samples.smooth_pan(out, f"pan_{i:03d}.mp4", num_frames=144, width=320, height=180, seed=i)


def busy_cpu_s() -> float:
    """CPU seconds this machine has spent busy since boot (every process: the command's daemon, code server and
    run workers are not all its waited-for children, so its own rusage would miss some)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def run_command(
    source: Path, work: Path, per_shard: int, workers: int, shards_per_run: int = 1
) -> tuple[float, float, int]:
    """Wall time, CPU time of the machine meanwhile (command, daemon, code server, run workers), runs."""
    from openvid_assets_testing.harness import make_dagster_home

    label = f"w{workers}_k{shards_per_run}"
    home = make_dagster_home(work / f"home_{label}")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "OPENVID_SHARDS_PER_RUN": str(shards_per_run),
    }
    cpu = busy_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        [*run_args(source, work / f"data_{label}", per_shard), "--workers", str(workers)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds, cpu = time.perf_counter() - started, busy_cpu_s() - cpu
    if done.returncode != 0:
        raise SystemExit(f"run --workers {workers} failed:\n{done.stdout}\n{done.stderr}")
    runs = int(done.stdout.rsplit(" run(s) ok", 1)[0].rsplit(" ", 1)[1])
    return seconds, cpu, runs


def in_process(source: Path, work: Path, per_shard: int) -> tuple[float, int]:
    from dagster import DagsterInstance

    from openvid_assets.definitions import build_definitions
    from openvid_assets_testing.pipeline import materialize_pipeline, register_shards, store_recipe

    data = work / "data_inprocess"
    store_recipe(
        str(data),
        models={"profile": "offline", "motion_backend": "farneback", "clarity_backend": "laplacian"},
        selection={"thresholds_off": True},
    )
    defs = build_definitions(str(data))
    started = time.perf_counter()
    with DagsterInstance.ephemeral() as instance:
        register_shards(defs, instance, str(source), per_shard)
        runs = materialize_pipeline(defs, instance)
    return time.perf_counter() - started, runs


def startup(args: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def batching_only(args: argparse.Namespace) -> None:
    """One shard a run against ``--shards-per-run`` shards a run, both ``run --workers 2`` on one source."""
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        work = Path(tmp)
        make_source(work / "src", args.shards, args.per_shard)
        one, _, runs1 = run_command(work / "src", work, args.per_shard, 2)
        batched, _, runs_k = run_command(work / "src", work, args.per_shard, 2, args.shards_per_run)
    for key, value in machine_facts().items():
        print(f"{key}: {value}")
    rows = [
        ["one shard a run", f"{one:.1f} s", str(runs1)],
        [f"{args.shards_per_run} shards a run", f"{batched:.1f} s", str(runs_k)],
    ]
    print(markdown(["`run --workers 2`, " + f"{args.shards} shards x {args.per_shard} videos", "wall", "runs"], rows))
    print(f"\n{args.shards_per_run} shards a run vs one: {one / batched:.2f}x ({runs_k} runs against {runs1})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--per-shard", type=int, default=2)
    parser.add_argument(
        "--shards-per-run",
        type=int,
        default=0,
        help="also run --workers 2 with this many shards a run (OPENVID_SHARDS_PER_RUN)",
    )
    parser.add_argument(
        "--batching-only",
        action="store_true",
        help="with --shards-per-run: only the two --workers 2 runs (one shard a run, K a run)",
    )
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    if args.batching_only:
        if args.shards_per_run < 2:
            parser.error("--batching-only needs --shards-per-run K (K >= 2)")
        return batching_only(args)

    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        work = Path(tmp)
        make_source(work / "src", args.shards, args.per_shard)
        one, cpu1, runs1 = run_command(work / "src", work, args.per_shard, 1)
        two, cpu2, runs2 = run_command(work / "src", work, args.per_shard, 2)
        if args.shards_per_run > 1:
            batched, _, batched_runs = run_command(work / "src", work, args.per_shard, 2, args.shards_per_run)
        local, local_runs = in_process(work / "src", work, args.per_shard)
    cli = startup([sys.executable, "-m", "openvid_assets", "--help"])
    worker = startup([sys.executable, "-c", "import openvid_assets.definitions"])

    numbers = {
        "shards": args.shards,
        "videos": args.shards * args.per_shard,
        "runs": runs1,
        "workers_1_s": round(one, 1),
        "workers_2_s": round(two, 1),
        "speedup_2_over_1": round(one / two, 2),
        # Cores kept busy on average (the machine's CPU time / wall; run it on an otherwise idle machine). With 1 worker it is above 1 (the daemon,
        # code server and command use another core): the machine's cores / that bounds what more workers gain.
        "workers_1_cores_busy": round(cpu1 / one, 2),
        "workers_2_cores_busy": round(cpu2 / two, 2),
        "speedup_bound": round((os.cpu_count() or 1) / (cpu1 / one), 2),
        "in_process_s": round(local, 1),
        "dagster_over_in_process": round(one / local, 2),
        "overhead_per_run_s": round((one - local) / max(runs1, 1), 2),
        "cli_help_s": round(cli, 2),
        "worker_load_s": round(worker, 2),
    }
    if args.shards_per_run > 1:
        numbers.update(
            {
                "shards_per_run": args.shards_per_run,
                "batched_workers_2_s": round(batched, 1),
                "batched_runs": batched_runs,
                "speedup_batched_over_one_shard_a_run": round(two / batched, 2),
            }
        )
    for key, value in machine_facts().items():
        print(f"{key}: {value}")
    print(markdown(["measure", "value"], [[k, str(v)] for k, v in numbers.items()]))
    print(
        f"\n2 workers vs 1: {numbers['speedup_2_over_1']}x (target >= 1.6x; at most {numbers['speedup_bound']}x "
        f"here, with 1 worker keeping {numbers['workers_1_cores_busy']} cores busy); Dagster path vs in-process: "
        f"{numbers['dagster_over_in_process']}x, {numbers['overhead_per_run_s']} s per run ({runs1} runs, "
        f"{runs2} with 2 workers, {local_runs} in-process)"
    )
    if args.shards_per_run > 1:
        print(
            f"{args.shards_per_run} shards a run vs one (2 workers): {numbers['speedup_batched_over_one_shard_a_run']}x "
            f"({batched_runs} runs against {runs2})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
