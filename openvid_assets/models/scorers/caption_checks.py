"""Caption checks that need no labels, caption-clip agreement within a shard, and VLM defect tags.

Text checks (``text_checks``) look at one caption on its own: empty, too short or too long, looping
(repeated n-grams or sentences), cut off at the token limit, in the wrong language, or carrying a
refusal or chat boilerplate. Each failing check gives a short human-readable reason; a passing one None.

Agreement (``agreement``) compares a shard's captions with its clips through CLIP embeddings to catch a
caption attached to the wrong clip: a caption that fits many other clips of the shard better than its own.

Defect tags (``DEFECT_PROMPT``, ``parse_defects``) are one extra short answer per clip from the
captioning model, a yes/no per defect type plus a content type, in the manner of NVIDIA Cosmos Curator's
VLM filter. The parser is strict: an answer it cannot read unambiguously is None, and the caller keeps
the raw text instead of guessing.

Pure Python and numpy: no torch, no Dagster. py3langid (its model ships in the wheel) gives the language.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- settings

CHECKS = ("empty", "too_short", "too_long", "repetition", "truncated", "language", "boilerplate", "agreement")
TEXT_CHECKS = CHECKS[:-1]  # agreement needs the shard's embeddings, so it is computed elsewhere


@dataclass(frozen=True)
class CaptionCheckSettings:
    # Fewer words than this says too little to train on ("A dog." is a label, not a caption).
    min_words: int = 8
    # More than this is past what text encoders read (CLIP 77 tokens, T5 226-300 in Open-Sora-like models)
    # and past what a 256-new-token LLaVA answer can hold, so it comes from a loop or another source.
    max_words: int = 300
    # A hard cap on characters: also bounds the work every other check does on a runaway string.
    max_chars: int = 3000
    # Repetition: the share of word n-grams that repeat an earlier one. A loop drives it towards 1; a vivid
    # 150-word caption that says "in the background" three times stays under 0.05.
    ngram: int = 3
    max_repeat_share: float = 0.25
    # The same sentence (of 3 words or more) more often than this is a decoding loop.
    max_sentence_repeats: int = 1
    # Expected language (ISO 639-1); None or "" skips the check.
    language: str | None = "en"
    # Language id on a few words is a guess, so shorter captions are not judged ...
    min_language_chars: int = 40
    # ... and a caption is flagged only when another language wins with at least this probability.
    min_language_confidence: float = 0.9
    # "The image shows" in the raw answer: the model described a still, not a clip. With the one-frame
    # 'middle' caption layout this is the model's honest view, so it can be turned off.
    flag_image_lead_in: bool = True
    # Agreement: flag a caption when more than this share of the shard's other clips match it better than
    # its own clip. A right caption ranks its clip near the top (share near 0); a caption of the wrong clip
    # ranks its clip at random (share uniform in 0..1, so half are flagged) or, swapped, last (share 1).
    max_rank_share: float = 0.5
    min_agreement_clips: int = 2  # a shard of one clip has nothing to compare with

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.min_words < 0 or self.max_words < max(self.min_words, 1) or self.max_chars < 1:
            raise ValueError("need ngram >= 1, 0 <= min_words <= max_words and max_chars >= 1")
        for name in ("max_repeat_share", "min_language_confidence", "max_rank_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")

    def params(self) -> dict[str, Any]:
        """What a stored check result must match."""
        return asdict(self)


# --------------------------------------------------------------------------- text checks

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？])\s+")
_MIN_SENTENCE_WORDS = 3
_FINAL_PUNCT = ".!?…。！？"
_CLOSERS = "\"'”’»)]*_ \t\r\n"  # may follow the final punctuation: 'He said "hi."' or "(at dusk.)"

# Refusals and assistant talk, anywhere in the text: none of it describes a clip.
_REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|as an ai\b|as a (?:large )?language model"
    r"|(?:i (?:can ?not|can't|am unable to|am not able to|do not have the ability to|don't have the ability to)"
    r"|i'm (?:unable|not able) to) (?:determine|see|view|watch|tell|identify|provide|describe|help|assist"
    r"|analy[sz]e|access|process|play)"
    r"|(?:there is )?no (?:image|video|clip) (?:was |is |has been )?(?:provided|attached|uploaded|available)"
    r"|i hope this helps|let me know if)",
    re.IGNORECASE,
)
# Chat lead-ins at the start: clean_caption does not remove them, so they would reach training text.
# They need their punctuation or noun, so "Sure-footed goats" and "Here is a man" are captions.
_CHATTY_START = re.compile(
    r"^[\W_]*(?:(?:sure|certainly|of course|absolutely)\s*[!,.:]"
    r"|here(?: is|'s| are) (?:a |an |the |my )?(?:\w+ ){0,2}(?:description|caption|summary)s?\b)",
    re.IGNORECASE,
)
# "The image shows": a still-image description (clean_caption removes it from the caption, so read the raw).
# It needs its verb or comma, so "The photo studio is lit" stays a caption.
_IMAGE_START = re.compile(
    r"^[\W_]*(?:in )?(?:the|this) (?:image|picture|photo|photograph|still frame|screenshot)s?"
    r"(?:\s*,|\s+(?:shows|depicts|features|captures|presents|displays|showcases|contains|is of|appears to show)\b)",
    re.IGNORECASE,
)


def _quote(text: str, limit: int = 40) -> str:
    """A short printable excerpt for a reason: no control or format characters, no lone surrogates (which
    would break a UTF-8 database write)."""
    text = "".join(ch for ch in text[: limit * 4] if unicodedata.category(ch)[0] != "C" or ch.isspace())
    text = " ".join(text.split())
    if len(text) > limit:  # cut at a word boundary where there is one
        cut = text[: limit - 1]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"
    return "'" + text + "'"


@cache
def _language_identifier():
    """A private py3langid identifier with probabilities (the module's global one may be restricted elsewhere)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _repetition(words: list[str], text: str, settings: CaptionCheckSettings) -> str | None:
    # A repeated sentence first: it names the loop better than one of its n-grams would.
    sentences = Counter(
        " ".join(ws)
        for ws in (_WORD.findall(s.lower()) for s in _SENTENCE_SPLIT.split(text))
        if len(ws) >= _MIN_SENTENCE_WORDS
    )
    if sentences:
        sentence, count = sentences.most_common(1)[0]
        if count > settings.max_sentence_repeats:
            return f"repetition: the sentence {_quote(sentence)} {count} times"
    n = settings.ngram
    if len(words) > n:
        grams = Counter(zip(*(words[k:] for k in range(n))))
        total = len(words) - n + 1
        share = (total - len(grams)) / total  # occurrences that repeat an earlier n-gram
        if share > settings.max_repeat_share:
            gram, count = grams.most_common(1)[0]
            return f"repetition: the {n}-gram {_quote(' '.join(gram))} {count} times (share {share:.2f})"
    return None


def _ends_mid_sentence(raw: str) -> bool:
    text = raw.rstrip()
    if text.endswith(("}", "```")):  # a structured (JSON) answer that closed
        return False
    text = text.rstrip(_CLOSERS)
    return bool(text) and text[-1] not in _FINAL_PUNCT


def _boilerplate(text: str, source: str, settings: CaptionCheckSettings) -> str | None:
    text = text.replace("’", "'")
    for pattern in (_CHATTY_START, *((_IMAGE_START,) if settings.flag_image_lead_in else ())):
        if m := pattern.match(text):
            return f"boilerplate: {source}starts with {_quote(m.group(0).strip(' *_#>-:,'))}"
    if m := _REFUSAL.search(text):
        where = "starts with" if not text[: m.start()].strip(" \t\n\"'*_#>-:") else "contains"
        return f"boilerplate: {source}{where} {_quote(m.group(0))}"
    return None


def text_checks(
    caption: str | None,
    raw: str | None,
    truncated: bool | None,
    settings: CaptionCheckSettings = CaptionCheckSettings(),
) -> dict[str, str | None]:
    """Each of TEXT_CHECKS -> a reason when the caption fails it, else None.

    ``caption`` is the cleaned caption, ``raw`` the model's own text, ``truncated`` the generation's flag.
    An empty caption fails only "empty" among the caption checks (there is nothing to judge); "truncated"
    and "boilerplate" still read the raw text, which is where a refusal that left nothing usually is.
    ``truncated=None`` (unknown, e.g. captions from elsewhere) falls back to the raw text ending without
    final punctuation; ``truncated=False`` is trusted: the model stopped on its own, and clean_caption has
    already dropped an unfinished last sentence.
    """
    s = settings
    out: dict[str, str | None] = dict.fromkeys(TEXT_CHECKS)
    caption = caption or ""
    raw = raw or ""
    # Only the first max_chars (+1, to see that there are more) are read: bounded work on runaway text.
    head = caption[: s.max_chars + 1]
    words = [w.lower() for w in _WORD.findall(head)]

    if not words:
        shown = _quote(caption)  # "''" for blanks and invisible characters alone
        out["empty"] = "empty: no caption" if shown == "''" else f"empty: no words in {shown}"
    else:
        if len(caption) > s.max_chars:  # only its head was read, so its word count says nothing
            out["too_long"] = f"too_long: {len(caption)} characters (maximum {s.max_chars})"
        elif len(words) < s.min_words:
            out["too_short"] = f"too_short: {len(words)} word{'s' * (len(words) != 1)} (minimum {s.min_words})"
        elif len(words) > s.max_words:
            out["too_long"] = f"too_long: {len(words)} words (maximum {s.max_words})"
        out["repetition"] = _repetition(words, head, s)
        if s.language and len(head) >= s.min_language_chars:
            lang, prob = _language_identifier().classify(head)
            if lang != s.language and prob >= s.min_language_confidence:
                out["language"] = f"language: detected {lang!r} (probability {prob:.2f}), expected {s.language!r}"

    if truncated:
        out["truncated"] = "truncated: generation stopped at the token limit"
    elif truncated is None and _ends_mid_sentence(raw[-(s.max_chars + 1) :]):
        out["truncated"] = f"truncated: the raw answer ends mid-sentence ({_quote(raw.rstrip()[-30:])})"

    out["boilerplate"] = _boilerplate(head, "", s) or _boilerplate(raw[: s.max_chars + 1], "the raw answer ", s)
    return out


# --------------------------------------------------------------------------- agreement


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rank_shares(sim: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Per caption (row), the share of the other clips (columns) that score strictly above its own clip.

    CLIP cosines carry offsets: s[i, j] ~ a[i] + b[j] + match(i, j). A caption's offset a[i] (a long,
    generic caption scores higher against everything) is the same along its row, so it never changes the
    row's ranking and needs no correction; z-scoring rows would be a no-op. A clip's offset b[j] does bias
    it: a "hub" clip (dark, blurry, generic) matches every caption better than usual and outranks their
    own clips. ``normalise`` subtracts each column's mean over the shard's captions, which removes b[j]
    exactly and leaves a[i] neutral. The column is not also divided by its spread: that spread includes
    the captions' offsets, so dividing would let a[i] leak back into the ranking. With two clips this
    flags both or neither: both exactly when the swapped pairing has the larger total cosine.
    """
    sim = np.asarray(sim, dtype=np.float64)
    n = len(sim)
    if n < 2:
        return np.zeros(n)
    if normalise:
        sim = sim - sim.mean(axis=0)
    better = (sim > np.diag(sim)[:, None]).sum(axis=1)  # the diagonal is never above itself; NaN never above
    return better / (n - 1)


def agreement(text: np.ndarray, images: np.ndarray, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(own cosine, rank share) per clip from (N, D) CLIP text and image embeddings in the same order.

    Row i of ``text`` is clip i's caption, row i of ``images`` the clip's mean frame embedding. The cosine
    is the raw one (inputs are renormalised, so float16 drift does not matter); the rank share is
    ``rank_shares`` of the caption x clip cosine matrix: 0 when its own clip fits the caption best.
    """
    text, images = np.asarray(text), np.asarray(images)
    if text.ndim != 2 or text.shape != images.shape:
        raise ValueError(f"text and images must be (N, D) arrays of one shape; got {text.shape}, {images.shape}")
    sim = _unit(text) @ _unit(images).T
    return np.diag(sim).copy(), rank_shares(sim, normalise)


def mutual_swaps(text: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Per caption, the other clip it is mutually best matched with, or -1: its best clip k is not its own, and
    clip k's best caption is this one (columns centred as in ``rank_shares``). A caption moved onto an unrelated
    clip ranks that clip anywhere among the others, so the rank share catches it about half the time; but it
    still fits its true clip best, and that clip, whose own caption went elsewhere, fits it best: a swap."""
    text, images = np.asarray(text), np.asarray(images)
    if len(text) < 2:
        return np.full(len(text), -1)
    sim = _unit(text) @ _unit(images).T
    sim = sim - sim.mean(axis=0)
    best_clip, best_caption = sim.argmax(axis=1), sim.argmax(axis=0)
    rows = np.arange(len(sim))
    return np.where((best_clip != rows) & (best_caption[best_clip] == rows), best_clip, -1)


def agreement_reason(
    own: float | None,
    rank_share: float | None,
    n: int,
    max_rank_share: float = CaptionCheckSettings.max_rank_share,
    min_clips: int = CaptionCheckSettings.min_agreement_clips,
) -> str | None:
    """A reason when more than ``max_rank_share`` of the shard's ``n - 1`` other clips fit the caption better."""
    if own is None or rank_share is None or n < max(min_clips, 2) or not rank_share > max_rank_share:
        return None  # (`not >` is also true for NaN)
    others = n - 1
    return (
        f"agreement: {round(rank_share * others)} of {others} other clips match the caption better than its own "
        f"(share {rank_share:.2f}, own cosine {own:.3f})"
    )


# --------------------------------------------------------------------------- defect tags

# The defect types of Cosmos Curator's VLM filter, each with the hint the model sees.
_DEFECT_HINTS = {
    "slideshow": "still images shown one after another",
    "synthetic_or_screen_recording": "computer-generated footage or a recording of a screen",
    "heavy_filter": "a strong colour or stylistic filter over the footage",
    "text_overlay": "text, subtitles, logos or graphics added on top of the footage",
    "video_in_video": "another video or picture inset inside the frame",
    "photo_artifacts": "compression blocks, noise, banding or other image artifacts",
    "distorted_or_rotated": "a stretched, warped, mirrored or rotated view",
    "low_resolution": "low resolution or pixelated footage",
    "blurred_region": "part of the frame blurred out",
    "abrupt_camera_motion": "sudden shaky or jerky camera movement",
    "fast_zoom": "a fast zoom in or out",
    "unnatural_speed": "sped-up or slowed-down motion",
}
DEFECT_TYPES = tuple(_DEFECT_HINTS)
CONTENT_TYPES = ("real_footage", "animation", "video_game", "screen_recording", "cgi", "slideshow", "other")
DEFECT_COLUMNS = (*(f"defect_{name}" for name in DEFECT_TYPES), "content_type")

DEFECT_PROMPT = (
    "Check this video clip for defects. Answer with one JSON object with exactly these keys, each "
    '"yes" or "no": '
    + ", ".join(f'"{name}" ({hint})' for name, hint in _DEFECT_HINTS.items())
    + '; and "content_type", one of '
    + ", ".join(f'"{c}"' for c in CONTENT_TYPES)
    + ". Answer with the JSON object only."
)

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_YES_NO = {"yes": True, "true": True, "no": False, "false": False}
_MAX_ANSWER_CHARS = 8000  # a 13-key yes/no object is ~400 characters; anything far longer is not one


@dataclass(frozen=True)
class Defects:
    flags: dict[str, bool]  # every DEFECT_TYPES name
    content_type: str  # one of CONTENT_TYPES

    def columns(self) -> dict[str, bool | str]:
        """The row under DEFECT_COLUMNS."""
        return {**{f"defect_{k}": self.flags[k] for k in DEFECT_TYPES}, "content_type": self.content_type}


def _key(name: str) -> str:
    # "Text Overlay" and "text-overlay" name the same key; nothing looser than that is accepted.
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [_key(k) for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")  # two answers to one question: neither can be trusted
    return dict(zip(keys, (v for _, v in pairs)))


def parse_defects(text: str | None) -> Defects | None:
    """The defect tags in an answer to DEFECT_PROMPT, or None when it is not exactly such an answer.

    Accepted: one JSON object, alone or inside one ```json fence, with surrounding whitespace. Every
    defect key must be there (case, spaces and hyphens in key names aside), each value yes/no or
    true/false (a JSON bool or a string, any case), and content_type one of CONTENT_TYPES. Extra keys are
    ignored: with every asked key answered they change no answer (a model adding "reason" or "watermark"
    still said what it was asked). Rejected: chatter around the object, two objects, "maybe", null,
    numbers, a missing key, an unknown content type, a key given twice, truncated JSON.
    """
    if not isinstance(text, str) or len(text) > _MAX_ANSWER_CHARS:
        return None
    body = text.strip()
    if fence := _FENCE.match(body):
        body = fence.group(1)
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so is a duplicate key
        return None
    if not isinstance(value, dict):
        return None
    flags = {}
    for name in DEFECT_TYPES:
        answer = value.get(name)
        if isinstance(answer, bool):
            flags[name] = answer
        elif isinstance(answer, str) and answer.strip().lower() in _YES_NO:
            flags[name] = _YES_NO[answer.strip().lower()]
        else:
            return None
    content = value.get("content_type")
    content = _key(content) if isinstance(content, str) else None
    return Defects(flags, content) if content in CONTENT_TYPES else None
