"""Near-duplicate search: planted duplicates among random vectors, found whatever order shards arrive in."""

import numpy as np
import polars as pl
import pytest

from openvid_assets.curation.duplicates import (
    DuplicateSearch,
    IndexState,
    add_shards,
    duplicate_groups,
    exact_cosines,
    fp16_unit,
    load_state,
    save_state,
    shards_to_read,
)
from openvid_assets.store.files import LocalFileSystem

DIM = 48


def pool(n: int = 1200, planted: int = 60, seed: int = 0) -> tuple[list[str], np.ndarray, set[tuple[str, str]]]:
    """Random unit vectors, the first ``planted`` each with a close copy (cosine ~0.99) at the end."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, DIM)).astype(np.float32)
    copies = base[:planted] + 0.1 * rng.normal(size=(planted, DIM)).astype(np.float32)
    vectors = np.concatenate([base, copies])
    ids = [f"v{i:05d}" for i in range(len(vectors))]
    truth = {(ids[i], ids[n + i]) for i in range(planted)}
    return ids, vectors, truth


def in_shards(order: list[int], ids, vectors, search, shards: int = 4, state=None):
    pairs = None
    for shard in order:
        rows = np.arange(len(ids))[shard::shards]
        new = {f"s{shard}": ("stamp", [ids[i] for i in rows], vectors[rows])}
        state, found, complete = add_shards(state, new, "model-a", search)
        pairs = found if complete or pairs is None else pl.concat([pairs, found])
    return state, pairs.unique(["a", "b"]).sort("a", "b")


@pytest.mark.parametrize(
    "search", [DuplicateSearch(threshold=0.98), DuplicateSearch(threshold=0.98, exact_below=300)], ids=["exact", "ivf"]
)
def test_planted_duplicates_are_found_across_shards_whatever_the_order(search):
    ids, vectors, truth = pool()
    state, pairs = in_shards([0, 1, 2, 3], ids, vectors, search)
    _, reversed_pairs = in_shards([3, 1, 0, 2], ids, vectors, search)
    assert set(pairs.select("a", "b").iter_rows()) == truth  # every planted pair, nothing else
    assert pairs.equals(reversed_pairs)
    assert state.index.exact == (search.exact_below > len(ids))
    # the cosine is exact on the stored (fp16) vectors
    unit = {v: u for v, u in zip(ids, fp16_unit(vectors))}
    a, b = pairs.row(0)[:2]
    assert pairs["cosine"][0] == pytest.approx(float(exact_cosines(unit[a][None], unit[b][None])[0]), abs=1e-12)


def test_an_ivf_index_is_rebuilt_when_the_pool_outgrows_it():
    ids, vectors, truth = pool(n=2000, planted=40)
    search = DuplicateSearch(threshold=0.98, exact_below=300)
    state, _, _ = add_shards(None, {"s0": ("x", ids[:400], vectors[:400])}, "m", search)
    trained = state.index.trained_on
    state, pairs, complete = add_shards(state, {"s1": ("x", ids[400:], vectors[400:])}, "m", search)
    assert complete and state.index.trained_on > 4 * trained  # retrained on the whole pool
    assert set(pairs.select("a", "b").iter_rows()) == truth


def test_a_video_already_indexed_is_not_added_again_and_another_model_starts_over():
    ids, vectors, _ = pool(n=100, planted=5)
    search = DuplicateSearch()
    state, _, _ = add_shards(None, {"s0": ("x", ids, vectors)}, "m", search)
    state, pairs, complete = add_shards(state, {"s1": ("y", ids[:10], vectors[:10])}, "m", search)
    assert state.index.size == len(ids) and pairs.height == 0 and not complete
    assert state.shards == {"s0": "x", "s1": "y"}
    assert shards_to_read(state, {"s0": "x", "s1": "y", "s2": "z"}, "m") == ["s2"]
    assert shards_to_read(state, {"s0": "x", "s1": "y"}, "other model") == ["s0", "s1"]
    restarted, _, complete = add_shards(state, {"s0": ("x", ids, vectors)}, "other model", search)
    assert complete and restarted.identity == "other model"


def test_groups_are_connected_components_named_by_their_smallest_member():
    pairs = pl.DataFrame({"a": ["b", "a", "x"], "b": ["c", "b", "y"], "cosine": [0.99, 0.99, 0.99]})
    groups = dict(duplicate_groups(pairs).iter_rows())
    assert groups == {"a": "a", "b": "a", "c": "a", "x": "x", "y": "x"}


def test_saved_state_round_trips_and_a_torn_save_is_not_trusted(tmp_path):
    ids, vectors, _ = pool(n=50, planted=3)
    files = LocalFileSystem(tmp_path)
    state, _, _ = add_shards(None, {"s0": ("x", ids, vectors)}, "m", DuplicateSearch())
    save_state(files, "index", state)
    loaded = load_state(files, "index")
    assert isinstance(loaded, IndexState) and loaded.members == ids and loaded.shards == {"s0": "x"}
    assert np.array_equal(loaded.index.vectors(), state.index.vectors())
    # A run killed between the index and the state file: the index holds more than the state says.
    bigger, _, _ = add_shards(
        state, {"s1": ("y", [f"w{i}" for i in range(5)], vectors[:5] + 1)}, "m", DuplicateSearch()
    )
    files.put("index/index.faiss", bigger.index.to_bytes())
    assert load_state(files, "index") is None
    assert load_state(LocalFileSystem(tmp_path / "empty"), "index") is None
