"""How good the estimates are: each per-shard step's cost estimated from history, against what it then took.

1. Source A (generated, ``--videos`` videos in shards of ``--shard-size``) runs through the whole pipeline
   in-process; its runs are the history.
2. Source B (the same kinds of video, other seeds) is estimated from A's history (``openvid-assets estimate``'s
   arithmetic: B's listed videos x the pass rates of A's lineage x A's seconds per video of each step), then run;
   per step, estimated / actual seconds, of wall time (Dagster's step durations) and of CPU (what the steps
   record).
3. The second half of B's shards estimated from B's first half (what the run command's time left does once a few
   shards are done), against what they took.

With ``--write-shipped`` the measured costs of A and B together become ``openvid_assets/recipes/step_costs.json``
(the table the estimates use where an instance has no history yet), labelled with this machine.

    .venv/bin/python -m bench.bench_estimate                  # 2 x 16 videos, shards of 4 (~6 min on 2 cores)
    .venv/bin/python -m bench.bench_estimate --write-shipped
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from dagster import DagsterInstance

from bench._report import machine_facts, markdown
from openvid_assets import samples
from openvid_assets.assets.history import (
    SHIPPED_COSTS,
    STEP_UNITS,
    estimate_steps,
    history_pass_rates,
    measured_costs,
    reach_of,
    step_samples,
)
from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.definitions import build_definitions
from openvid_assets.media.survey import survey_source
from openvid_assets.store import TableStore
from openvid_assets_testing.pipeline import materialize_pipeline, store_recipe

RECIPE = {
    "models": {"profile": "offline"},
    "selection": {"aesthetic": "top:50", "temporal": "off", "motion": "off", "clarity": "top:50"},
    "filters": {"near_duplicate": "off"},
}


def write_source(folder: Path, videos: int, seed: int) -> None:
    folder.mkdir(parents=True)
    for k in range(videos):
        samples.smooth_pan(
            folder, f"pan_{k}.mp4", width=320, height=180, num_frames=72, seed=seed + k, px_per_frame=1 + k % 4
        )


def actual_seconds(instance: DagsterInstance, shards: set[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Per step, the wall seconds and the CPU seconds its runs within ``shards`` took."""
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for step, _, seconds, cpu_seconds in step_samples(instance, limit=1000, only=shards):
        wall[step] = wall.get(step, 0.0) + seconds
        cpu[step] = cpu.get(step, 0.0) + (cpu_seconds or 0.0)
    return wall, cpu


def units_of(tables: TableStore, shards: set[str]) -> dict[str, float]:
    part = reach_of(tables.scan_source("lineage", ["global"]), sorted(shards))
    return {u: float(part[u].sum()) for u in ("input", "candidate", "selected", "clip")}


HEADER = ["step", "estimated", "actual", "ratio", "CPU estimated", "CPU actual", "CPU ratio"]


def compare_rows(estimated: tuple[dict, dict], actual: tuple[dict, dict]) -> list[list[str]]:
    """Per step (and the total): estimated and actual seconds and their ratio, of wall time, then of CPU."""
    rows = []
    for step in [*STEP_UNITS, "total"]:
        row = [step]
        for guess, took in zip(estimated, actual):
            e = sum(guess.values()) if step == "total" else guess.get(step)
            a = sum(took.values()) if step == "total" else took.get(step)
            ok = e is not None and a
            row += [f"{e:.2f}", f"{a:.2f}", f"{e / a:.2f}"] if ok else ["", "", ""]
        if any(row[1:]):
            rows.append(row)
    return rows


def estimated_seconds(costs, videos: int, hours: float, rates) -> tuple[dict[str, float], dict[str, float]]:
    """Per step, the wall and CPU seconds ``estimate_steps`` gives ``videos`` at ``rates`` by ``costs``."""
    estimate = estimate_steps(videos, hours, rates, costs, 1, None)
    return tuple({s: v for s, v in zip(estimate["step"], estimate[c]) if v is not None} for c in ("compute_s", "cpu_s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16, help="videos of each source")
    parser.add_argument("--shard-size", type=int, default=4)
    parser.add_argument("--write-shipped", action="store_true", help="store the measured costs as the shipped table")
    args = parser.parse_args()
    for key, value in machine_facts().items():
        print(f"{key}: {value}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_source(root / "a", args.videos, 100)
        write_source(root / "b", args.videos, 500)
        data = root / "data"
        store_recipe(str(data), RECIPE)
        tables, defs = TableStore(str(data)), build_definitions(str(data))
        with DagsterInstance.ephemeral() as instance:
            _, shards_a, _ = register_source(tables, str(root / "a"), args.shard_size)
            instance.add_dynamic_partitions(shards_partitions.name, shards_a)
            materialize_pipeline(defs, instance)
            lineage = tables.scan_source("lineage", ["global"])
            history = measured_costs(instance, lineage, limit=1000, only=set(shards_a))
            rates = history_pass_rates(lineage)
            survey = survey_source(str(root / "b"))
            estimated_b = estimated_seconds(history, survey.videos, survey.hours, rates)

            _, shards_b, _ = register_source(tables, str(root / "b"), args.shard_size)
            instance.add_dynamic_partitions(shards_partitions.name, shards_b)
            materialize_pipeline(defs, instance)
            actual_b = actual_seconds(instance, set(shards_b))
            print(f"\n1. Source B ({survey.videos} videos) estimated from source A's history, then run (seconds):")
            print(markdown(HEADER, compare_rows(estimated_b, actual_b)))
            took = units_of(tables, set(shards_b))
            guessed = {u: survey.videos * rates.share(u) for u in took}
            print("units, estimated / actual: " + ", ".join(f"{u} {guessed[u]:.1f} / {took[u]:.0f}" for u in took))

            first, second = set(shards_b[: len(shards_b) // 2]), set(shards_b[len(shards_b) // 2 :])
            lineage = tables.scan_source("lineage", ["global"])
            from_first = measured_costs(instance, lineage, limit=1000, only=first)
            part = reach_of(lineage, sorted(second))  # its own videos and pass rates: only the costs are estimated
            estimated_rest = estimated_seconds(
                from_first,
                int(part["input"].sum()),
                float(part["input_hours"].sum()),
                history_pass_rates(lineage, sorted(second)),
            )
            print(f"\n2. The second half of B's shards ({len(second)}) estimated from its first half (seconds):")
            print(markdown(HEADER, compare_rows(estimated_rest, actual_seconds(instance, second))))
            if args.write_shipped:
                both = measured_costs(instance, lineage, limit=1000)
                facts = machine_facts()
                table = {
                    "measured_on": f"{facts.get('CPU', 'CPU')}, {facts.get('CPU count', '')} cores, CPU only, "
                    f"bench/bench_estimate.py, {args.videos * 2} generated 320x180 videos",
                    "profiles": {
                        "offline": {
                            r["step"]: {"seconds": round(r["seconds_per_unit"], 4)}
                            | (
                                {"cpu_seconds": round(r["cpu_seconds_per_unit"], 4)}
                                if r["cpu_seconds_per_unit"]
                                else {}
                            )
                            for r in both.iter_rows(named=True)
                        }
                    },
                }
                SHIPPED_COSTS.write_text(json.dumps(table, indent=1) + "\n")
                print(f"\nwrote {SHIPPED_COSTS}")


if __name__ == "__main__":
    main()
