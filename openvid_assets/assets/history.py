"""What each step costs on this machine, from the runs Dagster recorded; what a recipe will cost on a source; and
how long the rest of a run command's work will take.

A per-shard step's cost is measured per video it works on: every input video for the scores and the previews,
the candidates for clarity, the selected videos for clips, the clips for captions and their checks (the lineage says
how many of each a shard had: ``sql/step_reach.sql``). The step durations are Dagster's (each successful run's
step stats), over the latest runs only: the work is bounded whatever the number of shards. Where this instance
has no history yet, a shipped table measured by ``bench/bench_estimate.py`` on a named machine stands in, and
says so.

Each per-shard step also records the CPU seconds it used (``assets/measured.py``: its process and the subprocesses it
waited for, such as ffmpeg) in its materialization's metadata. Unlike a duration, CPU time hardly moves when other
work shares the machine, so the estimate gives the CPU-seconds each step will use beside its wall time.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from openvid_assets.assets.measured import CPU_SECONDS
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.store import run_sql

# Which videos each per-shard step works on (sql/step_reach.sql's columns).
STEP_UNITS = {
    "video_manifest": "input",
    "codec_motion": "input",
    "frame_embeddings": "input",
    "aesthetic_scores": "input",
    "temporal_scores": "input",
    "content_scores": "input",
    "motion_scores": "input",
    "suitability_scores": "input",
    "quality_candidates": "input",
    "clarity_scores": "candidate",
    "selected_videos": "input",
    "clips": "selected",
    "previews": "input",  # every readable video, and its clips (a few more)
    "captions": "clip",
    "caption_checks": "clip",
}
MODEL_STEPS = ("frame_embeddings", "aesthetic_scores", "motion_scores", "clarity_scores", "captions", "caption_checks")
SHIPPED_COSTS = Path(__file__).parent.parent / "recipes" / "step_costs.json"
MIN_RUNS = 3  # fewer measured runs of a step: the shipped table stands in for it
ESTIMATE_GROUP = "estimates"  # the asked-for group of the recipe_estimate asset (assets/estimate.py)
ESTIMATE_SCHEMA = {
    "step": pl.String,
    "works_on": pl.String,
    "units": pl.Float64,
    "hours": pl.Float64,
    "compute_s": pl.Float64,
    "cpu_s": pl.Float64,
    "wall_s": pl.Float64,
    "device_hours": pl.Float64,
    "cost": pl.Float64,
    "cost_from": pl.String,
}
COST_SCHEMA = {
    "step": pl.String,
    "unit": pl.String,
    "seconds_per_unit": pl.Float64,
    "p10": pl.Float64,
    "p90": pl.Float64,
    "seconds_per_input_hour": pl.Float64,
    "cpu_seconds_per_unit": pl.Float64,
    "runs": pl.Int64,
    "origin": pl.String,
}


def run_shards(tags: dict[str, str], order: dict[str, int], keys: list[str]) -> list[str]:
    """The shard partitions a run covered: its partition, or its range in the partitions' order."""
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start in order and end in order:
        return keys[order[start] : order[end] + 1]
    return []


def step_cpu(instance: DagsterInstance, steps: set[str], limit: int) -> dict[tuple[str, str], float]:
    """(step, run id) -> the CPU seconds the step recorded, from each step's latest ``limit`` materializations (a
    run of several shards records its one figure on each)."""
    cpu = {}
    for step in steps:
        for record in instance.fetch_materializations(AssetKey(step), limit=limit).records:
            value = record.asset_materialization.metadata.get(CPU_SECONDS)
            if value is not None:
                cpu.setdefault((step, record.run_id), float(value.value))
    return cpu


