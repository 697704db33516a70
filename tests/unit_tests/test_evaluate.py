from __future__ import annotations

import math
import sys
import threading
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from langchain_fusion.evaluation.evaluate import (
    EvaluationReport,
    compare,
    evaluate,
    evaluate_run,
)

LOG2_3 = math.log2(3)

DOCS = {f"d{i}": Document(f"document number {i}", id=f"d{i}") for i in range(1, 8)}

# query text -> ranked ids the retriever returns (up to k)
RANKINGS = {
    "first": ["d1", "d2", "d3", "d4", "d5"],
    "second": ["d4", "d2", "d6", "d1", "d7"],
    "third": ["d7", "d6", "d5", "d4", "d3"],
}
QUERIES = {"q1": "first", "q2": "second", "q3": "third"}
QRELS = {
    "q1": {"d1": 1, "d3": 2},
    "q2": {"d2": 1, "d9": 1},  # d9 is never retrieved
    "q3": {"d1": 1, "d2": 0},  # the relevant document is never retrieved
}


class KeywordRetriever(BaseRetriever):
    """Takes ``k`` as an argument of ``_get_relevant_documents``; records what it was asked."""

    k: int = 2
    seen_k: list[int] = Field(default_factory=list)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        k = self.k if k is None else k
        self.seen_k.append(k)
        return [DOCS[i] for i in RANKINGS[query][:k]]


class KwargsRetriever(BaseRetriever):
    """Has a ``k`` field and accepts ``**kwargs`` (like FusionRetriever)."""

    k: int = 2
    seen_k: list[int] = Field(default_factory=list)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = kwargs.get("k", self.k)
        self.seen_k.append(k)
        return [DOCS[i] for i in RANKINGS[query][:k]]


class FieldRetriever(BaseRetriever):
    """Only a ``k`` field (like langchain_community's BM25Retriever)."""

    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [DOCS[i] for i in RANKINGS[query][: self.k]]


