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
import polars as pl
import torch

from openvid_assets.media.frames import DecodedFrames, FrameRequest, part_centres, read_frames
from openvid_assets.media.tasks import ClipTask, OpenVideo
from openvid_assets.models.runtime import in_batches_halving_on_oom, pick_device, pick_dtype, seeded
from openvid_assets.models.scoring import Progress, decode_ahead, is_infrastructure_error
from openvid_assets.models.weights import folder_digest, resolve_model_folder
from openvid_assets.store.rows import KEY_COLUMNS, RowKey, ShardRows, reusable_rows

from openvid_assets.models.catalog import PAPER_CAPTIONER, TINY_CAPTIONER  # noqa: E402,F401 - re-exported

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
        canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = frame
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


def camera_motion(flow_dx: float | None, flow_dy: float | None, flow_div: float | None, *,
                  static_px: float = 0.3, zoom_div: float = 0.004, half_width_px: float = 160.0) -> str | None:  # fmt: skip
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
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", padding_side="left")  # fmt: skip
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
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=32, patch_size=8, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), image_grid_pinpoints=TINY_IMAGE_GRID,
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )  # fmt: skip
    with seeded(seed):
        model = LlavaNextForConditionalGeneration(config)
    # Random weights may emit end-of-text first; never let them, so every offline clip gets a caption.
    model.generation_config.suppress_tokens = [tokenizer.eos_token_id]
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                              image_grid_pinpoints=TINY_IMAGE_GRID)  # fmt: skip
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                                   vision_feature_select_strategy="default", chat_template=_CHATML_TEMPLATE,
                                   num_additional_image_tokens=1)  # CLIP's CLS token, dropped by 'default'
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
        return [{"role": "user", "content": [*({"type": "image"} for _ in range(images)),
                                             {"type": "text", "text": prompt}]}]  # fmt: skip

    @torch.inference_mode()
    def generate(self, batch: list[list[np.ndarray]], settings: CaptionSettings) -> list[Generation]:
        """Greedy captions for a batch; each item is the list of RGB images one clip shows the model."""
        from PIL import Image

        model, processor = self.load()
        texts = [processor.apply_chat_template(self.messages(settings.effective_prompt, len(images)),
                                               add_generation_prompt=True) for images in batch]  # fmt: skip
        images = [Image.fromarray(image) for item in batch for image in item]
        inputs = processor(images=images, text=texts, return_tensors="pt", padding=True)
        device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        out = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=settings.max_new_tokens,
                             min_new_tokens=settings.min_new_tokens)  # fmt: skip
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        results = []
        for row in new_tokens.tolist():
            finished = any(t in eos_ids for t in row)
            text = processor.batch_decode([row], skip_special_tokens=True)[0]
            results.append(Generation(text, truncated=not finished and len(row) >= settings.max_new_tokens))
        return results


# --------------------------------------------------------------------------- one shard

CAPTION_SCHEMA: dict[str, Any] = {
    "clip_id": pl.String,
    "video_id": pl.String,
    "status": pl.String,  # ok | failed
    "error": pl.String,
    "caption": pl.String,
    "caption_raw": pl.String,
    "truncated": pl.Boolean,
    "structured": pl.String,  # JSON object of STRUCTURED_FIELDS, when asked for
    "camera_motion": pl.String,
    "frame_indices": pl.List(pl.Int32),
    **KEY_COLUMNS,
}


def caption_key(captioner: Captioner, settings: CaptionSettings) -> RowKey:
    return RowKey(captioner.name, captioner.weights_digest, settings.params())


def _images(decoded: DecodedFrames, settings: CaptionSettings) -> list[np.ndarray]:
    frames = list(decoded.frames)
    return [grid_image(decoded.frames)] if settings.layout == "grid" else frames


def _caption_row(generation: Generation, settings: CaptionSettings) -> dict[str, Any]:
    caption = clean_caption(generation.text, generation.truncated)
    row: dict[str, Any] = {"caption_raw": generation.text, "truncated": generation.truncated}
    if settings.structured:
        fields = parse_structured(generation.text)
        if fields is not None:
            row["structured"] = json.dumps(fields, ensure_ascii=False)
            caption = clean_caption(fields["dense_summary"] or caption, False)
    if not caption:
        return {**row, "status": "failed", "error": "the model returned an empty caption"}
    return {**row, "status": "ok", "caption": caption}


