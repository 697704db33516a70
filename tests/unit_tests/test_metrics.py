from __future__ import annotations

import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_fusion.evaluation.metrics import (
    Metric,
    Qrels,
    compute_metrics,
    hit_rate_at_k,
    mean,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    recall_at_k,
)

pytrec_eval = pytest.importorskip("pytrec_eval")

LOG2_3 = math.log2(3)


# --------------------------------------------------------------------------------------------------
# Closed-form examples
# --------------------------------------------------------------------------------------------------


def test_ndcg_graded_closed_form() -> None:
    judgments = {"a": 2, "b": 1, "c": 0, "z": 1}
    # ranks: c (0), b (1), a (2), x (unjudged)
    dcg = 0 + 1 / LOG2_3 + 2 / 2  # gain / log2(rank + 1)
    idcg = 2 + 1 / LOG2_3 + 1 / 2
    assert ndcg_at_k(["c", "b", "a", "x"], judgments, k=10) == pytest.approx(dcg / idcg, abs=1e-12)
    # cut at 2: only c and b count; the ideal is cut at 2 too
    assert ndcg_at_k(["c", "b", "a", "x"], judgments, k=2) == pytest.approx(
        (1 / LOG2_3) / (2 + 1 / LOG2_3), abs=1e-12
    )
    assert ndcg_at_k(["a", "b", "z"], judgments, k=3) == pytest.approx(1.0)


def test_ndcg_uses_linear_gain_not_exponential() -> None:
    # with exponential gain (2^rel - 1) this would be (1 / log2(3)) * 3 / 3 vs linear 2 / ...
    value = ndcg_at_k(["x", "a"], {"a": 2}, k=10)
    assert value == pytest.approx((2 / LOG2_3) / 2)


def test_recall_precision_mrr_hit_closed_form() -> None:
    judgments = {"a": 1, "b": 2, "c": 1, "n": 0, "neg": -1}
    ranked = ["n", "a", "x", "neg", "b"]
    assert recall_at_k(ranked, judgments, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, judgments, k=5) == pytest.approx(2 / 3)
    assert precision_at_k(ranked, judgments, k=5) == pytest.approx(2 / 5)
    assert precision_at_k(ranked, judgments, k=10) == pytest.approx(2 / 10)  # divides by k
    assert mrr_at_k(ranked, judgments, k=10) == pytest.approx(1 / 2)
    assert mrr_at_k(ranked, judgments, k=1) == 0.0
    assert hit_rate_at_k(ranked, judgments, k=1) == 0.0
    assert hit_rate_at_k(ranked, judgments, k=2) == 1.0


def test_negative_relevance_is_non_relevant_and_gives_no_gain() -> None:
    judgments = {"neg": -1, "b": 1}
    assert ndcg_at_k(["neg", "b"], judgments, k=10) == pytest.approx(1 / LOG2_3)
    assert recall_at_k(["neg"], judgments, k=10) == 0.0
    assert mrr_at_k(["neg", "b"], judgments, k=10) == 0.5


def test_query_without_relevant_documents_scores_zero() -> None:
    judgments = {"a": 0, "b": -2}
    for fn in (ndcg_at_k, recall_at_k, precision_at_k, mrr_at_k, hit_rate_at_k):
        assert fn(["a", "b"], judgments, 10) == 0.0
    assert compute_metrics({"q": ["a", "b"]}, {"q": judgments}, ["ndcg@10", "recall@10"]) == {
        "ndcg@10": {"q": 0.0},
        "recall@10": {"q": 0.0},
    }


def test_repeated_ids_count_once_at_their_first_rank() -> None:
    judgments = {"a": 1, "b": 1}
    ranked = ["a", "a", "a", "b"]  # e.g. chunks of the same document
    assert recall_at_k(ranked, judgments, k=2) == 1.0  # "b" moves up to rank 2
    assert precision_at_k(ranked, judgments, k=2) == 1.0
    assert ndcg_at_k(ranked, judgments, k=2) == pytest.approx(1.0)
    scores = compute_metrics({"q": ranked}, {"q": judgments}, ["recall@2", "p@2", "ndcg@2"])
    assert scores == {"recall@2": {"q": 1.0}, "p@2": {"q": 1.0}, "ndcg@2": {"q": 1.0}}


