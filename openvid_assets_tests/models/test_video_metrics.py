"""Metrics of generated videos on frames whose right answer is known: a still video, a smooth pan (each frame the
previous one shifted by 2 px), and the same pan's frames shuffled."""

import cv2
import numpy as np
import pytest

from openvid_assets.models.scorers.clip import TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec
from openvid_assets.mvdit.metrics.video import clip_score, clip_temporal_score, warping_error


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


def test_clip_score_is_100_times_the_mean_clipped_cosine():
    text = np.array([1.0, 0.0, 0.0])
    frames = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # cos 1, 0, -1 (counts as 0)
    assert clip_score(frames, text) == pytest.approx(100 / 3)
    assert clip_temporal_score(frames) == pytest.approx((0 + 0) / 2)
    assert clip_temporal_score(np.repeat(frames[:1], 4, axis=0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 frames"):
        clip_temporal_score(frames[:1])


def test_a_still_video_has_no_warping_error_and_a_pan_little_shuffled_frames_much():
    moving = pan()
    still = np.repeat(moving[:1], 6, axis=0)
    shuffled = moving[[0, 5, 2, 7, 1, 6, 3, 4]]
    assert warping_error(still) == pytest.approx(0.0, abs=1e-6)  # the flow finds sub-pixel nothing
    smooth, jumbled = warping_error(moving), warping_error(shuffled)
    assert smooth < 2e-3 and jumbled > 3 * smooth, (smooth, jumbled)
    with pytest.raises(ValueError, match="at least 2 frames"):
        warping_error(moving[:1])


def test_with_a_real_clip_tower_the_still_video_is_the_most_consistent():
    embedder = CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device="cpu", batch_size=8)
    moving = np.stack([cv2.resize(f, (224, 224)) for f in pan(step=8)])
    still = np.repeat(moving[:1], 8, axis=0)
    shuffled = moving[[0, 5, 2, 7, 1, 6, 3, 4]]
    scores = {
        name: clip_temporal_score(embedder.embed(frames))
        for name, frames in (("still", still), ("pan", moving), ("shuffled", shuffled))
    }
    assert scores["still"] == pytest.approx(1.0, abs=1e-5)
    assert scores["still"] > scores["pan"] >= scores["shuffled"] - 1e-6, scores


def test_raft_flow_takes_any_frame_size_and_returns_pixels_of_that_frame():
    from openvid_assets.models.networks.raft import tiny_raft, working_size

    assert working_size(70, 50) == (184, 128) and working_size(640, 360) == (640, 360)  # up to 128, multiples of 8
    frames = pan(frames=3)[:, :50, :70]
    flow = tiny_raft()(frames[0], frames[1])
    assert flow.shape == (50, 70, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    assert np.isfinite(warping_error(frames, tiny_raft())) and warping_error(frames, tiny_raft()) >= 0


def test_raft_weights_load_strictly_from_the_weights_file(weights_dir):
    import torch
    from torchvision.models.optical_flow import raft_large

    from openvid_assets.models.networks.raft import RAFT_WEIGHTS, load_raft
    from openvid_assets.models.registry.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="raft_large"):
        load_raft()
    state = raft_large(weights=None).state_dict()
    path = weights_dir / RAFT_WEIGHTS.filename
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    flow, digest = load_raft()
    assert digest and all(torch.equal(v, state[k]) for k, v in flow.model.state_dict().items())
    torch.save({k: v for k, v in state.items() if not k.startswith("update_block.")}, path)  # another layout
    with pytest.raises(RuntimeError, match="Missing key"):
        load_raft()
