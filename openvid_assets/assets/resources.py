"""Resources: where data lives (a local folder or S3) and how to reach S3."""


import os
from functools import cache
from typing import Any

from dagster import ConfigurableResource, ResourceDependency
from dagster_aws.s3 import S3Resource
from pydantic import Field, model_validator

from openvid_assets import settings
from openvid_assets.models.aesthetic import AestheticScorer
from openvid_assets.models.backends import VideoScorer
from openvid_assets.models.clip import ClipEmbedder
from openvid_assets.models.profiles import Profile, clarity_scorer, get_profile, motion_scorer
from openvid_assets.models.scoring import ClipSampling
from openvid_assets.store import TableStore
from openvid_assets.store.selection import DEFAULT_RULES, Rule, parse_rules, thresholds_switched_off


class OpenVidStore(ConfigurableResource):
    """The data root: every shard table, clip and export is written under it."""

    data_root: str = settings.DEFAULT_DATA_ROOT
    s3: ResourceDependency[S3Resource]

    def s3_client(self) -> Any:
        return self.s3.get_client()

    def tables(self) -> TableStore:
        return TableStore(self.data_root, s3_client_factory=self.s3_client)


@cache
def _embedder(profile: Profile, device: str, batch_size: int) -> ClipEmbedder:
    return ClipEmbedder(profile.clip, device=device, batch_size=batch_size)


@cache
def _aesthetic(profile: Profile, device: str) -> AestheticScorer:
    return AestheticScorer(profile.aesthetic_weights, device=device)


class ModelsResource(ConfigurableResource):
    """Which models score videos, on which device, and how frames are sampled.

    Models load once per process and are shared by every asset that uses them.
    """

    profile: str = Field(default="paper", description="'paper' (real weights) or 'offline' (tiny random models).")
    device: str = Field(default="auto", description="'auto' (CUDA if present, else CPU), 'cpu', 'cuda', 'cuda:1'...")
    batch_size: int = Field(default=32, gt=0, description="Frames per CLIP forward pass.")
    aesthetic_positions: list[float] = Field(default=[0.1, 0.5, 0.9], description="Aesthetic frames, as fractions.")
    temporal_frames: int = Field(default=8, ge=2, description="Evenly spaced frames for temporal consistency.")
    decode_workers: int = Field(default=2, gt=0, description="Threads decoding ahead of the models.")
    motion_backend: str = Field(default="", description="Override the profile's: unimatch, unimatch-tiny, farneback.")
    clarity_backend: str = Field(default="", description="Override the profile's: dover, dover-tiny, laplacian.")

    def get_profile(self) -> Profile:
        return get_profile(self.profile).with_backends(self.motion_backend or None, self.clarity_backend or None)

    def sampling(self) -> ClipSampling:
        return ClipSampling(tuple(self.aesthetic_positions), self.temporal_frames)

    def embedder(self) -> ClipEmbedder:
        return _embedder(self.get_profile(), self.device, self.batch_size)

    def aesthetic(self) -> AestheticScorer:
        return _aesthetic(self.get_profile(), self.device)

    def motion(self) -> VideoScorer:
        return motion_scorer(self.get_profile(), self.device)

    def clarity(self) -> VideoScorer:
        return clarity_scorer(self.get_profile(), self.device)


class SelectionRules(ConfigurableResource):
    """Which videos each score keeps (see store/selection.py for the rule syntax).

    Rules are validated when the resource is built, so a malformed rule stops
    everything before a run starts.
    """

    aesthetic: str = Field(default=DEFAULT_RULES["aesthetic"], description="Rule for aesthetic_scores.")
    temporal: str = Field(default=DEFAULT_RULES["temporal"], description="Rule for temporal_scores.")
    motion: str = Field(default=DEFAULT_RULES["motion"], description="Rule for motion_scores.")
    clarity: str = Field(default=DEFAULT_RULES["clarity"], description="Rule for clarity_scores (candidates only).")
    thresholds_off: bool = Field(default=False, description="Turn every filter off (OPENVID_THRESHOLDS=off).")

    @model_validator(mode="after")
    def _valid(self) -> "SelectionRules":
        self.rules()
        return self

    def rules(self) -> dict[str, Rule]:
        specs = {"aesthetic": self.aesthetic, "temporal": self.temporal, "motion": self.motion,
                 "clarity": self.clarity}  # fmt: skip
        return parse_rules(specs, all_off=self.thresholds_off)


def rules_from_env() -> dict[str, str]:
    """``OPENVID_RULES="aesthetic=min:4.5,clarity=top:50"`` overrides the default rules."""
    text = os.environ.get("OPENVID_RULES", "").strip()
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"OPENVID_RULES must look like 'aesthetic=top:20,motion=band:10:95', got {text!r}")
    return {name.strip(): rule.strip() for name, rule in pairs}


def default_resources(data_root: str | None = None, models: str | None = None,
                      rules: dict[str, str] | None = None, thresholds_off: bool | None = None) -> dict[str, Any]:
    # S3Resource with no endpoint lets boto3 read AWS_ENDPOINT_URL and credentials from the env.
    s3 = S3Resource()
    return {
        "s3": s3,
        "store": OpenVidStore(data_root=data_root or settings.data_root(), s3=s3),
        "models": ModelsResource(
            profile=models or os.environ.get("OPENVID_MODELS") or "paper",
            motion_backend=os.environ.get("OPENVID_MOTION_BACKEND", ""),
            clarity_backend=os.environ.get("OPENVID_CLARITY_BACKEND", ""),
        ),
        "selection": SelectionRules(
            **{**rules_from_env(), **(rules or {})},
            thresholds_off=thresholds_switched_off() if thresholds_off is None else thresholds_off,
        ),
    }