def test_dict_run_ties_broken_by_doc_id_descending() -> None:
    # a and b tie; trec_eval puts "b" first (id descending)
    run = {"q": {"a": 1.0, "b": 1.0}}
    assert compute_metrics(run, {"q": {"a": 1}}, "mrr@10") == {"mrr@10": {"q": 0.5}}
    assert compute_metrics(run, {"q": {"b": 1}}, "mrr@10") == {"mrr@10": {"q": 1.0}}
    # the same inside the top-k cut
    run = {"q": {"x": 5.0, "a": 1.0, "b": 1.0, "c": 0.5}}
    assert compute_metrics(run, {"q": {"a": 1}}, ["hits@2"]) == {"hits@2": {"q": 0.0}}
    assert compute_metrics(run, {"q": {"b": 1}}, ["hits@2"]) == {"hits@2": {"q": 1.0}}


def test_missing_query_in_run_scores_zero_and_unjudged_run_queries_are_ignored() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "empty": {}}
    run = {"q1": ["a"], "other": ["b"]}
    scores = compute_metrics(run, qrels, ["ndcg@10", "mrr@10"])
    assert scores == {"ndcg@10": {"q1": 1.0, "q2": 0.0}, "mrr@10": {"q1": 1.0, "q2": 0.0}}


def test_compute_metrics_matches_single_query_functions() -> None:
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(40)]
    qrels = {
        f"q{q}": {d: rng.choice([0, 1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 8))}
        for q in range(30)
    }
    run = {q: [rng.choice(docs) for _ in range(rng.randint(0, 30))] for q in qrels}  # repeats
    names = ["ndcg@5", "recall@20", "mrr@10", "p@3", "hits@1"]
    functions = [ndcg_at_k, recall_at_k, mrr_at_k, precision_at_k, hit_rate_at_k]
    scores = compute_metrics(run, qrels, names)
    for name, fn in zip(names, functions, strict=True):
        k = parse_metric(name).k
        for q in qrels:
            assert scores[name][q] == pytest.approx(fn(run[q], qrels[q], k), abs=1e-12), (name, q)


# --------------------------------------------------------------------------------------------------
# Agreement with pytrec_eval
# --------------------------------------------------------------------------------------------------


def _random_case(
    seed: int, *, n_queries: int = 40, ties: bool = False
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"doc{i:03d}" for i in range(300)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[qid] = {d: rng.choice([0, 1, 2]) for d in judged}  # some queries: no relevant doc
        n_ret = rng.randint(0, 150)
        # mix judged and unjudged docs; some judged docs are never retrieved
        pool = judged[: rng.randint(0, len(judged))] + rng.sample(docs, n_ret)
        retrieved = rng.sample(pool, min(len(pool), n_ret)) if n_ret else []
        if ties:
            run[qid] = {d: float(rng.randint(0, 5)) for d in retrieved}
        else:
            run[qid] = {d: rng.random() for d in retrieved}
    return run, qrels


def _truncate(run: dict[str, dict[str, float]], k: int) -> dict[str, dict[str, float]]:
    """Top k of each query under trec_eval's order (score desc, doc id desc)."""
    out = {}
    for q, scores in run.items():
        top = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]
        out[q] = dict(top)
    return out


def _assert_matches_pytrec(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    prepared: Qrels | None = None,
) -> None:
    metrics = ["ndcg@10", "recall@100", "p@5", "mrr@10", "ndcg@3"]
    ours = compute_metrics(run, prepared or qrels, metrics)
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut.3", "ndcg_cut.10", "recall.100", "P.5"}
    )
    reference = evaluator.evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_truncate(run, 10))
    assert reference, "pytrec_eval evaluated nothing"
    for q, ref in reference.items():
        assert ours["ndcg@10"][q] == pytest.approx(ref["ndcg_cut_10"], abs=1e-6), q
        assert ours["ndcg@3"][q] == pytest.approx(ref["ndcg_cut_3"], abs=1e-6), q
        assert ours["recall@100"][q] == pytest.approx(ref["recall_100"], abs=1e-6), q
        assert ours["p@5"][q] == pytest.approx(ref["P_5"], abs=1e-6), q
        assert ours["mrr@10"][q] == pytest.approx(rr[q]["recip_rank"], abs=1e-6), q
    # queries pytrec_eval leaves out (absent or empty in the run) score 0 here
    for q in set(ours["ndcg@10"]) - set(reference):
        assert not run.get(q)
        assert all(ours[name][q] == 0.0 for name in ours)


@pytest.mark.parametrize("seed", range(6))
def test_matches_pytrec_eval_on_random_runs(seed: int) -> None:
    run, qrels = _random_case(seed)
    _assert_matches_pytrec(run, qrels)


@pytest.mark.parametrize("seed", range(4))
def test_matches_pytrec_eval_with_tied_scores(seed: int) -> None:
    run, qrels = _random_case(100 + seed, ties=True)
    _assert_matches_pytrec(run, qrels)


