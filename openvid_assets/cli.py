"""Command line: ``openvid-assets run|register|recipe|train|sample|quickstart``.

``run`` stores the recipe its flags ask for under the data root, registers shards,
and submits the missing or stale parts of the graph as runs on the Dagster
instance the UI reads (several at once), then waits for them and sums up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import polars as pl

from openvid_assets import settings


def _config_dir() -> str | None:
    """Where the instance's dagster.yaml is when it is not in $DAGSTER_HOME: the project's embedded one."""
    if os.environ.get("DAGSTER_HOME"):
        return None
    cwd = Path.cwd()
    candidates = [cwd, Path(__file__).resolve().parents[1]]  # here, else this source checkout
    return str(next((d for d in candidates if (d / "dagster.yaml").is_file()), cwd / ".dagster"))


def _instance():
    """The Dagster instance: $DAGSTER_HOME if set, else the project's embedded one (./dagster.yaml).

    Opened under a lock in the instance folder: a brand-new SQLite instance opened by two commands at once would
    have its schema created twice (a corrupt alembic_version); one at a time, the second finds it made.
    """
    import fcntl

    from dagster import DagsterInstance

    config_dir = _config_dir()
    home = Path(os.environ["DAGSTER_HOME"]) if config_dir is None else Path.cwd() / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "openvid-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if config_dir is None:
            return DagsterInstance.get()
        return DagsterInstance.from_config(str(config_dir))


def _store(data_root: str):
    from dagster_aws.s3 import S3Resource

    from openvid_assets.assets.resources import OpenVidStore
    from openvid_assets.store.files import is_s3_uri

    # One spelling per data root (runs record it): local folders as absolute paths.
    root = data_root if is_s3_uri(data_root) else os.path.abspath(os.path.expanduser(data_root))
    return OpenVidStore(data_root=root, s3=S3Resource())


def _register(store, instance, source: str, shard_size: int) -> tuple[int, list[str]]:
    from openvid_assets.assets.shards import store_new_shards

    listed, stored = store_new_shards(store.tables(), source, shard_size, store.s3_client())
    _sync_partitions(store, instance)
    return listed, stored


def _register_recipe_sources(store, instance, recipe, shard_size: int) -> None:
    """Register every source the recipe declares, importing its metadata; report metadata rows that match no
    video. A metadata table that matches none, or a source that cannot be listed, stops before any run."""
    from openvid_assets.assets.shards import register_source
    from openvid_assets.media.sources import MetadataError

    for name, source in recipe.sources.items():
        try:
            listed, new, unmatched = register_source(
                store.tables(), source.uri, shard_size, store.s3_client(), name=name, metadata=source.metadata
            )
        except (MetadataError, ValueError, OSError) as e:
            raise SystemExit(f"error: source {name!r}: {e}") from None
        note = (
            f"; {len(unmatched)} metadata row(s) match no video (first: {', '.join(unmatched[:3])})"
            if unmatched
            else ""
        )
        print(f"Source {name} ({source.uri}): {listed} videos; {len(new)} new shard(s){note}.")
    _sync_partitions(store, instance)


def _sync_partitions(store, instance) -> None:
    """Register every shard stored under the data root as a partition of this Dagster instance (in batches)."""
    from openvid_assets.assets.shards import register_partitions
    from openvid_assets.store.shards import ShardRegistry

    register_partitions(instance, ShardRegistry(store.tables()).keys())


def _recipe_changes(args: argparse.Namespace) -> dict:
    """The recipe changes a command's flags ask for: {section: {field: value}}."""
    from openvid_assets.recipe import parse_changes

    changes = parse_changes(list(getattr(args, "set", None) or []))
    models = {
        k: v
        for k, v in {
            "profile": getattr(args, "models", None),
            "motion_backend": getattr(args, "motion_backend", None),
            "clarity_backend": getattr(args, "clarity_backend", None),
        }.items()
        if v
    }
    if models:
        changes.setdefault("models", {}).update(models)
    for item in getattr(args, "rule", None) or []:
        name, _, rule = item.partition("=")
        changes.setdefault("selection", {})[name] = rule
    if getattr(args, "no_filters", False):
        changes.setdefault("selection", {})["thresholds_off"] = True
    return changes


