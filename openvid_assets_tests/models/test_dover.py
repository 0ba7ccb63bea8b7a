"""DOVER: strict loading of the public key layout (technical branch alone, and the whole model with its aesthetic
branch), fragment sampling, scoring generated videos."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from openvid_assets import samples
from openvid_assets.media.frames import read_frames
from openvid_assets.media.manifest import build_manifest
from openvid_assets.media.sources import list_videos
from openvid_assets.models.scorers.clarity import (
    DoverClarity,
    cut_all_clips,
    cut_fragments,
    dover_frame_indices,
    fragment_offsets,
    rescale,
    upsampled,
)
from openvid_assets.models.networks.dover import (
    AESTHETIC,
    AESTHETIC_TINY,
    DOVER_WEIGHTS,
    PAPER,
    TINY,
    Dover,
    DoverTechnical,
    aesthetic_clip,
    aesthetic_indices,
    fused_quality,
    load_dover,
    load_dover_technical,
    rescale_aesthetic,
)
from openvid_assets.models.shards.scores import score_shard
from openvid_assets.models.registry.weights import file_digest
from openvid_assets_testing.videos import opener

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "dover_keys.json").read_text())


# --------------------------------------------------------------------------- weights


def swin_position_index(window=(8, 7, 7)) -> torch.Tensor:
    """Video Swin's relative position index, computed independently of the module under test."""
    wd, wh, ww = window
    coords = np.indices(window).reshape(3, -1)
    rel = coords[:, :, None] - coords[:, None, :]
    index = (rel[0] + wd - 1) * (2 * wh - 1) * (2 * ww - 1) + (rel[1] + wh - 1) * (2 * ww - 1) + (rel[2] + ww - 1)
    return torch.from_numpy(index).long()


