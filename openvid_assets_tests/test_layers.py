"""The layer rule, read from the source (every import statement, lazy ones inside functions included).

``LAYERS`` lists the package's units, lowest row first; a unit is a package, a subpackage of ``models`` or a
top-level module, and every module of the package belongs to exactly one. A module may import its own unit
and the units of the rows below its own: nothing of another unit in its row, nothing above. The units below
``assets`` are pure: no Dagster. Only the CLI imports ``definitions`` inside the package (Dagster's loaders
and the tests load it by name). No module comes back to itself through its imports.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openvid_assets"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("settings", "charts"),  # deployment settings; matplotlib charts: nothing of the package
    ("store",),  # files, tables, SQL, rows, labels, selection rules
    ("media",),  # sources, probe, frames, manifest, content measures, cut cascade, clips, previews
    ("models.registry",),  # catalog, weights, runtime, CLIP sampling
    ("models.networks",),  # one architecture per file
    ("models.scorers",),  # scorers and wrappers of the networks
    ("models.shards", "models.profiles"),  # per-shard orchestration and table schemas; the profiles
    ("curation", "mvdit", "samples"),  # calibration and duplicates; MVDiT and its metrics; synthetic videos
    ("review",),  # the review page
    ("recipe",),  # the versioned recipe
    ("assets",),  # the Dagster layer
    ("definitions",),
    ("cli",),
    ("__main__",),  # python -m openvid_assets
)
RANK = {unit: row for row, units in enumerate(LAYERS) for unit in units}
PURE_BELOW = RANK["assets"]
# Packages that hold units and only document them: any module may import them (their __init__ imports nothing).
CONTAINERS = ("openvid_assets", "openvid_assets.models")


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


def module_of(path: Path) -> str:
    """``openvid_assets/models/shards/scores.py`` -> ``openvid_assets.models.shards.scores``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str | None:
    """The unit of ``LAYERS`` a module (or a name inside one) belongs to: the longest that contains it."""
    rel = module.removeprefix("openvid_assets.")
    found = [u for u in RANK if rel == u or rel.startswith(f"{u}.")] if module.startswith("openvid_assets.") else []
    return max(found, key=len) if found else None


def layer_violations(path: Path, module: str | None = None) -> list[str]:
    """One line per import statement of ``path`` that breaks the rule for ``module`` (by default its own name)."""
    module = module or module_of(path)
    own = unit_of(module)
    bad: dict[int, str] = {}
    for line, name in imports(path):
        top = name.split(".")[0]
        where = f"{module} ({path.name}:{line})"
        if (top == "dagster" or top.startswith("dagster_")) and (own is None or RANK[own] < PURE_BELOW):
            bad.setdefault(line, f"{where} imports {name} (Dagster, in a pure layer)")
        elif top == "openvid_assets" and name not in CONTAINERS:
            target = unit_of(name)
            if target is None or own is None:
                bad.setdefault(line, f"{where} imports {name} (a unit not in LAYERS)")
            elif target != own and RANK[target] >= RANK[own]:
                bad.setdefault(line, f"{where} imports {name} ({target} is not below {own})")
    return list(bad.values())


