"""The review page: people label stratified samples of a score's videos, several reviewers at once.

A Starlette app (the web framework Dagster's own webserver runs on; no front-end build step: one HTML page
with its script) over a data root:

- ``GET /``: the page (``page.html``): a grid of previews sampled across the chosen score's range, equal
  numbers per quantile band, each with its score, source and caption; the current cut lines; keyboard
  labelling (good / bad / skip, issue tags); an "ordered" view of the same samples by score with the cut.
- ``GET /api/scores``: the scores with tables; ``GET /api/sample``: the sample (sql/review_sample.sql);
  ``GET /api/labels``: one reviewer's latest labels; ``POST /api/labels``: save labels (store/labels.py:
  append-only, one atomic part per save); ``GET /preview/<shard>/<file>``: a preview or poster file;
  ``GET /api/curve`` (JSON) and ``/api/curve.png``: the score's precision/recall curve over everyone's labels
  and the cut a target (``f1``, ``precision:P``) picks, as a calibrated rule would fit it.

Every request is checked: unknown scores, items that are not in the data root, malformed JSON and odd
reviewer names are refused with a 400 and the reason; a file outside ``previews/`` is never served.
"""

from __future__ import annotations

import json
import re
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from openvid_assets.models.shards.tables import CAPTION_SCHEMA
from openvid_assets.store import TableStore, run_sql
from openvid_assets.store.labels import LABELS, TAGS, LabelError, LabelStore
from openvid_assets.store.selection import SCORE_TABLES, THRESHOLDS_SCHEMA, Target
from openvid_assets.store.shards import ShardRegistry

PREVIEW_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,120}\.(webp|jpg)$")
SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MEDIA_TYPES = {"webp": "image/webp", "jpg": "image/jpeg"}
PAGE = Path(__file__).with_name("page.html")
# The scores a sample can be drawn across: the quality scores, and the learned filter's P(good).
REVIEW_SCORES = {**SCORE_TABLES, "suitability": "suitability_scores"}


class BadRequest(ValueError):
    pass


