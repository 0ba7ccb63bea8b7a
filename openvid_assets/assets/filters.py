"""Content filters: per-shard content measures (from the CLIP pass's frames and embeddings) and near-duplicates
across the whole pool. Their rules are applied in sql/quality_candidates.sql, beside the quality scores."""

import hashlib
import json

import polars as pl
from dagster import AssetExecutionContext, DataVersion, Failure, MaterializeResult, MetadataValue, asset

from openvid_assets.assets.manifest import MANIFEST, video_manifest
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import GLOBAL_STEP, IO_STEP
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import ModelsResource, OpenVidStore
from openvid_assets.assets.scores import EMBEDDINGS, SHARD_ASSET, aesthetic_scores, frame_embeddings
from openvid_assets.assets.shards import each_shard
from openvid_assets.store import run_sql
from openvid_assets.store.selection import MixedModelsError, require_one_identity

CONTENT, DUPLICATES, DUPLICATE_PAIRS = "content_scores", "near_duplicates", "near_duplicate_pairs"
GLOBAL = "global"
INDEX_FOLDER = "index/near_duplicates"  # the faiss index and its members, under the data root
DUPLICATES_SCHEMA = {"video_id": pl.String, "duplicate_of": pl.String, "cosine": pl.Float64, "group_size": pl.Int64}


@asset(
    **{**SHARD_ASSET, "group_name": "filters"},
    **IO_STEP,
    deps=[frame_embeddings, video_manifest, recipe_key("filters")],
    code_version="1",
    kinds={"pytorch", "parquet"},
    description="Content measures per video, from the CLIP pass (no second decode, no second CLIP forward): "
    "exposure and colour inside the picture, black-border crop box, burnt-in text area (PP-OCR), NSFW "
    "(safety-checker concepts on the stored embeddings).",
)
@measured_step
def content_scores(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    from openvid_assets.models.shards.content import content_rows

    tables, recipe = store.tables(), store.recipe().recipe
    nsfw = models.nsfw(recipe.models) if recipe.filters.nsfw != "off" else None

    def one(shard: str) -> MaterializeResult:
        table = content_rows(tables.read(EMBEDDINGS, shard), tables.read(MANIFEST, shard), nsfw)
        path = tables.write(CONTENT, shard, table)
        ok = table.filter(pl.col("status") == "ok")
        return MaterializeResult(
            metadata={
                "dagster/row_count": table.height,
                "ok": ok.height,
                "failed": table.height - ok.height,
                "bordered": int(ok["bordered"].sum() or 0),
                "with_text": ok.filter(pl.col("text_area") > 0.01).height,
                "mean_brightness": round(float(ok["brightness"].mean() or 0), 2),
                "nsfw_model": nsfw.name if nsfw else "off",
                "path": MetadataValue.path(path),
            }
        )

    return each_shard(context, one)


def _decisions_version(table: pl.DataFrame) -> str:
    rows = table.select("video_id", "duplicate_of").sort("video_id").rows()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


@asset(
    **GLOBAL_STEP,
    deps=[frame_embeddings, aesthetic_scores, content_scores, video_manifest, recipe_key("filters")],
    group_name="filters",
    code_version="1",
    kinds={"faiss", "duckdb", "parquet"},
    description="Near-duplicate videos across the whole pool (CLIP cosine of mean embeddings >= "
    "filters.near_duplicate): new shards are added to a persistent faiss index and searched against every "
    "earlier video; each group keeps one video (picture size, then duration, then aesthetics).",
)
def near_duplicates(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    from openvid_assets.curation.duplicates import (
        DuplicateSearch,
        add_shards,
        duplicate_groups,
        exact_cosines,
        load_state,
        save_state,
        shards_to_read,
    )
    from openvid_assets.models.shards.tables import video_embeddings

    tables, recipe = store.tables(), store.recipe().recipe
    threshold = recipe.near_duplicate_threshold()
    if threshold is None:
        table = pl.DataFrame(schema=DUPLICATES_SCHEMA)
        tables.write(DUPLICATES, GLOBAL, table)
        return MaterializeResult(
            metadata={"near_duplicates": 0, "rule": "off"}, data_version=DataVersion(_decisions_version(table))
        )
    try:
        require_one_identity(tables, EMBEDDINGS, store.data_root)
    except MixedModelsError as e:
        raise Failure(description=str(e), allow_retries=False) from None
    search = DuplicateSearch(threshold=threshold)
    shards = tables.shards(EMBEDDINGS)
    stamps = {shard: tables.stamp(EMBEDDINGS, shard) or "" for shard in shards}
    # The embeddings' model (one for every shard, checked above) and the search settings: another starts over.
    model = (
        (
            tables.read(EMBEDDINGS, shards[0])
            .filter(pl.col("status") == "ok")
            .select("model", "weights_digest", "params_hash")
            .head(1)
            .rows()
        )
        if shards
        else []
    )
    identity = json.dumps([model, search.params()])
    state = load_state(tables.fs, INDEX_FOLDER)
    todo = shards_to_read(state, stamps, identity)
    new = {}
    for shard in todo:
        ids, vectors = video_embeddings(tables.read(EMBEDDINGS, shard))
        new[shard] = (stamps[shard], ids, vectors)
    state, pairs, complete = add_shards(state, new, identity, search)
    previous = tables.read_if_exists(DUPLICATE_PAIRS, GLOBAL)
    if not complete and previous is not None:
        pairs = pl.concat([previous, pairs]).unique(["a", "b"], keep="first").sort("a", "b")
    # Pairs before the index: a run cut short between the two re-reads its shards and finds them again.
    tables.write(DUPLICATE_PAIRS, GLOBAL, pairs)
    if state is not None:
        save_state(tables.fs, INDEX_FOLDER, state)
    groups = duplicate_groups(pairs)
    decisions = run_sql(
        "near_duplicates",
        {
            "groups": groups,
            "manifest": tables.scan_source(MANIFEST, tables.shards(MANIFEST)),
            "content": tables.scan_source(CONTENT, tables.shards(CONTENT)),
            "aesthetic": tables.scan_source("aesthetic_scores", tables.shards("aesthetic_scores")),
        },
    )
    cosines = (
        exact_cosines(
            state.vectors_of(decisions["video_id"].to_list()), state.vectors_of(decisions["duplicate_of"].to_list())
        )
        if decisions.height
        else []
    )
    decisions = decisions.with_columns(cosine=pl.Series(cosines, dtype=pl.Float64))
    table = decisions.select(list(DUPLICATES_SCHEMA)).cast(DUPLICATES_SCHEMA)
    tables.write(DUPLICATES, GLOBAL, table)
    context.log.info(
        f"near-duplicates: {len(todo)} shard(s) indexed, {state.index.size if state else 0} videos "
        f"in the index, {pairs.height} pair(s), {table.height} video(s) dropped"
    )
    return MaterializeResult(
        metadata={
            "near_duplicates": table.height,
            "pairs": pairs.height,
            "groups": groups["group"].n_unique(),
            "indexed_videos": state.index.size if state else 0,
            "shards_added": len(todo),
            "index": ("exact" if state is None or state.index.exact else "ivf"),
            "threshold": threshold,
            "sample": markdown_table(table.head(10)),
        },
        data_version=DataVersion(_decisions_version(table)),
    )
