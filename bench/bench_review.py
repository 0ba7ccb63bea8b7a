"""The review page (issue 18): what a preview costs beside a probe, and how long the first page takes at 100k.

What it measures (every number comes from this one run; nothing is hard-coded):

1. Preview cost per video, relative to probing the same video. ``--videos`` synthetic videos
   (``samples.smooth_pan``, half at 640x360 and half at 1280x720, ``--seconds`` long at 30 fps, H.264
   from x264 ``ultrafast``) are probed with ``build_manifest`` (hash + ffprobe, as the ``video_manifest`` asset
   calls it: one thread per core) and previewed with ``preview_shard`` (one ffmpeg call per video making the
   animated WebP and the JPEG poster under the data root, as the ``previews`` asset calls it: 2 workers, the
   default ``decode_workers``, default ``PreviewSettings``). One untimed round of each first (checks both work,
   warms the page cache), then ``--repeats`` timed rounds with the order of the two steps alternating. Printed
   per resolution: ms per video for each (median over repeats) and preview / probe (median of the per-repeat
   ratios).

2. Time to the first review page over ``--page-videos`` scored videos (100k: 100 shards of 1,000). Untimed,
   a data root is written where the pipeline writes its tables: the manifest, shard lists and score tables of
   ``openvid_assets_testing.selection_tables.gen_scores_block`` (the pipeline's exact schemas), then per shard a
   ``previews`` table (``PREVIEW_SCHEMA``: every readable video, ~0.5 % failed, plus a row per captioned clip)
   and a ``captions`` table (``CAPTION_SCHEMA``: 2 clips for 40 % of the readable videos), and the global
   ``score_thresholds`` (``compute_thresholds`` with the default rules). Preview files are not written: the
   page's sample does not read them. Then, timed:

   * baseline: a plain DuckDB ``SELECT count(*)`` over the same ``aesthetic_scores`` files (fresh connection);
   * ``ReviewData(root).sample("aesthetic", bands=10, per_band=4, seed=0)``: cold (first call on a new
     ReviewData) and warm (second call on it);
   * the app's first page through ``starlette.testclient.TestClient(create_app(root))``: a new app, then the
     three requests the page makes before it draws the grid (``GET /``, ``GET /api/scores``,
     ``GET /api/sample?score=aesthetic``, the page's defaults of 5 bands x 8); the sample request also apart.

   Each is repeated ``--repeats`` times (a new ReviewData / app each time); medians are printed, in seconds
   and as a multiple of the count(*) baseline, the number to compare across machines. "Cold" is cold for the
   page's objects, not for the OS: the tables were just written, so they are in the page cache, and DuckDB
   and Polars are already imported (a running server's case).

    .venv/bin/python bench/bench_review.py            # 24 videos, 100k scored videos (~75 s on 2 cores)
    .venv/bin/python bench/bench_review.py --quick    # 8 videos, 10k scored videos (~25 s): checks it works
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench._report import machine_facts, markdown
from openvid_assets_testing.selection_tables import GEN_BLOCK, gen_scores_block

SHARD_SIZE = 1000
SIZES = [(640, 360), (1280, 720)]
PREVIEW_FAIL_RATE = 0.005  # of readable videos: ffmpeg could not make the preview
CAPTIONED = 0.4  # of readable videos: 2 captioned clips each (selected, cut, captioned)
WORDS = (
    "a the slow camera pans across wide green field under bright sky while small figure walks toward old "
    "stone house near river trees move gently wind light warm evening soft clouds drift"
).split()


# --------------------------------------------------------------------------- 1. preview vs probe


def make_videos(folder: Path, count: int, seconds: float) -> dict[str, list[str]]:
    """``count`` videos, alternating 640x360 and 1280x720; their paths by resolution."""
    from openvid_assets import samples

    frames = int(round(30 * seconds))
    out: dict[str, list[str]] = {f"{w}x{h}": [] for w, h in SIZES}
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        spec = samples.smooth_pan(
            folder,
            f"v{i:03d}-{height}p.mp4",
            width=width,
            height=height,
            fps=30.0,
            num_frames=frames,
            seed=i + 1,
            px_per_frame=2,
        )
        out[f"{width}x{height}"].append(str(folder / spec.name))
    return out


def probe_step(uris: list[str], source_root: str) -> tuple[float, pl.DataFrame]:
    """Seconds of ``build_manifest`` as the video_manifest asset calls it (workers: one per core)."""
    from openvid_assets.media.manifest import build_manifest

    t0 = time.perf_counter()
    manifest = build_manifest(uris, source_root, "shard-00000")
    return time.perf_counter() - t0, manifest


def preview_step(manifest: pl.DataFrame, source_root: str, data_root: str) -> float:
    """Seconds of ``preview_shard`` as the previews asset calls it (2 workers, default settings, no reuse)."""
    from openvid_assets.media.previews import PreviewSettings, PreviewStore, preview_items, preview_shard
    from openvid_assets.media.sources import local_file
    from openvid_assets.media.tasks import video_tasks
    from openvid_assets.store import TableStore

    items = preview_items(video_tasks(manifest), None)
    store = PreviewStore(TableStore(data_root).fs, "shard-00000")
    t0 = time.perf_counter()
    result = preview_shard(
        items, lambda task: local_file(task.source_uri, source_root), store, PreviewSettings(), workers=2
    )
    seconds = time.perf_counter() - t0
    failed = result.table.filter(pl.col("status") != "ok")
    if failed.height or result.computed != len(items):
        raise SystemExit(f"previews failed: {failed.select('item', 'error').to_dicts()}")
    return seconds


def preview_vs_probe(workdir: Path, count: int, seconds: float, repeats: int) -> list[list[str]]:
    source = workdir / "videos"
    source.mkdir()
    t0 = time.perf_counter()
    groups = make_videos(source, count, seconds)
    print(f"{count} videos of {seconds:g} s at 30 fps made in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    totals: dict[str, list[float]] = {"probe": [0.0] * repeats, "preview": [0.0] * repeats}
    for name, uris in groups.items():
        _, manifest = probe_step(uris, str(source))  # untimed round: checks both steps, warms the page cache
        if (manifest["status"] != "ok").any():
            raise SystemExit(f"probe failed: {manifest.filter(pl.col('status') != 'ok')['error'].to_list()}")
        preview_step(manifest, str(source), str(workdir / "data"))
        probe_s, preview_s = [], []
        for r in range(repeats):
            for step in ("probe", "preview") if r % 2 == 0 else ("preview", "probe"):
                if step == "probe":
                    probe_s.append(probe_step(uris, str(source))[0])
                else:
                    preview_s.append(preview_step(manifest, str(source), str(workdir / "data")))
        for r in range(repeats):
            totals["probe"][r] += probe_s[r]
            totals["preview"][r] += preview_s[r]
        rows.append(_cost_row(name, len(uris), probe_s, preview_s))
        print(f"  {name}: probe {rows[-1][2]} ms/video, preview {rows[-1][3]} ms/video", flush=True)
    rows.append(_cost_row("all", count, totals["probe"], totals["preview"]))
    return rows


def _cost_row(name: str, n: int, probe_s: list[float], preview_s: list[float]) -> list[str]:
    ratios = [b / a for a, b in zip(probe_s, preview_s)]
    return [
        name,
        str(n),
        f"{1000 * statistics.median(probe_s) / n:.0f}",
        f"{1000 * statistics.median(preview_s) / n:.0f}",
        f"{statistics.median(ratios):.1f}x",
        f"{min(ratios):.1f}-{max(ratios):.1f}",
    ]


# --------------------------------------------------------------------------- 2. first page at 100k


def captions_table(manifest: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """CAPTION_SCHEMA: 2 ok clips (~60-word captions) for ``CAPTIONED`` of the shard's readable videos."""
    from openvid_assets.models.shards.tables import CAPTION_SCHEMA

    videos = manifest.filter(pl.col("status") == "ok").unique("video_id", keep="first", maintain_order=True)
    videos = videos.filter(pl.Series(rng.random(videos.height) < CAPTIONED))
    rows = []
    for vid, frames in zip(videos["video_id"], videos["num_frames"]):
        half = int(frames) // 2
        for start, end in ((0, half - 1), (half, int(frames) - 1)):
            text = " ".join(rng.choice(WORDS, 60)).capitalize() + "."
            rows.append(
                {
                    "clip_id": f"{vid}-{start:07d}-{end:07d}",
                    "video_id": vid,
                    "status": "ok",
                    "caption": text,
                    "caption_raw": text,
                    "truncated": False,
                    "camera_motion": "pan",
                    "frame_indices": [start, (start + end) // 2, end],
                    "model": "Qwen/Qwen2-VL-7B-Instruct",
                    "weights_digest": "0" * 64,
                    "params": "{}",
                    "params_hash": "0" * 16,
                }
            )
    return pl.DataFrame(rows, schema=CAPTION_SCHEMA)


def previews_table(
    manifest: pl.DataFrame, captions: pl.DataFrame, shard: str, rng: np.random.Generator
) -> pl.DataFrame:
    """PREVIEW_SCHEMA, as preview_shard writes it: every readable video, then every captioned clip."""
    from openvid_assets.media.previews import PREVIEW_SCHEMA, PREVIEW_TOOL, PreviewSettings
    from openvid_assets.store.rows import RowKey

    videos = manifest.filter(pl.col("status") == "ok").unique("video_id", keep="first", maintain_order=True)
    items = pl.concat(
        [
            videos.select(item="video_id", kind=pl.lit("video"), video_id="video_id"),
            captions.select(item="clip_id", kind=pl.lit("clip"), video_id="video_id"),
        ]
    )
    failed = pl.Series(rng.random(items.height) < PREVIEW_FAIL_RATE) & (items["kind"] == "video")
    folder = f"previews/{shard}/"
    return (
        items.with_columns(
            shard=pl.lit(shard),
            status=pl.when(failed).then(pl.lit("failed")).otherwise(pl.lit("ok")),
            error=pl.when(failed).then(
                pl.lit("ffmpeg could not make the preview: Invalid data found when processing input")
            ),
            preview=pl.when(~failed).then(folder + pl.col("item") + ".webp"),
            poster=pl.when(~failed).then(folder + pl.col("item") + ".jpg"),
            params_hash=pl.lit(RowKey(PREVIEW_TOOL, "", PreviewSettings().params()).params_hash),
        )
        .select(list(PREVIEW_SCHEMA))
        .cast(PREVIEW_SCHEMA)
    )


def make_data_root(root: Path, videos: int) -> None:
    """Manifest, shard lists and score tables (openvid_assets_testing.selection_tables), previews, captions, thresholds."""
    from openvid_assets.store import TableStore
    from openvid_assets.store.selection import SCORE_TABLES, compute_thresholds, parse_rules, version_of
    from openvid_assets.store.shards import DEFAULT_SOURCE

    shards = videos // SHARD_SIZE
    for first in range(0, shards, GEN_BLOCK):
        count = min(GEN_BLOCK, shards - first)
        gen_scores_block((str(root), first, count, SHARD_SIZE, [DEFAULT_SOURCE] * count))
    tables = TableStore(str(root))
    for shard in tables.shards("video_manifest"):
        rng = np.random.default_rng(int(shard.rsplit("-", 1)[1]))
        manifest = tables.read("video_manifest", shard)
        captions = captions_table(manifest, rng)
        tables.write("captions", shard, captions)
        tables.write("previews", shard, previews_table(manifest, captions, shard, rng))
    rules, scores = parse_rules({}), ("aesthetic", "temporal", "motion")
    version = version_of({s: rules[s] for s in scores}, "+".join(tables.fingerprint(SCORE_TABLES[s]) for s in scores))
    tables.write(
        "score_thresholds",
        "global",
        compute_thresholds(rules, {s: tables.scan_source(SCORE_TABLES[s]) for s in scores}, version),
    )


def count_star(files: list[str]) -> float:
    import duckdb

    t0 = time.perf_counter()
    with duckdb.connect(":memory:") as con:
        con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()
    return time.perf_counter() - t0


def first_page(root: str) -> dict[str, float]:
    """Seconds of: a new ReviewData's first and second sample; a new app's first page and its sample request."""
    from starlette.testclient import TestClient

    from openvid_assets.review.app import ReviewData, create_app

    out: dict[str, float] = {}
    data = ReviewData(root)
    t0 = time.perf_counter()
    cold = data.sample("aesthetic", bands=10, per_band=4, seed=0)
    out["cold"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = data.sample("aesthetic", bands=10, per_band=4, seed=0)
    out["warm"] = time.perf_counter() - t0
    if cold.height != 40 or sorted(set(cold["band"])) != list(range(1, 11)) or not cold.equals(warm):
        raise SystemExit(f"unexpected sample: {cold.height} rows, bands {sorted(set(cold['band']))}")
    t0 = time.perf_counter()
    client = TestClient(create_app(root))
    for path in ("/", "/api/scores"):
        client.get(path).raise_for_status()
    t1 = time.perf_counter()
    response = client.get("/api/sample?score=aesthetic")
    out["app_sample"] = time.perf_counter() - t1
    out["app"] = time.perf_counter() - t0
    response.raise_for_status()
    if len(response.json()["items"]) != 40:
        raise SystemExit(f"the app's first page has {len(response.json()['items'])} items, not 5 x 8")
    return out


def page_times(workdir: Path, videos: int, repeats: int) -> tuple[list[list[str]], dict[str, Any]]:
    from openvid_assets.store import TableStore

    root = workdir / "root"
    t0 = time.perf_counter()
    make_data_root(root, videos)
    tables = TableStore(str(root))
    files = tables.scan_source("aesthetic_scores")

    def rows(asset: str) -> int:
        return pl.scan_parquet(tables.scan_source(asset)).select(pl.len()).collect().item()

    facts = {
        "shards": len(files),
        "previews rows": rows("previews"),
        "captions rows": rows("captions"),
        "generated in": f"{time.perf_counter() - t0:.0f} s",
    }
    print(
        f"data root: {videos:,} videos in {len(files)} shards, {facts['previews rows']:,} preview rows, "
        f"{facts['captions rows']:,} caption rows (generated in {facts['generated in']})",
        flush=True,
    )
    base, runs = [], []
    for _ in range(repeats):
        base.append(count_star(files))
        runs.append(first_page(str(root)))
        print(f"  count(*) {base[-1]:.3f} s; " + ", ".join(f"{k} {v:.3f} s" for k, v in runs[-1].items()), flush=True)
    unit = statistics.median(base)
    labels = {
        "cold": "ReviewData.sample, cold (new ReviewData, 10 bands x 4)",
        "warm": "ReviewData.sample, warm (second call)",
        "app": "app's first page: new app, GET /, /api/scores, /api/sample?score=aesthetic",
        "app_sample": "of which GET /api/sample?score=aesthetic (5 x 8)",
    }
    rows = [
        [
            "DuckDB count(*) over the aesthetic_scores files (baseline)",
            f"{unit:.3f}",
            "1.0x",
            f"{min(base):.3f}-{max(base):.3f}",
        ]
    ]
    for key, label in labels.items():
        values = [r[key] for r in runs]
        rows.append(
            [
                label,
                f"{statistics.median(values):.3f}",
                f"{statistics.median(values) / unit:.0f}x",
                f"{min(values):.3f}-{max(values):.3f}",
            ]
        )
    return rows, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=24, help="generated videos for preview vs probe")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each generated video")
    parser.add_argument("--page-videos", type=int, default=100_000, help="scored videos for the first page")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="where videos and tables go (default: a new folder in /tmp)")
    parser.add_argument("--quick", action="store_true", help="8 videos of 4 s, 10k scored videos, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.seconds, args.page_videos, args.repeats = 8, 4.0, 10_000, 2
    import duckdb

    facts = machine_facts(duckdb=duckdb.__version__, polars=pl.__version__)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-review-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        cost_rows = preview_vs_probe(workdir, args.videos, args.seconds, args.repeats)
        page_rows, page_facts = page_times(workdir, args.page_videos, args.repeats)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(f"- {args.repeats} repeat(s); medians\n")
    print(
        f"Preview vs probe: {args.videos} synthetic videos (smooth pan, H.264), {args.seconds:g} s at 30 fps; "
        "probe = build_manifest (one thread per core), preview = preview_shard (2 workers, 256 px WebP of 3 s at "
        "8 fps + JPEG poster)\n"
    )
    print(
        markdown(
            ["videos", "n", "probe ms/video", "preview ms/video", "preview / probe", "range over repeats"], cost_rows
        )
    )
    print(
        f"\nFirst review page over {args.page_videos:,} scored videos ({page_facts['shards']} shards, "
        f"{page_facts['previews rows']:,} preview rows, {page_facts['captions rows']:,} caption rows)\n"
    )
    print(markdown(["step", "seconds", "/ count(*)", "range over repeats (s)"], page_rows))


if __name__ == "__main__":
    main()
