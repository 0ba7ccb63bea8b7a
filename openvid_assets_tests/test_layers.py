"""The layer rule, read from the source (every import statement, lazy ones inside functions included).

    settings  <-  media, models, mvdit, store (pure: no Dagster, nothing above them)
              <-  recipe  <-  assets  <-  definitions  <-  cli

Only the CLI imports ``definitions`` inside the package (Dagster's loaders and the tests load it by name).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openvid_assets"
PURE = ("media", "models", "mvdit", "store")
PURE_MAY_IMPORT = {"openvid_assets", "openvid_assets.settings"} | {f"openvid_assets.{p}" for p in PURE}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file; ``from X import y`` also yields ``X.y`` (y may be a module)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def violations_of_pure_layer(path: Path) -> list[str]:
    """One line per offending import statement."""
    bad: dict[int, str] = {}
    for line, module in imports(path):
        top, parts = module.split(".")[0], module.split(".")
        if top == "dagster" or top.startswith("dagster_"):
            bad.setdefault(line, f"{path.name}:{line} imports {module} (Dagster)")
        elif top == "openvid_assets" and module != top:
            # openvid_assets.store.tables is allowed through openvid_assets.store; openvid_assets.recipe is not
            if not any(".".join(parts[: i + 1]) in PURE_MAY_IMPORT for i in range(1, len(parts))):
                bad.setdefault(line, f"{path.name}:{line} imports {module} (a layer above)")
    return list(bad.values())


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_neither_dagster_nor_anything_above_them(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files
    assert [v for f in files for v in violations_of_pure_layer(f)] == []


def test_settings_imports_nothing_of_the_package():
    assert [m for _, m in imports(PACKAGE / "settings.py") if m.startswith("openvid_assets")] == []


def test_only_the_cli_imports_definitions():
    importers = {str(f.relative_to(PACKAGE.parent)) for f in PACKAGE.rglob("*.py")
                 if any(m == "openvid_assets.definitions" for _, m in imports(f))}  # fmt: skip
    assert importers <= {"openvid_assets/cli.py"}


def private_dagster_imports(path: Path) -> list[str]:
    """Imports of Dagster's private modules (``dagster._...``, ``dagster_graphql._...`` and alike)."""
    bad: dict[int, str] = {}
    for line, module in imports(path):
        parts = module.split(".")
        if parts[0].startswith("dagster") and len(parts) > 1 and parts[1].startswith("_"):
            bad.setdefault(line, f"{path.name}:{line} imports {module}")
    return list(bad.values())


def test_the_package_uses_only_dagsters_public_api():
    # A Dagster upgrade, or loading this code location into a team's deployment of another version, must not
    # break on a moved private module.
    files = sorted(PACKAGE.rglob("*.py"))
    assert [v for f in files for v in private_dagster_imports(f)] == []


def test_the_private_api_check_can_fail(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from dagster import asset\nimport dagster._core.instance\n"
                     "def f():\n    from dagster._daemon.controller import get_daemon_statuses\n")  # fmt: skip
    found = private_dagster_imports(probe)
    assert len(found) == 2 and all("dagster._" in v for v in found), found


def test_the_checker_sees_violations(tmp_path):
    # The rule must be able to fail: lazy imports of Dagster and of assets, and the recipe, beside allowed ones.
    bad = tmp_path / "probe.py"
    bad.write_text("def f():\n    import dagster\n    from openvid_assets.assets import engine\n"
                   "from openvid_assets import recipe, settings\nfrom openvid_assets.store import tables\n"
                   "import openvid_assets.models.runtime\n")  # fmt: skip
    found = violations_of_pure_layer(bad)
    assert len(found) == 3, found
    assert any("dagster (Dagster)" in v for v in found)
    assert any("openvid_assets.assets" in v for v in found)
    assert any("openvid_assets.recipe" in v for v in found)


def test_the_definitions_load_as_dagster_loads_them():
    # What `dagster definitions validate` and the webserver check: partition mappings, jobs, resources.
    from dagster import Definitions

    from openvid_assets.definitions import defs

    Definitions.validate_loadable(defs)
