"""The export SQL on its own: quality tiers and score-conditioned captions over small known tables."""

import polars as pl
import pytest

from openvid_assets.recipe import ExportSettings, Recipe, RecipeError
from openvid_assets.store import run_sql


def _dataset(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": [f"c{i:02d}" for i in range(n)],
            "video_id": [f"v{i // 2}" for i in range(n)],
            "aesthetic score": [float(i) for i in range(n)],
            "clarity": [float(n - i) for i in range(n)],
            "temporal consistency score": [0.9] * n,
            "motion score": [1.0] * n,
            "seconds": [2.0] * n,
        }
    )


def _tiers(dataset: pl.DataFrame, **settings) -> dict[str, list[str]]:
    exporting = ExportSettings(**settings)
    tiered = run_sql("quality_tiers", {"dataset": dataset}, {"tiers": exporting.tiers, **exporting.tier_weights()})
    assert tiered.height == dataset.height
    return {t: sorted(g["clip_id"]) for (t,), g in tiered.group_by("tier")}


def test_tiers_by_one_score_are_equal_slices_of_its_order():
    tiers = _tiers(_dataset(10), tiers=5, tier_by=("aesthetic",))
    assert tiers == {f"tier_{k + 1}": sorted([f"c{9 - 2 * k:02d}", f"c{8 - 2 * k:02d}"]) for k in range(5)}


def test_opposite_scores_cancel_into_one_tier_and_ties_share_a_tier():
    # aesthetic rises as clarity falls: every clip has the same combined rank.
    assert _tiers(_dataset(10), tiers=5, tier_by=("aesthetic", "clarity")) == {
        "tier_1": [f"c{i:02d}" for i in range(10)]
    }


def test_fewer_clips_than_tiers_and_unknown_scores():
    assert sorted(_tiers(_dataset(3), tiers=5, tier_by=("aesthetic",))) == ["tier_1", "tier_2", "tier_4"]
    with pytest.raises(RecipeError, match="tier_by"):
        Recipe().updated({"exports": {"tier_by": ["beauty"]}})


def test_a_missing_score_ranks_worst():
    data = _dataset(4).with_columns(pl.Series("aesthetic score", [None, 1.0, 2.0, 3.0]))
    tiers = _tiers(data, tiers=4, tier_by=("aesthetic",))
    assert tiers["tier_4"] == ["c00"] and tiers["tier_1"] == ["c03"]