def step_samples(
    instance: DagsterInstance, limit: int = 100, only: set[str] | None = None
) -> list[tuple[str, list[str], float, float | None]]:
    """(step, the shards its run covered, seconds, CPU seconds or None) of every per-shard step of the latest
    ``limit`` successful runs (``only``: of runs within these shards)."""
    keys = instance.get_dynamic_partitions(shards_partitions.name)
    order = {k: i for i, k in enumerate(keys)}
    samples = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]), limit=limit):
        shards = run_shards(record.dagster_run.tags, order, keys)
        if not shards or (only is not None and not set(shards) <= only):
            continue
        for stat in instance.get_run_step_stats(record.dagster_run.run_id):
            if stat.step_key in STEP_UNITS and stat.start_time and stat.end_time:
                samples.append((stat.step_key, shards, stat.end_time - stat.start_time, stat.run_id))
    cpu = step_cpu(instance, {step for step, *_ in samples}, limit)
    return [(step, shards, seconds, cpu.get((step, run))) for step, shards, seconds, run in samples]


def measured_costs(
    instance: DagsterInstance, lineage: object, limit: int = 100, only: set[str] | None = None
) -> pl.DataFrame:
    """Per step: seconds per video it worked on (median over the latest ``limit`` successful shard runs, with p10
    and p90 across them), seconds per hour of input video, CPU seconds per video (median over the runs that
    recorded it), and how many runs measured it. ``lineage``: what DuckDB reads for the lineage table (the videos
    each shard had at each step); ``only``: runs within these shards."""
    samples = step_samples(instance, limit, only)
    if not samples:
        return pl.DataFrame(schema=COST_SCHEMA)
    sampled = sorted({shard for _, shards, _, _ in samples for shard in shards})
    reach = {r["shard"]: r for r in reach_of(lineage, sampled).iter_rows(named=True)}
    per_unit: dict[str, list[float]] = {}
    per_hour: dict[str, list[float]] = {}
    cpu_per_unit: dict[str, list[float]] = {}
    for step, shards, seconds, cpu in samples:
        known = [reach[s] for s in shards if s in reach]
        units = sum(r[STEP_UNITS[step]] for r in known)
        hours = sum(r["input_hours"] for r in known)
        if units:
            per_unit.setdefault(step, []).append(seconds / units)
            if cpu is not None:
                cpu_per_unit.setdefault(step, []).append(cpu / units)
        if hours:
            per_hour.setdefault(step, []).append(seconds / hours)
    rows = []
    for step, values in per_unit.items():
        cut = statistics.quantiles(values, n=10) if len(values) > 1 else [values[0]] * 9
        rows.append(
            {
                "step": step,
                "unit": STEP_UNITS[step],
                "seconds_per_unit": statistics.median(values),
                "p10": cut[0],
                "p90": cut[-1],
                "seconds_per_input_hour": statistics.median(per_hour[step]) if step in per_hour else None,
                "cpu_seconds_per_unit": statistics.median(cpu_per_unit[step]) if step in cpu_per_unit else None,
                "runs": len(values),
                "origin": "this instance",
            }
        )
    return pl.DataFrame(rows, schema=COST_SCHEMA).sort("step")


def shipped_costs(profile: str) -> pl.DataFrame:
    """The shipped table's costs for a model profile (empty when it has none)."""
    table = json.loads(SHIPPED_COSTS.read_text())
    steps = table["profiles"].get(profile, {})
    rows = [
        {
            "step": step,
            "unit": STEP_UNITS[step],
            "seconds_per_unit": cost["seconds"],
            "p10": None,
            "p90": None,
            "seconds_per_input_hour": None,
            "cpu_seconds_per_unit": cost.get("cpu_seconds"),
            "runs": 0,
            "origin": "shipped table",
        }
        for step, cost in steps.items()
        if step in STEP_UNITS
    ]
    return pl.DataFrame(rows, schema=COST_SCHEMA)


def shipped_machine() -> str:
    """Where the shipped table was measured."""
    return json.loads(SHIPPED_COSTS.read_text())["measured_on"]


def step_costs(measured: pl.DataFrame, profile: str) -> pl.DataFrame:
    """Every per-shard step's cost: measured where at least ``MIN_RUNS`` runs measured it, else shipped."""
    good = measured.filter(pl.col("runs") >= MIN_RUNS)
    shipped = shipped_costs(profile).filter(~pl.col("step").is_in(good["step"].implode()))
    return pl.concat([good, shipped]).sort("step")


