"""Resources: where data lives (a local folder or S3) and how to reach S3."""


import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, ResourceDependency
from dagster_aws.s3 import S3Resource
from pydantic import Field, model_validator

from openvid_assets import settings
from openvid_assets.models.aesthetic import AestheticScorer
from openvid_assets.models.backends import VideoScorer
from openvid_assets.models.clip import ClipEmbedder
from openvid_assets.media.clips import CLIP_MODES, ClipSettings
from openvid_assets.media.scenes import ClipRules, CutDetection
from openvid_assets.models.captions import DEFAULT_PROMPT, CaptionSettings, Captioner
from openvid_assets.models.profiles import Profile, captioner, clarity_scorer, get_profile, motion_scorer
from openvid_assets.models.scoring import ClipSampling
from openvid_assets.mvdit.data import RUN_DEFAULTS, LatentSettings
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
    caption_model: str = Field(default="", description="Override the profile's caption model: a Hugging Face repo "
                               "id or local folder of any image-text-to-text model (e.g. a Qwen2-VL).")

    def get_profile(self) -> Profile:
        return get_profile(self.profile).with_backends(self.motion_backend or None, self.clarity_backend or None,
                                                       self.caption_model or None)  # fmt: skip

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

    def captioner(self) -> Captioner:
        return captioner(self.get_profile(), self.device)


class ClipsConfig(ConfigurableResource):
    """How videos are split into single-scene clips (see media/scenes.py for the detectors)."""

    min_clip_s: float = Field(default=ClipRules.min_clip_s, gt=0, description="Shorter scenes give no clip.")
    max_clip_s: float = Field(default=ClipRules.max_clip_s, description="Longer scenes are split into equal pieces.")
    trim_frames: int = Field(default=ClipRules.trim_frames, ge=0, description="Frames dropped beside each cut.")
    mode: str = Field(default="reencode", description="reencode (frame-accurate), copy (keyframe-snapped stream "
                      "copy) or none (time ranges only, no files).")
    crf: int = Field(default=18, description="x264 quality of re-encoded clips.")
    preset: str = Field(default="veryfast", description="x264 preset of re-encoded clips.")
    content_threshold: float = Field(default=CutDetection.content_threshold, description="Hard-cut detector.")
    slow_threshold: float = Field(default=CutDetection.slow_threshold, description="Subsampled (slow) detector.")
    fade_threshold: float = Field(default=CutDetection.fade_threshold, description="Fade detector (black level).")

    @model_validator(mode="after")
    def _valid(self) -> "ClipsConfig":
        if self.mode not in CLIP_MODES:
            raise ValueError(f"clips mode must be one of {CLIP_MODES}, got {self.mode!r}")
        self.settings()
        return self

    def settings(self) -> ClipSettings:
        detection = CutDetection(content_threshold=self.content_threshold, slow_threshold=self.slow_threshold,
                                 fade_threshold=self.fade_threshold)  # fmt: skip
        rules = ClipRules(min_clip_s=self.min_clip_s, max_clip_s=self.max_clip_s, trim_frames=self.trim_frames)
        return ClipSettings(detection=detection, rules=rules, mode=self.mode, crf=self.crf, preset=self.preset)


class CaptionsConfig(ConfigurableResource):
    """What the caption model is shown and asked, and how it generates (greedy)."""

    prompt: str = Field(default=DEFAULT_PROMPT, description="The instruction given with the frames.")
    layout: str = Field(default="middle", description="middle (one frame), frames (several images) or grid "
                        "(several frames tiled into one image).")
    num_frames: int = Field(default=4, ge=1, description="Frames for the 'frames' and 'grid' layouts.")
    max_new_tokens: int = Field(default=256, ge=1)
    min_new_tokens: int = Field(default=0, ge=0)
    batch_size: int = Field(default=4, ge=1, description="Clips per generate() call.")
    structured: bool = Field(default=False, description="Also ask for MiraData-style fields (JSON per clip).")

    @model_validator(mode="after")
    def _valid(self) -> "CaptionsConfig":
        self.settings()
        return self

    def settings(self) -> CaptionSettings:
        return CaptionSettings(prompt=self.prompt, layout=self.layout, num_frames=self.num_frames,
                               max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                               batch_size=self.batch_size, structured=self.structured)  # fmt: skip


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


@dataclass(frozen=True)
class RunShape:
    """A training run's settings with the profile's defaults filled in."""

    preset: str
    resolution: int
    frames: int
    interval: int
    steps: int
    batch_size: int
    lr: float
    checkpoint_every: int
    vae: str
    text_encoder: str
    dataset: str

    @property
    def name(self) -> str:
        return f"mvdit-{self.preset.replace('/', '')}-{self.resolution}px-{self.frames}f-{self.dataset}"

    def latents(self) -> LatentSettings:
        return LatentSettings(frames=self.frames, interval=self.interval, resolution=self.resolution)


