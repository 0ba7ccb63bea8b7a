"""Cuts and filters fitted from labels whose right answer is known."""

import json

import numpy as np
import polars as pl
import pytest

from openvid_assets.curation.calibration import (
    CalibrationError,
    CaptionFilter,
    LinearCaptionFilter,
    LinearSuitability,
    SuitabilityFilter,
    Target,
    fit_cut,
    pr_curve,
    suitability_rows,
)
from openvid_assets.models.shards.tables import EMBEDDING_SCHEMA, SCORE_SCHEMA


def test_the_curve_counts_ties_together():
    curve = pr_curve(np.array([3.0, 2.0, 2.0, 1.0]), np.array([True, True, False, False]))
    assert curve.rows() == [
        (3.0, 1.0, 0.5, pytest.approx(2 / 3), 1),
        (2.0, pytest.approx(2 / 3), 1.0, 0.8, 3),
        (1.0, 0.5, 1.0, pytest.approx(2 / 3), 4),
    ]


def test_a_clean_split_is_found_by_f1_and_a_precision_target_keeps_the_most_it_can():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 10, 400)
    good = scores >= 6.0
    cut = fit_cut(scores, good, Target.parse("f1"))
    assert scores[~good].max() < cut.lower < scores[good].min() and cut.precision == cut.recall == 1.0
    assert cut.upper is None
    noisy = good ^ (rng.uniform(size=400) < 0.1)  # 10 % of labels flipped
    loose, strict = (
        fit_cut(scores, noisy, Target.parse("precision:0.8")),
        fit_cut(scores, noisy, Target.parse("precision:0.95")),
    )
    assert loose.precision >= 0.8 and strict.precision >= 0.95 and strict.lower >= loose.lower


def test_a_score_bad_at_both_ends_gets_a_band():
    scores = np.linspace(0, 10, 101)
    good = (scores >= 3) & (scores <= 7)
    cut = fit_cut(scores, good, Target.parse("f1"), side="between")
    assert (cut.lower, cut.upper, cut.f1) == (pytest.approx(2.95), pytest.approx(7.05), 1.0)
    # Nothing bad labelled above the good ones: no upper cut (a faster video than any labelled is not judged).
    assert fit_cut(scores, scores >= 3, Target.parse("f1"), side="between").upper is None


@pytest.mark.parametrize("text", ["f2", "precision:0", "precision:1.5", "precision:x", ""])
def test_bad_targets_are_refused(text):
    with pytest.raises(ValueError, match="calibration target"):
        Target.parse(text)


def test_one_sided_labels_are_refused():
    with pytest.raises(CalibrationError, match="both good and bad"):
        fit_cut(np.arange(10.0), np.ones(10, bool), Target.parse("f1"))


def test_the_learned_filter_separates_held_back_items_from_embeddings_and_scores():
    rng = np.random.default_rng(1)
    direction = rng.normal(size=64)
    embeddings = rng.normal(size=(400, 64))
    good = embeddings @ direction + 0.3 * rng.normal(size=400) > 0
    scores = rng.normal(size=(400, 2))  # uninformative
    f = SuitabilityFilter(("aesthetic", "motion")).fit(embeddings[:200], scores[:200], good[:200])
    assert f.report["auc"] > 0.85 and f.report["folds"] == 5
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(good[200:], f.predict(embeddings[200:], scores[200:])) > 0.9


@pytest.mark.parametrize("labelled", [40, 200])  # fewer labels than dimensions (PCA in the pipeline), and more
def test_the_fitted_filter_is_exactly_its_linear_form_and_survives_json(labelled):
    rng = np.random.default_rng(2)
    embeddings, scores = rng.normal(size=(300, 64)), rng.normal(size=(300, 2))
    scores[5, 1] = np.nan  # a failed score counts as 0, in both forms
    good = embeddings[:, 0] + scores[:, 0] > 0
    f = SuitabilityFilter(("aesthetic", "motion")).fit(embeddings[:labelled], scores[:labelled], good[:labelled])
    linear = f.linear()
    np.testing.assert_allclose(linear.predict(embeddings, scores), f.predict(embeddings, scores), rtol=1e-9, atol=1e-12)
    loaded = LinearSuitability.from_dict(json.loads(json.dumps(linear.to_dict())))
    np.testing.assert_array_equal(loaded.predict(embeddings, scores), linear.predict(embeddings, scores))
    assert loaded.digest == linear.digest and loaded.report["labelled"] == labelled


