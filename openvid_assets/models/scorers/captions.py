"""Clip captions from a vision-language model through Hugging Face transformers.

The paper captions with LLaVA-v1.6-34b (``llava-hf/llava-v1.6-34b-hf``, a
``LlavaNextForConditionalGeneration``); any ``AutoModelForImageTextToText``
checkpoint with a chat template works the same way (a Qwen2-VL or SmolVLM2 for
cheaper runs). The ``offline`` profile builds a tiny randomly-initialised
LLaVA-NeXT, with a word-level tokenizer made on the spot, so the whole path
(chat template, image tokens, batched generation, cleaning) runs with no
download; its captions are word salad, only plumbing.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import torch

from openvid_assets.media.frames import part_centres
from openvid_assets.models.registry.runtime import pick_device, pick_dtype, seeded
from openvid_assets.models.registry.weights import folder_digest, resolve_model_folder

from openvid_assets.models.registry.catalog import PAPER_CAPTIONER, TINY_CAPTIONER  # noqa: E402,F401 - re-exported

DEFAULT_PROMPT = (
    "Describe this video clip in detail in a few sentences, as a caption for training a text-to-video model: "
    "the main subjects and what they are doing, the setting and background, the camera angle and movement, "
    "and the lighting, colours and visual style. Be vivid and specific. Start directly with the subject."
)
STRUCTURED_FIELDS = ("main_object", "background", "camera_movement", "style", "dense_summary")
STRUCTURED_PROMPT = (
    "Describe this video clip as a JSON object with exactly these keys: "
    '"main_object" (the main subjects and their actions), "background" (the setting), '
    '"camera_movement" (how the camera moves), "style" (lighting, colours, visual style) and '
    '"dense_summary" (a detailed description in a few sentences). Answer with the JSON object only.'
)

FrameLayout = Literal["middle", "frames", "grid"]


@dataclass(frozen=True)
class CaptionSettings:
    prompt: str = DEFAULT_PROMPT
    layout: FrameLayout = "middle"  # one middle frame; several frames as images; or several tiled into one
    num_frames: int = 4  # for 'frames' and 'grid'
    frame_short_side: int = 672  # LLaVA-NeXT's largest tile grid is 672 px; frames are never upscaled
    max_new_tokens: int = 256
    min_new_tokens: int = 0
    batch_size: int = 4
    structured: bool = False  # MiraData-style fields as one JSON object per clip
    defect_tags: bool = False  # a second, short answer per clip: defect flags and content type (caption_checks)

    def __post_init__(self) -> None:
        if self.layout not in ("middle", "frames", "grid"):
            raise ValueError(f"caption layout must be middle, frames or grid; got {self.layout!r}")
        if self.num_frames < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("num_frames, batch_size and max_new_tokens must be positive")

    @property
    def effective_prompt(self) -> str:
        return STRUCTURED_PROMPT if self.structured else self.prompt

    def params(self) -> dict[str, Any]:
        """What a cached caption must match (batch size does not change greedy output's meaning)."""
        p = asdict(self)
        p.pop("batch_size")
        p["prompt"] = self.effective_prompt
        if not self.defect_tags:
            p.pop("defect_tags")  # rows cached before defect tags existed stay valid
        return p


def frame_indices(start: int, end: int, settings: CaptionSettings) -> list[int]:
    """Frames of the clip ``start..end`` (inclusive) that the model sees."""
    if settings.layout == "middle":
        return [(start + end) // 2]
    count = min(settings.num_frames, end - start + 1)
    return sorted({start + k for k in part_centres(end - start + 1, count)})


def grid_image(frames: np.ndarray) -> np.ndarray:
    """Tile frames (N, H, W, 3) row-major into one near-square image."""
    n, h, w, c = frames.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.zeros((rows * h, cols * w, c), frames.dtype)
    for k, frame in enumerate(frames):
        r, q = divmod(k, cols)
        canvas[r * h : (r + 1) * h, q * w : (q + 1) * w] = frame
    return canvas


# --------------------------------------------------------------------------- cleaning

_LEAD_IN = re.compile(
    r"^\s*(?:(?:in\s+)?(?:this|the)\s+(?:video|clip|footage|image|frame|scene)s?\s*"
    r"(?:,\s*|(?:shows|depicts|features|captures|presents|showcases|displays|is showing)\s*(?:that\s+)?[:,]?\s*))+"
    r"(?:(?:we|you)\s+(?:can\s+)?see\s+)?",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean_caption(text: str, truncated: bool) -> str:
    """Tidy a generation: no "The video shows" lead-in, no cut-off last sentence, one line."""
    text = " ".join(text.replace("\u200b", " ").split())
    text = _LEAD_IN.sub("", text).strip(" :,;-")
    if truncated or not _SENTENCE_END.search(text[-1:] or " "):
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends:
            text = text[: ends[-1]]  # keep whole sentences only
        elif text:
            text = text.rstrip(" ,;:-") + "."  # a single unfinished sentence is all there is: keep it
    return text[:1].upper() + text[1:]


def parse_structured(text: str) -> dict[str, str] | None:
    """The JSON object in a structured answer (tolerating code fences and chatter), or None."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    fields = {k: " ".join(str(value.get(k, "")).split()) for k in STRUCTURED_FIELDS}
    return fields if any(fields.values()) else None


# --------------------------------------------------------------------------- camera motion

CAMERA_MOTIONS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")


def camera_motion(
    flow_dx: float | None,
    flow_dy: float | None,
    flow_div: float | None,
    *,
    static_px: float = 0.3,
    zoom_div: float = 0.004,
    half_width_px: float = 160.0,
) -> str | None:
    """The dominant global motion from the motion step's mean flow (px/frame) and divergence.

    Image content moving left means the camera pans right; content spreading
    out (positive divergence) means zooming in. Divergence is compared with the
    translation as the displacement it causes at the frame's edge.
    """
    if flow_dx is None or flow_dy is None or flow_div is None:
        return None
    zoom_px = abs(flow_div) * half_width_px
    if max(abs(flow_dx), abs(flow_dy)) < static_px and abs(flow_div) < zoom_div:
        return "static"
    if abs(flow_div) >= zoom_div and zoom_px >= max(abs(flow_dx), abs(flow_dy)):
        return "zoom_in" if flow_div > 0 else "zoom_out"
    if abs(flow_dx) >= abs(flow_dy):
        return "pan_right" if flow_dx < 0 else "pan_left"
    return "tilt_down" if flow_dy < 0 else "tilt_up"


# --------------------------------------------------------------------------- the model

# A word list for the offline tokenizer: enough caption vocabulary that random output reads as words.
_TINY_WORDS = (
    "a an the this that man woman person people child dog cat bird horse car bus boat train street road city "
    "building house room kitchen forest tree trees field grass flowers mountain river lake sea beach waves sky "
    "clouds sun sunset night light shadow water snow rain wind walks runs sits stands drives flies swims looks "
    "holds smiles talks plays dances jumps turns moves slowly quickly gently camera pans tilts zooms tracks "
    "follows static close-up wide shot aerial view red orange yellow green blue purple white black grey golden "
    "bright dark warm cold soft vivid colourful calm busy quiet in on at of with and while near under over "
    "through across behind front background foreground scene style cinematic natural realistic is are "
    "its their his her"
).split()
_TINY_SPECIALS = ("<unk>", "<s>", "</s>", "<pad>", "<image>", "<|im_start|>", "<|im_end|>")
_CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_IMAGE_GRID = [[32, 32], [32, 64], [64, 32], [64, 64]]


def tiny_tokenizer():
    """A word-level tokenizer over ``_TINY_WORDS``, built offline, for the tiny random vision-language models."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*_TINY_SPECIALS, *_TINY_WORDS, ".", ","])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, tidies punctuation
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "<|im_start|>", "<|im_end|>"]})
    return tokenizer


