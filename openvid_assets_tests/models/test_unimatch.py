"""UniMatch flow: the public checkpoint's layout, shapes, determinism, frame sampling, scoring a shard.

Random weights cannot measure motion, so these tests check what can break without the real
checkpoint: the state-dict layout (against a key/shape list dumped once from the upstream model
definition), strict loading through the project's weights resolver, output shapes and sizes,
determinism, pair batching, frame sampling on short videos, and the shard scoring path.
"""

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F

from openvid_assets import samples
from openvid_assets.media.frames import read_frames
from openvid_assets.media.manifest import build_manifest
from openvid_assets.media.sources import list_videos, local_file
from openvid_assets.models.registry.runtime import seeded
from openvid_assets.models.shards.scores import score_shard
from openvid_assets.models.scorers.motion import MOTION_DEFINITIONS, UniMatchMotion, unimatch_indices
from openvid_assets.models.networks.unimatch import PAPER, TINY, UNIMATCH_FLOW, UniMatchFlow, load_unimatch
from openvid_assets.models.registry.weights import file_digest

DATA = Path(__file__).parents[1] / "data"


def reference_keys() -> dict[str, list[int]]:
    return json.loads((DATA / "unimatch_flow_keys.json").read_text())["keys"]


@pytest.fixture
def weights_env(weights_dir):
    return weights_dir


@pytest.fixture(scope="module")
def tiny() -> UniMatchFlow:
    with seeded(0):
        return UniMatchFlow(TINY).eval()


