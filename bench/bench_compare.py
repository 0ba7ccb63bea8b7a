"""What comparing two recipe versions costs at 1M and 10M videos a version: time and peak memory.

Two synthetic saved versions per size (``tables/lineage_versions``, the rows ``sql/lineage_version.sql`` keeps: 1,000
videos a shard, three sources, ~5 % kept, drops at every stage), the second with one source's aesthetic cut moved
(about 3 % of the videos change fate) and some captions changed; then ``store.versions.compare`` as
``openvid-assets compare`` runs it: the per-video differences streamed to parquet by DuckDB, the summaries, the
cut lines, the distributions and the plots. Each size runs in its own process, for its peak RSS.

    .venv/bin/python -m bench.bench_compare                    # 1M and 10M (~5 min on 2 cores)
    .venv/bin/python -m bench.bench_compare --sizes 1000000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

from bench._report import machine_facts, markdown

VERSION_SQL = """
COPY (
    SELECT printf('%016x', i) AS video_id, printf('/pool/%s/v%09d.mp4', src, i) AS source_uri,
           printf('shard-%05d', i // 1000) AS shard, src AS source,
           CASE WHEN kept THEN 'kept' WHEN stage = 'probe' THEN 'failed' ELSE 'dropped' END AS status,
           CASE WHEN kept THEN 'captioned' ELSE stage END AS stage,
           CASE WHEN kept THEN '1 of 1 clips captioned'
                WHEN stage = 'quality' THEN printf('aesthetic %.4g < %.4g (%s: top 20%%)', aesthetic, cut, src)
                ELSE stage || ': synthetic reason' END AS reason,
           aesthetic, 0.9 + 0.1 * hash(i + 1) / 18446744073709551615 AS temporal,
           hash(i + 2) / 18446744073709551615 * 10 AS motion, NULL::DOUBLE AS codec_motion,
           CASE WHEN kept OR stage = 'clarity' THEN hash(i + 3) / 18446744073709551615 END AS clarity,
           CASE WHEN kept THEN 1 ELSE 0 END AS clips, CASE WHEN kept THEN 1 ELSE 0 END AS captioned,
           CASE WHEN kept THEN md5(printf('%d-%d', i, CASE WHEN i % 997 = 0 THEN $changed ELSE 0 END)) END
               AS caption_digest,
           1280 AS width, 720 AS height, 8.0 AS duration_s, 'v1' AS quality_version, 'v1' AS clarity_version
    FROM (
        SELECT i, src, aesthetic, cut,
               aesthetic >= cut AND hash(i + 4) % 100 < 25 AS kept,
               CASE WHEN hash(i + 5) % 100 < 3 THEN 'probe' WHEN aesthetic < cut THEN 'quality'
                    ELSE 'clarity' END AS stage
        FROM (
            SELECT i, ['web', 'clean', 'bare'][i % 3 + 1] AS src,
                   hash(i) / 18446744073709551615 * 10 AS aesthetic,
                   CASE WHEN i % 3 = 0 THEN $web_cut ELSE 8.0 END AS cut
            FROM range($n) AS t(i)
        )
    )
) TO '{path}' (FORMAT parquet)
"""


def make_version(tables_dir: Path, version: int, n: int, web_cut: float, changed: int) -> None:
    from openvid_assets.store.selection import THRESHOLDS_SCHEMA

    folder = tables_dir / "tables" / "lineage_versions"
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        VERSION_SQL.replace("{path}", str(folder / f"v{version:04d}.parquet")),
        {"n": n, "web_cut": web_cut, "changed": changed},
    )
    rows = [
        {"source": s, "score": "aesthetic", "rule": "top:20", "description": f"{s}: top 20%",
         "lower": web_cut if s == "web" else 8.0, "upper": None, "videos": n // 3, "version": f"v{version}"}
        for s in ("web", "clean", "bare")
    ]  # fmt: skip
    thresholds = tables_dir / "tables" / "threshold_versions"
    thresholds.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=THRESHOLDS_SCHEMA).write_parquet(thresholds / f"v{version:04d}.parquet")


def one_size(n: int) -> None:
    """Runs in its own process: prints 'seconds peak_gib entered left moved recaptioned'."""
    from openvid_assets.store import TableStore
    from openvid_assets.store.versions import Side, compare

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_version(root, 1, n, web_cut=8.0, changed=0)
        make_version(root, 2, n, web_cut=7.7, changed=1)
        tables = TableStore(str(root))
        started = time.perf_counter()
        result = compare(Side(tables, 1), Side(tables, 2), out=tables)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        total = result.sources.filter(pl.col("source") == "all").row(0, named=True)
        print(seconds, peak, total["entered"], total["left"], total["moved"], total["recaptioned"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_size(args.one)
        return
    for key, value in machine_facts(duckdb=duckdb.__version__).items():
        print(f"{key}: {value}")
    rows = []
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_compare", "--one", str(n)], capture_output=True, text=True, check=True
        )
        seconds, peak, entered, left, moved, recaptioned = out.stdout.split()[-6:]
        rows.append([f"{n:,}", f"{float(seconds):.1f}", f"{float(peak):.2f}", entered, left, moved, recaptioned])
    print(markdown(["videos a version", "compare s", "peak RSS GiB", "entered", "left", "moved", "recaptioned"], rows))


if __name__ == "__main__":
    main()
