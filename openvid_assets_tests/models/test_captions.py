"""Captions: cleaning, structured answers, camera-motion labels, the tiny LLaVA-NeXT, a shard's captions."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from openvid_assets import samples
from openvid_assets.media.tasks import ClipTask, VideoTask
from openvid_assets.media.frames import read_frames
from openvid_assets.media.manifest import build_manifest
from openvid_assets.models.scorers.captions import (
    TINY_CAPTIONER,
    CaptionSettings,
    Captioner,
    camera_motion,
    clean_caption,
    frame_indices,
    grid_image,
    parse_structured,
    tiny_llava_next,
)
from openvid_assets.models.shards.captions import caption_shard, camera_labels
from openvid_assets.models.scorers.motion import FarnebackMotion
from openvid_assets.models.shards.scores import score_shard
from openvid_assets.models.registry.weights import MissingWeightsError, resolve_model_folder


@pytest.mark.parametrize(
    "raw,truncated,expected",
    [
        ("The video shows a man walking his dog in a park.", False, "A man walking his dog in a park."),
        ("In this video, we see a red car. It drives away", False, "A red car."),
        ("This clip depicts: two kids playing. The camera slowly pa", True, "Two kids playing."),
        ("  a calm   lake\nat dawn  ", False, "A calm lake at dawn."),
        ("golden fields under a wide sky with", True, "Golden fields under a wide sky with."),
        ("Theatre lights glow! A dancer spins.", False, "Theatre lights glow! A dancer spins."),
    ],
)
def test_clean_caption(raw, truncated, expected):
    assert clean_caption(raw, truncated) == expected


def test_structured_answers_are_parsed_from_chatty_output():
    text = (
        'Sure! ```json\n{"main_object": "a dog", "background": "a beach", "camera_movement": "pan right",\n'
        '"style": "sunny", "dense_summary": "A dog runs  on a beach."}```'
    )
    fields = parse_structured(text)
    assert fields == {
        "main_object": "a dog",
        "background": "a beach",
        "camera_movement": "pan right",
        "style": "sunny",
        "dense_summary": "A dog runs on a beach.",
    }
    assert parse_structured("no json here") is None and parse_structured('{"other": 1}') is None


@pytest.mark.parametrize(
    "flow,label",
    [
        ((0.0, 0.0, 0.0), "static"),
        ((0.1, -0.2, 0.001), "static"),
        ((-2.0, 0.1, 0.0), "pan_right"),
        ((2.0, 0.3, 0.0), "pan_left"),
        ((0.1, -1.5, 0.0), "tilt_down"),
        ((0.0, 1.5, 0.0), "tilt_up"),
        ((0.2, 0.1, 0.03), "zoom_in"),
        ((0.2, 0.1, -0.03), "zoom_out"),
        ((None, 0.0, 0.0), None),
    ],
)
def test_camera_motion_rules(flow, label):
    assert camera_motion(*flow) == label


def test_camera_labels_from_measured_flow_of_known_videos(tmp_path):
    specs = [samples.static(tmp_path), samples.smooth_pan(tmp_path, px_per_frame=2), samples.portrait(tmp_path)]
    manifest = build_manifest([str(tmp_path / s.name) for s in specs], str(tmp_path), "shard-00000")
    scores = score_shard(manifest, FarnebackMotion(), lambda task: contextlib.nullcontext(Path(task.source_uri)))
    labels = camera_labels(scores.table, manifest)
    by_name = {Path(u).name: labels[v] for u, v in zip(manifest["source_uri"], manifest["video_id"])}
    # The pan's window moves right over the world (content flows left); the portrait's moves down.
    assert by_name == {"static.mp4": "static", "smooth_pan.mp4": "pan_right", "portrait.mp4": "tilt_down"}


def test_frames_shown_to_the_model():
    assert frame_indices(10, 30, CaptionSettings()) == [20]
    several = frame_indices(0, 99, CaptionSettings(layout="frames", num_frames=4))
    assert several == [12, 37, 62, 87]  # centres of four equal parts: never a boundary frame
    assert frame_indices(5, 6, CaptionSettings(layout="grid", num_frames=4)) == [5, 6]
    grid = grid_image(np.stack([np.full((2, 3, 3), k, np.uint8) for k in range(4)]))
    assert grid.shape == (4, 6, 3) and grid[0, 0, 0] == 0 and grid[0, 3, 0] == 1 and grid[2, 0, 0] == 2
    with pytest.raises(ValueError):
        CaptionSettings(layout="film-strip")


@pytest.fixture(scope="module")
def tiny() -> Captioner:
    return Captioner(TINY_CAPTIONER, device="cpu")


def test_tiny_llava_next_generates_batched_greedy_text(tiny):
    images = [[np.random.default_rng(k).integers(0, 255, (90, 160, 3), dtype=np.uint8)] for k in range(3)]
    settings = CaptionSettings(max_new_tokens=12)
    first, again = tiny.generate(images, settings), tiny.generate(images, settings)
    assert [g.text for g in first] == [g.text for g in again]  # greedy: deterministic
    assert all(g.text.strip() and g.truncated for g in first)  # stops at the token limit, never empty
    several = tiny.generate([[images[0][0]] * 3], CaptionSettings(layout="frames", num_frames=3, max_new_tokens=5))
    assert len(several) == 1 and several[0].text.strip()


def test_a_saved_checkpoint_loads_through_the_auto_classes(tmp_path, tiny):
    """The paper profile's path: AutoProcessor + AutoModelForImageTextToText from a local folder."""
    model, processor = tiny_llava_next(seed=0)
    folder = tmp_path / "llava-hf" / "tiny-llava-next-hf"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    loaded = Captioner(str(folder), device="cpu")
    image = [[np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)]]
    settings = CaptionSettings(max_new_tokens=8)
    assert loaded.generate(image, settings)[0].text == tiny.generate(image, settings)[0].text
    assert type(loaded.load()[0]).__name__ == "LlavaNextForConditionalGeneration"
    assert len(loaded.weights_digest) == 16