class FixedRetriever(BaseRetriever):
    """No way to set k: always returns its configured documents."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(self.docs)


def _expected_values() -> dict[str, dict[str, float]]:
    return {
        "q1": {
            # d1 (1) at rank 1, d3 (2) at rank 3; ideal: d3, d1
            "ndcg@5": (1 + 2 / 2) / (2 + 1 / LOG2_3),
            "recall@5": 1.0,
            "mrr@5": 1.0,
            "p@2": 0.5,
        },
        "q2": {
            # d2 at rank 2; the ideal ranks both relevant documents (gain 1) first
            "ndcg@5": (1 / LOG2_3) / (1 + 1 / LOG2_3),
            "recall@5": 0.5,
            "mrr@5": 0.5,
            "p@2": 0.5,
        },
        "q3": {"ndcg@5": 0.0, "recall@5": 0.0, "mrr@5": 0.0, "p@2": 0.0},
    }


def test_exact_metric_values() -> None:
    retriever = KeywordRetriever()
    report = evaluate(
        retriever,
        QUERIES,
        QRELS,
        metrics=["ndcg@5", "recall@5", "mrr@5", "p@2"],
        show_progress=False,
    )
    expected = _expected_values()
    assert report.n_queries == 3
    assert report.k == 5
    assert retriever.seen_k == [5, 5, 5]  # k passed through batch to every query
    assert report.run == {q: RANKINGS[text] for q, text in QUERIES.items()}
    for q, values in expected.items():
        for name, value in values.items():
            assert report.per_query[q][name] == pytest.approx(value, abs=1e-12), (q, name)
    for name in report.metrics:
        assert report.metrics[name] == pytest.approx(
            sum(expected[q][name] for q in expected) / 3, abs=1e-12
        )
    assert report.seconds is not None and report.seconds >= 0


def test_k_defaults_to_largest_cutoff_and_can_be_overridden() -> None:
    retriever = KeywordRetriever()
    evaluate(retriever, QUERIES, QRELS, metrics=["ndcg@3", "recall@4"], show_progress=False)
    assert set(retriever.seen_k) == {4}
    with pytest.warns(UserWarning, match=r"k=2 is below the cutoff of recall@4"):
        report = evaluate(retriever, QUERIES, QRELS, metrics=["recall@4"], k=2, show_progress=False)
    assert all(len(ranked) == 2 for ranked in report.run.values())


def test_kwargs_retriever_gets_k_without_being_copied() -> None:
    retriever = KwargsRetriever()
    report = evaluate(retriever, QUERIES, QRELS, metrics=["recall@4"], show_progress=False)
    assert retriever.seen_k == [4, 4, 4]  # the original instance did the work
    assert retriever.k == 2
    assert all(len(ranked) == 4 for ranked in report.run.values())


def test_field_retriever_is_copied_with_k_and_left_unchanged() -> None:
    retriever = FieldRetriever()
    report = evaluate(retriever, QUERIES, QRELS, metrics=["recall@5"], show_progress=False)
    assert retriever.k == 2
    assert report.run["q1"] == ["d1", "d2", "d3", "d4", "d5"]


def test_warns_when_k_cannot_be_set_and_fewer_docs_come_back() -> None:
    retriever = FixedRetriever(docs=[DOCS["d1"], DOCS["d2"]])
    with pytest.warns(UserWarning, match=r"could not ask FixedRetriever for k=10 .* at most 2"):
        report = evaluate(retriever, QUERIES, QRELS, metrics=["ndcg@10"], show_progress=False)
    assert report.run["q1"] == ["d1", "d2"]


def test_results_are_cut_at_k_when_retriever_returns_more() -> None:
    retriever = FixedRetriever(docs=list(DOCS.values()))
    report = evaluate(retriever, QUERIES, QRELS, metrics=["mrr@3"], show_progress=False)
    assert report.run["q1"] == ["d1", "d2", "d3"]


def test_id_key_and_repeated_parents() -> None:
    chunks = [
        Document("chunk a", metadata={"doc_id": "d9"}),
        Document("chunk b", metadata={"doc_id": "d9"}),
        Document("chunk c", metadata={"doc_id": "d1"}),
        Document("chunk d", metadata={"doc_id": 3}),  # ids are compared as strings
    ]
    retriever = FixedRetriever(docs=chunks)
    report = evaluate(
        retriever,
        {"q": "anything"},
        {"q": {"d1": 1, "3": 1}},
        metrics=["recall@2", "mrr@3"],
        id_key="doc_id",
        show_progress=False,
    )
    assert report.run == {"q": ["d9", "d1", "3"]}  # d9 counted once, ranks closed up
    assert report.metrics == {"recall@2": 0.5, "mrr@3": 0.5}


def test_missing_document_id_is_an_error() -> None:
    retriever = FixedRetriever(docs=[Document("no id here", metadata={"source": "x"})])
    with pytest.raises(ValueError, match=r"has no id \(Document\.id is None\).*pass id_key="):
        evaluate(retriever, {"q": "x"}, {"q": {"a": 1}}, metrics=["ndcg@1"], show_progress=False)


def test_missing_id_key_in_metadata_is_an_error() -> None:
    retriever = FixedRetriever(docs=[Document("text", id="a", metadata={"source": "x"})])
    with pytest.raises(ValueError, match=r"id_key='doc_id' is not in the metadata .*\['source'\]"):
        evaluate(
            retriever,
            {"q": "x"},
            {"q": {"a": 1}},
            metrics=["ndcg@1"],
            id_key="doc_id",
            show_progress=False,
        )


def test_progress_bar_off_and_on(capsys: pytest.CaptureFixture[str]) -> None:
    evaluate(KeywordRetriever(), QUERIES, QRELS, show_progress=False)
    assert capsys.readouterr().err == ""
    evaluate(KeywordRetriever(), QUERIES, QRELS, show_progress=True)
    err = capsys.readouterr().err
    assert "Evaluating" in err and "3/3" in err


def test_queries_without_judgments_are_skipped_with_a_warning() -> None:
    queries = {**QUERIES, "extra": "first"}
    with pytest.warns(UserWarning, match=r"1 of 4 queries have no judgments .*'extra'"):
        report = evaluate(KeywordRetriever(), queries, QRELS, show_progress=False)
    assert report.n_queries == 3 and "extra" not in report.per_query


def test_subset_of_judged_queries_is_evaluated_on_that_subset() -> None:
    report = evaluate(
        KeywordRetriever(), {"q1": "first"}, QRELS, metrics=["mrr@5"], show_progress=False
    )
    assert report.n_queries == 1
    assert report.metrics == {"mrr@5": 1.0}


def test_no_judged_query_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"no query has judgments; none of the 2 query ids"):
        evaluate(KeywordRetriever(), {"a": "first", "b": "second"}, QRELS, show_progress=False)


def test_argument_validation() -> None:
    retriever = KeywordRetriever()
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        evaluate(retriever, QUERIES, QRELS, k=0, show_progress=False)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        evaluate(retriever, QUERIES, QRELS, batch_size=0, show_progress=False)
    with pytest.raises(ValueError, match="max_concurrency must be an integer >= 1, got -1"):
        evaluate(retriever, QUERIES, QRELS, max_concurrency=-1, show_progress=False)
    with pytest.raises(ValueError, match="unknown metric 'map@10'"):
        evaluate(retriever, QUERIES, QRELS, metrics=["map@10"], show_progress=False)
    with pytest.raises(TypeError, match=r"queries\['q1'\] must be a string, got int"):
        evaluate(retriever, {"q1": 1}, QRELS, show_progress=False)  # type: ignore[dict-item]


def test_batch_size_and_concurrency_do_not_change_results() -> None:
    reference = evaluate(KeywordRetriever(), QUERIES, QRELS, show_progress=False)
    for batch_size, max_concurrency in [(1, None), (2, 1), (64, 4)]:
        report = evaluate(
            KeywordRetriever(),
            QUERIES,
            QRELS,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            show_progress=False,
        )
        assert report.run == reference.run
        assert report.per_query == reference.per_query


def test_max_concurrency_limits_parallel_calls() -> None:
    class SlowRetriever(BaseRetriever):
        active: list[int] = Field(default_factory=lambda: [0, 0])  # current, peak

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            with lock:
                self.active[0] += 1
                self.active[1] = max(self.active)
            threading.Event().wait(0.01)
            with lock:
                self.active[0] -= 1
            return [DOCS["d1"]]

    lock = threading.Lock()
    retriever = SlowRetriever()
    queries = {f"q{i}": f"query {i}" for i in range(8)}
    qrels = {q: {"d1": 1} for q in queries}
    with pytest.warns(UserWarning, match="could not ask"):
        evaluate(retriever, queries, qrels, max_concurrency=1, show_progress=False)
    assert retriever.active[1] == 1


def test_retriever_errors_propagate_with_the_query_id() -> None:
    class Broken(BaseRetriever):
        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            if query == "second":
                raise RuntimeError("backend down")
            return []

    with pytest.raises(RuntimeError, match="backend down") as info:
        evaluate(Broken(), QUERIES, QRELS, show_progress=False)
    if sys.version_info >= (3, 11):
        assert "while retrieving query 'q2'" in "".join(info.value.__notes__)


def test_non_document_results_are_rejected() -> None:
    from langchain_core.runnables import RunnableLambda

    def not_a_list(query: str) -> Any:
        return "oops"

    def not_documents(query: str) -> Any:
        return ["oops"]

    with pytest.raises(TypeError, match=r"returned str for query 'q1'; expected a list"):
        evaluate(RunnableLambda(not_a_list), {"q1": "x"}, QRELS, show_progress=False)
    with pytest.raises(TypeError, match=r"returned str at rank 1 for query 'q1'"):
        evaluate(RunnableLambda(not_documents), {"q1": "x"}, QRELS, show_progress=False)


def test_warns_when_no_retrieved_id_is_judged() -> None:
    docs = [Document("x", id="uuid-1234"), Document("y", id="uuid-5678")]
    with pytest.warns(UserWarning, match=r"none of the retrieved document ids appears in qrels"):
        evaluate(FixedRetriever(docs=docs), QUERIES, QRELS, metrics=["mrr@2"], show_progress=False)


# --------------------------------------------------------------------------------------------------
# LangChain retrievers
# --------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_langchain_community_bm25_retriever() -> None:
    pytest.importorskip("rank_bm25")
    from langchain_community.retrievers import BM25Retriever

    texts = {
        "a": "the cat sat on the mat",
        "b": "dogs chase cats in the park",
        "c": "a treatise on quantum chromodynamics",
        "d": "cat food and cat toys for happy cats",
        "e": "parking rules for city centres",
        "f": "the dog sat on the log",
    }
    docs = [Document(text, id=doc_id) for doc_id, text in texts.items()]
    retriever = BM25Retriever.from_documents(docs)  # k=4 by default
    queries = {"cats": "cat", "dogs": "dog park"}
    qrels = {"cats": {"a": 1, "d": 2}, "dogs": {"b": 1, "f": 1}}
    report = evaluate(
        retriever, queries, qrels, metrics=["ndcg@5", "recall@5"], show_progress=False
    )
    assert retriever.k == 4  # untouched
    assert all(len(ranked) == 5 for ranked in report.run.values())  # asked for 5
    for q, text in queries.items():
        expected = [d.id for d in retriever.model_copy(update={"k": 5}).invoke(text)]
        assert report.run[q] == expected
    assert report.per_query["cats"]["recall@5"] == 1.0
    assert 0.0 < report.metrics["ndcg@5"] <= 1.0


def test_vectorstore_retriever_search_kwargs() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents([Document(f"text {i}", id=f"v{i}") for i in range(12)])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    report = evaluate(
        retriever, {"q": "text 3"}, {"q": {"v3": 1}}, metrics=["recall@10"], show_progress=False
    )
    assert len(report.run["q"]) == 10
    assert retriever.search_kwargs == {"k": 2}
    assert report.metrics["recall@10"] == 1.0  # identical text, identical fake embedding

    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3})
    report = evaluate(
        mmr, {"q": "text 3"}, {"q": {"v3": 1}}, metrics=["recall@8"], show_progress=False
    )
    assert len(report.run["q"]) == 8  # fetch_k raised to k


def test_fusion_retriever_gets_k_per_call() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_fusion.retriever import FusionRetriever

    texts = ["the cat sat on the mat", "dogs chase cats", "quantum chromodynamics"]
    texts += ["cat food and toys", "parking rules", "the dog sat on a log"]
    docs = [Document(text, id=f"d{i}") for i, text in enumerate(texts)]
    retriever = FusionRetriever.from_documents(docs, DeterministicFakeEmbedding(size=16), k=2)
    queries = {"q1": "cat", "q2": "dog log"}
    qrels = {"q1": {"d0": 1, "d3": 1}, "q2": {"d5": 1}}
    report = evaluate(retriever, queries, qrels, metrics=["recall@5"], show_progress=False)
    assert retriever.k == 2
    for q, text in queries.items():
        assert report.run[q] == [d.id for d in retriever.invoke(text, k=5)]
    assert report.metrics["recall@5"] == 1.0  # BM25 finds every relevant document


# --------------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------------


def test_report_markdown() -> None:
    report = evaluate(KeywordRetriever(), QUERIES, QRELS, show_progress=False)
    text = report.to_markdown(digits=3)
    assert text.startswith("| metric | value |\n|:--|--:|\n| ndcg@10 | ")
    assert f"| recall@100 | {report.metrics['recall@100']:.3f} |" in text
    assert "3 queries, " in text and "ms/query" in text
    assert str(report) == report.to_markdown()
    assert "run=" not in repr(report)  # the run can be huge: kept out of repr


def _report_from(values: list[float]) -> EvaluationReport:
    per_query = {f"q{i}": {"ndcg@10": v} for i, v in enumerate(values)}
    return EvaluationReport(
        metrics={"ndcg@10": sum(values) / len(values)},
        per_query=per_query,
        n_queries=len(values),
        seconds=len(values) * 0.002,
        run={},
    )


def test_compare_table_bold_best_and_significance() -> None:
    base = _report_from([0.2 + 0.01 * (i % 5) for i in range(30)])
    better = _report_from([0.5 + 0.01 * (i % 7) for i in range(30)])
    same = _report_from([0.2 + 0.01 * (i % 5) for i in range(30)])
    table = compare({"bm25": base, "fusion": better, "copy": same}, baseline="bm25")
    lines = table.splitlines()
    assert lines[0] == "| system | ndcg@10 | ms/query |"
    assert lines[2].startswith("| bm25 | 0.2200 |") and "†" not in lines[2]
    assert lines[3].startswith(f"| fusion | **{better.metrics['ndcg@10']:.4f}**† |")
    assert lines[4].startswith("| copy | 0.2200 |") and "†" not in lines[4]
    assert lines[2].endswith("| 2.0 |")
    assert "paired t-test against 'bm25'" in table


def test_compare_validation() -> None:
    report = _report_from([0.1, 0.2])
    with pytest.raises(ValueError, match="at least one"):
        compare({})
    with pytest.raises(ValueError, match=r"baseline must be one of the report names \['a'\]"):
        compare({"a": report}, baseline="b")
    with pytest.raises(TypeError, match=r"reports\['a'\] must be an EvaluationReport, got dict"):
        compare({"a": {}})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 2"):
        compare({"a": report}, alpha=2)


# --------------------------------------------------------------------------------------------------
# Precomputed runs
# --------------------------------------------------------------------------------------------------


def test_evaluate_run_matches_evaluate() -> None:
    live = evaluate(KeywordRetriever(), QUERIES, QRELS, metrics=["ndcg@5"], show_progress=False)
    offline = evaluate_run(live.run, QRELS, metrics=["ndcg@5"])
    assert offline.per_query == live.per_query
    assert offline.seconds is None and offline.ms_per_query is None
    assert "ms/query" not in offline.to_markdown()


def test_evaluate_run_with_scores_and_missing_queries() -> None:
    run = {"q1": {"d3": 0.9, "d1": 0.8}, "unjudged": {"d1": 1.0}}
    with pytest.warns(UserWarning, match=r"2 of 3 judged queries are missing from the run"):
        report = evaluate_run(run, QRELS, metrics=["ndcg@10"])
    assert report.run == {"q1": ["d3", "d1"]}
    assert report.per_query["q1"]["ndcg@10"] == pytest.approx(1.0)
    assert report.per_query["q2"]["ndcg@10"] == 0.0
    assert report.n_queries == 3


def test_evaluate_run_without_overlap_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"no query of the run is judged in qrels"):
        evaluate_run({"1": ["d1"]}, QRELS)


def test_paired_t_test_closed_form() -> None:
    from langchain_fusion.evaluation.evaluate import _paired_p_value

    # differences 1, 2, 3: mean 2, sd 1, t = sqrt(12), df = 2 where p = 1 - |t| / sqrt(2 + t^2)
    p = _paired_p_value([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert p == pytest.approx(1 - math.sqrt(12) / math.sqrt(14), abs=1e-12)
    assert math.isnan(_paired_p_value([0.5, 0.5], [0.5, 0.5]))  # no variance
    assert math.isnan(_paired_p_value([1.0], [0.0]))  # a single pair
