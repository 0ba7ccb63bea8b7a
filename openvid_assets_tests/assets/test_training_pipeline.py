"""MVDiT from the run command's dataset: cached latents, a training run that resumes, samples as mp4."""

import json
import subprocess

import polars as pl
import pytest
import torch
from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize

from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.assets.training import eval_prompts
from openvid_assets.store import run_sql
from openvid_assets.definitions import build_definitions
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe
from openvid_assets import samples
from openvid_assets.mvdit.data import LatentClips, LatentSettings, clip_frame_indices, training_size

SMALL = {"steps": 6, "checkpoint_every": 3, "batch_size": 2, "sample_steps": 4, "prompts": ["a red fox in snow"]}


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """A curated dataset made by the pipeline (filters off): 4 + 2 + 1 captioned clips."""
    src = tmp_path_factory.mktemp("train_src")
    samples.hard_cuts(src, scene_frames=(30, 30, 30, 30))
    samples.cross_dissolve(src)
    samples.smooth_pan(src, num_frames=40)
    data = tmp_path_factory.mktemp("train_data")
    store_recipe(
        str(data), models={"profile": "offline"}, captions=FAST["captions"], selection={"thresholds_off": True}
    )
    defs = build_definitions(str(data))
    with DagsterInstance.ephemeral() as instance:
        tables = defs.resources["store"].tables()
        _, keys = store_new_shards(tables, str(src), shard_size=2)
        instance.add_dynamic_partitions(shards_partitions.name, keys)
        materialize_pipeline(defs, instance)
    return data, tables


def _train(data, **overrides):
    defs = build_definitions(str(data), mvdit={**SMALL, **overrides})
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(shards_partitions.name, defs.resources["store"].tables().shards("shard_lists"))
        materialize_pipeline(defs, instance, training=True)
        event = instance.get_latest_materialization_event(AssetKey("mvdit_checkpoint"))
        samples = instance.get_latest_materialization_event(AssetKey("mvdit_samples"))
        (scored,) = [
            entry.asset_check_evaluation
            for run in instance.get_runs()
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
            if entry.asset_check_evaluation.asset_key == AssetKey("mvdit_eval")
        ]
        assert scored.check_name == "samples_scored" and scored.passed, scored  # the eval's blocking check
        return (
            {k: v.value for k, v in event.asset_materialization.metadata.items()},
            {k: v.value for k, v in samples.asset_materialization.metadata.items()},
        )


def test_training_then_sampling_from_the_curated_clips(curated):
    data, tables = curated
    export = pl.read_parquet(data / "exports" / "openvid.parquet")
    assert export.height == 7

    meta, samples = _train(data)
    latents = pl.concat([tables.read("mvdit_latents", s) for s in tables.shards("mvdit_latents")])
    assert sorted(latents["clip_id"]) == sorted(export["clip_id"]) and set(latents["status"]) == {"ok"}
    # 4 frames every 3rd, short side 32 px -> tiny VAE (x2) latents of 16 x (16 * 16/9 rounded to 8 px)
    assert {tuple(s) for s in latents["latent_shape"].to_list()} == {(4, 4, 16, 28)}
    assert meta["clips"] == 7 and meta["resumed_from_step"] == 0 and meta["steps_now"] == 6
    assert meta["loss_curve"].startswith("![") and meta["median_step_s"] > 0
    run_dir = data / "checkpoints" / "mvdit-tiny-32px-4f-full"
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-00000003.pt", "step-00000006.pt"]
    (video,) = samples["files"]
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "json",
            video,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (32, 32, 4)
    # The samples are scored with the paper's metrics, against the prompt each shows.
    scored = tables.read("mvdit_eval", "global").row(0, named=True)
    assert (scored["video"], scored["prompt"], scored["status"]) == (video.rsplit("/", 1)[1], "a red fox in snow", "ok")
    assert scored["checkpoint"] == "step-00000006" and scored["definition"] == "evalcrafter"
    assert 0 <= scored["vqa_a"] <= 100 and 0 <= scored["vqa_t"] <= 100  # EvalCrafter's 0-100 scale
    assert -1 <= scored["clip_score"] <= 1 and -1 <= scored["clip_temporal"] <= 1 and scored["warping_error"] >= 0

    # Asking for more steps resumes from the last checkpoint; latents are reused, not re-encoded.
    latents = {s: tables.read("mvdit_latents", s) for s in tables.shards("mvdit_latents")}
    more, _ = _train(data, steps=8)
    assert more["resumed_from_step"] == 6 and more["steps_now"] == 2
    assert (run_dir / "step-00000008.pt").is_file()
    assert all(tables.read("mvdit_latents", s).equals(frame) for s, frame in latents.items())  # reused rows

    # Several processes: the asset launches torchrun (DDP; Gloo on CPU) and reads rank 0's result back.
    ddp, _ = _train(data, steps=10, processes=2)
    assert ddp["processes"] == 2 and ddp["resumed_from_step"] == 8 and ddp["steps_now"] == 2
    saved = torch.load(run_dir / "step-00000010.pt", weights_only=True)
    assert saved["step"] == 10 and len(saved["rng"]) == 2


