"""Scores on generated videos whose right answer is known, with the offline profile."""

import shutil

import polars as pl
import pytest

from openvid_assets import samples
from openvid_assets.media.frames import FrameRequest, at_positions, evenly_spaced, read_frames
from openvid_assets.media.manifest import build_manifest
from openvid_assets.media.sources import list_videos
from openvid_assets.models.scorers.aesthetic import AestheticScorer
from openvid_assets.models.scorers.clarity import LaplacianClarity
from openvid_assets.models.scorers.clip import TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec
from openvid_assets.models.scorers.motion import FarnebackMotion
from openvid_assets.models.shards.scores import (
    CLIPSampling,
    aesthetic_scores,
    embed_shard,
    score_shard,
    temporal_scores,
)
from openvid_assets_testing.videos import opener


@pytest.fixture(scope="module")
def shard(sample_videos, tmp_path_factory):
    root, specs = sample_videos
    src = tmp_path_factory.mktemp("scoring") / "src"
    shutil.copytree(root, src, symlinks=True)
    manifest = build_manifest(list_videos(str(src)), str(src), "shard-00000")
    return src, manifest, specs


def by_name(table: pl.DataFrame) -> dict[str, dict]:
    return {r["source_uri"].rsplit("/", 1)[1]: r for r in table.iter_rows(named=True)}


@pytest.fixture(scope="module")
def embedder():
    return CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device="cpu", batch_size=16)


def test_frame_planning_never_repeats_frames_on_short_videos():
    assert at_positions(100, [0.1, 0.5, 0.9]) == [10, 50, 89]
    assert evenly_spaced(3, 8) == [0, 1, 2]  # three distinct frames, not eight with repeats
    assert evenly_spaced(1, 8) == [0]


def test_temporal_consistency_orders_static_smooth_flicker(shard, embedder):
    src, manifest, _ = shard
    sampling = CLIPSampling()
    embeddings = embed_shard(manifest, embedder, sampling, opener(src)).table
    temporal = by_name(temporal_scores(embeddings, sampling))
    assert temporal["static.mp4"]["score"] > temporal["smooth_pan.mp4"]["score"] > temporal["flicker.mp4"]["score"]
    assert temporal["static.mp4"]["score"] == pytest.approx(1.0, abs=1e-3)
    # Adjacent pairs at 10/50/90 %, recorded flattened.
    assert temporal["smooth_pan.mp4"]["frame_indices"] == [7, 8, 36, 37, 64, 65]

    aesthetic = by_name(aesthetic_scores(embeddings, AestheticScorer(None, device="cpu"), sampling))
    assert aesthetic["static.mp4"]["frame_indices"] == [4, 24, 43]  # int(p * 48), as Open-Sora picks them
    # One embedding pass served both, sharing frames: 6 forwards a video (the pairs start at the aesthetic frames).
    static_rows = embeddings.filter(pl.col("source_uri").str.ends_with("/static.mp4"))
    assert sorted(static_rows["frame_index"]) == sampling.union(48) == [4, 5, 24, 25, 43, 44]

    # A byte-identical copy of static.mp4 shares its video id; its one row (failed as a duplicate) stays failed
    # and does not change the original's score.
    copy = static_rows.head(1).with_columns(
        source_uri=pl.lit("/elsewhere/copy.mp4"),
        status=pl.lit("failed"),
        error=pl.lit("duplicate content"),
        embedding=None,
        frame_index=None,
    )
    for score in (
        lambda e: temporal_scores(e, sampling),
        lambda e: aesthetic_scores(e, AestheticScorer(None, device="cpu"), sampling),
    ):
        rows = by_name(score(pl.concat([embeddings, copy])))
        assert (rows["copy.mp4"]["status"], rows["copy.mp4"]["error"]) == ("failed", "duplicate content")
        assert rows["static.mp4"]["score"] == by_name(score(embeddings))["static.mp4"]["score"]


