"""Near-duplicate videos across the whole pool, from the stored CLIP embeddings (no new model pass).

A video's vector is the normalised mean of its frames' CLIP embeddings, rounded to fp16 (the precision the
embeddings are stored in) so that every later cosine is exact on the stored values. Two videos whose vectors
have cosine >= ``threshold`` (0.98, Open-Sora's near-duplicate cut) are duplicates; groups are the connected
components of those pairs, and each group keeps one video (sql/near_duplicates.sql says which).

Scale: candidate pairs come from a faiss index (``VectorIndex``) and are confirmed with an exact cosine. While
the pool is small the index is exact (a flat inner-product scan); past ``exact_below`` videos it is an IVF
index (k-means buckets, the scheme NeMo Curator uses, scalar-quantised to fp16), trained on a seeded sample
and rebuilt when the pool has grown four-fold. Incremental: a new shard's videos are added to the index and
searched against everything in it, so they meet every earlier video, not only their own shard. The pair set
(and so the kept set) depends only on the pool, whatever the order shards arrive in, up to the IVF index's
recall, which bench/bench_filters.py measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

PAIR_SCHEMA = {"a": pl.String, "b": pl.String, "cosine": pl.Float64}  # a < b


@dataclass(frozen=True)
class DuplicateSearch:
    threshold: float = 0.98
    neighbours: int = 16  # candidates per video; a larger group still joins up through its members' pairs
    nprobe: int = 16  # IVF buckets visited per query
    exact_below: int = 100_000  # pool size up to which the index is an exact scan
    seed: int = 0

    def params(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "neighbours": self.neighbours,
            "nprobe": self.nprobe,
            "exact_below": self.exact_below,
            "seed": self.seed,
        }


def fp16_unit(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors rounded to fp16 (returned as float32): the exact values every cosine is computed on."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return (vectors / norms).astype(np.float16).astype(np.float32)


def exact_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (N, D) arrays in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.einsum("nd,nd->n", a, b) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-24)


class VectorIndex:
    """A faiss inner-product index over fp16-exact unit vectors; ids are insertion order (0, 1, ...)."""

    def __init__(self, index: Any, trained_on: int):
        self.index, self.trained_on = index, trained_on
        self._direct_map()

    @classmethod
    def build(cls, vectors: np.ndarray, search: DuplicateSearch) -> VectorIndex:
        import faiss

        n, dim = vectors.shape
        if n < search.exact_below:
            index = faiss.IndexFlatIP(dim)
        else:
            nlist = int(min(65536, max(256, 2 ** round(np.log2(np.sqrt(n))))))  # ~sqrt(N) buckets
            index = faiss.index_factory(dim, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(search.seed).choice(n, size=min(n, 64 * nlist), replace=False)
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.seed = search.seed
            ivf.by_residual = False  # fp16 codes of the vectors themselves: reconstruct gives them back exactly
            index.train(vectors[np.sort(sample)])
        built = cls(index, n)
        built.add(vectors)
        return built

    def _direct_map(self) -> None:
        import faiss

        if isinstance(self.index, faiss.IndexIVF) or "IVF" in type(self.index).__name__:
            faiss.extract_index_ivf(self.index).make_direct_map()  # reconstruct by id

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def exact(self) -> bool:
        return self.index.__class__.__name__ == "IndexFlatIP"

    def outgrown(self, search: DuplicateSearch, adding: int = 0) -> bool:
        """After ``adding`` more: an exact index past ``exact_below``, or an IVF index trained on a quarter of
        the pool (its buckets would be too few): rebuild."""
        size = self.size + adding
        return size >= search.exact_below if self.exact else size > 4 * self.trained_on

    def add(self, vectors: np.ndarray) -> np.ndarray:
        first = self.size
        self.index.add(np.ascontiguousarray(vectors, np.float32))
        return np.arange(first, self.size)

    def vectors(self, ids: np.ndarray | None = None) -> np.ndarray:
        if ids is None:
            return self.index.reconstruct_n(0, self.size)
        return np.stack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.index.d))

    def search(self, vectors: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.exact:
            import faiss

            faiss.extract_index_ivf(self.index).nprobe = nprobe
        return self.index.search(np.ascontiguousarray(vectors, np.float32), min(k, self.size))

    def to_bytes(self) -> bytes:
        import faiss

        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, trained_on: int) -> VectorIndex:
        import faiss

        return cls(faiss.deserialize_index(np.frombuffer(data, np.uint8)), trained_on)


def confirmed_pairs(
    index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, members: list[str], search: DuplicateSearch
) -> pl.DataFrame:
    """Pairs of (indexed) videos above the threshold among the neighbours of ``vectors`` (ids ``ids``), with
    the exact cosine of their stored vectors; ``members`` maps an id to its video id."""
    if len(ids) == 0 or index.size < 2:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    found: set[tuple[int, int]] = set()
    for start in range(0, len(ids), 4096):
        sims, neighbours = index.search(vectors[start : start + 4096], search.neighbours + 1, search.nprobe)
        for row, own in enumerate(ids[start : start + 4096]):
            # a margin below the threshold: the IVF index compares fp16-quantised codes
            for other in neighbours[row][(sims[row] >= search.threshold - 0.01) & (neighbours[row] >= 0)]:
                if other != own:
                    found.add((min(int(own), int(other)), max(int(own), int(other))))
    if not found:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    pairs = np.array(sorted(found))
    cosines = exact_cosines(index.vectors(pairs[:, 0]), index.vectors(pairs[:, 1]))
    keep = cosines >= search.threshold
    a = [members[i] for i in pairs[keep, 0]]
    b = [members[i] for i in pairs[keep, 1]]
    rows = {"a": [min(x, y) for x, y in zip(a, b)], "b": [max(x, y) for x, y in zip(a, b)], "cosine": cosines[keep]}
    return pl.DataFrame(rows, schema=PAIR_SCHEMA)


def duplicate_groups(pairs: pl.DataFrame) -> pl.DataFrame:
    """(video_id, group): the connected components of the pairs, named by their smallest video id."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if pairs.height == 0:
        return pl.DataFrame(schema={"video_id": pl.String, "group": pl.String})
    nodes = sorted(set(pairs["a"]) | set(pairs["b"]))
    code = {v: i for i, v in enumerate(nodes)}
    a, b = [code[v] for v in pairs["a"]], [code[v] for v in pairs["b"]]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    first: dict[int, str] = {}
    for v, label in zip(nodes, labels):  # nodes are sorted: the first seen is the smallest id
        first.setdefault(int(label), v)
    return pl.DataFrame({"video_id": nodes, "group": [first[int(label)] for label in labels]})


