import numpy as np
import polars as pl
import pytest

from openvid_assets.store.selection import (
    DEFAULT_RULES,
    Rule,
    RuleError,
    compute_thresholds,
    parse_rules,
    version_of,
)
from openvid_assets.store.sql import run_sql


def scores(values, ids=None, status=None) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame(
        {
            "video_id": ids or [f"v{i}" for i in range(n)],
            "source_uri": [f"/s/{i}.mp4" for i in range(n)],
            "status": status or ["ok"] * n,
            "error": [None] * n,
            "score": values,
        }
    )


@pytest.mark.parametrize(
    "text",
    [
        "top:150",
        "top:-1",
        "top:0",
        "band:90:10",
        "range:3:1",
        "min:x",
        "top",
        "band:1",
        "median:5",
        "min:nan",
        "max:inf",
        "",
    ],
)
def test_malformed_rules_are_rejected_with_a_reason(text):
    with pytest.raises(RuleError):
        Rule.parse(text)


def test_unknown_score_names_are_rejected():
    with pytest.raises(RuleError, match="unknown score"):
        parse_rules({"beauty": "top:20"})


def test_rules_round_trip_and_describe_themselves():
    assert Rule.parse("TOP:20").spec() == "top:20" and Rule.parse("top:20").describe() == "top 20%"
    assert Rule.parse("band:5:90").describe() == "band p5-p90"
    assert Rule.parse("min:4.5").describe() == "min 4.5"
    assert parse_rules({}) == {k: Rule.parse(v) for k, v in DEFAULT_RULES.items()}
    assert all(r.kind == "off" for r in parse_rules({"aesthetic": "min:5"}, all_off=True).values())


def test_thresholds_match_independently_computed_percentiles():
    rng = np.random.default_rng(3)
    values = rng.normal(5, 1, 997)
    table = scores(values.tolist())
    rules = parse_rules({"aesthetic": "top:20", "temporal": "band:5:90", "motion": "range:4:6"})
    cut = compute_thresholds(rules, {"aesthetic": table, "temporal": table, "motion": table}, "v")
    rows = {r["score"]: r for r in cut.iter_rows(named=True)}
    # numpy's default percentile is the same linear interpolation as DuckDB's quantile_cont
    assert rows["aesthetic"]["lower"] == pytest.approx(np.percentile(values, 80)) and rows["aesthetic"]["upper"] is None
    assert rows["temporal"]["lower"] == pytest.approx(np.percentile(values, 5))
    assert rows["temporal"]["upper"] == pytest.approx(np.percentile(values, 90))
    assert (rows["motion"]["lower"], rows["motion"]["upper"]) == (4.0, 6.0)
    assert all(r["videos"] == 997 for r in rows.values())


def test_failed_rows_and_duplicate_content_do_not_skew_thresholds():
    table = scores(
        [1.0, 2.0, 3.0, 4.0, 4.0, 999.0],
        ids=["a", "b", "c", "d", "d", "e"],
        status=["ok", "ok", "ok", "ok", "ok", "failed"],
    )
    cut = compute_thresholds(parse_rules({}), {"aesthetic": table}, "v").row(0, named=True)
    assert cut["videos"] == 4  # d counted once, e (failed) not at all
    assert cut["lower"] == pytest.approx(np.percentile([1, 2, 3, 4], 80))


def test_version_changes_with_the_rules_and_with_the_inputs():
    rules = parse_rules({})
    assert version_of(rules, "inputs-1") == version_of(parse_rules({}), "inputs-1")
    assert version_of(rules, "inputs-1") != version_of(rules, "inputs-2")
    assert version_of(rules, "inputs-1") != version_of(parse_rules({"aesthetic": "top:30"}), "inputs-1")


def _thresholds(**cuts) -> pl.DataFrame:
    rows = [
        {"score": k, "rule": "r", "description": d, "lower": lo, "upper": hi, "videos": 1, "version": "v1"}
        for k, (lo, hi, d) in cuts.items()
    ]
    return pl.DataFrame(rows)


