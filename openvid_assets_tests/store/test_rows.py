import polars as pl

from openvid_assets.store.rows import KEY_COLUMNS, RowKey, reusable_rows


def _rows(key: RowKey, statuses: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"video_id": f"v{i}", "status": s, **key.columns()} for i, s in enumerate(statuses)],
        schema={"video_id": pl.String, "status": pl.String, **KEY_COLUMNS},
    )


def test_rows_are_reused_only_for_the_same_model_weights_and_params():
    key = RowKey("unimatch", "abc", {"frames": 10})
    table = _rows(key, ["ok", "failed", "ok"])
    assert reusable_rows(table, key)["video_id"].to_list() == ["v0", "v2"]  # failed rows are retried
    assert reusable_rows(table, key, statuses=("ok", "failed")).height == 3
    for other in (
        RowKey("farneback", "abc", {"frames": 10}),
        RowKey("unimatch", "def", {"frames": 10}),
        RowKey("unimatch", "abc", {"frames": 11}),
    ):
        assert reusable_rows(table, other).height == 0, other
    assert RowKey("m", "w", {"b": 1, "a": 2}).params_hash == RowKey("m", "w", {"a": 2, "b": 1}).params_hash


def test_nothing_to_reuse_without_an_earlier_table_or_its_key():
    key = RowKey("m", "w", {})
    assert reusable_rows(None, key) is None
    assert reusable_rows(pl.DataFrame({"video_id": ["v"], "status": ["ok"]}), key) is None


def test_a_table_without_model_columns_matches_on_its_params():
    # Clip rows carry only the params (one tool, no weights): their key is matched on what they have.
    key = RowKey("cut-cascade+ffmpeg", "", {"min_clip_s": 1.0})
    table = _rows(key, ["ok", "no_clips", "failed"]).drop("model", "weights_digest")
    assert reusable_rows(table, key, statuses=("ok", "no_clips"))["video_id"].to_list() == ["v0", "v1"]
    assert reusable_rows(table, RowKey("cut-cascade+ffmpeg", "", {"min_clip_s": 2.0}), statuses=("ok",)).height == 0
