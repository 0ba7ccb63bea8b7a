"""The Dagster UI renders the pipeline: a real `dagster-webserver` on a real instance, pages in headless Chromium.

A small data root is made by running the real pipeline (weight-free backends) on three
generated videos into an on-disk instance in a temporary DAGSTER_HOME; the webserver is
started against that instance (as `dagster dev` would be, without the daemon), and the
global asset lineage graph and the partitions page of `video_manifest` are loaded in the
system's Chromium through Playwright. The tests check what a person would see: every
asset of the code location in the graph, the shards with their materialized status.

Screenshots (and the webserver's log) are saved as test artifacts under
$OPENVID_TEST_ARTIFACTS (default: a pytest temporary folder; the path is printed).
With OPENVID_DOCS_SCREENSHOTS=1 they are also written, at twice the pixel density,
to docs/img/ui_asset_graph.png and docs/img/ui_partitions.png.

Chromium is a system package (`bash scripts/install_chromium.sh`); without it the tests
fail, they do not skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from dagster import DagsterInstance

from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.assets.recipe import SECTIONS
from openvid_assets.definitions import ASSETS, MATERIALIZED, SHARD_JOB, build_definitions
from openvid_assets_tests.browser import browser, chromium  # noqa: F401 - fixtures
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe
from openvid_assets_testing.ports import free_port
from openvid_assets import samples

REPO = Path(__file__).resolve().parents[2]
DOCS_IMG = REPO / "docs" / "img"
# No telemetry, and no first-visit "Join the Dagster community" dialog over the pages.
INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
VIEWPORT = {"width": 1600, "height": 760}
STARTUP_TIMEOUT_S = 120
UI_TIMEOUT_MS = 30_000


def _log_tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _wait_for_server(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode} before answering:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"dagster-webserver did not answer {url}/server_info in {STARTUP_TIMEOUT_S}s:\n{_log_tail(log)}"
            )
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the webserver's whole process group (it has a code server child), then kill what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the code server too, even if the webserver itself is gone
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("OPENVID_TEST_ARTIFACTS")
    folder = Path(configured) / "ui" if configured else tmp_path_factory.mktemp("ui_artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"UI test artifacts (screenshots, webserver log): {folder}")
    return folder


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, artifacts: Path, chromium: str):  # noqa: F811 - a fixture
    """A dagster-webserver serving an instance where the pipeline has run on 3 videos in 2 shards.

    Yields ``(base_url, shard_keys)``; the server's process group is always ended afterwards.
    Asks for ``chromium`` only to fail at once, before the slow part, on a machine without it.
    """
    root = tmp_path_factory.mktemp("ui_site")
    videos, data, home = root / "videos", root / "data", root / "dagster_home"
    videos.mkdir()
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    samples.smooth_pan(videos, "pan.mp4", num_frames=24)
    samples.fast_motion(videos, "whip.mp4", num_frames=24)
    samples.static(videos, "still.mp4", num_frames=24)

    log = artifacts / "webserver.log"
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "OPENVID_DATA_ROOT": str(data), "PYTHONUNBUFFERED": "1"}
    script = Path(sys.executable).with_name("dagster-webserver")  # .venv/bin/dagster-webserver
    webserver = [str(script)] if script.is_file() else [sys.executable, "-m", "dagster_webserver"]
    with DagsterInstance.from_config(str(home)) as instance:  # creates the storage first
        with open(log, "w") as out:
            # Its own session, so the webserver and its code server die together; started before the
            # pipeline runs so that its start-up (loading the code location) overlaps the pipeline.
            proc = subprocess.Popen(
                [*webserver, "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1], "-m", "openvid_assets.definitions"],
                env=env,
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            store_recipe(str(data), FAST, selection={"thresholds_off": True})
            defs = build_definitions(str(data))
            _, keys = store_new_shards(defs.resources["store"].tables(), str(videos), shard_size=2)
            instance.add_dynamic_partitions(shards_partitions.name, keys)
            materialize_pipeline(defs, instance)
            _wait_for_server(proc, url, log)
            yield url, keys
        finally:
            _stop(proc)


@pytest.fixture
def page(browser):  # noqa: F811 - a fixture
    docs = os.environ.get("OPENVID_DOCS_SCREENSHOTS") == "1"
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=2 if docs else 1)
    context.set_default_timeout(UI_TIMEOUT_MS)
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)  # a loaded CI machine renders slower than expect's 5 s default
    # The dialog is off in the instance too; this is the browser's own "dismissed" flag.
    context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    page = context.new_page()
    yield page
    context.close()


def _screenshot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    with suppress(Exception):  # the checks already saw the content; this only lets late requests finish
        page.wait_for_load_state("networkidle", timeout=5000)
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


@contextmanager
def screenshot_after(page, artifacts: Path, name: str):
    """Save the page as an artifact when the block is done, also when it failed (as ``<name>.failed.png``);
    copy it into docs/img when OPENVID_DOCS_SCREENSHOTS=1 and the checks passed."""
    try:
        yield
    except BaseException:
        with suppress(Exception):  # a picture of the failure if the page can still take one; the error stays
            _screenshot(page, artifacts, f"{name}.failed")
        raise
    path = _screenshot(page, artifacts, name)
    if os.environ.get("OPENVID_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / path.name)
        print(f"docs screenshot: {DOCS_IMG / path.name}")


def test_asset_graph_shows_every_asset_of_the_pipeline(ui, page, artifacts):
    from playwright.sync_api import expect

    url, _ = ui
    # Every node the code location defines, by group, under the label the graph draws for it (recipe/<section>
    # nodes are labelled with the section's name, so "captions" is both an asset and a recipe section).
    labels: dict[str, list[str]] = {}
    for a in ASSETS:
        for k in a.keys:
            labels.setdefault(a.group_names_by_key[k], []).append(k.path[-1])
    groups = sorted(labels)
    materialized = {a.key.path[-1] for a in MATERIALIZED}
    assert {"video_manifest", "score_thresholds", "lineage", "captions"} <= materialized
    assert materialized <= {name for names in labels.values() for name in names}
    assert set(SECTIONS) <= set(labels["recipe"])
    # The graph's boxes cut longer names in the middle ("ablati…_checkpoint"): names stay short enough to read.
    assert [n for n in materialized if len(n) > 18] == []
    nodes = page.locator("svg foreignObject")  # the graph draws its boxes as HTML inside the SVG
    # The graph draws only the nodes on screen, and the whole pipeline expanded is larger than any window
    # at the UI's smallest zoom: so one group is expanded at a time (groups are collapsed boxes by default),
    # in a window tall enough for the recipe's column of sections.
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 2 * VIEWPORT["height"]})
    for group in groups:
        page.goto(f"{url}/asset-groups?expanded=global@global:{group}", wait_until="load")
        expect(page.get_by_text("Global asset lineage", exact=True)).to_be_visible()
        for name in labels[group]:
            drawn = nodes.get_by_text(name, exact=True)
            expect(drawn.first, f"{group}: asset {name} drawn in the graph").to_be_visible()
            # Group boxes, collapsed or not, carry their name too: "clips" is both a group and an asset.
            expect(drawn, f"{group}: asset {name} drawn once").to_have_count(
                labels[group].count(name) + (name in groups)
            )
    # The picture: the curation groups expanded (the recipe's sections, the MVDiT steps and the ablation stay one
    # box each: with every group open the fitted graph is too small for the UI to draw any node), the asset tree
    # hidden, the graph fitted to the window.
    expanded = ",".join(f"global@global:{g}" for g in groups if g not in ("ablation", "mvdit", "recipe"))
    with screenshot_after(page, artifacts, "ui_asset_graph"):
        page.goto(f"{url}/asset-groups?expanded={expanded}", wait_until="load")
        expect(nodes.first).to_be_visible()  # drawn, centred somewhere: the graph is larger than the window
        page.get_by_placeholder("Jump to…").locator("xpath=following::button[1]").click()
        page.wait_for_timeout(1200)  # the resize and the fit are animated
        expect(nodes.get_by_text("video_manifest", exact=True).first).to_be_in_viewport()


def test_partitions_page_lists_the_shards_as_materialized(ui, page, artifacts):
    from playwright.sync_api import expect

    url, keys = ui
    assert keys == ["shard-00000", "shard-00001"]
    with screenshot_after(page, artifacts, "ui_partitions"):
        page.goto(f"{url}/assets/video_manifest?view=partitions&partition={keys[0]}", wait_until="load")
        expect(page.get_by_role("tab", name="Partitions")).to_be_visible()
        expect(page.get_by_text(f"Materialized ({len(keys)})", exact=True)).to_be_visible()
        expect(page.get_by_text("Missing (0)", exact=True)).to_be_visible()
        expect(page.get_by_text("Failed (0)", exact=True)).to_be_visible()
        for key in keys:
            expect(page.get_by_text(key, exact=True).first, f"partition {key} listed").to_be_visible()
        # The selected shard: its materialization, the run and job that made it, and the asset's metadata.
        expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
        expect(page.get_by_text("Latest materialization", exact=True)).to_be_visible()
        expect(page.get_by_text(SHARD_JOB, exact=True).first).to_be_visible()
        expect(page.get_by_text("resolution_histogram", exact=True)).to_be_visible()
        expect(page.get_by_text(f"tables/video_manifest/{keys[0]}.parquet").first).to_be_visible()
