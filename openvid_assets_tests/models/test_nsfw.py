"""Safety-checker NSFW score: the published file's key layout, strict loading, the tower-is-our-CLIP check, and the
concept test's semantics (special-care adjustment, rounding) against diffusers' own forward."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from openvid_assets.models.registry.catalog import TINY_CLIP_CONFIG, CLIPSpec
from openvid_assets.models.networks.safety_checker import (
    CLASS_EMBEDDING,
    CONCEPT_SHAPES,
    POSITION_IDS,
    PROJECTION,
    SD_SAFETY_CHECKER,
    TINY_TOWER,
    TOWER_PREFIX,
    SafetyConcepts,
    check_checker_layout,
    expected_checker_keys,
    load_safety_concepts,
)
from openvid_assets.models.scorers.nsfw import NSFWScorer
from openvid_assets.models.registry.weights import WeightsFile, file_digest

TINY_FILE = WeightsFile("sd-safety-tiny/model.safetensors", "https://example.invalid/tiny", "tiny safety checker")


def basis(*indices: int, dim: int = 768) -> torch.Tensor:
    out = torch.zeros(len(indices), dim)
    out[torch.arange(len(indices)), list(indices)] = 1.0
    return out


def known_concepts(decimals: int | None = 3) -> SafetyConcepts:
    """Concepts on axes 0-16 (scaled: the test must normalise them), special care on 17-19, distinct thresholds."""
    concepts = SafetyConcepts(decimals)
    concepts.concept_embeds.copy_(basis(*range(17)) * 3.0)
    concepts.special_care_embeds.copy_(basis(17, 18, 19) * 0.5)
    concepts.concept_embeds_weights.copy_(torch.linspace(0.18, 0.26, 17))
    concepts.special_care_embeds_weights.copy_(torch.tensor([0.30, 0.32, 0.34]))
    return concepts


def with_cosines(pairs: dict[int, float], dim: int = 768) -> torch.Tensor:
    """A unit vector with the given cosines to the given axes, the rest of its length on axis dim - 1."""
    x = torch.zeros(dim, dtype=torch.float64)
    for axis, cos in pairs.items():
        x[axis] = cos
    x[-1] = (1 - (x**2).sum()).sqrt()
    return x.float()


def checker_state(tower=TINY_TOWER, visual=None, dtype=torch.float32, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every key of the checker file at its shape; the tower's projection and class embedding from ``visual``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in expected_checker_keys(tower).items():
        if key == POSITION_IDS:
            state[key] = torch.arange(shape[1])[None]
        else:
            state[key] = (torch.randn(shape, generator=generator) * 0.02).to(dtype)
    if visual is not None:
        state[PROJECTION] = visual.proj.detach().T.contiguous().to(dtype)
        state[CLASS_EMBEDDING] = visual.class_embedding.detach().clone().to(dtype)
    return state


def write(weights_dir, state, weights: WeightsFile = TINY_FILE):
    path = weights_dir / weights.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_visual():
    return CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG, seed=1).build().visual


# --------------------------------------------------------------------------- layout


def test_expected_keys_are_the_vit_l14_checker():
    keys = expected_checker_keys()
    tower = {k: v for k, v in keys.items() if k.startswith(TOWER_PREFIX)}
    per_layer = [k for k in tower if ".encoder.layers.0." in k]
    assert len(per_layer) == 16  # q, k, v, out proj, fc1, fc2 (weight + bias), two layer norms (weight + bias)
    assert {int(k.split(".")[4]) for k in tower if ".encoder.layers." in k} == set(range(24))
    assert len(tower) == 3 + 2 + 24 * 16 + 2 + 1  # embeddings, pre and post layer norm, layers, position_ids
    assert len(keys) == len(tower) + 1 + 4 == 397
    assert tower[TOWER_PREFIX + "embeddings.patch_embedding.weight"] == (1024, 3, 14, 14)
    assert tower[TOWER_PREFIX + "embeddings.position_embedding.weight"] == (257, 1024)
    assert tower[POSITION_IDS] == (1, 257) and tower[CLASS_EMBEDDING] == (1024,)
    assert tower[TOWER_PREFIX + "encoder.layers.23.mlp.fc1.weight"] == (4096, 1024)
    assert keys[PROJECTION] == (768, 1024)
    assert {k: keys[k] for k in CONCEPT_SHAPES} == {
        "concept_embeds": (17, 768),
        "special_care_embeds": (3, 768),
        "concept_embeds_weights": (17,),
        "special_care_embeds_weights": (3,),
    }


def test_expected_keys_match_the_diffusers_checker_class():
    """An independent source for the layout: diffusers' own class, on the meta device. Its tower keys are
    transformers' current ones (flattened in 5.x, renamed on load); the file nests them one level deeper."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    vision = {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "patch_size": 14,
        "image_size": 224,
    }
    with torch.device("meta"):
        checker = StableDiffusionSafetyChecker(CLIPConfig(vision_config=vision, projection_dim=768))
    theirs = {}
    for key, tensor in checker.state_dict().items():
        if key.startswith("vision_model.") and not key.startswith(TOWER_PREFIX):
            key = TOWER_PREFIX + key.removeprefix("vision_model.")
        theirs[key] = tuple(tensor.shape)
    ours = expected_checker_keys()
    assert ours.pop(POSITION_IDS) == (1, 257)  # saved by the transformers of 2022; not persistent any more
    assert theirs == ours


