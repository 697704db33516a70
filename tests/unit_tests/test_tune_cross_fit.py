"""Cross-fitted tuning: each query's candidates come from a retriever whose model never saw it.

The tuned retriever here has a dense model that memorized its training queries (each query
embeds as its own relevant document, as an over-fitted fine-tune would). Tuned on those queries
it looks perfect with dense alone; with ``cross_fit`` every query is scored by honest fold
retrievers, so the choice is the one an honest model would make.
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_fusion import FusionRetriever, HybridIndex, LocalEmbeddings
from langchain_fusion.dense.finetune import RECORD_FILE, fine_tuning_record
from langchain_fusion.evaluation import gather_pools, tune, tune_bm25, tune_feedback
from tests.fakes import BagOfWordsEmbedding, word_corpus, word_queries

tune_module = importlib.import_module("langchain_fusion.tuning.bm25")  # where tune_bm25 calls tune

GRID = {"alpha": [0.0, 0.25, 0.5, 0.75, 1.0], "normalization": ["minmax", "zscore"]}


class MemorizingEmbedding(BagOfWordsEmbedding):
    """Bag-of-words, except that known training queries embed as their relevant document."""

    def __init__(self, memory: dict[str, str]) -> None:
        super().__init__()
        self.memory = memory

    def embed_query(self, text: str) -> list[float]:
        return self._vec(self.memory.get(text, text))


def _retriever(docs: list[Document], embedding: Any, **bm25: float) -> FusionRetriever:
    index = HybridIndex(embedding, **bm25)
    index.add_documents(docs)
    return FusionRetriever.from_index(index, fetch_k=20)


def _setup(**bm25: float) -> tuple[Any, ...]:
    docs = word_corpus()
    queries, qrels = word_queries(docs)
    text = {d.id: d.page_content for d in docs}
    memory = {queries[q]: text[next(iter(qrels[q]))] for q in queries}
    fitted = _retriever(docs, MemorizingEmbedding(memory), **bm25)
    ids = list(queries)
    folds = [(ids[i::3], _retriever(docs, BagOfWordsEmbedding(), **bm25)) for i in range(3)]
    honest = _retriever(docs, BagOfWordsEmbedding(), **bm25)
    return queries, qrels, fitted, folds, honest


def test_cross_fit_scores_every_query_with_its_fold_retriever() -> None:
    queries, qrels, fitted, folds, honest = _setup()
    in_sample = tune(fitted, queries, qrels, grid=GRID, show_progress=False)
    assert in_sample.best_score == 1.0 and in_sample.best["alpha"] >= 0.75  # memorized

    report = tune(fitted, queries, qrels, grid=GRID, show_progress=False, cross_fit=folds)
    reference = tune(honest, queries, qrels, grid=GRID, show_progress=False)
    assert report.query_ids == reference.query_ids == list(queries)
    np.testing.assert_allclose(report.per_query, reference.per_query, rtol=1e-12)
    assert report.best == reference.best
    assert report.best["alpha"] < in_sample.best["alpha"] and report.best_score < 0.8
    # the settings go to the tuned retriever, which keeps its own model
    assert report.retriever.alpha == report.best["alpha"]
    assert report.retriever.normalization == report.best["normalization"]
    want = fitted.model_copy(update={"alpha": report.best["alpha"]})
    want = want.model_copy(update={"normalization": report.best["normalization"]})
    for query in list(queries.values())[:5]:
        assert [d.id for d in report.retriever.invoke(query)] == [d.id for d in want.invoke(query)]


def test_each_group_is_gathered_by_its_own_retriever() -> None:
    """Different fold models give each group exactly that model's pools."""
    queries, qrels, fitted, _, honest = _setup()
    ids = list(queries)
    groups = [(ids[:10], fitted), (ids[10:], honest)]
    report = tune(fitted, queries, qrels, grid=GRID, show_progress=False, cross_fit=groups)
    for group, retriever in groups:
        alone = tune(
            retriever, {q: queries[q] for q in group}, qrels, grid=GRID, show_progress=False
        )
        cols = [report.query_ids.index(q) for q in group]
        np.testing.assert_allclose(report.per_query[:, cols], alone.per_query, rtol=1e-12)


