"""The recipe file: malformed settings are refused before any run, naming the field and its line."""

import pytest

from openvid_assets.recipe import Recipe, RecipeError

BROKEN = """# openvid-assets recipe, version 2
models:
  profile: offline
  motion_definition: opensora-v9
selection:
  aesthetic: top:20
  motion: band:95:10
  nonsense: 3
clips:
  crf: 99
"""


def test_every_problem_of_a_recipe_file_is_named_with_its_line():
    with pytest.raises(RecipeError) as caught:
        Recipe.from_yaml(BROKEN, "recipe/v0002.yaml")
    message = str(caught.value)
    assert message.startswith("recipe/v0002.yaml: ")
    assert "models.motion_definition (line 4)" in message
    assert "selection.nonsense (line 8): Extra inputs are not permitted" in message
    assert "clips.crf (line 10)" in message


def test_a_bad_rule_names_its_section_line_and_the_rule():
    text = "selection:\n  aesthetic: top:20\n  motion: band:95:10\n"
    with pytest.raises(RecipeError, match=r"selection \(line 1\): .*band"):
        Recipe.from_yaml(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("models: [1, 2]\n", r"models \(line 1\)"),
        ("- just\n- a list\n", "expected a mapping of sections"),
        ("models: {profile: offline\n", "not valid YAML"),
        ("unknown_section: {}\n", r"unknown_section \(line 1\): Extra inputs"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(text, expected):
    with pytest.raises(RecipeError, match=expected):
        Recipe.from_yaml(text)


def test_a_valid_file_round_trips():
    recipe = Recipe().updated({"models": {"profile": "offline", "motion_definition": "opensora-v1.2"}})
    assert Recipe.from_yaml(recipe.to_yaml()) == recipe


# --------------------------------------------------------------------------- sources


SOURCES = """\
models:
  profile: offline
sources:
  web:
    uri: {web}
    rules:
      aesthetic: top:20
  clean:
    uri: {clean}
{extra}"""


@pytest.mark.parametrize(
    "extra,expected",
    [
        ("    rules:\n      beauty: top:90\n", r"sources\.clean \(line 8\).*unknown score\(s\) \['beauty'\]"),
        ("    colour_grading: true\n", r"sources\.clean\.colour_grading \(line 10\): Extra inputs"),
        ("    captions: sometimes\n", r"sources\.clean\.captions \(line 10\)"),
        ("    rules:\n      motion: band:90:10\n", r"sources\.clean \(line 8\).*lower bound is above"),
        # One fitted cut a score: two calibration targets for one score are refused before any run starts.
        (
            "    rules:\n      motion: calibrated:f1\nselection:\n  motion: calibrated:precision:0.9\n",
            r"recipe: .*motion is calibrated to f1 and precision:0.9 across sources; use one",
        ),
    ],
)
def test_a_malformed_source_is_refused_with_its_line(tmp_path, extra, expected):
    text = SOURCES.format(web=tmp_path / "web", clean=tmp_path / "clean", extra=extra)
    with pytest.raises(RecipeError, match=expected):
        Recipe.from_yaml(text, "recipe.yaml")


def test_two_sources_claiming_the_same_files_are_refused(tmp_path):
    text = SOURCES.format(web=tmp_path / "videos", clean=tmp_path / "videos" / "clean", extra="")
    with pytest.raises(RecipeError, match=r"sources \(line 3\).*'web' and 'clean' claim the same files"):
        Recipe.from_yaml(text, "recipe.yaml")


def test_shards_of_a_source_the_recipe_does_not_declare_are_refused(tmp_path):
    recipe = Recipe.from_yaml(SOURCES.format(web=tmp_path / "a", clean=tmp_path / "b", extra=""))
    assert recipe.source_rules("clean")["aesthetic"].spec() == "top:20"  # the selection section's default
    assert recipe.source_rules("web")["aesthetic"].spec() == "top:20"
    with pytest.raises(RecipeError, match="source 'panda'.*sources: web, clean"):
        recipe.source("panda")


def test_a_metadata_table_that_matches_no_video_stops_registration(tmp_path):
    from openvid_assets.assets.shards import register_source
    from openvid_assets import samples
    from openvid_assets.media.sources import MetadataError
    from openvid_assets.store import TableStore

    (tmp_path / "videos").mkdir()
    samples.static(tmp_path / "videos", "a.mp4")
    metadata = tmp_path / "meta.csv"
    metadata.write_text("file,caption\nelsewhere/a.mp4,A caption.\n")
    tables = TableStore(str(tmp_path / "data"))
    with pytest.raises(MetadataError, match=r"meta\.csv: none of its 1 rows names a video"):
        register_source(tables, str(tmp_path / "videos"), 10, name="clean", metadata=str(metadata))
    assert tables.shards("shard_lists") == []  # nothing registered
    metadata.write_text("caption\nA caption.\n")
    with pytest.raises(MetadataError, match="no 'file' column"):
        register_source(tables, str(tmp_path / "videos"), 10, name="clean", metadata=str(metadata))


def test_the_shipped_openvid1m_recipe_encodes_the_papers_two_paths():
    from openvid_assets.recipe import read_recipe_file, shipped_recipe

    recipe = read_recipe_file(shipped_recipe("openvid1m"))
    assert set(recipe.sources) == {"panda50m", "chronomagic", "celebv_hq", "opensora_plan"}
    panda = recipe.source_rules("panda50m")
    assert {k: r.spec() for k, r in panda.items()} == {
        "aesthetic": "top:20",
        "temporal": "band:5:90",
        "motion": "band:10:95",
        "clarity": "top:30",
    }
    for name in ("chronomagic", "celebv_hq", "opensora_plan"):
        assert {k: r.spec() for k, r in recipe.source_rules(name).items()} == {
            "aesthetic": "top:90",
            "motion": "band:5:98",
        }
        assert not any(recipe.source(name).applies(step) for step in ("temporal", "clarity", "clips"))
    assert recipe.source("celebv_hq").captions == "on" and recipe.source("chronomagic").captions == "keep"


def test_content_filters_section_reads_yaml_off_refuses_percentiles_and_follows_the_clip():
    recipe = Recipe.from_yaml("filters:\n  nsfw: off\n  near_duplicate: off\n  text_area: max:0.02\n")
    assert recipe.filters.nsfw == "off" and recipe.near_duplicate_threshold() is None
    rules = recipe.filters.table()
    assert rules.filter(rules["measure"] == "text_area").row(0, named=True)["upper"] == 0.02
    assert rules.filter(rules["measure"] == "nsfw").row(0, named=True)["upper"] is None  # off: no cut
    with pytest.raises(RecipeError, match=r"filters.brightness \(line 2\).*content rules are absolute"):
        Recipe.from_yaml("filters:\n  brightness: top:20\n")
    with pytest.raises(RecipeError, match="near_duplicate must be a cosine"):
        Recipe.from_yaml("filters:\n  near_duplicate: 1.5\n")
    # 'auto': Open-Sora's 0.98 for the paper's CLIP; the random stand-in's cosines crowd near 1.
    assert Recipe.validated({"models": {"profile": "paper"}}).near_duplicate_threshold() == 0.98
    assert Recipe.validated({"models": {"profile": "offline"}}).near_duplicate_threshold() == 0.9997
    # A filter change is a change of the filters section only.
    before, after = Recipe().sections(), Recipe().updated({"filters": {"contrast": "min:5"}}).sections()
    assert {k for k in before if before[k] != after[k]} == {"filters"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"selection": {"codec_motion": "band:5:95"}}, r"codec_motion is an absolute rule"),
        ({"selection": {"codec_motion": "min:fast"}}, r"not a number"),
        ({"filters": {"caption_checks": ["repetition", "spelling"]}}, r"caption_checks: unknown \['spelling'\]"),
        ({"filters": {"defects": ["slideshow"]}}, r"need captions.defect_tags: true"),
        (
            {"captions": {"defect_tags": True}, "filters": {"content_types": ["holiday_video"]}},
            r"content_types: unknown \['holiday_video'\]",
        ),
    ],
)
def test_prefilter_and_caption_rules_are_checked_before_any_run(changes, expected):
    with pytest.raises(RecipeError, match=expected):
        Recipe().updated(changes)


def test_the_codec_rule_is_part_of_the_motion_section_only_when_on():
    base = Recipe()
    assert base.selection.codec_rule().kind == "off"
    on = base.updated({"selection": {"codec_motion": "range:0.005:4"}})
    assert on.sections()["motion"] != base.sections()["motion"]
    off_again = base.updated({"selection": {"codec_motion": False}})  # YAML's bare off
    assert off_again.sections() == base.sections()
    assert (
        base.updated({"selection": {"thresholds_off": True, "codec_motion": "min:1"}}).selection.codec_rule().kind
        == "off"
    )