@dataclass
class IndexState:
    """The persisted index: its vectors, which video each id is, and which shards (at which table stamps)
    it holds."""

    index: VectorIndex
    members: list[str]  # id -> video id
    shards: dict[str, str]  # shard -> stamp of the embeddings table it was read from
    identity: str  # the embeddings' model and the search settings: another identity starts over

    def vectors_of(self, video_ids: list[str]) -> np.ndarray:
        position = {v: i for i, v in enumerate(self.members)}
        return self.index.vectors(np.array([position[v] for v in video_ids], np.int64))


def add_shards(
    state: IndexState | None, new: dict[str, tuple[str, list[str], np.ndarray]], identity: str, search: DuplicateSearch
) -> tuple[IndexState | None, pl.DataFrame, bool]:
    """Add shards (shard -> (table stamp, video ids, vectors)) to the index and find their pairs.

    Returns (state, pairs, complete): ``complete`` when the index was (re)built and ``pairs`` holds every pair
    of the pool; otherwise ``pairs`` holds the new videos' pairs, to add to those found before. A video already
    indexed (an exact copy in another shard, or a shard re-read) is not added twice. No vectors at all: None."""
    if state is not None and state.identity != identity:
        state = None
    known = set(state.members) if state else set()
    ids, vectors = [], []
    for _, video_ids, shard_vectors in new.values():
        for video_id, vector in zip(video_ids, shard_vectors):
            if video_id not in known:
                known.add(video_id)
                ids.append(video_id)
                vectors.append(vector)
    fresh = fp16_unit(np.stack(vectors)) if vectors else None
    stamps = {**(state.shards if state else {}), **{shard: stamp for shard, (stamp, _, _) in new.items()}}
    if state is None or state.index.size == 0 or state.index.outgrown(search, len(ids)):
        members = (state.members if state else []) + ids
        parts = [p for p in (state.index.vectors() if state and state.index.size else None, fresh) if p is not None]
        if not parts:
            return None, pl.DataFrame(schema=PAIR_SCHEMA), True
        everything = np.concatenate(parts)
        index = VectorIndex.build(everything, search)
        built = IndexState(index, members, stamps, identity)
        return built, confirmed_pairs(index, np.arange(len(members)), everything, members, search), True
    if fresh is None:
        return IndexState(state.index, state.members, stamps, identity), pl.DataFrame(schema=PAIR_SCHEMA), False
    added = state.index.add(fresh)
    updated = IndexState(state.index, state.members + ids, stamps, identity)
    return updated, confirmed_pairs(state.index, added, fresh, updated.members, search), False


def _files(folder: str) -> tuple[str, str, str]:
    return f"{folder}/index.faiss", f"{folder}/members.parquet", f"{folder}/state.json"


def save_state(files: Any, folder: str, state: IndexState) -> None:
    """Index, members, then the state file last: it names the sizes the other two must have."""
    import io
    import json

    index_rel, members_rel, state_rel = _files(folder)
    files.put(index_rel, state.index.to_bytes())
    buffer = io.BytesIO()
    pl.DataFrame({"video_id": state.members}, schema={"video_id": pl.String}).write_parquet(buffer)
    files.put(members_rel, buffer.getvalue())
    files.put(
        state_rel,
        json.dumps(
            {
                "identity": state.identity,
                "shards": state.shards,
                "size": len(state.members),
                "trained_on": state.index.trained_on,
            }
        ).encode(),
    )


def load_state(files: Any, folder: str) -> IndexState | None:
    """The saved state, or None when there is none or its parts disagree (a write cut short): start over."""
    import io
    import json

    index_rel, members_rel, state_rel = _files(folder)
    if not all(files.exists(rel) for rel in (index_rel, members_rel, state_rel)):
        return None
    saved = json.loads(files.get(state_rel))
    members = pl.read_parquet(io.BytesIO(files.get(members_rel)))["video_id"].to_list()
    index = VectorIndex.from_bytes(files.get(index_rel), saved["trained_on"])
    if not (index.size == len(members) == saved["size"]):
        return None
    return IndexState(index, members, saved["shards"], saved["identity"])


def shards_to_read(state: IndexState | None, stamps: dict[str, str], identity: str) -> list[str]:
    """The shards whose embeddings the index lacks: all of them when there is no usable state."""
    if state is None or state.identity != identity:
        return sorted(stamps)
    return sorted(shard for shard, stamp in stamps.items() if state.shards.get(shard) != stamp)
