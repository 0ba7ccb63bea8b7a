"""Encoders (per-frame VAE, T5 with the offline tokenizer) and sampling to MP4 with the tiny stack."""

import json
import subprocess

import numpy as np
import pytest
import torch

from openvid_assets.mvdit.encoders import LATENT_SCALE, HashTokenizer, load_t5, load_vae, tiny_t5, tiny_vae
from openvid_assets.mvdit.model import preset
from openvid_assets.mvdit.sample import generate, sample_to_files, write_mp4
from openvid_assets.mvdit.train import TrainConfig, train
from openvid_assets_tests.mvdit.helpers import tiny_model

# The tiny VAE halves each side: 4 frames of 16x16 pixels are 8x8 latents; the tiny T5 gives 8 tokens of width 32.
CONFIG = preset("tiny", frames=4, height=16, width=16, vae_downsample=2)


@pytest.fixture(scope="module")
def vae():
    return tiny_vae()


@pytest.fixture(scope="module")
def t5():
    return tiny_t5(max_length=CONFIG.model_max_length, dim=CONFIG.caption_channels)


def probe(path) -> dict:
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,pix_fmt,nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["streams"][0]


def test_vae_encodes_each_frame_on_its_own_and_decodes_back(vae):
    video = torch.rand(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = vae.encode(video, sample=False)
    assert latents.shape == (2, 4, 4, 8, 8) and vae.downsample == 2
    single = vae.encode(video[:1, :, 2:3], sample=False)  # frame 2 of video 0, alone
    assert torch.allclose(latents[:1, :, 2:3], single, atol=1e-5)
    posterior_mode = vae.vae.encode(video[:1, :, 2]).latent_dist.mode()
    assert torch.allclose(single[:, :, 0], posterior_mode * LATENT_SCALE, atol=1e-5)
    assert vae.decode(latents).shape == video.shape
    drawn = vae.encode(video, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(drawn, latents)  # sampling draws from the posterior


def test_hash_tokenizer_is_deterministic_padded_and_always_ended():
    tokenizer = HashTokenizer(512)
    ids, mask = tokenizer(["A cat, sleeping.", "a cat sleeping", "one two three four five six seven eight nine"], 8)
    assert ids.shape == mask.shape == (3, 8)
    assert ids[0, :4].tolist() == [tokenizer.ids(w)[0] for w in ("a", "cat", ",", "sleeping")]
    # a, cat, ",", sleeping, ".", eos
    assert ids[0, 5] == HashTokenizer.eos_id and mask[0].tolist() == [1] * 6 + [0] * 2
    assert ids[1, 0] == ids[0, 0] and ids[1, 1] == ids[0, 1]  # case-insensitive, stable
    assert ids[2, -1] == HashTokenizer.eos_id and mask[2].all()  # truncated, still ended
    assert ((ids >= 0) & (ids < 512)).all()


def test_t5_features_mark_padding(t5):
    features, mask = t5.encode(["a red fox", "a red fox runs"])
    assert features.shape == (2, CONFIG.model_max_length, CONFIG.caption_channels) and features.dtype == torch.float32
    assert mask.sum(1).tolist() == [4, 5]
    assert not torch.allclose(features[0, :2], features[1, :2])  # T5 attends over the whole caption


def test_encoders_load_from_local_folders_with_or_without_tokenizer_files(tmp_path, vae, t5):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vae.vae.save_pretrained(tmp_path / "vae")
    video = torch.rand(1, 3, 2, 16, 16) * 2 - 1
    assert torch.equal(load_vae(tmp_path / "vae").encode(video, sample=False), vae.encode(video, sample=False))

    t5.model.save_pretrained(tmp_path / "t5")  # weights only: captions fall back to the hashing tokenizer
    loaded = load_t5(tmp_path / "t5", max_length=CONFIG.model_max_length)
    assert isinstance(loaded.tokenize, HashTokenizer)
    assert torch.equal(loaded.encode(["a red fox"])[0], t5.encode(["a red fox"])[0])

    # With tokenizer files the transformers tokenizer is used: a word-level one stands in for T5's sentencepiece.
    words = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, "a": 3, "fox": 4}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    special = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, **special)
    hf_tokenizer.save_pretrained(tmp_path / "t5")
    ids, mask = load_t5(tmp_path / "t5", max_length=6).tokenize(["a fox", "a red fox"], 6)
    assert ids.tolist() == [[3, 4, 1, 0, 0, 0], [3, 2, 4, 1, 0, 0]] and mask.sum(1).tolist() == [3, 4]


def test_sampling_writes_decodable_videos_from_a_training_checkpoint(tmp_path, vae, t5):
    latents, captions = torch.randn(2, 4, 4, 8, 8).clamp(-1, 1), t5.encode(["waves", "a dog"])
    data = [(latents[i], captions[0][i], captions[1][i]) for i in range(2)]
    train(
        tiny_model(randomized=False, config=CONFIG),
        data,
        TrainConfig(steps=2, checkpoint_dir=tmp_path / "ckpt", log_every=0),
    )
    prompts = ["A red fox runs through snow!", "waves"]
    paths = sample_to_files(
        tmp_path / "ckpt" / "step-00000002.pt", prompts, tmp_path / "out", CONFIG, t5, vae, steps=5, cfg_scale=7.0
    )
    assert [p.name for p in paths] == ["000-a-red-fox-runs-through-snow.mp4", "001-waves.mp4"]
    for path in paths:
        stream = probe(path)
        assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
        assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (16, 16, 4)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]  # no temporaries left


def test_generate_is_seeded_and_follows_the_prompt(vae, t5):
    model = tiny_model(config=CONFIG)
    first = generate(model, t5, vae, ["a cat", "a dog"], steps=4, seed=3)
    assert first.shape == (2, 4, 16, 16, 3) and first.dtype == np.uint8
    assert np.array_equal(first, generate(model, t5, vae, ["a cat", "a dog"], steps=4, seed=3))
    assert not np.array_equal(first, generate(model, t5, vae, ["a cat", "a dog"], steps=4, seed=4))
    other_prompt = generate(model, t5, vae, ["a boat", "a dog"], steps=4, seed=3)
    assert not np.array_equal(first[0], other_prompt[0])


def test_write_mp4_pads_odd_sizes_and_rejects_bad_frames(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, size=(3, 15, 21, 3), dtype=np.uint8)
    stream = probe(write_mp4(frames, tmp_path / "odd.mp4"))
    assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (22, 16, 3)
    with pytest.raises(ValueError):
        write_mp4(frames[..., :2], tmp_path / "bad.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]