def tiny_llava_next(seed: int = 0):
    """(model, processor): a LLaVA-NeXT with a 2-layer CLIP tower and a 2-layer Llama, random weights."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tokenizer = tiny_tokenizer()
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=TINY_IMAGE_GRID,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    with seeded(seed):
        model = LlavaNextForConditionalGeneration(config)
    # Random weights may emit end-of-text first; never let them, so every offline clip gets a caption.
    model.generation_config.suppress_tokens = [tokenizer.eos_token_id]
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=TINY_IMAGE_GRID
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=_CHATML_TEMPLATE,
        num_additional_image_tokens=1,
    )  # CLIP's CLS token, dropped by 'default'
    return model, processor


@dataclass
class Generation:
    text: str
    truncated: bool  # stopped by max_new_tokens, not by the model


@dataclass
class Captioner:
    """A vision-language model and its processor, on one device."""

    checkpoint: str  # a Hub repo id or local folder, or TINY_CAPTIONER
    device: str = "auto"
    seed: int = 0
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.checkpoint

    @cached_property
    def folder(self):
        return None if self.checkpoint == TINY_CAPTIONER else resolve_model_folder(self.checkpoint)

    @cached_property
    def weights_digest(self) -> str:
        return f"random-seed{self.seed}" if self.folder is None else folder_digest(self.folder)

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            device = pick_device(self.device)
            if self.folder is None:
                model, processor = tiny_llava_next(self.seed)
            else:
                from transformers import AutoModelForImageTextToText, AutoProcessor

                processor = AutoProcessor.from_pretrained(self.folder)
                model = AutoModelForImageTextToText.from_pretrained(self.folder, dtype=pick_dtype(device))
            tokenizer = getattr(processor, "tokenizer", processor)
            tokenizer.padding_side = "left"  # decoder-only batches generate from the right edge
            self._loaded = (model.to(device).eval(), processor)
        return self._loaded

    def messages(self, prompt: str, images: int) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": [*({"type": "image"} for _ in range(images)), {"type": "text", "text": prompt}]}
        ]

    @torch.inference_mode()
    def generate(
        self,
        batch: list[list[np.ndarray]],
        settings: CaptionSettings,
        prompt: str | None = None,
        max_new_tokens: int | None = None,
    ) -> list[Generation]:
        """Greedy answers for a batch (each item: the RGB images one clip shows the model) to the caption prompt,
        or to ``prompt`` with at most ``max_new_tokens`` (the defect question)."""
        from PIL import Image

        model, processor = self.load()
        prompt = prompt or settings.effective_prompt
        max_new_tokens = max_new_tokens or settings.max_new_tokens
        texts = [
            processor.apply_chat_template(self.messages(prompt, len(images)), add_generation_prompt=True)
            for images in batch
        ]
        images = [Image.fromarray(image) for item in batch for image in item]
        inputs = processor(images=images, text=texts, return_tensors="pt", padding=True)
        device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        out = model.generate(
            **inputs,
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min(settings.min_new_tokens, max_new_tokens),
        )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        results = []
        for row in new_tokens.tolist():
            finished = any(t in eos_ids for t in row)
            text = processor.batch_decode([row], skip_special_tokens=True)[0]
            results.append(Generation(text, truncated=not finished and len(row) >= max_new_tokens))
        return results
