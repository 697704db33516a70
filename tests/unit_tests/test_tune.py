from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import CandidatePool, FusionRetriever
from langchain_fusion.evaluation import evaluate
from langchain_fusion.evaluation.tune import (
    DEFAULT_ALPHAS,
    GRID_KEYS,
    cross_validate,
    gather_pools,
    kfold,
    score_settings,
    simplex_grid,
    tune,
    window,
)
from langchain_fusion.fusion import fuse_many
from tests.fakes import BagOfWordsEmbedding, LookupEmbedding, ScriptedSource

# ------------------------------------------------------------------------------ fixtures

_WORD_TEXT = """battery charge winter cold heat pump solar panel roof inverter grid export limit
firmware update vent filter clean warranty claim repair error code screen reset button cable fuse
meter tariff night storage capacity cycle"""
WORDS = tuple(_WORD_TEXT.split())


def _corpus(n: int = 60, seed: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        words = rng.choice(WORDS, size=12, replace=True).tolist()
        docs.append(Document(f"item{i:03d} " + " ".join(words), id=f"d{i}"))
    return docs


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return _corpus()


@pytest.fixture(scope="module")
def bag_retriever(corpus: list[Document]) -> FusionRetriever:
    return FusionRetriever.from_documents(corpus, BagOfWordsEmbedding(), fetch_k=30)


@pytest.fixture(scope="module")
def judged(corpus: list[Document]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries made of words of a target document (and its neighbour), judged graded."""
    rng = np.random.default_rng(1)
    queries, qrels = {}, {}
    for q in range(20):
        target = int(rng.integers(len(corpus)))
        words = corpus[target].page_content.split()[1:]
        queries[f"q{q}"] = " ".join(rng.choice(words, size=3, replace=False).tolist())
        qrels[f"q{q}"] = {f"d{target}": 2, f"d{(target + 1) % len(corpus)}": 1}
    return queries, qrels


def _keyword_world() -> tuple[FusionRetriever, dict[str, str], dict[str, dict[str, int]]]:
    """BM25 is perfect (unique codes), the dense side is random."""
    docs = [Document(f"code{i:03d} shared filler words here", id=f"d{i}") for i in range(30)]
    queries = {f"q{i}": f"code{i:03d}" for i in range(30)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(30)}
    r = FusionRetriever.from_documents(docs, DeterministicFakeEmbedding(size=16), fetch_k=20)
    return r, queries, qrels


def _dense_world() -> tuple[FusionRetriever, dict[str, str], dict[str, dict[str, int]]]:
    """The dense side is perfect (query vector = target vector); BM25 matches a decoy."""
    rng = np.random.default_rng(3)
    n = 20
    vectors = rng.normal(size=(n, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"topic{i} general text" for i in range(n)]
    decoys = [f"decoy words for {i}: ask{i} question{i}" for i in range(n)]
    table = {t: v.tolist() for t, v in zip(texts, vectors, strict=True)}
    queries, qrels = {}, {}
    for i in range(n):
        q = f"ask{i} question{i}"
        table[q] = vectors[i].tolist()
        table[decoys[i]] = (-vectors[i]).tolist()
        queries[f"q{i}"] = q
        qrels[f"q{i}"] = {f"t{i}": 1}
    docs = [Document(t, id=f"t{i}") for i, t in enumerate(texts)]
    docs += [Document(t, id=f"x{i}") for i, t in enumerate(decoys)]
    r = FusionRetriever.from_documents(docs, LookupEmbedding(table, 16), fetch_k=20)
    return r, queries, qrels


# ------------------------------------------------------------------------------ best settings


def test_keyword_perfect_corpus_picks_alpha_zero() -> None:
    r, queries, qrels = _keyword_world()
    report = tune(r, queries, qrels, grid={"alpha": list(DEFAULT_ALPHAS)}, show_progress=False)
    assert report.best["alpha"] == 0.0
    assert report.best_score == pytest.approx(1.0)
    alphas, scores = report.curve()
    assert alphas == list(DEFAULT_ALPHAS)
    assert scores[-1] < 0.8  # dense alone is random here
    assert report.retriever.alpha == 0.0 and report.retriever.weights is None
    assert r.alpha == 0.5  # the input retriever is not modified


def test_dense_perfect_corpus_picks_a_high_alpha() -> None:
    r, queries, qrels = _dense_world()
    report = tune(r, queries, qrels, grid={"alpha": list(DEFAULT_ALPHAS)}, show_progress=False)
    alphas, scores = report.curve()
    assert scores[0] < 0.7  # BM25 alone ranks the decoy first
    assert scores[-1] == pytest.approx(1.0)
    assert report.best_score == pytest.approx(1.0)
    assert report.best["alpha"] >= 0.5
    assert all(v < 1.0 for a, v in zip(alphas, scores, strict=True) if a < 0.5)
    # ties go to the first setting in grid order
    assert report.best["alpha"] == alphas[scores.index(max(scores))]


def test_tuned_retriever_reproduces_the_reported_score(
    bag_retriever: FusionRetriever, judged: tuple[dict[str, str], dict[str, dict[str, int]]]
) -> None:
    queries, qrels = judged
    report = tune(bag_retriever, queries, qrels, show_progress=False)
    real = evaluate(report.retriever, queries, qrels, metrics=["ndcg@10"], show_progress=False)
    assert real.metrics["ndcg@10"] == pytest.approx(report.best_score, abs=1e-12)
    assert report.best_score == pytest.approx(float(np.max(report.scores)))


@pytest.mark.parametrize(
    "setting",
    [
        {"method": "convex", "normalization": "minmax", "alpha": 0.3},
        {"method": "convex", "normalization": "zscore", "alpha": 0.7},
        {"method": "convex", "normalization": "dbsf", "alpha": 0.5},
        {"method": "convex", "normalization": "none", "alpha": 0.2},
        {"method": "rrf", "rrf_k": 10, "alpha": 0.4},
        {"method": "rrf", "rrf_k": 60, "alpha": 1.0},
        {"method": "convex", "normalization": "minmax", "alpha": 0.5, "fetch_k": 12},
        {"method": "rrf", "rrf_k": 20, "alpha": 0.6, "fetch_k": 15},
    ],
)
@pytest.mark.parametrize("metric", ["ndcg@10", "recall@20", "mrr@5", "p@3", "hits@2"])
def test_sweep_scores_equal_real_evaluation(
    bag_retriever: FusionRetriever,
    judged: tuple[dict[str, str], dict[str, dict[str, int]]],
    setting: dict[str, Any],
    metric: str,
) -> None:
    """Every cached score equals evaluate() on a retriever configured with the setting."""
    queries, qrels = judged
    cache = gather_pools(bag_retriever, queries, qrels, show_progress=False)
    cached = score_settings(bag_retriever, cache, qrels, [setting], metric=metric)[0]
    configured = bag_retriever.model_copy(update=setting)
    real = evaluate(configured, queries, qrels, metrics=[metric], show_progress=False)
    for i, qid in enumerate(cache.query_ids):
        assert cached[i] == pytest.approx(real.per_query[qid][metric], abs=1e-12), qid


# ------------------------------------------------------------------------------ exact fusion


def _random_pool(rng: np.random.Generator, complete: bool) -> CandidatePool:
    n = int(rng.integers(1, 25))
    raw = np.round(rng.normal(size=(2, n)), 1)  # rounded: many exact ties
    raw[1] = np.abs(raw[1]) * 5
    found = np.zeros((2, n), dtype=np.int64)
    for i in range(2):
        hit = rng.random(n) < 0.7
        hit[int(rng.integers(n))] = True
        idx = np.flatnonzero(hit)
        order = idx[np.argsort(-raw[i, idx], kind="stable")]
        found[i, order] = np.arange(1, order.size + 1)
        if not complete:
            raw[i, ~hit] = np.nan
    keys = [f"id:{j}" for j in range(n)]
    return CandidatePool(
        keys,
        ["dense", "bm25"],
        raw,
        found,
        np.array([True, True]),
        _docs=[None] * n,
        _loaders=[None] * n,
    )


@pytest.mark.parametrize("complete", [True, False])
@pytest.mark.parametrize("complete_scoring", [None, True, False])
def test_vectorized_fusion_matches_fuse_pool_exactly(
    complete: bool, complete_scoring: bool | None
) -> None:
    r = FusionRetriever(
        retrievers=[ScriptedSource([], []), ScriptedSource([], [])],
        complete_scoring=complete_scoring,
    )
    rng = np.random.default_rng(7)
    groups = [("convex", n) for n in ("minmax", "zscore", "dbsf", "none")]
    groups += [("rrf", k) for k in (0, 10, 60)]
    alphas = np.array(DEFAULT_ALPHAS)
    weights = np.stack([alphas, 1 - alphas], axis=1)
    for _ in range(20):
        pool = _random_pool(rng, complete)
        for group in groups:
            settings: list[dict[str, Any]] = []
            for a in alphas:
                kw: dict[str, Any] = {"alpha": float(a), "method": group[0]}
                kw.update(
                    {"normalization": group[1]} if group[0] == "convex" else {"rrf_k": group[1]}
                )
                settings.append(kw)
            # the batched fusion the tuner uses, against the retriever's one-spec fusion
            orders = fuse_many(pool, [r.fusion_spec(**kw) for kw in settings])
            assert weights.shape[0] == len(orders)
            for kw, order in zip(settings, orders, strict=True):
                expected = r.fuse_pool(pool, **kw).order
                assert order.tolist() == expected.tolist(), (group, kw)


def test_window_matches_a_real_smaller_gather(bag_retriever: FusionRetriever) -> None:
    big = bag_retriever.gather("battery winter cold", fetch_k=30)
    small = bag_retriever.gather("battery winter cold", fetch_k=8)
    cut = window(big, 8)
    assert sorted(cut.keys) == sorted(small.keys)
    where = {k: j for j, k in enumerate(cut.keys)}
    for j, key in enumerate(small.keys):
        assert cut.found_rank[:, where[key]].tolist() == small.found_rank[:, j].tolist()
        np.testing.assert_allclose(cut.raw[:, where[key]], small.raw[:, j])
    assert window(big, 30) is big


def test_window_without_complete_scoring_drops_scores_beyond_the_cut() -> None:
    pool = CandidatePool(
        ["id:a", "id:b"],
        ["dense", "bm25"],
        np.array([[0.9, 0.8], [1.0, 2.0]]),
        np.array([[1, 2], [2, 1]]),
        np.array([True, True]),
        _docs=[None, None],
        _loaders=[None, None],
    )
    cut = window(pool, 1, complete_scoring=False)
    assert cut.keys == ["id:a", "id:b"]
    assert np.isnan(cut.raw[1, 0]) and np.isnan(cut.raw[0, 1])
    assert window(pool, 1).raw.tolist() == pool.raw.tolist()


# ------------------------------------------------------------------------------ the cache


def test_gathers_once_per_query_whatever_the_grid_size(
    bag_retriever: FusionRetriever,
    judged: tuple[dict[str, str], dict[str, dict[str, int]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queries, qrels = judged
    calls: list[tuple[str, int | None]] = []
    original = FusionRetriever.gather

    def counting(self: FusionRetriever, query: str, **kwargs: Any) -> CandidatePool:
        calls.append((query, kwargs.get("fetch_k")))
        return original(self, query, **kwargs)

    monkeypatch.setattr(FusionRetriever, "gather", counting)
    small = tune(bag_retriever, queries, qrels, grid={"alpha": [0.5]}, show_progress=False)
    assert len(calls) == len(queries) and len(small.settings) == 1
    calls.clear()
    full = tune(bag_retriever, queries, qrels, show_progress=False)
    assert len(full.settings) > 100
    assert len(calls) == len(queries)
    assert {fk for _, fk in calls} == {30}  # the deepest fetch_k of the grid, once


def test_reusing_pools_does_not_gather_again(
    bag_retriever: FusionRetriever,
    judged: tuple[dict[str, str], dict[str, dict[str, int]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queries, qrels = judged
    cache = gather_pools(bag_retriever, queries, qrels, show_progress=False)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("gather must not be called")

    monkeypatch.setattr(FusionRetriever, "gather", fail)
    report = tune(
        bag_retriever, queries, qrels, grid={"alpha": [0.0, 1.0]}, pools=cache, show_progress=False
    )
    assert len(report.query_ids) == len(queries)


def test_default_grid_contents(bag_retriever: FusionRetriever, judged: Any) -> None:
    queries, qrels = judged
    report = tune(bag_retriever, queries, qrels, show_progress=False)
    convex = [s for s in report.settings if s["method"] == "convex"]
    rrf = [s for s in report.settings if s["method"] == "rrf"]
    assert {s["normalization"] for s in convex} == {"minmax", "zscore", "dbsf"}
    assert {s["rrf_k"] for s in rrf} == {10, 20, 40, 60, 100}
    assert {s["alpha"] for s in report.settings} == set(DEFAULT_ALPHAS)
    assert {s["fetch_k"] for s in report.settings} == {10, 15, 30}  # fetch_k=30: 30, 15, 7->10
    assert len(report.settings) == (3 + 5) * 21 * 3
    assert len({tuple(sorted(s.items())) for s in report.settings}) == len(report.settings)


# ------------------------------------------------------------------------------ N retrievers


def test_weights_grid_for_three_retrievers() -> None:
    docs = [Document(f"doc {i}", id=f"d{i}") for i in range(6)]
    good = ScriptedSource([docs[2], docs[0], docs[1]], [3.0, 2.0, 1.0])
    bad1 = ScriptedSource([docs[0], docs[1], docs[2]], [3.0, 2.0, 1.0])
    bad2 = ScriptedSource([docs[1], docs[0], docs[2]], [3.0, 2.0, 1.0])
    r = FusionRetriever(retrievers=[bad1, bad2, good])
    report = tune(r, {"q": "anything"}, {"q": {"d2": 1}}, metric="mrr@10", show_progress=False)
    assert "weights" in report.best and "alpha" not in report.best
    assert report.best_score == 1.0
    w = report.best["weights"]
    assert w[2] > 0
    assert report.retriever.weights == list(w)
    bad_only = [i for i, s in enumerate(report.settings) if s["weights"] == (1.0, 0.0, 0.0)]
    assert all(report.scores[i] < 1.0 for i in bad_only)
    assert len({s["weights"] for s in report.settings}) == len(simplex_grid(3, 0.1))
    with pytest.raises(ValueError, match="exactly two retrievers"):
        tune(r, {"q": "x"}, {"q": {"d2": 1}}, grid={"alpha": [0.5]}, show_progress=False)


def test_simplex_grid() -> None:
    grid = simplex_grid(3, 0.25)
    assert len(grid) == math.comb(4 + 2, 2)
    assert all(abs(sum(w) - 1) < 1e-12 and min(w) >= 0 for w in grid)
    assert simplex_grid(1) == [(1.0,)]
    with pytest.raises(ValueError, match="step"):
        simplex_grid(2, 0.3)
    with pytest.raises(ValueError, match="n must be"):
        simplex_grid(0)


# ------------------------------------------------------------------------------ cross-validation


def test_kfold_partitions_deterministically() -> None:
    folds = kfold(23, 5, seed=4)
    flat = np.concatenate(folds)
    assert sorted(flat.tolist()) == list(range(23))
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    assert [f.tolist() for f in kfold(23, 5, seed=4)] == [f.tolist() for f in folds]
    assert [f.tolist() for f in kfold(23, 5, seed=5)] != [f.tolist() for f in folds]
    with pytest.raises(ValueError, match="cv must be at most"):
        kfold(3, 4)
    with pytest.raises(ValueError, match="cv must be an integer >= 2"):
        kfold(3, 1)


def test_cross_validate_scores_held_out_queries_with_the_train_best() -> None:
    # setting 0 is better on queries 0-3, setting 1 on 4-5
    scores = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=float)
    settings = [{"alpha": 0.0}, {"alpha": 1.0}]
    cv = cross_validate(scores, settings, k=6)  # leave-one-out
    assert all(f.best == {"alpha": 0.0} for f in cv.folds)
    assert cv.mean_score == pytest.approx(4 / 6)
    assert sum(f.n_test for f in cv.folds) == 6


def test_tune_with_cv(bag_retriever: FusionRetriever, judged: Any) -> None:
    queries, qrels = judged
    report = tune(
        bag_retriever, queries, qrels, grid={"alpha": [0.0, 0.5, 1.0]}, cv=4, show_progress=False
    )
    assert report.cv is not None and len(report.cv.folds) == 4
    assert sum(f.n_test for f in report.cv.folds) == len(queries)
    assert report.cv.mean_score <= max(f.train_score for f in report.cv.folds) + 1
    assert "4-fold cross-validation" in report.to_markdown()
    with pytest.raises(ValueError, match="cv must be at most the number of judged queries"):
        tune(bag_retriever, queries, qrels, grid={"alpha": [0.5]}, cv=50, show_progress=False)


# ------------------------------------------------------------------------------ report


def test_report_table_and_markdown(bag_retriever: FusionRetriever, judged: Any) -> None:
    queries, qrels = judged
    report = tune(
        bag_retriever,
        queries,
        qrels,
        grid={"method": ["rrf", "zscore"], "alpha": [0.2, 0.8]},
        show_progress=False,
    )
    rows = report.table()
    assert [r["ndcg@10"] for r in rows] == sorted((r["ndcg@10"] for r in rows), reverse=True)
    assert rows[0]["ndcg@10"] == report.best_score
    text = report.to_markdown(top=2)
    assert text.splitlines()[0] == "| rank | method | normalization | rrf_k | alpha | ndcg@10 |"
    assert "best of 4 settings (top 2 shown) on 20 queries" in text
    assert set(report.curves()) == {"rrf k=60", "convex zscore"}


# ------------------------------------------------------------------------------ errors


def test_queries_without_judgments_are_dropped_with_a_warning(
    bag_retriever: FusionRetriever, judged: Any
) -> None:
    queries, qrels = judged
    extra = {**queries, "unjudged": "battery"}
    with pytest.warns(UserWarning, match="1 of 21 queries have no judgments"):
        report = tune(bag_retriever, extra, qrels, grid={"alpha": [0.5]}, show_progress=False)
    assert "unjudged" not in report.query_ids and len(report.query_ids) == 20


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"grid": {}}, ValueError, "grid is empty"),
        ({"grid": {"alpha": []}}, ValueError, r"grid\['alpha'\] is empty"),
        ({"grid": {"alpah": [0.5]}}, ValueError, "unknown setting.*'alpah'.*valid keys are"),
        ({"grid": {"alpha": [1.5]}}, ValueError, r"grid\['alpha'\] values must be numbers in"),
        ({"grid": {"method": ["mean"]}}, ValueError, r"grid\['method'\] values must be one of"),
        ({"grid": {"normalization": ["l2"]}}, ValueError, "normalization.*'l2'"),
        ({"grid": {"rrf_k": [-1]}}, ValueError, r"rrf_k.*>= 0, got -1"),
        ({"grid": {"alpha": [0.5], "weights": [[1, 1]]}}, ValueError, "either 'alpha' or"),
        ({"grid": {"weights": [[1, -1]]}}, ValueError, r"grid\['weights'\] has an invalid"),
        ({"grid": {"fetch_k": [0]}}, ValueError, "fetch_k'\\] values must be an integer"),
        ({"grid": {"fetch_k": [50]}, "fetch_k": 20}, ValueError, r"\[50\] exceed fetch_k=20"),
        ({"metric": "ndcg"}, ValueError, "unknown metric 'ndcg'"),
        ({"cv": 1}, ValueError, "cv must be an integer >= 2, got 1"),
        ({"fetch_k": 0}, ValueError, "fetch_k must be an integer >= 1, got 0"),
        ({"grid": "alpha"}, TypeError, "grid must be a mapping"),
    ],
)
def test_bad_arguments(
    bag_retriever: FusionRetriever, judged: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    queries, qrels = judged
    with pytest.raises(error, match=match):
        tune(bag_retriever, queries, qrels, show_progress=False, **kwargs)


def test_no_judged_query_and_wrong_types(bag_retriever: FusionRetriever) -> None:
    with pytest.raises(ValueError, match="no query has judgments"):
        tune(bag_retriever, {"a": "battery"}, {"b": {"d1": 1}}, show_progress=False)
    with pytest.raises(ValueError, match="queries is empty"):
        tune(bag_retriever, {}, {"b": {"d1": 1}}, show_progress=False)
    with pytest.raises(TypeError, match="queries\\['a'\\] must be a string"):
        tune(bag_retriever, {"a": 3}, {"a": {"d1": 1}}, show_progress=False)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="retriever must be a FusionRetriever"):
        tune(object(), {"a": "x"}, {"a": {"d1": 1}})  # type: ignore[arg-type]


def test_ids_that_never_match_qrels_warn(bag_retriever: FusionRetriever) -> None:
    with pytest.warns(UserWarning, match="none of the candidate document ids appears in qrels"):
        tune(
            bag_retriever,
            {"a": "battery"},
            {"a": {"nope": 1}},
            grid={"alpha": [0.5]},
            show_progress=False,
        )


def test_documents_without_ids_need_id_key() -> None:
    docs = [Document("alpha beta", metadata={"key": "A"}), Document("gamma", metadata={"key": "G"})]
    r = FusionRetriever(
        retrievers=[ScriptedSource(docs, [2.0, 1.0]), ScriptedSource(docs[::-1], [2.0, 1.0])]
    )
    with pytest.raises(ValueError, match="has no id"):
        tune(r, {"q": "x"}, {"q": {"A": 1}}, grid={"alpha": [0.5]}, show_progress=False)
    report = tune(
        r,
        {"q": "x"},
        {"q": {"G": 1}},
        grid={"alpha": [1.0, 0.0]},
        id_key="key",
        metric="mrr@10",
        show_progress=False,
    )
    assert report.best == {
        "method": "convex",
        "normalization": "minmax",
        "alpha": 0.0,
        "fetch_k": 100,
    }
    assert report.best_score == 1.0


def test_grid_keys_are_retriever_fields() -> None:
    fields = set(FusionRetriever.model_fields)
    assert set(GRID_KEYS) <= fields


def test_no_warnings_on_a_clean_run(bag_retriever: FusionRetriever, judged: Any) -> None:
    queries, qrels = judged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tune(bag_retriever, queries, qrels, grid={"alpha": [0.5]}, show_progress=False)
