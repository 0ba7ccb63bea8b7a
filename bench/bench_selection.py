"""Scale check for selection: thresholds, S_A ∩ S_T ∩ S_M, clarity cut and lineage at 1M and 10M videos.

What it measures (every number comes from this one run; nothing is hard-coded):

For each size (default 1,000,000 and 10,000,000 videos in shards of 1,000), in its own
subprocess, over synthetic tables written where the pipeline writes them
(``<root>/tables/<asset>/<shard>.parquet``):

* untimed: the ``video_manifest``, ``shard_lists`` and the ``aesthetic_scores`` / ``temporal_scores`` /
  ``motion_scores`` / ``content_scores`` tables of every shard (vectorised numpy/polars, 2 processes), with the
  exact columns of ``MANIFEST_SCHEMA`` / ``SCORE_SCHEMA`` / ``CONTENT_SCHEMA``: ~97 % ok videos, failed probes,
  in-shard duplicates (``duplicate content of s3://...``), ~0.5 % of ok videos that repeat
  the content of a video from an earlier shard (so lineage's cross-shard dedup runs), and
  ~0.5 % decode failures per score (content_scores fails where aesthetic_scores does: one CLIP pass).
  Content measures: brightness mostly 40-220 (~3 % too dark or too bright for the default rule), dark/bright
  shares following it, text area small but ~2 % over 0.03, NSFW negative, the full frame as crop box for
  ~90 % (letterbox bars for the rest). Then the global ``near_duplicates`` table (``DUPLICATES_SCHEMA``):
  ~1 % of ok videos, each a near-copy of another ok video of the pool (cosine 0.98-1.0).
  Scores, measures and probe facts are functions of the content,
  so a copy carries the same values as its original, as real scoring would give.
* timed, with the project's own functions and SQL files (nothing re-implemented):

  1. ``thresholds``: ``TableStore.scan_source`` of the three score tables, the input
     fingerprint and version (as the ``score_thresholds`` asset does), ``compute_thresholds``
     with the default rules, ``TableStore.write("score_thresholds", "global", ...)``.
  2. ``quality_candidates``: per shard, the asset's own body ``shard_candidates(tables, shard, filters,
     duplicates)`` (``run_sql`` of sql/quality_candidates.sql over that shard's three score tables, its
     content_scores, its source's threshold rows, the content rules and the pool's near-duplicates), then
     ``TableStore.write``; shards spread over 2 worker processes at every size. The content rules
     (``content_rules()`` of the bench's recipe) and near_duplicates are read once per worker process, as the
     asset reads them once per run (on each worker's first shard, inside the timed window, reported apart).
  3. (untimed) ``clarity_scores`` for candidate videos only; then timed
     ``clarity_threshold`` (``compute_thresholds`` with the clarity rule) and
     ``selected_videos`` per shard (the asset's body, copied: it is inline in the asset).
  4. ``lineage``: ``lineage_inputs`` (the asset's own binding: all shards' manifest,
     candidates, selected, stacked thresholds), ``run_sql("lineage")`` -> Polars,
     ``TableStore.write("lineage", "global")`` and ``run_sql("lineage_check")``; missing,
     duplicated and unknown must all be 0. Near-duplicates are dropped at stage 'dedup', content rules'
     drops at stage 'content'.
  4b. ``lineage_copy`` (a variant, not what the pipeline does today): the same query in a
     connection set up like ``run_sql`` (macros, the same bindings) with
     ``memory_limit='8GB'`` and a ``temp_directory``, streamed by DuckDB straight to parquet
     with ``COPY (...) TO``, then lineage_check over that file.

Every shard's list (``tables/shard_lists/<shard>.parquet``, the schema ``ShardRegistry.register`` writes) is
written at every N: ``shard_candidates`` looks up each shard's source, and lineage lists the shards' sources.
With ``--sources N`` (N > 1) the pool is N named sources, shaped like OpenVid-1M, the
shards in contiguous blocks, ``web`` (a large web pool, ~70 % of the shards) then ``clean1`` ... ``clean{N-1}``
(the rest, split evenly), and a real ``Recipe`` with a ``sources`` section: ``web`` takes the default rules and
every step, the clean sources the paper's light path (aesthetic ``top:90``, motion ``band:5:98``; no temporal,
clarity or clips; captions kept). The steps then run as the assets do with sources:

  1. ``thresholds`` / ``clarity_threshold``: ``ShardRegistry.by_source()`` (its own sub-step), each source's
     ``recipe.source_rules``, ``SourceThresholds`` (version, then compute: each source over its own shards with
     its own rules; a step the source skips gives a 'not applied' row), ``TableStore.write``.
  2. per shard: the shard's source's threshold rows bound with ``source_thresholds(...)`` (quality_candidates
     does so at every N) and, for ``selected_videos``, ``clarity_applied`` from ``recipe.source(source).applies("clarity")``.
  3. (untimed) ``clarity_scores`` only for the candidates of sources that apply clarity (an empty table for
     the others, as the asset writes).
  4. ``lineage_inputs(tables, recipe)`` (per-shard sources and the steps each skips).

Every timed step runs in its own process, so each has its own peak RSS (``ru_maxrss`` of the
process and of its worker processes, and the peak of the sum over the process tree sampled
every 0.25 s). A step whose tree goes over ``--rss-guard-gib`` is killed and reported as such
(the machine is shared). Spill is seen as the peak size of DuckDB's temporary directories.

Printed: time of every step and sub-step per size, rows/s, per-shard ms for the per-shard
steps, peak memory, disk used, and for the largest vs the smallest size the ratio of each
step's time: linear means ratio <= size ratio (10 for 1M -> 10M). Absolute times depend
on the (2-core, shared) machine: read the ratios.

    .venv/bin/python bench/bench_selection.py                 # 1M and 10M (~50 minutes; 1M alone ~5)
    .venv/bin/python bench/bench_selection.py --quick         # 100k and 1M
    .venv/bin/python bench/bench_selection.py --sizes 20000 200000 --keep --workdir /tmp/sel
    .venv/bin/python bench/bench_selection.py --s3 2000 25    # global steps: local root vs S3 (moto)
    .venv/bin/python bench/bench_selection.py --sources 4     # 1M and 10M videos in four named sources
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._report import machine_facts
from openvid_assets_testing.global_steps import global_steps
from openvid_assets_testing.selection_tables import (
    GEN_BLOCK,
    gen_clarity_block,
    gen_scores_block,
    generate_score_root,
    set_schemas,
    upload_root,
    write_near_duplicates,
)

ROOT = Path(__file__).resolve().parents[1]

GIB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")
WORKERS = 2  # per-shard steps and generation: the same at every size

# --------------------------------------------------------------------------- named sources and the bench's recipe

WEB_SHARE = 0.7  # --sources N > 1: the first source's share of the shards (OpenVid-1M: Panda-50M's ~0.6M of ~1M)
LIGHT_PATH = {
    "rules": {"aesthetic": "top:90", "motion": "band:5:98"},
    "temporal": False,
    "clarity": False,
    "clips": False,
    "captions": "keep",
}  # the paper's path for the small, already clean sources


def source_names(n_sources: int) -> list[str]:
    from openvid_assets.store.shards import DEFAULT_SOURCE

    return [DEFAULT_SOURCE] if n_sources <= 1 else ["web"] + [f"clean{i}" for i in range(1, n_sources)]


def shard_sources_plan(shards: int, n_sources: int) -> list[str]:
    """The source of each shard index: contiguous blocks, the web pool ~70 %, the rest split evenly."""
    names = source_names(n_sources)
    if n_sources <= 1:
        return names * shards
    if shards < n_sources:
        raise SystemExit(f"{shards} shards cannot hold {n_sources} sources")
    web = min(shards - (n_sources - 1), max(1, round(WEB_SHARE * shards)))
    rest, k = shards - web, n_sources - 1
    counts = [web] + [rest // k + (1 if i < rest % k else 0) for i in range(k)]
    return [name for name, count in zip(names, counts) for _ in range(count)]


def bench_recipe(n_sources: int) -> Any:
    """The recipe the steps judge by: no sources section for 1 (every shard 'default'), else web + clean ones."""
    from openvid_assets.recipe import Recipe

    if n_sources <= 1:
        return Recipe.validated({})
    names = source_names(n_sources)
    sources = {
        "web": {"uri": "s3://bench/web"},
        **{name: {"uri": f"s3://bench/{name}", **LIGHT_PATH} for name in names[1:]},
    }
    return Recipe.validated({"sources": sources}, where="bench recipe")


# --------------------------------------------------------------------------- timed per-shard work

_STORE: Any = None
_RECIPE: Any = None  # --sources N > 1: the bench recipe (None: one source, today's bindings for selected_videos)
_N_SOURCES = 1
_RUN_INPUTS: tuple[Any, Any] | None = None  # (filters, near_duplicates): read once per worker, as once per run


def _init_worker(root: str, n_sources: int = 1) -> None:
    global _STORE, _RECIPE, _N_SOURCES
    import openvid_assets.assets.selection  # noqa: F401  (imports Dagster once, before the clock starts)
    from openvid_assets.store import TableStore

    _STORE = TableStore(root)
    _RECIPE = bench_recipe(n_sources) if n_sources > 1 else None
    _N_SOURCES = n_sources


def _ready(_: int) -> int:
    time.sleep(0.3)  # both workers have run their initializer before the clock starts
    return os.getpid()


def _run_inputs() -> tuple[Any, Any, float]:
    """What the quality_candidates asset reads once per run, before its shards: the recipe's content rules
    (``content_rules()``) and the global near_duplicates table. Read on a worker's first shard (inside the timed
    window); the seconds it took, 0 afterwards."""
    global _RUN_INPUTS
    if _RUN_INPUTS is not None:
        return (*_RUN_INPUTS, 0.0)
    from openvid_assets.assets.filters import DUPLICATES
    from openvid_assets.assets.selection import GLOBAL

    t0 = time.perf_counter()
    _RUN_INPUTS = (bench_recipe(_N_SOURCES).content_rules(), _STORE.read(DUPLICATES, GLOBAL))
    return (*_RUN_INPUTS, time.perf_counter() - t0)


def shard_step(args: tuple[str, str]) -> tuple[str, float, float, int, float, float, dict[str, int]]:
    """One shard of the quality_candidates / selected_videos asset. quality_candidates: the asset's own per-shard
    body, ``shard_candidates(tables, shard, filters, duplicates)`` (its source's threshold rows, the content
    rules, the pool's near-duplicates), then ``TableStore.write``; the once-per-run inputs are read on each
    worker's first shard (their time is returned apart, index 5). selected_videos: the asset's body copied (it
    is inline in the asset): with sources, the shard's source's clarity rows (source_thresholds, index 5) and
    whether its source applies clarity; with one source, the whole clarity table and clarity applied."""
    from openvid_assets.assets.selection import (
        CANDIDATES,
        CLARITY_THRESHOLD,
        GLOBAL,
        SELECTED,
        _shard_sql,
        shard_candidates,
        source_of,
        source_thresholds,
    )

    step, shard = args
    c0 = time.process_time()
    t0 = time.perf_counter()
    if step == "quality_candidates":
        filters, duplicates, once = _run_inputs()
        t0 = time.perf_counter()  # the shard's own time starts after the once-per-run reads
        table = shard_candidates(_STORE, shard, filters, duplicates)
        name, side = CANDIDATES, once
    else:
        applied = _RECIPE.source(source_of(_STORE, shard)).applies("clarity") if _RECIPE else True
        thresholds = source_thresholds(_STORE, CLARITY_THRESHOLD, shard) if _RECIPE else (CLARITY_THRESHOLD, GLOBAL)
        tl = time.perf_counter()
        table = _shard_sql(
            _STORE,
            "selected_videos",
            {"candidates": (CANDIDATES, shard), "clarity": ("clarity_scores", shard), "thresholds": thresholds},
            {"clarity_applied": applied},
        )
        name, side = SELECTED, tl - t0
    t1 = time.perf_counter()
    _STORE.write(name, shard, table)
    t2 = time.perf_counter()
    if step == "quality_candidates":  # the asset's metadata counts (outside the shard's timings)
        counts = {
            "candidates": int(table["candidate"].sum()),
            "near_duplicates": table["duplicate_reason"].is_not_null().sum(),
            "content_dropped": table["content_reason"].is_not_null().sum(),
        }
    else:
        counts = {"selected": int(table["selected"].sum())}
    return shard, t1 - t0, t2 - t1, table.height, time.process_time() - c0, side, counts


# --------------------------------------------------------------------------- steps (each in its own process)


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _peak_and_reset() -> int:
    """This process's peak RSS since the last call (VmHWM, then reset through /proc/self/clear_refs)."""
    import re

    with open("/proc/self/status") as f:
        peak = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) * 1024
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # no reset: later values are peaks since the start
    return peak


