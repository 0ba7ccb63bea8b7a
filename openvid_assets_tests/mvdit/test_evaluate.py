"""The metrics of generated videos end to end on mp4 files whose right answer is known: a still video, a smooth
pan and the pan's frames shuffled (written by the sampler's own mp4 writer), and a file that is not a video.
The formulas' exact values are in test_evalcrafter_metrics.py; here the plumbing, the ranges and the definitions."""

from functools import partial

import cv2
import numpy as np
import pytest
import torch

from openvid_assets.mvdit.metrics.blip_bleu import TINY_BLIP2, FrameCaptioner
from openvid_assets.models.scorers.clarity import DoverAesthetic, DoverClarity
from openvid_assets.models.scorers.clip import TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec, text_embeddings
from openvid_assets.models.networks.dover import AESTHETIC_TINY, TINY
from openvid_assets.mvdit.evaluate import METRICS, SampleEvaluator, blip_inputs, evaluate_samples
from openvid_assets.mvdit.sample import write_mp4


def pan_frames(frames=16, step=3, size=(96, 160)) -> np.ndarray:
    rng = np.random.default_rng(0)
    wide = cv2.GaussianBlur(rng.integers(0, 256, (size[0], size[1] + frames * step, 3), dtype=np.uint8), (0, 0), 3)
    wide = cv2.normalize(wide, None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([wide[:, k * step : k * step + size[1]] for k in range(frames)])


@pytest.fixture(scope="module")
def evaluator():
    spec = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG)
    return SampleEvaluator(
        CLIPEmbedder(spec, device="cpu", batch_size=16),
        partial(text_embeddings, spec),
        DoverClarity(TINY, None, device="cpu"),
        DoverAesthetic(TINY, AESTHETIC_TINY, None, device="cpu"),
        FrameCaptioner(TINY_BLIP2, device="cpu"),
    )


def test_each_metric_on_videos_whose_answer_is_known(tmp_path, evaluator):
    frames = pan_frames()
    files = {
        "still": write_mp4(np.repeat(frames[:1], 16, axis=0), tmp_path / "still.mp4"),
        "pan": write_mp4(frames, tmp_path / "pan.mp4"),
        "shuffled": write_mp4(frames[np.random.default_rng(1).permutation(16)], tmp_path / "shuffled.mp4"),
    }
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    table = evaluate_samples(
        [(p, "a slow pan over rocks") for p in files.values()] + [(tmp_path / "broken.mp4", "anything")], evaluator
    )
    rows = {r["video"].removesuffix(".mp4"): r for r in table.iter_rows(named=True)}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]
    for name in files:
        assert rows[name]["status"] == "ok" and all(np.isfinite(rows[name][m]) for m in METRICS), rows[name]
        assert rows[name]["definition"] == "evalcrafter"
        assert 0 < rows[name]["vqa_a"] < 100 and 0 < rows[name]["vqa_t"] < 100 and -1 <= rows[name]["clip_score"] <= 1
        bleus = [rows[name][f"bleu_{n}"] for n in range(1, 5)]
        assert 0 <= rows[name]["blip_bleu"] <= 1 and rows[name]["blip_bleu"] == pytest.approx(np.mean(bleus))
        assert bleus == sorted(bleus)  # EvalCrafter's BLEU-K: the best of BLEU-1..K
    assert rows["still"]["clip_temporal"] == pytest.approx(1.0, abs=1e-4)
    assert rows["still"]["warping_error"] < 1e-4
    assert rows["still"]["clip_temporal"] > rows["pan"]["clip_temporal"] >= rows["shuffled"]["clip_temporal"] - 1e-6
    assert rows["pan"]["warping_error"] * 3 < rows["shuffled"]["warping_error"]
    # Same models, same files: the same numbers.
    again = evaluate_samples([(files["pan"], "a slow pan over rocks")], evaluator).row(0, named=True)
    assert all(again[m] == rows["pan"][m] for m in METRICS)


