"""Per-video content rows from the embeddings table: failures pass through with their reason, the crop box is in
the video's displayed pixels, NSFW is the worst frame's."""

import numpy as np
import polars as pl

from openvid_assets.models.scorers.content import FrameInspector
from openvid_assets.models.shards.content import content_rows, picture_boxes
from openvid_assets.models.shards.tables import EMBEDDING_SCHEMA


class FixedText:
    """A text detector that reports a fixed area per frame (the inspector's plumbing, not the detector)."""

    name, weights_digest = "fixed", "0"

    def params(self):
        return {}

    def text_area(self, frames):
        return [0.5] * len(frames)


class FrameIndexNSFW:
    """Scores a frame by the first coordinate of its embedding."""

    name, weights_digest = "first-coordinate", "0"

    def score(self, embeddings):
        return np.asarray(embeddings)[:, 0]


def rows_for(video_id, frames, box, first_coordinates):
    measures = FrameInspector().measure(frames, [])
    rows = []
    for k, (m, x) in enumerate(zip(measures, first_coordinates)):
        vector = np.zeros(768, np.float16)
        vector[0] = x
        rows.append(
            {
                "video_id": video_id,
                "source_uri": f"/v/{video_id}.mp4",
                "status": "ok",
                "frame_index": k,
                "num_frames": len(frames),
                "embedding": vector.tobytes(),
                **m,
                "picture_box": box,
            }
        )
    return rows


def test_rows_carry_failures_crop_boxes_in_display_pixels_and_the_worst_frame():
    frames = np.full((3, 90, 160, 3), 120, np.uint8)
    rows = rows_for("bars", frames, [0.0, 0.125, 1.0, 0.875], [-0.5, 0.25, -0.1])
    rows += rows_for("plain", frames, [0.0, 0.0, 1.0, 1.0], [-0.3, -0.2, -0.4])
    rows.append(
        {
            "video_id": "broken",
            "source_uri": "/v/broken.mp4",
            "status": "failed",
            "error": "could not decode frames: moov atom not found",
        }
    )
    # A second file with the same bytes as "plain": same video id, one failed row, after the original's frames.
    rows.append(
        {
            "video_id": "plain",
            "source_uri": "/v/copy-of-plain.mp4",
            "status": "failed",
            "error": "duplicate content of /v/plain.mp4",
        }
    )
    embeddings = pl.DataFrame(rows, schema=EMBEDDING_SCHEMA)
    manifest = pl.DataFrame(
        {
            "video_id": ["bars", "plain", "broken"],
            "status": ["ok", "ok", "ok"],
            "width": [1920, 640, 640],
            "height": [1080, 360, 360],
        }
    )
    table = content_rows(embeddings, manifest, FrameIndexNSFW())
    assert table.select("video_id", "source_uri", "status").rows() == [
        ("bars", "/v/bars.mp4", "ok"),
        ("plain", "/v/plain.mp4", "ok"),
        ("broken", "/v/broken.mp4", "failed"),
        ("plain", "/v/copy-of-plain.mp4", "failed"),
    ]
    assert "duplicate content" in table["error"][3]
    by_id = {r["video_id"]: r for r in table.iter_rows(named=True) if r["error"] is None or r["video_id"] != "plain"}
    assert by_id["broken"]["status"] == "failed" and "moov atom" in by_id["broken"]["error"]
    bars = by_id["bars"]
    assert (bars["crop_x"], bars["crop_y"], bars["crop_w"], bars["crop_h"]) == (0, 136, 1920, 808)
    assert bars["bordered"] and not by_id["plain"]["bordered"]
    assert bars["nsfw"] == 0.25 and by_id["plain"]["nsfw"] == float(np.float16(-0.2))  # fp16-stored
    assert bars["brightness"] == 120.0 and bars["text_area"] is None  # no detector ran
    assert picture_boxes(table) == {"bars": (0, 136, 1920, 808)}
    assert content_rows(embeddings, manifest, None)["nsfw"].is_null().all()


def test_the_inspector_reads_text_only_on_the_frames_named():
    frames = np.zeros((4, 64, 64, 3), np.uint8)
    measured = FrameInspector(FixedText()).measure(frames, [1, 3])
    assert [m["text_area"] for m in measured] == [None, 0.5, None, 0.5]
    assert FrameInspector(FixedText()).params()["text"]["name"] == "fixed"