def test_layout_check_names_every_bad_key():
    expected = expected_checker_keys()
    check_checker_layout(expected, expected)
    check_checker_layout({k: v for k, v in expected.items() if k != POSITION_IDS}, expected)  # optional
    layer_key = TOWER_PREFIX + "encoder.layers.7.self_attn.q_proj.bias"
    missing = {k: v for k, v in expected.items() if k != layer_key}
    with pytest.raises(ValueError, match=r"missing keys: .*layers\.7\.self_attn\.q_proj\.bias"):
        check_checker_layout(missing, expected)
    with pytest.raises(ValueError, match=r"unexpected keys: text_projection\.weight"):
        check_checker_layout({**expected, "text_projection.weight": (768, 768)}, expected)
    with pytest.raises(ValueError, match=r"mis-shaped keys: concept_embeds \(17, 512\) \(expected \(17, 768\)\)"):
        check_checker_layout({**expected, "concept_embeds": (17, 512)}, expected)
    with pytest.raises(ValueError, match=r"missing keys: .*\(\+382 more\)"):  # 391 tower keys + projection
        check_checker_layout(CONCEPT_SHAPES, expected)


# --------------------------------------------------------------------------- loading


def test_a_checker_file_loads_strictly_and_its_tower_is_checked(weights_dir, tiny_visual):
    state = checker_state(visual=tiny_visual, dtype=torch.float16)  # fp16 file, fp32 model: within tolerance
    path = write(weights_dir, state)
    concepts, digest = load_safety_concepts(TINY_FILE, tiny_visual, tower=TINY_TOWER)
    assert digest == file_digest(path)
    for key in CONCEPT_SHAPES:
        assert torch.equal(getattr(concepts, key), state[key].float()), key
    assert set(concepts.state_dict()) == set(CONCEPT_SHAPES)
    del state[POSITION_IDS]  # as a newer transformers would save it
    write(weights_dir, state)
    load_safety_concepts(TINY_FILE, tiny_visual, tower=TINY_TOWER)


def test_a_checker_with_another_tower_is_refused(weights_dir, tiny_visual):
    other = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG, seed=2).build().visual
    write(weights_dir, checker_state(visual=other))
    load_safety_concepts(TINY_FILE, tower=TINY_TOWER)  # no CLIP given: nothing to compare
    with pytest.raises(ValueError, match="is not the pipeline's CLIP .*another embedding space"):
        load_safety_concepts(TINY_FILE, tiny_visual, tower=TINY_TOWER)
    state = checker_state(visual=tiny_visual)
    state[CLASS_EMBEDDING] = state[CLASS_EMBEDDING] + 0.01  # the projection agrees, the tower does not
    write(weights_dir, state)
    with pytest.raises(ValueError, match="not the pipeline's CLIP .*class_embedding: largest difference 0.01"):
        load_safety_concepts(TINY_FILE, tiny_visual, tower=TINY_TOWER)
    wider = SimpleNamespace(proj=torch.zeros(96, 768), class_embedding=torch.zeros(96))
    with pytest.raises(ValueError, match=r"not the pipeline's CLIP .*shape \(768, 64\) vs \(768, 96\)"):
        load_safety_concepts(TINY_FILE, wider, tower=TINY_TOWER)