def _stored_recipe(store, args: argparse.Namespace):
    """Apply the command's recipe file and flags to the data root's recipe, storing a new version if they change
    it (``--recipe FILE`` replaces the recipe; the flags then change it)."""
    from openvid_assets.recipe import describe_change, read_recipe_file

    current = store.recipe()
    base = read_recipe_file(args.recipe) if getattr(args, "recipe", None) else current.recipe
    new = base.updated(_recipe_changes(args))
    if current.version and new == current.recipe:
        return current
    stored, _ = store.recipes().save(new)
    changed = describe_change(current.recipe, new) if current.version else ["first version (defaults and flags)"]
    print(f"Recipe {stored.label} stored under {store.data_root}/recipe/: " + "; ".join(changed))
    return stored


def cmd_register(args: argparse.Namespace) -> int:
    store = _store(args.data_root)
    with _instance() as instance:
        listed, new = _register(store, instance, args.source, args.shard_size)
    print(f"{listed} videos listed in {args.source}; {len(new)} new shard(s): {', '.join(new) or '-'}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from openvid_assets.review.app import serve

    print(f"Review page for {args.data_root}: http://{args.host}:{args.port}/  (Ctrl-C to stop)")
    serve(args.data_root, args.host, args.port)
    return 0


def _materialize(args: argparse.Namespace, store, training: bool, source: str | None = None) -> int:
    from openvid_assets.assets.engine import Workers, check_data_root, run_pipeline
    from openvid_assets.assets.history import run_command_prior
    from openvid_assets.assets.labels import record_labels
    from openvid_assets.assets.recipe import record_recipe
    from openvid_assets.definitions import build_definitions
    from openvid_assets.models.profiles import get_profile
    from openvid_assets.store.shards import ShardRegistry

    started = time.monotonic()
    workers = Workers.for_machine(args.workers)
    defs = build_definitions(store.data_root, getattr(args, "mvdit", None))
    with _instance() as instance:
        check_data_root(instance, store.data_root)  # before anything is written
        stored = _stored_recipe(store, args)
        m = stored.recipe.models
        get_profile(m.profile).with_backends(
            m.motion_backend or None, m.clarity_backend or None, m.caption_model or None
        ).check_weights(nsfw=stored.recipe.filters.nsfw != "off", evaluation=training)  # before any run starts
        if source and stored.recipe.sources:
            raise SystemExit(
                f"error: recipe {stored.label} declares its sources ({', '.join(stored.recipe.sources)});"
                " run without --source, or add the folder to the recipe's sources"
            )
        if source:
            listed, new = _register(store, instance, source, args.shard_size)
            print(
                f"Source {source}: {listed} videos; {len(new)} new shard(s). Data root: {store.data_root}. "
                f"Recipe {stored.label}: models {m.profile}."
            )
        elif stored.recipe.sources:
            _register_recipe_sources(store, instance, stored.recipe, args.shard_size)
            print(f"Data root: {store.data_root}. Recipe {stored.label}: models {m.profile}.")
        elif not training:
            raise SystemExit(
                "error: give --source FOLDER (or s3://bucket/prefix), or a recipe that declares sources "
                "(--recipe FILE; e.g. openvid_assets/recipes/openvid1m.yaml)"
            )
        else:
            _sync_partitions(store, instance)
        record_recipe(instance, stored)
        record_labels(instance, store.tables())  # new labels make the thresholds fitted from them stale
        where = f"{workers.gpus} GPU(s)" if workers.gpus else f"{workers.threads} thread(s) each"
        print(f"Workers: {workers.count} run(s) at once, {where}.", flush=True)
        prior = run_command_prior(instance, store.tables(), stored.recipe, args.shard_size)
        report = run_pipeline(
            defs,
            instance,
            store.data_root,
            ShardRegistry(store.tables()).keys(),
            workers,
            force=getattr(args, "force", False),
            training=training,
            config_dir=_config_dir(),
            resources={"mvdit": args.mvdit} if getattr(args, "mvdit", None) else None,
            print_line=lambda line: print(line, flush=True),
            prior=prior,
        )
    summarise(store.tables(), report)
    print(report.summary(time.monotonic() - started))
    return 0 if report.ok else 1


def summarise(tables, report) -> None:
    from openvid_assets.assets.lineage import LINEAGE
    from openvid_assets.assets.manifest import MANIFEST
    from openvid_assets.assets.selection import GLOBAL
    from openvid_assets.store import run_sql

    if tables.shards(MANIFEST):
        report.totals = run_sql("manifest_summary", {MANIFEST: tables.scan_source(MANIFEST)}).row(0, named=True)
    if tables.exists(LINEAGE, GLOBAL):
        outcome = run_sql("lineage_summary", {"lineage": tables.scan_source(LINEAGE, [GLOBAL])})
        report.outcome = [(r["status"], r["stage"], r["videos"]) for r in outcome.iter_rows(named=True)]


def cmd_run(args: argparse.Namespace) -> int:
    return _materialize(args, _store(args.data_root), training=False, source=args.source)


def _prompts(args: argparse.Namespace) -> list[str]:
    """--prompt values, then the lines of --prompts FILE (blank lines and # comments skipped)."""
    prompts = list(args.prompt or [])
    if args.prompts:
        try:
            lines = Path(args.prompts).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise SystemExit(f"--prompts {args.prompts}: cannot read it ({e})") from None
        prompts += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not prompts:
            raise SystemExit(f"--prompts {args.prompts}: no prompt in it (one per line)")
    return prompts


def cmd_train(args: argparse.Namespace) -> int:
    args.mvdit = {
        k: v
        for k, v in {
            "steps": args.steps,
            "dataset": args.dataset,
            "prompts": _prompts(args),
            "preset": args.preset,
            "device": args.device,
        }.items()
        if v
    }
    return _materialize(args, _store(args.data_root), training=True)


def cmd_recipe(args: argparse.Namespace) -> int:
    store = _store(args.data_root)
    if args.set or args.rule or args.recipe or args.models or args.motion_backend or args.clarity_backend:
        stored = _stored_recipe(store, args)
        with _instance() as instance:
            from openvid_assets.assets.recipe import record_recipe

            record_recipe(instance, stored)
    else:
        stored = store.recipe()
    where = f"{store.data_root}/recipe/v{stored.version:04d}.yaml" if stored.version else "not stored yet: defaults"
    print(f"# recipe {stored.label} ({where})\n{stored.recipe.to_yaml()}", end="")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from openvid_assets.assets.engine import Workers
    from openvid_assets.assets.history import estimate_source
    from openvid_assets.media.sources import local_folder_missing, normalize_source
    from openvid_assets.recipe import read_recipe_file
    from openvid_assets.store.files import is_s3_uri

    # Everything that can be wrong is found before the source is listed or probed.
    store = _store(args.data_root)
    recipe = read_recipe_file(args.recipe) if args.recipe else store.recipe().recipe
    source = normalize_source(args.source)
    if local_folder_missing(source):
        raise FileNotFoundError(f"source {args.source}: no such folder")
    if args.price is not None and args.price < 0:
        raise ValueError("--price must be zero or more (a price per device-hour)")
    client = store.s3_client_for(source) if is_s3_uri(source) else None
    if client is not None:
        bucket = source[len("s3://") :].split("/", 1)[0]
        client.head_bucket(Bucket=bucket)  # an unknown bucket or no access: an error before any listing
    with _instance() as instance:
        found = estimate_source(
            instance,
            store.tables(),
            recipe,
            source,
            client,
            machine=Workers.for_machine(args.workers),
            source=args.source_name,
            sample=args.sample,
            price=args.price,
        )
    print(found.report())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from openvid_assets.store.versions import Side, compare, parse_version

    here = _store(args.data_root).tables()
    a, b = parse_version(args.a), parse_version(args.b)
    if args.against:  # two data roots of the same sources: each side names its root
        there = _store(args.against).tables()
        sides = Side(here, a, f"{Path(args.data_root).name}-v{a}"), Side(there, b, f"{Path(args.against).name}-v{b}")
    else:
        sides = Side(here, a), Side(here, b)
    result = compare(*sides, out=here)
    overall = result.sources.filter(pl.col("source") == "all").row(0, named=True)
    print(
        f"{sides[0].label} vs {sides[1].label}: "
        + (
            "no video changed its fate, no cut line moved"
            if result.unchanged
            else f"{overall['entered']} entered, {overall['left']} left, {overall['moved']} moved, "
            f"{overall['recaptioned']} recaptioned; {overall['hours_gained'] - overall['hours_lost']:+.4g} h"
        )
    )
    print(f"report: {result.differences.rsplit('/', 1)[0]}/report.md\ndifferences: {result.differences}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from openvid_assets.samples import write_sample_set

    started = time.monotonic()
    specs = write_sample_set(Path(args.out), include_bad=not args.no_bad, include_hd=not args.no_hd)
    bad = sum(s.bad for s in specs)
    print(
        f"Wrote {len(specs)} sample videos ({bad} deliberately bad) to {args.out} in {time.monotonic() - started:.1f}s"
    )
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from openvid_assets.samples import write_clean_source
    from openvid_assets.recipe import quickstart_recipe

    sample, clean = Path(args.sample), Path(f"{args.sample}_clean")
    if not sample.exists():
        cmd_sample(argparse.Namespace(out=str(sample), no_bad=False, no_hd=False))
    if not clean.exists():
        write_clean_source(clean)
    recipe_file = Path(f"{args.sample}_recipe.yaml")
    recipe = quickstart_recipe(sample.absolute(), clean.absolute(), (clean / "captions.csv").absolute())
    recipe_file.write_text(
        "# The quickstart's recipe: openvid_assets/recipes/openvid1m.yaml on two generated sources\n" + recipe.to_yaml()
    )
    print(
        f"Sources: web = {sample} (every step), clean = {clean} (aesthetics + motion, its captions kept); "
        f"recipe {recipe_file}"
    )
    run_args = argparse.Namespace(
        source=None,
        recipe=str(recipe_file),
        data_root=args.data_root,
        shard_size=args.shard_size,
        force=False,
        models="offline",
        rule=[],
        no_filters=False,
        workers=args.workers,
    )
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


def _add_recipe_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        choices=["paper", "offline"],
        help="model profile: paper (real weights) or offline "
        "(tiny random models); stored in the recipe (a new data root starts with $OPENVID_MODELS or paper)",
    )
    p.add_argument(
        "--motion-backend",
        choices=["unimatch", "unimatch-tiny", "farneback"],
        help="motion model instead of the profile's (stored in the recipe)",
    )
    p.add_argument(
        "--clarity-backend",
        choices=["dover", "dover-tiny", "laplacian"],
        help="clarity model instead of the profile's (stored in the recipe)",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        type=_rule_arg,
        metavar="SCORE=RULE",
        help="selection rule, e.g. aesthetic=min:4.5 or motion=band:10:95 (repeatable; stored in the recipe)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="any recipe setting, e.g. clips.mode=none or captions.layout=grid (repeatable)",
    )


def _add_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once (default: one per GPU, pinned to it; else one single-threaded run per core)",
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root",
        default=settings.data_root(),
        help="folder or s3://bucket/prefix for all outputs (default: $OPENVID_DATA_ROOT or ./data)",
    )
    p.add_argument(
        "--shard-size",
        type=int,
        default=settings.shard_size(),
        help="videos per new shard (default: $OPENVID_SHARD_SIZE or 1000)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="openvid-assets", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="register shards and materialize the whole pipeline")
    run.add_argument(
        "--source",
        help="folder or s3://bucket/prefix of raw videos (one source, 'default'; not "
        "needed when the recipe declares its sources)",
    )
    run.add_argument(
        "--recipe",
        metavar="FILE",
        help="a recipe YAML file to store as the data root's recipe "
        "(e.g. openvid_assets/recipes/openvid1m.yaml; the other flags then change it)",
    )
    run.add_argument("--force", action="store_true", help="recompute shards that already have outputs")
    run.add_argument(
        "--no-filters", action="store_true", help="keep every decodable video (the recipe's selection.thresholds_off)"
    )
    _add_recipe_flags(run)
    _add_workers(run)
    _add_common(run)
    run.set_defaults(func=cmd_run)

    tr = sub.add_parser("train", help="train MVDiT on the curated dataset of a data root, then sample from it")
    tr.add_argument("--steps", type=int, help="train until this step (default: the profile's)")
    tr.add_argument("--dataset", choices=["full", "hd"], help="openvid.parquet (default) or the HD subset")
    tr.add_argument("--preset", choices=["XL/2", "tiny"], help="model size (default: the profile's)")
    tr.add_argument(
        "--prompt",
        action="append",
        help="prompt to sample and score (repeatable; default: held-out captions of the dataset)",
    )
    tr.add_argument("--prompts", metavar="FILE", help="a file of prompts, one per line (# comments skipped)")
    tr.add_argument("--device", help="auto (default), cpu, cuda, ...")
    _add_workers(tr)
    _add_common(tr)
    tr.set_defaults(func=cmd_train)

    rec = sub.add_parser(
        "recipe", help="show the data root's recipe, or change it (--recipe FILE, --set, --rule, --models ...)"
    )
    rec.add_argument("--recipe", metavar="FILE", help="a recipe YAML file to store as the data root's recipe")
    _add_recipe_flags(rec)
    _add_common(rec)
    rec.set_defaults(func=cmd_recipe)

    reg = sub.add_parser("register", help="register shards for new videos in a source, run nothing")
    reg.add_argument("--source", required=True, help="folder or s3://bucket/prefix of raw videos")
    _add_common(reg)
    reg.set_defaults(func=cmd_register)

    review = sub.add_parser("review", help="serve the review page: label samples of a score's videos in a browser")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    review.add_argument("--port", type=int, default=8765)
    _add_common(review)
    review.set_defaults(func=cmd_review)

    est = sub.add_parser(
        "estimate",
        help="what a recipe will cost on a source before running it: videos, hours, wall time and device-hours "
        "per step, from this instance's history (or a shipped table) and the recipe's pass rates",
    )
    est.add_argument("--source", required=True, help="folder or s3://bucket/prefix of raw videos")
    est.add_argument("--recipe", metavar="FILE", help="a recipe YAML file (default: the data root's recipe)")
    est.add_argument("--source-name", default="default", help="the recipe's source whose rules apply")
    est.add_argument("--sample", type=int, default=100, help="videos probed with ffprobe (default 100)")
    est.add_argument("--price", type=float, help="price per device-hour, for a cost")
    est.add_argument("--workers", type=int, help="runs at once (default: one per GPU, else one per core)")
    est.add_argument(
        "--data-root", default=settings.data_root(), help="whose history to use (default: $OPENVID_DATA_ROOT or ./data)"
    )
    est.set_defaults(func=cmd_estimate)

    cmp = sub.add_parser(
        "compare",
        help="what changed between two recipe versions of a data root (or two data roots): videos that entered "
        "or left, by stage and reason, cut lines, score distributions, hours, recaptioned clips",
    )
    cmp.add_argument("a", help="the first recipe version (v1, 2, ...)")
    cmp.add_argument("b", help="the second recipe version")
    cmp.add_argument("--against", metavar="DATA_ROOT", help="take version b from this other data root")
    cmp.add_argument(
        "--data-root", default=settings.data_root(), help="the data root (default: $OPENVID_DATA_ROOT or ./data)"
    )
    cmp.set_defaults(func=cmd_compare)

    sample = sub.add_parser("sample", help="generate small test videos with known properties")
    sample.add_argument("out", help="folder to write them to")
    sample.add_argument("--no-bad", action="store_true", help="skip the deliberately broken files")
    sample.add_argument("--no-hd", action="store_true", help="skip the 1920x1080 video")
    sample.set_defaults(func=cmd_sample)

    quick = sub.add_parser("quickstart", help="generate a sample (if missing) and run it with the offline models")
    quick.add_argument("--sample", default="sample", help="sample folder (default: ./sample)")
    _add_workers(quick)
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
    except (FileNotFoundError, ValueError) as e:  # MissingWeightsError, RecipeError, RuleError
        print(f"error: {e}", file=sys.stderr)
        return 2
