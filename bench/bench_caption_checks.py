"""What the caption checks cost per caption, per shard and per defect answer (CPU, one thread).

Every number comes from this run. Each case is timed ``--repeats`` times over its inputs after one untimed
call (which loads py3langid's model); the median per call is printed.

1. ``text_checks`` on realistic captions (vivid English, 60-100 words, as LLaVA writes them), with the language
   check and without it (``language=None``), to show what language id costs; and on the worst inputs: a
   3000-character n-gram loop, a 1,000,000-character string, text of odd unicode.
2. ``agreement`` on one shard of N clips with 768-dimensional embeddings (ViT-L/14's size), N = 64, 256, 1024.
3. ``parse_defects`` on a well-formed answer in a code fence and on prose.
4. (``--per-clip``) The whole ``caption_checks`` step per clip, as the pipeline runs it (``check_shard``: decode
   the frame the captioner saw, CLIP ViT-L/14 on it, its text tower on the caption, the checks, agreement), with
   the paper's CLIP architecture (random weights: the same cost), against a floor of what captioning a clip
   costs: LLaVA-v1.6-34b's vision tower alone (CLIP ViT-L/14 at 336 px) on the 5 images its anyres layout makes
   of a 672 px frame (a base view and a 2x2 grid of tiles). The language model's prefill of those ~2,900 image
   tokens and its 256 greedy steps through 34B parameters come on top, so the printed ratio is an upper bound
   of checks / captioning.

    .venv/bin/python bench/bench_caption_checks.py
    .venv/bin/python bench/bench_caption_checks.py --quick    # fewer repeats: checks it works
    .venv/bin/python -m bench.bench_caption_checks --per-clip  # part 4 (~2 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os

# One BLAS thread, as in the pipeline's per-shard workers (and unthreaded, a 64x64 product is 0.15 ms, not 20).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics
import time

import numpy as np

from bench._report import machine_facts, markdown
from openvid_assets.models.scorers.caption_checks import (
    DEFECT_TYPES,
    CaptionCheckSettings,
    agreement,
    parse_defects,
    text_checks,
)

CAPTIONS = [
    "A golden retriever bounds across a wide sandy beach at sunset, its wet fur glowing amber in the low light as "
    "it chases a red ball towards the foaming surf. Behind it, gentle waves roll in under a sky streaked with pink "
    "and violet clouds. The camera tracks the dog from a low angle, and the warm, saturated colours give the scene "
    "a nostalgic, cinematic feel.",
    "In a dimly lit jazz club, an elderly saxophonist in a dark suit and fedora plays with his eyes closed. Blue and "
    "purple stage lights cut through a haze of smoke behind him, and the blurred silhouettes of the audience sit at "
    "small round tables in the foreground. The camera slowly pushes in to a close-up of his face, and the deep "
    "shadows and rich jewel tones create an intimate, moody atmosphere.",
    "An aerial drone shot glides over a dense evergreen forest in late autumn, where patches of orange and yellow "
    "birch trees break up the dark green canopy. A narrow river winds through the valley below, and low mist clings "
    "to the distant hills. The camera moves steadily forward and tilts down, revealing a small wooden cabin with "
    "smoke rising from its chimney.",
]
WORST = {
    "3000-char 3-gram loop": ("the waves crash on the rocks " * 110)[:3000],
    "1,000,000-char string": "word " * 200_000,
    "odd unicode (surrogates, ZWJ, RTL)": "\ud800 A cat \u200b\u202e sleeps 🐈‍⬛ on a warm \ufeff sill" * 20,
}


def per_call_us(fn, inputs, repeats: int) -> float:
    for x in inputs[:1]:
        fn(x)  # untimed: loads the language model once
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for x in inputs:
            fn(x)
        times.append((time.perf_counter() - start) / len(inputs) * 1e6)
    return statistics.median(times)


def per_clip(clips: int = 8, repeats: int = 2) -> None:
    """Part 4: the caption_checks step per clip against a floor of the paper captioner's cost per clip."""
    import tempfile
    from contextlib import contextmanager
    from pathlib import Path

    import polars as pl
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from openvid_assets import samples
    from openvid_assets.media.tasks import ClipTask, VideoTask
    from openvid_assets.models.registry.catalog import CLIPSpec
    from openvid_assets.models.scorers.clip import CLIPEmbedder, CLIPTextEncoder
    from openvid_assets.models.shards.caption_checks import CaptionDrops, check_shard
    from openvid_assets.models.shards.tables import CAPTION_SCHEMA

    torch.set_num_threads(1)
    spec = CLIPSpec("ViT-L-14-quickgelu")  # the paper's CLIP, random weights
    embedder, texts = CLIPEmbedder(spec, device="cpu"), CLIPTextEncoder(spec, device="cpu")

    @contextmanager
    def opened(video):
        yield video.source_uri

    with tempfile.TemporaryDirectory() as tmp:
        tasks, rows = {}, []
        for k in range(clips):
            made = samples.smooth_pan(tmp, f"v{k}.mp4", width=1280, height=720, num_frames=48, seed=k)
            video = VideoTask(f"v{k}", str(Path(tmp) / made.name), made.width, made.height, made.fps, num_frames=48)
            tasks[f"c{k}"] = ClipTask(f"c{k}", video, 0, 47)
            caption = CAPTIONS[k % len(CAPTIONS)]
            rows.append(
                {"clip_id": f"c{k}", "video_id": video.video_id, "status": "ok", "caption": caption,
                 "caption_raw": caption, "truncated": False, "frame_indices": [23]}
            )  # fmt: skip
        captions = pl.DataFrame(rows, schema=CAPTION_SCHEMA)

        def checks() -> None:
            check_shard(captions, tasks, embedder, texts, CaptionCheckSettings(), CaptionDrops(), opened)

        checks()  # untimed: loads py3langid, warms the models
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            checks()
            times.append((time.perf_counter() - start) / clips)
        checks_s = statistics.median(times)

    tower = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
            image_size=336, patch_size=14, projection_dim=768,
        )
    ).eval()  # fmt: skip
    images = torch.rand(5, 3, 336, 336)
    with torch.inference_mode():
        tower(pixel_values=images)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tower(pixel_values=images)
            times.append(time.perf_counter() - start)
    floor_s = statistics.median(times)
    print(
        markdown(
            ["per clip (one CPU thread)", "seconds"],
            [
                ["caption_checks step (decode 1 frame of 1280x720, ViT-L/14 image + text, checks)", f"{checks_s:.3f}"],
                ["captioning floor: LLaVA-v1.6's vision tower on 5 anyres images of 336 px", f"{floor_s:.3f}"],
                ["checks / captioning (upper bound)", f"{checks_s / floor_s:.3f}"],
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--per-clip", action="store_true", help="part 4: the step per clip against captioning")
    args = parser.parse_args()
    if args.per_clip:
        per_clip(repeats=1 if args.quick else 3)
        return
    repeats = 5 if args.quick else args.repeats
    for key, value in machine_facts(numpy=np.__version__).items():
        print(f"{key}: {value}")

    plain = CaptionCheckSettings(language=None)
    rows = [
        ["text_checks, realistic caption", f"{per_call_us(lambda c: text_checks(c, c, None), CAPTIONS, repeats):.0f}"],
        [
            "text_checks, realistic caption, no language id",
            f"{per_call_us(lambda c: text_checks(c, c, None, plain), CAPTIONS, repeats):.0f}",
        ],
    ]
    for name, text in WORST.items():
        rows.append([f"text_checks, {name}", f"{per_call_us(lambda c: text_checks(c, c, None), [text], repeats):.0f}"])

    rng = np.random.default_rng(0)
    for n in (64, 256, 1024):
        images = rng.normal(size=(n, 768)).astype(np.float32)
        text = (images + rng.normal(size=(n, 768))).astype(np.float32)
        us = per_call_us(lambda _: agreement(text, images), [None], max(3, repeats // 20))
        rows.append([f"agreement, one shard of N={n} (768-d)", f"{us:.0f}"])

    answer = json.dumps({**{k: "no" for k in DEFECT_TYPES}, "content_type": "real_footage"}, indent=2)
    rows.append(
        ["parse_defects, fenced JSON answer", f"{per_call_us(parse_defects, [f'```json{answer}```'], repeats):.0f}"]
    )
    rows.append(["parse_defects, prose", f"{per_call_us(parse_defects, [CAPTIONS[0]], repeats):.0f}"])
    print(markdown(["case", "µs per call (median)"], rows))


if __name__ == "__main__":
    main()