@pytest.mark.parametrize("change", ["missing", "extra", "shape"])
def test_a_file_off_the_layout_is_refused_naming_the_key(weights_dir, change):
    state = checker_state()
    key = "special_care_embeds"
    if change == "missing":
        del state[key]
    elif change == "extra":
        key = "vision_model.text_model.embeddings.token_embedding.weight"
        state[key] = torch.zeros(3, 4)
    else:
        state[key] = torch.zeros(4, 768)
    write(weights_dir, state)
    with pytest.raises(ValueError, match=rf"safety checker's layout; .*{key.replace('.', '[.]')}"):
        load_safety_concepts(TINY_FILE, tower=TINY_TOWER)


def test_a_full_size_checker_file_scores_through_the_scorer(weights_dir):
    """The real layout at its real size (fp16 zeros: 600 MB, written and read in about a second)."""
    state = {
        k: torch.zeros(s, dtype=torch.int64 if k == POSITION_IDS else torch.float16)
        for k, s in expected_checker_keys().items()
    }
    state.update({k: v.half() for k, v in known_concepts().state_dict().items()})
    path = write(weights_dir, state, SD_SAFETY_CHECKER)
    del state
    try:
        scorer = NSFWScorer(SD_SAFETY_CHECKER, device="cpu")
        assert scorer.name == "sd-safety-checker" and scorer.weights_digest == file_digest(path)
        scores = scorer.score(np.stack([basis(4)[0].numpy(), basis(700)[0].numpy()]).astype(np.float16))
        weights = known_concepts().concept_embeds_weights.half().float()
        assert scores.dtype == np.float32
        np.testing.assert_allclose(scores, [round(1 - weights[4].item(), 3), round(-weights[0].item(), 3)], atol=1e-6)
    finally:
        path.unlink()


# --------------------------------------------------------------------------- semantics


def test_concept_and_orthogonal_embeddings():
    concepts, weights = known_concepts(), torch.linspace(0.18, 0.26, 17)
    scores = concepts(torch.stack([basis(5)[0] * 0.7, basis(500)[0]]))  # length does not matter
    assert scores[0].item() == pytest.approx(round(1 - weights[5].item(), 3), abs=1e-6) and scores[0] > 0
    assert scores[1].item() == pytest.approx(-0.18, abs=1e-6)  # the smallest threshold: every cosine is 0
    assert concepts.concept_scores(basis(5)).argmax().item() == 5


def test_special_care_adds_exactly_one_hundredth_when_it_fires():
    concepts = known_concepts()
    w3, s0 = concepts.concept_embeds_weights[3].item(), 0.30
    below = with_cosines({3: w3 - 0.005, 17: s0 - 0.05})  # special care quiet: concept 3 just below its threshold
    above = with_cosines({3: w3 - 0.005, 17: s0 + 0.05})  # special care fires: the same concept cosine now flags
    scores = concepts.concept_scores(torch.stack([below, above]))
    assert scores[0, 3].item() == pytest.approx(-0.005, abs=1e-6)
    assert scores[1, 3].item() == pytest.approx(0.005, abs=1e-6)
    assert torch.allclose(scores[1] - scores[0], torch.full((17,), 0.01), atol=1e-5)  # every concept, after rounding
    assert concepts(torch.stack([below, above])).gt(0).tolist() == [False, True]
    quiet = known_concepts()
    quiet.special_care_embeds_weights.fill_(0.4)
    assert torch.equal(quiet.concept_scores(above[None]), scores[:1])


