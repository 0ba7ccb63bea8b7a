"""Selection rules and thresholds, computed with DuckDB over the shards' score tables.

A rule says which videos a score keeps:

=================  ==================================================
``top:20``         the top 20 % (lower cut at the 80th percentile)
``band:5:90``      between the 5th and the 90th percentile
``min:4.5``        at least 4.5 (Open-Sora-style absolute cut-off)
``max:0.99``       at most 0.99
``range:4.5:6.5``  between two absolute values
``calibrated:f1``  the cut fitted from people's labels (best F1, or
                   ``calibrated:precision:0.9``: the most videos kept
                   at that precision); motion and temporal get a band
``off``            keeps every video with a score
=================  ==================================================

Percentile rules become absolute cut lines when thresholds are computed, so
every video is judged against numbers that are stored, versioned and shown.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import polars as pl

from openvid_assets.store.sql import TableInput, run_sql
from openvid_assets.store.tables import TableStore

SCORES = ("aesthetic", "temporal", "motion", "clarity")
SCORE_TABLES = {
    "aesthetic": "aesthetic_scores",
    "temporal": "temporal_scores",
    "motion": "motion_scores",
    "clarity": "clarity_scores",
}
# The paper keeps the top 20 % by aesthetics and the top 30 % by clarity (among the intersection).
# Temporal consistency: drop the 5 % least consistent (flicker, hidden cuts) and the 10 % most
# consistent (near-static slideshows, the larger problem in raw web pools). Motion: drop the
# 10 % slowest (nearly still) and the 5 % fastest (shaky, blurred).
DEFAULT_RULES = {"aesthetic": "top:20", "temporal": "band:5:90", "motion": "band:10:95", "clarity": "top:30"}

THRESHOLDS_SCHEMA = {
    "source": pl.String,
    "score": pl.String,
    "rule": pl.String,
    "description": pl.String,
    "lower": pl.Float64,
    "upper": pl.Float64,
    "videos": pl.Int64,
    "version": pl.String,
}
NOT_APPLIED = "not applied (recipe)"


class RuleError(ValueError):
    """A malformed selection rule; raised before any run starts."""


@dataclass(frozen=True)
class Target:
    """A calibrated rule's target: ``f1`` or ``precision:P`` (0 < P <= 1); curation/calibration.py fits the cut
    it picks."""

    kind: Literal["f1", "precision"]
    value: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Target:
        parts = str(text).strip().lower().split(":")
        if parts == ["f1"]:
            return cls("f1")
        if len(parts) == 2 and parts[0] == "precision":
            try:
                value = float(parts[1])
            except ValueError:
                value = math.nan
            if 0 < value <= 1:
                return cls("precision", value)
        raise ValueError(f"calibration target {text!r}: use f1 or precision:P with 0 < P <= 1")

    def spec(self) -> str:
        return "f1" if self.kind == "f1" else f"precision:{self.value:g}"

    def best(self, curve: pl.DataFrame) -> dict[str, Any] | None:
        """The row of ``curve`` this target picks: the best F1, or the most kept at the precision asked."""
        if self.kind == "f1":
            return curve.sort(["f1", "kept"], descending=True).row(0, named=True)
        meeting = curve.filter(pl.col("precision") >= self.value)
        return meeting.sort("kept", descending=True).row(0, named=True) if meeting.height else None


@dataclass(frozen=True)
class Rule:
    kind: str
    a: float | None = None
    b: float | None = None
    target: str = ""  # calibrated: f1 or precision:P

    @classmethod
    def parse(cls, text: str) -> Rule:
        parts = [p.strip() for p in str(text).strip().lower().split(":")]
        kind, args = parts[0], parts[1:]
        if kind == "calibrated":
            try:
                return cls(kind, target=Target.parse(":".join(args)).spec())
            except ValueError as e:
                raise RuleError(f"rule {text!r}: {e}") from None
        arity = {"off": 0, "top": 1, "min": 1, "max": 1, "band": 2, "range": 2}
        if kind not in arity:
            raise RuleError(
                f"unknown rule {text!r}: use top:P, band:LO:HI, min:X, max:X, range:LO:HI, calibrated:f1, "
                "calibrated:precision:P or off"
            )
        if len(args) != arity[kind]:
            raise RuleError(f"rule {text!r}: '{kind}' takes {arity[kind]} number(s)")
        try:
            values = [float(v) for v in args]
        except ValueError:
            raise RuleError(f"rule {text!r}: not a number") from None
        if any(v != v or v in (float("inf"), float("-inf")) for v in values):
            raise RuleError(f"rule {text!r}: numbers must be finite")
        if kind in ("top", "band") and not all(0 <= v <= 100 for v in values):
            raise RuleError(f"rule {text!r}: percentages must be between 0 and 100")
        if kind == "top" and values[0] == 0:
            raise RuleError(f"rule {text!r}: top:0 keeps nothing; use a positive percentage")
        if kind in ("band", "range") and values[0] > values[1]:
            raise RuleError(f"rule {text!r}: the lower bound is above the upper bound")
        return cls(kind, *values)

    def spec(self) -> str:
        if self.kind == "calibrated":
            return f"calibrated:{self.target}"
        return ":".join([self.kind] + [f"{v:g}" for v in (self.a, self.b) if v is not None])

    def describe(self) -> str:
        if self.kind == "calibrated":
            return f"calibrated {self.target}"
        templates = {
            "off": "off",
            "top": "top {a:g}%",
            "band": "band p{a:g}-p{b:g}",
            "min": "min {a:g}",
            "max": "max {a:g}",
            "range": "range {a:g}-{b:g}",
        }
        return templates[self.kind].format(a=self.a, b=self.b)

    def sql_params(self) -> dict[str, float | None]:
        """Quantiles (0..1) or absolute bounds for sql/score_threshold.sql; None = no cut on that side."""
        lower_q = upper_q = lower_abs = upper_abs = None
        if self.kind == "top":
            lower_q = 1 - self.a / 100
        elif self.kind == "band":
            lower_q, upper_q = self.a / 100, self.b / 100
        elif self.kind == "min":
            lower_abs = self.a
        elif self.kind == "max":
            upper_abs = self.a
        elif self.kind == "range":
            lower_abs, upper_abs = self.a, self.b
        return {"lower_q": lower_q, "upper_q": upper_q, "lower_abs": lower_abs, "upper_abs": upper_abs}


def parse_rules(rules: Mapping[str, str], all_off: bool = False) -> dict[str, Rule]:
    unknown = set(rules) - set(SCORES)
    if unknown:
        raise RuleError(f"unknown score name(s) {sorted(unknown)}; scores are {list(SCORES)}")
    parsed = {name: Rule.parse(rules.get(name, DEFAULT_RULES[name])) for name in SCORES}
    return {name: Rule("off") for name in SCORES} if all_off else parsed


def version_of(rules: Mapping[str, Rule], input_fingerprint: str) -> str:
    """Identifies a set of thresholds: the rules and the exact input tables they were computed over."""
    payload = json.dumps({"rules": {k: r.spec() for k, r in sorted(rules.items())}, "inputs": input_fingerprint})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


Fitted = tuple[float | None, float | None, str]  # a calibrated rule's (lower, upper, how it was fitted)


def compute_thresholds(
    rules: Mapping[str, Rule | None],
    scores: Mapping[str, TableInput | None],
    version: str,
    source: str = "default",
    label: str = "",
    fitted: Mapping[str, Fitted] | None = None,
    **duckdb_settings: Any,
) -> pl.DataFrame:
    """One row per score in ``scores``: the rule and its cut lines over the distinct ok videos of one source.

    A score whose rule is None is a step the source skips: its row says so and cuts nothing. ``label``
    (the source's name when a recipe names sources) prefixes each description, so reasons name the source.
    A calibrated rule's cut lines are ``fitted[score]`` (fitted from labels: curation/calibration.py)."""
    rows = []
    prefix = f"{label}: " if label else ""
    for name, table in scores.items():
        rule = rules[name]
        if rule is None or table is None:  # a skipped step, or a score none of the source's shards has yet
            rows.append(
                {
                    "source": source,
                    "score": name,
                    "rule": rule.spec() if rule else "not applied",
                    "description": prefix + (rule.describe() if rule else NOT_APPLIED),
                    "videos": 0,
                    "version": version,
                }
            )
            continue
        cut = run_sql("score_threshold", {"scores": table}, rule.sql_params(), **duckdb_settings).row(0, named=True)
        description = rule.describe()
        if rule.kind == "calibrated":
            if name not in (fitted or {}):
                raise RuleError(f"{name}: rule {rule.spec()} has no fitted cut (no labels fitted for {name})")
            cut["lower"], cut["upper"], description = fitted[name]
        rows.append(
            {
                "source": source,
                "score": name,
                "rule": rule.spec(),
                "description": prefix + description,
                "lower": cut["lower"],
                "upper": cut["upper"],
                "videos": cut["videos"],
                "version": version,
            }
        )
    return pl.DataFrame(rows, schema=THRESHOLDS_SCHEMA)


@dataclass(frozen=True)
class SourceThresholds:
    """The cut lines of some scores, each source over its own shards with its own rules (None: a step the
    source skips). What the thresholds assets compute, and what the scale benchmark times."""

    tables: TableStore
    scores: tuple[str, ...]
    rules: dict[str, dict[str, Rule | None]]  # source -> score -> rule
    shards: dict[str, list[str]]  # source -> its shards
    label: bool = False  # descriptions (so reasons) name the source
    fitted: dict[str, Fitted] = field(default_factory=dict)  # calibrated rules' cuts, fitted from labels

    def version(self) -> str:
        """The rules of every source, the exact input tables they are computed over and the fitted cuts."""
        fingerprint = "+".join(self.tables.fingerprint(SCORE_TABLES[s]) for s in self.scores)
        fingerprint += repr(sorted(self.fitted.items()))
        skipped = sorted((src, s) for src, rules in self.rules.items() for s in self.scores if rules.get(s) is None)
        named = {f"{src}/{s}": rules.get(s) or Rule("off") for src, rules in self.rules.items() for s in self.scores}
        return version_of(named, fingerprint + repr(skipped))

    @cached_property
    def _existing(self) -> dict[str, set[str]]:
        """The shards that have a table of each score (listed once: a listing is a request on S3)."""
        return {score: set(self.tables.shards(SCORE_TABLES[score])) for score in self.scores}

    def inputs(self, source: str, score: str) -> TableInput | None:
        """One source's tables of one score (None when none of its shards has one yet)."""
        shards = [shard for shard in self.shards[source] if shard in self._existing[score]]
        return self.tables.scan_source(SCORE_TABLES[score], shards) if shards else None

    def compute(self, version: str, **duckdb_settings: Any) -> pl.DataFrame:
        parts = [
            compute_thresholds(
                {s: self.rules[src].get(s) for s in self.scores},
                {s: self.inputs(src, s) for s in self.scores},
                version,
                source=src,
                label=src if self.label else "",
                fitted=self.fitted,
                **duckdb_settings,
            )
            for src in self.shards
        ]
        return pl.concat(parts) if parts else pl.DataFrame(schema=THRESHOLDS_SCHEMA)


def thresholds_data_version(table: pl.DataFrame) -> str:
    """What the steps below a thresholds table depend on: the rules and the cut lines, not the input files'
    stamps, so rewriting identical score tables (a redo after a kill) leaves every candidate table current."""
    rows = table.select("source", "score", "rule", "lower", "upper").sort("source", "score").rows()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


IDENTITY_COLUMNS = ["model", "weights_digest", "params_hash"]


class MixedModelsError(ValueError):
    """Shards of one score were made by different models; thresholds over them would mix scales."""


def score_identities(tables: TableStore, asset: str) -> pl.DataFrame:
    """One row per model identity found in an asset's shard tables, with the shards that use it."""
    frames = []
    for shard in tables.shards(asset):
        table = tables.read(asset, shard)
        if "params_hash" in table.columns:
            frames.append(
                table.filter(pl.col("status") == "ok")
                .select(IDENTITY_COLUMNS)
                .unique()
                .with_columns(shard=pl.lit(shard))
            )
    if not frames:
        return pl.DataFrame(schema={**{c: pl.String for c in IDENTITY_COLUMNS}, "shards": pl.List(pl.String)})
    return run_sql("score_identities", {"identities": pl.concat(frames)})


def require_one_identity(tables: TableStore, asset: str, data_root: str) -> None:
    """Raise a MixedModelsError naming the shards and models when ``asset``'s shards disagree."""
    found = score_identities(tables, asset)
    if found.height <= 1:
        return
    lines = [
        f"  {r['model']} (weights {r['weights_digest']}, params {r['params_hash']}): "
        f"{len(r['shards'])} shard(s): {', '.join(r['shards'][:8])}{' ...' if len(r['shards']) > 8 else ''}"
        for r in found.iter_rows(named=True)
    ]
    raise MixedModelsError(
        f"{asset} mixes {found.height} models across shards; thresholds over them would mix scales:\n"
        + "\n".join(lines)
        + f"\nRe-score the shards made by an older recipe with: openvid-assets run --data-root {data_root}"
        + f"\n(or from Dagster: dagster asset materialize -m openvid_assets.definitions --select {asset} "
        "--partition <shard>, for each shard above that uses the old model)"
    )