def random_dover_checkpoint() -> dict[str, torch.Tensor]:
    """A full-DOVER-shaped state dict: every technical key at its public shape, plus aesthetic-branch keys."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in REFERENCE["keys"].items():
        if key in REFERENCE["non_float32_keys"]:
            state[key] = swin_position_index()
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    for key, shape in REFERENCE["aesthetic_keys"].items():
        state[key] = torch.randn(shape, generator=generator) * 0.02
    return state


@pytest.fixture
def weights_env(weights_dir):
    path = weights_dir / DOVER_WEIGHTS.filename
    path.parent.mkdir(parents=True)
    return path


def test_model_keys_and_shapes_match_the_public_checkpoint():
    with torch.device("meta"):
        model = DoverTechnical(PAPER)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == REFERENCE["keys"]
    assert not hasattr(model, "aesthetic_backbone")
    tiny = DoverTechnical(TINY).state_dict()  # tiny keeps the gated fragment bias in stages 1-3 only
    assert {int(k.split(".")[2]) for k in tiny if "fragment_position_bias_table" in k} == {0, 1, 2}
    index = tiny["technical_backbone.layers.3.blocks.1.attn.relative_position_index"]
    assert torch.equal(index, swin_position_index(TINY.window_size))


def test_full_dover_checkpoint_loads_strictly_and_a_missing_key_fails(weights_env):
    state = random_dover_checkpoint()
    torch.save(state, weights_env)
    model, digest = load_dover_technical(DOVER_WEIGHTS, PAPER)
    assert digest == file_digest(weights_env)
    loaded = model.state_dict()
    for key, tensor in state.items():
        if key.startswith("technical_"):
            assert torch.equal(loaded[key], tensor), key
    with torch.inference_mode():
        out = model.eval()(torch.randn(1, 3, 4, 64, 64))  # a small input keeps the check fast
    assert out.shape == (1, 1, 2, 2, 2) and torch.isfinite(out).all()  # time / 2, space / 32, one channel

    del state["technical_backbone.layers.2.blocks.5.attn.fragment_position_bias_table"]
    torch.save(state, weights_env)
    with pytest.raises(RuntimeError, match="Missing key"):
        load_dover_technical(DOVER_WEIGHTS, PAPER)


def test_the_whole_model_has_the_public_checkpoints_381_keys_and_loads_it_strictly(weights_env):
    with torch.device("meta"):
        model = Dover(PAPER, AESTHETIC)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {**REFERENCE["keys"], **REFERENCE["aesthetic_keys"]}
    assert len(shapes) == REFERENCE["num_keys_full_model"] == 381
    state = random_dover_checkpoint()
    torch.save(state, weights_env)
    loaded, digest = load_dover(DOVER_WEIGHTS)
    assert digest == file_digest(weights_env)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    with torch.inference_mode():  # the aesthetic branch at a small input: time / 2, space / 32
        out = loaded.eval().aesthetic(torch.randn(1, 3, 4, 64, 64))
    assert out.shape == (1, 1, 2, 2, 2) and torch.isfinite(out).all()
    del state["aesthetic_backbone.stages.2.8.gamma"]
    torch.save(state, weights_env)
    with pytest.raises(RuntimeError, match="Missing key"):
        load_dover(DOVER_WEIGHTS)


@pytest.mark.parametrize(
    "frames, expected",
    [
        (16, [0] * 32),  # under 32 frames: upstream's sampler gives frame 0 every time
        (17, [0] * 32),
        (33, list(range(32))),  # n // 32 = 1: no offset, the last frame unseen
        (64, list(range(0, 64, 2))),
        (96, list(range(0, 96, 3))),  # n // 32 = 3: the offset is randint(0, 1), always 0
    ],
)
def test_the_aesthetic_frames_are_upstreams(frames, expected):
    # dover_datasets.py UnifiedFrameSampler(1, 32, 2): (n // 32) * i + randint(0, n // 32 - 2) when n // 32 > 2.
    assert aesthetic_indices(frames) == expected


def test_long_videos_get_a_seeded_offset_within_each_stretch():
    picked = aesthetic_indices(320)
    assert all(10 * i <= f < 10 * i + 8 for i, f in enumerate(picked))
    assert picked == aesthetic_indices(320) and picked != aesthetic_indices(320, seed=1)
    assert picked != [10 * i for i in range(32)]


def test_the_aesthetic_input_is_whole_frames_resized_and_normalised():
    frames = torch.full((3, 90, 160, 3), 124, dtype=torch.uint8)
    clip = aesthetic_clip(frames)
    assert clip.shape == (1, 3, 3, 224, 224)
    assert torch.allclose(clip[0, :, 0, 0, 0], (124 - torch.tensor(PAPER.mean)) / torch.tensor(PAPER.std))
    model = Dover(TINY, AESTHETIC_TINY).eval()
    with torch.inference_mode():
        first, again = model.aesthetic(clip).mean(), model.aesthetic(clip).mean()
    assert torch.isfinite(first) and first == again


def test_published_aesthetic_rescale_and_fusion():
    assert rescale_aesthetic(-0.08285) == pytest.approx(0.5)
    assert rescale_aesthetic(-0.08285 + 0.03774) == pytest.approx(1 / (1 + np.exp(-1)))
    assert fused_quality(0.1107, -0.08285) == pytest.approx(0.5)
    assert fused_quality(0.1107 + 0.07355, -0.08285) == pytest.approx(1 / (1 + np.exp(-0.6104)))
    assert fused_quality(0.1107, -0.08285 + 0.03774) == pytest.approx(1 / (1 + np.exp(-0.3896)))


def test_published_rescale():
    assert rescale(PAPER.rescale_shift, PAPER) == pytest.approx(0.5)
    assert rescale(0.1107 + 0.07355, PAPER) == pytest.approx(1 / (1 + np.exp(-1)))
    assert 0.0 < rescale(-50.0, PAPER) < rescale(0.0, PAPER) < 0.5 < rescale(0.2, PAPER) < 1.0


# --------------------------------------------------------------------------- sampling


def test_clip_plan_is_upstreams_unified_frame_sampler():
    upstream = json.loads((Path(__file__).parents[1] / "data" / "dover_frame_schedules.json").read_text())
    for n, schedule in upstream["schedules"].items():  # lengths where upstream draws no offset
        assert dover_frame_indices(int(n)) == schedule, n
    assert dover_frame_indices(64)[::32] == [0, 21, 42]  # spread over the video, wrapping around
    for n in (195, 1000):  # longer: one clip per third at a seeded offset, as upstream draws at random
        plan = np.array(dover_frame_indices(n, seed=0)).reshape(3, 32)
        assert (np.diff(plan, axis=1) == 2).all()
        offsets = plan[:, 0] - (n // 3) * np.arange(3)
        assert ((0 <= offsets) & (offsets < n // 3 - 64)).all()
    assert dover_frame_indices(1000, seed=0) == dover_frame_indices(1000, seed=0) != dover_frame_indices(1000, seed=1)
    assert dover_frame_indices(0) == []


def coded_frames(height: int, width: int, count: int = 2) -> np.ndarray:
    """Frames whose every pixel spells its own (y, x); frame t adds 2 * t to blue."""
    y, x = np.mgrid[:height, :width]
    base = np.stack([y % 256, x % 256, (y // 256) * 8 + x // 256], -1)
    return np.stack([base + [0, 0, 2 * t] for t in range(count)]).astype(np.uint8)


def decode_yx(patch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = patch.astype(int)
    return (p[..., 2] // 8) * 256 + p[..., 0], (p[..., 2] % 8) * 256 + p[..., 1]


@pytest.mark.parametrize("height,width", [(1080, 1920), (1920, 1080), (240, 320)])
def test_fragments_are_native_patches_on_a_7x7_grid_with_per_clip_offsets(height, width):
    frames = coded_frames(height, width)
    mosaics = cut_all_clips(frames, num_clips=3, seed=0)
    assert mosaics.shape == (2, 3, 224, 224, 3)
    for clip in range(3):
        tops, lefts = fragment_offsets(height, width, clip, seed=0)
        for i in range(7):
            for j in range(7):
                patch = mosaics[:, clip, i * 32 : (i + 1) * 32, j * 32 : (j + 1) * 32]
                ys, xs = decode_yx(patch[0])
                # pixel for pixel from (top, left): native resolution, no resampling
                assert (ys == tops[i, j] + np.arange(32)[:, None]).all() and (xs == lefts[i, j] + np.arange(32)).all()
                assert (patch[1, ..., 2].astype(int) - patch[0, ..., 2] == 2).all()  # same place in every frame
                cell_h, cell_w = height // 7, width // 7  # inside its own grid cell
                assert i * cell_h <= tops[i, j] and tops[i, j] + 32 <= (i + 1) * cell_h
                assert j * cell_w <= lefts[i, j] and lefts[i, j] + 32 <= (j + 1) * cell_w
    # chunks of one clip agree, a re-run agrees, clips differ, the seed matters
    assert np.array_equal(cut_all_clips(frames[1:], seed=0)[0], mosaics[1])
    assert np.array_equal(cut_all_clips(frames, seed=0), mosaics)
    if height >= 1080:
        assert not np.array_equal(mosaics[:, 0], mosaics[:, 1])
        assert not np.array_equal(cut_all_clips(frames, seed=1), mosaics)


def upstream_fragments(video: np.ndarray) -> np.ndarray:
    """DOVER's ``get_spatial_fragments`` (dover/datasets/dover_datasets.py l.22-132, as EvalCrafter vendors it) for
    7x7 fragments of 32 px on a video whose grid cells are at most 32 px (no random offsets): (T, H, W, 3) uint8
    -> (T, 224, 224, 3). Written from upstream's code, independently of the project's."""
    v = torch.from_numpy(np.ascontiguousarray(video)).permute(3, 0, 1, 2)  # C, T, H, W
    res_h, res_w = v.shape[-2:]  # l.53: read before the upsampling
    ratio = min(res_h / 224, res_w / 224)
    if ratio < 1:  # l.55-61
        v = (torch.nn.functional.interpolate(v / 255.0, scale_factor=1 / ratio, mode="bilinear") * 255.0).type(
            torch.uint8
        )
    hgrids = [min(res_h // 7 * i, res_h - 32) for i in range(7)]  # l.75-78: the original size
    wgrids = [min(res_w // 7 * i, res_w - 32) for i in range(7)]
    target = torch.zeros(v.shape[:-2] + (224, 224))
    for i, hs in enumerate(hgrids):
        for j, ws in enumerate(wgrids):
            target[..., 32 * i : 32 * i + 32, 32 * j : 32 * j + 32] = v[..., hs : hs + 32, ws : ws + 32]
    return target.permute(1, 2, 3, 0).numpy()


@pytest.mark.parametrize("height, width", [(144, 176), (200, 200), (120, 160)])
def test_small_frames_give_upstreams_mosaics(height, width):
    frames = np.random.default_rng(0).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    mosaic = cut_fragments(frames, clip=0)
    assert mosaic.shape == (2, 224, 224, 3)
    np.testing.assert_array_equal(mosaic, upstream_fragments(frames))


def test_small_frames_are_upsampled_as_upstream_and_cut_from_the_top_left():
    y, x = np.mgrid[:144, :176]
    frame = np.stack([y, x, np.full_like(x, 100)], -1).astype(np.uint8)[None]
    up = upsampled(frame, 224)
    assert up.shape == (1, 223, 273, 3)  # upstream scales by 224/144 and floors: 176x144 -> 273x223
    assert (np.diff(up[0, :, 0, 0].astype(int)) >= 0).all() and (np.diff(up[0, 0, :, 1].astype(int)) >= 0).all()
    assert set(np.unique(up[..., 2])) <= {99, 100}  # float back to uint8 truncates, as upstream's cast does
    large = coded_frames(240, 320)
    assert upsampled(large, 224) is large
    mosaic = cut_fragments(frame, clip=0)
    # The grid is the 144x176 frame's (20-row, 25-column cells, the last clamped to fit): every patch lies in the
    # upsampled frame's top-left 144x176, where the row code (channel 0) stays under 144 * 144 / 223 + 1.
    tops, lefts = fragment_offsets(144, 176, 0)
    assert (tops[:, 0] == [0, 20, 40, 60, 80, 100, 112]).all() and (lefts[0] == [0, 25, 50, 75, 100, 125, 144]).all()
    assert mosaic[..., 0].max() <= up[0, 143, :, 0].max() and mosaic[..., 1].max() <= up[0, :, 175, 1].max()


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("dover")
    samples.sharp(root)
    samples.hd_1080p(root)
    (root / "empty.mp4").write_bytes(b"")
    manifest = build_manifest(list_videos(str(root)), str(root), "shard-00000")
    return root, manifest


def by_name(table) -> dict[str, dict]:
    return {r["source_uri"].rsplit("/", 1)[1]: r for r in table.iter_rows(named=True)}


def test_tiny_dover_scores_generated_videos_deterministically(videos):
    root, manifest = videos
    scorer = DoverClarity(TINY, weights=None, device="cpu")
    assert scorer.weights_digest == "random-seed0" and scorer.name == "dover-technical"
    rows = by_name(score_shard(manifest, scorer, opener(root)).table)
    for name in ("sharp.mp4", "hd_1080p.mp4"):
        row = rows[name]
        assert row["status"] == "ok", row["error"]
        assert 0.0 < row["score"] < 1.0 and np.isfinite(row["dover_raw"])
        assert row["score"] == pytest.approx(rescale(row["dover_raw"], TINY))
        assert len(row["frame_indices"]) == 3 * 32
    assert rows["sharp.mp4"]["frame_indices"] == dover_frame_indices(48)  # 48 frames: clips wrap around
    assert json.loads(rows["sharp.mp4"]["params"])["frame_interval"] == 2
    assert rows["empty.mp4"]["status"] == "failed" and rows["empty.mp4"]["error"].startswith("manifest: ")

    again = by_name(
        score_shard(
            manifest.filter(manifest["video_id"] == rows["sharp.mp4"]["video_id"]),
            DoverClarity(TINY, weights=None, device="cpu"),
            opener(root),
        ).table
    )
    assert again["sharp.mp4"]["score"] == rows["sharp.mp4"]["score"]
    assert again["sharp.mp4"]["dover_raw"] == rows["sharp.mp4"]["dover_raw"]


def test_1080p_is_decoded_a_chunk_at_a_time(videos):
    root, manifest = videos
    scorer = DoverClarity(TINY, weights=None, device="cpu")
    seen = []

    def recording(frames):
        seen.append(frames.shape)
        return scorer.request.reduce(frames)

    request = replace(scorer.request, reduce=recording)
    decoded = read_frames(root / "hd_1080p.mp4", request, width=1920, height=1080)
    assert seen and all(n <= request.chunk and (h, w) == (1080, 1920) for n, h, w, _ in seen)
    assert sum(n for n, *_ in seen) == 96 and len(seen) == 96 // request.chunk
    assert decoded.frames.shape == (96, 3, 224, 224, 3)  # only fragments are kept
    assert decoded.indices == dover_frame_indices(24)


@pytest.mark.parametrize("frames", [16, 17, 33])
def test_the_technical_frames_of_short_videos_are_upstreams(frames):
    # dover_datasets.py UnifiedFrameSampler(32, 3, 2) as the vendored dover.yml builds it: clip k's frame j is
    # (k * (n // 3) + 2 j + offset) mod n, the offset 0 unless n // 3 > 64. N = 16: clip 1 is 5, 7, ..., 15, 1, 3, ...
    expected = [(k * (frames // 3) + 2 * j) % frames for k in range(3) for j in range(32)]
    assert dover_frame_indices(frames) == expected
    assert dover_frame_indices(16)[32:40] == [5, 7, 9, 11, 13, 15, 1, 3]