def _pool(root: str, n_sources: int = 1) -> Any:
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(WORKERS, initializer=_init_worker, initargs=(root, n_sources))
    pool.map(_ready, range(WORKERS), chunksize=1)
    return pool


def step_generate(root: str, n_videos: int, shard_size: int, what: str, n_sources: int = 1) -> dict[str, Any]:
    from openvid_assets.models.shards.tables import CONTENT_SCHEMA
    from openvid_assets.models.shards.tables import SCORE_SCHEMA

    shards = n_videos // shard_size
    fn = gen_scores_block if what == "scores" else gen_clarity_block
    blocks: list[tuple[Any, ...]] = [
        (root, i, min(GEN_BLOCK, shards - i), shard_size) for i in range(0, shards, GEN_BLOCK)
    ]
    plan = shard_sources_plan(shards, n_sources)
    if what == "scores":
        extra: list[Any] | None = plan  # each shard's source: shard lists, content_scores, near-duplicate rows
    elif n_sources > 1:
        recipe = bench_recipe(n_sources)
        extra = [recipe.source(src).applies("clarity") for src in plan]
    else:
        extra = None
    if extra is not None:
        blocks = [(*b, extra[b[1] : b[1] + b[2]]) for b in blocks]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(
        WORKERS, initializer=set_schemas, initargs=(SCORE_SCHEMA, CONTENT_SCHEMA)
    ) as pool:
        results = list(pool.imap_unordered(fn, blocks, chunksize=1))
    out: dict[str, Any] = {"rows": sum(r[0] for r in results) if what == "scores" else sum(results)}
    if what == "scores":
        out["near_duplicates"] = write_near_duplicates(root, [r[1] for r in results])
    out["wall_s"] = time.perf_counter() - t0
    return out