def test_unjudged_queries_may_be_named_and_are_left_out() -> None:
    queries, qrels, fitted, folds, _ = _setup()
    queries = {**queries, "extra": "battery cold"}
    folds[0] = ([*folds[0][0], "extra"], folds[0][1])
    with pytest.warns(UserWarning, match="1 of 26 queries have no judgments"):
        report = tune(fitted, queries, qrels, grid=GRID, show_progress=False, cross_fit=folds)
    assert "extra" not in report.query_ids and len(report.query_ids) == 25


def test_the_fold_retrievers_lend_only_their_sources() -> None:
    """Settings that change what is gathered (here feedback) are the tuned retriever's."""
    queries, qrels, fitted, folds, honest = _setup()
    fitted = fitted.model_copy(update={"feedback_docs": 2})
    assert all(r.feedback_docs == 0 for _, r in folds)
    report = tune(fitted, queries, qrels, grid=GRID, show_progress=False, cross_fit=folds)
    with_feedback = honest.model_copy(update={"feedback_docs": 2})
    reference = tune(with_feedback, queries, qrels, grid=GRID, show_progress=False)
    without = tune(honest, queries, qrels, grid=GRID, show_progress=False)
    np.testing.assert_allclose(report.per_query, reference.per_query, rtol=1e-12)
    assert not np.allclose(report.per_query, without.per_query)  # feedback did change them
    assert all(r.feedback_docs == 0 for _, r in folds)  # the fold retrievers are not modified


def test_tune_feedback_cross_fits_every_setting() -> None:
    queries, qrels, fitted, folds, honest = _setup()
    grid = {"feedback_docs": [0, 1, 3], "feedback_weight": [0.5]}
    in_sample = tune_feedback(fitted, queries, qrels, grid=grid, show_progress=False)
    report = tune_feedback(
        fitted, queries, qrels, grid=grid, show_progress=False, cross_fit=iter(folds)
    )
    reference = tune_feedback(honest, queries, qrels, grid=grid, show_progress=False)
    assert report.settings == reference.settings
    np.testing.assert_allclose(report.per_query, reference.per_query, rtol=1e-12)
    assert not np.allclose(report.scores, in_sample.scores)
    assert report.retriever.feedback_docs == report.best["feedback_docs"]


def test_tune_bm25_cross_fits_every_pair_and_leaves_the_winner_on_the_folds() -> None:
    queries, qrels, fitted, folds, honest = _setup(k1=1.1, b=0.6)
    bm25_grid = {"k1": [0.3, 2.0], "b": [0.2, 0.9]}
    generator = ((ids, r) for ids, r in folds)  # read once, used for every pair
    report = tune_bm25(
        fitted,
        queries,
        qrels,
        bm25_grid=bm25_grid,
        grid=GRID,
        show_progress=False,
        cross_fit=generator,
    )
    reference = tune_bm25(
        honest, queries, qrels, bm25_grid=bm25_grid, grid=GRID, show_progress=False
    )
    assert report.settings == reference.settings
    np.testing.assert_allclose(report.scores, reference.scores, rtol=1e-12)
    assert len(set(np.round(report.scores, 6))) > 1  # the pairs really differ here
    winner = (report.best["k1"], report.best["b"])
    assert winner != (1.1, 0.6)
    for r in [fitted, *(r for _, r in folds)]:
        params = r.sources[1].index.bm25_params
        assert (params["k1"], params["b"]) == winner


def test_tune_bm25_restores_everything_when_tuning_fails(monkeypatch: Any) -> None:
    queries, qrels, fitted, folds, _ = _setup(k1=1.1, b=0.6)
    seen: list[list[float]] = []

    def failing_tune(*args: Any, **kwargs: Any) -> Any:
        seen.append([r.sources[1].index.bm25_params["k1"] for _, r in folds])
        if len(seen) == 2:
            raise RuntimeError("interrupted")
        return tune(*args, **kwargs)

    monkeypatch.setattr(tune_module, "tune", failing_tune)
    with pytest.raises(RuntimeError, match="interrupted"):
        tune_bm25(
            fitted,
            queries,
            qrels,
            bm25_grid={"k1": [0.3, 2.0]},
            grid={"alpha": [0.5]},
            show_progress=False,
            cross_fit=folds,
        )
    assert seen == [[0.3] * 3, [2.0] * 3]  # the folds were scored with each pair
    for r in [fitted, *(r for _, r in folds)]:
        assert (r.sources[1].index.bm25_params["k1"], r.sources[1].index.bm25_params["b"]) == (
            1.1,
            0.6,
        )