def test_a_missing_model_folder_says_how_to_get_it(weights_dir):
    with pytest.raises(MissingWeightsError, match="hf download llava-hf/llava-v1.6-34b-hf"):
        resolve_model_folder("llava-hf/llava-v1.6-34b-hf")


def _tasks(tmp_path) -> list[ClipTask]:
    spec = samples.hard_cuts(tmp_path)
    video = VideoTask("vid", str(tmp_path / spec.name), spec.width, spec.height, spec.fps)
    tasks = [ClipTask(f"clip-{a}", video, a, a + 25) for a in (0, 32, 62)]
    return tasks + [ClipTask("clip-gone", VideoTask("vid2", str(tmp_path / "gone.mp4"), 160, 90, 24.0), 0, 20)]


def _open(task):
    return contextlib.nullcontext(Path(task.source_uri))


def test_a_shard_is_captioned_and_cached_and_a_bad_clip_fails_alone(tmp_path, tiny):
    tasks = _tasks(tmp_path)
    settings = CaptionSettings(max_new_tokens=10, batch_size=2)
    result = caption_shard(tasks, tiny, settings, _open, camera={"vid": "pan_left"})
    table = result.table
    assert table["clip_id"].to_list() == [t.clip_id for t in tasks]
    assert table["status"].to_list() == ["ok", "ok", "ok", "failed"]
    assert "could not read" in table["error"][3]
    ok = table.filter(pl.col("status") == "ok")
    assert ok["caption"].str.len_chars().min() > 0 and set(ok["camera_motion"]) == {"pan_left"}
    assert ok["frame_indices"].to_list() == [[12], [44], [74]]  # middle frames
    assert set(ok["model"]) == {TINY_CAPTIONER}

    again = caption_shard(tasks, tiny, settings, _open, camera={"vid": "pan_left"}, previous=table)
    assert (again.computed, again.reused) == (1, 3)  # only the failed clip is tried again
    assert again.table.filter(pl.col("status") == "ok")["caption"].to_list() == ok["caption"].to_list()
    other_prompt = caption_shard(
        tasks, tiny, CaptionSettings(prompt="Name the colours.", max_new_tokens=10), _open, previous=table
    )
    assert other_prompt.computed == 4


class _FailsOnDarkFrames(Captioner):
    """A captioner whose generation errors for one input: to check that a batch failure is isolated."""

    def generate(self, batch, settings):
        if any(images[0].mean() < 80 for images in batch):
            raise RuntimeError("CUDA error: device-side assert triggered")
        return super().generate(batch, settings)


def test_a_generation_error_fails_only_its_clip(tmp_path):
    tasks = _tasks(tmp_path)[:3]  # scene 2 of hard_cuts is the dark blue one
    dark = [
        t.clip_id for t in tasks if read_frames(t.video.source_uri, _middle(t), width=160, height=90).frames.mean() < 80
    ]
    assert len(dark) == 1
    result = caption_shard(
        tasks, _FailsOnDarkFrames(TINY_CAPTIONER, device="cpu"), CaptionSettings(max_new_tokens=6, batch_size=3), _open
    )
    failed = result.table.filter(pl.col("status") == "failed")
    assert failed["clip_id"].to_list() == dark and "generation failed" in failed["error"][0]
    assert result.table.filter(pl.col("status") == "ok").height == 2


def _middle(task):
    from openvid_assets.media.frames import FrameRequest

    return FrameRequest(indices=lambda _n: frame_indices(task.start_frame, task.end_frame, CaptionSettings()))


def test_structured_mode_asks_for_json_and_keeps_the_caption(tmp_path, tiny):
    settings = CaptionSettings(structured=True, max_new_tokens=6)
    assert "JSON" in settings.params()["prompt"]
    result = caption_shard(_tasks(tmp_path)[:1], tiny, settings, _open)
    row = result.table.row(0, named=True)
    # Random weights never write JSON: the caption falls back to the cleaned text, structured stays empty.
    assert row["status"] == "ok" and row["caption"] and row["structured"] is None
    json.dumps(row)  # the row is plain data


def test_a_defect_answer_becomes_its_columns_or_an_unparsed_row_with_the_raw_text():
    from openvid_assets.models.scorers.caption_checks import DEFECT_TYPES
    from openvid_assets.models.shards.captions import defect_row

    answer = json.dumps({**dict.fromkeys(DEFECT_TYPES, "no"), "text_overlay": "yes", "content_type": "animation"})
    row = defect_row(answer)
    assert row["defects_status"] == "ok" and row["defects_raw"] == answer
    assert row["defect_text_overlay"] is True and row["defect_slideshow"] is False
    assert row["content_type"] == "animation"
    broken = "forest horse quiet static forest"
    assert defect_row(broken) == {"defects_status": "unparsed", "defects_raw": broken}
