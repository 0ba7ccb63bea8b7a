"""Deployment settings read from the environment, with defaults that run on one laptop.

This is the only module that reads ``OPENVID_*`` variables. They say where things
are and how a machine runs (data root, source, weights folder, device, limits);
what the dataset *is* (models, rules, clip and caption settings) is the recipe,
stored under the data root (openvid_assets/recipe.py), never an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_ROOT = "data"
DEFAULT_SHARD_SIZE = 1000
DEFAULT_PROBE_TIMEOUT_S = 60.0


def _positive(name: str, default: int | float, cast: type) -> int | float:
    """``$name`` as a positive number of type ``cast``, or ``default`` when unset."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        parsed = cast(value)
    except ValueError:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if parsed <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return parsed


def data_root() -> str:
    """Where every table, clip and export is written (``OPENVID_DATA_ROOT``): a folder or s3://."""
    return os.environ.get("OPENVID_DATA_ROOT") or DEFAULT_DATA_ROOT


def source() -> str | None:
    """The raw-video source the sensor watches (``OPENVID_SOURCE``): a folder or s3://."""
    return os.environ.get("OPENVID_SOURCE") or None


def shard_size() -> int:
    """Videos per shard (``OPENVID_SHARD_SIZE``)."""
    return int(_positive("OPENVID_SHARD_SIZE", DEFAULT_SHARD_SIZE, int))


def shards_per_run() -> int:
    """How many shards one run of a per-shard model or I/O step takes in a backfill (``OPENVID_SHARDS_PER_RUN``,
    default 1). Read when the code location loads: it is those steps' Dagster backfill policy. One shard a run
    costs a failure one shard and spreads runs widely; more shards a run spend the ~4 s a run costs to start
    (a process, the code location) once for many, which at tens of thousands of shards is what keeps the
    backfill daemon's queueing short (docs/SCALE.md)."""
    return int(_positive("OPENVID_SHARDS_PER_RUN", 1, int))


def probe_timeout_s() -> float:
    """Seconds one video may take to probe before it is marked failed (``OPENVID_PROBE_TIMEOUT_S``)."""
    return float(_positive("OPENVID_PROBE_TIMEOUT_S", DEFAULT_PROBE_TIMEOUT_S, float))


DEFAULT_MAX_PIXELS = 8192 * 4320  # DCI 8K; larger frames are refused before anything decodes them
DEFAULT_MAX_DURATION_S = 4 * 3600.0  # a feature film fits; a 10-hour stream recording does not


def max_pixels() -> int:
    """Largest frame (width x height) a video may have (``OPENVID_MAX_PIXELS``); larger is a failed row."""
    return int(_positive("OPENVID_MAX_PIXELS", DEFAULT_MAX_PIXELS, int))


def max_duration_s() -> float:
    """Longest video in seconds (``OPENVID_MAX_DURATION_S``); longer is a failed row, never decoded."""
    return float(_positive("OPENVID_MAX_DURATION_S", DEFAULT_MAX_DURATION_S, float))


def default_profile() -> str:
    """The model profile a new data root's recipe starts with (``OPENVID_MODELS``, default ``paper``).
    Once a recipe is stored, it decides; this variable changes nothing for an existing data root."""
    return os.environ.get("OPENVID_MODELS") or "paper"


def weights_dir() -> Path | None:
    """Folder of model weights files (``OPENVID_WEIGHTS_DIR``)."""
    value = os.environ.get("OPENVID_WEIGHTS_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Cache of fetched weights (``OPENVID_CACHE_DIR``, default ~/.cache/openvid-assets)."""
    base = os.environ.get("OPENVID_CACHE_DIR") or Path.home() / ".cache" / "openvid-assets"
    return Path(base).expanduser() / "weights"


def downloads_allowed() -> bool:
    """Whether missing weights may be fetched from their public URL (``OPENVID_ALLOW_DOWNLOADS=1``)."""
    return os.environ.get("OPENVID_ALLOW_DOWNLOADS", "").lower() in ("1", "true", "yes")


def device() -> str:
    """Device of model steps (``OPENVID_DEVICE``): auto (CUDA if present, else CPU), cpu, cuda, cuda:1..."""
    return os.environ.get("OPENVID_DEVICE") or "auto"


def daemon_command() -> list[str]:
    """What the run command starts when no Dagster daemon serves the instance (``OPENVID_DAGSTER_DAEMON``, a
    command line; default ``dagster-daemon`` beside this Python). ``run -w <workspace.yaml>`` is appended."""
    import shlex
    import sys

    value = os.environ.get("OPENVID_DAGSTER_DAEMON")
    return shlex.split(value) if value else [str(Path(sys.executable).with_name("dagster-daemon"))]


DEFAULT_ABLATION_VARIANTS = ("all", "no_aesthetic", "no_temporal", "no_motion", "no_clarity", "pool")


def ablation_variants() -> list[str]:
    """Names of the ablation's recipe variants (``OPENVID_ABLATION_VARIANTS``, comma-separated; default the
    paper's: all, no_aesthetic, no_temporal, no_motion, no_clarity, pool). Read when the code location loads:
    they are the ``ablation_variants`` partitions."""
    value = os.environ.get("OPENVID_ABLATION_VARIANTS")
    return [v.strip() for v in value.split(",")] if value else list(DEFAULT_ABLATION_VARIANTS)
