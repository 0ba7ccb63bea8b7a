"""How a shard's videos are run: frames decoded ahead in threads, and which errors fail the row or the run.

Every per-shard model step (scores, embeddings, captions, latents) goes through these.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

from openvid_assets.media.frames import DecodedFrames, FrameRequest, read_frames
from openvid_assets.media.tasks import OpenVideo, VideoTask

Progress = Callable[[int, int], None]
Task = TypeVar("Task")
Decoded = TypeVar("Decoded")


def is_infrastructure_error(error: BaseException) -> bool:
    """Errors that say nothing about the video: they fail the run (to be retried), not the row."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(error, (MemoryError, torch.OutOfMemoryError, BotoCoreError, ClientError, OSError))


def decode_ahead(
    tasks: Iterable[Task], decode: Callable[[Task], Decoded], workers: int = 2
) -> Iterator[tuple[Task, Decoded | Exception]]:
    """Decode in background threads, a bounded window ahead; yield results in task order.

    A video's own failure is yielded as the exception; an infrastructure error is raised.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        window: deque[tuple[Task, Future[Decoded]]] = deque()
        todo = iter(tasks)
        for task in todo:
            window.append((task, pool.submit(decode, task)))
            if len(window) >= 2 * workers:
                break
        while window:
            task, future = window.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                window.append((nxt, pool.submit(decode, nxt)))
            try:
                yield task, future.result()
            except Exception as e:
                if is_infrastructure_error(e):
                    raise
                yield task, e


def read_task(open_video: OpenVideo, video: VideoTask, request: FrameRequest, threads: int = 1) -> DecodedFrames:
    """Decode ``request``'s frames of one video as it is displayed (its size and rotation)."""
    with open_video(video) as path:
        return read_frames(
            path, request, width=video.width, height=video.height, rotation=video.rotation, threads=threads
        )


def decoder(open_video: OpenVideo, request: FrameRequest, threads: int = 1) -> Callable[[VideoTask], DecodedFrames]:
    """Decode one video's requested frames (``threads`` decode threads for it): what every scoring pass calls."""
    return lambda task: read_task(open_video, task, request, threads)


def failure(error: BaseException) -> str:
    """A failed row's error text."""
    text = str(error).strip() or type(error).__name__
    return text if not isinstance(error, (ValueError, TypeError, IndexError)) else f"scoring failed: {text}"
