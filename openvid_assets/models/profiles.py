"""Model profiles (the recipe's ``models.profile``): which models every score uses.

- ``paper``: the OpenVid-1M models, loaded from local weights files (the default):
  CLIP ViT-L/14 + LAION aesthetic head, UniMatch flow, DOVER-Technical, LLaVA-v1.6-34b captions.
- ``offline``: tiny randomly-initialised models of the same classes, so the whole
  pipeline runs with no weights and no network (its scores are only plumbing).

The weight-free backends (``farneback`` motion, ``laplacian`` clarity) can replace
the networks in either profile (``motion_backend`` / ``clarity_backend`` of the
``models`` resource).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from typing import TYPE_CHECKING

from openvid_assets.models.registry.catalog import (
    CLIP_VIT_B32_OPENAI,
    CLIP_VIT_L14_OPENAI,
    DOVER_WEIGHTS,
    EVALCRAFTER_RAFT_WEIGHTS,
    PAPER_BLIP2,
    LAION_AESTHETIC,
    PAPER_CAPTIONER,
    SD_SAFETY_CHECKER,
    TINY_CAPTIONER,
    TINY_CLIP_CONFIG,
    UNIMATCH_FLOW,
    CLIPSpec,
)
from openvid_assets.models.registry.weights import (
    MissingWeightsError,
    WeightsFile,
    file_digest,
    folder_digest,
    resolve,
    resolve_model_folder,
)

if TYPE_CHECKING:
    from openvid_assets.models.scorers.base import VideoScorer
    from openvid_assets.models.scorers.captions import Captioner


# Builders import their model module when called: choosing a profile loads no network code.
def _unimatch(config: str, weights: WeightsFile | None) -> Callable[[str, "Profile"], "VideoScorer"]:
    def build(device: str, profile: "Profile") -> "VideoScorer":
        from openvid_assets.models.networks import unimatch
        from openvid_assets.models.scorers.motion import UniMatchMotion

        return UniMatchMotion(
            getattr(unimatch, config),
            weights,
            device=device,
            definition=profile.motion_definition,
            exact=profile.exact_inputs,
            fp32=profile.fp32_networks,
        )

    return build


def _dover(config: str, weights: WeightsFile | None) -> Callable[[str, "Profile"], "VideoScorer"]:
    def build(device: str, profile: "Profile") -> "VideoScorer":
        from openvid_assets.models.networks import dover
        from openvid_assets.models.scorers.clarity import DoverClarity

        return DoverClarity(getattr(dover, config), weights, device=device, fp32=profile.fp32_networks)

    return build


def _farneback(device: str, profile: "Profile") -> "VideoScorer":
    from openvid_assets.models.scorers.motion import FarnebackMotion

    return FarnebackMotion()


def _laplacian(device: str, profile: "Profile") -> "VideoScorer":
    from openvid_assets.models.scorers.clarity import LaplacianClarity

    return LaplacianClarity()


# name -> (factory(device, profile), weights file it needs or None)
MOTION_BACKENDS: dict[str, tuple[Callable[[str, "Profile"], "VideoScorer"], WeightsFile | None]] = {
    "unimatch": (_unimatch("PAPER", UNIMATCH_FLOW), UNIMATCH_FLOW),
    "unimatch-tiny": (_unimatch("TINY", None), None),
    "farneback": (_farneback, None),
}
CLARITY_BACKENDS: dict[str, tuple[Callable[[str, "Profile"], "VideoScorer"], WeightsFile | None]] = {
    "dover": (_dover("PAPER", DOVER_WEIGHTS), DOVER_WEIGHTS),
    "dover-tiny": (_dover("TINY", None), None),
    "laplacian": (_laplacian, None),
}


@dataclass(frozen=True)
class Profile:
    name: str
    clip: CLIPSpec
    aesthetic_weights: WeightsFile | None
    motion_backend: str
    clarity_backend: str
    captioner: str  # a Hugging Face repo id or local folder, or TINY_CAPTIONER
    nsfw_weights: WeightsFile | None = None  # the safety checker's concept embeddings (None: a random stand-in)
    motion_definition: str = "opensora-v1.3"  # UniMatch: which published motion score (models/scorers/motion.py)
    exact_inputs: bool = False  # UniMatch and CLIP see upstream's exact inputs (full-size decode, float resize)
    fp32_networks: bool = False  # UniMatch and DOVER in fp32 on CUDA too, as upstream runs them (else fp16)

    def with_backends(
        self,
        motion: str | None = None,
        clarity: str | None = None,
        captioner: str | None = None,
        motion_definition: str | None = None,
        exact_inputs: bool | None = None,
        fp32_networks: bool | None = None,
    ) -> "Profile":
        from openvid_assets.models.scorers.motion import MOTION_DEFINITIONS

        for name, table in ((motion, MOTION_BACKENDS), (clarity, CLARITY_BACKENDS)):
            if name and name not in table:
                raise ValueError(f"unknown backend {name!r}; choose one of {sorted(table)}")
        if motion_definition and motion_definition not in MOTION_DEFINITIONS:
            raise ValueError(
                f"unknown motion definition {motion_definition!r}; choose one of {sorted(MOTION_DEFINITIONS)}"
            )
        return replace(
            self,
            motion_backend=motion or self.motion_backend,
            clarity_backend=clarity or self.clarity_backend,
            captioner=captioner or self.captioner,
            motion_definition=motion_definition or self.motion_definition,
            exact_inputs=self.exact_inputs if exact_inputs is None else exact_inputs,
            fp32_networks=self.fp32_networks if fp32_networks is None else fp32_networks,
        )

    def required_weights(self) -> list[WeightsFile]:
        files = [
            self.clip.weights,
            self.aesthetic_weights,
            MOTION_BACKENDS[self.motion_backend][1],
            CLARITY_BACKENDS[self.clarity_backend][1],
        ]
        return [w for w in files if w is not None]

    def evaluation_weights(self) -> tuple[list[WeightsFile], list[str]]:
        """(files, model folders) the metrics of generated videos load beyond the curation models (mvdit_eval,
        ablation_eval: mvdit/evaluate.py): EvalCrafter's CLIP ViT-B/32, DOVER, RAFT and BLIP-2; none offline."""
        if self.name == "offline":
            return [], []
        return [CLIP_VIT_B32_OPENAI, DOVER_WEIGHTS, EVALCRAFTER_RAFT_WEIGHTS], [PAPER_BLIP2]

    def check_weights(self, nsfw: bool = True, evaluation: bool = False) -> None:
        """Fail before any run starts if a weights file is missing, naming every one (the safety checker's only
        when the NSFW filter is on, the metrics' only when generated videos are to be scored)."""
        files = self.required_weights() + ([self.nsfw_weights] if nsfw and self.nsfw_weights else [])
        folders = [self.captioner] if self.captioner != TINY_CAPTIONER else []
        if evaluation:
            more_files, more_folders = self.evaluation_weights()
            files += [w for w in more_files if w not in files]
            folders += more_folders
        missing = []
        for weights in files:
            try:
                resolve(weights)
            except MissingWeightsError as e:
                missing.append(str(e))
        for folder in folders:
            try:
                resolve_model_folder(folder)
            except MissingWeightsError as e:
                missing.append(str(e))
        if missing:
            raise MissingWeightsError(f"profile {self.name!r} is missing weights:\n- " + "\n- ".join(missing))