def _embedding_rows(video_id, vector, status="ok", error=None, uri=None):
    return {
        "video_id": video_id,
        "source_uri": uri or f"/v/{video_id}.mp4",
        "status": status,
        "error": error,
        "frame_index": 0 if status == "ok" else None,
        "num_frames": 8,
        "embedding": np.asarray(vector, np.float16).tobytes() if status == "ok" else None,
    }


def test_suitability_rows_score_every_video_and_carry_failures_and_the_missing_model():
    embeddings = pl.DataFrame(
        [
            _embedding_rows("a", [1, 0, 0, 0]),
            _embedding_rows("b", [0, 1, 0, 0]),
            _embedding_rows("c", None, "failed", "could not decode frames"),
            _embedding_rows("a", None, "failed", "duplicate content of /v/a.mp4", "/v/copy.mp4"),
        ],
        schema=EMBEDDING_SCHEMA,
    )
    scores = {
        name: pl.DataFrame(
            [{"video_id": v, "source_uri": f"/v/{v}.mp4", "status": "ok", "score": 1.0} for v in "ab"],
            schema_overrides=SCORE_SCHEMA,
        )
        for name in ("aesthetic", "temporal", "motion")
    }
    model = LinearSuitability(np.array([2.0, -2.0, 0, 0]), np.zeros(3), 0.0, ("aesthetic", "temporal", "motion"), {})
    rows = {
        (r["video_id"], r["source_uri"]): r for r in suitability_rows(embeddings, scores, model).iter_rows(named=True)
    }
    assert rows["a", "/v/a.mp4"]["score"] == pytest.approx(1 / (1 + np.exp(-2)))
    assert rows["b", "/v/b.mp4"]["score"] == pytest.approx(1 / (1 + np.exp(2)))
    assert rows["c", "/v/c.mp4"]["error"] == "could not decode frames"
    assert rows["a", "/v/copy.mp4"]["status"] == "failed" and "duplicate" in rows["a", "/v/copy.mp4"]["error"]
    assert rows["a", "/v/a.mp4"]["weights_digest"] == model.digest
    unfitted = suitability_rows(embeddings, scores, None, "the learned filter needs at least 2 good and 2 bad labels")
    assert (unfitted["status"] == "failed").all() and unfitted["score"].is_null().all()
    assert "no suitability model: the learned filter needs" in unfitted.filter(pl.col("video_id") == "b")["error"][0]


def test_the_caption_filter_learns_what_a_bad_caption_says():
    good = [
        "A red car drives along a coastal road at sunset.",
        "Two dogs run across a green park.",
        "A chef slices vegetables in a bright kitchen.",
        "Waves roll onto a sandy beach under clouds.",
        "A woman walks through a busy market street.",
        "Snow falls over a quiet mountain village.",
    ] * 3
    bad = [
        "The image shows an image of the image.",
        "I cannot see the video clearly.",
        "The image shows a picture.",
        "I am unable to describe this image.",
        "This image image image shows.",
        "Sorry, I cannot help with that image.",
    ] * 3
    f = CaptionFilter().fit(good + bad, np.array([True] * len(good) + [False] * len(bad)))
    p = f.predict(["A horse gallops across a field.", "The image shows an image."])
    assert p[0] > 0.5 > p[1] and f.report["auc"] > 0.9
    # Its stored form computes the same probabilities, words it never saw and empty captions included.
    linear = LinearCaptionFilter.from_dict(json.loads(json.dumps(f.linear().to_dict())))
    new = ["A horse gallops across a field.", "The image shows an image.", "", "zebra zebra quokka", *good[:3]]
    np.testing.assert_allclose(linear.predict(new), f.predict(new), rtol=1e-9, atol=1e-12)
    assert linear.digest == f.linear().digest
