"""The data ablation (the paper's Table 9) end to end on the sample set: variants selected in SQL from the recipe's
score tables, a tiny MVDiT run per variant on held-out-free clips, samples and scores, and the report."""

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from openvid_assets.assets.ablation import VARIANTS, ablation_report
from openvid_assets.assets.training import eval_prompts
from openvid_assets.definitions import ABLATION_JOB, ABLATION_SHARD_JOB, TRAINING_SHARD_JOB, build_definitions
from openvid_assets import samples
from openvid_assets.mvdit.ablation import FILTERS, parse_variant, parse_variants
from openvid_assets.mvdit.evaluate import METRICS
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, register_shards, store_recipe

pytestmark = pytest.mark.slow  # the whole pipeline, then six recipe variants

TINY_RUN = {"steps": 2, "checkpoint_every": 2, "batch_size": 1, "sample_steps": 2, "held_out": 2}
RULES = {"aesthetic": "top:60", "temporal": "band:5:95", "motion": "band:5:95", "clarity": "top:70"}


def test_variant_names_say_what_they_apply():
    assert parse_variant("all").filters == FILTERS and parse_variant("pool").filters == ()
    assert parse_variant("no_clarity").filters == ("aesthetic", "temporal", "motion")
    assert parse_variant("no_aesthetic_motion").filters == ("temporal", "clarity")
    assert parse_variant("only_motion").filters == ("motion",) and parse_variant("pool").label == "none"
    for bad in ("none", "no_", "no_sharpness", "only_aesthetic_blur"):
        with pytest.raises(ValueError, match="ablation variant"):
            parse_variant(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_variants(["all", "all"])


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    src, data = tmp_path_factory.mktemp("ablation_src"), tmp_path_factory.mktemp("ablation_data")
    samples.write_sample_set(src, include_hd=False)
    store_recipe(str(data), FAST, selection=RULES)
    defs = build_definitions(str(data), mvdit=TINY_RUN)
    with DagsterInstance.ephemeral() as instance:
        shards = register_shards(defs, instance, str(src), shard_size=8)
        materialize_pipeline(defs, instance)  # the recipe
        for shard in shards:  # the recipe's latents, then the ablation's own steps
            defs.resolve_job_def(TRAINING_SHARD_JOB).execute_in_process(instance=instance, partition_key=shard)
            defs.resolve_job_def(ABLATION_SHARD_JOB).execute_in_process(instance=instance, partition_key=shard)
        materialize([eval_prompts], instance=instance, resources=defs.resources)
        for variant in VARIANTS:
            defs.resolve_job_def(ABLATION_JOB).execute_in_process(instance=instance, partition_key=variant.name)
        materialize([ablation_report], instance=instance, resources=defs.resources)
        meta = instance.get_latest_materialization_event(AssetKey("ablation_report")).asset_materialization.metadata
        yield defs.resources["store"].tables(), shards, meta


def test_variants_select_their_videos_from_the_recipes_scores(ablation):
    tables, shards, _ = ablation
    members = pl.concat([tables.read("ablation_pool", s) for s in shards])
    videos = {v: set(members.filter(pl.col("variant") == v)["video_id"]) for v in members["variant"].unique()}
    selected = pl.concat([tables.read("selected_videos", s) for s in shards]).filter(pl.col("selected"))
    assert videos["all"] == set(selected["video_id"]) and videos["all"]  # the recipe's own selection
    for name in ("no_aesthetic", "no_temporal", "no_motion", "no_clarity"):
        assert videos["all"] <= videos[name] <= videos["pool"]
    assert videos["no_aesthetic"] > videos["all"]  # dropping top:60 aesthetics lets more in
    judged = pl.concat([tables.read("quality_candidates", s) for s in shards]).filter(
        pl.col("failure").is_null() & pl.col("duplicate_reason").is_null() & pl.col("content_reason").is_null()
    )
    assert videos["pool"] == set(judged["video_id"])  # no filter: every decodable, unique video
    # Clarity of the videos only an ablation variant needs was scored apart; the recipe's table is untouched.
    extra = pl.concat([tables.read("ablation_clarity", s) for s in shards])
    recipe_scored = pl.concat([tables.read("clarity_scores", s) for s in shards])
    assert extra.height and not set(extra["video_id"]) & set(recipe_scored["video_id"])
    # The recipe's clips are reused; the ablation clips only the videos the recipe did not select.
    own = pl.concat([tables.read("ablation_clips", s) for s in shards])
    assert set(own["video_id"]) == videos["pool"] - videos["all"]


def test_each_variant_trains_samples_and_is_scored_like_table_9(ablation):
    tables, _, meta = ablation
    prompts = tables.read("eval_prompts", "global")
    assert prompts.height == 2 and prompts["clip_id"].null_count() == 0  # held out of the curated captions
    report = pl.read_csv(tables.fs.local_path("exports/ablation.csv"))
    assert report["variant"].to_list() == [v.name for v in VARIANTS]
    for row, variant in zip(report.iter_rows(named=True), VARIANTS):
        assert [row[f] == "yes" for f in FILTERS] == [f in variant.filters for f in FILTERS]
        assert row["scored"] == prompts.height and row["steps"] == TINY_RUN["steps"]
        assert all(row[m] is not None for m in METRICS)
    by_variant = {r["variant"]: r for r in report.iter_rows(named=True)}
    assert by_variant["pool"]["clips"] > by_variant["all"]["clips"] > 0
    # The same prompts for every variant, and no variant trained on a held-out clip.
    evals = pl.concat([tables.read("ablation_eval", v.name) for v in VARIANTS])
    assert evals.group_by("variant").agg(pl.col("prompt").sort()).get_column("prompt").n_unique() == 1
    curated = pl.read_parquet(tables.fs.local_path("exports/openvid.parquet"))
    assert by_variant["all"]["clips"] == curated.height - prompts.height
    markdown = tables.fs.get("exports/ablation.md").decode()
    assert "| variant | aesthetic | temporal | motion | clarity | videos | clips |" in markdown
    assert meta["charts"].value.count("![") == len(METRICS) and "no_clarity" in meta["table"].value
