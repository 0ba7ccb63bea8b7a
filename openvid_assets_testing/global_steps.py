"""The global steps over one data root, timed in a fresh process: thresholds, then lineage streamed to parquet and
checked. Peak resident memory is taken above what the process held once imports and clients were warm (sampled
every 5 ms; ru_maxrss would keep the imports' peak), with the wall time of each step.

``python -m openvid_assets_testing.global_steps ROOT`` (a folder or ``s3://bucket/prefix``) prints the result as
one JSON line; ``global_steps(ROOT, env)`` runs that and returns it. Shared by ``bench/bench_selection.py --s3``
and ``openvid_assets_tests/store/test_s3_global_scan.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def measure(root: str) -> dict[str, Any]:
    """The global steps over ``root`` in this process (which should be fresh: its peak memory is the result)."""
    import duckdb

    from openvid_assets.assets.lineage import lineage_inputs
    from openvid_assets.store import TableStore, copy_sql, run_sql
    from openvid_assets.store.selection import SCORE_TABLES, compute_thresholds, parse_rules

    peak = [0]

    def rss_now() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_now())
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()

    tables = TableStore(root)
    tables.shards("video_manifest")  # clients and imports warmed up: what follows is the scan itself
    time.sleep(0.05)
    base = peak[0] = rss_now()
    t0 = time.perf_counter()
    scores = ("aesthetic", "temporal", "motion")
    thresholds = compute_thresholds(parse_rules({}), {s: tables.scan_source(SCORE_TABLES[s]) for s in scores}, "v1")
    tables.write("score_thresholds", "global", thresholds)
    thresholds_s = time.perf_counter() - t0
    time.sleep(0.05)
    thresholds_peak = peak[0]
    t0 = time.perf_counter()
    inputs = lineage_inputs(tables)
    with tempfile.TemporaryDirectory() as tmp:
        copy_sql("lineage", inputs, f"{tmp}/lineage.parquet", temp_directory=tmp)
        check = run_sql("lineage_check", {"manifest": inputs["manifest"], "lineage": [f"{tmp}/lineage.parquet"]})
        lineage_hash = duckdb.sql(
            f"SELECT count(*), sum(hash(video_id, source_uri, status, stage, reason)) FROM '{tmp}/lineage.parquet'"
        ).fetchall()[0]
    lineage_s = time.perf_counter() - t0
    time.sleep(0.05)
    return {
        "thresholds": thresholds.select("score", "lower", "upper", "videos").to_dicts(),
        "check": check.row(0, named=True),
        "lineage": [int(v) for v in lineage_hash],
        "thresholds_s": thresholds_s,
        "lineage_s": lineage_s,
        "thresholds_peak_mib": (thresholds_peak - base) / 2**20,
        "peak_mib": (peak[0] - base) / 2**20,
    }


def global_steps(root: str, env: dict[str, str]) -> dict[str, Any]:
    """``measure`` over ``root`` (a folder or ``s3://bucket/prefix``) in a fresh process given ``env``."""
    done = subprocess.run(
        [sys.executable, "-m", "openvid_assets_testing.global_steps", root],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"global steps over {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
