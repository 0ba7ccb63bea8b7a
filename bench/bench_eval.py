"""What each metric of ``mvdit_eval`` costs per generated video, relative to sampling that video.

One run, interleaved repeats, medians:

- sampling: ``mvdit.sample.generate`` of one prompt (tiny MVDiT preset, tiny VAE and T5, ``--steps`` respaced
  IDDPM steps with CFG 7.0: the offline profile's stack) at ``--frames`` x ``--size`` px, written to mp4;
- each metric on that mp4 under the ``evalcrafter`` definition (``mvdit.evaluate.SampleEvaluator``'s parts,
  decode included): CLIP score + CLIP temporal (two CLIP passes over every frame, as EvalCrafter makes them, and
  the prompt's text embedding), warping error (both directions on halved frames; Farneback offline, RAFT-large
  with 20 updates in the paper profile), VQA_T (DOVER technical, 3 clips of 32 fragment frames), VQA_A (DOVER
  aesthetic, 32 frames at 224 px), BLIP-BLEU (BLIP-2 captions of 5 frames, 20 new tokens each, and their BLEU
  against the prompt);
- with two model sizes for the metrics: ``offline`` (the tiny stand-ins the tests use) and ``paper`` (the
  paper-size architectures with random weights: EvalCrafter's CLIP ViT-B/32, the full DOVER and
  blip2-opt-2.7b's BLIP-2; the compute is the real one). The paper-size BLIP-2 runs in bfloat16 on a CPU (15 GB in float32 does not fit
  beside the rest) and float16 on a GPU, as the pipeline runs it there.

Printed: seconds per video of each, and each metric's time divided by the sampling time. On a CPU the tiny
sampler is nearly free, so the ratios against it are upper bounds of the real ones (XL/2 sampling costs far
more); on a GPU run the ``--preset XL/2`` case.

    python bench/bench_eval.py [--steps 100] [--frames 16] [--size 64] [--repeats 3] [--preset tiny] [--only warping]
"""

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from torchvision.models.optical_flow import raft_large

from openvid_assets.models.networks import dover
from openvid_assets.mvdit.metrics import evalcrafter as ec
from openvid_assets.mvdit.metrics.blip_bleu import TINY_BLIP2, FrameCaptioner
from openvid_assets.models.scorers.captions import tiny_tokenizer
from openvid_assets.models.scorers.clarity import DoverAesthetic, DoverClarity
from openvid_assets.models.scorers.clip import TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec, text_embeddings
from openvid_assets.models.networks.raft import UnitImageRaft
from openvid_assets.mvdit.encoders import tiny_t5, tiny_vae
from openvid_assets.mvdit.evaluate import (
    ALL_FRAMES,
    SampleEvaluator,
    blip_inputs,
    clip_score_pixels,
    clip_temporal_pixels,
    unit_farneback,
)
from openvid_assets.mvdit.model import MVDiT, preset
from openvid_assets.mvdit.sample import generate, write_mp4

PROMPT = "a red fox runs through deep snow at dawn"


