"""The BLIP-2 frame captioner of BLIP-BLEU: the tiny one is deterministic and the same through a saved folder (the
paper checkpoint's loading path). BLEU and the frames picked: mvdit/test_evalcrafter_metrics.py."""

import numpy as np
import pytest

from openvid_assets.mvdit.metrics.blip_bleu import PAPER_BLIP2, TINY_BLIP2, FrameCaptioner, tiny_blip2
from openvid_assets.models.registry.weights import MissingWeightsError


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
