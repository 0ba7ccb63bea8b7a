"""MVDiT on the curated clips: cached latents (per shard), a training run and samples (global).

These assets are in the ``mvdit`` group, which the run command leaves out unless
asked (``openvid-assets train`` or ``run --train``): curating does not imply training.
"""

import json
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from openvid_assets.assets.clips import CAPTIONS, CLIPS, captions
from openvid_assets.assets.lineage import curated_dataset, hd_subset
from openvid_assets.assets.manifest import MANIFEST
from openvid_assets.assets.policies import TRAINING_SHARD_STEP, TRAINING_STEP
from openvid_assets.assets.progress import progress_callback
from openvid_assets.assets.resources import MVDiTResource, OpenVidStore, RunShape
from openvid_assets.assets.scores import _video_opener
from openvid_assets.assets.selection import all_shards
from openvid_assets.assets.shards import each_shard, shards_partitions
from openvid_assets.charts import line_image
from openvid_assets.store import TableStore, run_sql

SAMPLES_INDEX = "samples.json"
EVAL, EVAL_PROMPTS = "mvdit_eval", "eval_prompts"

if TYPE_CHECKING:
    from openvid_assets.mvdit.model import MVDiTConfig

LATENTS = "mvdit_latents"
GROUP = "mvdit"


def encode_latents(
    context: AssetExecutionContext,
    store: OpenVidStore,
    mvdit: MVDiTResource,
    clips_table: str,
    captions_table: str,
    table: str,
) -> MaterializeResult:
    """Encode one shard's captioned clips (``clips_table`` + ``captions_table``) into ``table``: the recipe's
    clips for mvdit_latents, the ablation's own for ablation_latents."""
    from openvid_assets.mvdit.data import encode_shard, latent_tasks, load_encoders  # torch: at run time

    tables = store.tables()
    shape = mvdit.shape(store.recipe().recipe.models.profile)
    encoders = load_encoders(shape.vae, shape.text_encoder, mvdit.device)  # once for every shard of the run

    def one(shard: str) -> MaterializeResult:
        tasks = latent_tasks(
            tables.read(clips_table, shard), tables.read(captions_table, shard), tables.read(MANIFEST, shard)
        )

        def put(clip_id: str, data: bytes) -> str:
            rel = f"latents/{shard}/{clip_id}.pt"
            tables.fs.put(rel, data)
            return rel

        result = encode_shard(
            tasks,
            encoders,
            shape.latents(),
            _video_opener(store, tables, shard),
            put,
            tables.fs.exists,
            previous=tables.read_if_exists(table, shard),
            progress=progress_callback(context, "encoded"),
        )
        path = tables.write(table, shard, result.table)
        failed = result.table.filter(pl.col("status") == "failed")
        return MaterializeResult(
            metadata={
                "dagster/row_count": result.table.height,
                "encoded_now": result.computed,
                "reused": result.reused,
                "failed": failed.height,
                "first_failure": failed["error"][0] if failed.height else "",
                "encoders": encoders.name,
                "path": MetadataValue.path(path),
            }
        )

    return each_shard(context, one)


