"""TransNetV2 as the cut cascade's learned shot detector.

``media/scenes.py`` loads no network: it receives ``shots``, a factory that builds one video's detector from
the cut settings. ``TransNetV2Shots`` is that factory (the network: ``models/networks/transnetv2.py``); the
names at the end are media's entry points with it bound, for callers that cut with the recipe's default
detectors (``both``) and have no other detector to pass.
"""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np

from openvid_assets.media import clips, scenes
from openvid_assets.media.scenes import CutDetection


class TransNetV2Shots:
    """TransNetV2 on every frame shrunk to 48x27 (from the cascade's small decode), windows run as they fill."""

    def __init__(self, config: CutDetection, device: str = "auto"):
        from openvid_assets.models.networks.transnetv2 import INPUT_SIZE, ShotEnds, load_transnetv2
        from openvid_assets.models.registry.runtime import pick_device

        torch_device = pick_device(device)  # CUDA when there is one (fp32: the network is small, its inputs 48x27)
        model, _ = load_transnetv2(config.transnetv2_weights or None)
        self.size, self.threshold = INPUT_SIZE, config.transnetv2_threshold
        self.ends = ShotEnds(model.to(torch_device), torch_device)

    def process(self, frames: np.ndarray) -> None:
        self.ends.feed(np.stack([cv2.resize(f, self.size, interpolation=cv2.INTER_AREA) for f in frames]))

    def finish(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The cuts (first frames of new scenes) and the mixed frames of the gradual transitions among them."""
        from openvid_assets.models.networks.transnetv2 import new_scene_starts, transition_spans

        probabilities = self.ends.finish()
        cuts = new_scene_starts(probabilities[:, 0], self.threshold)
        return cuts, transition_spans(probabilities[:, 1], cuts, self.threshold)


# media's cut detection and clip cutting with TransNetV2 as the learned detector
scan_video = partial(scenes.scan_video, shots=TransNetV2Shots)
detect_clips = partial(clips.detect_clips, shots=TransNetV2Shots)
clip_shard = partial(clips.clip_shard, shots=TransNetV2Shots)
