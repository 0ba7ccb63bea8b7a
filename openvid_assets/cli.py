"""Command line: ``openvid-assets run|register|train|sample|quickstart``.

``run`` registers shards and materializes every asset through Dagster, in
dependency order, against the same instance the UI reads, so each run shows in
``dagster dev`` afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from openvid_assets import settings
from openvid_assets.models.profiles import PROFILES


def _instance():
    """The Dagster instance: $DAGSTER_HOME if set, else the project's embedded one (./dagster.yaml)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    cwd = Path.cwd()
    home = cwd / ".dagster"
    home.mkdir(exist_ok=True)
    # The project's dagster.yaml: the one here, else the one of this source checkout.
    candidates = [cwd, Path(__file__).resolve().parents[1]]
    config_dir = next((d for d in candidates if (d / "dagster.yaml").is_file()), home)
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config_dir)))


def _register(defs, instance, source: str, shard_size: int) -> tuple[int, list[str]]:
    from openvid_assets.assets.shards import store_new_shards

    store = defs.resources["store"]
    listed, stored = store_new_shards(store.tables(), source, shard_size, store.s3_client())
    _sync_partitions(defs, instance)
    return listed, stored


def _sync_partitions(defs, instance) -> None:
    """Register every shard stored under the data root as a partition of this Dagster instance (in batches)."""
    from openvid_assets.assets.shards import register_partitions
    from openvid_assets.store.shards import ShardRegistry

    register_partitions(instance, ShardRegistry(defs.resources["store"].tables()).keys())


