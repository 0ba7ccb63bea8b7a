"""Caption checks without labels, caption-clip agreement in a shard, and the VLM defect-tag answers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from openvid_assets.models.scorers.caption_checks import (
    CHECKS,
    CONTENT_TYPES,
    DEFECT_COLUMNS,
    DEFECT_PROMPT,
    DEFECT_TYPES,
    TEXT_CHECKS,
    CaptionCheckSettings,
    agreement,
    agreement_reason,
    parse_defects,
    rank_shares,
    text_checks,
)
from openvid_assets.models.scorers.captions import clean_caption

# Raw answers as LLaVA-v1.6 writes them: a "The video shows" lead-in that clean_caption removes, then vivid prose.
GOOD_RAW = [
    "The video shows a golden retriever bounding across a wide sandy beach at sunset, its wet fur glowing amber in "
    "the low light as it chases a red ball towards the foaming surf. Behind it, gentle waves roll in under a sky "
    "streaked with pink and violet clouds, and a lone sailboat drifts on the horizon. The camera tracks the dog from "
    "a low angle, moving smoothly alongside it, and the warm, saturated colours and soft lens flare give the scene a "
    "nostalgic, cinematic feel.",
    "In a dimly lit jazz club, an elderly saxophonist in a dark suit and fedora plays with his eyes closed, his "
    "fingers moving quickly over the brass keys. Blue and purple stage lights cut through a haze of smoke behind "
    "him, and the blurred silhouettes of the audience sit at small round tables in the foreground. The camera slowly "
    "pushes in from a medium shot to a close-up of his face, and the shallow depth of field, deep shadows and rich "
    "jewel tones create an intimate, moody atmosphere.",
    "This clip depicts an aerial drone shot gliding over a dense evergreen forest in late autumn, where patches of "
    "orange and yellow birch trees break up the dark green canopy. A narrow river winds through the valley below, "
    "reflecting the pale overcast sky, and low mist clings to the distant hills. The camera moves steadily forward "
    "and tilts down slightly, revealing a small wooden cabin with smoke rising from its chimney. The muted, cool "
    "colour palette and soft diffuse light give the footage a calm, contemplative mood.",
    "A young woman with curly red hair, wearing a yellow raincoat, rides a bicycle down a narrow cobblestone street "
    "in an old European town while light rain falls. Colourful shop fronts, hanging flower baskets and wet, "
    "reflective stones line the street, and a few pedestrians with umbrellas walk in the background. The camera "
    "follows her from behind at a steady pace, then she turns a corner. The footage has a bright, slightly "
    'desaturated look, with natural daylight and a shallow depth of field ("a quiet morning ride").',
    "Close-up of a chef's hands slicing fresh vegetables on a wooden cutting board in a busy restaurant kitchen. "
    "The knife moves rapidly through bright orange carrots and green bell peppers, and the pieces pile up neatly at "
    "the side of the board. Steam rises from pots on the stove in the background, where other cooks in white "
    "uniforms move back and forth. The camera is static, framed from slightly above, and the warm tungsten lighting "
    "and crisp detail give the shot a vivid, appetising look.",
]
GOOD = [clean_caption(raw, False) for raw in GOOD_RAW]


def failing(caption, raw=None, truncated=False, settings=CaptionCheckSettings()):
    result = text_checks(caption, raw if raw is not None else caption, truncated, settings)
    assert tuple(result) == TEXT_CHECKS
    return {k: v for k, v in result.items() if v is not None}


# --------------------------------------------------------------------------- text checks


def test_check_names_are_fixed_with_agreement_last():
    assert CHECKS == (*TEXT_CHECKS, "agreement")
    assert TEXT_CHECKS == ("empty", "too_short", "too_long", "repetition", "truncated", "language", "boilerplate")


@pytest.mark.parametrize("truncated", [False, None])
@pytest.mark.parametrize("k", range(len(GOOD)))
def test_vivid_english_captions_pass_every_check(k, truncated):
    assert failing(GOOD[k], GOOD_RAW[k], truncated) == {}


def test_an_ngram_loop_is_repetition():
    caption = "A man walks along the road. " + "A man walks along the road and a man walks along the road and " * 4
    reason = failing(caption)["repetition"]
    assert reason.startswith("repetition: the 3-gram 'a man walks'") and "(share 0.8" in reason
    # a loop without sentence ends, and a looser limit that lets it pass
    loop = "the waves crash on the rocks " * 6
    assert "3-gram" in failing(loop)["repetition"]
    assert "repetition" not in failing(loop + ".", settings=CaptionCheckSettings(max_repeat_share=0.9))


def test_a_repeated_sentence_is_repetition_even_when_ngrams_are_few():
    sentence = "The camera slowly pans to the left across the field."
    caption = f"{GOOD[0]} {sentence} {GOOD[1]} {sentence}"
    assert failing(caption, settings=CaptionCheckSettings(max_words=1000)) == {
        "repetition": "repetition: the sentence 'the camera slowly pans to the left…' 2 times"
    }
    assert failing(caption, settings=CaptionCheckSettings(max_words=1000, max_sentence_repeats=2)) == {}


def test_truncation_from_the_flag_or_an_unfinished_raw_answer():
    raw = "A man rides a horse across a misty field at dawn. The camera follows him from the side as he"
    caption = clean_caption(raw, True)
    assert failing(caption, raw, True) == {"truncated": "truncated: generation stopped at the token limit"}
    # flag unknown: the raw answer's ending decides
    assert failing(caption, raw, None)["truncated"].startswith("truncated: the raw answer ends mid-sentence")
    # the model stopped by itself: trusted, clean_caption already dropped the unfinished sentence
    assert failing(caption, raw, False) == {}
    for finished in (GOOD_RAW[3], raw + ' "free".', raw + " (slowly.)", raw + "!**", '{"dense_summary": "x"}'):
        assert "truncated" not in failing(caption, finished, None), finished


@pytest.mark.parametrize("caption", [None, "", "   \n\t ", "\u200b\u200b", "...", "```"])
def test_an_empty_caption_fails_only_empty(caption):
    result = failing(caption, raw=caption or "")
    assert list(result) == ["empty"] and result["empty"].startswith("empty: no")


def test_an_empty_caption_still_shows_the_refusal_in_its_raw_answer():
    assert failing("", "I'm sorry, I can't help with that.") == {
        "empty": "empty: no caption",
        "boilerplate": "boilerplate: the raw answer starts with 'I'm sorry'",
    }


def test_length_limits():
    assert failing("A dog runs on the beach.") == {"too_short": "too_short: 6 words (minimum 8)"}
    assert failing("A small brown dog runs along the beach.") == {}  # 8 words
    long = " ".join(GOOD)  # five different captions, 400+ words
    (reason,) = failing(long).values()
    assert reason.startswith("too_long: 4") and reason.endswith(" words (maximum 300)")
    assert failing(long, settings=CaptionCheckSettings(max_words=500, max_chars=5000)) == {}
    huge = "Blue " + "a" * 10_000 + "."
    assert failing(huge) == {"too_long": "too_long: 10006 characters (maximum 3000)"}


@pytest.mark.parametrize(
    "raw,reason",
    [
        ("I'm sorry, but I can't determine what happens in this video.", "starts with 'I'm sorry'"),
        ("I’m sorry, but I cannot see the video.", "starts with 'I'm sorry'"),  # typographic apostrophe
        ("As an AI language model, I cannot watch videos, but a man rides a horse.", "starts with 'As an AI'"),
        ("I cannot determine the location, but a man rides a horse along a beach.", "starts with 'I cannot determine'"),
        ("Sure! Here is a detailed description: a man rides a horse along a beach.", "starts with 'Sure!'"),
        (
            "Here's a detailed description of the clip: a man rides a horse on a beach.",
            "starts with 'Here's a detailed description'",
        ),
        ("A man rides a horse along a wide beach at dawn. I hope this helps!", "contains 'I hope this helps'"),
        ("A man rides a horse along a beach at dawn. Let me know if you need more.", "contains 'Let me know if'"),
    ],
)
def test_refusals_and_chat_are_boilerplate(raw, reason):
    caption = clean_caption(raw, False)
    assert failing(caption, raw) == {"boilerplate": f"boilerplate: {reason}"}


@pytest.mark.parametrize("lead", ["The image shows", "This image shows", "In this image,", "The picture depicts"])
def test_a_still_image_lead_in_is_boilerplate_in_the_raw_answer(lead):
    raw = f"{lead} a man riding a brown horse along a wide beach at dawn, with mist over the sea."
    caption = clean_caption(raw, False)
    reason = failing(caption, raw)["boilerplate"]
    if caption.lower().startswith(lead.lower()):  # "The picture depicts" survives cleaning
        assert reason == f"boilerplate: starts with '{lead.rstrip(',')}'"
    else:
        assert reason == f"boilerplate: the raw answer starts with '{lead.rstrip(',')}'"
    assert failing(caption, raw, settings=CaptionCheckSettings(flag_image_lead_in=False)) == {}


@pytest.mark.parametrize(
    "caption",
    [
        "Sure-footed mountain goats climb a steep rocky cliff as the camera tilts up slowly.",
        "Here is a man in a grey coat waiting at a rainy bus stop while cars pass by.",
        "The photo studio is lit by two large softboxes as a model poses against a white backdrop.",
        "The video shows a man riding a brown horse along a wide beach at dawn, with mist over the sea.",
        "A woman sits on a bench and says she is sorry to the man beside her, who looks away at the river.",
    ],
)
def test_captions_that_only_look_like_boilerplate_pass(caption):
    assert failing(clean_caption(caption, False), caption) == {}


@pytest.mark.parametrize(
    "caption,lang",
    [
        (
            "Un homme promène son chien le long d'une plage de sable au coucher du soleil, sous une lumière dorée.",
            "fr",
        ),
        ("Ein Mann geht mit seinem Hund am Strand spazieren, während die Sonne hinter den Wellen untergeht.", "de"),
    ],
)
def test_a_caption_in_another_language_is_flagged(caption, lang):
    reason = failing(caption)["language"]
    assert reason.startswith(f"language: detected '{lang}' (probability ") and reason.endswith("expected 'en'")
    assert "language" not in failing(caption, settings=CaptionCheckSettings(language=None))
    assert "language" not in failing(caption, settings=CaptionCheckSettings(language=lang))


def test_short_texts_are_not_judged_for_language():
    caption = "Le petit chat dort sur le lit au soleil"  # 40 characters would be judged; this is 39
    assert len(caption) < CaptionCheckSettings().min_language_chars
    assert "language" not in failing(caption)


def test_weird_unicode_and_runaway_strings_stay_fast_and_printable():
    odd = "\ud800 A cat \u200b\u202e sleeps 🐈‍⬛ on a \x00 warm \ufeff windowsill in the sun today\ud83d"
    huge_words = "word " * 200_000
    huge_raw = "x" * 1_000_000
    start = time.perf_counter()
    results = [
        text_checks(odd, odd, None),
        text_checks(huge_words, huge_words, None),
        text_checks(GOOD[0], huge_raw, None),
        text_checks(huge_raw, None, None),
    ]
    assert time.perf_counter() - start < 0.1
    for result in results:
        for reason in filter(None, result.values()):
            reason.encode("utf-8")  # no lone surrogates reach a stored reason
    assert results[1]["too_long"] == "too_long: 1000000 characters (maximum 3000)"
    assert "repetition" in results[1]["repetition"]


def test_settings_params_and_validation():
    params = CaptionCheckSettings().params()
    assert params["min_words"] == 8 and params["ngram"] == 3 and params["language"] == "en"
    assert params["max_rank_share"] == 0.5
    for bad in ({"ngram": 0}, {"min_words": 50, "max_words": 10}, {"max_repeat_share": 1.5}):
        with pytest.raises(ValueError):
            CaptionCheckSettings(**bad)


# --------------------------------------------------------------------------- agreement


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def shard(n, d=64, seed=0, videos=None):
    """Distinct clip embeddings, and captions that are noisy copies of their clip's, with CLIP's modality gap:
    every text vector shares one direction images lack, so own cosines sit near 0.3 as in real CLIP.
    With ``videos``, clip k comes from source video k % videos and shares that video's look."""
    rng = np.random.default_rng(seed)
    images = unit(rng.normal(size=(n, d)))
    if videos:
        images = unit(unit(rng.normal(size=(videos, d)))[np.arange(n) % videos] + 0.6 * images)
    gap = unit(rng.normal(size=d))
    text = unit(0.35 * images + 0.9 * gap + 0.12 * unit(rng.normal(size=(n, d))))
    return text, images


