"""Fault benchmark: kill -9 the run command at random times, run it again, compare with an uninterrupted run.

The requirement (issue "Operating at scale"): "Kill -9 a shard run at random points (20 trials):
after a re-run the outputs are identical to an uninterrupted run, with no partial files", and "four
shard runs in parallel processes against the same data root: no lock errors, no lost rows".

What runs (all real: subprocesses, ffmpeg-made videos, an on-disk SQLite Dagster instance configured
like the project's dagster.yaml, SIGKILL to the whole process group):

1. A source of ten inputs (``harness.bench_source``: seven decodable videos with cuts, a fade, a
   portrait and a unicode name, three broken files), written once.
2. A reference: ``python -m openvid_assets run --source S --data-root D --models offline
   --shard-size 3 --no-filters`` (four shards; ``--filters`` keeps the paper's rules instead, so
   fewer videos reach clips and captions), uninterrupted, timed. Motion and clarity use the
   weight-free backends (``--motion-backend farneback --clarity-backend laplacian``, stored in the recipe).
3. ``--trials`` times: the same command in a fresh data root and instance, SIGKILLed (process group)
   at a seeded uniform random time in [0, 0.9 x reference time); what it was doing is read from its
   progress lines. Files under final names must be whole (parquet readable, mp4 probed). Then the
   same command again, to the end, and the data root is compared with the reference: every table,
   export and clip file (parquet as frames without the threshold-version columns, which hash file
   times by design; clip paths relative to the data root; everything else byte for byte). Also: no
   temporary file anywhere under the data root (clips included), lineage has every listed input
   exactly once and nothing pending, one thresholds version everywhere, and the instance shows every
   step materialized, no run left "started", no pool slot held.
4. ``--parallel N``: N rounds of four concurrency scenarios against one data root and one SQLite
   instance, each compared with the reference as above, every output searched for lock errors:
   (a) the pipeline with every per-shard wave run as four parallel processes, one per shard
   (``dagster asset materialize ... --partition shard-0000k``, as a backfill or the new-videos sensor
   launches them) and the global steps between them as one process; (b) four whole run commands
   started at once on the same source (two people or two cron jobs running it at the same time), on
   an instance already used once; (c) the same on a brand-new instance folder; (d) four different
   sources registered into one data root at the same moment (what four run commands on four folders
   do first): every listed video must end up in exactly one shard list.

Run from the repository root (about 20 minutes for 20 trials on 2 idle cores):

    .venv/bin/python bench/bench_faults.py                           # 20 trials, seed 0
    .venv/bin/python bench/bench_faults.py --trials 3 --parallel 1   # a quick look at both
    .venv/bin/python bench/bench_faults.py --workdir /tmp/bf --keep  # keep every data root

On a shared machine the times move with the load; the identical / not identical verdicts do not.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from openvid_assets_testing.harness import (
    FAST_FLAGS,
    differences,
    instance_problems,
    kill_then_rerun,
    leftovers,
    lineage_problems,
    make_dagster_home,
    materialize_args,
    pipeline_env,
    register,
    run_args,
    run_in_parallel,
    run_to_end,
    shard_keys,
    snapshot,
    version_problems,
    bench_source,
)

warnings.filterwarnings("ignore")  # Dagster's beta warnings when this process loads the definitions


def _problems(data: Path, home: Path, source: Path, reference: dict) -> list[str]:
    return (
        differences(reference, snapshot(data))
        + [f"left over: {p}" for p in leftovers(data)]
        + lineage_problems(data, source)
        + version_problems(data)
        + [f"instance: {p}" for p in instance_problems(home, shard_keys(data))]
    )


def _waves(filters: bool) -> list[tuple[bool, list[str]]]:
    """The run command's waves, from the real graph: (per shard?, asset names)."""
    from openvid_assets.assets.engine import plan_waves
    from openvid_assets.definitions import build_definitions

    return [(w.per_shard, [k.path[-1] for k in w.keys]) for w in plan_waves(build_definitions())]