def test_evaluation_prompts_are_curated_captions_no_training_run_reads(curated):
    data, tables = curated
    defs = build_definitions(str(data), mvdit={"held_out": 10})
    with DagsterInstance.ephemeral() as instance:
        materialize([eval_prompts], instance=instance, resources=defs.resources)
    prompts = tables.read("eval_prompts", "global")
    export = pl.read_parquet(data / "exports" / "openvid.parquet")
    assert prompts.height == 3 and prompts["held_out"].all()  # 10 asked, at most half of the 7 clips
    assert set(prompts["clip_id"]) <= set(export["clip_id"])
    assert dict(zip(prompts["clip_id"], prompts["prompt"])) == {
        c: export.filter(pl.col("clip_id") == c)["caption"][0] for c in prompts["clip_id"]
    }
    latents = export.select(
        "clip_id",
        status=pl.lit("ok"),
        model=pl.lit("m"),
        params_hash=pl.lit("p"),
        latent_path=pl.col("clip_id") + ".pt",
        latent_shape=pl.lit([4, 4, 16, 28]),
    )
    trained = run_sql(
        "training_clips",
        {"dataset": export, "latents": latents, "held_out": prompts},
        {"model": "m", "params_hash": "p"},
    )
    assert set(trained["clip_id"]) == set(export["clip_id"]) - set(prompts["clip_id"])


def test_training_on_an_empty_hd_subset_fails_the_run(curated):
    data, _ = curated
    defs = build_definitions(str(data), mvdit={**SMALL, "dataset": "hd"})
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(shards_partitions.name, defs.resources["store"].tables().shards("shard_lists"))
        with pytest.raises(Exception, match="(?i)no .*clip|empty"):  # no 1080p clip here: training refuses
            materialize_pipeline(defs, instance, training=True)


def test_sample_frames_and_sizes():
    settings = LatentSettings(frames=16, interval=3, resolution=256)
    assert clip_frame_indices(100, settings) == list(range(27, 27 + 46, 3))  # centred, every 3rd
    assert clip_frame_indices(31, settings) == list(range(0, 31, 2))  # short clip: widest interval that fits
    assert clip_frame_indices(15, settings) is None
    assert training_size(1920, 1080, 256) == (456, 256) and training_size(720, 1280, 256) == (256, 456)


def test_random_crops_and_flips_follow_the_seed(tmp_path):
    latent = torch.arange(4 * 2 * 6 * 10, dtype=torch.float16).reshape(4, 2, 6, 10)
    item = {
        "latent": latent,
        "caption": torch.zeros(8, 32, dtype=torch.float16),
        "mask": torch.ones(8, dtype=torch.bool),
    }
    path = tmp_path / "clip.pt"
    torch.save(item, path)
    data = LatentClips([str(path)], lambda p: open(p, "rb").read(), crop=6)
    torch.manual_seed(0)
    first = [data[0][0] for _ in range(8)]
    torch.manual_seed(0)
    again = [data[0][0] for _ in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(x.shape == (4, 2, 6, 6) for x in first)
    assert len({x[0, 0, 0, :].tolist().__repr__() for x in first}) > 1  # different windows / flips
    with pytest.raises(ValueError, match="smaller than"):
        LatentClips([str(path)], lambda p: open(p, "rb").read(), crop=8)[0]


def test_the_samples_scored_check_fails_when_no_sample_is_scored_and_warns_when_some_fail():
    from dagster import AssetCheckSeverity

    from openvid_assets.assets.training import samples_scored_result

    def table(*errors):
        return pl.DataFrame(
            {"status": ["ok" if e is None else "failed" for e in errors], "error": list(errors)},
            schema={"status": pl.String, "error": pl.String},
        )

    assert samples_scored_result(table(None, None)).passed
    some = samples_scored_result(table(None, "ValueError: no frames", "ValueError: no frames"))
    assert not some.passed and some.severity == AssetCheckSeverity.WARN
    assert some.metadata["reasons"].text == "ValueError: no frames (2)"
    none = samples_scored_result(table("OSError: truncated"))
    assert not none.passed and none.severity == AssetCheckSeverity.ERROR and none.metadata["scored"].value == 0