@dataclass(frozen=True)
class PassRates:
    """Of every input video, the share each kind of step works on (clips: per input video), and where from."""

    candidate: float
    selected: float
    clip: float
    origin: str

    def share(self, unit: str) -> float:
        return 1.0 if unit == "input" else getattr(self, unit)


def reach_of(lineage: object, shards: list[str] | None = None) -> pl.DataFrame:
    """Per shard (of ``shards``, or every one): its videos that reached each kind of step (sql/step_reach.sql)."""
    return run_sql("step_reach", {"lineage": lineage}, {"shards": shards})


def history_pass_rates(lineage: object, shards: list[str] | None = None) -> PassRates | None:
    """The shares this data root's lineage shows, over ``shards`` or every shard (None before any video was
    judged)."""
    reach = reach_of(lineage, shards)
    inputs = int(reach["input"].sum() or 0)
    if not inputs:
        return None
    share = {u: float(reach[u].sum()) / inputs for u in ("candidate", "selected", "clip")}
    return PassRates(**share, origin=f"this data root's lineage ({inputs} videos)")


def rule_share(rule: object) -> float | None:
    """The share of videos a percentile rule keeps (top:P, band:LO:HI); None for an absolute or calibrated rule,
    whose share depends on the scores."""
    kind = getattr(rule, "kind", "off")
    if kind == "off":
        return 1.0
    if kind == "top":
        return rule.a / 100
    if kind == "band":
        return (rule.b - rule.a) / 100
    return None


def recipe_pass_rates(rules: dict[str, object], clips_per_video: float = 1.0) -> PassRates:
    """The shares the recipe's percentile rules imply when the scores are independent (the paper's recipe: 20 % x
    85 % x 85 % candidates, 30 % of them selected); an absolute rule counts as keeping everything, and says so."""
    unknown = [s for s, r in rules.items() if rule_share(r) is None]
    share = {s: rule_share(r) or 1.0 for s, r in rules.items()}
    candidate = share.get("aesthetic", 1.0) * share.get("temporal", 1.0) * share.get("motion", 1.0)
    selected = candidate * share.get("clarity", 1.0)
    note = f"; {', '.join(unknown)}: absolute rules, counted as keeping all" if unknown else ""
    return PassRates(candidate, selected, selected * clips_per_video, f"the recipe's percentile rules{note}")


def estimate_steps(
    videos: int, hours: float, rates: PassRates, costs: pl.DataFrame, workers: int, price: float | None
) -> pl.DataFrame:
    """Per step: the videos (or clips) it will work on, their hours, its compute seconds (a worker busy with it),
    the CPU seconds it will use (where measured), the wall time with ``workers`` runs at once, its device-hours and
    cost (model steps hold a device; the SQL and ffmpeg steps are counted as wall time only)."""
    rows = []
    for r in costs.iter_rows(named=True):
        share = rates.share(r["unit"])
        units = videos * share
        seconds = units * r["seconds_per_unit"]
        cpu = units * r["cpu_seconds_per_unit"] if r["cpu_seconds_per_unit"] is not None else None
        device_hours = seconds / 3600 if r["step"] in MODEL_STEPS else 0.0
        rows.append(
            {
                "step": r["step"],
                "works_on": r["unit"],
                "units": round(units, 1),
                "hours": round(hours * min(share, 1.0), 3),
                "compute_s": round(seconds, 2),
                "cpu_s": round(cpu, 2) if cpu is not None else None,
                "wall_s": round(seconds / max(workers, 1), 2),
                "device_hours": round(device_hours, 4),
                "cost": round(device_hours * price, 2) if price is not None else None,
                "cost_from": r["origin"],
            }
        )
    if not rows:
        return pl.DataFrame(schema=ESTIMATE_SCHEMA)
    order = {s: i for i, s in enumerate(STEP_UNITS)}
    return pl.DataFrame(rows, schema=ESTIMATE_SCHEMA).sort(pl.col("step").replace_strict(order, default=len(order)))