def test_matches_pytrec_eval_with_prepared_qrels_and_list_runs() -> None:
    run, qrels = _random_case(42)
    prepared = Qrels(qrels)
    as_lists = {q: list(_truncate({q: s}, 10**6)[q]) for q, s in run.items()}
    first = compute_metrics(as_lists, prepared, ["ndcg@10", "recall@100", "p@5"])
    again = compute_metrics(run, prepared, ["ndcg@10", "recall@100", "p@5"])
    for name, per_query in first.items():
        for q, value in per_query.items():
            assert value == pytest.approx(again[name][q], abs=1e-12)
    assert prepared._idcg_cache  # ideal DCGs were computed once and kept
    _assert_matches_pytrec(run, qrels, prepared)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([f"q{i}" for i in range(5)]),
        st.tuples(
            st.dictionaries(st.sampled_from(list("abcdefghij")), st.integers(0, 2), min_size=1),
            st.dictionaries(st.sampled_from(list("abcdefghijklmno")), st.integers(0, 3)),
        ),
        min_size=1,
    )
)
def test_matches_pytrec_eval_property(
    cases: dict[str, tuple[dict[str, int], dict[str, int]]],
) -> None:
    qrels = {q: judged for q, (judged, _) in cases.items()}
    run = {q: {d: float(s) for d, s in scores.items()} for q, (_, scores) in cases.items()}
    ours = compute_metrics(run, qrels, ["ndcg@3", "recall@5", "p@2", "mrr@3"])
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.3", "recall.5", "P.2"}).evaluate(
        run
    )
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_truncate(run, 3))
    for q, ref in reference.items():
        assert ours["ndcg@3"][q] == pytest.approx(ref["ndcg_cut_3"], abs=1e-6)
        assert ours["recall@5"][q] == pytest.approx(ref["recall_5"], abs=1e-6)
        assert ours["p@2"][q] == pytest.approx(ref["P_2"], abs=1e-6)
        assert ours["mrr@3"][q] == pytest.approx(rr[q]["recip_rank"], abs=1e-6)


# --------------------------------------------------------------------------------------------------
# Parsing, validation, helpers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ndcg@10", Metric("ndcg", 10)),
        ("NDCG@10", Metric("ndcg", 10)),
        (" recall @ 100 ", Metric("recall", 100)),
        ("mrr@10", Metric("mrr", 10)),
        ("precision@5", Metric("precision", 5)),
        ("p@5", Metric("precision", 5)),
        ("P@5", Metric("precision", 5)),
        ("hit_rate@10", Metric("hit_rate", 10)),
        ("hits@10", Metric("hit_rate", 10)),
    ],
)
def test_parse_metric(name: str, expected: Metric) -> None:
    assert parse_metric(name) == expected


@pytest.mark.parametrize(
    "name", ["ndcg", "map@10", "ndcg@", "ndcg@x", "recall@-1", "", "ndcg@10@2"]
)
def test_parse_metric_rejects_unknown_forms(name: str) -> None:
    with pytest.raises(ValueError, match=r"valid forms: ndcg@k, recall@k") as info:
        parse_metric(name)
    assert repr(name) in str(info.value)


def test_parse_metric_rejects_zero_cutoff_and_non_strings() -> None:
    with pytest.raises(ValueError, match=r"k=0; k must be >= 1"):
        parse_metric("ndcg@0")
    with pytest.raises(TypeError, match="metric must be a string"):
        parse_metric(10)  # type: ignore[arg-type]


def test_compute_metrics_keys_follow_the_callers_spelling() -> None:
    scores = compute_metrics({"q": ["a"]}, {"q": {"a": 1}}, ["P@1", "hits@1", Metric("ndcg", 1)])
    assert list(scores) == ["P@1", "hits@1", "ndcg@1"]
    assert compute_metrics({"q": ["a"]}, {"q": {"a": 1}}, "recall@1") == {"recall@1": {"q": 1.0}}


