import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from openvid_assets.models.registry.catalog import LAION_AESTHETIC
from openvid_assets.models.scorers.aesthetic import AestheticScorer
from openvid_assets.models.scorers.clip import CLIP_VIT_L14_OPENAI, TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec
from openvid_assets.models.profiles import get_profile
from openvid_assets.models.registry.catalog import (
    DOVER_WEIGHTS,
    EVALCRAFTER_RAFT_WEIGHTS,
    PAPER_BLIP2,
    SD_SAFETY_CHECKER,
)
from openvid_assets.models.registry.weights import (
    MissingWeightsError,
    WeightsFile,
    file_digest,
    load_state_dict,
    resolve,
)

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture
def weights_env(weights_dir):
    return weights_dir, weights_dir.parent / "cache" / "weights"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _put(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_resolver_prefers_weights_dir_then_cache(weights_env):
    wdir, cache = weights_env
    spec = WeightsFile("m/model.safetensors", "https://example.invalid/model", "a model")
    cached = _put(cache / spec.filename)
    assert resolve(spec) == cached
    local = _put(wdir / spec.filename)
    assert resolve(spec) == local


def test_missing_weights_error_says_what_where_and_how(weights_env, no_network):
    with pytest.raises(MissingWeightsError) as info:
        resolve(LAION_AESTHETIC)
    message = str(info.value)
    assert LAION_AESTHETIC.filename in message
    assert LAION_AESTHETIC.url in message
    assert "OPENVID_WEIGHTS_DIR" in message and "OPENVID_ALLOW_DOWNLOADS" in message


def test_paper_profile_preflight_lists_every_missing_file(weights_env, no_network):
    with pytest.raises(MissingWeightsError) as info:
        get_profile("paper").check_weights()
    assert CLIP_VIT_L14_OPENAI.filename in str(info.value) and LAION_AESTHETIC.filename in str(info.value)
    assert SD_SAFETY_CHECKER.filename in str(info.value)  # the NSFW filter's file, named before any run
    with pytest.raises(MissingWeightsError) as info:
        get_profile("paper").check_weights(nsfw=False)  # filters.nsfw: off
    assert SD_SAFETY_CHECKER.filename not in str(info.value)
    assert EVALCRAFTER_RAFT_WEIGHTS.filename not in str(info.value)  # the metrics' files only when training
    with pytest.raises(MissingWeightsError) as info:
        get_profile("paper").check_weights(evaluation=True)  # `train`: the samples are scored too
    for named in (
        EVALCRAFTER_RAFT_WEIGHTS.filename,
        EVALCRAFTER_RAFT_WEIGHTS.url,
        DOVER_WEIGHTS.filename,
        PAPER_BLIP2,
        "vit_base_patch32",
    ):
        assert named in str(info.value), named
    get_profile("offline").check_weights(evaluation=True)  # needs nothing
    with pytest.raises(ValueError, match="unknown model profile"):
        get_profile("nope")


def test_checkpoints_load_weights_only(tmp_path):
    tensors = {"a": torch.ones(2, 3)}
    torch.save({"state_dict": tensors}, tmp_path / "wrapped.pth")
    assert torch.equal(load_state_dict(tmp_path / "wrapped.pth")["a"], tensors["a"])
    save_file(tensors, str(tmp_path / "w.safetensors"))
    assert torch.equal(load_state_dict(tmp_path / "w.safetensors")["a"], tensors["a"])

    torch.save({"a": Path("/etc/passwd")}, tmp_path / "pickle.pth")  # any non-tensor object
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        load_state_dict(tmp_path / "pickle.pth")  # arbitrary pickles are refused


def test_laion_checkpoint_with_the_public_key_names_loads_strictly(weights_env, no_network):
    wdir, _ = weights_env
    expected = json.loads((DATA / "laion_aesthetic_keys.json").read_text())["keys"]
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=generator) for k, shape in expected.items()}
    path = wdir / LAION_AESTHETIC.filename
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    scorer = AestheticScorer(LAION_AESTHETIC, device="cpu")
    assert {k: list(v.shape) for k, v in scorer.head.state_dict().items()} == expected
    assert scorer.weights_digest == file_digest(path)
    x = np.random.default_rng(0).normal(size=(4, 768)).astype(np.float32)
    manual = x
    for i in (0, 2, 4, 6, 7):  # the public predictor has no activations between layers
        manual = manual @ state[f"layers.{i}.weight"].numpy().T + state[f"layers.{i}.bias"].numpy()
    np.testing.assert_allclose(scorer.score(x), manual[:, 0], rtol=1e-4, atol=1e-4)

    state["layers.8.weight"] = torch.zeros(1)  # a key the public file does not have
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        AestheticScorer(LAION_AESTHETIC, device="cpu")


def test_open_clip_checkpoint_in_a_local_folder_loads_with_no_network(weights_env, no_network):
    wdir, _ = weights_env
    random_model = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG, seed=7).build()
    local = WeightsFile("tiny/open_clip_model.safetensors", "https://example.invalid/tiny", "tiny CLIP")
    (wdir / "tiny").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in random_model.state_dict().items()}, str(wdir / local.filename))
    loaded = CLIPEmbedder(CLIPSpec("tiny-clip", weights=local, config=TINY_CLIP_CONFIG), device="cpu")
    for name, tensor in random_model.visual.state_dict().items():
        assert torch.equal(loaded.visual.state_dict()[name], tensor), name
    assert loaded.weights_digest == file_digest(wdir / local.filename)


def test_paper_clip_config_has_the_vit_l14_shapes():
    with torch.device("meta"):
        model = CLIPSpec("ViT-L-14-quickgelu").build()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["visual.conv1.weight"] == (1024, 3, 14, 14)
    assert shapes["visual.positional_embedding"] == (257, 1024)
    assert shapes["visual.proj"] == (1024, 768)  # 768-d embedding: what the LAION head takes
    assert (
        sum(k.startswith("visual.transformer.resblocks.") and k.endswith(".attn.in_proj_weight") for k in shapes) == 24
    )


def test_device_choice_is_automatic_unless_pinned(monkeypatch):
    from openvid_assets.models.registry.runtime import pick_device, pick_dtype

    monkeypatch.delenv("OPENVID_DEVICE", raising=False)
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("OPENVID_DEVICE", "cpu")
    assert pick_device("auto").type == "cpu"
    assert pick_device("meta").type == "meta"  # an explicit choice beats the environment
    assert pick_dtype(torch.device("cpu")) == torch.float32 and pick_dtype(torch.device("cuda")) == torch.float16


def test_evalcrafters_clip_loads_strictly_from_its_weights_file(weights_env):
    """ViT-B/32 of the metrics (EvalCrafter's CLIP): the file's key names and shapes are open_clip's ViT-B-32."""
    import open_clip
    from safetensors.torch import save_file

    from openvid_assets.models.registry.catalog import CLIP_VIT_B32_OPENAI, EVALCRAFTER_CLIP

    state = open_clip.CLIP(**EVALCRAFTER_CLIP.model_config()).state_dict()
    path = weights_env[0] / CLIP_VIT_B32_OPENAI.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    embedder = CLIPEmbedder(EVALCRAFTER_CLIP, device="cpu")
    assert embedder.image_size == 224 and embedder.embed_dim == 512
    assert embedder.embed(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 512)
    save_file(
        {k: v.contiguous() for k, v in state.items() if not k.startswith("visual.transformer.resblocks.11")}, str(path)
    )
    with pytest.raises(RuntimeError, match="Missing key"):
        EVALCRAFTER_CLIP.build()