class ReviewData:
    """What the page reads from a data root; the item index is cached for a few seconds."""

    def __init__(self, data_root: str):
        self.tables = TableStore(data_root)
        self.labels = LabelStore(self.tables.fs)
        self._items: tuple[float, dict[str, str]] | None = None

    def scores(self) -> list[str]:
        return [name for name, table in REVIEW_SCORES.items() if self.tables.shards(table)]

    def items(self) -> dict[str, str]:
        """Every previewed item (video or clip id -> kind): labels for anything else are refused."""
        if self._items is None or time.monotonic() - self._items[0] > 5:
            shards = self.tables.shards("previews")
            table = (
                run_sql("review_items", {"previews": self.tables.scan_source("previews", shards)})
                if shards
                else pl.DataFrame(schema={"item": pl.String, "kind": pl.String})
            )
            self._items = (time.monotonic(), dict(zip(table["item"], table["kind"])))
        return self._items[1]

    def _all(self, asset: str, empty: dict[str, Any]) -> Any:
        shards = self.tables.shards(asset)
        return self.tables.scan_source(asset, shards) if shards else pl.DataFrame(schema=empty)

    @cached_property
    def _thresholds(self) -> pl.DataFrame:
        found = [
            self.tables.read(n, "global")
            for n in ("score_thresholds", "clarity_threshold")
            if self.tables.exists(n, "global")
        ]
        return (
            pl.concat([t.select(list(THRESHOLDS_SCHEMA)) for t in found])
            if found
            else pl.DataFrame(schema=THRESHOLDS_SCHEMA)
        )

    def sample(self, score: str, bands: int, per_band: int, seed: int) -> pl.DataFrame:
        if score not in self.scores():
            raise BadRequest(f"unknown score {score!r}; scores with tables: {', '.join(self.scores()) or 'none yet'}")
        if not self.tables.shards("previews"):
            raise BadRequest("no previews yet: materialize the previews asset (openvid-assets run makes them)")
        sources = ShardRegistry(self.tables).sources()
        inputs = {
            "scores": self.tables.scan_source(REVIEW_SCORES[score], self.tables.shards(REVIEW_SCORES[score])),
            "previews": self.tables.scan_source("previews", self.tables.shards("previews")),
            "sources": pl.DataFrame(
                {"shard": list(sources), "source": list(sources.values())},
                schema={"shard": pl.String, "source": pl.String},
            ),
            "captions": self._all("captions", CAPTION_SCHEMA),
            "thresholds": self._thresholds,
        }
        return run_sql(
            "review_sample", inputs, {"bands": bands, "per_band": per_band, "seed": str(seed), "score": score}
        )

    def curve(self, score: str, target: str) -> tuple[Any, Any]:
        """The score's precision/recall curve over every reviewer's latest labels on its page, and the cut the
        target picks (curation.calibration.fit_from_labels: what a calibrated rule would fit now)."""
        from openvid_assets.curation.calibration import CalibrationError, describe_cut, fit_from_labels

        if score not in SCORE_TABLES:
            raise BadRequest(f"no precision/recall curve for {score!r}: one of {', '.join(SCORE_TABLES)}")
        try:
            parsed = Target.parse(target)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        shards = self.tables.shards(SCORE_TABLES[score])
        labels = self.labels.latest().filter(pl.col("score") == score)
        try:
            if labels.is_empty() or not shards:
                raise CalibrationError(f"no {score} labels yet: label samples of {score} first")
            values = run_sql(
                "labelled_values", {"labels": labels, "scores": self.tables.scan_source(SCORE_TABLES[score], shards)}
            )
            cut = fit_from_labels(labels, values, score, parsed)
        except CalibrationError as e:
            return None, str(e)
        return cut, describe_cut(cut, parsed)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def create_app(data_root: str) -> Starlette:
    data = ReviewData(data_root)

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text().replace("__CONFIG__", json.dumps({"labels": LABELS, "tags": TAGS})))

    async def scores(request: Request) -> Response:
        return JSONResponse({"scores": data.scores()})

    async def sample(request: Request) -> Response:
        table = data.sample(
            request.query_params.get("score", ""),
            _int(request, "bands", 5, 1, 20),
            _int(request, "per_band", 8, 1, 200),
            _int(request, "seed", 0, 0, 2**31),
        )
        return JSONResponse({"items": table.to_dicts()})

    async def labels(request: Request) -> Response:
        if request.method == "GET":
            latest = data.labels.latest()
            reviewer, score = request.query_params.get("reviewer", ""), request.query_params.get("score", "")
            mine = latest.filter((pl.col("reviewer") == reviewer) & (pl.col("score") == score))
            return JSONResponse({"labels": mine.select("item", "label", "tags").to_dicts()})
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise BadRequest(
                "the body must be JSON: {reviewer, labels: [{item, score, score_value, label, tags}]}"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("labels"), list):
            raise BadRequest("the body must be {reviewer, labels: [...]}")
        saved = data.labels.append(body.get("reviewer"), body["labels"], data.items())
        return JSONResponse({"saved": len(body["labels"]), "part": saved})

    async def curve(request: Request) -> Response:
        cut, text = data.curve(request.query_params.get("score", ""), request.query_params.get("target", "f1"))
        if cut is None:
            return JSONResponse({"fitted": False, "reason": text})
        return JSONResponse(
            {
                "fitted": True,
                "description": text,
                "lower": cut.lower,
                "upper": cut.upper,
                "precision": cut.precision,
                "recall": cut.recall,
                "labelled": cut.labelled,
                "curve": cut.curve.to_dicts(),
            }
        )

    async def curve_png(request: Request) -> Response:
        from openvid_assets.charts import pr_curve_png  # the same plot as the thresholds' metadata

        score = request.query_params.get("score", "")
        cut, text = data.curve(score, request.query_params.get("target", "f1"))
        if cut is None:
            raise BadRequest(text)
        return Response(pr_curve_png(cut.curve, cut.lower, cut.upper, f"{score}: {text}"), media_type="image/png")

    async def preview(request: Request) -> Response:
        shard, name = request.path_params["shard"], request.path_params["name"]
        if not SHARD_NAME.match(shard) or not PREVIEW_FILE.match(name):
            return JSONResponse({"error": "not a preview file"}, status_code=404)
        rel = f"previews/{shard}/{name}"
        if not data.tables.fs.exists(rel):
            return JSONResponse({"error": "no such preview"}, status_code=404)
        return Response(
            data.tables.fs.get(rel),
            media_type=MEDIA_TYPES[name.rsplit(".", 1)[1]],
            headers={"Cache-Control": "max-age=3600"},
        )

    async def refused(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": str(error)}, status_code=400)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/scores", scores),
            Route("/api/sample", sample),
            Route("/api/labels", labels, methods=["GET", "POST"]),
            Route("/api/curve", curve),
            Route("/api/curve.png", curve_png),
            Route("/preview/{shard}/{name}", preview),
        ],
        exception_handlers={BadRequest: refused, LabelError: refused},
    )


def serve(data_root: str, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    uvicorn.run(create_app(data_root), host=host, port=port, log_level="warning")
