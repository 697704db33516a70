from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import BM25Index, CandidatePool, FusionRetriever
from langchain_fusion.evaluation import evaluate
from langchain_fusion.evaluation.adaptive import (
    ADAPTIVE_ALPHAS,
    FEATURES,
    AdaptiveFusion,
    AdaptiveFusionRetriever,
    TermStats,
    cross_validate_adaptive,
    pool_features,
    query_features,
    query_text_features,
)
from langchain_fusion.evaluation.tune import gather_pools
from tests.fakes import LookupEmbedding, ScriptedSource

# ------------------------------------------------------------------------------ text features


@pytest.mark.parametrize(
    "query",
    [
        "how to use read_csv",
        "what does E-217 mean",
        "changes in 4.2.1",
        "call readCsv twice",
        "pandas.read_csv encoding",
        "reset the BMS",
        "why does fit() fail",
        "IL6 levels in sepsis",
    ],
)
def test_identifier_patterns(query: str) -> None:
    assert query_text_features(query)["identifier"] == 1.0


@pytest.mark.parametrize(
    "query", ["why is the sky blue", "how do solar panels work in winter", "Is it safe?"]
)
def test_plain_questions_have_no_identifier(query: str) -> None:
    f = query_text_features(query)
    assert f["identifier"] == 0.0 and f["quoted"] == 0.0 and f["digits"] == 0.0


def test_quotes_digits_and_length() -> None:
    f = query_text_features('find "heat pump" manual 2024 v2')
    assert f["quoted"] == 1.0
    assert f["digits"] == pytest.approx(2 / 6)
    assert f["n_terms"] == pytest.approx(math.log1p(6))
    assert query_text_features("use `fit` here")["quoted"] == 1.0
    assert query_text_features("it's fine")["quoted"] == 0.0  # an apostrophe is not a quote


def test_term_features_from_bm25_statistics() -> None:
    index = BM25Index()
    index.add(["red apples", "green apples", "yellow pears", "blue sky"])
    stats = TermStats.from_index(index)
    assert stats is not None and stats.n_docs == 4
    f = query_text_features("apples pears kiwis", stats)
    # terms: appl (df 2), pear (df 1), kiwi (unknown)
    n = 4
    top = math.log1p((n - 1 + 0.5) / 1.5)
    idf_appl = math.log1p((n - 2 + 0.5) / 2.5) / top
    assert f["n_terms"] == pytest.approx(math.log1p(3))
    assert f["frac_unknown"] == pytest.approx(1 / 3)
    assert f["max_idf"] == pytest.approx(1.0)
    assert f["mean_idf"] == pytest.approx((1.0 + idf_appl) / 2)
    none = query_text_features("kiwis", stats)
    assert none["frac_unknown"] == 1.0 and none["max_idf"] == 0.0


def test_term_stats_from_retriever_and_index() -> None:
    r = FusionRetriever.from_texts(["a cat", "a dog"], DeterministicFakeEmbedding(size=8))
    stats = TermStats.from_index(r)
    assert stats is not None and stats.n_docs == 2 and stats.doc_freq("cat") == 1
    assert TermStats.from_index(r.index) is not None
    assert TermStats.from_index(object()) is None


# ------------------------------------------------------------------------------ pool features


def _pool(dense: list[float], bm25: list[float]) -> CandidatePool:
    """Candidates 0..n-1; each side ranks the ones it scores (NaN = not found) by score."""
    raw = np.array([dense, bm25], dtype=float)
    found = np.zeros(raw.shape, dtype=np.int64)
    for i in range(2):
        idx = np.flatnonzero(~np.isnan(raw[i]))
        order = idx[np.argsort(-raw[i, idx], kind="stable")]
        found[i, order] = np.arange(1, order.size + 1)
    n = raw.shape[1]
    return CandidatePool(
        [f"id:{j}" for j in range(n)],
        ["dense", "bm25"],
        raw,
        found,
        np.array([True, True]),
        _docs=[None] * n,
        _loaders=[None] * n,
    )


def test_peaked_and_flat_lists() -> None:
    nan = math.nan
    pool = _pool([0.8, 0.4, 0.4, 0.4], [10.0, 10.0, 10.0, nan])
    f = pool_features(pool, fetch_k=4)
    assert f["dense_gap"] == pytest.approx(0.5)  # (0.8 - 0.4) / 0.8
    assert f["dense_peak"] == pytest.approx((0.8 - 0.5) / 0.8)
    # min-max normalized dense top scores: [1, 0, 0, 0] -> entropy 0
    assert f["dense_entropy"] == pytest.approx(0.0)
    assert f["bm25_gap"] == 0.0 and f["bm25_peak"] == 0.0
    assert f["bm25_entropy"] == 1.0  # flat
    assert f["bm25_top"] == pytest.approx(math.log1p(10.0))
    assert f["bm25_hits"] == pytest.approx(math.log1p(3) / math.log1p(4))
    assert f["overlap"] == pytest.approx(3 / 4)