def test_adjacent_pairs_see_frame_level_flicker_that_spread_frames_step_over(tmp_path, embedder):
    steady = samples.smooth_pan(tmp_path, num_frames=73)
    flicker = samples.brightness_flicker(tmp_path, num_frames=73)
    manifest = build_manifest(list_videos(str(tmp_path)), str(tmp_path), "shard-00000")
    scores = {}
    for sampling in (CLIPSampling(), CLIPSampling(temporal="spread", temporal_frames=5)):
        embeddings = embed_shard(manifest, embedder, sampling, opener(tmp_path)).table
        rows = by_name(temporal_scores(embeddings, sampling))
        scores[sampling.temporal] = (rows[steady.name]["score"], rows[flicker.name]["score"])
    # Dissimilarity (1 - cosine): the tiny random CLIP's scale is arbitrary, its order is not.
    steady, flickering = (1 - score for score in scores["adjacent"])
    assert flickering > 20 * steady
    # Five frames spread over 73 land on frames 0, 18, 36, 54, 72: all bright, so the flicker passes unseen.
    steady_spread, flickering_spread = (1 - score for score in scores["spread"])
    assert flickering_spread < 2 * steady_spread


def test_farneback_orders_fast_smooth_static_and_handles_portrait_and_size(shard, tmp_path):
    src, manifest, _ = shard
    motion = by_name(score_shard(manifest, FarnebackMotion(), opener(src)).table)
    assert motion["fast_motion.mp4"]["score"] > motion["smooth_pan.mp4"]["score"] > motion["static.mp4"]["score"]
    assert motion["static.mp4"]["score"] < 0.05
    # 1 px/frame at 160 wide is 2 px/frame at the 320x180 working size; a pan to the right moves content left.
    assert motion["smooth_pan.mp4"]["score"] == pytest.approx(2.0, rel=0.2)
    assert motion["smooth_pan.mp4"]["flow_dx"] < -1.5 and abs(motion["smooth_pan.mp4"]["flow_dy"]) < 0.2
    # Open-Sora's "flow" (mean absolute component) is about half the L2 magnitude for a horizontal pan.
    assert motion["smooth_pan.mp4"]["flow_abs_mean"] == pytest.approx(motion["smooth_pan.mp4"]["score"] / 2, rel=0.15)
    # The portrait tilt (2 px/frame over 320 px height) is transposed: same scale as a landscape pan.
    assert motion["portrait.mp4"]["score"] == pytest.approx(2.0, rel=0.2)

    # The same camera speed relative to the frame scores the same at two input sizes.
    small = samples.smooth_pan(tmp_path, "small.mp4", width=160, height=90, px_per_frame=1, seed=5)
    large = samples.smooth_pan(tmp_path, "large.mp4", width=640, height=360, px_per_frame=4, seed=5)
    scorer = FarnebackMotion()
    scores = []
    for spec in (small, large):
        d = read_frames(tmp_path / spec.name, scorer.request, width=spec.width, height=spec.height)
        scores.append(scorer.score(d.indices, d.frames)["score"])
    assert scores[0] == pytest.approx(scores[1], rel=0.15)


def test_clarity_separates_sharp_from_blurred(shard):
    src, manifest, _ = shard
    clarity = by_name(score_shard(manifest, LaplacianClarity(), opener(src)).table)
    assert clarity["sharp.mp4"]["score"] > 5 * clarity["blurred.mp4"]["score"]


