"""The pipeline's tables at scale, written without running it: video manifests, score and content tables,
shard lists, near-duplicates and clarity scores, in the pipeline's exact schemas and places
(``<root>/tables/<asset>/<shard>.parquet``), with failed probes, in-shard and cross-shard duplicates and decode
failures (bench/bench_selection.py's docstring describes the mix).

Every value is a function of (``SEED``, shard index) or of a video's content, so a shard regenerates alone and a
copy carries its original's scores. Shared by ``bench/bench_selection.py`` and ``bench/bench_review.py`` (which
time the steps over these tables) and ``openvid_assets_tests/store/test_s3_global_scan.py``. numpy, polars and
the schemas are imported inside the functions: the generating worker processes import no model code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SEED = 20240611
GEN_BLOCK = 20  # shards generated together (polars' per-call costs amortised over 20,000 rows)

FAIL_RATE = 0.03  # manifest rows that are not ok (of which in-shard duplicates below)
INSHARD_DUP_RATE = 0.002  # 'failed' with 'duplicate content of s3://...'
CROSS_DUP_RATE = 0.005  # ok videos repeating the content of a video in an earlier shard
DECODE_FAIL_RATE = 0.005  # per score table, among ok videos
PROBE_ERRORS = [
    "ffprobe failed: Invalid data found when processing input",
    "no video stream",
    "empty file",
    "ffprobe timed out after 60.0 s",
]
RESOLUTIONS = [
    (1920, 1080, 0.35),
    (1280, 720, 0.38),
    (3840, 2160, 0.05),
    (1080, 1920, 0.07),
    (720, 1280, 0.05),
    (640, 360, 0.10),
]
FPS = [(23.976, 0.15), (24.0, 0.15), (25.0, 0.2), (29.97, 0.25), (30.0, 0.15), (60.0, 0.1)]
CODECS = [("h264", 0.85), ("hevc", 0.1), ("vp9", 0.05)]
SCORE_KEYS = {
    "aesthetic_scores": ("ViT-L-14/openai+laion-aesthetic-v2", {"aesthetic_positions": [0.1, 0.5, 0.9]}),
    "temporal_scores": ("ViT-L-14/openai:adjacent-cosine", {"temporal_frames": 8}),
    "motion_scores": ("farneback", {"pairs": 8, "size": 256}),
    "clarity_scores": ("laplacian-sharpness", {"positions": [0.25, 0.5, 0.75], "crop": 0.5, "grid": 4}),
}
# content_scores (CONTENT_SCHEMA): measures of the CLIP pass, so its failures are the aesthetic pass's (salt 100)
CONTENT_SALT = 100
NSFW_MODEL = "CompVis/stable-diffusion-safety-checker"
TEXT_RATE = 0.02  # videos with burnt-in text above the default max:0.03
LETTERBOX_RATE = 0.10  # videos with black bars (the rest: the full frame)
NEAR_DUP_RATE = 0.01  # ok videos near_duplicates drops as a near-copy of another video of the pool


def _hex(raw: Any) -> Any:
    """(n, m) uint8 -> n hex strings of 2m characters, vectorised."""
    import numpy as np

    digits = np.frombuffer(b"0123456789abcdef", dtype="S1")
    n, m = raw.shape
    out = np.empty((n, 2 * m), dtype="S1")
    out[:, 0::2] = digits[raw >> 4]
    out[:, 1::2] = digits[raw & 15]
    return out.view(f"S{2 * m}").ravel().astype(f"U{2 * m}")


def _base(index: int, n: int) -> tuple[Any, Any]:
    """Content hashes and the status draw of shard ``index``: regenerable from (seed, index) alone."""
    import numpy as np

    rng = np.random.default_rng([SEED, index])
    return _hex(rng.integers(0, 256, size=(n, 32), dtype=np.uint8)), rng.random(n)


def _uniform(values: Any, seed: int) -> Any:
    """A deterministic uniform (0, 1) per value: the same content always draws the same number."""
    import numpy as np
    import polars as pl

    h = pl.Series(values, dtype=pl.String).hash(seed=seed).to_numpy()
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _normal(values: Any, seed: int) -> Any:
    import numpy as np

    u1, u2 = _uniform(values, seed), _uniform(values, seed + 1)
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def _pick(u: Any, choices: list[tuple[Any, float]]) -> Any:
    import numpy as np

    edges = np.cumsum([p for _, p in choices])
    edges[-1] = 1.0
    return np.searchsorted(edges, u, side="right").clip(0, len(choices) - 1)


def make_manifest(index: int, n: int, prefix: str = "s3://openvid-raw/pool") -> Any:
    import numpy as np
    import polars as pl

    from openvid_assets.media.manifest import MANIFEST_SCHEMA
    from openvid_assets.store.shards import shard_key

    shard = shard_key(index)
    sha, u = _base(index, n)
    sha = sha.astype(object)
    rng = np.random.default_rng([SEED, index, 1])
    pos = np.arange(n)
    uri = np.array([f"{prefix}/{shard}/clip-{p:05d}.mp4" for p in range(n)], dtype=object)
    original = u >= FAIL_RATE + CROSS_DUP_RATE
    plain_fail = (u < FAIL_RATE) & (u >= INSHARD_DUP_RATE)
    in_dup = u < INSHARD_DUP_RATE
    cross = (u >= FAIL_RATE) & (u < FAIL_RATE + CROSS_DUP_RATE)
    # an in-shard duplicate repeats the last original before it (or fails to probe if none)
    last_orig = np.maximum.accumulate(np.where(original, pos, -1))
    prev = np.concatenate([[-1], last_orig[:-1]])
    plain_fail |= in_dup & (prev < 0)
    in_dup &= prev >= 0
    sha[in_dup] = sha[prev[in_dup]]
    # a cross-shard duplicate repeats an original of an earlier shard
    if index == 0:
        original |= cross
        cross[:] = False
    for p in np.flatnonzero(cross):
        j = int(rng.integers(0, index))
        sha_j, u_j = _base(j, n)
        sha[p] = sha_j[rng.choice(np.flatnonzero(u_j >= FAIL_RATE + CROSS_DUP_RATE))]
    ok = ~(plain_fail | in_dup)
    probed = ~plain_fail
    sha_s = sha.astype(str)
    video_id = np.where(probed, sha_s.astype("U20"), np.char.add("uri-", sha_s.astype("U16")))
    error = np.full(n, None, dtype=object)
    error[plain_fail] = np.array(PROBE_ERRORS, dtype=object)[rng.integers(0, len(PROBE_ERRORS), plain_fail.sum())]
    error[in_dup] = np.char.add("duplicate content of ", uri[prev[in_dup]].astype(str)).astype(object)
    # probe facts are functions of the content
    res = _pick(_uniform(sha_s, 1), [(r, r[2]) for r in RESOLUTIONS])
    fps = np.array([f for f, _ in FPS])[_pick(_uniform(sha_s, 2), FPS)]
    duration = np.clip(np.exp(2.0 + 0.6 * _normal(sha_s, 3)), 2.0, 60.0)
    num_frames = np.maximum(np.rint(duration * fps), 2).astype(np.int64)
    width = np.array([r[0] for r in RESOLUTIONS], dtype=np.int32)[res]
    height = np.array([r[1] for r in RESOLUTIONS], dtype=np.int32)[res]
    bitrate = 0.6e6 + 9e6 * _uniform(sha_s, 5) * (width.astype(float) * height / (1920 * 1080))
    codec = np.array([c for c, _ in CODECS], dtype=object)[_pick(_uniform(sha_s, 6), CODECS)]
    rotation = np.where(_uniform(sha_s, 7) < 0.03, 90, 0).astype(np.int32)

    def facts(values: Any, dtype: Any) -> pl.Series:
        return pl.Series(values).cast(dtype).scatter(np.flatnonzero(~probed), None)

    return pl.DataFrame(
        {
            "video_id": video_id,
            "source_uri": uri.tolist(),
            "shard": [shard] * n,
            "position": pos.astype(np.int32),
            "size_bytes": facts((bitrate * duration / 8).astype(np.int64), pl.Int64),
            "content_sha256": facts(sha_s, pl.String),
            "container": facts(np.full(n, "mov,mp4,m4a,3gp,3g2,mj2"), pl.String),
            "codec": facts(codec.astype(str), pl.String),
            "width": facts(width, pl.Int32),
            "height": facts(height, pl.Int32),
            "fps": facts(fps, pl.Float64),
            "num_frames": facts(num_frames, pl.Int64),
            "duration_s": facts(num_frames / fps, pl.Float64),
            "rotation": facts(rotation, pl.Int32),
            "status": np.where(ok, "ok", "failed"),
            "error": error.tolist(),
        },
        schema=MANIFEST_SCHEMA,
    )


def _indices(num_frames: Any, positions: Any) -> Any:
    import numpy as np

    nf = np.nan_to_num(num_frames.astype(float), nan=2.0)
    return np.rint(np.asarray(positions)[None, :] * (nf[:, None] - 1)).astype(np.int32)


_SCORE_SCHEMA: dict[str, Any] | None = None


def _set_score_schema(schema: dict[str, Any] | None) -> None:
    """Workers get SCORE_SCHEMA from their parent: importing it here would import torch in every worker."""
    global _SCORE_SCHEMA
    if schema is None:
        from openvid_assets.models.shards.tables import SCORE_SCHEMA as schema
    _SCORE_SCHEMA = schema


def make_scores(manifest: Any, asset: str) -> Any:
    """One score table in SCORE_SCHEMA (+ the motion extras), one row per manifest row, manifest order."""
    import hashlib

    import numpy as np
    import polars as pl

    if _SCORE_SCHEMA is None:
        _set_score_schema(None)
    SCORE_SCHEMA = _SCORE_SCHEMA

    model, params = SCORE_KEYS[asset]
    params_json = json.dumps(params, sort_keys=True, separators=(",", ":"))
    salt = {"aesthetic_scores": 100, "temporal_scores": 200, "motion_scores": 300, "clarity_scores": 400}[asset]
    n = manifest.height
    vid = manifest["video_id"].to_numpy()
    manifest_ok = (manifest["status"] == "ok").to_numpy()
    decode_ok = _uniform(vid, salt) >= DECODE_FAIL_RATE
    ok = manifest_ok & decode_ok
    z = _normal(vid, salt + 1)
    nf = manifest["num_frames"].to_numpy()
    extra: dict[str, Any] = {}
    if asset == "aesthetic_scores":
        score, idx = 5.0 + 0.7 * z, _indices(nf, [0.1, 0.5, 0.9])
    elif asset == "temporal_scores":
        b = _uniform(vid, salt + 3)
        score, idx = (
            0.8 + 0.2 * (1 - (1 - b) ** 3) ** 0.5 - 0.01 * _uniform(vid, salt + 4),
            _indices(nf, np.linspace(0, 1, 8)),
        )
    elif asset == "motion_scores":
        score = np.exp(0.3 + 0.9 * z)
        idx = np.sort(
            np.concatenate(
                [_indices(nf - 1, np.linspace(0.05, 0.95, 8)), _indices(nf - 1, np.linspace(0.05, 0.95, 8)) + 1], axis=1
            ),
            axis=1,
        )
        angle = 2 * np.pi * _uniform(vid, salt + 5)
        extra = {
            "flow_dx": score * np.cos(angle),
            "flow_dy": score * np.sin(angle),
            "flow_div": 0.01 * _normal(vid, salt + 7),
        }
    else:
        score, idx = np.exp(5.5 + 0.8 * z), _indices(nf, [0.25, 0.5, 0.75])
    error = np.full(n, None, dtype=object)
    error[~manifest_ok] = ("manifest: " + manifest["error"].filter(~manifest["status"].eq("ok"))).to_numpy()
    error[manifest_ok & ~decode_ok] = "decode: invalid NAL unit size (corrupt frame)"
    bad = np.flatnonzero(~ok)
    frames = pl.select(pl.when(pl.Series(ok)).then(pl.Series(idx).cast(pl.List(pl.Int32)))).to_series()
    data = {
        "video_id": manifest["video_id"],
        "source_uri": manifest["source_uri"],
        "status": np.where(ok, "ok", "failed"),
        "error": error.tolist(),
        "score": pl.Series(score).scatter(bad, None),
        "frame_indices": frames,
        "model": [model] * n,
        "weights_digest": [hashlib.sha256(model.encode()).hexdigest()] * n,
        "params": [params_json] * n,
        "params_hash": [hashlib.sha256(params_json.encode()).hexdigest()[:16]] * n,
        **{k: pl.Series(v).scatter(bad, None) for k, v in extra.items()},
    }
    return pl.DataFrame(data, schema={**SCORE_SCHEMA, **{k: pl.Float64 for k in extra}})


_CONTENT_SCHEMA: dict[str, Any] | None = None


def set_schemas(score: dict[str, Any] | None, content: dict[str, Any] | None = None) -> None:
    """Worker initializer: the score and content schemas from the parent (no model imports in workers)."""
    global _CONTENT_SCHEMA
    _set_score_schema(score)
    _CONTENT_SCHEMA = content


def make_content(manifest: Any) -> Any:
    """content_scores in CONTENT_SCHEMA, one row per manifest row, manifest order. Measures are functions of the
    content; failures mirror the aesthetic table's (the same CLIP pass): the manifest's and the decode failures.
    Brightness ~N(125, 45) clipped to 0-255 (~95 % in 40-220, ~1.7 % under 30, ~1.3 % over 225), dark / bright
    shares following it, contrast ~N(45, 12), text area 0 for 60 %, under 0.02 for 38 %, 0.03-0.13 for 2 %
    (subtitles), NSFW margin negative, and the full frame as crop box for 90 % (letterbox bars for the rest)."""
    import hashlib

    import numpy as np
    import polars as pl

    global _CONTENT_SCHEMA
    if _CONTENT_SCHEMA is None:
        from openvid_assets.models.shards.tables import CONTENT_SCHEMA as schema

        _CONTENT_SCHEMA = schema
    salt = 500
    n = manifest.height
    vid = manifest["video_id"].to_numpy()
    manifest_ok = (manifest["status"] == "ok").to_numpy()
    ok = manifest_ok & (_uniform(vid, CONTENT_SALT) >= DECODE_FAIL_RATE)
    error = np.full(n, None, dtype=object)
    error[~manifest_ok] = ("manifest: " + manifest["error"].filter(~manifest["status"].eq("ok"))).to_numpy()
    error[manifest_ok & ~ok] = "decode: invalid NAL unit size (corrupt frame)"
    bad = np.flatnonzero(~ok)

    def sigmoid(x: Any) -> Any:
        return 1.0 / (1.0 + np.exp(-x))

    brightness = np.clip(125.0 + 45.0 * _normal(vid, salt), 0.0, 255.0)
    dark = np.clip(0.9 * sigmoid((60.0 - brightness) / 15.0) + 0.02 * _uniform(vid, salt + 2), 0.0, 1.0)
    bright = np.clip(0.8 * sigmoid((brightness - 200.0) / 12.0) + 0.02 * _uniform(vid, salt + 3), 0.0, 1.0)
    contrast = np.clip(45.0 + 12.0 * _normal(vid, salt + 4), 1.0, 127.0)
    colour = np.exp(3.5 + 0.4 * _normal(vid, salt + 6))
    u_text, u_amount = _uniform(vid, salt + 8), _uniform(vid, salt + 9)
    text = np.where(u_text < TEXT_RATE, 0.03 + 0.1 * u_amount, np.where(u_text < 0.4, 0.02 * u_amount**2, 0.0))
    nsfw = -0.02 - 0.2 * _uniform(vid, salt + 10)
    width = manifest["width"].fill_null(0).to_numpy().astype(np.int32)
    height = manifest["height"].fill_null(0).to_numpy().astype(np.int32)
    bordered = _uniform(vid, salt + 11) < LETTERBOX_RATE
    bar = np.where(bordered, np.rint(height * (0.08 + 0.06 * _uniform(vid, salt + 12))), 0).astype(np.int32)
    identity = {"model": [NSFW_MODEL] * n, "weights_digest": [hashlib.sha256(NSFW_MODEL.encode()).hexdigest()] * n}

    def measure(values: Any, dtype: Any = pl.Float64) -> pl.Series:
        return pl.Series(values).cast(dtype).scatter(bad, None)

    return pl.DataFrame(
        {
            "video_id": manifest["video_id"],
            "source_uri": manifest["source_uri"],
            "status": np.where(ok, "ok", "failed"),
            "error": error.tolist(),
            "brightness": measure(brightness),
            "dark_share": measure(dark),
            "bright_share": measure(bright),
            "contrast": measure(contrast),
            "colourfulness": measure(colour),
            "text_area": measure(text),
            "nsfw": measure(nsfw),
            "crop_x": measure(np.zeros(n, np.int32), pl.Int32),
            "crop_y": measure(bar, pl.Int32),
            "crop_w": measure(width, pl.Int32),
            "crop_h": measure(height - 2 * bar, pl.Int32),
            "bordered": measure(bordered, pl.Boolean),
            **identity,
        },
        schema=_CONTENT_SCHEMA,
    )


def near_duplicate_rows(block: Any, content: Any, first: int) -> Any:
    """A block's part of near_duplicates: ~NEAR_DUP_RATE of its ok videos (chosen by content, so every copy of
    a video is chosen alike), each a near-copy of another ok video of the block (20 shards: most pairs cross
    shards) that is never itself chosen; cosine 0.98-1.0. video_id, duplicate_of, cosine (group_size: later)."""
    import numpy as np
    import polars as pl

    ok = (content["status"] == "ok").to_numpy()
    vid = block["video_id"].to_numpy()
    chosen = ok & (_uniform(vid, 600) < NEAR_DUP_RATE)
    keepers = np.unique(vid[ok & ~chosen])
    victims = np.unique(vid[chosen])
    rng = np.random.default_rng([SEED, first, 6])
    if not len(victims) or not len(keepers):
        return pl.DataFrame(schema={"video_id": pl.String, "duplicate_of": pl.String, "cosine": pl.Float64})
    return pl.DataFrame(
        {
            "video_id": victims,
            "duplicate_of": keepers[rng.integers(0, len(keepers), len(victims))],
            "cosine": 0.98 + 0.02 * _uniform(victims, 601),
        },
        schema={"video_id": pl.String, "duplicate_of": pl.String, "cosine": pl.Float64},
    )


def write_near_duplicates(root: str, parts: list[Any]) -> int:
    """The global near_duplicates table (DUPLICATES_SCHEMA) from every block's rows: one row per dropped video,
    group_size = the keeper's dropped videos + 1."""
    import polars as pl

    from openvid_assets.assets.filters import DUPLICATES, DUPLICATES_SCHEMA, GLOBAL

    rows = pl.concat(parts).unique("video_id", keep="first").sort("video_id")
    table = rows.with_columns(group_size=pl.len().over("duplicate_of") + 1).select(list(DUPLICATES_SCHEMA))
    _write_direct(root, DUPLICATES, GLOBAL, table.cast(DUPLICATES_SCHEMA))
    return table.height