def _bad(case: str, folds: list[Any]) -> Any:
    ids = [q for group, _ in folds for q in group]
    r = folds[0][1]
    renamed = FusionRetriever.from_index(r.sources[0].index, names=["vec", "kw"])
    return {
        "missing": folds[:2],
        "twice": [*folds, ([ids[0]], r)],
        "unknown": [*folds, (["nope"], r)],
        "not a retriever": [(ids, object())],
        "other sources": [(ids, renamed)],
        "mapping": {"q0": r},
        "not a pair": [(ids,)],
        "ids as a string": [("q0", r)],
    }[case]


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        ("missing", ValueError, r"8 judged queries are in no cross_fit group \('q2', 'q5'"),
        ("twice", ValueError, "query 'q0' is in cross_fit\\[0\\] and cross_fit\\[3\\]"),
        ("unknown", ValueError, "cross_fit\\[3\\] names query 'nope', which is not in queries"),
        ("not a retriever", TypeError, "retriever must be a FusionRetriever, got object"),
        ("other sources", ValueError, r"has sources \['vec', 'kw'\], the tuned retriever"),
        ("mapping", TypeError, "cross_fit must be a list of \\(query_ids, retriever\\) pairs"),
        ("not a pair", TypeError, "cross_fit\\[0\\] must be a \\(query_ids, retriever\\) pair"),
        ("ids as a string", TypeError, "cross_fit\\[0\\]'s query ids must be a list of ids"),
    ],
)
def test_bad_cross_fit(case: str, error: type, match: str) -> None:
    queries, qrels, fitted, folds, _ = _setup()
    with pytest.raises(error, match=match):
        tune(
            fitted,
            queries,
            qrels,
            grid=GRID,
            show_progress=False,
            cross_fit=_bad(case, folds),
        )


def test_pools_and_cross_fit_are_exclusive() -> None:
    queries, qrels, fitted, folds, _ = _setup()
    pools = gather_pools(fitted, queries, qrels, show_progress=False)
    with pytest.raises(ValueError, match="give pools or cross_fit, not both"):
        tune(fitted, queries, qrels, pools=pools, cross_fit=folds, show_progress=False)


# ------------------------------------------------------------------ the warning


class RecordedModel(LocalEmbeddings):
    """Bag-of-words vectors from a model directory whose fine-tuning record names queries."""

    def __init__(self, path: Path, trained_on: list[str]) -> None:
        path.mkdir()
        (path / RECORD_FILE).write_text(json.dumps({"query_ids": trained_on}))
        super().__init__(model_path=path)
        self._bow = BagOfWordsEmbedding()

    @property
    def dimension(self) -> int:
        return self._bow.size

    def _encode(self, texts: Any, *, progress: bool) -> Any:
        return np.asarray(self._bow.embed_documents(list(texts)), dtype=np.float32)


def test_tuning_on_the_queries_the_model_was_trained_on_warns(tmp_path: Path) -> None:
    queries, qrels, _, folds, _ = _setup()
    model = RecordedModel(tmp_path / "model", [f"q{i}" for i in range(10)])
    assert fine_tuning_record(model.model_path or "")["query_ids"][:2] == ["q0", "q1"]
    fitted = _retriever(word_corpus(), model)
    message = r"fine-tuned on 10 of these 25 queries \('q0', 'q1', 'q2', \.\.\.\).*cross_fit="
    with pytest.warns(UserWarning, match=message):
        tune(fitted, queries, qrels, grid=GRID, show_progress=False)
    with pytest.warns(UserWarning, match=message):
        tune_feedback(fitted, queries, qrels, grid={"feedback_docs": [0, 1]}, show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tune(fitted, queries, qrels, grid=GRID, show_progress=False, cross_fit=folds)
        other = {q: queries[q] for q in list(queries)[10:]}  # queries it was not trained on
        tune(fitted, other, qrels, grid=GRID, show_progress=False)