def test_bad_inputs_and_mid_shard_decode_failures_are_rows(shard, tmp_path):
    src, manifest, specs = shard
    broken = tmp_path / "src"
    shutil.copytree(src, broken, symlinks=True)
    manifest = manifest.with_columns(pl.col("source_uri").str.replace(str(src), str(broken), literal=True))
    # After the manifest said "ok": one file is corrupted, one disappears.
    data = bytearray((broken / "smooth_pan.mp4").read_bytes())
    data[len(data) // 3 :] = bytes(len(data) - len(data) // 3)
    (broken / "smooth_pan.mp4").write_bytes(bytes(data[: len(data) // 2]))
    (broken / "static.mp4").unlink()

    result = score_shard(manifest, FarnebackMotion(), opener(broken))
    table = by_name(result.table)
    assert result.table.height == manifest.height  # every video keeps exactly one row
    assert table["static.mp4"]["status"] == "failed" and "vanished" in table["static.mp4"]["error"]
    assert table["smooth_pan.mp4"]["status"] == "failed" and table["smooth_pan.mp4"]["error"]
    for spec in specs:
        if spec.bad:
            row = table[spec.name.rsplit("/", 1)[-1]]
            assert row["status"] == "failed" and row["error"].startswith("manifest: ")
    assert table["fast_motion.mp4"]["status"] == "ok"  # the shard went on


def test_rows_are_reused_by_model_weights_and_params(shard):
    src, manifest, _ = shard
    first = score_shard(manifest, LaplacianClarity(), opener(src))
    ok = first.table.filter(pl.col("status") == "ok").height
    assert first.computed == ok and first.reused == 0

    def explode(task):
        raise AssertionError(f"recomputed {task.source_uri}")

    again = score_shard(manifest, LaplacianClarity(), explode, previous=first.table)
    assert (again.computed, again.reused) == (0, ok)
    assert again.table.equals(first.table)

    changed = score_shard(manifest, LaplacianClarity(crop=64), opener(src), previous=first.table)
    assert changed.computed == ok  # new params: nothing reusable
    assert changed.table["params_hash"][0] != first.table["params_hash"][0]


def test_embeddings_are_reused_too(shard, embedder):
    src, manifest, _ = shard
    first = embed_shard(manifest, embedder, CLIPSampling(), opener(src))
    again = embed_shard(
        manifest, embedder, CLIPSampling(), lambda t: (_ for _ in ()).throw(AssertionError()), previous=first.table
    )
    assert again.computed == 0 and again.table.equals(first.table)
    other = embed_shard(
        manifest, embedder, CLIPSampling(temporal_positions=(0.2, 0.8)), opener(src), previous=first.table
    )
    assert other.computed == first.computed


def test_chunked_reduce_decodes_the_same_frames_with_bounded_memory(sample_videos):
    root, _ = sample_videos
    whole = read_frames(root / "hd_1080p.mp4", FrameRequest(indices=lambda n: list(range(n))), width=1920, height=1080)
    seen = []

    def corner(chunk):
        seen.append(len(chunk))
        return chunk[:, :32, :32]

    reduced = read_frames(
        root / "hd_1080p.mp4",
        FrameRequest(indices=lambda n: list(range(n)), reduce=corner, chunk=5),
        width=1920,
        height=1080,
    )
    assert max(seen) == 5 and sum(seen) == 24
    assert (reduced.frames == whole.frames[:, :32, :32]).all()


def test_exact_clip_inputs_equal_open_clips_own_preprocess(sample_videos):
    import open_clip
    import torch
    from PIL import Image

    from openvid_assets.models.scorers.clip import OPENAI_MEAN, OPENAI_STD

    root, _ = sample_videos
    exact = CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device="cpu", exact=True)
    fast = CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device="cpu")
    assert exact.decode_short_side is None and fast.decode_short_side == fast.image_size
    for name, (width, height) in (("hd_1080p.mp4", (1920, 1080)), ("portrait.mp4", (180, 320))):
        native = read_frames(root / name, FrameRequest(indices=lambda n: [0, n - 1]), width=width, height=height)
        transform = open_clip.image_transform(exact.image_size, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD)
        expected = torch.stack([transform(Image.fromarray(f)) for f in native.frames])
        got = exact._prepare(exact.square(native.frames))
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        scaled = read_frames(
            root / name,
            FrameRequest(indices=lambda n: [0, n - 1], short_side=fast.image_size),
            width=width,
            height=height,
        )
        assert (fast._prepare(fast.square(scaled.frames)) - expected).abs().max() > 0.01  # the fast path is not it
