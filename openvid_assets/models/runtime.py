"""Where and how models run: CUDA when present, else CPU; half precision on GPU only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def pick_device(requested: str = "auto") -> torch.device:
    if requested in ("", "auto"):  # an explicit choice wins; else the environment may pin one
        requested = os.environ.get("OPENVID_DEVICE") or "auto"
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build a randomly initialised model identically in every process, without touching global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