def _write_direct(root: str, asset: str, shard: str, frame: Any) -> None:
    """Untimed generation: the same parquet options as TableStore.write, without its temp file + fsync."""
    path = Path(root, "tables", asset, f"{shard}.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd", statistics=True)


def source_root(source: str) -> str:
    from openvid_assets.store.shards import DEFAULT_SOURCE

    return "s3://openvid-raw/pool" if source == DEFAULT_SOURCE else f"s3://bench/{source}"


def gen_scores_block(args: tuple[Any, ...]) -> tuple[int, Any]:
    """Manifest and the three score tables of shards first..first+count-1 (scores vectorised over the block).
    With a 5th element (each shard's source), also the shard lists (URIs under the source's root) and the
    content_scores tables, and the block's near-duplicate rows are returned (None without): what the pipeline
    has when quality_candidates runs. Without it (the S3 case), the manifest and score tables only."""
    import polars as pl

    from openvid_assets.store.shards import shard_key, shard_list

    root, first, count, n = args[:4]
    sources = args[4] if len(args) > 4 else None
    if sources is None:
        manifests = [make_manifest(i, n) for i in range(first, first + count)]
    else:
        manifests = [make_manifest(i, n, source_root(src)) for i, src in zip(range(first, first + count), sources)]
    for k, (i, m) in enumerate(zip(range(first, first + count), manifests)):
        _write_direct(root, "video_manifest", shard_key(i), m)
        if sources is not None:
            _write_direct(
                root,
                "shard_lists",
                shard_key(i),
                shard_list(shard_key(i), m["source_uri"].to_list(), source_root(sources[k]), sources[k]),
            )
    block = pl.concat(manifests)
    for asset in ("aesthetic_scores", "temporal_scores", "motion_scores"):
        scores = make_scores(block, asset)
        for k, i in enumerate(range(first, first + count)):
            _write_direct(root, asset, shard_key(i), scores.slice(k * n, n))
    near = None
    if sources is not None:
        content = make_content(block)
        for k, i in enumerate(range(first, first + count)):
            _write_direct(root, "content_scores", shard_key(i), content.slice(k * n, n))
        near = near_duplicate_rows(block, content, first)
    return int((block["status"] == "ok").sum()), near