def test_intersection_and_reasons_in_sql():
    a = scores([6.0, 4.0, 6.0, 6.0, 6.0])
    t = scores([0.95, 0.95, 0.5, 0.95, 0.95])
    m = scores([2.0, 2.0, 2.0, 50.0, 2.0])
    m = m.with_columns(
        status=pl.Series(["ok", "ok", "ok", "ok", "failed"]),
        error=pl.Series([None, None, None, None, "decode failed: boom"]),
    )
    th = _thresholds(
        aesthetic=(5.0, None, "top 20%"), temporal=(0.9, 0.99, "band p5-p90"), motion=(1.0, 10.0, "band p10-p95")
    )
    out = run_sql(
        "quality_candidates", {"aesthetic": a, "temporal": t, "motion": m, "thresholds": th, **content_inputs(a)}
    )
    rows = {r["source_uri"]: r for r in out.iter_rows(named=True)}
    assert rows["/s/0.mp4"]["candidate"] and rows["/s/0.mp4"]["quality_reason"] is None
    assert rows["/s/1.mp4"]["quality_reason"] == "aesthetic 4 < 5 (top 20%)"
    assert rows["/s/2.mp4"]["quality_reason"] == "temporal 0.5 < 0.9 (band p5-p90)"
    assert rows["/s/3.mp4"]["quality_reason"] == "motion 50 > 10 (band p10-p95)"
    assert not rows["/s/4.mp4"]["candidate"] and rows["/s/4.mp4"]["failure"] == "motion: decode failed: boom"
    assert out["thresholds_version"].unique().to_list() == ["v1"]


def test_a_video_the_codec_pre_filter_skipped_is_dropped_with_its_reason_not_failed():
    a = scores([6.0, 6.0])
    why = "static by its motion vectors: codec_motion 0 < 0.005 (min 0.005); flow network not run"
    m = scores([2.0, None]).with_columns(status=pl.Series(["ok", "skipped"]), error=pl.Series([None, why]))
    inputs = content_inputs(a)
    inputs["codec"] = a.select("video_id", "source_uri").with_columns(status=pl.lit("ok"), score=pl.Series([0.2, 0.0]))
    th = _thresholds(aesthetic=(5.0, None, "top 20%"), motion=(1.0, 10.0, "band p10-p95"))
    out = run_sql("quality_candidates", {"aesthetic": a, "temporal": a, "motion": m, "thresholds": th, **inputs})
    kept, skipped = out.sort("source_uri").iter_rows(named=True)
    assert kept["candidate"] and kept["codec_motion"] == 0.2
    assert not skipped["candidate"] and skipped["failure"] is None and skipped["motion_ok"] is False
    assert skipped["quality_reason"] == why and skipped["codec_motion"] == 0.0


def content_inputs(scored: pl.DataFrame, **changes) -> dict[str, pl.DataFrame]:
    """Content rows of ordinary, text-free videos for ``scored`` (``changes``: column -> values), no
    near-duplicates, and the default content rules."""
    from openvid_assets.assets.filters import DUPLICATES_SCHEMA
    from openvid_assets.models.shards.tables import CONTENT_SCHEMA
    from openvid_assets.models.shards.tables import CODEC_MOTION_SCHEMA, SCORE_SCHEMA
    from openvid_assets.recipe import Recipe

    n = scored.height
    ordinary = {
        "brightness": [120.0] * n,
        "dark_share": [0.01] * n,
        "bright_share": [0.01] * n,
        "contrast": [30.0] * n,
        "colourfulness": [40.0] * n,
        "text_area": [0.0] * n,
        "nsfw": [-0.3] * n,
    }
    content = scored.select("video_id", "source_uri", "status", "error").with_columns(
        **{k: pl.Series(changes.get(k, v)) for k, v in ordinary.items()},
        crop_x=0,
        crop_y=0,
        crop_w=160,
        crop_h=90,
        bordered=False,
        model=pl.lit("m"),
        weights_digest=pl.lit("d"),
    )
    return {
        "content": content.cast(CONTENT_SCHEMA).select(list(CONTENT_SCHEMA)),
        "duplicates": pl.DataFrame(schema=DUPLICATES_SCHEMA),
        "filters": Recipe().filters.table(),
        "suitability": pl.DataFrame(schema=SCORE_SCHEMA),
        "codec": pl.DataFrame(schema=CODEC_MOTION_SCHEMA),
    }  # no learned filter fitted