class MVDiTResource(ConfigurableResource):
    """How MVDiT is trained and sampled; 0 or empty means the model profile's default
    (``paper``: XL/2, 16x256x256, sd-vae-ft-ema + T5-XXL; ``offline``: tiny, 4x32x32, random encoders)."""

    profile: str = Field(default="paper", description="Model profile whose defaults fill the blanks.")
    preset: str = Field(default="", description="XL/2 or tiny.")
    resolution: int = Field(default=0, ge=0, description="Training resolution (square crops), px.")
    frames: int = Field(default=0, ge=0, description="Frames per sample.")
    interval: int = Field(default=3, ge=1, description="Take every n-th frame of a clip.")
    steps: int = Field(default=0, ge=0, description="Train until this global step (resumes from the last checkpoint).")
    batch_size: int = Field(default=0, ge=0, description="Clips per step (per GPU).")
    lr: float = Field(default=0.0, ge=0, description="Adam learning rate (paper: 2e-5).")
    checkpoint_every: int = Field(default=0, ge=0, description="Save a checkpoint every n steps.")
    dataset: str = Field(default="full", description="full (openvid.parquet) or hd (openvid_hd.parquet).")
    vae: str = Field(default="", description="VAE repo id or folder (default stabilityai/sd-vae-ft-ema).")
    text_encoder: str = Field(default="", description="T5 repo id or folder (default DeepFloyd/t5-v1_1-xxl).")
    checkpoint_dir: str = Field(default="", description="Local folder for checkpoints (default <data root>/checkpoints/"
                                "<run name>; required when the data root is on S3).")
    init_from: str = Field(default="", description="Start from a released MVDiT or a PixArt-α checkpoint file.")
    grad_checkpointing: bool = Field(default=False, description="Recompute blocks in backward to save memory.")
    processes: int = Field(default=0, ge=0, description="Training processes (DDP under torchrun); 0: one per GPU "
                           "when there are several, else one, in the asset's own process.")
    device: str = Field(default="auto", description="auto, cpu, cuda, ...")
    prompts: list[str] = Field(default=[], description="Prompts to sample (default: four captions of the dataset).")
    sample_steps: int = Field(default=100, ge=1, description="Sampling steps (respaced IDDPM).")
    cfg_scale: float = Field(default=7.0, description="Classifier-free guidance scale.")

    def shape(self) -> RunShape:
        if self.dataset not in ("full", "hd"):
            raise ValueError(f"dataset must be full or hd, got {self.dataset!r}")
        d = RUN_DEFAULTS[self.profile]
        return RunShape(preset=self.preset or d["preset"], resolution=self.resolution or d["resolution"],
                        frames=self.frames or d["frames"], interval=self.interval, steps=self.steps or d["steps"],
                        batch_size=self.batch_size or d["batch_size"], lr=self.lr or d["lr"],
                        checkpoint_every=self.checkpoint_every or d["checkpoint_every"], vae=self.vae or d["vae"],
                        text_encoder=self.text_encoder or d["text_encoder"], dataset=self.dataset)  # fmt: skip

    def process_count(self) -> int:
        if self.processes:
            return self.processes
        import torch

        gpus = torch.cuda.device_count() if self.device in ("auto", "cuda") else 0
        return gpus if gpus > 1 else 1

    def checkpoints(self, tables: TableStore) -> Path:
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir).expanduser()
        local = tables.fs.local_path(f"checkpoints/{self.shape().name}")
        if local is None:
            raise ValueError("the data root is on S3: set the mvdit resource's checkpoint_dir to a local folder")
        return Path(local)


def rules_from_env() -> dict[str, str]:
    """``OPENVID_RULES="aesthetic=min:4.5,clarity=top:50"`` overrides the default rules."""
    text = os.environ.get("OPENVID_RULES", "").strip()
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"OPENVID_RULES must look like 'aesthetic=top:20,motion=band:10:95', got {text!r}")
    return {name.strip(): rule.strip() for name, rule in pairs}


def default_resources(data_root: str | None = None, models: str | None = None,
                      rules: dict[str, str] | None = None, thresholds_off: bool | None = None,
                      mvdit: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    # S3Resource with no endpoint lets boto3 read AWS_ENDPOINT_URL and credentials from the env.
    s3 = S3Resource()
    return {
        "s3": s3,
        "store": OpenVidStore(data_root=data_root or settings.data_root(), s3=s3),
        "models": ModelsResource(
            profile=models or os.environ.get("OPENVID_MODELS") or "paper",
            motion_backend=os.environ.get("OPENVID_MOTION_BACKEND", ""),
            clarity_backend=os.environ.get("OPENVID_CLARITY_BACKEND", ""),
            caption_model=os.environ.get("OPENVID_CAPTION_MODEL", ""),
        ),
        "clipping": ClipsConfig(mode=os.environ.get("OPENVID_CLIP_MODE", "reencode")),
        "mvdit": MVDiTResource(profile=models or os.environ.get("OPENVID_MODELS") or "paper", **(mvdit or {})),
        "captioning": CaptionsConfig(),
        "selection": SelectionRules(
            **{**rules_from_env(), **(rules or {})},
            thresholds_off=thresholds_switched_off() if thresholds_off is None else thresholds_off,
        ),
    }