def test_scores_round_to_three_decimals_like_upstream():
    concepts, raw = known_concepts(), known_concepts(decimals=None)
    x = with_cosines({2: concepts.concept_embeds_weights[2].item() + 0.0004})[None]
    assert concepts(x).item() == 0.0  # round(0.0004, 3) is 0: the checker does not flag it
    assert raw(x).item() == pytest.approx(0.0004, abs=2e-6)  # forward_onnx's unrounded score would


class PooledIsInput(torch.nn.Module):
    """A vision tower whose pooled output is its input."""

    def forward(self, clip_input: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, clip_input


def test_flags_agree_with_diffusers_forward():
    """The oracle: diffusers' StableDiffusionSafetyChecker.forward, its tower replaced by the embeddings
    themselves (identity projection), on embeddings placed around the thresholds."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    generator = torch.Generator().manual_seed(0)
    concepts = SafetyConcepts()
    concepts.concept_embeds.copy_(torch.randn(17, 768, generator=generator))
    concepts.special_care_embeds.copy_(torch.randn(3, 768, generator=generator))
    concepts.concept_embeds_weights.copy_(0.15 + 0.1 * torch.rand(17, generator=generator))
    concepts.special_care_embeds_weights.copy_(0.15 + 0.1 * torch.rand(3, generator=generator))
    n = 2000
    unit = F.normalize(torch.cat([concepts.concept_embeds, concepts.special_care_embeds]), dim=-1)
    mix = torch.zeros(n, 20)
    rows = torch.arange(n)  # each embedding: one concept (cosine 0.1-0.3) and one special-care concept (0-0.3)
    mix[rows, torch.randint(0, 17, (n,), generator=generator)] = 0.1 + 0.2 * torch.rand(n, generator=generator)
    mix[rows, torch.randint(17, 20, (n,), generator=generator)] = 0.3 * torch.rand(n, generator=generator)
    noise = F.normalize(torch.randn(n, 768, generator=generator), dim=-1)
    x = F.normalize(mix @ unit + noise * (1 - mix.pow(2).sum(1, keepdim=True)).sqrt(), dim=-1)

    vision = {
        "hidden_size": 768,
        "num_hidden_layers": 1,
        "num_attention_heads": 12,
        "intermediate_size": 64,
        "patch_size": 16,
        "image_size": 32,
    }
    checker = StableDiffusionSafetyChecker(CLIPConfig(vision_config=vision, projection_dim=768)).eval()
    checker.vision_model = PooledIsInput()
    with torch.no_grad():
        checker.visual_projection.weight.copy_(torch.eye(768))
        for key in CONCEPT_SHAPES:
            getattr(checker, key).copy_(getattr(concepts, key))
    _, flagged = checker(clip_input=x, images=np.zeros((n, 1, 1, 3)))

    ours = concepts(x) > 0
    assert ours.tolist() == flagged
    assert 0.1 * n < sum(flagged) < 0.9 * n  # both sides of the threshold are exercised
    never_special = SafetyConcepts()
    never_special.load_state_dict({**concepts.state_dict(), "special_care_embeds_weights": torch.full((3,), 2.0)})
    assert ((never_special(x) > 0) != ours).sum() > 0  # cases the special-care adjustment decides exist
    unrounded = SafetyConcepts(decimals=None)
    unrounded.load_state_dict(concepts.state_dict())
    assert ((unrounded(x) > 0) != ours).sum() > 0  # and cases the rounding decides


def test_the_random_stand_in_is_plumbing_that_flags_nothing():
    scorer = NSFWScorer(None, device="cpu")
    assert scorer.name == "sd-safety-checker" and scorer.weights_digest == "random-seed0"
    x = np.random.default_rng(0).standard_normal((1000, 768)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    scores = scorer.score(x)
    assert scores.shape == (1000,) and scores.dtype == np.float32
    assert scores.max() < -0.2
    np.testing.assert_array_equal(NSFWScorer(None, device="cpu").score(x), scores)  # same seed, same stand-in
    assert NSFWScorer.video_score(scores) == float(scores.max())
    assert scorer.score(np.zeros((0, 768), np.float32)).shape == (0,)
