"""Metrics of generated videos on frames whose right answer is known: a still video, a smooth pan (each frame the
previous one shifted by 2 px), and the same pan's frames shuffled. The formulas' exact values: mvdit/
test_evalcrafter_metrics.py."""

import cv2
import numpy as np
import pytest

from openvid_assets.models.scorers.clip import TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec
from openvid_assets.mvdit.evaluate import unit_farneback
from openvid_assets.mvdit.metrics.evalcrafter import clip_temporal, halved, warping_error


def texture(height=72, width=128, seed=0) -> np.ndarray:
    """A smooth random RGB texture (blurred noise): optical flow can follow it."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3).astype(np.float32)


def stretched(image: np.ndarray) -> np.ndarray:
    low, high = image.min(), image.max()
    return ((image - low) / (high - low) * 255).astype(np.uint8)


def pan(frames=8, step=2, seed=0) -> np.ndarray:
    wide = stretched(texture(width=128 + frames * step, seed=seed))
    return np.stack([wide[:, k * step : k * step + 128] for k in range(frames)])


def test_a_still_video_has_no_warping_error_and_a_pan_little_shuffled_frames_much():
    moving = pan()
    still = np.repeat(moving[:1], 6, axis=0)
    shuffled = moving[[0, 5, 2, 7, 1, 6, 3, 4]]
    assert warping_error(still, unit_farneback) == pytest.approx(0.0, abs=1e-6)  # the flow finds sub-pixel nothing
    smooth, jumbled = warping_error(moving, unit_farneback), warping_error(shuffled, unit_farneback)
    assert smooth < 2e-3 and jumbled > 3 * smooth, (smooth, jumbled)
    with pytest.raises(ValueError, match="at least 2 frames"):
        warping_error(moving[:1], unit_farneback)


def test_with_a_real_clip_tower_the_still_video_is_the_most_consistent():
    embedder = CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device="cpu", batch_size=8)
    moving = np.stack([cv2.resize(f, (224, 224)) for f in pan(step=8)])
    still = np.repeat(moving[:1], 8, axis=0)
    shuffled = moving[[0, 5, 2, 7, 1, 6, 3, 4]]
    scores = {
        name: clip_temporal(embedder.embed(frames))
        for name, frames in (("still", still), ("pan", moving), ("shuffled", shuffled))
    }
    assert scores["still"] == pytest.approx(1.0, abs=1e-5)
    assert scores["still"] > scores["pan"] >= scores["shuffled"] - 1e-6, scores


def test_raft_runs_on_halved_unit_images_and_returns_pixels_of_that_image():
    from openvid_assets.models.networks.raft import tiny_raft

    frames = pan(frames=3)[:, :50, :70]
    images = [halved(f) for f in frames]  # 25 x 35, padded to 32 x 40
    flow = tiny_raft()(images[0], images[1])
    assert flow.shape == (32, 40, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    assert np.isfinite(warping_error(frames, tiny_raft())) and warping_error(frames, tiny_raft()) >= 0


def test_evalcrafters_raft_input_is_its_bug_and_the_corrected_one_the_scale_raft_expects():
    import torch

    from openvid_assets.models.networks.raft import UnitImageRaft

    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, first, second, num_flow_updates):
            seen.append((first.min().item(), first.max().item(), num_flow_updates))
            return [torch.zeros(1, 2, *first.shape[-2:])]

    image = np.linspace(0, 1, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    UnitImageRaft(Recorder())(image, image)  # EvalCrafter: [0, 1] through 2 * (x / 255) - 1
    UnitImageRaft(Recorder(), pixel_scale=255.0)(image, image)
    assert seen[0] == pytest.approx((-1.0, -1 + 2 / 255, 20), abs=1e-6)
    assert seen[1] == pytest.approx((-1.0, 1.0, 20), abs=1e-6)


def test_raft_weights_load_strictly_from_the_weights_file(weights_dir):
    import torch
    from torchvision.models.optical_flow import raft_large

    from openvid_assets.models.networks.raft import EVALCRAFTER_RAFT_WEIGHTS, load_raft
    from openvid_assets.models.registry.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="raft_large_C_T_V1"):
        load_raft()
    state = raft_large(weights=None).state_dict()
    path = weights_dir / EVALCRAFTER_RAFT_WEIGHTS.filename
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    flow, digest = load_raft()
    assert digest and all(torch.equal(v, state[k]) for k, v in flow.model.state_dict().items())
    torch.save({k: v for k, v in state.items() if not k.startswith("update_block.")}, path)  # another layout
    with pytest.raises(RuntimeError, match="Missing key"):
        load_raft()