def test_entropy_of_a_linear_list() -> None:
    f = pool_features(_pool([3.0, 2.0, 1.0], [1.0, math.nan, math.nan]))
    p = np.array([1.0, 0.5, 0.0]) / 1.5
    expected = -(p[:2] * np.log(p[:2])).sum() / math.log(10)
    assert f["dense_entropy"] == pytest.approx(expected)
    assert f["bm25_gap"] == 1.0  # a single hit is maximally peaked
    assert f["overlap"] == pytest.approx(1 / 3)


def test_empty_sides_and_feature_vector() -> None:
    f = pool_features(_pool([0.5], [math.nan]))
    assert f["bm25_hits"] == 0.0 and f["bm25_top"] == 0.0 and f["bm25_entropy"] == 1.0
    vec = query_features("E-217", _pool([0.5], [1.0]))
    assert vec.shape == (len(FEATURES),) and np.isfinite(vec).all()
    assert vec[FEATURES.index("identifier")] == 1.0


# ------------------------------------------------------------------------------ learning


def _mixed_world(
    n: int = 40, seed: int = 0
) -> tuple[FusionRetriever, dict[str, str], dict[str, dict[str, int]]]:
    """Two kinds of queries that need opposite alphas.

    Code queries (``E-117``): BM25 finds the target; the dense side prefers a decoy and ranks
    the target last. Prose queries: the dense side finds the target; BM25 prefers a decoy that
    repeats the query words. Any fixed alpha fails one kind.
    """
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(2 * n, 24))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table: dict[str, list[float]] = {}
    docs, queries, qrels = [], {}, {}
    for i in range(n):
        u, v = vectors[i], vectors[n + i]
        code_q, code_doc, code_decoy = f"E-{100 + i}", f"error E-{100 + i} overheats", f"ud{i}"
        table[code_q], table[code_doc], table[code_decoy] = u.tolist(), (-u).tolist(), u.tolist()
        prose_q = f"what helps tomatoes grow qz{i}"
        prose_doc, prose_decoy = (
            f"gardening passage pg{i}",
            f"decoy: what helps tomatoes grow qz{i}",
        )
        table[prose_q], table[prose_doc] = v.tolist(), v.tolist()
        table[prose_decoy] = (-v).tolist()
        docs += [
            Document(code_doc, id=f"c{i}"),
            Document(code_decoy, id=f"y{i}"),
            Document(prose_doc, id=f"p{i}"),
            Document(prose_decoy, id=f"x{i}"),
        ]
        queries[f"code{i}"], qrels[f"code{i}"] = code_q, {f"c{i}": 1}
        queries[f"prose{i}"], qrels[f"prose{i}"] = prose_q, {f"p{i}": 1}
    r = FusionRetriever.from_documents(docs, LookupEmbedding(table, 24), fetch_k=20)
    return r, queries, qrels


@pytest.fixture(scope="module")
def mixed() -> tuple[FusionRetriever, dict[str, str], dict[str, dict[str, int]]]:
    return _mixed_world()


def test_model_learns_keyword_vs_vector_queries(mixed: tuple) -> None:
    r, queries, qrels = mixed
    model = AdaptiveFusion.fit(
        r,
        queries,
        qrels,
        setting={"method": "convex", "normalization": "minmax"},
        show_progress=False,
    )
    stats = TermStats.from_index(r)
    code_alpha = model.alpha_for("E-105", r.gather("E-105"), stats)
    prose_q = "what helps tomatoes grow qz7"
    prose_alpha = model.alpha_for(prose_q, r.gather(prose_q), stats)
    assert code_alpha < 0.5 < prose_alpha
    adaptive = model.as_retriever(r)
    a = evaluate(adaptive, queries, qrels, metrics=["ndcg@10"], show_progress=False)
    best_fixed = max(
        evaluate(
            r.model_copy(update={"alpha": x}),
            queries,
            qrels,
            metrics=["ndcg@10"],
            show_progress=False,
        ).metrics["ndcg@10"]
        for x in ADAPTIVE_ALPHAS
    )
    assert a.metrics["ndcg@10"] > best_fixed
    assert a.metrics["ndcg@10"] == pytest.approx(1.0)


def test_cross_validation_reports_adaptive_fixed_and_oracle(mixed: tuple) -> None:
    r, queries, qrels = mixed
    c = cross_validate_adaptive(r, queries, qrels, cv=4, show_progress=False)
    assert len(c.fixed_folds) == 4 and len(c.per_query_fixed) == len(queries)
    assert c.fixed <= c.oracle + 1e-12 and c.adaptive <= c.oracle + 1e-12
    assert c.adaptive > c.fixed and c.better and c.wins >= 3
    assert c.oracle == pytest.approx(1.0)
    text = c.to_markdown()
    assert "4-fold CV" in text and "adaptive alpha" in text and "p = " in text


def test_reused_pools_match_a_fresh_fit(mixed: tuple) -> None:
    r, queries, qrels = mixed
    pools = gather_pools(r, queries, qrels, show_progress=False)
    a = AdaptiveFusion.fit(r, queries, qrels, pools=pools, show_progress=False)
    b = AdaptiveFusion.fit(r, queries, qrels, show_progress=False)
    np.testing.assert_allclose(a.coef, b.coef)
    assert a.settings() == b.settings() and a.l2 == b.l2 and a.n_train == len(queries)