def shard_seconds(costs: pl.DataFrame, steps: list[str], rates: PassRates, videos_per_shard: float) -> float | None:
    """What one shard's ``steps`` cost by ``costs`` (None when one of its steps has no cost)."""
    per_unit = dict(zip(costs["step"], costs["seconds_per_unit"]))
    measured = [s for s in steps if s in STEP_UNITS]
    if not measured or any(s not in per_unit for s in measured):
        return None
    return sum(per_unit[s] * rates.share(STEP_UNITS[s]) * videos_per_shard for s in measured)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TimeLeft:
    """The run command's progress per step (wave of per-shard steps): shards done of those to do, and the time
    left: from the rate this command's runs achieve once ``MIN_DONE`` shards of the step are done, before that from
    ``prior`` (seconds a shard, from history or the shipped table) over the runs at once."""

    MIN_DONE = 3

    def __init__(self, todo: dict[int, int], prior: dict[int, float | None], workers: int, origin: str):
        self.todo, self.prior, self.workers, self.origin = todo, prior, max(workers, 1), origin
        self.done: dict[int, int] = dict.fromkeys(todo, 0)
        self.started: dict[int, float] = {}

    def run_started(self, wave: int, now: float) -> None:
        self.started.setdefault(wave, now)

    def run_ended(self, wave: int, shards: int, now: float) -> str | None:
        """The progress line of ``wave`` after a run of ``shards`` shards of it succeeded."""
        if wave not in self.todo:
            return None
        self.started.setdefault(wave, now)
        self.done[wave] = min(self.todo[wave], self.done[wave] + shards)
        done, todo = self.done[wave], self.todo[wave]
        left = todo - done
        if left == 0:
            return f"Step {wave}: {done} of {todo} shard(s) done"
        elapsed = now - self.started[wave]
        if done >= self.MIN_DONE and elapsed > 0:
            estimate, origin = left * elapsed / done, f"at this command's rate over {done} shards"
        elif self.prior.get(wave) is not None:
            estimate, origin = left * self.prior[wave] / self.workers, self.origin
        else:
            return f"Step {wave}: {done} of {todo} shard(s) done, time left known after {self.MIN_DONE}"
        return f"Step {wave}: {done} of {todo} shard(s) done, about {_duration(estimate)} left ({origin})"


def cost_basis(
    instance: DagsterInstance, tables: object, recipe: object, source: str = "default"
) -> tuple[pl.DataFrame, PassRates]:
    """What estimates rest on: every step's cost (this instance's runs, else the shipped table) and the pass rates
    (this data root's lineage, else ``source``'s rules in the recipe)."""
    from openvid_assets.assets.lineage import LINEAGE
    from openvid_assets.assets.selection import GLOBAL

    lineage = tables.scan_source(LINEAGE, [GLOBAL]) if tables.exists(LINEAGE, GLOBAL) else None
    measured = measured_costs(instance, lineage) if lineage is not None else pl.DataFrame(schema=COST_SCHEMA)
    costs = step_costs(measured, recipe.models.resolved_profile().name)
    rates = (history_pass_rates(lineage) if lineage is not None else None) or recipe_pass_rates(
        recipe.source_rules(source)
    )
    return costs, rates


def run_command_prior(
    instance: DagsterInstance, tables: object, recipe: object, videos_per_shard: float
) -> tuple[object, str]:
    """For the run command's time left before its own runs tell: (steps -> seconds a shard, where that is from)."""
    costs, rates = cost_basis(instance, tables, recipe)
    names = {"this instance": "this instance's runs", "shipped table": "the shipped table of step costs"}
    origin = "from " + " and ".join(names[o] for o in sorted(set(costs["origin"])))
    return (lambda steps: shard_seconds(costs, steps, rates, videos_per_shard)), origin


