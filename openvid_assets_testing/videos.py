"""A local folder's videos, opened as the scoring functions open a shard's (``score_shard``, ``embed_shard``)."""

from pathlib import Path

from openvid_assets.media.sources import local_file
from openvid_assets.media.tasks import OpenVideo


def opener(root: Path | str) -> OpenVideo:
    """``open_video`` for the videos under the local folder ``root`` (the manifest's source root)."""
    return lambda task: local_file(task.source_uri, str(root))