def test_strong_regularization_falls_back_to_the_mean_curve() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, len(FEATURES)))
    y = np.tile(np.array([0.1, 0.9, 0.3]), (50, 1)) + rng.normal(scale=0.01, size=(50, 3))
    r = FusionRetriever(retrievers=[ScriptedSource([], []), ScriptedSource([], [])])
    model = AdaptiveFusion._train(
        x, y, (0.0, 0.5, 1.0), {"method": "convex"}, 100, 1e9, "ndcg@10", 0, r
    )
    preds = model.predict(x)
    assert (preds.argmax(axis=1) == 1).all()
    assert np.abs(model.coef).max() < 1e-6


# ------------------------------------------------------------------------------ persistence


def test_save_and_load_round_trip(tmp_path: Path, mixed: tuple) -> None:
    r, queries, qrels = mixed
    model = AdaptiveFusion.fit(r, queries, qrels, show_progress=False)
    path = model.save(tmp_path / "adaptive.json")
    data = json.loads(path.read_text())
    assert data["format"] == "langchain-fusion/adaptive" and data["features"] == list(FEATURES)
    loaded = AdaptiveFusion.load(path)
    x = np.random.default_rng(1).normal(size=(5, len(FEATURES)))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.settings() == model.settings() and loaded.alphas == model.alphas


def test_bad_model_files(tmp_path: Path) -> None:
    good = AdaptiveFusion((0.0, 1.0), np.zeros((16, 2)), np.zeros(2), np.zeros(16), np.ones(16))
    data = good.to_dict()
    with pytest.raises(ValueError, match="version 99 is not supported"):
        AdaptiveFusion.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match=r"coef must have shape \(16, 2\)"):
        AdaptiveFusion.from_dict({**data, "coef": [[0.0] * 2] * 3})
    with pytest.raises(ValueError, match="features must be"):
        AdaptiveFusion.from_dict({**data, "features": ["x"]})
    with pytest.raises(ValueError, match=r"alphas must be .* in \[0, 1\]"):
        AdaptiveFusion((2.0,), np.zeros((16, 1)), np.zeros(1), np.zeros(16), np.ones(16))
    (tmp_path / "broken.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not an adaptive fusion model"):
        AdaptiveFusion.load(tmp_path / "broken.json")


# ------------------------------------------------------------------------------ retriever


def _constant_model(alpha_scores: list[float], **kwargs: object) -> AdaptiveFusion:
    n = len(alpha_scores)
    alphas = tuple(np.linspace(0, 1, n).round(3).tolist())
    return AdaptiveFusion(
        alphas, np.zeros((16, n)), np.array(alpha_scores), np.zeros(16), np.ones(16), **kwargs
    )  # type: ignore[arg-type]


def test_retriever_uses_the_model_alpha_and_takes_its_settings() -> None:
    r = FusionRetriever.from_texts(
        ["error E-217 battery", "cold battery tips"], DeterministicFakeEmbedding(size=8), k=2
    )
    model = _constant_model([0.0, 0.0, 1.0], method="rrf", rrf_k=20, fetch_k=50)
    a = AdaptiveFusionRetriever.from_retriever(r, model)
    assert (a.method, a.rrf_k, a.fetch_k, a.k) == ("rrf", 20, 50, 2)
    docs = a.invoke("E-217")
    assert docs[0].metadata["fusion"]["weights"] == {"dense": 1.0, "bm25": 0.0}
    assert docs[0].metadata["fusion"]["method"] == "rrf"
    # an explicit alpha wins over the model
    docs = a.invoke("E-217", alpha=0.25)
    assert docs[0].metadata["fusion"]["weights"] == {"dense": 0.25, "bm25": 0.75}


async def test_async_path_uses_the_model() -> None:
    r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
    a = _constant_model([1.0, 0.0]).as_retriever(r, k=1)
    docs = await a.ainvoke("b")
    assert docs[0].metadata["fusion"]["weights"] == {"dense": 0.0, "bm25": 1.0}


def test_retriever_from_index_and_errors() -> None:
    r = FusionRetriever.from_texts(["x y"], DeterministicFakeEmbedding(size=8))
    a = AdaptiveFusionRetriever.from_index(r.index, adaptive=_constant_model([0.0, 1.0]))
    assert a.choose_alpha("x", a.gather("x")) == 1.0
    three = FusionRetriever(
        retrievers=[ScriptedSource([], []), ScriptedSource([], []), ScriptedSource([], [])]
    )
    with pytest.raises(ValueError, match="exactly two retrievers"):
        AdaptiveFusionRetriever.from_retriever(three, _constant_model([0.0, 1.0]))
    with pytest.raises(ValueError, match="exactly two retrievers"):
        AdaptiveFusion.fit(three, {"q": "x"}, {"q": {"d": 1}}, show_progress=False)
    with pytest.raises(TypeError, match="must be a FusionRetriever"):
        AdaptiveFusion.fit(object(), {"q": "x"}, {"q": {"d": 1}})  # type: ignore[arg-type]
