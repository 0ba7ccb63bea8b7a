"""Where and how models run: CUDA when present, else CPU; half precision on GPU only."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import torch

from openvid_assets import settings

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M")
W = TypeVar("W")


_claimed: dict[str, object] = {}  # this process's GPU claim: index and the open lock file that holds it


def claim_gpu(count: int, lock_dir: str | None = None) -> int:
    """The index of a GPU that no other process on this machine has claimed, claimed for this process's life.

    Dagster's queue lets at most as many model runs start as the ``gpu`` pool has slots (one per GPU); each run
    then takes a free GPU here: an exclusive lock per GPU, released by the kernel when the process ends, however
    it ends. With every GPU claimed (more runs than GPUs), GPUs are shared by process id."""
    import fcntl
    import os
    import tempfile

    if "index" in _claimed:
        return int(_claimed["index"])
    folder = lock_dir or tempfile.gettempdir()
    for index in range(count):
        lock = open(os.path.join(folder, f"openvid-gpu-{index}.lock"), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _claimed.update(index=index, lock=lock)
        return index
    _claimed["index"] = os.getpid() % count
    return int(_claimed["index"])


def pick_device(requested: str = "auto") -> torch.device:
    if requested in ("", "auto"):  # an explicit choice wins; else the deployment setting may pin one
        requested = settings.device()
    if requested == "auto":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return torch.device(f"cuda:{claim_gpu(count)}" if count > 1 else "cuda" if count else "cpu")
    return torch.device(requested)


def pick_dtype(device: torch.device, fp32: bool = False) -> torch.dtype:
    """fp16 on CUDA unless ``fp32`` (as upstream runs UniMatch and DOVER); fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" and not fp32 else torch.float32


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build a randomly initialised model identically in every process, without touching global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def built_or_loaded(
    build: Callable[[], M], load: Callable[[W], tuple[M, str]], weights: W | None, seed: int
) -> tuple[M, str]:
    """(model, weights digest): loaded from ``weights``, or, with none (tests, benchmarks, dry runs), built with a
    random initialisation that ``seed`` makes the same in every process."""
    if weights is None:
        with seeded(seed):
            return build(), f"random-seed{seed}"
    return load(weights)


def in_batches_halving_on_oom(
    items: Sequence[T],
    batch_size: int,
    run: Callable[[Sequence[T]], list[R]],
    on_halve: Callable[[int], None] | None = None,
) -> list[R]:
    """``run`` over consecutive batches of ``items``; a CUDA out-of-memory error halves the batch and
    retries it, down to one item (which then re-raises, for the step's retry policy to handle).

    ``run`` must return one result per item. ``on_halve`` hears the new size, so a caller can keep it.
    """
    out: list[R] = []
    start, size = 0, max(1, batch_size)
    while start < len(items):
        batch = items[start : start + size]
        try:
            out.extend(run(batch))
        except torch.OutOfMemoryError:
            if size == 1:
                raise
            size = max(1, size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if on_halve:
                on_halve(size)
            continue
        start += len(batch)
    return out