def parallel_shard_runs(source: Path, workdir: Path, shard_size: int, reference: dict, filters: bool) -> dict:
    """Every per-shard wave as one process per shard, all at once; global waves as one process."""
    data, home = workdir / "data", make_dagster_home(workdir / "dagster_home")
    shards = register(source, data, home, shard_size)
    env = pipeline_env(home, OPENVID_DATA_ROOT=str(data))
    # The recipe the reference run used, stored first: every `dagster asset materialize` below reads it.
    recipe = [
        *run_args(source, data, shard_size, filters=filters)[:3],
        "recipe",
        "--data-root",
        str(data),
        *FAST_FLAGS,
    ]
    subprocess.run(
        recipe + ([] if filters else ["--set", "selection.thresholds_off=true"]),
        env=env,
        check=True,
        capture_output=True,
    )
    started, codes, locks, waves = time.monotonic(), [], [], []
    for per_shard, assets in _waves(filters):
        commands = [materialize_args(assets, s) for s in shards] if per_shard else [materialize_args(assets, None)]
        result = run_in_parallel(commands, env, workdir)
        codes += result.return_codes
        locks += result.lock_errors
        waves.append(f"{len(commands)}x{'+'.join(assets)} {result.seconds:.0f}s")
        if any(result.return_codes):
            print("\n\n".join(result.outputs)[-4000:])
            break
    seconds = time.monotonic() - started
    problems = _problems(data, home, source, reference) if not any(codes) else ["a run failed"]
    return {
        "scenario": "4 shard runs per wave",
        "seconds": seconds,
        "processes": len(codes),
        "failed": sum(c != 0 for c in codes),
        "lock_errors": locks,
        "problems": problems,
        "waves": waves,
    }


def concurrent_commands(
    source: Path, workdir: Path, shard_size: int, reference: dict, filters: bool, fresh_instance: bool
) -> dict:
    """Four whole run commands started at once on the same source, data root and instance (new or already used)."""
    data, home = workdir / "data", make_dagster_home(workdir / "dagster_home")
    if not fresh_instance:
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs()  # creates the SQLite schema, as any earlier command or `dagster dev` would have
    result = run_in_parallel([run_args(source, data, shard_size, filters=filters)] * 4, pipeline_env(home), workdir)
    failures = []
    for code, out in zip(result.return_codes, result.outputs):
        if code:
            lines = [line for line in out.splitlines() if "Error" in line and not line.startswith(" ")]
            failures.append((lines or out.splitlines() or ["?"])[-1][:200])
    problems = _problems(data, home, source, reference) if not failures else []
    return {
        "scenario": f"4 run commands at once, {'new' if fresh_instance else 'used'} instance",
        "seconds": result.seconds,
        "processes": 4,
        "failed": len(failures),
        "lock_errors": result.lock_errors,
        "problems": problems + failures,
        "waves": [],
    }


def _register_one(root: str, index: int, videos: int, shard_size: int, start_at: float) -> str:
    from openvid_assets.store import TableStore
    from openvid_assets.store.shards import ShardRegistry

    uris = [f"/sources/{index}/video{j:04d}.mp4" for j in range(videos)]
    while time.time() < start_at:
        pass
    try:
        ShardRegistry(TableStore(root)).register(f"/sources/{index}", uris, shard_size)
        return ""
    except Exception as e:  # noqa: BLE001 - reported
        return f"{type(e).__name__}: {e}"[:160]


