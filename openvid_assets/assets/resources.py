"""Resources: where data lives (a local folder or S3, with its recipe) and how this machine runs models.

Model modules (torch, open_clip, transformers) are imported only when a step builds a model, so the CLI,
sensors and run workers start quickly.
"""

import os
import sys
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from openvid_assets import settings
from openvid_assets.models.profiles import Profile, captioner, clarity_scorer, motion_scorer
from openvid_assets.recipe import ModelSettings, RecipeStore, StoredRecipe
from openvid_assets.store import TableStore
from openvid_assets.store.files import is_s3_uri

if TYPE_CHECKING:
    from openvid_assets.models.scorers.clip import CLIPTextEncoder
    from openvid_assets.media.scenes import ShotDetector
    from openvid_assets.mvdit.data import LatentSettings
    from openvid_assets.models.scorers.aesthetic import AestheticScorer
    from openvid_assets.models.scorers.base import VideoScorer
    from openvid_assets.models.scorers.captions import Captioner
    from openvid_assets.models.scorers.clip import CLIPEmbedder
    from openvid_assets.models.scorers.content import FrameInspector
    from openvid_assets.models.scorers.nsfw import NSFWScorer


class OpenVidStore(ConfigurableResource):
    """The data root: every shard table, clip and export is written under it, and the recipe is read from it."""

    data_root: str = Field(default=settings.DEFAULT_DATA_ROOT, description="Folder or s3://bucket/prefix.")
    s3: ResourceDependency[S3Resource]
    _run_recipe: Any = PrivateAttr(default=None)
    _s3_client: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Every run opens the store: record the worker process, so a run whose worker died (kill -9,
        # power loss) can be told from a live one and marked failed (assets/engine.py reap_dead_runs).
        self._run_recipe = self.recipes().current_or_default()  # one version for the whole run, read once
        if context.instance is not None and context.run_id:
            import socket

            context.instance.add_run_tags(
                context.run_id, {"openvid/worker_pid": str(os.getpid()), "openvid/worker_host": socket.gethostname()}
            )

    def s3_client(self) -> Any:
        # One client a process: building one costs ~0.2 s (botocore loads its service JSON), once a shard and
        # step that was most of a small shard's time.
        if self._s3_client is None:
            self._s3_client = self.s3.get_client()
        return self._s3_client

    def s3_client_for(self, root: str) -> Any:
        """The S3 client when ``root`` is on S3; None for a local source, which needs none."""
        return self.s3_client() if is_s3_uri(root) else None

    def tables(self) -> TableStore:
        return TableStore(self.data_root, s3_client_factory=self.s3_client)

    def recipes(self) -> RecipeStore:
        return RecipeStore(self.tables().fs)

    def recipe(self) -> StoredRecipe:
        """The current recipe of the data root (the defaults, version 0, before one is stored); inside a run, the
        version the run started with."""
        return self._run_recipe or self.recipes().current_or_default()


@cache
def _embedder(profile: Profile, device: str, batch_size: int) -> "CLIPEmbedder":
    from openvid_assets.models.scorers.clip import CLIPEmbedder

    return CLIPEmbedder(profile.clip, device=device, batch_size=batch_size, exact=profile.exact_inputs)


@cache
def _text_encoder(profile: Profile, device: str) -> "CLIPTextEncoder":
    from openvid_assets.models.scorers.clip import CLIPTextEncoder

    return CLIPTextEncoder(profile.clip, device=device)


@cache
def _aesthetic(profile: Profile, device: str) -> "AestheticScorer":
    from openvid_assets.models.scorers.aesthetic import AestheticScorer

    return AestheticScorer(profile.aesthetic_weights, device=device)


@cache
def _inspector(device: str) -> "FrameInspector":
    from openvid_assets.models.scorers.content import FrameInspector
    from openvid_assets.models.scorers.text import TextDetector

    return FrameInspector(TextDetector())  # the wheel's PP-OCR detector: same in every profile


@cache
def _nsfw(profile: Profile, device: str, batch_size: int) -> "NSFWScorer":
    from openvid_assets.models.scorers.nsfw import NSFWScorer

    # The checker's concepts only mean something in the pipeline's CLIP space: its tower must be that CLIP.
    # 20 concept cosines a frame need no GPU: content_scores is not a GPU step.
    visual = _embedder(profile, device, batch_size).visual if profile.nsfw_weights else None
    return NSFWScorer(profile.nsfw_weights, device="cpu", clip_visual=visual)


class ModelsResource(ConfigurableResource):
    """How this machine runs the recipe's models: device, batch size, threads. Which models and how frames are
    sampled is the recipe's ``models`` section, passed in by each step (``store.recipe()``), so every run of a
    data root uses the same ones.

    Models load once per process and are shared by every asset that uses them.
    """

    device: str = Field(
        default_factory=settings.device,
        description="'auto' (CUDA if present, else CPU), 'cpu', "
        "'cuda', 'cuda:1'... The run command pins each of its runs to one GPU here.",
    )
    batch_size: int = Field(default=32, gt=0, description="Frames per CLIP forward pass.")
    decode_workers: int = Field(default=2, gt=0, description="Threads decoding ahead of the models.")
    threads: int = Field(
        default=0,
        ge=0,
        description="Compute threads of this run (torch, OpenCV); 0: the "
        "libraries' default (every core). The run command sets cores / workers.",
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.threads:
            import cv2

            cv2.setNumThreads(self.threads)
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(self.threads)
            else:  # torch reads it when first imported: runs that never need torch do not pay its 1-2 s import
                os.environ["OMP_NUM_THREADS"] = str(self.threads)

    def embedder(self, m: ModelSettings) -> "CLIPEmbedder":
        return _embedder(m.resolved_profile(), self.device, self.batch_size)

    def text_encoder(self, m: ModelSettings) -> "CLIPTextEncoder":
        """The text tower of the pipeline's CLIP (the caption checks' caption-clip agreement)."""
        return _text_encoder(m.resolved_profile(), self.device)

    def aesthetic(self, m: ModelSettings) -> "AestheticScorer":
        return _aesthetic(m.resolved_profile(), self.device)

    def motion(self, m: ModelSettings) -> "VideoScorer":
        return motion_scorer(m.resolved_profile(), self.device)

    def clarity(self, m: ModelSettings) -> "VideoScorer":
        return clarity_scorer(m.resolved_profile(), self.device)

    def captioner(self, m: ModelSettings) -> "Captioner":
        return captioner(m.resolved_profile(), self.device)

    def inspector(self) -> "FrameInspector":
        return _inspector(self.device)

    def nsfw(self, m: ModelSettings) -> "NSFWScorer":
        return _nsfw(m.resolved_profile(), self.device, self.batch_size)

    def shots(self) -> "ShotDetector":
        """The cut cascade's learned shot detector (TransNetV2), built per video on this device."""
        from openvid_assets.models.scorers.shots import TransNetV2Shots

        return partial(TransNetV2Shots, device=self.device)


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

    def latents(self) -> "LatentSettings":
        from openvid_assets.mvdit.data import LatentSettings

        return LatentSettings(frames=self.frames, interval=self.interval, resolution=self.resolution)


class MVDiTResource(ConfigurableResource):
    """How MVDiT is trained and sampled; 0 or empty means the default of the recipe's model profile
    (``paper``: XL/2, 16x256x256, sd-vae-ft-ema + T5-XXL; ``offline``: tiny, 4x32x32, random encoders)."""

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
    checkpoint_dir: str = Field(
        default="",
        description="Local folder for checkpoints (default <data root>/checkpoints/"
        "<run name>; required when the data root is on S3).",
    )
    init_from: str = Field(default="", description="Start from a released MVDiT or a PixArt-α checkpoint file.")
    grad_checkpointing: bool = Field(default=False, description="Recompute blocks in backward to save memory.")
    processes: int = Field(
        default=0,
        ge=0,
        description="Training processes (DDP under torchrun); 0: one per GPU "
        "when there are several, else one, in the asset's own process.",
    )
    device: str = Field(default="auto", description="auto, cpu, cuda, ...")
    prompts: list[str] = Field(default=[], description="Prompts to sample and score (default: held-out captions).")
    held_out: int = Field(
        default=4,
        ge=1,
        description="Without prompts: how many curated clips to hold out of "
        "training, whose captions are the evaluation prompts (at most half the dataset).",
    )
    metrics: Literal["evalcrafter", "evalcrafter-corrected"] = Field(
        default="evalcrafter",
        description="How the Table 3 metrics are computed: evalcrafter, as EvalCrafter's code does (the paper's "
        "numbers), or evalcrafter-corrected, with its bugs repaired (docs/EVALUATION.md).",
    )
    sample_steps: int = Field(default=100, ge=1, description="Sampling steps (respaced IDDPM).")
    cfg_scale: float = Field(default=7.0, description="Classifier-free guidance scale.")
    cache_interval: int = Field(
        default=1,
        ge=1,
        description="Attention cache while sampling: attention and "
        "feed-forward outputs computed every N steps and reused between (1: off; 2: the "
        "paper's, about 1.7x faster at 1024 px).",
    )

    def shape(self, profile: str) -> RunShape:
        if self.dataset not in ("full", "hd"):
            raise ValueError(f"dataset must be full or hd, got {self.dataset!r}")
        from openvid_assets.mvdit.data import RUN_DEFAULTS

        d = RUN_DEFAULTS[profile]
        return RunShape(
            preset=self.preset or d["preset"],
            resolution=self.resolution or d["resolution"],
            frames=self.frames or d["frames"],
            interval=self.interval,
            steps=self.steps or d["steps"],
            batch_size=self.batch_size or d["batch_size"],
            lr=self.lr or d["lr"],
            checkpoint_every=self.checkpoint_every or d["checkpoint_every"],
            vae=self.vae or d["vae"],
            text_encoder=self.text_encoder or d["text_encoder"],
            dataset=self.dataset,
        )

    def process_count(self) -> int:
        if self.processes:
            return self.processes
        import torch

        gpus = torch.cuda.device_count() if self.device in ("auto", "cuda") else 0
        return gpus if gpus > 1 else 1

    def checkpoints(self, tables: TableStore, profile: str) -> Path:
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir).expanduser()
        local = tables.fs.local_path(f"checkpoints/{self.shape(profile).name}")
        if local is None:
            raise ValueError("the data root is on S3: set the mvdit resource's checkpoint_dir to a local folder")
        return Path(local)


def default_resources(data_root: str | None = None, mvdit: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resources of every run: where the data root is and how this machine runs models. What the dataset is
    (models, rules, clip and caption settings) comes from the recipe stored under the data root."""
    # S3Resource with no endpoint lets boto3 read AWS_ENDPOINT_URL and credentials from the env.
    s3 = S3Resource()
    store = OpenVidStore(data_root=data_root or settings.data_root(), s3=s3)
    return {"s3": s3, "store": store, "models": ModelsResource(), "mvdit": MVDiTResource(**(mvdit or {}))}
