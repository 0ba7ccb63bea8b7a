"""A source's size before any run: how many videos it lists, and from a sample of them probed with ffprobe (the
container and packet headers, no decoding), how many are readable, their hours and resolutions."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from openvid_assets.media.probe import probe
from openvid_assets.media.sources import VideoInputError, iter_videos, local_file, normalize_source


@dataclass(frozen=True)
class SourceSurvey:
    videos: int  # files with a video extension
    sampled: int  # of them probed
    readable: int  # of the sampled, probed without error
    mean_seconds: float  # over the readable sampled
    resolutions: list[tuple[str, float]]  # the commonest WxH among the readable sampled, with their shares

    @property
    def readable_share(self) -> float:
        return self.readable / self.sampled if self.sampled else 0.0

    @property
    def hours(self) -> float:
        """The source's expected hours of readable video."""
        return self.videos * self.readable_share * self.mean_seconds / 3600


def survey_source(uri: str, s3_client: Any = None, sample: int = 100, seed: int = 0) -> SourceSurvey:
    """List ``uri`` (streamed) keeping a uniform random sample of ``sample`` files (reservoir sampling: any size of
    listing in bounded memory), then probe the sample."""
    rng, kept, count = random.Random(seed), [], 0
    for count, video in enumerate(iter_videos(uri, s3_client), 1):
        if len(kept) < sample:
            kept.append(video)
        elif (slot := rng.randrange(count)) < sample:
            kept[slot] = video
    root, seconds, sizes = normalize_source(uri), [], Counter()
    for video in kept:
        try:
            with local_file(video, root, s3_client) as path:
                found = probe(path)
        except VideoInputError:  # unreadable, vanished or outside the root: not readable
            continue
        seconds.append(found.duration_s)
        sizes[f"{found.width}x{found.height}"] += 1
    readable = len(seconds)
    return SourceSurvey(
        videos=count,
        sampled=len(kept),
        readable=readable,
        mean_seconds=sum(seconds) / readable if readable else 0.0,
        resolutions=[(size, n / readable) for size, n in sizes.most_common(5)],
    )
