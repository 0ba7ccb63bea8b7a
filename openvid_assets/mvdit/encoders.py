"""The frozen encoders MVDiT works on: an image VAE applied frame by frame (``stabilityai/sd-vae-ft-ema`` through
diffusers' AutoencoderKL, latents scaled by 0.18215) and the T5-v1.1-XXL encoder (transformers, 120 tokens).

The real weights load from local folders given by the caller (nothing is downloaded here). ``tiny_vae`` and
``tiny_t5`` build small randomly initialised models of the same classes for offline use and tests; without
tokenizer files, captions go through ``HashTokenizer``.
"""

import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

LATENT_SCALE = 0.18215  # sd-vae-ft-ema latents have roughly unit variance after this scale
T5_MAX_LENGTH = 120

Tokenize = Callable[[Sequence[str], int], tuple[torch.Tensor, torch.Tensor]]  # -> input ids, attention mask


class FrameVAE:
    """An image AutoencoderKL applied to every frame of a video independently."""

    def __init__(self, vae, micro_batch: int = 8, scale: float = LATENT_SCALE):
        self.vae = vae.eval().requires_grad_(False)
        self.micro_batch = micro_batch  # frames per VAE call, to bound memory on long or large videos
        self.scale = scale

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    def _per_frame(self, videos: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """[B, C, T, H, W] -> fn over chunks of [frames, C, H, W] -> [B, C', T, H', W']."""
        b, c, t, h, w = videos.shape
        frames = videos.transpose(1, 2).reshape(b * t, c, h, w)
        out = torch.cat([fn(chunk) for chunk in frames.split(self.micro_batch)])
        return out.view(b, t, *out.shape[1:]).transpose(1, 2)

    @torch.no_grad()
    def encode(
        self, videos: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Frames in [-1, 1], [B, 3, T, H, W] -> scaled latents [B, 4, T, H/8, W/8]; ``sample`` draws from the
        posterior as the release's training does, else takes its mode."""
        param = next(self.vae.parameters())

        def encode_frames(frames: torch.Tensor) -> torch.Tensor:
            posterior = self.vae.encode(frames.to(param.device, param.dtype)).latent_dist
            return (posterior.sample(generator) if sample else posterior.mode()) * self.scale

        return self._per_frame(videos, encode_frames).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents [B, 4, T, h, w] -> frames [B, 3, T, 8h, 8w] in about [-1, 1]."""
        param = next(self.vae.parameters())
        decode = lambda z: self.vae.decode(z.to(param.device, param.dtype) / self.scale).sample  # noqa: E731
        return self._per_frame(latents, decode).float()


def load_vae(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> FrameVAE:
    """sd-vae-ft-ema (or any AutoencoderKL) from a local diffusers folder."""
    from diffusers import AutoencoderKL

    return FrameVAE(AutoencoderKL.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype).to(device))


def tiny_vae(seed: int = 0) -> FrameVAE:
    """A random two-level AutoencoderKL (downsampling 2, 4 latent channels): the real interface, offline and fast."""
    from diffusers import AutoencoderKL

    from openvid_assets.models.registry.runtime import seeded

    with seeded(seed):
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            block_out_channels=(8, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            sample_size=32,
        )
    return FrameVAE(vae)


class HashTokenizer:
    """Offline stand-in for the T5 tokenizer: lowercase words and punctuation, each hashed (crc32, stable across
    runs and machines) to an id in [2, vocab_size); 0 pads and 1 ends the caption, as in T5's vocabulary."""

    pad_id, eos_id = 0, 1

    def __init__(self, vocab_size: int):
        if vocab_size < 3:
            raise ValueError("vocab_size must leave room for pad, eos and at least one word")
        self.vocab_size = vocab_size

    def ids(self, text: str) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]", text.lower())
        return [2 + zlib.crc32(word.encode()) % (self.vocab_size - 2) for word in words]

    def __call__(self, prompts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((len(prompts), max_length), self.pad_id, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            tokens = (self.ids(prompt)[: max_length - 1] + [self.eos_id])[:max_length]  # truncated, always ended
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return ids, (ids != self.pad_id).long()


def huggingface_tokenize(tokenizer) -> Tokenize:
    def tokenize(prompts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenizer(
            list(prompts),
            max_length=max_length,
            padding="max_length",
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        return batch["input_ids"], batch["attention_mask"]

    return tokenize


class TextEncoder:
    """Captions -> T5 encoder features padded to ``max_length`` tokens, with their attention mask."""

    def __init__(self, model, tokenize: Tokenize, max_length: int = T5_MAX_LENGTH):
        self.model = model.eval().requires_grad_(False)
        self.tokenize = tokenize
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return self.model.config.d_model

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> features [B, max_length, dim] float32 and mask [B, max_length] bool (True for real tokens)."""
        ids, mask = self.tokenize(prompts, self.max_length)
        device = next(self.model.parameters()).device
        features = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        return features.float(), mask.bool().to(device)


TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json")


def load_t5(
    path: str | Path,
    max_length: int = T5_MAX_LENGTH,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> TextEncoder:
    """T5EncoderModel (e.g. t5-v1_1-xxl) from a local folder; its tokenizer from the same folder, or the hashing
    stand-in when the folder has no tokenizer files (then captions are not what the real model was trained on)."""
    from transformers import AutoTokenizer, T5EncoderModel

    path = Path(path)
    model = T5EncoderModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype).to(device)
    if any((path / name).exists() for name in TOKENIZER_FILES):
        tokenize = huggingface_tokenize(AutoTokenizer.from_pretrained(str(path), local_files_only=True))
    else:
        tokenize = HashTokenizer(model.config.vocab_size)
    return TextEncoder(model, tokenize, max_length)


def tiny_t5(max_length: int = 8, dim: int = 32, vocab_size: int = 512, seed: int = 0) -> TextEncoder:
    """A random one-layer T5 encoder with the hashing tokenizer: offline captions of shape [B, max_length, dim]."""
    from transformers import T5Config, T5EncoderModel

    from openvid_assets.models.registry.runtime import seeded

    # gated-gelu feed-forwards, as in T5 v1.1
    config = T5Config(
        vocab_size=vocab_size,
        d_model=dim,
        d_kv=8,
        num_heads=4,
        num_layers=1,
        d_ff=2 * dim,
        feed_forward_proj="gated-gelu",
    )
    with seeded(seed):
        model = T5EncoderModel(config)
    return TextEncoder(model, HashTokenizer(vocab_size), max_length)