def _generate_rows(captioner: Captioner, items: list[tuple[ClipTask, DecodedFrames]],
                   settings: CaptionSettings) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Caption a batch; if the batch fails, caption one by one so one bad clip fails alone."""
    try:
        # A CUDA out-of-memory batch is split in halves and retried (a long prompt or a big grid image).
        generations = in_batches_halving_on_oom([_images(d, settings) for _, d in items], len(items),
                                                lambda batch: captioner.generate(list(batch), settings))  # fmt: skip
        return {t.clip_id: _caption_row(g, settings) for (t, _), g in zip(items, generations)}
    except Exception as e:
        if is_infrastructure_error(e):
            raise
        if len(items) > 1:
            return {k: v for item in items for k, v in _generate_rows(captioner, [item], settings).items()}
        return {items[0][0].clip_id: {"status": "failed", "error": f"generation failed: {str(e)[:300]}"}}


def caption_shard(tasks: list[ClipTask], captioner: Captioner, settings: CaptionSettings, open_video: OpenVideo, *,
                  camera: dict[str, str | None] | None = None, previous: pl.DataFrame | None = None,
                  progress: Progress | None = None, workers: int = 2) -> ShardRows:  # fmt: skip
    """Caption every clip: frames decode ahead in threads while the model generates in batches."""
    key = caption_key(captioner, settings)
    cached = reusable_rows(previous, key)
    rows: dict[str, dict[str, Any]] = {}
    if cached is not None:
        rows = {r["clip_id"]: r for r in cached.iter_rows(named=True)}
    todo = [t for t in tasks if t.clip_id not in rows]
    def decode(task: ClipTask) -> DecodedFrames:
        video = task.video
        short = settings.frame_short_side if min(video.width, video.height) > settings.frame_short_side else None
        request = FrameRequest(indices=lambda _n: frame_indices(task.start_frame, task.end_frame, settings),
                               short_side=short)  # fmt: skip
        with open_video(video) as path:
            return read_frames(path, request, width=video.width, height=video.height, rotation=video.rotation)

    batch: list[tuple[ClipTask, DecodedFrames]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if batch:
            for clip, row in _generate_rows(captioner, batch, settings).items():
                rows[clip].update(row)
            done += len(batch)
            batch.clear()
            if progress:
                progress(done, len(todo))

    for task, decoded in decode_ahead(todo, decode, workers):
        if isinstance(decoded, Exception):
            rows[task.clip_id] = {"status": "failed", "error": f"could not read the clip's frames: {decoded}"}
            done += 1
        else:
            rows[task.clip_id] = {"frame_indices": decoded.indices}
            batch.append((task, decoded))
            if len(batch) >= settings.batch_size:
                flush()
    flush()
    camera = camera or {}
    out = []
    for task in tasks:
        row = rows[task.clip_id]
        out.append({**row, "clip_id": task.clip_id, "video_id": task.video.video_id, **key.columns(),
                    "camera_motion": camera.get(task.video.video_id)})  # fmt: skip
    table = pl.DataFrame(out, schema=CAPTION_SCHEMA) if out else pl.DataFrame(schema=CAPTION_SCHEMA)
    return ShardRows(table, len(todo), len(tasks) - len(todo))



def given_captions(tasks: list[ClipTask], mode: str, imported: pl.DataFrame | None) -> tuple[dict[str, str], str]:
    """Clips whose caption the recipe gives instead of the model (clip_id -> caption), and their origin: with
    ``mode`` 'keep', the source's ``imported`` captions (every clip of a video that has one); 'off', empty ones."""
    if mode == "off":
        return {t.clip_id: "" for t in tasks}, "none (captions off)"
    if mode != "keep" or imported is None or "caption" not in imported.columns:
        return {}, "imported"
    texts = {u: c for u, c in zip(imported["source_uri"], imported["caption"]) if c and c.strip()}
    return {t.clip_id: texts[t.video.source_uri] for t in tasks if t.video.source_uri in texts}, "imported"


def given_caption_rows(tasks: list[ClipTask], texts: dict[str, str], origin: str,
                       camera: dict[str, str | None] | None = None) -> ShardRows:  # fmt: skip
    """Caption rows for clips whose caption is given, not generated (``texts``: clip_id -> caption): imported
    with the source's metadata (``origin`` 'imported'), or empty where the source skips captions ('none');
    every one counts as reused."""
    key = RowKey(origin, "", {})
    camera = camera or {}
    rows = [{"clip_id": t.clip_id, "video_id": t.video.video_id, "status": "ok", "caption": texts[t.clip_id],
             "caption_raw": texts[t.clip_id], "truncated": False, "camera_motion": camera.get(t.video.video_id),
             **key.columns()} for t in tasks if t.clip_id in texts]  # fmt: skip
    return ShardRows(pl.DataFrame(rows, schema=CAPTION_SCHEMA), 0, len(rows))


def camera_labels(motion: pl.DataFrame | None, manifest: pl.DataFrame) -> dict[str, str | None]:
    """video_id -> camera motion label, from the motion step's mean flow and divergence.

    Motion is measured on portrait videos turned landscape (transposed), so
    their horizontal and vertical flow are swapped back here.
    """
    if motion is None or not {"flow_dx", "flow_dy", "flow_div"} <= set(motion.columns):
        return {}
    portrait = {r["video_id"] for r in manifest.filter(pl.col("height") > pl.col("width")).iter_rows(named=True)}
    labels = {}
    for r in motion.filter(pl.col("status") == "ok").iter_rows(named=True):
        dx, dy = (r["flow_dy"], r["flow_dx"]) if r["video_id"] in portrait else (r["flow_dx"], r["flow_dy"])
        labels[r["video_id"]] = camera_motion(dx, dy, r["flow_div"])
    return labels