def reasons(text, images):
    own, share = agreement(text, images)
    return {i: r for i in range(len(own)) if (r := agreement_reason(own[i], share[i], len(own), 0.5))}


def test_matching_captions_agree():
    for videos in (None, 2):
        text, images = shard(10, videos=videos)
        own, share = agreement(text, images)
        assert np.all((own > 0.1) & (own < 0.6)) and np.all(share == 0)
        assert reasons(text, images) == {}


def test_captions_swapped_between_two_videos_of_a_shard_are_flagged():
    # Clips 2 and 5 come from different videos: each caption now sits on a clip of the other video, so its
    # own video's five clips all fit it better (5 of 9 > half), whatever the noise.
    text, images = shard(10, videos=2)
    text[[2, 5]] = text[[5, 2]]
    flagged = reasons(text, images)
    assert sorted(flagged) == [2, 5]
    assert flagged[2].startswith("agreement: 9 of 9 other clips match the caption better than its own (share 1.00")


def test_a_swap_between_unrelated_clips_is_caught_about_half_the_time():
    # A swapped caption's assigned clip is just another unrelated clip, so its rank among the shard's
    # unrelated clips is uniform: only its true clip is sure to beat it. rank_share > 0.5 then flags it in
    # about half the shards, and never flags a caption that kept its clip.
    rng = np.random.default_rng(5)
    swapped_flags, kept_flags, trials = 0, 0, 200
    for t in range(trials):
        text, images = shard(16, seed=100 + t)
        i, j = rng.choice(16, size=2, replace=False)
        text[[i, j]] = text[[j, i]]
        share = agreement(text, images)[1]
        assert share[i] >= 1 / 15 and share[j] >= 1 / 15  # the true clip always outranks the assigned one
        flagged = set(reasons(text, images))
        swapped_flags += len(flagged & {i, j})
        kept_flags += len(flagged - {i, j})
    assert kept_flags == 0
    assert 0.35 < swapped_flags / (2 * trials) < 0.75