def gen_clarity_block(args: tuple[Any, ...]) -> int:
    """clarity_scores as the asset writes it: only each shard's candidate videos, in manifest order; with a 5th
    element (whether each shard's source applies clarity), an empty table where it does not."""
    import polars as pl

    from openvid_assets.store.shards import shard_key

    root, first, count, _ = args[:4]
    applied = args[4] if len(args) > 4 else [True] * count
    tables = Path(root, "tables")
    parts = []
    for k, i in enumerate(range(first, first + count)):
        shard = shard_key(i)
        candidates = pl.read_parquet(
            tables / "quality_candidates" / f"{shard}.parquet", columns=["source_uri", "candidate"]
        ).filter(pl.col("candidate"))
        manifest = pl.read_parquet(tables / "video_manifest" / f"{shard}.parquet")
        if not applied[k]:
            manifest = manifest.clear()  # the source skips clarity: nothing scored (the asset writes an empty table)
        parts.append(manifest.filter(pl.col("source_uri").is_in(candidates["source_uri"].implode())))
    block = pl.concat(parts)
    if block.height == 0:
        if _SCORE_SCHEMA is None:
            _set_score_schema(None)
        for i in range(first, first + count):
            _write_direct(root, "clarity_scores", shard_key(i), pl.DataFrame(schema=_SCORE_SCHEMA))
        return 0
    scores = make_scores(block, "clarity_scores")
    offset = 0
    for i, part in zip(range(first, first + count), parts):
        _write_direct(root, "clarity_scores", shard_key(i), scores.slice(offset, part.height))
        offset += part.height
    return offset


def generate_score_root(root: Path, shards: int, per_shard: int) -> None:
    """Manifest and score tables of ``shards`` shards of ``per_shard`` videos (untimed, this process)."""
    for first in range(0, shards, GEN_BLOCK):
        gen_scores_block((str(root), first, min(GEN_BLOCK, shards - first), per_shard))


def upload_root(local_root: Path, bucket: str, prefix: str) -> int:
    """Every parquet table under ``local_root`` to ``s3://bucket/prefix/`` (8 at a time); the object count."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    client = boto3.client("s3")
    files = sorted(local_root.rglob("*.parquet"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: client.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(local_root)}"), files))
    return len(files)
