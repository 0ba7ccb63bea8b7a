"""BLIP-BLEU: BLEU-1..4 on captions whose answer is known, the frames it picks, and the tiny BLIP-2 captioner
(deterministic, and the same through a saved folder: the paper checkpoint's loading path)."""

import numpy as np
import pytest

from openvid_assets.mvdit.metrics.blip_bleu import (
    PAPER_BLIP2,
    TINY_BLIP2,
    FrameCaptioner,
    bleu_scores,
    spread,
    tiny_blip2,
)
from openvid_assets.models.registry.weights import MissingWeightsError

PROMPT = "a red fox runs through deep snow at dawn"


def test_a_caption_equal_to_the_prompt_scores_one_whatever_the_case():
    assert bleu_scores([PROMPT.upper()], PROMPT) == pytest.approx(
        {f"bleu_{n}": 1.0 for n in range(1, 5)} | {"blip_bleu": 1.0}
    )


def test_an_unrelated_caption_scores_near_zero():
    assert all(v < 0.1 for v in bleu_scores(["two cats sleep on the sofa indoors"], PROMPT).values())


def test_shared_words_in_another_order_score_on_unigrams_only():
    scores = bleu_scores([" ".join(reversed(PROMPT.split()))], PROMPT)
    assert scores["bleu_1"] == pytest.approx(1.0) and scores["bleu_4"] < 0.2
    assert scores["bleu_1"] > scores["bleu_2"] > scores["bleu_3"] > scores["bleu_4"]


def test_closer_captions_score_higher_and_frames_are_averaged():
    ladder = [PROMPT, "a red fox runs through the snow", "a fox in the snow", "a dog on a beach"]
    scores = [bleu_scores([c], PROMPT)["blip_bleu"] for c in ladder]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
    both = bleu_scores(ladder[:2], PROMPT)
    assert both["bleu_2"] == pytest.approx(np.mean([bleu_scores([c], PROMPT)["bleu_2"] for c in ladder[:2]]))
    assert both["blip_bleu"] == pytest.approx(np.mean([both[f"bleu_{n}"] for n in range(1, 5)]))
    with pytest.raises(ValueError):
        bleu_scores([], PROMPT)


def test_frames_are_spread_evenly_over_the_video():
    assert spread(16, 4) == [2, 6, 10, 14]
    assert spread(2, 4) == [0, 1] and spread(1) == [0]


def _frames(count=4) -> list[np.ndarray]:
    return [np.random.default_rng(k).integers(0, 256, (90, 160, 3), dtype=np.uint8) for k in range(count)]


@pytest.fixture(scope="module")
def tiny() -> FrameCaptioner:
    return FrameCaptioner(TINY_BLIP2, device="cpu", max_new_tokens=8)


def test_tiny_blip2_captions_every_frame_deterministically(tiny):
    captions = tiny.captions(_frames())
    assert len(captions) == 4 and all(c.strip() for c in captions)  # end-of-text suppressed: never empty
    assert "<image>" not in " ".join(captions)  # the image tokens and BOS of the prompt are not in the text
    assert FrameCaptioner(TINY_BLIP2, device="cpu", max_new_tokens=8).captions(_frames()) == captions


def test_a_saved_checkpoint_loads_through_the_blip2_classes(tmp_path, tiny):
    """The paper checkpoint's path: Blip2Processor + Blip2ForConditionalGeneration from a local folder."""
    model, processor = tiny_blip2(seed=0)
    folder = tmp_path / "Salesforce" / "tiny-blip2"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    loaded = FrameCaptioner(str(folder), device="cpu", max_new_tokens=8)
    assert loaded.captions(_frames(2)) == tiny.captions(_frames(2))
    assert type(loaded.load()[0]).__name__ == "Blip2ForConditionalGeneration"


def test_a_missing_blip2_folder_says_how_to_get_it(weights_dir):
    with pytest.raises(MissingWeightsError, match=f"hf download {PAPER_BLIP2}"):
        FrameCaptioner(PAPER_BLIP2, device="cpu").load()