def test_edge_cases_one_and_two_clips():
    text, images = shard(1)
    own, share = agreement(text, images)
    assert share.tolist() == [0.0] and agreement_reason(own[0], share[0], 1, 0.5) is None
    assert agreement(np.zeros((0, 8)), np.zeros((0, 8)))[1].shape == (0,)
    text, images = shard(2)
    assert agreement(text, images)[1].tolist() == [0.0, 0.0]
    own, share = agreement(text[::-1], images)
    assert share.tolist() == [1.0, 1.0]
    assert agreement_reason(own[0], share[0], 2, 0.5).startswith("agreement: 1 of 1 other clips")
    assert agreement_reason(None, None, 2, 0.5) is None
    assert agreement_reason(0.3, float("nan"), 5, 0.5) is None
    with pytest.raises(ValueError):
        agreement(text, images[:1])


def test_a_hub_clip_outranks_right_captions_unless_clips_are_centred():
    text, images = shard(8, seed=1)
    # clip 0 turns generic: it moves towards the direction every caption shares
    rng = np.random.default_rng(2)
    images[0] = unit(images[0] + 1.5 * unit(text.mean(axis=0)) + 0.1 * rng.normal(size=images.shape[1]))
    raw_share = agreement(text, images, normalise=False)[1]
    assert np.count_nonzero(raw_share[1:]) >= 5  # most captions now prefer the hub to their own clip
    assert agreement(text, images)[1].tolist() == [0.0] * 8