@asset(
    partitions_def=shards_partitions,
    group_name=GROUP,
    deps=[captions],
    code_version="1",
    **TRAINING_SHARD_STEP,
    kinds={"pytorch", "parquet"},
    description="VAE latents (16 frames every 3rd, short side at the training resolution) and T5 caption "
    "features of every captioned clip, cached per clip under latents/<shard>/.",
)
def mvdit_latents(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    return encode_latents(context, store, mvdit, CLIPS, CAPTIONS, LATENTS)


def dataset_export(tables: TableStore, shape: RunShape) -> pl.DataFrame:
    """The export a run trains on: the full dataset or its HD subset."""
    export = "openvid_hd.parquet" if shape.dataset == "hd" else "openvid.parquet"
    if not tables.fs.exists(f"exports/{export}"):
        raise FileNotFoundError(f"exports/{export} does not exist yet: materialize the dataset first")
    return pl.read_parquet(tables.fs.get(f"exports/{export}"))


def held_out(tables: TableStore) -> pl.DataFrame:
    """The evaluation prompts (eval_prompts): held-out clip ids, which no training run reads."""
    from openvid_assets.mvdit.evaluate import PROMPT_SCHEMA

    table = tables.read_if_exists(EVAL_PROMPTS, "global")
    return table if table is not None else pl.DataFrame(schema=PROMPT_SCHEMA)


def latents_key(shape: RunShape) -> dict[str, str]:
    """Which latents a run reads: those of its encoders and sample shape."""
    from openvid_assets.store.rows import RowKey

    key = RowKey(f"{shape.vae}+{shape.text_encoder}", "", shape.latents().params())
    return {"model": key.model, "params_hash": key.params_hash}


def training_clips(tables: TableStore, shape: RunShape) -> pl.DataFrame:
    """The dataset's clips (full or HD export) that have latents of this run's shape, less the held-out
    evaluation clips (sql/training_clips.sql)."""
    return run_sql(
        "training_clips",
        {
            "dataset": dataset_export(tables, shape),
            "latents": all_shards(tables, LATENTS),
            "held_out": held_out(tables),
        },
        latents_key(shape),
    )


def _model_config(shape: RunShape) -> "MVDiTConfig":
    from openvid_assets.mvdit.data import vae_downsample
    from openvid_assets.mvdit.model import preset

    return preset(
        shape.preset,
        frames=shape.frames,
        height=shape.resolution,
        width=shape.resolution,
        vae_downsample=vae_downsample(shape.vae),
    )


@asset(
    **TRAINING_STEP,
    deps=[curated_dataset, hd_subset],
    group_name=GROUP,
    code_version="1",
    kinds={"duckdb", "parquet"},
    description="The prompts every sample is drawn for and scored against: the mvdit resource's prompts, or by "
    "default a held-out slice of the curated captions (clips picked by a hash of their id) that no training "
    "run reads; a dataset too small to spare any gives training captions, and says so.",
)
def eval_prompts(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    from openvid_assets.mvdit.evaluate import given_prompts, held_out_prompts

    tables = store.tables()
    profile = store.recipe().recipe.models.profile
    table = (
        given_prompts(mvdit.prompts)
        if mvdit.prompts
        else held_out_prompts(dataset_export(tables, mvdit.shape(profile)), mvdit.held_out)
    )
    origin = "given" if mvdit.prompts else "held out" if table["held_out"].any() else "training captions"
    if origin == "training captions":
        context.log.warning(
            "the dataset is too small to hold a clip out: the samples are scored on captions the "
            "model trained on; give the mvdit resource prompts for a fair test"
        )
    path = tables.write(EVAL_PROMPTS, "global", table)
    context.log.info(f"{table.height} evaluation prompt(s), {origin}")
    return MaterializeResult(
        metadata={
            "prompts": table.height,
            "origin": origin,
            "held_out": int(table["held_out"].sum()),
            "list": MetadataValue.json(table["prompt"].to_list()),
            "path": MetadataValue.path(path),
        }
    )


def train_run(
    context: AssetExecutionContext,
    store: OpenVidStore,
    mvdit: MVDiTResource,
    clips: pl.DataFrame,
    directory: Path,
    what: str,
) -> dict[str, Any]:
    """Train (or resume) one MVDiT run on ``clips`` with checkpoints in ``directory``; its metadata. Every run of
    one resource config has the same budget, initialisation and seed: only the data differs."""
    from openvid_assets.mvdit.data import vae_downsample
    from openvid_assets.mvdit.launch import TrainingSpec, run as run_training, run_distributed
    from openvid_assets.mvdit.train import TrainConfig, latest_checkpoint

    tables, shape = store.tables(), mvdit.shape(store.recipe().recipe.models.profile)
    if clips.is_empty():  # a fact of the data, not a hiccup: retrying cannot help
        raise Failure(
            f"no clips to train on: {what} has no clip with latents of this run's shape; materialize "
            "the dataset and its latents first",
            allow_retries=False,
        )
    train_config = TrainConfig(
        steps=shape.steps,
        batch_size=shape.batch_size,
        lr=shape.lr,
        checkpoint_dir=directory,
        checkpoint_every=shape.checkpoint_every,
        grad_checkpointing=mvdit.grad_checkpointing,
        device=mvdit.device,
        log_every=max(1, shape.steps // 20),
    )
    spec = TrainingSpec(
        data_root=tables.root,
        latent_paths=clips["latent_path"].to_list(),
        crop=shape.resolution // vae_downsample(shape.vae),
        model=asdict(_model_config(shape)),
        train=asdict(train_config),
        init_from=mvdit.init_from,
    )
    processes = mvdit.process_count()
    start = "resuming" if latest_checkpoint(directory) else (mvdit.init_from or "from scratch")
    context.log.info(
        f"training {shape.name} on {len(spec.latent_paths)} clips of {what} to step {shape.steps} "
        f"({start}), {processes} process(es)"
    )
    if processes > 1:
        with tempfile.TemporaryDirectory(prefix="openvid-train-") as workdir:
            result = run_distributed(spec, processes, Path(workdir))
    else:
        result = run_training(spec)
    final = latest_checkpoint(directory)
    steps = list(range(result.start_step + 1, result.start_step + len(result.losses) + 1))
    meta: dict[str, Any] = {
        "run": shape.name,
        "clips": len(spec.latent_paths),
        "steps": shape.steps,
        "processes": processes,
        "resumed_from_step": result.start_step,
        "steps_now": len(result.losses),
        "checkpoint": MetadataValue.path(str(final)) if final else "none",
    }
    if result.losses:
        tail = result.losses[-max(1, len(result.losses) // 10) :]
        meta.update(
            first_loss=round(result.losses[0], 5),
            final_loss=round(statistics.mean(tail), 5),
            median_step_s=round(statistics.median(result.step_times), 4),
            loss_curve=MetadataValue.md(line_image(steps, result.losses, f"{shape.name} loss", "loss")),
        )
    return meta


@asset(
    **TRAINING_STEP,
    deps=[curated_dataset, hd_subset, mvdit_latents, eval_prompts],
    group_name=GROUP,
    code_version="1",
    kinds={"pytorch"},
    description="An MVDiT training run on the curated clips' cached latents (Adam, EMA, IDDPM hybrid loss, "
    "caption dropout for CFG), the held-out evaluation clips left out; resumes from the last checkpoint under "
    "checkpoints/; loss curve in metadata.",
)
def mvdit_checkpoint(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    tables, profile = store.tables(), store.recipe().recipe.models.profile
    shape = mvdit.shape(profile)
    meta = train_run(
        context,
        store,
        mvdit,
        training_clips(tables, shape),
        mvdit.checkpoints(tables, profile),
        f"the {shape.dataset} export",
    )
    return MaterializeResult(metadata=meta)


def _latest(mvdit: MVDiTResource, directory: Path, asset_name: str) -> Path:
    from openvid_assets.mvdit.train import latest_checkpoint

    checkpoint = latest_checkpoint(directory)
    if checkpoint is None:
        raise FileNotFoundError(f"no MVDiT checkpoint in {directory} yet: materialize {asset_name} first")
    return checkpoint


def sample_run(
    context: AssetExecutionContext,
    store: OpenVidStore,
    mvdit: MVDiTResource,
    directory: Path,
    folder: str,
    asset_name: str,
) -> MaterializeResult:
    """Sample the evaluation prompts (one seed for all) from the latest checkpoint in ``directory`` into
    ``folder``/<step>/, with a samples.json saying which prompt each file shows."""
    from openvid_assets.mvdit.data import load_encoders
    from openvid_assets.mvdit.sample import sample_to_files

    tables, shape = store.tables(), mvdit.shape(store.recipe().recipe.models.profile)
    checkpoint = _latest(mvdit, directory, asset_name)
    prompts = held_out(tables)["prompt"].to_list()
    if not prompts:
        raise FileNotFoundError("no evaluation prompts: materialize eval_prompts first")
    encoders = load_encoders(shape.vae, shape.text_encoder, mvdit.device)
    folder = f"{folder}/{checkpoint.stem}"
    local = tables.fs.local_path(folder)
    with tempfile.TemporaryDirectory(prefix="openvid-samples-") as staging:
        out = Path(local or staging)
        paths = sample_to_files(
            checkpoint,
            prompts,
            out,
            _model_config(shape),
            encoders.text,
            encoders.vae,
            steps=mvdit.sample_steps,
            cfg_scale=mvdit.cfg_scale,
            device=mvdit.device,
            cache_interval=mvdit.cache_interval,
        )
        if local is None:  # S3 data root: upload what was written locally
            for p in paths:
                tables.fs.put(f"{folder}/{p.name}", p.read_bytes())
    # Which prompt each file shows: what the evaluation scores them against.
    tables.fs.put(
        f"{folder}/{SAMPLES_INDEX}",
        json.dumps([{"video": p.name, "prompt": prompt} for p, prompt in zip(paths, prompts)], indent=1).encode(),
    )
    uris = [tables.fs.uri(f"{folder}/{p.name}") for p in paths]
    context.log.info(f"wrote {len(uris)} sample(s) to {tables.fs.uri(folder)}")
    return MaterializeResult(
        metadata={
            "checkpoint": MetadataValue.path(str(checkpoint)),
            "videos": len(uris),
            "cache_interval": mvdit.cache_interval,
            "prompts": MetadataValue.json(prompts),
            "files": MetadataValue.json(uris),
        }
    )


def samples_folder(store: OpenVidStore, mvdit: MVDiTResource) -> str:
    return f"samples/{mvdit.shape(store.recipe().recipe.models.profile).name}"


@asset(
    **TRAINING_STEP,
    deps=[mvdit_checkpoint, eval_prompts],
    group_name=GROUP,
    code_version="1",
    kinds={"pytorch", "mp4"},
    description="Videos sampled from the latest MVDiT checkpoint (EMA weights; 100 steps, CFG 7.0 by default) "
    "for the evaluation prompts, written as mp4 under samples/<run>/step-N/.",
)
def mvdit_samples(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    tables, profile = store.tables(), store.recipe().recipe.models.profile
    return sample_run(
        context, store, mvdit, mvdit.checkpoints(tables, profile), samples_folder(store, mvdit), "mvdit_checkpoint"
    )


def evaluate_run(
    context: AssetExecutionContext,
    store: OpenVidStore,
    mvdit: MVDiTResource,
    directory: Path,
    folder: str,
    table_name: str,
    partition: str,
    asset_name: str,
    **columns: str,
) -> MaterializeResult:
    """Score the samples of the latest checkpoint in ``directory`` (under ``folder``/<step>/) with the paper's
    metrics into the table ``table_name``/``partition`` (with ``columns`` as constant columns); the means in
    metadata."""
    from openvid_assets.mvdit.evaluate import METRICS, evaluate_samples, evaluator_for

    tables, profile = store.tables(), store.recipe().recipe.models.resolved_profile()
    checkpoint = _latest(mvdit, directory, asset_name)
    folder = f"{folder}/{checkpoint.stem}"
    if not tables.fs.exists(f"{folder}/{SAMPLES_INDEX}"):
        raise FileNotFoundError(f"no samples of {checkpoint.stem} in {folder} yet: materialize the samples first")
    index = json.loads(tables.fs.get(f"{folder}/{SAMPLES_INDEX}"))
    with tempfile.TemporaryDirectory(prefix="openvid-eval-") as staging:
        local = tables.fs.local_path(folder)
        if local is None:  # S3 data root: the decoders read local files
            for item in index:
                Path(staging, item["video"]).write_bytes(tables.fs.get(f"{folder}/{item['video']}"))
        base = Path(local or staging)
        table = evaluate_samples(
            [(base / item["video"], item["prompt"]) for item in index],
            evaluator_for(profile, mvdit.device, mvdit.metrics),
        )
    table = table.with_columns(
        run=pl.lit(mvdit.shape(profile.name).name),
        checkpoint=pl.lit(checkpoint.stem),
        **{k: pl.lit(v) for k, v in columns.items()},
    )
    path = tables.write(table_name, partition, table)
    ok = table.filter(pl.col("status") == "ok")
    means = {m: round(float(ok[m].mean()), 4) for m in METRICS} if ok.height else {}
    context.log.info(f"{checkpoint.stem}: {ok.height} of {table.height} sample(s) scored ({mvdit.metrics}): {means}")
    return MaterializeResult(
        metadata={
            "checkpoint": checkpoint.stem,
            "metrics": mvdit.metrics,
            "videos": table.height,
            "scored": ok.height,
            **means,
            "path": MetadataValue.path(path),
        },
        check_results=[samples_scored_result(table)],
    )


SAMPLES_SCORED = "samples_scored"


def samples_scored_spec(asset_name: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        SAMPLES_SCORED,
        asset=asset_name,
        blocking=True,  # no scored sample: nothing after it (a report of means) has numbers to show
        description="Every sample got the paper's metrics: an error when none did, a warning when some failed.",
    )


def samples_scored_result(table: pl.DataFrame) -> AssetCheckResult:
    """Passed when every sample is scored; ERROR when none is (means of nothing), WARN when some failed."""
    failed = table.filter(pl.col("status") != "ok")
    scored = table.height - failed.height
    reasons = failed.group_by("error").len().sort("len", descending=True) if failed.height else failed
    return AssetCheckResult(
        check_name=SAMPLES_SCORED,
        passed=failed.height == 0,
        severity=AssetCheckSeverity.ERROR if scored == 0 else AssetCheckSeverity.WARN,
        metadata={
            "scored": scored,
            "failed": failed.height,
            "reasons": "; ".join(f"{row['error']} ({row['len']})" for row in reasons.iter_rows(named=True)),
        },
    )


@asset(
    **TRAINING_STEP,
    deps=[mvdit_samples],
    group_name=GROUP,
    code_version="3",  # 3: the metrics under named definitions (EvalCrafter's)
    kinds={"pytorch", "duckdb"},
    check_specs=[samples_scored_spec("mvdit_eval")],
    description="The paper's metrics (Table 3) of the latest checkpoint's samples, one row per video: VQA_A and "
    "VQA_T (DOVER, both branches), CLIP score (prompt vs frames) and CLIP temporal score, warping error "
    "(RAFT flow, occlusions and motion boundaries left out), BLIP-BLEU, as EvalCrafter computes them (the mvdit "
    "resource's metrics: evalcrafter, or evalcrafter-corrected); the means in metadata. Formulas: "
    "mvdit/metrics/evalcrafter.py, mvdit/evaluate.py.",
)
def mvdit_eval(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    tables, profile = store.tables(), store.recipe().recipe.models.profile
    return evaluate_run(
        context,
        store,
        mvdit,
        mvdit.checkpoints(tables, profile),
        samples_folder(store, mvdit),
        EVAL,
        "global",
        "mvdit_checkpoint",
    )
