"""The review page in a real browser: `openvid-assets review` serving a generated data root, labels made with the
keyboard in headless Chromium, kept across a reload, two reviewers at once, hostile requests refused.

With OPENVID_DOCS_SCREENSHOTS=1 the page is also saved to docs/img/review_bands.png and review_ordered.png.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dagster import DagsterInstance

from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.definitions import SHARD_JOB, build_definitions
from openvid_assets import samples
from openvid_assets.store import TableStore
from openvid_assets.store.labels import LabelStore
from openvid_assets_tests.browser import browser, chromium  # noqa: F401 - fixtures
from openvid_assets_testing.pipeline import FAST, store_recipe
from openvid_assets_testing.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SCORED = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "motion_scores",
    "content_scores",
    "previews",
]
VIDEOS = 24


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium):  # noqa: F811 - a fixture
    """A data root with 24 scored and previewed videos in 3 shards, and the review command serving it."""
    root = tmp_path_factory.mktemp("review")
    videos, data = root / "videos", root / "data"
    videos.mkdir()
    for i in range(VIDEOS):
        samples.smooth_pan(videos, f"pan_{i:02d}.mp4", num_frames=24, seed=200 + i, px_per_frame=1 + i % 5)
    store_recipe(str(data), FAST)
    defs = build_definitions(str(data))
    job = defs.resolve_job_def(SHARD_JOB)
    with DagsterInstance.ephemeral() as instance:
        _, keys = store_new_shards(defs.resources["store"].tables(), str(videos), shard_size=8)
        instance.add_dynamic_partitions(shards_partitions.name, keys)
        from dagster import AssetKey

        for shard in keys:
            job.execute_in_process(
                instance=instance, partition_key=shard, asset_selection=[AssetKey(n) for n in SCORED]
            )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "review.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openvid_assets", "review", "--data-root", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/scores", timeout=2) as response:
                    if json.load(response)["scores"]:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the review server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield url, data
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def new_page(browser, url):  # noqa: F811 - a fixture
    docs = os.environ.get("OPENVID_DOCS_SCREENSHOTS") == "1"
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=2 if docs else 1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(url)
    return page


def load(page, reviewer: str, score: str = "aesthetic", per_band: int = 4) -> None:
    page.fill("#reviewer", reviewer)
    page.select_option("#score", score)
    page.fill("#perBand", str(per_band))
    page.click("#load")
    page.wait_for_selector(".card")


def label_all(page, keys: list[str]) -> None:
    page.click("body", position={"x": 5, "y": 890})  # focus leaves the inputs: keys now label
    for key in keys:
        page.keyboard.press(key)


def test_labels_made_with_the_keyboard_are_kept_across_a_reload(site, browser):  # noqa: F811 - a fixture
    url, data = site
    page = new_page(browser, url)
    load(page, "ana")
    cards = page.locator(".card")
    assert cards.count() == 20  # 5 quantile bands x 4
    assert page.locator(".band").count() == 5
    keys = []
    for i in range(20):
        keys += ["1"] if i == 3 else []  # a tag on the fourth (labels it bad, stays on it)
        keys += ["g" if i % 2 else "b"]
    label_all(page, keys)
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('20 of 20')")
    expected = {cards.nth(i).get_attribute("data-item"): ("good" if i % 2 else "bad") for i in range(20)}
    if os.environ.get("OPENVID_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(REPO / "docs/img/review_bands.png"))
        page.select_option("#view", "ordered")
        page.wait_for_selector("#curve img[alt='precision/recall curve']")
        page.wait_for_function("document.querySelector('#curve img').complete")
        page.locator("#curve").scroll_into_view_if_needed()  # the focus scrolled to the last card
        page.screenshot(path=str(REPO / "docs/img/review_ordered.png"))
        page.select_option("#view", "bands")
    # The ordered view draws the precision/recall curve of the labels given so far, with the cut best F1 picks.
    page.select_option("#view", "ordered")
    page.wait_for_selector("#curve img[alt='precision/recall curve']")
    assert "calibrated f1 on 20 labels" in page.locator("#curve").inner_text()
    page.select_option("#view", "bands")
    page.reload()
    page.wait_for_selector(".card")  # the reviewer is remembered: the page loads their labels itself
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('20 of 20')")
    for i in range(20):
        card = cards.nth(i)
        assert expected[card.get_attribute("data-item")] in card.get_attribute("class")
    latest = LabelStore(TableStore(str(data)).fs).latest()
    saved = {r["item"]: r for r in latest.filter(latest["reviewer"] == "ana").iter_rows(named=True)}
    assert {k: v["label"] for k, v in saved.items()} == expected
    assert ["static"] in [v["tags"] for v in saved.values()]
    assert all(v["score"] == "aesthetic" and v["score_value"] is not None for v in saved.values())


def test_two_reviewers_labelling_at_once_lose_nothing(site, browser):  # noqa: F811 - a fixture
    url, data = site
    pages = [new_page(browser, url), new_page(browser, url)]
    for page, name in zip(pages, ["cy", "dee"]):
        load(page, name, score="motion")
        page.click("body", position={"x": 5, "y": 890})
    for _ in range(20):  # interleaved: both browsers post while the other is posting
        for page in pages:
            page.keyboard.press("g")
    for page in pages:
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('20 of 20')")
    # And straight at the server: 2 x 40 saves in flight together.
    items = [c.get_attribute("data-item") for c in pages[0].locator(".card").all()]

    def post(reviewer):
        for item in items * 2:
            body = json.dumps({"reviewer": reviewer, "labels": [{"item": item, "score": "temporal", "label": "bad"}]})
            request = urllib.request.Request(f"{url}/api/labels", body.encode(), {"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=30).read()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(post, ["eve", "fay"]))
    table, problems = LabelStore(TableStore(str(data)).fs).read()
    assert not problems
    counts = {(r, s): n for r, s, n in table.group_by("reviewer", "score").len().iter_rows()}
    others = {k: n for k, n in counts.items() if k[0] != "ana"}  # ana labels in the test above
    assert others == {("cy", "motion"): 20, ("dee", "motion"): 20, ("eve", "temporal"): 40, ("fay", "temporal"): 40}


def test_the_curve_is_fitted_from_everyones_labels_as_a_calibrated_rule_would(site):
    url, _ = site
    with urllib.request.urlopen(f"{url}/api/curve?score=aesthetic", timeout=30) as response:
        curve = json.load(response)
    assert curve["fitted"] and curve["labelled"] == 20  # ana's labels on the aesthetic page
    assert curve["description"].startswith("calibrated f1 on 20 labels")
    assert all(0 <= row["precision"] <= 1 and 0 < row["recall"] <= 1 for row in curve["curve"])
    assert curve["lower"] is None or min(r["threshold"] for r in curve["curve"]) < curve["lower"]
    status, png = _raw_get(url, "/api/curve.png?score=aesthetic&target=precision:0.5")
    assert status == 200 and png.startswith(b"\x89PNG")
    with urllib.request.urlopen(f"{url}/api/curve?score=clarity", timeout=30) as response:
        assert json.load(response) == {
            "fitted": False,
            "reason": "no clarity labels yet: label samples of clarity first",
        }
    assert _raw_get(url, "/api/curve?score=aesthetic&target=precision:2")[0] == 400


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)  # sent as is: no client-side normalisation of '..'
    response = connection.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    "path",
    [
        "/preview/../recipe/v0001.yaml",
        "/preview/shard-00000/../../recipe/v0001.yaml",
        "/preview/shard-00000/..%2F..%2Frecipe%2Fv0001.yaml",
        "/preview/..%2F..%2Fetc/passwd",
        "/preview/shard-00000/%2Fetc%2Fpasswd",
        "/preview/shard-00000/x.yaml",
    ],
)
def test_no_file_outside_the_previews_is_served(site, path):
    url, _ = site
    status, body = _raw_get(url, path)
    assert status == 404 and b"version" not in body and b"root:" not in body


@pytest.mark.parametrize(
    "body, message",
    [
        (b"not json", "must be JSON"),
        (json.dumps({"reviewer": "../../x", "labels": [{"item": "x", "label": "good"}]}).encode(), "reviewer name"),
        (
            json.dumps({"reviewer": "ana", "labels": [{"item": "not-a-video", "label": "good"}]}).encode(),
            "not in this data root",
        ),
        (json.dumps({"reviewer": "ana", "labels": "good"}).encode(), "labels: \\[...\\]"),
    ],
)
def test_malformed_requests_are_refused_with_a_reason_and_save_nothing(site, body, message):
    import re

    url, data = site
    before = len(LabelStore(TableStore(str(data)).fs).parts())
    request = urllib.request.Request(f"{url}/api/labels", body, {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and re.search(message, json.load(info.value)["error"])
    assert len(LabelStore(TableStore(str(data)).fs).parts()) == before
    status, _ = _raw_get(url, "/api/sample?score=nope")
    assert status == 400