def step_thresholds(root: str, scores: tuple[str, ...], name: str) -> dict[str, Any]:
    from openvid_assets.store import TableStore
    from openvid_assets.store.selection import SCORE_TABLES, compute_thresholds, parse_rules, version_of

    tables = TableStore(root)
    rules = parse_rules({})
    c0 = time.process_time()
    t0 = time.perf_counter()
    sources = {s: tables.scan_source(SCORE_TABLES[s]) for s in scores}
    t1 = time.perf_counter()
    version = version_of({s: rules[s] for s in scores}, "+".join(tables.fingerprint(SCORE_TABLES[s]) for s in scores))
    t2 = time.perf_counter()
    table = compute_thresholds(rules, sources, version)
    t3 = time.perf_counter()
    tables.write(name, "global", table)
    t4 = time.perf_counter()
    out = {
        "wall_s": t4 - t0,
        "cpu_s": time.process_time() - c0,
        "sub": {"scan_source": t1 - t0, "fingerprint": t2 - t1, "compute_thresholds": t3 - t2, "write": t4 - t3},
        "files": sum(len(v) for v in sources.values()),
        "thresholds": table.to_dicts(),
    }
    if name == "score_thresholds":
        # extra, outside the brief's total: the asset also draws a histogram per score (sql/score_histogram.sql)
        from openvid_assets.assets.selection import HISTOGRAM_BINS
        from openvid_assets.store import run_sql

        t5 = time.perf_counter()
        for s in scores:
            run_sql("score_histogram", {"scores": sources[s]}, {"bins": HISTOGRAM_BINS})
        out["histograms_s"] = time.perf_counter() - t5
    return out


def step_source_thresholds(root: str, scores: tuple[str, ...], name: str, n_sources: int) -> dict[str, Any]:
    """What the thresholds assets run with named sources (_thresholds_result, minus the model-identity check and
    the metadata): by_source, each source's rules, SourceThresholds' version and compute, the write."""
    from openvid_assets.store import TableStore
    from openvid_assets.store.selection import SourceThresholds
    from openvid_assets.store.shards import ShardRegistry

    tables = TableStore(root)
    recipe = bench_recipe(n_sources)
    c0 = time.process_time()
    t0 = time.perf_counter()
    by_source = ShardRegistry(tables).by_source()
    t1 = time.perf_counter()
    rules = {src: recipe.source_rules(src) for src in by_source}
    plan = SourceThresholds(tables, scores, rules, by_source, label=bool(recipe.sources))
    version = plan.version()
    t2 = time.perf_counter()
    table = plan.compute(version)
    t3 = time.perf_counter()
    tables.write(name, "global", table)
    t4 = time.perf_counter()
    out = {
        "wall_s": t4 - t0,
        "cpu_s": time.process_time() - c0,
        "sub": {
            "ShardRegistry.by_source": t1 - t0,
            "source_rules + SourceThresholds.version": t2 - t1,
            "SourceThresholds.compute": t3 - t2,
            "write": t4 - t3,
        },
        "files": sum(len(v) for v in by_source.values()) * len(scores),
        "by_source": {src: len(v) for src, v in by_source.items()},
        "threshold_rows": table.height,
        "thresholds": table.to_dicts(),
    }
    if name == "score_thresholds":
        # extra, outside the total: the asset also draws a histogram per applied (source, score)
        import polars as pl

        from openvid_assets.assets.selection import HISTOGRAM_BINS
        from openvid_assets.store import run_sql

        t5 = time.perf_counter()
        for row in table.filter(pl.col("rule") != "not applied").iter_rows(named=True):
            source_scores = plan.inputs(row["source"], row["score"])
            if source_scores is not None:
                run_sql("score_histogram", {"scores": source_scores}, {"bins": HISTOGRAM_BINS})
        out["histograms_s"] = time.perf_counter() - t5
    return out