def test_centring_removes_clip_offsets_and_ignores_caption_offsets_exactly():
    rng = np.random.default_rng(3)
    n = 12
    sim = 0.05 * rng.normal(size=(n, n)) + 0.2 * np.eye(n)
    base = rank_shares(sim)
    assert np.all(base == 0)
    shifted = sim + rng.normal(size=(n, 1)) + 0.3 * rng.normal(size=(1, n))  # caption and clip offsets
    assert np.array_equal(rank_shares(shifted), base)
    assert np.any(rank_shares(shifted, normalise=False) > 0)  # the clip offsets fool the raw ranking


# --------------------------------------------------------------------------- defect tags


def answer(**changes):
    value = {name: "no" for name in DEFECT_TYPES} | {"content_type": "real_footage"}
    value.update(changes)
    return json.dumps({k: v for k, v in value.items() if v is not None}, indent=2)


def test_defect_names_columns_and_prompt():
    assert len(DEFECT_TYPES) == 12 and len(set(DEFECT_TYPES)) == 12
    assert DEFECT_COLUMNS == (*(f"defect_{n}" for n in DEFECT_TYPES), "content_type")
    for name in (*DEFECT_TYPES, *CONTENT_TYPES, "content_type"):
        assert f'"{name}"' in DEFECT_PROMPT
    assert "JSON object only" in DEFECT_PROMPT