def test_content_rules_and_near_duplicates_drop_with_readable_reasons():
    a = scores([6.0] * 5)
    inputs = content_inputs(
        a,
        brightness=[120.0, 10.0, 250.0, 120.0, 120.0],
        text_area=[0.0, 0.0, 0.0, 0.2, None],
        bright_share=[0.01, 0.0, 0.9, 0.01, 0.01],
    )
    ids = a["video_id"].to_list()
    inputs["duplicates"] = pl.DataFrame(
        {"video_id": [ids[4]], "duplicate_of": [ids[0]], "cosine": [0.9912], "group_size": [2]},
        schema=inputs["duplicates"].schema,
    )
    th = _thresholds(aesthetic=(5.0, None, "top 20%"))
    out = run_sql("quality_candidates", {"aesthetic": a, "temporal": a, "motion": a, "thresholds": th, **inputs})
    rows = [r for r in out.sort("source_uri").iter_rows(named=True)]
    assert rows[0]["candidate"] and rows[0]["content_reason"] is None and rows[0]["duplicate_reason"] is None
    assert rows[1]["content_reason"] == "too dark: brightness 10 < 30 (range 30-225)"
    assert rows[2]["content_reason"] == (
        "overexposed: bright_share 0.9 > 0.5 (max 0.5); too bright: brightness 250 > 225 (range 30-225)"
    )
    assert rows[3]["content_reason"] == "burnt-in text: text_area 0.2 > 0.03 (max 0.03)"
    assert rows[4]["duplicate_reason"] == f"near-duplicate of {ids[0]} (cos 0.991)"
    assert rows[4]["content_reason"] is None  # a measure not taken (no text frames) is not judged
    assert [r["candidate"] for r in rows] == [True, False, False, False, False]


def test_lineage_check_finds_missing_and_duplicated_videos():
    manifest = pl.DataFrame({"source_uri": ["/a", "/b", "/c"]})
    lineage = pl.DataFrame({"source_uri": ["/a", "/a", "/z"]})
    check = run_sql("lineage_check", {"manifest": manifest, "lineage": lineage}).row(0, named=True)
    assert (check["missing"], check["duplicated"], check["unknown"]) == (2, 1, 1)


def test_the_learned_filter_is_judged_by_its_content_rule_and_only_when_on():
    from openvid_assets.recipe import FilterSettings

    a = scores([6.0] * 4)
    inputs = content_inputs(a)
    inputs["suitability"] = a.with_columns(
        score=pl.Series([0.9, 0.2, 0.5, None]), status=pl.Series(["ok", "ok", "ok", "failed"])
    )
    th = _thresholds(aesthetic=(5.0, None, "top 20%"))
    args = {"aesthetic": a, "temporal": a, "motion": a, "thresholds": th, **inputs}
    off = run_sql("quality_candidates", args).sort("source_uri")
    assert off["candidate"].all() and off["suitability"].to_list() == [0.9, 0.2, 0.5, None]
    on = run_sql("quality_candidates", {**args, "filters": FilterSettings(suitability="min:0.5").table()})
    rows = on.sort("source_uri").iter_rows(named=True)
    assert [r["content_reason"] for r in rows] == [
        None,
        "unsuitable (learned filter): suitability 0.2 < 0.5 (min 0.5)",
        None,
        None,
    ]