def concurrent_registrations(workdir: Path, processes: int = 4, videos: int = 25, shard_size: int = 10) -> dict:
    """Four sources registered into one data root at the same moment (what four run commands on four
    folders do first): every listed URI must end up in exactly one stored shard list."""
    from openvid_assets.store import TableStore
    from openvid_assets.store.shards import ShardRegistry

    root = str(workdir / "data")
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        start_at = time.time() + 3.0
        errors = [
            e
            for e in pool.starmap(_register_one, [(root, i, videos, shard_size, start_at) for i in range(processes)])
            if e
        ]
    tables = TableStore(root)
    stored = Counter(u for k in ShardRegistry(tables).keys() for u in tables.read("shard_lists", k)["source_uri"])
    listed = processes * videos
    lost = listed - len(stored)
    problems = ([f"{lost} of {listed} listed videos in no shard list"] if lost else []) + errors
    problems += [f"{sum(n > 1 for n in stored.values())} videos in two shard lists"] if max(stored.values()) > 1 else []
    return {
        "scenario": "4 registrations at once",
        "seconds": time.monotonic() - started,
        "processes": processes,
        "failed": len(errors),
        "lock_errors": [],
        "problems": problems,
        "waves": [],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-size", type=int, default=3)
    parser.add_argument("--filters", action="store_true", help="paper selection rules instead of --no-filters")
    parser.add_argument("--parallel", type=int, default=0, help="rounds of each parallel scenario (default 0)")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep each trial's data root and instance")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"# bench_faults: {args.trials} trials, seed {args.seed}, shard size {args.shard_size}, "
        f"{'paper rules' if args.filters else '--no-filters'}; {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}; workdir {workdir}",
        flush=True,
    )
    source = workdir / "src"
    if not source.exists():
        bench_source(source)
    inputs = sum(1 for p in source.rglob("*") if p.is_file())

    ref_dir = workdir / "reference"
    shutil.rmtree(ref_dir, ignore_errors=True)
    ref_dir.mkdir()
    ref_home = make_dagster_home(ref_dir / "dagster_home")
    ref_run = run_to_end(
        run_args(source, ref_dir / "data", args.shard_size, filters=args.filters), pipeline_env(ref_home), ref_dir
    )
    if ref_run.proc.returncode != 0:
        print(ref_run.output)
        return 1
    reference = snapshot(ref_dir / "data")
    ref_problems = (
        leftovers(ref_dir / "data")
        + lineage_problems(ref_dir / "data", source)
        + instance_problems(ref_home, shard_keys(ref_dir / "data"))
    )
    steps = [(t, line.strip()) for t, line in ref_run.lines if line.startswith("Step ")]
    summary = next((line for _, line in ref_run.lines if line.startswith("Done in")), "")
    print(
        f"Reference: {inputs} inputs, {len(shard_keys(ref_dir / 'data'))} shards, {len(reference)} files, "
        f"{ref_run.elapsed:.1f}s wall ({summary}); problems: {ref_problems or 'none'}"
    )
    for t, line in steps:
        print(f"  t={t:5.1f}s  {line}")
    print(flush=True)

    rng = random.Random(args.seed)
    kill_times = [round(rng.uniform(0.0, 0.9 * ref_run.elapsed), 2) for _ in range(args.trials)]
    header = f"{'trial':>5} {'kill at':>8}  {'running at the kill':<38} {'tmp left':>8} {'re-run':>7} {'re-run s':>8} {'skipped':>8}  identical"
    print(header)
    print("-" * len(header), flush=True)
    trials = []
    for number, kill_at in enumerate(kill_times, start=1):
        trial_dir = workdir / f"trial-{number:02d}"
        shutil.rmtree(trial_dir, ignore_errors=True)
        trial_dir.mkdir()
        trial = kill_then_rerun(
            number, source, trial_dir, args.shard_size, reference, kill_at=kill_at, filters=args.filters
        )
        skipped = trial.rerun_summary.split(" failed, ")[-1].split(" shard step")[0] if trial.rerun_summary else "-"
        notes = trial.differences + trial.leftovers + trial.lineage + trial.versions + trial.partial_after_kill
        notes += [f"instance: {p}" for p in trial.instance]
        print(
            f"{number:>5} {trial.kill_at_s:>7.1f}s  {trial.killed_during[:38]:<38} {len(trial.leftovers_after_kill):>8} "
            f"{'ok' if trial.rerun_rc == 0 else f'rc {trial.rerun_rc}':>7} {trial.rerun_s:>8.1f} {skipped:>8}  "
            f"{'yes' if trial.identical else 'NO'}{'  ' + '; '.join(notes)[:300] if notes else ''}",
            flush=True,
        )
        if trial.rerun_rc != 0:
            print(trial.output[-3000:])
        trials.append(trial)
        if not args.keep:
            shutil.rmtree(trial_dir, ignore_errors=True)

    identical = sum(t.identical for t in trials)
    rerun_s = [t.rerun_s for t in trials]
    print()
    print(
        f"Identical after re-run: {identical}/{len(trials)}; re-run exit 0: "
        f"{sum(t.rerun_rc == 0 for t in trials)}/{len(trials)}; temporary files left after the re-run: "
        f"{sum(bool(t.leftovers) for t in trials)}; partial files after a kill: "
        f"{sum(bool(t.partial_after_kill) for t in trials)}; instance problems: {sum(bool(t.instance) for t in trials)}"
    )
    if trials:
        print(
            f"Re-run time: median {statistics.median(rerun_s):.1f}s, min {min(rerun_s):.1f}s, max {max(rerun_s):.1f}s "
            f"(uninterrupted: {ref_run.elapsed:.1f}s); trials whose kill left temporary files (cleaned by the "
            f"re-run): {sum(bool(t.leftovers_after_kill) for t in trials)}"
        )
        where = Counter(t.killed_during.split(" [")[0].removeprefix("after ") for t in trials)
        print("Killed during: " + ", ".join(f"{k} x{v}" for k, v in where.most_common()))

    parallel = []
    scenarios = [
        ("shard_runs", lambda d: parallel_shard_runs(source, d, args.shard_size, reference, args.filters)),
        (
            "commands_used",
            lambda d: concurrent_commands(source, d, args.shard_size, reference, args.filters, fresh_instance=False),
        ),
        (
            "commands_new",
            lambda d: concurrent_commands(source, d, args.shard_size, reference, args.filters, fresh_instance=True),
        ),
        ("registrations", lambda d: concurrent_registrations(d)),
    ]
    for round_ in range(1, args.parallel + 1):
        for name, scenario in scenarios:
            sdir = workdir / f"{name}-{round_}"
            shutil.rmtree(sdir, ignore_errors=True)
            sdir.mkdir()
            result = scenario(sdir)
            parallel.append(result)
            print(
                f"{result['scenario']:<38} round {round_}: {result['processes']} processes, {result['failed']} failed, "
                f"{len(result['lock_errors'])} SQLite errors, {result['seconds']:.1f}s wall, every row: "
                f"{'yes' if not result['problems'] else 'NO: ' + '; '.join(result['problems'])[:400]}"
                f"{'  [' + ', '.join(result['waves']) + ']' if result['waves'] else ''}",
                flush=True,
            )
            for line in result["lock_errors"][:3]:
                print(f"    {line[:200]}")
            if not args.keep:
                shutil.rmtree(sdir, ignore_errors=True)

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "reference_s": ref_run.elapsed,
                    "inputs": inputs,
                    "shard_size": args.shard_size,
                    "seed": args.seed,
                    "trials": [
                        {
                            "trial": t.number,
                            "kill_at_s": t.kill_at_s,
                            "killed_during": t.killed_during,
                            "tmp_left_by_kill": len(t.leftovers_after_kill),
                            "rerun_rc": t.rerun_rc,
                            "rerun_s": t.rerun_s,
                            "identical": t.identical,
                            "problems": t.differences + t.leftovers + t.lineage + t.versions + t.instance,
                        }
                        for t in trials
                    ],
                    "parallel": parallel,
                },
                indent=2,
            )
        )
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = identical == len(trials) and all(not r["problems"] and not r["lock_errors"] for r in parallel)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