@dataclass(frozen=True)
class SourceEstimate:
    """What running one source through a recipe would take: the source's survey, the pass rates and costs used, and
    the per-step estimate (``estimate_steps``)."""

    uri: str
    survey: object  # media.survey.SourceSurvey
    rates: PassRates
    steps: pl.DataFrame
    workers: object  # assets.engine.Workers
    price: float | None
    profile: str

    def report(self) -> str:
        """The estimate as text that is also markdown: the source's size, the pass rates, the per-step table and the
        totals (what ``openvid-assets estimate`` prints and the ``recipe_estimate`` asset shows)."""
        from openvid_assets.charts import markdown_text

        survey, rates = self.survey, self.rates
        sizes = ", ".join(f"{size} {share:.0%}" for size, share in survey.resolutions) or "none readable"
        lines = [
            f"{self.uri}: {survey.videos} videos; of {survey.sampled} probed, {survey.readable} readable, "
            f"{survey.mean_seconds:.1f} s on average: about {survey.hours:.3g} hours ({sizes})",
            "",
            f"pass rates: {rates.candidate:.1%} candidates, {rates.selected:.1%} selected, {rates.clip:.2f} clips "
            f"a video, from {rates.origin}",
        ]
        if self.steps.is_empty():
            lines += [
                "",
                f"no step costs for the {self.profile} profile yet: none measured on this instance and none in the "
                "shipped table; run a few shards first (openvid-assets run), then estimate",
            ]
            return "\n".join(lines)
        lines += ["", markdown_text(self.steps)]
        if "shipped table" in set(self.steps["cost_from"]):
            lines += ["", f"shipped table: {shipped_machine()}"]
        where = f"{self.workers.count} run(s) at once on {'GPU' if self.workers.gpus else 'CPU'}"
        cost = f", {self.steps['cost'].sum():.2f} at {self.price}/device-hour" if self.price is not None else ""
        measured = int(self.steps["cpu_s"].is_not_null().sum())
        cpu = f", {self.cpu_hours:.3g} CPU-hours ({measured} steps measured)" if measured else ""
        if self.cpu_bound:
            where += f"; no less than the CPU-hours over its {self.cores} cores"
        lines += [
            "",
            f"total: about {self.wall_hours:.3g} h of wall time ({where}), {self.device_hours:.3g} device-hours"
            f"{cost}{cpu}",
        ]
        return "\n".join(lines)

    @property
    def cores(self) -> int:
        return self.workers.count * self.workers.threads

    @property
    def cpu_hours(self) -> float:
        return float(self.steps["cpu_s"].sum() or 0) / 3600

    @property
    def steps_wall_hours(self) -> float:
        return float(self.steps["wall_s"].sum() or 0) / 3600

    @property
    def wall_hours(self) -> float:
        """The steps' wall time; on a CPU machine no less than their CPU-seconds over its cores, which the runs at
        once share, whatever the recorded durations (measured with other runs at once) say."""
        return max(self.steps_wall_hours, 0.0 if self.workers.gpus else self.cpu_hours / self.cores)

    @property
    def cpu_bound(self) -> bool:
        return self.wall_hours > self.steps_wall_hours

    @property
    def device_hours(self) -> float:
        return float(self.steps["device_hours"].sum() or 0)


def estimate_source(
    instance: DagsterInstance,
    tables: object,
    recipe: object,
    uri: str,
    s3_client: object = None,
    *,
    machine: object,
    source: str = "default",
    sample: int = 100,
    price: float | None = None,
) -> SourceEstimate:
    """Survey ``uri`` (listing and ``sample`` probes, no decoding) and estimate each step of ``recipe`` on it with
    ``source``'s rules: this instance's step costs (else the shipped table), this data root's pass rates (else the
    recipe's), with ``machine``'s runs at once (assets/engine.py ``Workers``). Check the source and the price before
    calling: the survey lists the whole source."""
    from openvid_assets.media.survey import survey_source

    costs, rates = cost_basis(instance, tables, recipe, source)
    survey = survey_source(uri, s3_client, sample=sample)
    steps = estimate_steps(survey.videos, survey.hours, rates, costs, machine.count, price)
    return SourceEstimate(uri, survey, rates, steps, machine, price, recipe.models.resolved_profile().name)