def step_per_shard(root: str, step: str, n_sources: int = 1) -> dict[str, Any]:
    from openvid_assets.store import TableStore

    source = "aesthetic_scores" if step == "quality_candidates" else "clarity_scores"
    shards = TableStore(root).shards(source)
    pool = _pool(root, n_sources)
    c0 = time.process_time()
    t0 = time.perf_counter()
    results = list(pool.imap_unordered(shard_step, [(step, s) for s in shards], chunksize=10))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0 + sum(r[4] for r in results)
    pool.close()
    pool.join()
    anatomy = _shard_anatomy(root, step, shards, n_sources)
    sql = sorted(r[1] for r in results)
    write = sorted(r[2] for r in results)
    q = statistics.quantiles
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "shards": len(results),
        "rows": sum(r[3] for r in results),
        "anatomy_ms": anatomy,
        "sub": {
            **(
                {"once per worker: content_rules() + read near_duplicates": sum(r[5] for r in results)}
                if step == "quality_candidates"
                else {}
            ),
            **(
                {"sum_source_thresholds (in sum_sql)": sum(r[5] for r in results)}
                if n_sources > 1 and step == "selected_videos"
                else {}
            ),
            "sum_sql": sum(sql),
            "sum_write": sum(write),
        },
        "counts": {k: sum(int(r[6][k]) for r in results) for k in results[0][6]} if results else {},
        "per_shard_ms": {
            "sql_median": 1e3 * statistics.median(sql),
            "sql_p99": 1e3 * q(sql, n=100)[98],
            "write_median": 1e3 * statistics.median(write),
            "write_p99": 1e3 * q(write, n=100)[98],
            "write_first_10pct": 1e3 * statistics.mean(_by_shard(results, 2)[: max(1, len(results) // 10)]),
            "write_last_10pct": 1e3 * statistics.mean(_by_shard(results, 2)[-max(1, len(results) // 10) :]),
        },
    }


def _shard_anatomy(root: str, step: str, shards: list[str], n_sources: int = 1, samples: int = 20) -> dict[str, float]:
    """Where one shard's run_sql time goes (median ms over a few shards, one process, after the timed run):
    the same calls as run_sql, timed one by one. quality_candidates binds what ``shard_candidates`` binds ('bind'
    includes source_thresholds; the content rules and near_duplicates are read once, before); selected_videos
    what the bench's copy binds (with sources, 'bind' includes source_thresholds). Diagnostics only; not part
    of any total."""
    import duckdb

    from openvid_assets.assets.filters import CONTENT, DUPLICATES
    from openvid_assets.assets.selection import GLOBAL, source_thresholds
    from openvid_assets.assets.shards import source_of
    from openvid_assets.store import TableStore
    from openvid_assets.store.sql import _bind, sql_path

    tables = TableStore(root)
    recipe = bench_recipe(n_sources) if n_sources > 1 else None
    if step == "quality_candidates":
        inputs: dict[str, Any] = {
            "aesthetic": ("aesthetic_scores", None),
            "temporal": ("temporal_scores", None),
            "motion": ("motion_scores", None),
            "content": (CONTENT, None),
            "duplicates": tables.read(DUPLICATES, GLOBAL),
            "filters": bench_recipe(n_sources).content_rules(),
            "thresholds": ("score_thresholds", "global"),
        }
        by_source = True  # shard_candidates always binds its source's rows
    else:
        inputs = {
            "candidates": ("quality_candidates", None),
            "clarity": ("clarity_scores", None),
            "thresholds": ("clarity_threshold", "global"),
        }
        by_source = recipe is not None
    picks = shards[:: max(1, len(shards) // samples)][:samples]
    thresholds_name = inputs["thresholds"][0]
    parts: dict[str, list[float]] = {"connect": [], "macros": [], "bind": [], "query+pl": [], "close": []}
    for shard in picks:
        t0 = time.perf_counter()
        con = duckdb.connect(":memory:")
        t1 = time.perf_counter()
        con.execute(sql_path("macros").read_text())
        t2 = time.perf_counter()
        params = None
        for name, value in inputs.items():
            if name == "thresholds" and by_source:
                _bind(con, name, source_thresholds(tables, thresholds_name, shard))
            elif isinstance(value, tuple):
                _bind(con, name, tables.scan_source(value[0], [value[1] or shard]))
            else:
                _bind(con, name, value)
        if step == "selected_videos":
            params = {"clarity_applied": recipe.source(source_of(tables, shard)).applies("clarity") if recipe else True}
        t3 = time.perf_counter()
        con.sql(sql_path(step).read_text(), params=params).pl()
        t4 = time.perf_counter()
        con.close()
        t5 = time.perf_counter()
        for key, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            parts[key].append(1e3 * v)
    return {k: statistics.median(v) for k, v in parts.items()}


def _by_shard(results: list[tuple[Any, ...]], col: int) -> list[float]:
    return [r[col] for r in sorted(results)]


def _lineage_summary(frame: Any) -> dict[str, int]:
    import polars as pl

    counts = frame.group_by("status", "stage").agg(pl.len()).sort("status", "stage")
    out = {f"{r['status']}/{r['stage']}": r["len"] for r in counts.iter_rows(named=True)}
    out["of dropped/dedup: near-duplicate"] = frame.filter(
        pl.col("reason").str.starts_with("near-duplicate of ")
    ).height
    return out


def _lineage_by_source(frame: Any) -> dict[str, int]:
    """Rows per source and status, and how many carry a 'not applied' note (the steps their source skips)."""
    import polars as pl

    counts = frame.group_by("source", "status").agg(pl.len(), pl.col("not_applied").is_not_null().sum().alias("na"))
    out: dict[str, int] = {}
    for r in counts.sort("source", "status").iter_rows(named=True):
        out[f"{r['source']}/{r['status']}"] = r["len"]
        out[f"{r['source']}/not_applied"] = out.get(f"{r['source']}/not_applied", 0) + r["na"]
    return out


def step_lineage(root: str, n_sources: int = 1) -> dict[str, Any]:
    """What the lineage asset runs (minus the export copy and the summary): query -> Polars -> parquet, check."""
    from openvid_assets.assets.lineage import LINEAGE, lineage_inputs
    from openvid_assets.assets.selection import GLOBAL
    from openvid_assets.store import TableStore, run_sql

    tables = TableStore(root)
    recipe = bench_recipe(n_sources) if n_sources > 1 else None
    rss0 = _rss_now()
    _peak_and_reset()
    c0 = time.process_time()
    t0 = time.perf_counter()
    inputs = lineage_inputs(tables, recipe)
    t1 = time.perf_counter()
    table = run_sql("lineage", inputs)
    t2 = time.perf_counter()
    rss_after_query = _rss_now()
    peaks = {"lineage_inputs + run_sql(lineage)": _peak_and_reset()}
    tables.write(LINEAGE, GLOBAL, table)
    t3 = time.perf_counter()
    peaks["TableStore.write"] = _peak_and_reset()
    check = run_sql("lineage_check", {"manifest": inputs["manifest"], "lineage": table}).row(0, named=True)
    t4 = time.perf_counter()
    cpu = time.process_time() - c0
    peaks["run_sql(lineage_check)"] = _peak_and_reset()
    _assert_check(check)
    return {
        "wall_s": t4 - t0,
        "cpu_s": cpu,
        "rows": table.height,
        "check": check,
        "sub": {
            "lineage_inputs": t1 - t0,
            "run_sql(lineage)": t2 - t1,
            "TableStore.write": t3 - t2,
            "run_sql(lineage_check)": t4 - t3,
        },
        "frame_bytes": table.estimated_size(),
        "rss_before": rss0,
        "rss_after_query": rss_after_query,
        "sub_peak_rss": peaks,
        "parquet_bytes": os.path.getsize(Path(root, tables.rel_path(LINEAGE, GLOBAL))),
        "summary": _lineage_summary(table),
        **({"by_source": _lineage_by_source(table)} if n_sources > 1 else {}),
    }


def step_lineage_copy(root: str, memory_limit: str, n_sources: int = 1) -> dict[str, Any]:
    """The lineage query streamed by DuckDB to parquet (COPY), in a connection set up like run_sql."""
    import duckdb

    from openvid_assets.assets.lineage import lineage_inputs
    from openvid_assets.store import TableStore, run_sql
    from openvid_assets.store.sql import _bind, sql_path

    tables = TableStore(root)
    out = Path(root, "lineage_copy.parquet")
    spill = Path(root, "duckdb_spill")
    spill.mkdir(exist_ok=True)
    recipe = bench_recipe(n_sources) if n_sources > 1 else None
    rss0 = _rss_now()
    _peak_and_reset()
    c0 = time.process_time()
    t0 = time.perf_counter()
    inputs = lineage_inputs(tables, recipe)
    t1 = time.perf_counter()
    query = sql_path("lineage").read_text().strip().rstrip(";")
    target = str(out).replace("'", "''")
    with duckdb.connect(":memory:") as con:
        con.execute("SET memory_limit = ?", [memory_limit])
        con.execute("SET temp_directory = ?", [str(spill)])
        con.execute(sql_path("macros").read_text())
        for name, source in inputs.items():
            _bind(con, name, source)
        con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    t2 = time.perf_counter()
    peaks = {"lineage_inputs + COPY": _peak_and_reset()}
    check = run_sql("lineage_check", {"manifest": inputs["manifest"], "lineage": [str(out)]}).row(0, named=True)
    t3 = time.perf_counter()
    cpu = time.process_time() - c0
    peaks["run_sql(lineage_check)"] = _peak_and_reset()
    _assert_check(check)
    with duckdb.connect(":memory:") as con:
        summary = {
            f"{s}/{g}": c
            for s, g, c in con.execute(
                "SELECT status, stage, count(*) FROM read_parquet(?) GROUP BY ALL ORDER BY ALL", [str(out)]
            ).fetchall()
        }
        summary["of dropped/dedup: near-duplicate"] = con.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE starts_with(reason, 'near-duplicate of ')", [str(out)]
        ).fetchone()[0]
    return {
        "wall_s": t3 - t0,
        "cpu_s": cpu,
        "rows": check["lineage_rows"],
        "check": check,
        "sub": {
            "lineage_inputs": t1 - t0,
            "COPY (lineage) TO parquet": t2 - t1,
            "run_sql(lineage_check) on the file": t3 - t2,
        },
        "rss_before": rss0,
        "parquet_bytes": out.stat().st_size,
        "summary": summary,
        "sub_peak_rss": peaks,
    }


def _assert_check(check: dict[str, int]) -> None:
    bad = {k: check[k] for k in ("missing", "duplicated", "unknown") if check[k] != 0}
    if bad or check["manifest_rows"] != check["lineage_rows"]:
        raise AssertionError(f"lineage_check failed: {check}")


def run_step_main(args: argparse.Namespace) -> None:
    step, root, out = args.step, args.root, args.result
    n = args.sources
    if step == "gen_scores":
        result = step_generate(root, args.size, args.shard_size, "scores", n)
    elif step == "gen_clarity":
        result = step_generate(root, args.size, args.shard_size, "clarity", n)
    elif step in ("thresholds", "clarity_threshold"):
        scores, name = (
            (("aesthetic", "temporal", "motion"), "score_thresholds")
            if step == "thresholds"
            else (("clarity",), "clarity_threshold")
        )
        result = step_source_thresholds(root, scores, name, n) if n > 1 else step_thresholds(root, scores, name)
    elif step in ("quality_candidates", "selected_videos"):
        result = step_per_shard(root, step, n)
    elif step == "lineage":
        result = step_lineage(root, n)
    elif step == "lineage_copy":
        result = step_lineage_copy(root, args.copy_memory_limit, n)
    else:
        raise SystemExit(f"unknown step {step}")
    result["maxrss_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # resetting VmHWM (sub-step peaks) also lowers what ru_maxrss reports: keep the largest peak seen
    result["maxrss_self"] = max([result["maxrss_self"], *result.get("sub_peak_rss", {}).values()])
    result["maxrss_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    Path(out).write_text(json.dumps(result, default=str))


# --------------------------------------------------------------------------- one size (its own process)


def _tree_rss(pid: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry.name}/statm") as f:
                rss[int(entry.name)] = int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def _dir_bytes(path: Path) -> int:
    total = 0
    if not path.exists():
        return 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def run_step(step: str, root: Path, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one step in a fresh process (cwd = root, so DuckDB's default spill dir .tmp lands there)."""
    result_file = root / f".result-{step}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_step",
        step,
        "--_root",
        str(root),
        "--_result",
        str(result_file),
        "--sizes",
        str(size),
        "--shard-size",
        str(args.shard_size),
        "--copy-memory-limit",
        args.copy_memory_limit,
        "--sources",
        str(args.sources),
    ]
    proc = subprocess.Popen(cmd, cwd=root, start_new_session=True)
    peak = {"tree": 0, "spill": 0, "killed": False}
    stop = threading.Event()
    guard = int(args.rss_guard_gib * GIB)
    spill_dirs = [root / ".tmp", root / "duckdb_spill"]

    def watch() -> None:
        while not stop.is_set():
            tree = _tree_rss(proc.pid)
            peak["tree"] = max(peak["tree"], tree)
            peak["spill"] = max(peak["spill"], sum(_dir_bytes(d) for d in spill_dirs))
            if tree > guard and not peak["killed"]:
                peak["killed"] = True
                print(
                    f"  !! {step}: process tree at {tree / GIB:.1f} GiB > guard {args.rss_guard_gib} GiB: killed",
                    flush=True,
                )
                os.killpg(proc.pid, signal.SIGKILL)  # the group this function started
            stop.wait(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    out: dict[str, Any] = {
        "process_s": wall,
        "peak_tree_rss": peak["tree"],
        "peak_spill": peak["spill"],
        "wait4_maxrss": usage.ru_maxrss * 1024,
        "rc": proc.returncode,
        "killed_by_guard": peak["killed"],
    }
    if proc.returncode == 0 and result_file.exists():
        out.update(json.loads(result_file.read_text()))
        result_file.unlink()
    else:
        out["error"] = f"exit code {proc.returncode}" + (" (killed by the RSS guard)" if peak["killed"] else "")
    return out


STEPS = [
    "gen_scores",
    "thresholds",
    "quality_candidates",
    "gen_clarity",
    "clarity_threshold",
    "selected_videos",
    "lineage",
    "lineage_copy",
]
TIMED = ["thresholds", "quality_candidates", "clarity_threshold", "selected_videos", "lineage"]


def run_size_main(args: argparse.Namespace) -> None:
    size, root = args.sizes[0], Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "size": size,
        "shards": size // args.shard_size,
        "steps": {},
        "load_start": os.getloadavg(),
        "sources": args.sources,
    }
    if args.sources > 1:
        plan = shard_sources_plan(size // args.shard_size, args.sources)
        results["source_shards"] = {name: plan.count(name) for name in source_names(args.sources)}
    for step in STEPS:
        print(f"  [{size:,}] {step} ...", flush=True)
        r = run_step(step, root, size, args)
        results["steps"][step] = r
        msg = r.get("error") or f"{r['wall_s']:.1f} s"
        print(f"  [{size:,}] {step}: {msg}, peak tree RSS {r['peak_tree_rss'] / GIB:.2f} GiB", flush=True)
        if step == "gen_scores" and "error" in r:
            break
    results["load_end"] = os.getloadavg()
    results["disk_bytes"] = _dir_bytes(root)
    Path(args.result).write_text(json.dumps(results, default=str))


# --------------------------------------------------------------------------- report


def _fmt_s(x: float | None) -> str:
    return "—" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def _gib(x: float) -> str:
    return f"{x / GIB:.2f}"


def _step_time(r: dict[str, Any]) -> float | None:
    return r.get("wall_s") if "error" not in r else None


def report(runs: list[dict[str, Any]], facts: dict[str, str], args: argparse.Namespace, workdir: Path) -> None:
    title = f", {args.sources} sources (--sources {args.sources})" if args.sources > 1 else ""
    print(f"\n## Selection at scale (bench/bench_selection.py){title}\n")
    print("Machine: " + " · ".join(f"{k}: {v}" for k, v in facts.items()) + ".")
    print(
        f"Shards of {args.shard_size:,} videos; per-shard steps on {WORKERS} worker processes at every size; "
        f"load average at start/end of each size: "
        + "; ".join(f"{r['size']:,}: {r['load_start'][0]:.1f}/{r['load_end'][0]:.1f}" for r in runs)
        + ".\n"
    )
    sizes = [r["size"] for r in runs]
    if args.sources > 1:
        print(
            "Sources (shards each): "
            + "; ".join(
                f"{r['size']:,}: " + ", ".join(f"{k} {v:,}" for k, v in r.get("source_shards", {}).items())
                for r in runs
            )
            + ". Recipe: web = default rules, every step; the others aesthetic top:90, motion band:5:98, no "
            "temporal/clarity/clips, captions kept.\n"
        )
    print(
        "Times: wall seconds of the timed work (CPU seconds of every process doing it, DuckDB threads "
        "included: less sensitive to other work on a shared machine).\n"
    )
    head = (
        "| step | "
        + " | ".join(f"{s:,} videos: wall s (CPU s)" for s in sizes)
        + " | "
        + " | ".join(f"{s:,}: videos/s" for s in sizes)
        + " | "
        + " | ".join(f"{s:,}: peak RSS GiB (tree / largest process)" for s in sizes)
        + " |"
    )
    print(head)
    print("|" + "---|" * (1 + 3 * len(sizes)))
    rows = (
        [("generate scores (untimed)", "gen_scores"), ("generate clarity (untimed)", "gen_clarity")]
        + [(s, s) for s in TIMED]
        + [("lineage_copy (variant)", "lineage_copy")]
    )
    for label, key in rows:
        cells_t, cells_r, cells_m = [], [], []
        for r in runs:
            st = r["steps"].get(key, {})
            t = _step_time(st)
            cells_t.append((_fmt_s(t) + (f" ({_fmt_s(st['cpu_s'])})" if t and "cpu_s" in st else "")) if st else "—")
            cells_r.append(f"{r['size'] / t:,.0f}" if t else "—")
            if st:
                largest = max(st.get("wait4_maxrss", 0), st.get("maxrss_self", 0), st.get("maxrss_children", 0))
                cells_m.append(
                    f"{_gib(st['peak_tree_rss'])} / {_gib(largest)}"
                    + (" KILLED" if st.get("killed_by_guard") else "")
                    + (" FAILED" if "error" in st else "")
                )
            else:
                cells_m.append("—")
        print(f"| {label} | " + " | ".join(cells_t) + " | " + " | ".join(cells_r) + " | " + " | ".join(cells_m) + " |")
    totals = [sum(_step_time(r["steps"].get(k, {})) or float("nan") for k in TIMED) for r in runs]
    cpus = [sum(r["steps"].get(k, {}).get("cpu_s", float("nan")) for k in TIMED) for r in runs]
    cpus_copy = [
        sum(r["steps"].get(k, {}).get("cpu_s", float("nan")) for k in TIMED[:-1] + ["lineage_copy"]) for r in runs
    ]
    print(
        "| **total (timed steps)** | "
        + " | ".join(f"{_fmt_s(t)} ({_fmt_s(c)})" for t, c in zip(totals, cpus))
        + " | "
        + " | ".join(f"{r['size'] / t:,.0f}" for r, t in zip(runs, totals))
        + " | "
        + " | ".join(
            _gib(max(st.get("peak_tree_rss", 0) for k, st in r["steps"].items() if k in TIMED)) + " (max over steps)"
            for r in runs
        )
        + " |"
    )
    totals_copy = [
        sum(_step_time(r["steps"].get(k, {})) or float("nan") for k in TIMED[:-1] + ["lineage_copy"]) for r in runs
    ]
    print(
        "| total with lineage_copy | "
        + " | ".join(f"{_fmt_s(t)} ({_fmt_s(c)})" for t, c in zip(totals_copy, cpus_copy))
        + " | "
        + " | ".join(f"{r['size'] / t:,.0f}" for r, t in zip(runs, totals_copy))
        + " | "
        + " | ".join("" for _ in runs)
        + " |"
    )

    print("\n### Sub-steps (s)\n")
    print("| step | part | " + " | ".join(f"{s:,}" for s in sizes) + " | ratio |")
    print("|---|---|" + "---|" * (len(sizes) + 1))
    for key in TIMED + ["lineage_copy"]:
        parts = list(runs[-1]["steps"].get(key, {}).get("sub", {}) or runs[0]["steps"].get(key, {}).get("sub", {}))
        for part in parts:
            vals = [r["steps"].get(key, {}).get("sub", {}).get(part) for r in runs]
            ratio = f"{vals[-1] / vals[0]:.1f}" if vals[0] and vals[-1] else "—"
            print(f"| {key} | {part} | " + " | ".join(_fmt_s(v) for v in vals) + f" | {ratio} |")
        if key == "thresholds":
            vals = [r["steps"].get(key, {}).get("histograms_s") for r in runs]
            ratio = f"{vals[-1] / vals[0]:.1f}" if vals[0] and vals[-1] else "—"
            what = "per applied (source, score)" if args.sources > 1 else "x3"
            print(
                f"| thresholds | (extra, not in total) score_histogram {what}, as the asset's metadata | "
                + " | ".join(_fmt_s(v) for v in vals)
                + f" | {ratio} |"
            )

    if args.sources > 1:
        print("\n### Threshold rows (per source x score)\n")
        for r in runs:
            for key in ("thresholds", "clarity_threshold"):
                st = r["steps"].get(key, {})
                if "threshold_rows" not in st:
                    print(f"- {r['size']:,} {key}: {st.get('error', 'not run')}")
                    continue
                srcs, scores = len(st["by_source"]), len({t["score"] for t in st["thresholds"]})
                print(
                    f"- {r['size']:,} {key}: {st['threshold_rows']} rows ({srcs} sources x {scores} score{'s' if scores > 1 else ''})"
                )
        big = runs[-1]["steps"]
        rows = [t for k in ("thresholds", "clarity_threshold") for t in big.get(k, {}).get("thresholds", [])]
        if rows:
            print(
                f"\nAt {runs[-1]['size']:,} videos:\n\n| source | score | rule | lower | upper | videos |\n|---|---|---|---|---|---|"
            )
            for t in rows:
                fmt = lambda v: "—" if v is None else f"{v:.4g}"  # noqa: E731
                print(
                    f"| {t['source']} | {t['score']} | {t['description']} | {fmt(t['lower'])} | {fmt(t['upper'])} "
                    f"| {t['videos']:,} |"
                )

    print("\n### Per-shard steps: ms per shard (one worker's view)\n")
    print(
        "| step | "
        + " | ".join(
            f"{s:,}: {c}"
            for s in sizes
            for c in ("sql median/p99", "write median/p99", "write first/last 10% of shards")
        )
        + " |"
    )
    print("|---|" + "---|" * (3 * len(sizes)))
    for key in ("quality_candidates", "selected_videos"):
        cells = []
        for r in runs:
            p = r["steps"].get(key, {}).get("per_shard_ms")
            if not p:
                cells += ["—"] * 3
                continue
            cells += [
                f"{p['sql_median']:.1f} / {p['sql_p99']:.1f}",
                f"{p['write_median']:.1f} / {p['write_p99']:.1f}",
                f"{p['write_first_10pct']:.1f} / {p['write_last_10pct']:.1f}",
            ]
        print(f"| {key} | " + " | ".join(cells) + " |")

    print("\n### Anatomy of one shard's run_sql (median ms over 20 shards, one process, after the timed run)\n")
    keys = ["connect", "macros", "bind", "query+pl", "close"]
    print("| step | size | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for key in ("quality_candidates", "selected_videos"):
        for r in runs:
            a = r["steps"].get(key, {}).get("anatomy_ms")
            if a:
                print(f"| {key} | {r['size']:,} | " + " | ".join(f"{a[k]:.1f}" for k in keys) + " |")

    if len(runs) >= 2:
        small, big = runs[0], runs[-1]
        budget = big["size"] / small["size"]
        print(f"\n### Scaling: {big['size']:,} over {small['size']:,} videos (linear: ratio <= {budget:g})\n")
        print("| step | ratio_wall | linear (wall) | ratio_cpu | linear (CPU) |")
        print("|---|---|---|---|---|")

        def cells(a: float | None, b: float | None) -> str:
            if not a or not b or a != a or b != b:
                return "— | —"
            return f"{b / a:.2f} | {'yes' if b / a <= budget else 'NO'}"

        for label, key in [(k, k) for k in TIMED] + [("lineage_copy (variant)", "lineage_copy")]:
            s0, s1 = small["steps"].get(key, {}), big["steps"].get(key, {})
            print(
                f"| {label} | {cells(_step_time(s0), _step_time(s1))} | "
                f"{cells(s0.get('cpu_s') if _step_time(s0) else None, s1.get('cpu_s') if _step_time(s1) else None)} |"
            )
        print(f"| **total** | {cells(totals[0], totals[-1])} | {cells(cpus[0], cpus[-1])} |")
        print(
            f"| total with lineage_copy | {cells(totals_copy[0], totals_copy[-1])} | {cells(cpus_copy[0], cpus_copy[-1])} |"
        )
        if args.sources > 1:
            keys = ("thresholds", "clarity_threshold")
            wall = [sum(_step_time(r["steps"].get(k, {})) or float("nan") for k in keys) for r in (small, big)]
            cpu = [sum(r["steps"].get(k, {}).get("cpu_s", float("nan")) for k in keys) for r in (small, big)]
            peak = max(big["steps"].get(k, {}).get("peak_tree_rss", 0) for k in keys)
            ok = wall[1] / wall[0] <= budget if wall[0] == wall[0] and wall[1] == wall[1] else False
            print(
                f"\nPer-source thresholds (thresholds + clarity_threshold, {args.sources} sources): "
                f"{_fmt_s(wall[0])} s -> {_fmt_s(wall[1])} s, ratio {wall[1] / wall[0]:.2f} wall, "
                f"{cpu[1] / cpu[0]:.2f} CPU; target <= {budget:g}: {'met' if ok else 'NOT met'}; peak tree RSS at "
                f"{big['size']:,}: {_gib(peak)} GiB (guard {args.rss_guard_gib:g} GiB)."
            )

    print("\n### Memory, spill, disk\n")
    for r in runs:
        print(
            f"- {r['size']:,} videos: peak RSS of the whole size run (wait4 ru_maxrss, largest single process) "
            f"{_gib(r['wait4_maxrss'])} GiB; data written {_gib(r['disk_bytes'])} GiB under {workdir}."
        )
        for key in ("lineage", "lineage_copy"):
            st = r["steps"].get(key, {})
            if "error" in st or not st:
                print(f"  - {key}: {st.get('error', 'not run')}")
                continue
            extra = (
                f", Polars frame {_gib(st['frame_bytes'])} GiB, RSS after the query {_gib(st['rss_after_query'])} GiB"
                if "frame_bytes" in st
                else ""
            )
            print(
                f"  - {key}: {st['rows']:,} rows, peak tree RSS {_gib(st['peak_tree_rss'])} GiB "
                f"(RSS after imports {_gib(st['rss_before'])} GiB){extra}, parquet {_gib(st['parquet_bytes'])} GiB, "
                f"peak DuckDB spill {_gib(st['peak_spill'])} GiB; check {st['check']}"
            )
            if st.get("sub_peak_rss"):
                print(
                    "    peak RSS of the step's process per part (GiB): "
                    + ", ".join(f"{k} {_gib(v)}" for k, v in st["sub_peak_rss"].items())
                )
        qc, gen = r["steps"].get("quality_candidates", {}).get("counts"), r["steps"].get("gen_scores", {})
        if qc:
            print(
                f"  - quality_candidates: {qc['candidates']:,} candidates; {qc['near_duplicates']:,} with a "
                f"duplicate_reason (near_duplicates table: {gen.get('near_duplicates', 0):,} rows), "
                f"{qc['content_dropped']:,} with a content_reason"
            )
        lin = r["steps"].get("lineage", {}).get("summary") or r["steps"].get("lineage_copy", {}).get("summary")
        if lin:
            print("  - lineage status/stage: " + ", ".join(f"{k} {v:,}" for k, v in lin.items()))
        per_source = r["steps"].get("lineage", {}).get("by_source")
        if per_source:
            print(
                "  - lineage per source (rows by status; rows with a 'not applied' note): "
                + ", ".join(f"{k} {v:,}" for k, v in per_source.items())
            )
        spill = {k: st.get("peak_spill", 0) for k, st in r["steps"].items() if st.get("peak_spill")}
        print(f"  - DuckDB spill seen (peak bytes in its temp dirs): {spill or 'none'}")


# --------------------------------------------------------------------------- main


def code_under_test() -> dict[str, str]:
    """Hashes of the files whose behaviour is timed: a change while the benchmark runs (a shared working
    tree) would make the sizes incomparable, so it is detected and reported."""
    import hashlib

    files = (
        sorted(ROOT.glob("sql/*.sql"))
        + sorted(ROOT.glob("openvid_assets/store/*.py"))
        + [ROOT / "openvid_assets" / "assets" / name for name in ("selection.py", "lineage.py", "filters.py")]
        + [ROOT / "openvid_assets" / "recipe.py"]
    )
    return {str(f.relative_to(ROOT)): hashlib.sha256(f.read_bytes()).hexdigest()[:12] for f in files if f.exists()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="videos per run (default 1M 10M)")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--workdir", default=None, help="where tables are written (default: a new folder in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated tables")
    parser.add_argument("--quick", action="store_true", help="100k and 1M videos (development)")
    parser.add_argument("--copy-memory-limit", default="8GB", help="memory_limit of the lineage COPY variant")
    parser.add_argument(
        "--rss-guard-gib",
        type=float,
        default=16.0,
        help="kill a step whose process tree goes over this (the machine is shared)",
    )
    parser.add_argument(
        "--sources",
        type=int,
        default=1,
        help="named sources (default 1: every shard 'default', no shard lists); N > 1: web ~70 %% "
        "of the shards, clean1..clean{N-1} the rest, each with its recipe's rules and steps",
    )
    parser.add_argument(
        "--s3",
        type=int,
        nargs=2,
        metavar=("SHARDS", "VIDEOS"),
        default=None,
        help="only the S3 case: global steps over SHARDS shards of VIDEOS videos, local root vs "
        "a local S3-compatible server (e.g. --s3 2000 25)",
    )
    parser.add_argument("--_step", dest="step", help=argparse.SUPPRESS)
    parser.add_argument("--_size", dest="size_run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_root", dest="root", help=argparse.SUPPRESS)
    parser.add_argument("--_result", dest="result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        args.size = args.sizes[0]
        run_step_main(args)
        return
    if args.size_run:
        run_size_main(args)
        return

    if args.s3:
        workdir = Path(tempfile.mkdtemp(prefix="bench-selection-s3-", dir=args.workdir))
        try:
            s3_main(*args.s3, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    sizes = args.sizes or ([100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000])
    if any(s % args.shard_size for s in sizes):
        raise SystemExit("every size must be a multiple of --shard-size")
    if args.sources < 1:
        raise SystemExit("--sources must be at least 1")
    for s in sizes:
        shard_sources_plan(s // args.shard_size, args.sources)  # enough shards for every source
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-selection-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    import duckdb
    import polars as pl

    facts = machine_facts(duckdb=duckdb.__version__, polars=pl.__version__)
    free = shutil.disk_usage(workdir).free
    print(
        f"bench_selection: sizes {sizes}, shard size {args.shard_size}, sources {args.sources}, workdir {workdir} "
        f"({_gib(free)} GiB free), {facts['CPU count']} cores, {facts['RAM']}, DuckDB {facts['duckdb']}",
        flush=True,
    )
    runs = []
    t_start = time.perf_counter()
    code_start = code_under_test()
    try:
        for size in sorted(sizes):
            root = workdir / f"videos-{size}"
            if root.exists():
                shutil.rmtree(root)
            result = root.with_suffix(".json")
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--_size",
                "--_root",
                str(root),
                "--_result",
                str(result),
                "--sizes",
                str(size),
                "--shard-size",
                str(args.shard_size),
                "--copy-memory-limit",
                args.copy_memory_limit,
                "--rss-guard-gib",
                str(args.rss_guard_gib),
                "--sources",
                str(args.sources),
            ]
            print(f"\n== {size:,} videos ({size // args.shard_size:,} shards) in its own process", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd)
            _, status, usage = os.wait4(proc.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0 or not result.exists():
                raise SystemExit(f"the {size:,} run failed (exit {os.waitstatus_to_exitcode(status)})")
            run = json.loads(result.read_text())
            run["wait4_maxrss"] = max(
                [usage.ru_maxrss * 1024]
                + [st.get(k, 0) for st in run["steps"].values() for k in ("maxrss_self", "maxrss_children")]
            )
            run["process_s"] = time.perf_counter() - t0
            runs.append(run)
            print(f"== {size:,} done in {run['process_s']:.0f} s, disk {_gib(run['disk_bytes'])} GiB", flush=True)
        report(runs, facts, args, workdir)
        code_end = code_under_test()
        changed = sorted(k for k in code_start.keys() | code_end.keys() if code_start.get(k) != code_end.get(k))
        print(
            "\ncode under test (sql/, store/, assets/selection.py, lineage.py, filters.py, recipe.py): "
            + (
                f"CHANGED during the run: {changed}; sizes may not be comparable"
                if changed
                else "unchanged during the run"
            )
        )
        print(f"whole benchmark: {time.perf_counter() - t_start:.0f} s")
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"removed {workdir}")


# --------------------------------------------------------------------------- the S3 case


def s3_main(shards: int, per_shard: int, workdir: Path) -> None:
    """The global steps over the same tables on a local root and on a local S3-compatible server (moto)."""
    import logging

    import boto3

    from openvid_assets_testing.s3server import local_s3, s3_variables

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

    with local_s3() as endpoint:
        env = {**os.environ, **s3_variables(endpoint)}
        os.environ.update(env)
        root = workdir / "local"
        t0 = time.perf_counter()
        generate_score_root(root, shards, per_shard)
        boto3.client("s3").create_bucket(Bucket="bench")
        objects = upload_root(root, "bench", "root")
        print(
            f"S3 case: {shards:,} shards x {per_shard} videos, {objects:,} objects "
            f"(generated and uploaded in {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        local = global_steps(str(root), env)
        s3 = global_steps("s3://bench/root", env)
    same = (
        s3["thresholds"] == local["thresholds"] and s3["lineage"] == local["lineage"] and s3["check"] == local["check"]
    )
    print("\n| step | local root | S3 (moto, loopback) | S3 / local |\n|---|---|---|---|")
    for label, key, unit in (
        ("thresholds: time", "thresholds_s", "s"),
        ("thresholds: peak memory", "thresholds_peak_mib", "MiB"),
        ("lineage: time", "lineage_s", "s"),
        ("thresholds + lineage: peak memory", "peak_mib", "MiB"),
    ):
        print(f"| {label} | {local[key]:.1f} {unit} | {s3[key]:.1f} {unit} | {s3[key] / max(local[key], 1e-9):.2f}x |")
    print(
        f"\nsame thresholds, lineage and check on both roots: {'yes' if same else 'NO'} "
        f"(lineage rows {s3['lineage'][0]:,}; missing/duplicated/unknown "
        f"{s3['check']['missing']}/{s3['check']['duplicated']}/{s3['check']['unknown']})"
    )
    if not same:
        raise SystemExit("the S3 root gave a different result")


if __name__ == "__main__":
    main()
