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


@pytest.mark.parametrize("text, expected", [
    ("models: [1, 2]\n", r"models \(line 1\)"),
    ("- just\n- a list\n", "expected a mapping of sections"),
    ("models: {profile: offline\n", "not valid YAML"),
    ("unknown_section: {}\n", r"unknown_section \(line 1\): Extra inputs"),
])  # fmt: skip
def test_malformed_files_are_refused_with_a_reason(text, expected):
    with pytest.raises(RecipeError, match=expected):
        Recipe.from_yaml(text)


def test_a_valid_file_round_trips():
    recipe = Recipe().updated({"models": {"profile": "offline", "motion_definition": "opensora-v1.2"}})
    assert Recipe.from_yaml(recipe.to_yaml()) == recipe
