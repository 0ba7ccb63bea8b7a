"""The caption filter as an asset, on captions whose right answer is known: fluent sentences are good, degenerate
ones (a word repeated, the failure of a captioner that loops) are bad. A few labelled captions fit a filter that
drops the other degenerate captions and keeps the fluent ones; with the rule on and no labels, the step refuses."""

import json
import random

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from openvid_assets.assets.caption_filter import CAPTION_MODEL_FILE, CAPTION_SCORES
from openvid_assets.assets.labels import record_labels
from openvid_assets.assets.recipe import record_recipe
from openvid_assets.definitions import GLOBAL_JOB, build_definitions
from openvid_assets.models.shards.tables import CAPTION_SCHEMA
from openvid_assets.store import TableStore
from openvid_assets.store.labels import LabelStore
from openvid_assets_testing.pipeline import store_recipe

SUBJECTS = ["a red kite", "an old fisherman", "a small dog", "two cyclists", "a paper boat", "a grey heron"]
ACTIONS = ["drifts slowly across", "walks along", "runs through", "rides past", "floats down", "stands beside"]
PLACES = ["a quiet harbour", "a sunlit meadow", "a narrow street", "a wide river", "a pine forest", "a stone bridge"]
WORDS = ["sits", "green", "smiles", "cold", "stands", "red", "natural"]


def fluent(rng: random.Random) -> str:
    return (
        f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(ACTIONS)} {rng.choice(PLACES)} in soft "
        f"{rng.choice(['morning', 'evening', 'afternoon'])} light, filmed from a steady camera."
    )


def degenerate(rng: random.Random) -> str:
    head = " ".join(rng.choice(WORDS) for _ in range(6))
    return f"{head.capitalize()} " + " ".join([rng.choice(WORDS)] * rng.randint(30, 80)) + "."


def materialize_caption_scores(data, raise_on_error=True):
    defs = build_definitions(str(data))
    with DagsterInstance.ephemeral() as instance:
        record_recipe(instance, defs.resources["store"].recipe())
        record_labels(instance, defs.resources["store"].tables())
        return defs.resolve_job_def(GLOBAL_JOB).execute_in_process(
            instance=instance, asset_selection=[AssetKey(CAPTION_SCORES)], raise_on_error=raise_on_error
        )


@pytest.fixture
def captioned(tmp_path):
    """Two shards of caption tables (20 fluent, 20 degenerate captions, one clip each) and the labels' store."""
    rng, rows = random.Random(7), []
    for i in range(40):
        good = i % 2 == 0
        rows.append(
            {
                "clip_id": f"v{i:02d}-0000000-0000047",
                "video_id": f"v{i:02d}",
                "status": "ok",
                "caption": fluent(rng) if good else degenerate(rng),
            }
        )
    rows.append({"clip_id": "v99-0000000-0000047", "video_id": "v99", "status": "failed", "error": "model failed"})
    tables = TableStore(str(tmp_path / "data"))
    table = pl.DataFrame(rows, schema=CAPTION_SCHEMA)
    tables.write("captions", "shard-00000", table.head(20))
    tables.write("captions", "shard-00001", table.tail(21))
    return tmp_path / "data", tables


def test_a_few_labelled_captions_drop_the_other_degenerate_ones(captioned):
    data, tables = captioned
    store_recipe(str(data), filters={"caption_quality": "min:0.5"})
    # 8 labelled: four fluent captions labelled good, four degenerate ones tagged (on their video) bad caption.
    labelled = {f"v{i:02d}": i % 2 == 0 for i in range(8)}
    LabelStore(tables.fs).append(
        "ana",
        [
            {
                "item": item,
                "score": "aesthetic",
                "label": "good" if good else "bad",
                "tags": [] if good else ["bad caption"],
            }
            for item, good in labelled.items()
        ],
    )
    # A video labelled bad for another reason says nothing about its caption.
    LabelStore(tables.fs).append("bo", [{"item": "v20", "score": "motion", "label": "bad", "tags": ["static"]}])
    result = materialize_caption_scores(data)
    stored = json.loads(tables.fs.get(CAPTION_MODEL_FILE))
    assert stored["labels"] == 8 and stored["model"]["report"]["labelled"] == 8
    scores = tables.read(CAPTION_SCORES, "global")
    assert scores.height == 40  # every ok caption once; the failed one has no caption to judge
    for row in scores.filter(~pl.col("video_id").is_in(list(labelled))).iter_rows(named=True):
        bad = int(row["video_id"][1:]) % 2 == 1
        assert (row["reason"] is not None) == bad, row
        if bad:
            assert row["reason"].startswith("bad caption (caption filter): caption_quality 0.")
    meta = result.asset_materializations_for_node("caption_scores")[0].metadata
    assert meta["dropped"].value == 20 and meta["fitted"].value is True


def test_with_the_rule_on_and_no_labels_the_step_refuses_and_off_it_judges_nothing(captioned):
    data, tables = captioned
    store_recipe(str(data), filters={"caption_quality": "min:0.5"})
    result = materialize_caption_scores(data, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "filters.caption_quality is 'min:0.5' but there is no caption filter: no labelled captions yet" in (
        failure.description
    )
    store_recipe(str(data))  # the default: off
    materialize_caption_scores(data)
    assert tables.read(CAPTION_SCORES, "global").is_empty()
    assert json.loads(tables.fs.get(CAPTION_MODEL_FILE))["model"] is None