def paper_size_blip2(device: str) -> FrameCaptioner:
    """Salesforce/blip2-opt-2.7b's architecture (ViT-g, Q-Former with 32 queries, OPT-2.7B) with random weights."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor, OPTConfig

    text = OPTConfig(
        vocab_size=50304,
        hidden_size=2560,
        word_embed_proj_dim=2560,
        ffn_dim=10240,
        num_hidden_layers=32,
        num_attention_heads=32,
        eos_token_id=50118,
    )
    config = Blip2Config(text_config=text.to_dict(), image_token_index=50265)  # vision, Q-Former: the defaults
    dtype = torch.bfloat16 if device == "cpu" else torch.float16
    model = Blip2ForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.suppress_tokens = [text.eos_token_id]  # always 20 new tokens: the longest caption
    # The tiny word tokenizer only decodes here (ids it lacks are dropped): the captions' text is not measured.
    image_processor = BlipImageProcessor(size={"height": 224, "width": 224})  # blip2-opt-2.7b's input size
    processor = Blip2Processor(image_processor, tiny_tokenizer(), num_query_tokens=config.num_query_tokens)
    captioner = FrameCaptioner("paper-size", device=device)
    captioner._loaded = (model.to(device).eval(), processor)  # what load() would return for a folder
    return captioner


def evaluator(size: str, device: str, blip: bool = True) -> SampleEvaluator:
    """The metrics' models at one size; ``blip`` False leaves BLIP-2 out (7 GB at the paper's size)."""
    if size == "offline":
        spec = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG)
        technical, aesthetic = dover.TINY, dover.AESTHETIC_TINY
        captioner = FrameCaptioner(TINY_BLIP2, device=device) if blip else None
    else:
        spec = CLIPSpec("ViT-B-32-quickgelu")  # EvalCrafter's CLIP; no weights: random init, the real compute
        technical, aesthetic = dover.PAPER, dover.AESTHETIC
        captioner = paper_size_blip2(device) if blip else None
    flow = unit_farneback if size == "offline" else UnitImageRaft(raft_large(weights=None).to(device).eval())
    return SampleEvaluator(
        CLIPEmbedder(spec, device=device),
        partial(text_embeddings, spec),
        DoverClarity(technical, None, device=device),
        DoverAesthetic(technical, aesthetic, None, device=device),
        captioner,
        flow,
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def metric_parts(ev: SampleEvaluator, path: Path) -> dict:
    """Each metric as a zero-argument call, decode included (what evaluate() does, split)."""

    def clip_metrics() -> None:
        _, frames = ev._decoded(path, ALL_FRAMES)
        size = ev.embedder.image_size
        text = ev.text([PROMPT])[0]
        ec.clip_score(ev.embedder.embed_pixels(clip_score_pixels(frames, size)), text)
        ec.clip_temporal(ev.embedder.embed_pixels(clip_temporal_pixels(frames, size)))

    def warp() -> None:
        ec.warping_error(ev._decoded(path, ALL_FRAMES)[1], ev.flow)

    def quality(scorer) -> None:
        scorer.score(*ev._decoded(path, scorer.request))

    def blip_bleu() -> None:
        frames = ev._decoded(path, ALL_FRAMES)[1]
        ec.blip_bleu(ev.captioner.captions(blip_inputs(frames, ev.definition)), PROMPT)

    parts = {
        "CLIP score + temporal": clip_metrics,
        "warping error": warp,
        "VQA_T (DOVER technical)": partial(quality, ev.technical),
        "VQA_A (DOVER aesthetic)": partial(quality, ev.aesthetic),
    }
    return {**parts, BLIP_BLEU: blip_bleu} if ev.captioner is not None else parts


BLIP_BLEU = "BLIP-BLEU (BLIP-2, 5 frames)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="sampling steps (the pipeline's default: 100)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="sampled video side, px (tiny VAE: latents / 2)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", help="time only the metrics whose name holds this text (and sampling)")
    args = parser.parse_args()

    config = preset(
        args.preset,
        frames=args.frames,
        height=args.size,
        width=args.size,
        vae_downsample=2,
        model_max_length=8,
        caption_channels=32,
    )
    torch.manual_seed(0)
    model = MVDiT(config).eval().to(args.device)
    vae, t5 = tiny_vae(), tiny_t5(max_length=8, dim=32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sample.mp4"

        def sample() -> None:
            write_mp4(generate(model, t5, vae, [PROMPT], steps=args.steps, seed=0)[0], path)

        sample()  # warm-up, and the file the metrics read
        wanted = lambda name: not args.only or args.only.lower() in name.lower()  # noqa: E731
        evaluators = {size: evaluator(size, args.device, blip=wanted(BLIP_BLEU)) for size in ("offline", "paper")}
        parts = {
            (size, name): call
            for size, ev in evaluators.items()
            for name, call in metric_parts(ev, path).items()
            if wanted(name)
        }
        for call in parts.values():
            call()  # warm-up
        times: dict = {"sampling": [], **{key: [] for key in parts}}
        for _ in range(args.repeats):
            times["sampling"].append(timed(sample))
            for key, call in parts.items():
                times[key].append(timed(call))
    sampling = statistics.median(times["sampling"])
    print(
        f"sampling one video ({args.preset} MVDiT, {args.frames}x{args.size}x{args.size}, {args.steps} steps, "
        f"CFG 7.0, tiny VAE and T5): {sampling:.3f} s (median of {args.repeats})"
    )
    print("| metric | models | s per video | / sampling |")
    print("|---|---|---|---|")
    for (size, name), values in ((k, v) for k, v in times.items() if k != "sampling"):
        seconds = statistics.median(values)
        print(f"| {name} | {size} | {seconds:.3f} | {seconds / sampling:.2f}x |")


if __name__ == "__main__":
    main()
