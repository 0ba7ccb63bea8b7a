"""BLIP-2 frame captions for BLIP-BLEU (EvalCrafter's; the OpenVid-1M paper's Table 3). Which frames are captioned
and how the captions are scored against the prompt: ``mvdit/evaluate.py`` and ``mvdit/metrics/evalcrafter.py``.

The checkpoint is EvalCrafter's, ``Salesforce/blip2-opt-2.7b``, run as its code runs it: ``generate()`` with its
defaults (greedy, at most 20 new tokens); the offline profile uses a tiny random BLIP-2 with the captioner's
word-level tokenizer, whose captions are word salad (plumbing only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from openvid_assets.models.registry.catalog import PAPER_BLIP2
from openvid_assets.models.scorers.captions import tiny_tokenizer
from openvid_assets.models.registry.runtime import pick_device, pick_dtype, seeded
from openvid_assets.models.registry.weights import resolve_model_folder

TINY_BLIP2 = "tiny"
# transformers 4.33 (EvalCrafter's): the OPT config's max_length 20, counted over new tokens (inputs_embeds only)
MAX_NEW_TOKENS = 20


def tiny_blip2(seed: int = 0):
    """(model, processor): a BLIP-2 with a 2-layer ViT, a 2-layer Q-Former with 4 queries and a 2-layer OPT,
    random weights made the same by ``seed``."""
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
        OPTConfig,
    )

    tokenizer = tiny_tokenizer()
    config = Blip2Config(
        vision_config=Blip2VisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            initializer_range=0.02,
        ).to_dict(),
        qformer_config=Blip2QFormerConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            cross_attention_frequency=1,
            encoder_hidden_size=32,
        ).to_dict(),
        text_config=OPTConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            word_embed_proj_dim=64,
            ffn_dim=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ).to_dict(),
        num_query_tokens=4,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    with seeded(seed):
        model = Blip2ForConditionalGeneration(config)
    # Random weights may emit end-of-text first; never let them, so every frame gets a caption.
    model.generation_config.suppress_tokens = [tokenizer.eos_token_id]
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    return model, Blip2Processor(image_processor, tokenizer, num_query_tokens=config.num_query_tokens)


@dataclass
class FrameCaptioner:
    """BLIP-2 captions of single frames, on one device."""

    checkpoint: str = PAPER_BLIP2  # a Hub repo id or local folder (resolve_model_folder), or TINY_BLIP2
    device: str = "auto"
    seed: int = 0  # the tiny model's weights
    max_new_tokens: int = MAX_NEW_TOKENS
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            device = pick_device(self.device)
            if self.checkpoint == TINY_BLIP2:
                model, processor = tiny_blip2(self.seed)
            else:
                from transformers import Blip2ForConditionalGeneration, Blip2Processor

                folder = resolve_model_folder(self.checkpoint)
                processor = Blip2Processor.from_pretrained(folder)
                model = Blip2ForConditionalGeneration.from_pretrained(folder, dtype=pick_dtype(device))
            self._loaded = (model.to(device).eval(), processor)
        return self._loaded

    @torch.inference_mode()
    def captions(self, frames: list[np.ndarray]) -> list[str]:
        """One greedy caption per RGB uint8 frame, all frames in one batch."""
        from PIL import Image

        model, processor = self.load()
        pixels = processor(images=[Image.fromarray(f) for f in frames], return_tensors="pt")["pixel_values"]
        weight = next(model.parameters())
        # No text: generate() starts from the image tokens and BOS, BLIP-2's plain captioning.
        out = model.generate(
            pixel_values=pixels.to(weight.device, weight.dtype),
            do_sample=False,
            num_beams=1,
            max_new_tokens=self.max_new_tokens,
        )
        return [text.strip() for text in processor.batch_decode(out, skip_special_tokens=True)]
