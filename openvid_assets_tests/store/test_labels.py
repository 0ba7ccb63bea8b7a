"""Labels are append-only data: concurrent saves lose nothing, bad labels are refused, torn parts are named."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from openvid_assets.store.files import LocalFileSystem
from openvid_assets.store.labels import LabelError, LabelStore

ITEMS = {f"v{i:03d}": "video" for i in range(100)}


def test_saves_append_and_the_latest_label_of_each_reviewer_wins(tmp_path):
    store = LabelStore(LocalFileSystem(tmp_path))
    store.append(
        "ana", [{"item": "v001", "score": "aesthetic", "score_value": 5.1, "label": "bad", "tags": ["blurry"]}], ITEMS
    )
    store.append("ana", [{"item": "v001", "score": "aesthetic", "label": "good"}], ITEMS)
    store.append("bo", [{"item": "v001", "score": "aesthetic", "label": "bad", "tags": ["dark", "dark"]}], ITEMS)
    table, problems = store.read()
    assert table.height == 3 and not problems
    latest = {(r["reviewer"], r["item"]): r for r in store.latest().iter_rows(named=True)}
    assert latest[("ana", "v001")]["label"] == "good"
    assert latest[("bo", "v001")]["tags"] == ["dark"]
    assert store.append("ana", []) is None


def test_two_reviewers_saving_at_once_lose_nothing(tmp_path):
    store = LabelStore(LocalFileSystem(tmp_path))

    def save(reviewer, start):
        for i in range(start, start + 50):
            store.append(reviewer, [{"item": f"v{i:03d}", "score": "motion", "label": "good"}], ITEMS)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(save, ["ana", "bo"], [0, 50]))
    table, problems = store.read()
    assert table.height == 100 and table["item"].n_unique() == 100 and not problems


@pytest.mark.parametrize(
    "reviewer, row, message",
    [
        ("../etc", {"item": "v001", "label": "good"}, "reviewer name"),
        ("", {"item": "v001", "label": "good"}, "reviewer name"),
        ("ana", {"item": "nope", "label": "good"}, "not in this data root"),
        ("ana", {"item": "v001", "label": "great"}, "label must be one of"),
        ("ana", {"item": "v001", "label": "bad", "tags": ["ugly"]}, "tags must be"),
        ("ana", {"item": "v001", "label": "bad", "score_value": "high"}, "score_value"),
        ("ana", "v001", "a label is an object"),
    ],
)
def test_bad_labels_are_refused_and_nothing_is_written(tmp_path, reviewer, row, message):
    store = LabelStore(LocalFileSystem(tmp_path))
    with pytest.raises(LabelError, match=message):
        store.append(reviewer, [{"item": "v002", "label": "good"}, row], ITEMS)
    assert store.parts() == []


def test_a_part_cut_short_is_named_and_the_others_still_count(tmp_path):
    fs = LocalFileSystem(tmp_path)
    store = LabelStore(fs)
    good = store.append("ana", [{"item": "v001", "label": "good"}], ITEMS)
    torn = good.replace(".parquet", "-torn.parquet")
    fs.put(torn, fs.get(good)[:40])
    table, problems = store.read()
    assert table.height == 1 and len(problems) == 1 and problems[0].startswith(torn)
