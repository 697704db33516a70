"""Synonym expansion, the TF-IDF source and the rerank stage."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import FusionRetriever, HybridIndex
from langchain_fusion.rerank import RerankError, rerank_documents
from langchain_fusion.sources import HybridDenseSource, HybridKeywordSource
from langchain_fusion.synonyms import SynonymKeywordSource, SynonymMap, with_synonyms
from langchain_fusion.tfidf import TfidfSource, tfidf_fusion
from tests.fakes import BagOfWordsEmbedding

TEXTS = {
    "flu": "influenza season: fever, cough and muscle aches",
    "flu2": "the flu shot protects against influenza",
    "cold": "the common cold causes a runny nose",
    "tax": "income tax returns are due in april",
    "mi": "myocardial infarction is treated in hospital",
    "ha": "a heart attack needs emergency care",
}


@pytest.fixture(scope="module")
def index() -> HybridIndex:
    return HybridIndex.from_texts(list(TEXTS.values()), BagOfWordsEmbedding(64), ids=list(TEXTS))


# ---------------------------------------------------------------- synonyms


def test_synonyms_expand_bm25_only_and_down_weighted(index: HybridIndex) -> None:
    src = SynonymKeywordSource(index, {"heart attack": ["myocardial infarction"]}, weight=0.3)
    terms, matched = src.expand("heart attack treatment")
    assert matched == [("heart attack", ["myocardial infarction"])]
    assert terms["heart"] == terms["attack"] == 1.0
    assert {t: w for t, w in terms.items() if w < 1} == {"myocardi": 0.3, "infarct": 0.3}
    plain = HybridKeywordSource(index).search("heart attack treatment", 10)
    expanded = src.search("heart attack treatment", 10)
    assert plain.ids == ["ha"]
    assert expanded.ids == ["ha", "mi"]  # the synonym document is found, below the exact one
    # down-weighted: the synonym terms score 0.3 x what the same words would as query terms
    full = index.score_keyword("myocardial infarction", ["mi"])[0]
    assert expanded.scores[1] == pytest.approx(0.3 * full)


def test_synonyms_leave_the_dense_side_alone_and_show_in_explain(index: HybridIndex) -> None:
    r = with_synonyms(index, {"heart attack": ["myocardial infarction"]}, k=3)
    plain = FusionRetriever.from_index(index, k=3)
    q = "heart attack treatment"
    docs = r.invoke(q)
    assert "mi" in [d.id for d in docs]
    dense = {d.id: d.metadata["fusion"]["retrievers"]["dense"]["raw"] for d in docs}
    dense_plain = HybridDenseSource(index).search(q, 10)
    assert dense_plain.ids is not None and dense_plain.scores is not None
    plain_scores = dict(zip(dense_plain.ids, dense_plain.scores.tolist()))
    assert all(dense[i] == pytest.approx(plain_scores[i]) for i in dense)
    assert docs[0].metadata["fusion"]["query"] == {
        "bm25": "synonyms heart attack -> myocardial infarction (weight 0.3)"
    }
    assert "(bm25 query: synonyms heart attack -> myocardial infarction (weight 0.3))" in (
        r.explain(q)
    )
    assert "query" not in plain.invoke(q)[0].metadata["fusion"]
    assert "bm25 query" not in r.explain("income tax")  # nothing matched: no note


def test_empty_map_warns_and_searches_unexpanded(index: HybridIndex) -> None:
    with pytest.warns(UserWarning, match="synonym map is empty"):
        src = SynonymKeywordSource(index, {})
    assert src.search("flu", 5).ids == HybridKeywordSource(index).search("flu", 5).ids
    with pytest.warns(UserWarning, match="no phrase with a searchable term"):
        SynonymKeywordSource(index, {"the": ["a"]})


def test_synonym_files(tmp_path: Path, index: HybridIndex) -> None:
    text = tmp_path / "syn.txt"
    text.write_text("# medical\nflu, influenza  # same thing\ncold => runny nose\n")
    m = SynonymMap(text)
    assert m.rules == {"flu": ["influenza"], "influenza": ["flu"], "cold": ["runny nose"]}
    js = tmp_path / "syn.json"
    js.write_text(json.dumps({"flu": ["influenza"], "cold": "runny nose"}))
    assert SynonymMap(js).rules == {"flu": ["influenza"], "cold": ["runny nose"]}
    bad = tmp_path / "bad.txt"
    bad.write_text("flu, influenza\nlonely\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 'a, b, ...'"):
        SynonymMap(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SynonymMap(tmp_path / "missing.txt")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        SynonymMap(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="must be a string or a list of strings"):
        SynonymMap({"flu": [1]})
    with pytest.raises(ValueError, match=r"weight must be in \(0, 1\]"):
        SynonymKeywordSource(index, m, weight=1.5)


# ---------------------------------------------------------------- TF-IDF


def test_tfidf_matches_scikit_learn(index: HybridIndex) -> None:
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    vec = sklearn_text.TfidfVectorizer(
        analyzer=index.tokenizer, sublinear_tf=True, smooth_idf=True, norm="l2"
    )
    matrix = vec.fit_transform(list(TEXTS.values()))
    q = "influenza flu shot"
    expected = (matrix @ vec.transform([q]).T).toarray().ravel()
    c = TfidfSource(index).search(q, 10)
    assert c.ids is not None and c.scores is not None
    got = dict(zip(c.ids, c.scores.tolist()))
    for i, doc_id in enumerate(TEXTS):
        if expected[i] > 0:
            assert got[doc_id] == pytest.approx(expected[i])
        else:
            assert doc_id not in got
    assert c.id_scorer is not None
    assert c.id_scorer(["tax", "flu2", "nope"])[:2] == pytest.approx([0.0, expected[1]])


def test_tfidf_follows_index_changes_and_filters() -> None:
    idx = HybridIndex.from_texts(
        ["red apples", "green apples"],
        DeterministicFakeEmbedding(size=8),
        ids=["r", "g"],
        metadatas=[{"c": "red"}, {"c": "green"}],
    )
    src = TfidfSource(idx)
    assert src.search("apples", 5).ids == ["r", "g"] or src.search("apples", 5).ids == ["g", "r"]
    idx.add_texts(["yellow bananas"], ids=["y"])
    assert src.search("bananas", 5).ids == ["y"]
    idx.delete(["y"])
    assert src.search("bananas", 5).ids == []
    assert src.search("apples", 5, filter={"c": "green"}).ids == ["g"]


def test_tfidf_pipeline_is_one_call(index: HybridIndex) -> None:
    r = tfidf_fusion(index, k=3)
    assert r.names == ["dense", "bm25", "tfidf"]
    assert r.weights == [1.0, 1.2, 1.0] and r.method == "rrf"
    docs = r.invoke("flu shot influenza")
    assert docs[0].id == "flu2"
    assert set(docs[0].metadata["fusion"]["retrievers"]) == {"dense", "bm25", "tfidf"}
    same = FusionRetriever(
        retrievers=[index, HybridKeywordSource(index), TfidfSource(index)],
        weights=[1.0, 1.2, 1.0],
        method="rrf",
        k=3,
    )
    assert [d.id for d in same.invoke("flu shot influenza")] == [d.id for d in docs]


# ---------------------------------------------------------------- rerank


def overlap(query: str, texts: list[str]) -> list[float]:
    words = set(query.lower().split())
    return [float(len(words & set(t.lower().split()))) for t in texts]


def test_function_reranker_rescores_the_fused_top_n(index: HybridIndex) -> None:
    seen: list[int] = []

    def scorer(query: str, texts: list[str]) -> list[float]:
        seen.append(len(texts))
        return overlap(query, texts)

    r = FusionRetriever.from_index(index, k=2, reranker=scorer, rerank_top_n=5)
    docs = r.invoke("the common cold")
    assert seen == [5] and len(docs) == 2
    assert docs[0].id == "cold"
    rr = [d.metadata["fusion"]["rerank"] for d in docs]
    assert [x["score"] for x in rr] == sorted((x["score"] for x in rr), reverse=True)
    assert [d.metadata["fusion"]["rank"] for d in docs] == [1, 2]
    plain = FusionRetriever.from_index(index, k=5).invoke("the common cold")
    fused_rank = {d.id: d.metadata["fusion"]["rank"] for d in plain}
    assert all(x["fused_rank"] == fused_rank[d.id] for d, x in zip(docs, rr))
    header = r.explain("the common cold").splitlines()[0]
    assert header.split()[:3] == ["#", "fused", "rerank"]


def test_rerank_weight_blends_the_reranker_with_the_fused_order(index: HybridIndex) -> None:
    query = "flu shot influenza cough"
    fused = FusionRetriever.from_index(index, k=6).invoke(query)
    by_fused = {d.id: d.metadata["fusion"]["score"] for d in fused}
    reverse = lambda q, texts: [float(i) for i in range(len(texts))]  # noqa: E731 - last first
    alone = FusionRetriever.from_index(index, k=6, reranker=reverse, rerank_top_n=6)
    assert [d.id for d in alone.invoke(query)] == [d.id for d in fused][::-1]
    none = FusionRetriever.from_index(index, k=6, reranker=reverse, rerank_weight=0.0)
    assert [d.id for d in none.invoke(query)] == [d.id for d in fused]
    half = FusionRetriever.from_index(index, k=6, reranker=reverse, rerank_weight=0.3)
    docs = half.invoke(query)
    # the blend by hand: 0.3 * minmax(rerank) + 0.7 * minmax(fused score) over the six
    rerank = {d.id: float(i) for i, d in enumerate(fused)}
    lo_r, hi_r = min(rerank.values()), max(rerank.values())
    lo_f, hi_f = min(by_fused.values()), max(by_fused.values())
    expected = {
        i: 0.3 * (rerank[i] - lo_r) / (hi_r - lo_r) + 0.7 * (by_fused[i] - lo_f) / (hi_f - lo_f)
        for i in rerank
    }
    got = {d.id: d.metadata["fusion"]["rerank"]["blended"] for d in docs}
    assert got == pytest.approx(expected, abs=1e-6)
    assert [d.id for d in docs] == sorted(expected, key=lambda i: -expected[i])
    assert all(d.metadata["fusion"]["rerank"]["score"] == rerank[d.id] for d in docs)
    assert [d.metadata["fusion"]["rank"] for d in docs] == [1, 2, 3, 4, 5, 6]


def test_rerank_weight_keeps_documents_a_compressor_dropped_last(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(
        index, k=4, reranker=KeepWord(word="influenza"), rerank_weight=0.5
    )
    docs = r.invoke("flu shot")
    rr = [d.metadata["fusion"]["rerank"] for d in docs]
    assert [x["score"] for x in rr] == [0.9, 0.9, None, None]
    assert all("blended" in x for x in rr[:2]) and not any("blended" in x for x in rr[2:])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5", None])
def test_bad_rerank_weight(index: HybridIndex, bad: Any) -> None:
    with pytest.raises(ValueError, match=r"rerank_weight must be a number in \[0, 1\]"):
        FusionRetriever.from_index(index, reranker=overlap, rerank_weight=bad)
    with pytest.raises(ValueError, match="rerank_weight must be a number"):
        rerank_documents(overlap, "q", [Document("a")], 1, weight=bad)


class KeepWord(BaseDocumentCompressor):
    """A LangChain compressor: keeps documents with a word, scores them, optionally lies."""

    word: str
    foreign: bool = False
    fail: bool = False

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if self.fail:
            raise TimeoutError("rerank service timed out")
        kept = [
            Document(d.page_content, id=d.id, metadata={**d.metadata, "relevance_score": 0.9})
            for d in documents
            if self.word in d.page_content
        ]
        if self.foreign:
            kept.insert(0, Document("an invented document"))
        return kept


def test_compressor_reranker_keeps_k_and_its_scores(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(index, k=3, reranker=KeepWord(word="influenza"))
    docs = r.invoke("flu shot")
    assert [d.id for d in docs][:2] in (["flu2", "flu"], ["flu", "flu2"])
    assert [d.metadata["fusion"]["rerank"]["score"] for d in docs] == [0.9, 0.9, None]
    assert len(docs) == 3  # the compressor kept two; the next fused document fills k


def test_reranker_that_fails_or_invents_documents(index: HybridIndex) -> None:
    plain = [d.id for d in FusionRetriever.from_index(index, k=3).invoke("flu shot")]
    for bad, msg in [
        (KeepWord(word="flu", foreign=True), "not given"),
        (KeepWord(word="flu", fail=True), "TimeoutError: rerank service timed out"),
    ]:
        r = FusionRetriever.from_index(index, k=3, reranker=bad)
        with pytest.warns(UserWarning, match=msg):
            docs = r.invoke("flu shot")
        assert [d.id for d in docs] == plain
        assert all("rerank" not in d.metadata["fusion"] for d in docs)
    docs = [Document("a"), Document("b")]
    with pytest.raises(RerankError, match="gave 1 scores for 2 documents"):
        rerank_documents(lambda q, t: [1.0], "q", docs, 2, on_error="raise")
    with pytest.raises(RerankError, match="NaN"):
        rerank_documents(lambda q, t: [1.0, float("nan")], "q", docs, 2, on_error="raise")


def test_bad_reranker_arguments(index: HybridIndex, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="reranker must be a CrossEncoder"):
        FusionRetriever.from_index(index, reranker=3)
    with pytest.raises(FileNotFoundError, match="no cross-encoder at"):
        FusionRetriever.from_index(index, reranker=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="rerank_top_n must be an integer >= 1"):
        FusionRetriever.from_index(index, reranker=overlap, rerank_top_n=0)


def tiny_cross_encoder(path: Path) -> Path:
    """A 2-layer BERT cross-encoder built from a config and a word vocabulary (no download)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = sorted({w for t in TEXTS.values() for w in t.replace(":", " ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_cross_encoder_from_a_local_path(index: HybridIndex, tmp_path: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    path = tiny_cross_encoder(tmp_path / "ce")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = st.CrossEncoder(str(path), max_length=64)
    r = FusionRetriever.from_index(index, k=3, reranker=str(path), rerank_top_n=6)
    q = "flu shot"
    docs = r.invoke(q)
    assert len(docs) == 3
    fused = FusionRetriever.from_index(index, k=6).invoke(q)
    expected = np.asarray(model.predict([(q, d.page_content) for d in fused]), dtype=float)
    best = [fused[i].id for i in np.argsort(-expected, kind="stable")[:3]]
    assert [d.id for d in docs] == best
    got = [d.metadata["fusion"]["rerank"]["score"] for d in docs]
    assert got == pytest.approx(sorted(expected, reverse=True)[:3], abs=1e-5)
    # a CrossEncoder object works the same way
    r2 = FusionRetriever.from_index(index, k=3, reranker=model, rerank_top_n=6)
    assert [d.id for d in r2.invoke(q)] == best


@pytest.mark.slow
def test_a_cross_encoder_path_loads_once_for_concurrent_queries(
    index: HybridIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sentence_transformers")
    from concurrent.futures import ThreadPoolExecutor

    import langchain_fusion.rerank as rerank_module

    path = tiny_cross_encoder(tmp_path / "ce")
    loads: list[str] = []
    real = rerank_module.load_cross_encoder

    def counted(p: str, *args: Any, **kwargs: Any) -> Any:
        loads.append(p)
        return real(p, *args, **kwargs)

    monkeypatch.setattr(rerank_module, "load_cross_encoder", counted)
    r = FusionRetriever.from_index(index, k=3, reranker=str(path), rerank_top_n=6)
    with warnings.catch_warnings(), ThreadPoolExecutor(4) as pool:
        warnings.simplefilter("ignore")
        results = list(pool.map(r.invoke, ["flu shot", "income tax"] * 4))
    assert len(loads) == 1 and all(len(docs) == 3 for docs in results)
    assert [d.id for d in results[0]] == [d.id for d in results[2]]


@pytest.mark.slow
def test_a_cross_encoder_path_runs_at_its_saved_length(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from langchain_fusion.rerank import load_cross_encoder

    path = tiny_cross_encoder(tmp_path / "ce")
    config = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 48}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_cross_encoder(str(path))
    assert model.max_seq_length == 48  # as fine-tuned, not the 512 of other models
    (path / "tokenizer_config.json").write_text(json.dumps(config))  # no length saved: 512
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_cross_encoder(str(path)).max_seq_length == 512


def test_reranker_object_with_predict(index: HybridIndex) -> None:
    class Predictor:
        def predict(self, pairs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
            return np.array([overlap(q, [t])[0] for q, t in pairs])

    r = FusionRetriever.from_index(index, k=1, reranker=Predictor())
    assert r.invoke("income tax")[0].id == "tax"


async def test_async_rerank_matches_sync(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(index, k=2, reranker=KeepWord(word="influenza"))
    sync = await r.ainvoke("flu shot")
    assert [d.id for d in sync] == [d.id for d in r.invoke("flu shot")]
    assert all(d.metadata["fusion"]["rerank"]["score"] == 0.9 for d in sync)