MODULES = {module_of(f): f for f in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_belongs_to_one_unit_of_the_table():
    # A new package or module must be placed in LAYERS before the rule can judge it.
    assert [m for m in MODULES if unit_of(m) is None and m not in CONTAINERS] == []
    assert {u for u in RANK if not any(unit_of(m) == u for m in MODULES)} == set()  # no stale row


def test_the_containers_import_nothing_of_the_package():
    assert [m for c in CONTAINERS for _, m in imports(MODULES[c]) if m.startswith("openvid_assets")] == []


@pytest.mark.parametrize("unit", list(RANK))
def test_each_unit_imports_only_itself_and_the_layers_below_it(unit):
    files = [f for m, f in MODULES.items() if unit_of(m) == unit]
    assert files
    assert [v for f in files for v in layer_violations(f)] == []


def test_no_module_imports_itself_back():
    # Lazy imports count: a function-level import is how a cycle hides.
    graph = {m: {n for _, n in imports(f) if n in MODULES and n != m} for m, f in MODULES.items()}
    cycles, seen = [], set()
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in path and (start, nxt) not in seen:
                    seen.add((start, nxt))
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def _probe(tmp_path: Path, text: str) -> Path:
    probe = tmp_path / "probe.py"
    probe.write_text(text)
    return probe


def _next_row_up(unit: str) -> str:
    return LAYERS[RANK[unit] + 1][0]


# Each unit below the top with the first unit of the row above it, and the leaks this rule was written for.
UPWARD = sorted(
    {(u, _next_row_up(u)) for u in RANK if RANK[u] < len(LAYERS) - 1}
    | {
        ("review", "assets"),
        ("media", "models.networks"),
        ("media", "models.scorers"),
        ("store", "curation"),
        ("settings", "store"),
        ("models.registry", "models.profiles"),
        ("models.scorers", "models.shards"),
    }
)


@pytest.mark.parametrize("unit,above", UPWARD)
def test_the_checker_reports_an_upward_import_planted_in_any_unit(tmp_path, unit, above):
    # As a probe module of ``unit``: one upward import at module level, one lazy, beside allowed ones.
    below = [u for u in RANK if RANK[u] < RANK[unit]]
    allowed = "".join(f"import openvid_assets.{u}\n" for u in below[:2]) + "from openvid_assets import models\n"
    probe = _probe(
        tmp_path,
        f"{allowed}import openvid_assets.{above}\ndef f():\n    from openvid_assets.{above} import something\n",
    )
    found = layer_violations(probe, f"openvid_assets.{unit}.probe")
    assert len(found) == 2 and all(f"({above} is not below {unit})" in v for v in found), found


@pytest.mark.parametrize("unit", [u for u in RANK if RANK[u] < PURE_BELOW])
def test_the_checker_reports_dagster_planted_in_any_pure_unit(tmp_path, unit):
    probe = _probe(tmp_path, "def f():\n    import dagster\n    from dagster_aws.s3 import S3Resource\n")
    assert len(layer_violations(probe, f"openvid_assets.{unit}.probe")) == 2


def test_the_checker_reports_a_unit_of_the_same_row_and_one_outside_the_table(tmp_path):
    probe = _probe(
        tmp_path,
        "from openvid_assets.mvdit import train\nimport openvid_assets.newthing\n"
        "from openvid_assets.curation import calibration\n",
    )
    found = layer_violations(probe, "openvid_assets.curation.probe")
    assert len(found) == 2, found
    assert any("(mvdit is not below curation)" in v for v in found)
    assert any("openvid_assets.newthing (a unit not in LAYERS)" in v for v in found)


def test_the_checker_allows_what_the_table_allows(tmp_path):
    probe = _probe(
        tmp_path,
        "import dagster\nfrom openvid_assets import recipe, settings\n"
        "from openvid_assets.models.shards.tables import SCORE_SCHEMA\n"
        "from openvid_assets.assets import engine\n",
    )
    assert layer_violations(probe, "openvid_assets.assets.probe") == []


def test_the_cycle_check_can_fail(tmp_path, monkeypatch):
    # Two probe modules of one unit importing each other, one of them lazily.
    a = _probe(tmp_path, "def f():\n    from openvid_assets.store import probe_b\n")
    b = tmp_path / "probe_b.py"
    b.write_text("import openvid_assets.store.probe_a\n")
    monkeypatch.setitem(MODULES, "openvid_assets.store.probe_a", a)
    monkeypatch.setitem(MODULES, "openvid_assets.store.probe_b", b)
    with pytest.raises(AssertionError, match="probe_a -> openvid_assets.store.probe_b -> openvid_assets.store.probe_a"):
        test_no_module_imports_itself_back()


def test_settings_imports_nothing_of_the_package():
    assert [m for _, m in imports(PACKAGE / "settings.py") if m.startswith("openvid_assets")] == []


def test_only_the_cli_imports_definitions():
    importers = {
        str(f.relative_to(PACKAGE.parent))
        for f in PACKAGE.rglob("*.py")
        if any(m == "openvid_assets.definitions" for _, m in imports(f))
    }
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
    probe.write_text(
        "from dagster import asset\nimport dagster._core.instance\n"
        "def f():\n    from dagster._daemon.controller import get_daemon_statuses\n"
    )
    found = private_dagster_imports(probe)
    assert len(found) == 2 and all("dagster._" in v for v in found), found


def test_the_definitions_load_as_dagster_loads_them():
    # What `dagster definitions validate` and the webserver check: partition mappings, jobs, resources.
    from dagster import Definitions

    from openvid_assets.definitions import defs

    Definitions.validate_loadable(defs)
