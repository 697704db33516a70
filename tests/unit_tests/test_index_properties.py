"""Property test: any sequence of adds, upserts, deletes, compactions and save/load round trips
leaves a HybridIndex that answers exactly like one built from scratch on the surviving documents.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

from langchain_fusion.index import HybridIndex

VOCAB = ["solar", "wind", "grid", "storage", "battery", "hydro", "tidal", "coal"]
QUERIES = ["solar", "wind grid", "battery storage solar", "coal coal hydro", "nothing here"]
DIM = 12
TOL = 1e-6


class HashingEmbedding(Embeddings):
    """A tiny deterministic bag-of-words embedding: each word adds a fixed +-1 in one bucket."""

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(DIM)
        v[0] = 0.25  # never the zero vector
        for word in text.split():
            h = hashlib.blake2b(word.encode(), digest_size=4).digest()
            v[h[0] % DIM] += 1.0 if h[1] & 1 else -1.0
        return [float(x) for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


texts_st = st.lists(st.sampled_from(VOCAB), min_size=0, max_size=6).map(" ".join)
meta_st = st.integers(min_value=0, max_value=2)
operation = st.one_of(
    st.tuples(st.just("add"), st.lists(st.tuples(texts_st, meta_st), min_size=1, max_size=4)),
    st.tuples(
        st.just("upsert"), st.lists(st.tuples(st.integers(0, 50), texts_st, meta_st), max_size=3)
    ),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 60), min_size=1, max_size=3)),
    st.tuples(st.just("compact"), st.none()),
    st.tuples(st.just("save_load"), st.booleans()),
)


def _tie_groups(ids: Sequence[str], scores: NDArray[np.float64]) -> list[set[str]]:
    groups: list[set[str]] = []
    previous = None
    for doc_id, score in zip(ids, scores.tolist(), strict=True):
        if previous is None or abs(score - previous) > TOL:
            groups.append(set())
        groups[-1].add(doc_id)
        previous = score
    return groups


def assert_same_ranking(
    got: tuple[list[str], NDArray[np.float64]], want: tuple[list[str], NDArray[np.float64]]
) -> None:
    """Same documents with the same scores, in the same order up to ties."""
    got_ids, got_scores = got
    want_ids, want_scores = want
    assert len(got_ids) == len(want_ids)
    np.testing.assert_allclose(got_scores, want_scores, atol=TOL, rtol=0)
    assert _tie_groups(got_ids, got_scores) == _tie_groups(want_ids, want_scores)


def assert_same_top_k(
    got: tuple[list[str], NDArray[np.float64]], full: tuple[list[str], NDArray[np.float64]]
) -> None:
    """A truncated result holds the best scores, and only documents that reach them."""
    got_ids, got_scores = got
    full_ids, full_scores = full
    k = len(got_ids)
    np.testing.assert_allclose(got_scores, full_scores[:k], atol=TOL, rtol=0)
    reference = dict(zip(full_ids, full_scores.tolist(), strict=True))
    for doc_id, score in zip(got_ids, got_scores.tolist(), strict=True):
        assert abs(reference[doc_id] - score) <= TOL


def rebuild(index: HybridIndex) -> HybridIndex:
    """A fresh index over the surviving documents, in the same (slot) order."""
    docs = index.get_by_ids(index.ids)
    fresh = HybridIndex(HashingEmbedding(), dense_kind="flat")
    if docs:
        fresh.add_documents(docs)
    return fresh


def compare(index: HybridIndex, fresh: HybridIndex) -> None:
    assert index.ids == fresh.ids and len(index) == len(fresh)
    assert index.get_by_ids(index.ids) == fresh.get_by_ids(fresh.ids)
    bm25, fresh_bm25 = index._bm25, fresh._bm25
    assert bm25.n_live == fresh_bm25.n_live
    assert bm25.avg_doc_len == pytest.approx(fresh_bm25.avg_doc_len)
    for word in VOCAB:
        term = fresh.tokenizer(word)[0]
        assert bm25.doc_freq(term) == fresh_bm25.doc_freq(term)
    everything = 1000
    for query in QUERIES:
        vector = fresh.embed_query(query)
        for filt in (None, {"g": 1}, lambda m: m["g"] != 2):
            full_kw = fresh.search_keyword(query, everything, filter=filt)
            assert_same_ranking(index.search_keyword(query, everything, filter=filt), full_kw)
            assert_same_top_k(index.search_keyword(query, 2, filter=filt), full_kw)
            full_dense = fresh.search_dense(vector, everything, filter=filt)
            assert_same_ranking(index.search_dense(vector, everything, filter=filt), full_dense)
            assert_same_top_k(index.search_dense(vector, 3, filter=filt), full_dense)
        got = index.similarity_search_with_score(query, k=everything)
        want = fresh.similarity_search_with_score(query, k=everything)
        assert_same_ranking(
            ([d.id or "" for d, _ in got], np.array([s for _, s in got])),
            ([d.id or "" for d, _ in want], np.array([s for _, s in want])),
        )
        by_id = {d.id: d for d, _ in want}
        assert all(by_id[d.id] == d for d, _ in got)
        if index.ids:
            np.testing.assert_allclose(
                index.score_keyword(query, index.ids), fresh.score_keyword(query, fresh.ids)
            )
            np.testing.assert_allclose(
                index.score_dense(vector, index.ids),
                fresh.score_dense(vector, fresh.ids),
                atol=TOL,
            )


def apply(index: HybridIndex, op: tuple[str, Any], counter: list[int]) -> HybridIndex:
    kind, arg = op
    if kind == "add":
        ids = []
        for _ in arg:
            ids.append(f"doc{counter[0]}")
            counter[0] += 1
        index.add_texts([t for t, _ in arg], [{"g": g} for _, g in arg], ids=ids)
    elif kind == "upsert" and index.ids:
        live = index.ids
        chosen: dict[str, tuple[str, int]] = {}
        for pick, text, g in arg:
            chosen[live[pick % len(live)]] = (text, g)
        if chosen:
            index.add_texts(
                [t for t, _ in chosen.values()],
                [{"g": g} for _, g in chosen.values()],
                ids=list(chosen),
            )
    elif kind == "delete":
        index.delete([f"doc{i}" for i in arg])  # some of these never existed
    elif kind == "compact":
        index.compact()
    elif kind == "save_load":
        with tempfile.TemporaryDirectory() as tmp:
            index.save(f"{tmp}/idx")
            index = HybridIndex.load(f"{tmp}/idx", HashingEmbedding(), mmap=arg)
            # the temporary files vanish now; a memory-mapped index must not care (POSIX)
    return index


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(operation, min_size=1, max_size=10))
def test_incremental_index_equals_a_fresh_build(ops: list[tuple[str, Any]]) -> None:
    index = HybridIndex(HashingEmbedding(), dense_kind="flat")
    counter = [0]
    for op in ops:
        index = apply(index, op, counter)
    compare(index, rebuild(index))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=8))
def test_hnsw_index_stays_consistent(ops: list[tuple[str, Any]]) -> None:
    """With HNSW, dense results are approximate, but keyword side and documents stay exact."""
    index = HybridIndex(HashingEmbedding(), dense_kind="hnsw")
    counter = [0]
    for op in ops:
        index = apply(index, op, counter)
    fresh = rebuild(index)
    assert index.ids == fresh.ids
    for query in QUERIES:
        assert_same_ranking(index.search_keyword(query, 1000), fresh.search_keyword(query, 1000))
        # small collections: HNSW with efSearch >= n is exhaustive
        assert_same_ranking(
            index.search_dense(fresh.embed_query(query), 1000),
            fresh.search_dense(fresh.embed_query(query), 1000),
        )
