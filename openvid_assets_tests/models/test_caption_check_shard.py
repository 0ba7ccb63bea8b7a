"""A shard's caption checks (models/shards/caption_checks.py): the captioner's frames are decoded again and compared
with the captions, so a caption attached to the wrong clip is caught; embeddings are cached by caption and frames.

The embedders are stand-ins whose right answer is known (a frame's embedding is its mean colour, a caption's the
colour it names): what is tested is this code's logic, from decoding to the drop, not CLIP's."""

import subprocess
from contextlib import contextmanager

import numpy as np
import polars as pl
import pytest

from openvid_assets.media.tasks import ClipTask, VideoTask
from openvid_assets.models.scorers.caption_checks import CaptionCheckSettings
from openvid_assets.models.shards.caption_checks import CaptionDrops, check_shard
from openvid_assets.models.shards.tables import CAPTION_SCHEMA

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0)}


class ColourEmbedder:
    name, weights_digest, decode_short_side = "mean-colour", "none", None
    calls = 0

    def square(self, frames):
        return frames

    def embed(self, frames):
        self.calls += len(frames)
        v = frames.reshape(len(frames), -1, 3).mean(axis=1)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


class ColourWords:
    def embed(self, texts):
        out = []
        for text in texts:
            v = np.array(next(c for w, c in COLOURS.items() if w in text.lower()), np.float32) + 0.05
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colours")
    tasks = {}
    for name in COLOURS:
        path = folder / f"{name}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c={name}:s=64x48:r=24:d=1",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        video = VideoTask(name, str(path), 64, 48, 24.0, num_frames=24)
        tasks[f"{name}-clip"] = ClipTask(f"{name}-clip", video, 0, 23)
    return tasks


@contextmanager
def _open(video):
    yield video.source_uri


def captions_for(tasks, texts):
    rows = [
        {"clip_id": c, "video_id": t.video.video_id, "status": "ok", "caption": texts[c], "caption_raw": texts[c],
         "truncated": False, "frame_indices": [6, 12, 18]}
        for c, t in tasks.items()
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=CAPTION_SCHEMA)


def good_texts(tasks):
    return {c: f"A plain {c.split('-')[0]} picture fills the frame from edge to edge, calm and still." for c in tasks}


def run(tasks, texts, drops=CaptionDrops(), previous=None, embedder=None):
    return check_shard(
        captions_for(tasks, texts),
        tasks,
        embedder or ColourEmbedder(),
        ColourWords(),
        CaptionCheckSettings(),
        drops,
        _open,
        previous=previous,
    )


def test_good_captions_pass_every_check(clips):
    result = run(clips, good_texts(clips))
    assert result.table.height == 4 and result.computed == 4
    assert (result.table["flags"] == 0).all() and result.table["reason"].is_null().all()
    assert (result.table["agreement_rank"] == 0).all()


def test_two_swapped_captions_are_caught_and_dropped_when_the_recipe_says_so(clips):
    texts = good_texts(clips)
    texts["red-clip"], texts["green-clip"] = texts["green-clip"], texts["red-clip"]
    table = run(clips, texts, CaptionDrops(checks=("agreement",))).table
    flagged = dict(table.select("clip_id", "agreement").iter_rows())
    assert {c for c, reason in flagged.items() if reason} == {"red-clip", "green-clip"}
    assert flagged["red-clip"].startswith("agreement: ")
    dropped = dict(table.select("clip_id", "reason").iter_rows())
    assert dropped["red-clip"] == flagged["red-clip"] and dropped["blue-clip"] is None
    # Without the drop the same findings are measured and shown, and nothing is dropped.
    assert run(clips, texts).table["reason"].is_null().all()


def test_embeddings_are_reused_unless_the_caption_changed(clips):
    first = run(clips, good_texts(clips))
    embedder = ColourEmbedder()
    again = run(clips, good_texts(clips), previous=first.table, embedder=embedder)
    assert (again.computed, again.reused, embedder.calls) == (0, 4, 0)
    assert again.table.drop("params", "params_hash").equals(first.table.drop("params", "params_hash"))
    texts = good_texts(clips)
    texts["blue-clip"] = "A plain yellow picture fills the frame from edge to edge, calm and still."
    changed = run(clips, texts, previous=first.table, embedder=embedder)
    assert (changed.computed, changed.reused, embedder.calls) == (1, 3, 3)  # one clip's three frames
    assert dict(changed.table.select("clip_id", "agreement").iter_rows())["blue-clip"].startswith("agreement: ")


def test_defect_tags_drop_only_what_the_recipe_names(clips):
    captions = captions_for(clips, good_texts(clips)).with_columns(
        defect_text_overlay=pl.col("clip_id") == "red-clip",
        defect_slideshow=pl.lit(False),
        content_type=pl.when(pl.col("clip_id") == "blue-clip").then(pl.lit("screen_recording")).otherwise(pl.lit("real_footage")),
    )  # fmt: skip
    drops = CaptionDrops(defects=("text_overlay",), content_types=("screen_recording",))
    table = check_shard(captions, clips, ColourEmbedder(), ColourWords(), CaptionCheckSettings(), drops, _open).table
    reasons = dict(table.select("clip_id", "reason").iter_rows())
    assert reasons == {
        "red-clip": "defect: text_overlay",
        "green-clip": None,
        "blue-clip": "content type: screen_recording",
        "yellow-clip": None,
    }


def test_a_swap_between_unrelated_clips_of_a_large_shard_is_a_mutual_best_match():
    from openvid_assets.models.scorers.caption_checks import agreement, mutual_swaps

    rng = np.random.default_rng(0)
    missed_by_rank = 0
    for trial in range(50):
        images = rng.normal(size=(16, 32))
        text = images + rng.normal(scale=0.3, size=images.shape)  # each caption closest to its own clip
        assert (mutual_swaps(text, images) == -1).all()
        i, j = rng.choice(16, size=2, replace=False)
        text[[i, j]] = text[[j, i]]
        swaps = mutual_swaps(text, images)
        assert {k for k in range(16) if swaps[k] >= 0} == {i, j} and (swaps[i], swaps[j]) == (j, i)
        missed_by_rank += int((agreement(text, images)[1][[i, j]] <= 0.5).any())
    assert missed_by_rank > 0  # why the mutual match is needed beside the rank share