def test_blip_captions_five_squashed_frames_in_bgr_as_evalcrafter_does_and_rgb_corrected():
    frames = np.zeros((17, 40, 60, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(17)[:, None, None] * 10  # red = 10 x the frame number
    reproduced, corrected = blip_inputs(frames, "evalcrafter"), blip_inputs(frames, "evalcrafter-corrected")
    assert [f.shape for f in reproduced] == [(224, 224, 3)] * 5
    assert [int(f[0, 0, 2]) for f in reproduced] == [0, 40, 80, 120, 160]  # frames 0, 4, 8, 12, 16, red last
    assert [int(f[0, 0, 0]) for f in corrected] == [0, 40, 80, 120, 160] and not any(f[..., 2].any() for f in corrected)


def test_an_unknown_definition_is_refused_before_anything_runs(evaluator):
    from dataclasses import replace

    with pytest.raises(ValueError, match="evalcrafter-corrected"):
        replace(evaluator, definition="paper")


def test_one_report_never_mixes_two_metric_definitions(tmp_path):
    import polars as pl

    from openvid_assets.assets.ablation import EVALS, ablation_table
    from openvid_assets.mvdit.evaluate import EVAL_SCHEMA
    from openvid_assets.store import TableStore

    tables = TableStore(str(tmp_path))
    for variant, definition in (("all", "evalcrafter"), ("none", "evalcrafter-corrected")):
        row = {k: None for k in EVAL_SCHEMA} | {"video": "a.mp4", "definition": definition, "status": "ok"}
        frame = pl.DataFrame([row], schema=EVAL_SCHEMA).with_columns(variant=pl.lit(variant))
        tables.write(EVALS, variant, frame)
    with pytest.raises(ValueError, match="evalcrafter: all; evalcrafter-corrected: none"):
        ablation_table(tables)


def test_the_resource_offers_exactly_the_definitions_there_are():
    from typing import get_args

    from openvid_assets.assets.resources import MVDiTResource
    from openvid_assets.mvdit.evaluate import METRIC_DEFINITIONS

    assert set(get_args(MVDiTResource.model_fields["metrics"].annotation)) == set(METRIC_DEFINITIONS)


def test_clip_inputs_are_evalcrafters_squashed_raw_frames():
    from openvid_assets.mvdit.evaluate import clip_score_pixels, clip_temporal_pixels

    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, :, 30:] = 200  # right half bright: squashing keeps it the right half
    score, temporal = clip_score_pixels(frames, 16), clip_temporal_pixels(frames, 16)
    assert score.shape == temporal.shape == (2, 3, 16, 16) and score.dtype == temporal.dtype == torch.float32
    for x in (score, temporal):  # 0-255, not scaled or normalised
        assert x[..., :7].max() == 0 and x[..., 9:].min() == 200
    expected = cv2.resize(frames[0], (16, 16), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(score[0].permute(1, 2, 0).numpy(), expected)


def test_under_each_definition_clip_gets_its_own_inputs(evaluator, tmp_path):
    from dataclasses import replace

    class Recording:
        image_size = 16

        def __init__(self):
            self.calls = []

        def embed(self, frames):
            self.calls.append(("embed", frames.shape))
            return np.ones((len(frames), 4))

        def embed_pixels(self, pixels):
            self.calls.append(("pixels", tuple(pixels.shape), float(pixels.max())))
            return np.ones((len(pixels), 4))

    video = write_mp4(pan_frames(frames=6), tmp_path / "pan.mp4")
    for definition, expected in (
        ("evalcrafter", [("pixels", (6, 3, 16, 16)), ("pixels", (6, 3, 16, 16))]),  # squashed, raw, twice
        ("evalcrafter-corrected", [("embed", (6, 96, 160, 3))]),  # CLIP's own preprocessing, once
    ):
        recording = Recording()
        scored = replace(evaluator, embedder=recording, text=lambda p: np.ones((1, 4)), definition=definition)
        row = evaluate_samples([(video, "a pan")], scored).row(0, named=True)
        assert row["status"] == "ok" and row["clip_score"] == pytest.approx(1.0), row
        assert [c[:2] for c in recording.calls] == expected
        assert all(c[2] > 1 for c in recording.calls if c[0] == "pixels")  # 0-255, not 0-1


def test_embedding_pixels_is_the_tower_on_what_it_is_given():
    spec = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG)
    embedder = CLIPEmbedder(spec, device="cpu", batch_size=3)
    frames = pan_frames(frames=5, size=(64, 64))
    prepared = embedder._prepare(frames)  # the normalised input embed() gives the tower
    np.testing.assert_allclose(embedder.embed_pixels(prepared), embedder.embed(frames), atol=1e-5)