def test_a_well_formed_answer_parses():
    defects = parse_defects(answer(text_overlay="yes", fast_zoom="yes", content_type="animation"))
    assert defects.content_type == "animation"
    assert {k for k, v in defects.flags.items() if v} == {"text_overlay", "fast_zoom"}
    row = defects.columns()
    assert tuple(row) == DEFECT_COLUMNS and row["defect_text_overlay"] is True and row["defect_slideshow"] is False


def test_fence_mixed_case_and_booleans_parse():
    text = answer(slideshow="YES", heavy_filter="No", low_resolution=True, blurred_region=False, unnatural_speed="True")
    fenced = f"  ```json\n{text}\n```\n"
    for t in (text, fenced, f"```\n{text}```"):
        flags = parse_defects(t).flags
        assert {k for k, v in flags.items() if v} == {"slideshow", "low_resolution", "unnatural_speed"}
    spaced = answer().replace('"text_overlay"', '"Text Overlay"').replace('"real_footage"', '"Real footage"')
    assert parse_defects(spaced) == parse_defects(answer())


def test_extra_keys_are_ignored():
    value = json.loads(answer(video_in_video="yes")) | {"watermark": "yes", "reason": "a small inset in a corner"}
    defects = parse_defects(json.dumps(value))
    assert defects is not None and defects.flags["video_in_video"] and "watermark" not in defects.flags


@pytest.mark.parametrize(
    "text",
    [
        answer(fast_zoom=None),  # a missing key
        answer(content_type="documentary"),  # not a content type
        answer(content_type=None),
        answer(slideshow="maybe"),
        answer(slideshow=None)[:-1] + ', "slideshow": "n/a"}',
        answer(heavy_filter=1),
        answer(heavy_filter=None)[:-1] + ', "heavy_filter": null}',
        answer(low_resolution="yes, slightly"),
        answer()[:-40],  # cut off
        answer() + "\n" + answer(),  # two objects
        f"Here is the answer:\n{answer()}",  # chatter around the object
        f"{answer()}\nI hope this helps.",
        answer()[:-1] + ', "Text-Overlay": "yes"}',  # one key given twice
        "The clip is real footage with no defects, a slideshow of nothing, yes no yes no.",
        json.dumps([json.loads(answer())]),
        "",
        None,
        "{" * 100_000,
    ],
)
def test_anything_else_is_unparsed(text):
    assert parse_defects(text) is None
