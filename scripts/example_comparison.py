"""Make the README's example of a recipe comparison: the quickstart's two generated sources through the whole
pipeline (in-process, offline models) under the shipped recipe (v1), then under a v2 that keeps the top 40 % of the
web source by aesthetics and scores clarity with another model; then ``compare v1 v2``. Prints the report's folder.

Usage: python scripts/example_comparison.py OUT_FOLDER   (~5 min on 2 cores)
"""

import sys
from pathlib import Path

from dagster import DagsterInstance

from openvid_assets.assets.shards import register_source, shards_partitions
from openvid_assets.definitions import build_definitions
from openvid_assets.recipe import RecipeStore, quickstart_recipe
from openvid_assets.samples import write_clean_source, write_sample_set
from openvid_assets.store import TableStore
from openvid_assets.store.versions import Side, compare
from openvid_assets_testing.pipeline import materialize_pipeline


def main(out: Path) -> None:
    web, clean, data = out / "sample", out / "sample_clean", out / "data"
    write_sample_set(web)
    write_clean_source(clean)
    recipe = quickstart_recipe(web.absolute(), clean.absolute(), (clean / "captions.csv").absolute())
    recipe = recipe.updated({"models": {"profile": "offline"}})
    tables = TableStore(str(data))
    store = RecipeStore(tables.fs)
    store.save(recipe)
    with DagsterInstance.ephemeral() as instance:
        for name, source in recipe.sources.items():
            _, new, _ = register_source(tables, source.uri, 8, name=name, metadata=source.metadata)
            instance.add_dynamic_partitions(shards_partitions.name, new)
        materialize_pipeline(build_definitions(str(data)), instance)
        web_source = recipe.sources["web"].model_dump()
        store.save(
            recipe.updated(
                {
                    "sources": {**{k: v.model_dump() for k, v in recipe.sources.items()},
                                "web": {**web_source, "rules": {**web_source["rules"], "aesthetic": "top:40"}}},
                    "models": {"clarity_backend": "laplacian"},
                }
            )
        )  # fmt: skip
        materialize_pipeline(build_definitions(str(data)), instance)
    result = compare(Side(tables, 1), Side(tables, 2), out=tables)
    print(Path(result.differences).parent)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
