"""Model profiles (``OPENVID_MODELS``): which models every score uses.

- ``paper``: the OpenVid-1M models, loaded from local weights files (the default).
- ``offline``: tiny randomly-initialised models of the same classes plus the
  weight-free backends, so the whole pipeline runs with no weights and no network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from openvid_assets.models.aesthetic import LAION_AESTHETIC
from openvid_assets.models.backends import VideoScorer
from openvid_assets.models.clarity import LaplacianClarity
from openvid_assets.models.clip import CLIP_VIT_L14_OPENAI, TINY_CLIP_CONFIG, ClipSpec
from openvid_assets.models.motion import FarnebackMotion
from openvid_assets.models.weights import MissingWeightsError, WeightsFile, resolve


@dataclass(frozen=True)
class Profile:
    name: str
    clip: ClipSpec
    aesthetic_weights: WeightsFile | None
    motion_backend: str
    clarity_backend: str

    def required_weights(self) -> list[WeightsFile]:
        return [w for w in (self.clip.weights, self.aesthetic_weights) if w is not None]

    def check_weights(self) -> None:
        """Fail before any run starts if a weights file is missing, naming every one."""
        missing = []
        for weights in self.required_weights():
            try:
                resolve(weights)
            except MissingWeightsError as e:
                missing.append(str(e))
        if missing:
            raise MissingWeightsError(f"profile {self.name!r} is missing weights:\n- " + "\n- ".join(missing))


PROFILES = {
    "paper": Profile(
        name="paper",
        clip=ClipSpec("ViT-L-14-quickgelu", weights=CLIP_VIT_L14_OPENAI),
        aesthetic_weights=LAION_AESTHETIC,
        motion_backend="farneback",
        clarity_backend="laplacian",
    ),
    "offline": Profile(
        name="offline",
        clip=ClipSpec("tiny-clip", config=TINY_CLIP_CONFIG),
        aesthetic_weights=None,
        motion_backend="farneback",
        clarity_backend="laplacian",
    ),
}

MOTION_BACKENDS = {"farneback": FarnebackMotion}
CLARITY_BACKENDS = {"laplacian": LaplacianClarity}


def get_profile(name: str | None = None) -> Profile:
    name = name or os.environ.get("OPENVID_MODELS") or "paper"
    if name not in PROFILES:
        raise ValueError(f"unknown model profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def motion_scorer(profile: Profile) -> VideoScorer:
    return MOTION_BACKENDS[profile.motion_backend]()


def clarity_scorer(profile: Profile) -> VideoScorer:
    return CLARITY_BACKENDS[profile.clarity_backend]()
