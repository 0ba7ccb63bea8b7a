"""The frame-reading function over every decoder: same frames, same counts, bad files become reasons."""

import numpy as np
import pytest

from openvid_assets import samples
from openvid_assets.media.frames import DECODERS, DecodeError, FrameRequest, read_frames
from openvid_assets.media.probe import probe

GOOD = ["smooth_pan.mp4", "portrait.mp4", "hd_1080p.mp4", "hard_cuts.mp4", "pan.m4v"]


def _sparse(n: int) -> list[int]:
    return sorted({0, n // 3, n // 2, n - 2, n - 1})


@pytest.mark.parametrize("decoder", [d for d in DECODERS if d != "decord"])
def test_every_decoder_gives_decords_frames_at_native_size(sample_videos, tmp_path, decoder):
    root, _ = sample_videos
    vp9 = samples.smooth_pan(tmp_path, "pan.webm")  # VP9 in WebM: no frame count in the header
    for path in [root / name for name in GOOD] + [tmp_path / vp9.name]:
        facts = probe(path)
        request = FrameRequest(indices=_sparse)
        reference = read_frames(
            path, request, width=facts.width, height=facts.height, rotation=facts.rotation, decoder="decord"
        )
        got = read_frames(
            path, request, width=facts.width, height=facts.height, rotation=facts.rotation, decoder=decoder
        )
        assert got.num_frames == reference.num_frames, path.name
        assert got.indices == reference.indices, path.name
        assert np.array_equal(got.frames, reference.frames), path.name  # same FFmpeg decoder, same pixels


@pytest.mark.parametrize("decoder", DECODERS)
def test_decoders_scale_while_decoding_and_keep_orientation(sample_videos, tmp_path, decoder):
    root, _ = sample_videos
    rotated = samples.rotated(root / "portrait.mp4", tmp_path / "rotated.mp4")
    for path in (root / "hd_1080p.mp4", root / "portrait.mp4", rotated):
        facts = probe(path)
        request = FrameRequest(indices=_sparse, short_side=64)
        got = read_frames(
            path, request, width=facts.width, height=facts.height, rotation=facts.rotation, decoder=decoder
        )
        reference = read_frames(
            path, request, width=facts.width, height=facts.height, rotation=facts.rotation, decoder="decord"
        )
        assert got.frames.shape == reference.frames.shape and min(got.frames.shape[1:3]) == 64, path.name
        # Different scalers (swscale vs bilinear with antialiasing): close, not equal.
        assert np.abs(got.frames.astype(int) - reference.frames).mean() < 8, path.name


@pytest.mark.parametrize("decoder", DECODERS)
def test_bad_files_are_decode_errors_with_every_decoder(sample_videos, tmp_path, decoder):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(DecodeError, match="decode failed"):
        read_frames(junk, FrameRequest(indices=_sparse), width=160, height=90, decoder=decoder)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError):
        read_frames(empty, FrameRequest(indices=_sparse), width=160, height=90, decoder=decoder)


def test_an_unknown_decoder_is_refused(sample_videos):
    root, _ = sample_videos
    with pytest.raises(DecodeError, match="unknown decoder"):
        read_frames(root / "smooth_pan.mp4", FrameRequest(indices=_sparse), width=160, height=90, decoder="vhs")  # type: ignore[arg-type]
