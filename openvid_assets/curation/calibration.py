"""Thresholds and filters fitted from people's labels.

- ``pr_curve`` / ``fit_cut``: for one score, precision and recall of "keep what is at or above a cut" (or,
  for a score bad at both ends such as motion, "keep what is between two cuts") over the labelled items, and
  the cut that meets a target: the best F1 (``f1``), or the most items kept at a precision of at least P
  (``precision:P``). The cut sits halfway between the last labelled value kept and the next one dropped; a
  side with no labelled value beyond it gets no cut.
- ``SuitabilityFilter``: a logistic regression on the stored CLIP embedding of each video and its scores,
  cross-validated (AUC and accuracy, mean and spread over folds), then applied to every video: a few hundred
  labels filter millions of videos with no new model pass. Every stage of it is linear, so the fitted filter
  reduces exactly to one weight per input and a bias (``LinearSuitability``), stored as JSON (no pickle) and
  applied per shard by ``suitability_rows``.
- ``CaptionFilter``: TF-IDF of word n-grams and a logistic regression on captions labelled "bad caption" or
  good; stored as ``LinearCaptionFilter`` (vocabulary, idf and regression weights as JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from openvid_assets.store.selection import Target

Side = Literal["above", "between"]


class CalibrationError(ValueError):
    """Too few or one-sided labels to fit from (what is missing is in the message)."""


def _checked(scores: np.ndarray, good: np.ndarray, minimum: int = 4) -> tuple[np.ndarray, np.ndarray]:
    scores, good = np.asarray(scores, np.float64), np.asarray(good, bool)
    keep = np.isfinite(scores)
    scores, good = scores[keep], good[keep]
    if len(scores) < minimum or good.all() or not good.any():
        raise CalibrationError(
            f"need at least {minimum} labelled items with both good and bad among them; have "
            f"{len(scores)} ({int(good.sum())} good, {int((~good).sum())} bad)"
        )
    return scores, good


def pr_curve(scores: np.ndarray, good: np.ndarray) -> pl.DataFrame:
    """One row per distinct labelled value: keeping every item at or above it, the precision, recall, F1 and
    number kept."""
    scores, good = _checked(scores, good)
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], good[order]
    kept = np.arange(1, len(s) + 1)
    true = np.cumsum(g)
    last = np.r_[s[1:] != s[:-1], True]  # the last of each run of equal values: ties are kept together
    precision, recall = true / kept, true / g.sum()
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return pl.DataFrame(
        {"threshold": s[last], "precision": precision[last], "recall": recall[last], "f1": f1[last], "kept": kept[last]}
    )


@dataclass(frozen=True)
class FittedCut:
    lower: float | None
    upper: float | None
    precision: float
    recall: float
    f1: float
    labelled: int
    curve: pl.DataFrame = field(repr=False, compare=False)


def fit_cut(scores: np.ndarray, good: np.ndarray, target: Target, side: Side = "above") -> FittedCut:
    """The cut(s) meeting ``target``. ``between``: the band [lower, upper] over the labelled values that does
    (pairs of candidate cuts, so a score bad at both ends gets both)."""
    scores, good = _checked(scores, good)
    curve = pr_curve(scores, good)
    values = np.unique(scores)
    if side == "above":
        row = target.best(curve)
        if row is None:
            raise CalibrationError(f"no cut reaches {target.spec()} (best precision {curve['precision'].max():.3f})")
        return FittedCut(
            _between(values, row["threshold"], -1), None, row["precision"], row["recall"], row["f1"], len(scores), curve
        )
    rows = []
    for i, lo in enumerate(values):
        inside = scores >= lo
        for hi in values[i:]:
            kept = inside & (scores <= hi)
            true = int((kept & good).sum())
            if not true:
                continue
            precision, recall = true / int(kept.sum()), true / int(good.sum())
            rows.append(
                {
                    "lower": lo,
                    "upper": hi,
                    "precision": precision,
                    "recall": recall,
                    "f1": 2 * precision * recall / (precision + recall),
                    "kept": int(kept.sum()),
                }
            )
    bands = pl.DataFrame(rows)
    row = target.best(bands)
    if row is None:
        raise CalibrationError(f"no band reaches {target.spec()} (best precision {bands['precision'].max():.3f})")
    return FittedCut(
        _between(values, row["lower"], -1),
        _between(values, row["upper"], +1),
        row["precision"],
        row["recall"],
        row["f1"],
        len(scores),
        curve,
    )


def _between(values: np.ndarray, edge: float, side: int) -> float | None:
    """Where a cut at the labelled value ``edge`` goes: halfway to the next labelled value outside it (``side``
    -1: below, +1: above), so unlabelled videos are judged by the nearer label; None when no labelled value lies
    outside (nothing was seen there to cut)."""
    outside = values[values < edge] if side < 0 else values[values > edge]
    if outside.size == 0:
        return None
    return float((edge + (outside.max() if side < 0 else outside.min())) / 2)


def _features(embeddings: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(embeddings, np.float64), np.nan_to_num(np.asarray(scores, np.float64))])


@dataclass
class SuitabilityFilter:
    """P(good) of a video from its stored CLIP embedding and its scores."""

    score_names: tuple[str, ...]
    folds: int = 5
    seed: int = 0
    model: Any = None
    report: dict[str, float] = field(default_factory=dict)
    dim: int = 0

    def _pipeline(self, samples: int, dim: int) -> Any:
        """The standardised embedding beside the standardised scores; with fewer labels than embedding dimensions,
        the embedding's main directions only (one per 8 labels, at most 32): 768 raw dimensions learnt from a
        few labels would drown the scores."""
        from sklearn.compose import ColumnTransformer
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        reduce = [PCA(n_components=max(1, min(32, samples // 8)), random_state=self.seed)] if samples <= dim else []
        parts = ColumnTransformer(
            [
                ("embedding", make_pipeline(*reduce, StandardScaler()), list(range(dim))),
                ("scores", StandardScaler(), list(range(dim, dim + len(self.score_names)))),
            ]
        )
        return make_pipeline(parts, LogisticRegression(C=0.5, max_iter=2000, class_weight="balanced"))

    def fit(self, embeddings: np.ndarray, scores: np.ndarray, good: np.ndarray) -> SuitabilityFilter:
        """Cross-validate (stratified folds), then fit on every label."""
        from sklearn.model_selection import StratifiedKFold, cross_validate

        good = np.asarray(good, bool)
        minority = int(min(good.sum(), (~good).sum()))
        if minority < 2:
            raise CalibrationError(
                f"the learned filter needs at least 2 good and 2 bad labels; have "
                f"{int(good.sum())} good, {int((~good).sum())} bad"
            )
        x = _features(embeddings, scores)
        folds = StratifiedKFold(n_splits=min(self.folds, minority), shuffle=True, random_state=self.seed)
        fold_size = len(good) - len(good) // folds.get_n_splits()  # the fewest labels a fold trains on
        pipeline = self._pipeline(fold_size, np.asarray(embeddings).shape[1])
        result = cross_validate(pipeline, x, good, cv=folds, scoring=("roc_auc", "accuracy"))
        self.report = {
            "auc": float(result["test_roc_auc"].mean()),
            "auc_std": float(result["test_roc_auc"].std()),
            "accuracy": float(result["test_accuracy"].mean()),
            "accuracy_std": float(result["test_accuracy"].std()),
            "folds": folds.get_n_splits(),
            "labelled": len(good),
            "good": int(good.sum()),
        }
        self.dim = np.asarray(embeddings).shape[1]
        self.model = self._pipeline(len(good), self.dim).fit(x, good)
        return self

    def linear(self) -> LinearSuitability:
        """The fitted pipeline as the affine map it is (PCA, scaling and the regression's logit are all affine):
        read off the logit at zero and at each unit input."""
        if self.model is None:
            raise CalibrationError("the filter is not fitted")
        inputs = self.dim + len(self.score_names)
        logits = self.model.decision_function(np.vstack([np.zeros(inputs), np.eye(inputs)]))
        weights = logits[1:] - logits[0]
        return LinearSuitability(
            weights[: self.dim], weights[self.dim :], float(logits[0]), self.score_names, dict(self.report)
        )

    def predict(self, embeddings: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise CalibrationError("the filter is not fitted")
        if len(embeddings) == 0:
            return np.zeros(0)
        return self.model.predict_proba(_features(embeddings, scores))[:, 1]


SUITABILITY_INPUTS = ("aesthetic", "temporal", "motion")  # the scores every video has before selection


@dataclass(frozen=True)
class LinearSuitability:
    """A fitted learned filter: P(good) = sigmoid(embedding . w + scores . v + b), missing scores as 0."""

    embedding_weights: np.ndarray
    score_weights: np.ndarray
    bias: float
    score_names: tuple[str, ...]
    report: dict[str, float]

    def predict(self, embeddings: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if len(embeddings) == 0:
            return np.zeros(0)
        logits = _features(embeddings, scores) @ np.concatenate([self.embedding_weights, self.score_weights])
        return 1 / (1 + np.exp(-(logits + self.bias)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "embedding_weights": self.embedding_weights.tolist(),
            "score_weights": self.score_weights.tolist(),
            "bias": self.bias,
            "score_names": list(self.score_names),
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearSuitability:
        return cls(
            np.asarray(d["embedding_weights"], np.float64),
            np.asarray(d["score_weights"], np.float64),
            float(d["bias"]),
            tuple(d["score_names"]),
            d["report"],
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict()).encode()).hexdigest()[:16]


def suitability_inputs(
    embeddings: pl.DataFrame, scores: dict[str, pl.DataFrame]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video ids, mean CLIP embeddings, their ``SUITABILITY_INPUTS`` scores; NaN where a score failed) of the
    ok videos of a frame_embeddings table, with ``scores`` the same shards' score tables by name."""
    from openvid_assets.models.shards.tables import video_embeddings

    ids, vectors = video_embeddings(embeddings)
    columns = []
    for name in SUITABILITY_INPUTS:
        values = dict(scores[name].filter(pl.col("status") == "ok").select("video_id", "score").iter_rows())
        columns.append([values.get(v, math.nan) for v in ids])
    return ids, vectors, np.array(columns, np.float64).T.reshape(len(ids), len(SUITABILITY_INPUTS))


def fit_suitability(
    labels: pl.DataFrame, embeddings: pl.DataFrame, scores: dict[str, pl.DataFrame]
) -> tuple[LinearSuitability, pl.DataFrame]:
    """The learned filter fitted on every good/bad label of a video (each reviewer's latest, whichever score's
    page it was given on: it judges the video), with the labelled videos' inputs; and the training rows."""
    judged = latest_judgements(labels)
    ids, vectors, values = suitability_inputs(embeddings, scores)
    row = {v: k for k, v in enumerate(ids)}
    used = judged.filter(pl.col("item").is_in(ids))
    if used.is_empty():
        raise CalibrationError(
            "no labelled video has embeddings yet: label videos on the review page (openvid-assets review)"
        )
    at = [row[item] for item in used["item"]]
    fitted = SuitabilityFilter(SUITABILITY_INPUTS).fit(vectors[at], values[at], (used["label"] == "good").to_numpy())
    return fitted.linear(), used.select("reviewer", "item", "label")


def suitability_rows(
    embeddings: pl.DataFrame, scores: dict[str, pl.DataFrame], model: LinearSuitability | None, unfitted: str = ""
) -> pl.DataFrame:
    """One score row per video of a shard's frame_embeddings table: P(good) from the learned filter; a video
    whose embedding failed keeps that reason, and with no model (``unfitted``: why) every row says so."""
    from openvid_assets.models.shards.tables import SCORE_SCHEMA, video_groups

    ids, vectors, values = suitability_inputs(embeddings, scores)
    predicted = dict(zip(ids, model.predict(vectors, values))) if model is not None else {}
    key = {
        "model": "suitability-linear",
        "weights_digest": model.digest if model else "",
        "params": "{}",
        "params_hash": "",
    }
    rows = []
    for video_id, source_uri, group in video_groups(embeddings):
        base = {"video_id": video_id, "source_uri": source_uri, "frame_indices": [], **key}
        if video_id in predicted and group["status"][0] == "ok":
            rows.append({**base, "status": "ok", "score": float(predicted[video_id])})
        else:
            error = group["error"][0] if group["status"][0] != "ok" else f"no suitability model: {unfitted}"
            rows.append({**base, "status": "failed", "error": error})
    return pl.DataFrame(rows, schema=SCORE_SCHEMA)


@dataclass
class CaptionFilter:
    """P(good caption) from the caption's words (TF-IDF of 1-2-grams, logistic regression)."""

    model: Any = None
    report: dict[str, float] = field(default_factory=dict)

    def fit(self, captions: list[str], good: np.ndarray, folds: int = 5, seed: int = 0) -> CaptionFilter:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_validate
        from sklearn.pipeline import make_pipeline

        good = np.asarray(good, bool)
        minority = int(min(good.sum(), (~good).sum()))
        if minority < 2:
            raise CalibrationError(
                f"the caption filter needs at least 2 good and 2 bad captions; have "
                f"{int(good.sum())} good, {int((~good).sum())} bad"
            )

        def pipeline() -> Any:
            return make_pipeline(
                TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                LogisticRegression(C=2.0, max_iter=2000, class_weight="balanced"),
            )

        splits = StratifiedKFold(n_splits=min(folds, minority), shuffle=True, random_state=seed)
        result = cross_validate(pipeline(), captions, good, cv=splits, scoring=("roc_auc", "accuracy"))
        self.report = {
            "auc": float(result["test_roc_auc"].mean()),
            "auc_std": float(result["test_roc_auc"].std()),
            "accuracy": float(result["test_accuracy"].mean()),
            "accuracy_std": float(result["test_accuracy"].std()),
            "labelled": len(good),
        }
        self.model = pipeline().fit(captions, good)
        return self

    def predict(self, captions: list[str]) -> np.ndarray:
        if self.model is None:
            raise CalibrationError("the caption filter is not fitted")
        return self.model.predict_proba(captions)[:, 1] if captions else np.zeros(0)

    def linear(self) -> LinearCaptionFilter:
        """The fitted pipeline as what it computes: the vocabulary, the idf weights and the regression's."""
        if self.model is None:
            raise CalibrationError("the caption filter is not fitted")
        tfidf, regression = self.model.steps[0][1], self.model.steps[-1][1]
        return LinearCaptionFilter(
            dict(sorted((k, int(v)) for k, v in tfidf.vocabulary_.items())),
            np.asarray(tfidf.idf_, np.float64),
            regression.coef_[0].astype(np.float64),
            float(regression.intercept_[0]),
            dict(self.report),
        )


@dataclass(frozen=True)
class LinearCaptionFilter:
    """A fitted caption filter: TF-IDF of the stored vocabulary's 1-2-grams (sublinear tf, L2-normalised, the
    scikit-learn formula), then the regression's logit. Stored as JSON; applied without refitting anything."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: float
    report: dict[str, float]

    def predict(self, captions: list[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import CountVectorizer

        if not captions:
            return np.zeros(0)
        counts = CountVectorizer(vocabulary=self.vocabulary, ngram_range=(1, 2)).transform(captions).astype(np.float64)
        counts.data = 1 + np.log(counts.data)  # sublinear tf
        tfidf = counts.multiply(self.idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
        logits = (tfidf @ self.coef) / np.where(norms > 0, norms, 1.0) + self.intercept
        return 1 / (1 + np.exp(-logits))

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocabulary": self.vocabulary,
            "idf": self.idf.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearCaptionFilter:
        return cls(
            d["vocabulary"],
            np.asarray(d["idf"], np.float64),
            np.asarray(d["coef"], np.float64),
            float(d["intercept"]),
            d["report"],
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def latest_judgements(labels: pl.DataFrame) -> pl.DataFrame:
    """Each reviewer's latest good or bad label of each item, whichever score's page it was given on."""
    judged = labels.filter(pl.col("label").is_in(["good", "bad"]))
    return judged.unique(["reviewer", "item"], keep="last", maintain_order=True)


# A score bad at one end keeps what is above its cut; motion and temporal consistency are bad at both ends.
SIDES: dict[str, Side] = {"aesthetic": "above", "clarity": "above", "temporal": "between", "motion": "between"}


def fit_from_labels(labels: pl.DataFrame, values: pl.DataFrame, score: str, target: Target) -> FittedCut:
    """A calibrated rule's cut for ``score``: ``labels`` (item, score, label: each reviewer's latest) joined with
    the score's current values (video_id, score), good vs bad (skips left out)."""
    judged = labels.filter((pl.col("score") == score) & pl.col("label").is_in(["good", "bad"]))
    joined = judged.join(values.select(pl.col("video_id").alias("item"), pl.col("score").alias("value")), on="item")
    return fit_cut(joined["value"].to_numpy(), (joined["label"] == "good").to_numpy(), target, SIDES[score])


def describe_cut(cut: FittedCut, target: Target) -> str:
    """How a calibrated cut was fitted, for the thresholds table and every reason it gives."""
    return (
        f"calibrated {target.spec()} on {cut.labelled} labels: precision {cut.precision:.2f}, recall {cut.recall:.2f}"
    )
