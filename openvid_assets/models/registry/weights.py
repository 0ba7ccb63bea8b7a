"""Find, load and fingerprint model weights without touching the network by default.

Each model names its weights file. A file is looked up in ``OPENVID_WEIGHTS_DIR``,
then in the local cache (``OPENVID_CACHE_DIR/weights``, default
``~/.cache/openvid-assets/weights``), and only when ``OPENVID_ALLOW_DOWNLOADS=1``
is it fetched from its public home into the cache. Checkpoints are read as
safetensors or with ``torch.load(weights_only=True)``: never arbitrary pickles.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING


from openvid_assets import settings
from openvid_assets.store.files import atomic_path

if TYPE_CHECKING:
    import torch


class MissingWeightsError(FileNotFoundError):
    """A weights file is not available locally; the message says what to fetch and where to put it."""


@dataclass(frozen=True)
class WeightsFile:
    """A named weights file, and where the public copy lives."""

    filename: str  # relative path under the weights dir, e.g. "aesthetic/sac+logos+ava1-l14-linearMSE.pth"
    url: str
    description: str


def resolve(weights: WeightsFile) -> Path:
    """The local path of a weights file, downloading it only if the user allowed that."""
    candidates = [d / weights.filename for d in (settings.weights_dir(), settings.cache_dir()) if d is not None]
    for path in candidates:
        if path.is_file():
            return path
    if settings.downloads_allowed():
        return _download(weights, settings.cache_dir() / weights.filename)
    looked = ", ".join(str(p) for p in candidates)
    raise MissingWeightsError(
        f"weights file {weights.filename!r} ({weights.description}) was not found; looked in: {looked}. "
        f"Download it from {weights.url} and put it at $OPENVID_WEIGHTS_DIR/{weights.filename}, "
        "or set OPENVID_ALLOW_DOWNLOADS=1 to fetch it into the cache, "
        "or use the weight-free profile (openvid-assets run --models offline)."
    )


def _download(weights: WeightsFile, target: Path) -> Path:
    with atomic_path(target) as tmp, open(tmp, "wb") as out, urllib.request.urlopen(weights.url) as response:  # noqa: S310
        shutil.copyfileobj(response, out)
    return target


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, "torch.Tensor"]:
    """A flat state dict from safetensors, or from a torch file holding only tensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # common wrappers around the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state


@cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:16]


def file_digest(path: str | os.PathLike[str]) -> str:
    """Content fingerprint of a weights file (memoised per size and mtime: big files hash once)."""
    stat = os.stat(path)
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


def resolve_model_folder(repo_or_path: str, marker: str = "config.json") -> Path:
    """A Hugging Face model folder: a local path, or ``<repo id>`` under the weights dir or cache.

    Downloads (a snapshot into the cache) happen only when the user allowed them.
    """
    if Path(repo_or_path).expanduser().is_dir():
        return Path(repo_or_path).expanduser()
    candidates = [d / repo_or_path for d in (settings.weights_dir(), settings.cache_dir()) if d is not None]
    for folder in candidates:
        if (folder / marker).is_file():
            return folder
    if settings.downloads_allowed():
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_or_path, local_dir=settings.cache_dir() / repo_or_path))
    looked = ", ".join(str(p) for p in candidates) or "(OPENVID_WEIGHTS_DIR is not set)"
    raise MissingWeightsError(
        f"model folder {repo_or_path!r} was not found; looked in: {looked}. Download it with "
        f"`hf download {repo_or_path} --local-dir $OPENVID_WEIGHTS_DIR/{repo_or_path}`, "
        "or set OPENVID_ALLOW_DOWNLOADS=1, or use the weight-free profile (--models offline)."
    )


def folder_digest(folder: str | os.PathLike[str]) -> str:
    """Fingerprint of a model folder without reading its (possibly 70 GB of) weights:
    the config, plus the safetensors index or the weight files' names and sizes."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json"):
        if (folder / name).is_file():
            h.update(file_digest(folder / name).encode())
    for weights in sorted(folder.glob("*.safetensors")):
        h.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return h.hexdigest()[:16]