def cmd_register(args: argparse.Namespace) -> int:
    from openvid_assets.definitions import build_definitions

    defs = build_definitions(args.data_root)
    with _instance() as instance:
        listed, new = _register(defs, instance, args.source, args.shard_size)
    print(f"{listed} videos listed in {args.source}; {len(new)} new shard(s): {', '.join(new) or '-'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from openvid_assets.definitions import build_definitions
    from openvid_assets.assets.runner import run_pipeline

    started = time.monotonic()
    rules = dict(item.split("=", 1) for item in args.rule)
    defs = build_definitions(args.data_root, args.models, rules=rules, thresholds_off=args.no_filters or None)
    defs.resources["models"].get_profile().check_weights()  # before any run starts
    with _instance() as instance:
        listed, new = _register(defs, instance, args.source, args.shard_size)
        store, models = defs.resources["store"], defs.resources["models"]
        print(f"Source {args.source}: {listed} videos; {len(new)} new shard(s). "
              f"Data root: {store.data_root}. Models: {models.profile}.")  # fmt: skip
        report = run_pipeline(defs, instance, force=args.force)
    print(report.summary(time.monotonic() - started))
    return 0 if report.ok else 1


def cmd_train(args: argparse.Namespace) -> int:
    from openvid_assets.assets.runner import run_pipeline
    from openvid_assets.definitions import build_definitions

    started = time.monotonic()
    overrides = {k: v for k, v in {"steps": args.steps, "dataset": args.dataset, "prompts": args.prompt,
                                   "preset": args.preset, "device": args.device}.items() if v}  # fmt: skip
    defs = build_definitions(args.data_root, args.models, mvdit=overrides)
    shape = defs.resources["mvdit"].shape()
    with _instance() as instance:
        _sync_partitions(defs, instance)
        print(f"Training {shape.name} ({shape.steps} steps, batch {shape.batch_size}) on {args.data_root}; "
              f"models: {args.models}.")  # fmt: skip
        report = run_pipeline(defs, instance, training=True)
    print(report.summary(time.monotonic() - started))
    return 0 if report.ok else 1


def cmd_sample(args: argparse.Namespace) -> int:
    from openvid_assets.media.synthetic import write_sample_set

    started = time.monotonic()
    specs = write_sample_set(Path(args.out), include_bad=not args.no_bad, include_hd=not args.no_hd)
    bad = sum(s.bad for s in specs)
    print(f"Wrote {len(specs)} sample videos ({bad} deliberately bad) to {args.out} in {time.monotonic() - started:.1f}s")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    sample = Path(args.sample)
    if not sample.exists():
        cmd_sample(argparse.Namespace(out=str(sample), no_bad=False, no_hd=False))
    run_args = argparse.Namespace(source=str(sample), data_root=args.data_root, shard_size=args.shard_size,
                                  force=False, models="offline", rule=[], no_filters=False)  # fmt: skip
    code = cmd_run(run_args)
    if code == 0:
        print("Browse the runs and assets: dagster dev   (then open http://localhost:3000)")
    return code


def _rule_arg(text: str) -> str:
    from openvid_assets.store.selection import SCORES, Rule

    name, sep, rule = text.partition("=")
    if not sep or name not in SCORES:
        raise argparse.ArgumentTypeError(f"expected SCORE=RULE with SCORE one of {', '.join(SCORES)}: {text!r}")
    try:
        Rule.parse(rule)  # a malformed rule is rejected here, before anything runs
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=settings.data_root(),
                   help="folder or s3://bucket/prefix for all outputs (default: $OPENVID_DATA_ROOT or ./data)")  # fmt: skip
    p.add_argument("--shard-size", type=int, default=settings.shard_size(),
                   help="videos per new shard (default: $OPENVID_SHARD_SIZE or 1000)")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="openvid-assets", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="register shards and materialize the whole pipeline")
    run.add_argument("--source", required=True, help="folder or s3://bucket/prefix of raw videos")
    run.add_argument("--force", action="store_true", help="recompute shards that already have outputs")
    run.add_argument("--models", choices=sorted(PROFILES), default=os.environ.get("OPENVID_MODELS") or "paper",
                     help="model profile: paper (real weights, the default) or offline (tiny random models)")  # fmt: skip
    run.add_argument("--rule", action="append", default=[], type=_rule_arg, metavar="SCORE=RULE",
                     help="selection rule, e.g. aesthetic=min:4.5 or motion=band:10:95 (repeatable)")  # fmt: skip
    run.add_argument("--no-filters", action="store_true",
                     help="keep every decodable video (same as OPENVID_THRESHOLDS=off)")  # fmt: skip
    _add_common(run)
    run.set_defaults(func=cmd_run)

    tr = sub.add_parser("train", help="train MVDiT on the curated dataset of a data root, then sample from it")
    tr.add_argument("--models", choices=sorted(PROFILES), default=os.environ.get("OPENVID_MODELS") or "paper",
                    help="profile: paper (XL/2, sd-vae-ft-ema, T5-XXL) or offline (tiny, CPU)")  # fmt: skip
    tr.add_argument("--steps", type=int, help="train until this step (default: the profile's)")
    tr.add_argument("--dataset", choices=["full", "hd"], help="openvid.parquet (default) or the HD subset")
    tr.add_argument("--preset", choices=["XL/2", "tiny"], help="model size (default: the profile's)")
    tr.add_argument("--prompt", action="append", help="prompt to sample (repeatable; default: dataset captions)")
    tr.add_argument("--device", help="auto (default), cpu, cuda, ...")
    _add_common(tr)
    tr.set_defaults(func=cmd_train)

    reg = sub.add_parser("register", help="register shards for new videos in a source, run nothing")
    reg.add_argument("--source", required=True, help="folder or s3://bucket/prefix of raw videos")
    _add_common(reg)
    reg.set_defaults(func=cmd_register)

    sample = sub.add_parser("sample", help="generate small test videos with known properties")
    sample.add_argument("out", help="folder to write them to")
    sample.add_argument("--no-bad", action="store_true", help="skip the deliberately broken files")
    sample.add_argument("--no-hd", action="store_true", help="skip the 1920x1080 video")
    sample.set_defaults(func=cmd_sample)

    quick = sub.add_parser("quickstart", help="generate a sample (if missing) and run it with the offline models")
    quick.add_argument("--sample", default="sample", help="sample folder (default: ./sample)")
    _add_common(quick)
    quick.set_defaults(shard_size=8)  # small shards so the demo shows several partitions
    quick.set_defaults(func=cmd_quickstart)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "shard_size", 1) <= 0:
        print("error: --shard-size must be positive", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:  # MissingWeightsError is a FileNotFoundError
        print(f"error: {e}", file=sys.stderr)
        return 2