def test_compute_metrics_validation() -> None:
    with pytest.raises(ValueError, match="at least one metric"):
        compute_metrics({"q": ["a"]}, {"q": {"a": 1}}, [])
    with pytest.raises(ValueError, match="qrels has no judged query"):
        compute_metrics({"q": ["a"]}, {"q": {}}, ["ndcg@10"])
    with pytest.raises(TypeError, match=r"run\['q'\] must be a list of document ids"):
        compute_metrics({"q": "abc"}, {"q": {"a": 1}}, ["ndcg@10"])
    with pytest.raises(TypeError, match="run must be a mapping"):
        compute_metrics([["a"]], {"q": {"a": 1}}, ["ndcg@10"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"qrels\['q'\]\['a'\] must be a number"):
        compute_metrics({"q": ["a"]}, {"q": {"a": "1"}}, ["ndcg@10"])  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"qrels\['q'\] must be a mapping"):
        compute_metrics({"q": ["a"]}, {"q": ["a"]}, ["ndcg@10"])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        ndcg_at_k(["a"], {"a": 1}, k=0)


def test_qrels_object() -> None:
    qrels = Qrels({"q1": {"a": 2, "b": 0}, "q2": {}, "q3": {"c": 1}})
    assert qrels.query_ids == ("q1", "q3")
    assert len(qrels) == 2 and "q1" in qrels and "q2" not in qrels
    assert qrels.num_relevant("q1") == 1
    assert qrels.relevant("q1") == {"a": 2.0}
    assert qrels.to_dict() == {"q1": {"a": 2, "b": 0}, "q3": {"c": 1}}
    assert qrels.subset(["q3"]).query_ids == ("q3",)
    assert repr(qrels) == "Qrels(2 queries, 2 relevant judgments)"
    assert Qrels(qrels).query_ids == qrels.query_ids


def test_mean() -> None:
    assert mean({"m": {"a": 1.0, "b": 0.0, "c": 0.5}}) == {"m": 0.5}
    with pytest.raises(ValueError, match=r"results\['m'\] has no query values"):
        mean({"m": {}})


def test_compute_metrics_is_fast_on_a_benchmark_sized_run() -> None:
    """300 queries x 100 retrieved documents, ndcg@10 + recall@100: a few milliseconds."""
    rng = random.Random(0)
    docs = [str(i) for i in range(5000)]
    qrels = Qrels({f"q{q}": {d: 1 for d in rng.sample(docs, 2)} for q in range(300)})
    run_lists = {q: rng.sample(docs, 100) for q in qrels.query_ids}
    run_dicts = {q: {d: rng.random() for d in ranked} for q, ranked in run_lists.items()}
    for run in (run_lists, run_dicts):
        compute_metrics(run, qrels, ["ndcg@10", "recall@100"])
        start = time.perf_counter()
        for _ in range(5):
            compute_metrics(run, qrels, ["ndcg@10", "recall@100"])
        per_call = (time.perf_counter() - start) / 5
        assert per_call < 0.2, f"{per_call * 1000:.1f} ms per call"


# --------------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.data
def test_real_bm25_run_on_scifact_matches_pytrec_eval_and_published_score() -> None:
    import os
    from pathlib import Path

    bm25s = pytest.importorskip("bm25s")
    stemmer_module = pytest.importorskip("Stemmer")
    from langchain_fusion.evaluation import evaluate_run, load_beir

    data = Path(
        os.environ.get(
            "LANGCHAIN_FUSION_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
        )
    )
    path = data / "beir" / "scifact"
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    ds = load_beir(path)
    stemmer = stemmer_module.Stemmer("english")
    tokens = bm25s.tokenize(
        [d.page_content for d in ds.corpus], stopwords="en", stemmer=stemmer, show_progress=False
    )
    index = bm25s.BM25()
    index.index(tokens, show_progress=False)
    query_ids = list(ds.queries)
    query_tokens = bm25s.tokenize(
        [ds.queries[q] for q in query_ids], stopwords="en", stemmer=stemmer, show_progress=False
    )
    slots, scores = index.retrieve(query_tokens, k=100, show_progress=False, n_threads=1)
    doc_ids = [d.id for d in ds.corpus]
    run = {
        q: {doc_ids[s]: float(v) for s, v in zip(slots[i], scores[i], strict=True)}
        for i, q in enumerate(query_ids)
    }
    report = evaluate_run(run, ds.qrels, ["ndcg@10", "recall@100"])
    reference = pytrec_eval.RelevanceEvaluator(ds.qrels, {"ndcg_cut.10", "recall.100"}).evaluate(
        run
    )
    assert len(reference) == report.n_queries == 300
    for q, ref in reference.items():
        assert report.per_query[q]["ndcg@10"] == pytest.approx(ref["ndcg_cut_10"], abs=1e-6)
        assert report.per_query[q]["recall@100"] == pytest.approx(ref["recall_100"], abs=1e-6)
    # bm25s with default parameters is published at nDCG@10 = 0.687 on SciFact
    assert report.metrics["ndcg@10"] == pytest.approx(0.687, abs=0.01)