PROFILES = {
    "paper": Profile(
        name="paper",
        clip=CLIPSpec("ViT-L-14-quickgelu", weights=CLIP_VIT_L14_OPENAI),
        aesthetic_weights=LAION_AESTHETIC,
        nsfw_weights=SD_SAFETY_CHECKER,
        motion_backend="unimatch",
        clarity_backend="dover",
        captioner=PAPER_CAPTIONER,
    ),
    "offline": Profile(
        name="offline",
        clip=CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG),
        aesthetic_weights=None,
        motion_backend="unimatch-tiny",
        clarity_backend="dover-tiny",
        captioner=TINY_CAPTIONER,
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown model profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


@cache
def motion_scorer(profile: Profile, device: str = "auto") -> "VideoScorer":
    """The profile's motion backend, built once per process and device."""
    return MOTION_BACKENDS[profile.motion_backend][0](device, profile)


@cache
def captioner(profile: Profile, device: str = "auto") -> "Captioner":
    """The profile's caption model (loaded on first use), once per process and device."""
    from openvid_assets.models.scorers.captions import Captioner

    return Captioner(profile.captioner, device=device)


@cache
def clarity_scorer(profile: Profile, device: str = "auto") -> "VideoScorer":
    """The profile's clarity backend, built once per process and device."""
    return CLARITY_BACKENDS[profile.clarity_backend][0](device, profile)


def _weights_identity(weights: WeightsFile | None) -> str | None:
    """The digest of a weights file, or None for random-init models; a missing file is named, not an error
    (check_weights stops the run before it starts)."""
    if weights is None:
        return None
    try:
        return file_digest(resolve(weights))
    except MissingWeightsError:
        return f"missing:{weights.filename}"


def model_identities(p: Profile) -> dict[str, list]:
    """What each score's model is (name, weights digest, input settings), without building any model: the
    recipe's section versions, so a changed backend or weights file makes exactly the steps that use it stale."""
    try:
        captioner_digest = None if p.captioner == TINY_CAPTIONER else folder_digest(resolve_model_folder(p.captioner))
    except MissingWeightsError:
        captioner_digest = f"missing:{p.captioner}"
    return {
        "clip": [p.clip.name, _weights_identity(p.clip.weights), {"exact_inputs": p.exact_inputs}],
        "aesthetic": [p.clip.name, _weights_identity(p.clip.weights), _weights_identity(p.aesthetic_weights)],
        "motion": [
            p.motion_backend,
            _weights_identity(MOTION_BACKENDS[p.motion_backend][1]),
            {"definition": p.motion_definition, "exact_inputs": p.exact_inputs, "fp32": p.fp32_networks},
        ],
        "clarity": [
            p.clarity_backend,
            _weights_identity(CLARITY_BACKENDS[p.clarity_backend][1]),
            {"fp32": p.fp32_networks},
        ],
        "captioner": [p.captioner, captioner_digest],
        "nsfw": [_weights_identity(p.nsfw_weights)],
    }