def image_pair(batch: int, h: int, w: int, dx: int = 3, dy: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Two views of a smooth random texture, the second moved by (dx, dy) pixels."""
    g = torch.Generator().manual_seed(seed)
    texture = torch.rand(batch, 3, h // 8 + 2, w // 8 + 2, generator=g) * 255
    world = torch.nn.functional.interpolate(texture, size=(h + 16, w + 16), mode="bicubic").clamp(0, 255)
    first = world[..., 8 : 8 + h, 8 : 8 + w]
    second = world[..., 8 + dy : 8 + dy + h, 8 + dx : 8 + dx + w]
    return first.contiguous(), second.contiguous()


def test_paper_layout_is_the_public_checkpoint_layout():
    model = UniMatchFlow(PAPER)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == reference_keys()
    assert sum(p.numel() for p in model.parameters()) == sum(math.prod(s) for s in reference_keys().values())
    assert PAPER.padding_factor == 32  # 1/8 features in 2x2 windows, 1/4 features in 8x8 windows


def test_a_checkpoint_with_the_public_layout_loads_strictly(weights_env):
    g = torch.Generator().manual_seed(0)
    state = {key: torch.randn(shape, generator=g) for key, shape in reference_keys().items()}
    path = weights_env / UNIMATCH_FLOW.filename
    path.parent.mkdir(parents=True)
    torch.save({"model": state}, path)  # upstream checkpoints keep the weights under "model"

    model, digest = load_unimatch(PAPER, UNIMATCH_FLOW)
    assert digest == file_digest(path)
    assert torch.equal(model.state_dict()["refine.mask.2.weight"], state["refine.mask.2.weight"])
    scorer = UniMatchMotion(PAPER, UNIMATCH_FLOW, device="cpu")
    assert scorer.weights_digest == digest and scorer.name == "unimatch"
    assert scorer.request.size == (576, 320) and scorer.request.landscape
    assert scorer.params["config"]["attn_splits"] == [2, 8] and scorer.params["precision"] == "fp32"

    del state["refine.mask.2.bias"]  # strict: a missing (or extra) key is an error, not a silent partial load
    torch.save({"model": state}, path)
    with pytest.raises(RuntimeError, match="refine.mask.2.bias"):
        load_unimatch(PAPER, UNIMATCH_FLOW)


@torch.inference_mode()
def test_tiny_model_returns_flow_at_input_resolution(tiny):
    img0, img1 = image_pair(2, 64, 96)
    flow = tiny(img0, img1)
    assert flow.shape == (2, 2, 64, 96) and flow.dtype == torch.float32 and torch.isfinite(flow).all()
    # Sizes that are not a multiple of the padding factor are resized in and the flow resized back.
    img0, img1 = image_pair(1, 50, 70)
    assert tiny(img0, img1).shape == (1, 2, 50, 70)


@torch.inference_mode()
def test_flow_is_deterministic_and_independent_of_pair_batching(tiny):
    img0, img1 = image_pair(3, 64, 96)
    batched = tiny(img0, img1)
    assert torch.equal(batched, tiny(img0, img1))
    alone = torch.cat([tiny(img0[i : i + 1], img1[i : i + 1]) for i in range(3)])
    # Same pairs, different batch: equal up to float rounding.
    torch.testing.assert_close(alone, batched, atol=1e-3, rtol=0)
    # Each pair's flow belongs to that pair: pairs 0 and 1 differ (different textures).
    assert (batched[0] - batched[1]).abs().mean() > 0.1

    with seeded(0):
        again = UniMatchFlow(TINY).eval()
    assert torch.equal(again(img0, img1), batched)  # same seed, same model, same flow


def test_frame_schedules_are_upstreams_and_the_default_drops_repeats():
    upstream = json.loads((Path(__file__).parents[1] / "data" / "unimatch_frame_schedules.json").read_text())
    for definition in MOTION_DEFINITIONS:
        for n, schedule in upstream[definition].items():
            assert unimatch_indices(int(n), definition, exact=True) == schedule, (definition, n)
            assert unimatch_indices(int(n), definition) == list(dict.fromkeys(schedule)), (definition, n)
    assert unimatch_indices(132) == [0, 15, 30, 45, 60, 75, 90, 105, 120, 131]  # the clamped last frame is kept
    assert unimatch_indices(40) == [0, 15, 30, 39]  # not 39 seven times: no zero-flow pairs
    assert unimatch_indices(0) == []
    for n in range(1, 200):
        indices = unimatch_indices(n)
        assert indices == sorted(set(indices)) and all(0 <= i < n for i in indices)


def test_the_v12_definition_scores_the_mean_absolute_component():
    v13 = UniMatchMotion(TINY, weights=None, device="cpu")
    v12 = UniMatchMotion(TINY, weights=None, device="cpu", definition="opensora-v1.2")
    frames = np.random.default_rng(0).integers(0, 256, (4, 320, 576, 3), dtype=np.uint8)
    a, b = v13.score([0, 10, 20, 30], frames), v12.score([0, 10, 20, 30], frames)
    assert math.isfinite(a["score"]) and b["score"] == b["flow_abs_mean"] == a["flow_abs_mean"]
    assert a["score"] != b["score"] and v12.params["frames"] == [0, 10, 20, 30] != v13.params["frames"]
    with pytest.raises(ValueError, match="unknown motion definition"):
        UniMatchMotion(TINY, weights=None, device="cpu", definition="opensora-v9")


def test_exact_inputs_decode_at_full_size_and_resize_in_float(tmp_path):
    spec = samples.hd_1080p(tmp_path, num_frames=40)
    fast = UniMatchMotion(TINY, weights=None, device="cpu")
    exact = UniMatchMotion(TINY, weights=None, device="cpu", exact=True)
    assert fast.request.size == (576, 320) and exact.request.size is None and exact.request.landscape
    decoded = read_frames(tmp_path / spec.name, exact.request, width=1920, height=1080)
    assert decoded.frames.shape[1:3] == (1080, 1920) and decoded.indices == [0, 15, 30] + [39] * 7
    x = exact._tensor(decoded.frames)
    expected = F.interpolate(
        torch.from_numpy(decoded.frames).permute(0, 3, 1, 2).float(),
        size=(320, 576),
        mode="bilinear",
        align_corners=True,
    )
    assert torch.equal(x, expected)  # upstream's input, bit for bit
    assert exact.params["inputs"] != fast.params["inputs"]


def test_scorer_refuses_a_single_frame():
    scorer = UniMatchMotion(TINY, weights=None, device="cpu")
    with pytest.raises(ValueError, match="two distinct frames"):
        scorer.score([0], np.zeros((1, 320, 576, 3), np.uint8))


def test_scores_a_shard_end_to_end_with_failed_rows_kept(tmp_path):
    root = tmp_path / "src"
    samples.static(root, num_frames=20)
    samples.smooth_pan(root, num_frames=40)
    samples.portrait(root, num_frames=20)
    (root / "garbage.mp4").write_bytes(b"this is not a video\n" * 64)
    (root / "empty.mp4").write_bytes(b"")
    manifest = build_manifest(list_videos(str(root)), str(root), "shard-00000")
    scorer = UniMatchMotion(TINY, weights=None, device="cpu")

    result = score_shard(manifest, scorer, lambda task: local_file(task.source_uri, str(root)))
    rows = {r["source_uri"].rsplit("/", 1)[1]: r for r in result.table.iter_rows(named=True)}
    assert result.table.height == manifest.height
    assert rows["static.mp4"]["frame_indices"] == [0, 15, 19]
    assert rows["smooth_pan.mp4"]["frame_indices"] == [0, 15, 30, 39]  # a 40-frame video: no repeated last frame
    assert rows["portrait.mp4"]["frame_indices"] == [0, 15, 19]
    for name in ("static.mp4", "smooth_pan.mp4", "portrait.mp4"):
        row = rows[name]
        assert row["status"] == "ok", row["error"]
        assert all(math.isfinite(row[c]) for c in ("score", "flow_dx", "flow_dy", "flow_div")) and row["score"] >= 0
    for name in ("garbage.mp4", "empty.mp4"):
        assert rows[name]["status"] == "failed" and rows[name]["error"].startswith("manifest: ")
    ok = result.table.filter(pl.col("status") == "ok")
    assert set(ok["model"]) == {"unimatch"} and set(ok["weights_digest"]) == {"random-seed0"}
    assert json.loads(ok["params"][0])["frames"][:3] == [0, 15, 30]
