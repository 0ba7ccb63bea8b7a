"""Cuts and filters fitted from labels whose right answer is known."""

import numpy as np
import pytest

from openvid_assets.models.calibration import (CalibrationError, CaptionFilter, SuitabilityFilter, Target, fit_cut,
                                               pr_curve)  # fmt: skip


def test_the_curve_counts_ties_together():
    curve = pr_curve(np.array([3.0, 2.0, 2.0, 1.0]), np.array([True, True, False, False]))
    assert curve.rows() == [(3.0, 1.0, 0.5, pytest.approx(2 / 3), 1), (2.0, pytest.approx(2 / 3), 1.0, 0.8, 3),
                            (1.0, 0.5, 1.0, pytest.approx(2 / 3), 4)]  # fmt: skip


def test_a_clean_split_is_found_by_f1_and_a_precision_target_keeps_the_most_it_can():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 10, 400)
    good = scores >= 6.0
    cut = fit_cut(scores, good, Target.parse("f1"))
    assert scores[~good].max() < cut.lower < scores[good].min() and cut.precision == cut.recall == 1.0
    assert cut.upper is None
    noisy = good ^ (rng.uniform(size=400) < 0.1)  # 10 % of labels flipped
    loose, strict = fit_cut(scores, noisy, Target.parse("precision:0.8")), fit_cut(scores, noisy, Target.parse("precision:0.95"))
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


def test_the_caption_filter_learns_what_a_bad_caption_says():
    good = ["A red car drives along a coastal road at sunset.", "Two dogs run across a green park.",
            "A chef slices vegetables in a bright kitchen.", "Waves roll onto a sandy beach under clouds.",
            "A woman walks through a busy market street.", "Snow falls over a quiet mountain village."] * 3
    bad = ["The image shows an image of the image.", "I cannot see the video clearly.",
           "The image shows a picture.", "I am unable to describe this image.",
           "This image image image shows.", "Sorry, I cannot help with that image."] * 3
    f = CaptionFilter().fit(good + bad, np.array([True] * len(good) + [False] * len(bad)))
    p = f.predict(["A horse gallops across a field.", "The image shows an image."])
    assert p[0] > 0.5 > p[1] and f.report["auc"] > 0.9
