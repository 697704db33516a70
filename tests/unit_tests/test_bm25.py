from __future__ import annotations

import copy
import json
import math
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_fusion.lexical import METHODS, BM25Index, Tokenizer, scoring

DATA = (
    Path(os.environ.get("LANGCHAIN_FUSION_DATA") or "")
    if os.environ.get("LANGCHAIN_FUSION_DATA")
    else Path(__file__).resolve().parents[2].parent / "shared" / "data"
)

PLAIN = Tokenizer(stopwords=None, stemmer=None)


def synthetic_corpus(n: int, seed: int = 0, vocab: int = 300) -> list[str]:
    """Zipf-distributed words, variable lengths, some repeats: a realistic tf/df spread."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    lengths = rng.integers(1, 40, size=n)
    return [" ".join(rng.choice(words, size=int(L), p=p)) for L in lengths]


def all_scores(index: BM25Index, query: str) -> np.ndarray:
    live = np.flatnonzero(index.live_mask)
    out = np.zeros(index.n_slots)
    out[live] = index.score(query, live)
    return out


# --------------------------------------------------------------------------- basics


def test_add_assigns_consecutive_slots_and_counts() -> None:
    index = BM25Index()
    assert index.n_slots == 0 and index.n_live == 0 and len(index) == 0
    assert index.add(["a first doc", "second doc"]).tolist() == [0, 1]
    slots = index.add(["third", "", "fifth"])
    assert slots.dtype == np.int64 and slots.tolist() == [2, 3, 4]
    assert index.add([]).tolist() == []
    assert (index.n_slots, index.n_live) == (5, 5)
    index.remove([1, 3])
    assert (index.n_slots, index.n_live) == (5, 3)
    assert index.live_mask.tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError):
        index.live_mask[0] = False  # read-only view


def test_empty_index_and_queries_without_known_terms() -> None:
    index = BM25Index()
    slots, scores = index.search("anything", k=3)
    assert slots.dtype == np.int64 and scores.dtype == np.float64
    assert slots.size == 0 and scores.size == 0
    assert index.known_terms("anything") == []
    index.add(["hello world"])
    assert index.search("", k=3)[0].size == 0
    assert index.search("the of and", k=3)[0].size == 0  # only stopwords
    assert index.search("unknown", k=3)[0].size == 0
    assert index.score("unknown", [0]).tolist() == [0.0]
    assert index.search_many([], k=2) == []


def test_search_ranks_by_hand_computed_lucene_bm25() -> None:
    index = BM25Index(PLAIN)
    docs = ["aa bb", "aa aa cc", "cc dd ee ff"]
    index.add(docs)
    n, avgdl, k1, b = 3, 9 / 3, 1.5, 0.75

    def term(df: int, tf: int, dl: int) -> float:
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))

    expected = {0: term(2, 1, 2), 1: term(2, 2, 3)}
    slots, scores = index.search("aa", k=10)
    assert slots.tolist() == [1, 0]  # higher tf wins despite longer doc
    assert scores.tolist() == pytest.approx([expected[1], expected[0]], abs=1e-12)
    # repeated query terms count repeatedly (as in bm25s and rank-bm25)
    assert index.score("aa aa", [0])[0] == pytest.approx(2 * expected[0], abs=1e-12)
    assert index.score("aa cc", [1])[0] == pytest.approx(term(2, 2, 3) + term(2, 1, 3))


def test_search_k_mask_ties_and_positive_only() -> None:
    index = BM25Index(PLAIN)
    index.add(["xx yy", "xx yy", "zz", "xx yy", "yy"])
    slots, scores = index.search("xx", k=2)
    assert slots.tolist() == [0, 1]  # ties broken by slot
    assert scores[0] == scores[1] > 0
    assert index.search("xx", k=10)[0].tolist() == [0, 1, 3]  # only docs containing x
    mask = np.array([False, True, True, True, True])
    assert index.search("xx", k=10, mask=mask)[0].tolist() == [1, 3]
    assert index.search("xx", k=10, mask=np.zeros(5, bool))[0].tolist() == []
    # robertson idf is 0 for a term in more than half of the documents: no positive score
    rob = BM25Index(PLAIN, method="robertson")
    rob.add(["xx", "xx", "xx", "yy"])
    assert rob.search("xx", k=5)[0].tolist() == []
    assert rob.score("xx", [0]).tolist() == [0.0]


@pytest.mark.parametrize("method", METHODS)
def test_top_k_equals_brute_force_sort(method: str) -> None:
    index = BM25Index(PLAIN, method=method)
    texts = synthetic_corpus(300, seed=11, vocab=40) + ["w1 w2 w3"] * 30  # many exact ties
    index.add(texts)
    index.remove(np.arange(0, 330, 9))
    rng = np.random.default_rng(3)
    mask = rng.random(330) < 0.8
    for query in ["w1", "w1 w2 w3", "w0 w5 w5 w30", "w39 w38"]:
        for m in (None, mask):
            full = all_scores(index, query)
            allowed = index.live_mask & (full > 0)
            if m is not None:
                allowed &= m
            cand = np.flatnonzero(allowed)
            order = cand[np.lexsort((cand, -full[cand]))]
            for k in (1, 3, 10, 25, 400):
                slots, scores = index.search(query, k, mask=m)
                assert slots.tolist() == order[:k].tolist()
                np.testing.assert_allclose(scores, full[order[:k]], rtol=0, atol=1e-12)


def test_search_many_equals_search() -> None:
    index = BM25Index(PLAIN)
    index.add(synthetic_corpus(300, seed=1))
    queries = ["w1 w5", "w40", "w200 w3 w3", "nothing", ""]
    mask = np.arange(300) % 3 != 0
    many = index.search_many(queries, k=7, mask=mask)
    for q, (slots, scores) in zip(queries, many, strict=True):
        s2, sc2 = index.search(q, k=7, mask=mask)
        assert slots.tolist() == s2.tolist()
        assert np.array_equal(scores, sc2)


def test_sparse_and_dense_accumulation_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_fusion.lexical.bm25 as mod

    index = BM25Index(PLAIN)
    index.add(synthetic_corpus(500, seed=2))
    index.remove(np.arange(0, 500, 7))
    results = {}
    for ratio in (0.0, 1e9):  # force bincount over all slots, then the scratch buffer
        monkeypatch.setattr(mod, "_DENSE_RATIO", ratio)
        results[ratio] = [index.search(q, k=20) for q in ["w0", "w3 w9 w100", "w1 w2 w250"]]
    for (s1, sc1), (s2, sc2) in zip(results[0.0], results[1e9], strict=True):
        assert s1.tolist() == s2.tolist()
        np.testing.assert_allclose(sc1, sc2, rtol=0, atol=1e-12)


def test_score_matches_search_and_handles_order_and_repeats() -> None:
    index = BM25Index(PLAIN)
    index.add(synthetic_corpus(200, seed=3))
    slots, scores = index.search("w2 w17", k=200)
    shuffled = np.random.default_rng(0).permutation(slots)
    got = index.score("w2 w17", np.concatenate([shuffled, shuffled[:3]]))
    lookup = dict(zip(slots.tolist(), scores.tolist(), strict=True))
    np.testing.assert_allclose(
        got, [lookup[s] for s in np.concatenate([shuffled, shuffled[:3]]).tolist()], atol=1e-12
    )
    others = np.setdiff1d(np.arange(200), slots)
    assert np.all(index.score("w2 w17", others) == 0.0)
    assert index.score("w2", []).shape == (0,)


def test_known_terms() -> None:
    index = BM25Index()
    index.add(["Running shoes for runners", "blue sky"])
    assert index.known_terms("the runner is running in red shoes, running") == [
        "runner",
        "run",
        "shoe",
    ]
    index.remove([0])
    assert index.known_terms("running shoes sky") == ["sky"]


def test_validation() -> None:
    index = BM25Index()
    index.add(["one doc", "two docs"])
    for bad in (0, -1, 1.5, "3", True, None):
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            index.search("doc", k=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        index.add(["fine", 3])  # type: ignore[list-item]
    assert index.n_slots == 2  # nothing added
    with pytest.raises(TypeError, match="single text in a list"):
        index.add("a string")
    with pytest.raises(ValueError, match=r"mask must have shape \(n_slots,\) = \(2,\), got \(3,\)"):
        index.search("doc", k=1, mask=np.ones(3, bool))
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        index.search("doc", k=1, mask=np.ones(2))  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="slot 5 does not exist"):
        index.remove([0, 5])
    assert index.n_live == 2  # atomic
    with pytest.raises(TypeError, match="slots must be integers"):
        index.remove([0.0])
    index.remove([0])
    with pytest.raises(KeyError, match="slot 0 is already removed"):
        index.remove([1, 0])
    assert index.n_live == 1
    with pytest.raises(KeyError, match="slot 0 is already removed"):
        index.score("doc", [0])
    with pytest.raises(ValueError, match=r"b must be in \[0, 1\], got 1.5"):
        BM25Index(b=1.5)
    with pytest.raises(ValueError, match="k1 must be >= 0"):
        BM25Index(k1=-1)
    with pytest.raises(ValueError, match=r"method must be one of \['lucene'"):
        BM25Index(method="okapi")
    with pytest.raises(TypeError, match="tokenizer must be a langchain_fusion Tokenizer"):
        BM25Index(tokenizer=str.split)  # type: ignore[arg-type]


def test_show_progress_chunks_give_same_index(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_fusion.lexical.bm25 as mod

    monkeypatch.setattr(mod, "_ADD_CHUNK", 7)
    texts = synthetic_corpus(50, seed=12)
    with_bar = BM25Index(PLAIN)
    with_bar.add(texts, show_progress=True)
    plain = BM25Index(PLAIN)
    plain.add(texts)
    for q in ["w1", "w2 w3"]:
        assert with_bar.search(q, 10)[0].tolist() == plain.search(q, 10)[0].tolist()
    with pytest.raises(TypeError, match=r"texts\[22\] must be a str"):
        with_bar.add([*texts[:22], None], show_progress=True)  # type: ignore[list-item]
    assert with_bar.n_slots == 50


def _layout(index: BM25Index) -> dict[str, Any]:
    """Everything an index stores, segment arrays included (with their dtypes)."""
    out: dict[str, Any] = {
        "terms": list(index._terms),
        "df": index._df.view.tolist(),
        "doc_len": index._doc_len.view.tolist(),
        "live": index._live.view.tolist(),
        "stats": (index.n_live, index.n_slots, index._total_len),
        "segments": [],
    }
    for seg in index._segments:
        arrays = ("term_ptr", "post_docs", "post_tfs", "doc_ptr", "doc_terms")
        columns = [(str(getattr(seg, a).dtype), getattr(seg, a).tolist()) for a in arrays]
        out["segments"].append((seg.start, seg.n_docs, *columns))
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_add_equals_one_shot_add(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    import langchain_fusion.lexical.bm25 as mod

    texts = [*synthetic_corpus(60, seed=21), "", "the of and", "Zebra w1 w1 w1"]
    first = synthetic_corpus(10, seed=22)
    one_shot = BM25Index()
    one_shot.add(first)
    one_shot.add(texts)
    monkeypatch.setattr(mod, "_ADD_CHUNK", chunk)
    chunked = BM25Index()
    chunked.add(first)  # existing vocabulary: old terms keep their ids, new ones continue
    chunked.add(texts)
    assert _layout(chunked) == _layout(one_shot)
    for q in ["w1", "w2 w3 w2", "zebra w7", "nothing here"]:
        assert np.array_equal(all_scores(chunked, q), all_scores(one_shot, q))
        a, b = chunked.search(q, 10), one_shot.search(q, 10)
        assert a[0].tolist() == b[0].tolist() and np.array_equal(a[1], b[1])


def test_failing_chunked_add_leaves_index_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_fusion.lexical.bm25 as mod

    monkeypatch.setattr(mod, "_ADD_CHUNK", 5)
    index = BM25Index()
    index.add(synthetic_corpus(12, seed=3))
    before = _layout(index)
    scores = all_scores(index, "w1 w4")
    texts: list[Any] = [*synthetic_corpus(13, seed=4), "brandnewterm", 42, "tail"]
    with pytest.raises(TypeError, match=r"texts\[14\] must be a str, got int"):
        index.add(texts)  # chunks 0-1 encode fine (with new terms), chunk 2 fails
    assert _layout(index) == before
    assert np.array_equal(all_scores(index, "w1 w4"), scores)
    assert index.known_terms("brandnewterm") == []
    # and the index still takes the same texts once they are fixed, numbering terms afresh
    texts[14] = "42"
    assert index.add(texts).tolist() == list(range(12, 28))
    fresh = BM25Index()
    fresh.add(synthetic_corpus(12, seed=3))
    fresh.add(texts)
    assert _layout(index) == _layout(fresh)


def test_non_english_and_emoji_documents() -> None:
    index = BM25Index()
    index.add(["Über die Straße 🚗", "данные и модели", "数据", "plain english text"])
    assert index.search("straße", k=2)[0].tolist() == [0]
    assert index.search("🚗", k=2)[0].tolist() == [0]
    assert index.search("данные", k=2)[0].tolist() == [1]
    assert index.search("数据", k=2)[0].tolist() == [2]


# --------------------------------------------------------------------------- scoring functions


def test_scoring_functions_closed_form() -> None:
    n, df = 100, np.array([1, 10, 60])
    np.testing.assert_allclose(
        scoring.idf(df, n, "lucene"), np.log(1 + (n - df + 0.5) / (df + 0.5))
    )
    np.testing.assert_allclose(
        scoring.idf(df, n, "robertson"),
        np.log(np.maximum((n - df + 0.5) / (df + 0.5), 1)),
    )
    np.testing.assert_allclose(scoring.idf(df, n, "atire"), np.log(n / df))
    np.testing.assert_allclose(scoring.idf(df, n, "bm25l"), np.log((n + 1) / (df + 0.5)))
    np.testing.assert_allclose(scoring.idf(df, n, "bm25+"), np.log((n + 1) / df))
    tf, dl, avg, k1, b, d = np.array([1.0, 3.0]), np.array([5.0, 20.0]), 10.0, 1.2, 0.6, 0.4
    norm = 1 - b + b * dl / avg
    kw = {"k1": k1, "b": b, "delta": d}
    np.testing.assert_allclose(
        scoring.tf_component(tf, dl, avg, method="lucene", **kw), tf / (tf + k1 * norm)
    )
    np.testing.assert_allclose(
        scoring.tf_component(tf, dl, avg, method="atire", **kw),
        tf * (k1 + 1) / (tf + k1 * norm),
    )
    c = tf / norm
    np.testing.assert_allclose(
        scoring.tf_component(tf, dl, avg, method="bm25l", **kw),
        (k1 + 1) * (c + d) / (k1 + c + d),
    )
    np.testing.assert_allclose(
        scoring.tf_component(tf, dl, avg, method="bm25+", **kw),
        (k1 + 1) * tf / (k1 * norm + tf) + d,
    )
    for method in METHODS:
        zero = scoring.tf_component(0.0, 7.0, avg, method=method, **kw)
        assert float(zero) == pytest.approx(
            scoring.zero_tf_component(k1=k1, method=method, delta=d)
        )


# --------------------------------------------------------------------------- differential


def _bm25s_scores(tokens: list[list[str]], method: str, k1: float, b: float, delta: float):  # type: ignore[no-untyped-def]
    bm25s = pytest.importorskip("bm25s")
    model = bm25s.BM25(method=method, k1=k1, b=b, delta=delta, dtype="float64")
    model.index(tokens, show_progress=False)

    def scores(query_tokens: list[str]) -> np.ndarray:
        known = [t for t in query_tokens if t in model.vocab_dict]
        if not known:
            return np.zeros(len(tokens))
        return np.asarray(model.get_scores(known), dtype=np.float64)

    return scores


def _check_against_bm25s(
    texts: list[str],
    queries: list[str],
    tokenizer: Tokenizer,
    params: tuple[tuple[float, float], ...] = ((1.5, 0.75), (0.9, 0.4)),
) -> None:
    tokens = tokenizer.tokenize_many(texts)
    assert all(tokens), "bm25s needs non-empty documents"
    for method in METHODS:
        for k1, b in params:
            index = BM25Index(tokenizer, method=method, k1=k1, b=b, delta=0.5)
            index.add(texts)
            reference = _bm25s_scores(tokens, method, k1, b, 0.5)
            for query in queries:
                ref = reference(tokenizer(query))
                ours = all_scores(index, query)
                matched = ours > 0
                # every document containing a query term: same score as bm25s
                np.testing.assert_allclose(ours[matched], ref[matched], rtol=0, atol=1e-9)
                if method in ("lucene", "robertson", "atire"):
                    # documents without query terms score 0 in both
                    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
                slots, scores = index.search(query, k=10)
                np.testing.assert_allclose(scores, ref[slots], rtol=0, atol=1e-9)
                # same top-10 scores as a full sort of bm25s's scores over matching documents
                best = np.sort(ref[matched])[::-1][:10]
                np.testing.assert_allclose(scores, best, rtol=0, atol=1e-9)


def test_scores_equal_bm25s_on_synthetic_corpus() -> None:
    texts = synthetic_corpus(400, seed=4)
    queries = ["w0", "w1 w2 w3", "w7 w7 w150", "w299 w42", "w5 w6 w8 w9 w10", "zzz"]
    _check_against_bm25s(texts, queries, PLAIN)


def test_okapi_and_bm25plus_equal_rank_bm25() -> None:
    rank_bm25 = pytest.importorskip("rank_bm25")
    texts = synthetic_corpus(300, seed=5)
    tokens = PLAIN.tokenize_many(texts)
    n = len(texts)
    # BM25Okapi = (k1 + 1) * Robertson, for query terms in at most half of the documents
    # (rank-bm25 replaces the negative idf of more frequent terms by epsilon * mean idf, where
    # Robertson clips it to 0).
    okapi = rank_bm25.BM25Okapi(tokens, k1=1.5, b=0.75)
    plus = rank_bm25.BM25Plus(tokens, k1=1.5, b=0.75, delta=0.5)
    rob = BM25Index(PLAIN, method="robertson")
    rob.add(texts)
    bm25plus = BM25Index(PLAIN, method="bm25+", delta=0.5)
    bm25plus.add(texts)
    checked = 0
    for query in ["w3", "w10 w20", "w50 w51 w51", "w120 w5"]:
        qt = query.split()
        if any(rob.doc_freq(t) > n / 2 for t in qt):
            continue
        checked += 1
        np.testing.assert_allclose(
            2.5 * all_scores(rob, query), okapi.get_scores(qt), rtol=0, atol=1e-9
        )
        ours = all_scores(bm25plus, query)
        matched = ours > 0
        np.testing.assert_allclose(ours[matched], plus.get_scores(qt)[matched], atol=1e-9)
    assert checked >= 3
    # and where they differ: the most frequent word, in more than half of the documents
    frequent = "w0"
    assert rob.doc_freq(frequent) > n / 2
    assert np.all(all_scores(rob, frequent) == 0)
    assert np.all(okapi.get_scores([frequent])[np.array([frequent in t for t in tokens])] > 0)


@pytest.mark.data
def test_scores_equal_bm25s_on_scifact() -> None:
    corpus = DATA / "beir" / "scifact" / "corpus.jsonl"
    if not corpus.exists():
        pytest.skip(f"no data at {corpus}")
    texts, queries = [], []
    with corpus.open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            texts.append(f"{doc.get('title', '')} {doc['text']}".strip())
            if len(texts) == 2000:
                break
    with (DATA / "beir" / "scifact" / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for _, line in zip(range(30), f, strict=False)]
    _check_against_bm25s(texts, queries, Tokenizer(), params=((1.5, 0.75),))


@pytest.mark.data
@pytest.mark.slow
def test_scifact_ndcg_at_10() -> None:
    """Ranking quality on BEIR SciFact (test split): bm25s-level, well above whitespace BM25."""
    root = DATA / "beir" / "scifact"
    if not (root / "corpus.jsonl").exists():
        pytest.skip(f"no data at {root}")
    ids, texts = [], []
    with (root / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            ids.append(doc["_id"])
            texts.append(f"{doc.get('title', '')} {doc['text']}".strip())
    with (root / "queries.jsonl").open(encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, rel = line.split()
            qrels.setdefault(qid, {})[did] = int(rel)
    index = BM25Index()
    index.add(texts)
    ndcgs = []
    for qid, rels in qrels.items():
        slots, _ = index.search(queries[qid], k=10)
        gains = [rels.get(ids[s], 0) for s in slots.tolist()]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        ideal = sorted(rels.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcgs.append(dcg / idcg)
    score = float(np.mean(ndcgs))
    assert len(ndcgs) == 300
    assert score == pytest.approx(0.691, abs=0.005)  # bm25s default: 0.687; whitespace: 0.52


# --------------------------------------------------------------------------- incremental


def _assert_equivalent(
    index: BM25Index, survivors: list[tuple[int, str]], queries: list[str]
) -> None:
    """``index`` scores exactly like a fresh index built on the surviving texts."""
    fresh = BM25Index(
        index.tokenizer, k1=index.k1, b=index.b, method=index.method, delta=index.delta
    )
    fresh.add([t for _, t in survivors])
    slot_of = np.array([s for s, _ in survivors], dtype=np.int64)
    assert index.n_live == fresh.n_live == len(survivors)
    assert index.avg_doc_len == fresh.avg_doc_len
    assert index.n_terms == fresh.n_terms
    assert index.live_mask.sum() == len(survivors)
    for query in queries:
        for term in set(index.tokenizer(query)):
            assert index.doc_freq(term) == fresh.doc_freq(term)
        assert index.known_terms(query) == fresh.known_terms(query)
        slots, scores = index.search(query, k=max(1, index.n_slots))
        f_slots, f_scores = fresh.search(query, k=max(1, fresh.n_slots))
        got = dict(zip(slots.tolist(), scores.tolist(), strict=True))
        want = dict(zip(slot_of[f_slots].tolist(), f_scores.tolist(), strict=True))
        assert got.keys() == want.keys()
        for s, v in want.items():
            assert abs(got[s] - v) <= 1e-9
        assert np.all(np.diff(scores) <= 0)
        if survivors:
            np.testing.assert_allclose(
                index.score(query, slot_of),
                fresh.score(query, np.arange(len(survivors))),
                rtol=0,
                atol=1e-9,
            )


WORDS = ["alpha", "beta", "gamma", "delta", "omega", "pi", "the"]
text_st = st.lists(st.sampled_from(WORDS), min_size=0, max_size=6).map(" ".join)
op_st: st.SearchStrategy[tuple[str, list[Any]]] = st.one_of(
    st.tuples(st.just("add"), st.lists(text_st, min_size=0, max_size=5)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 10_000), min_size=1, max_size=3)),
    st.tuples(st.just("compact"), st.just([])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(op_st, min_size=1, max_size=12),
    method=st.sampled_from(METHODS),
)
def test_incremental_equals_fresh_build(ops: list[tuple[str, list[Any]]], method: str) -> None:
    index = BM25Index(Tokenizer(stemmer=None), method=method)
    survivors: dict[int, str] = {}
    for kind, arg in ops:
        if kind == "add":
            slots = index.add(arg)
            survivors.update(zip(slots.tolist(), arg, strict=True))
        elif kind == "remove" and survivors:
            live = sorted(survivors)
            chosen = sorted({live[i % len(live)] for i in arg})
            index.remove(chosen)
            for s in chosen:
                del survivors[s]
        elif kind == "compact":
            mapping = index.compact()
            assert all(mapping[s] >= 0 for s in survivors)
            assert (mapping >= 0).sum() == len(survivors)
            survivors = {int(mapping[s]): t for s, t in survivors.items()}
            assert index.n_slots == len(survivors)
    queries = ["alpha", "beta gamma", "omega omega pi", "the", "delta alpha beta", "zzz"]
    _assert_equivalent(index, sorted(survivors.items()), queries)


def test_many_small_adds_stay_few_segments_and_exact() -> None:
    texts = synthetic_corpus(600, seed=6)
    index = BM25Index(PLAIN)
    for i in range(0, 600, 3):
        index.add(texts[i : i + 3])
    assert len(index._segments) <= 10  # log-structured merging
    index.remove(np.arange(0, 600, 4))
    survivors = [(s, t) for s, t in enumerate(texts) if s % 4]
    _assert_equivalent(index, survivors, ["w0 w1", "w17", "w3 w3 w99"])


def test_compact_mapping_and_results() -> None:
    texts = synthetic_corpus(100, seed=7)
    index = BM25Index(PLAIN)
    index.add(texts)
    index.remove([0, 5, 99])
    before = index.search("w1 w4", k=10)
    mapping = index.compact()
    assert mapping.shape == (100,) and mapping[0] == -1 and mapping[1] == 0 and mapping[99] == -1
    assert index.n_slots == index.n_live == 97
    after = index.search("w1 w4", k=10)
    assert mapping[before[0]].tolist() == after[0].tolist()
    np.testing.assert_allclose(before[1], after[1], atol=1e-12)
    assert index.add(["w1"]).tolist() == [97]
    # terms that only occurred in removed documents are forgotten
    index2 = BM25Index(PLAIN)
    index2.add(["solo", "other"])
    index2.remove([0])
    index2.compact()
    assert index2.n_terms == 1 and index2.known_terms("solo") == []
    # compacting everything away
    index2.remove([0])
    assert index2.compact().tolist() == [-1]
    assert index2.n_slots == 0 and index2.search("other", k=1)[0].size == 0
    assert index2.add(["other"]).tolist() == [0]


def test_remove_everything_then_add() -> None:
    index = BM25Index(PLAIN)
    index.add(["aa bb", "bb cc"])
    index.remove([0, 1])
    assert index.n_live == 0 and index.avg_doc_len == 0.0
    assert index.search("bb", k=3)[0].size == 0
    index.add(["bb dd"])
    assert index.search("bb", k=3)[0].tolist() == [2]
    _assert_equivalent(index, [(2, "bb dd")], ["bb", "aa"])


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path: Path, mmap: bool) -> None:
    texts = synthetic_corpus(150, seed=8)
    index = BM25Index(PLAIN, k1=1.2, b=0.6, method="bm25l", delta=0.3)
    index.add(texts[:100])
    index.add(texts[100:])
    index.remove([3, 120])
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "bm25.json",
            "doc_len.npy",
            "live.npy",
            "df.npy",
            "term_ptr.npy",
            "post_docs.npy",
            "post_tfs.npy",
            "doc_ptr.npy",
            "doc_terms.npy",
        ]
    )
    for npy in tmp_path.glob("*.npy"):
        np.load(npy, allow_pickle=False)  # no pickled objects anywhere
    loaded = BM25Index.load(tmp_path, mmap=mmap)
    assert (loaded.k1, loaded.b, loaded.method, loaded.delta) == (1.2, 0.6, "bm25l", 0.3)
    assert loaded.tokenizer == PLAIN
    assert loaded.n_slots == 150 and loaded.n_live == 148
    if mmap:
        assert isinstance(loaded._segments[0].post_docs, np.memmap)
    for q in ["w1", "w2 w30", "w7 w7"]:
        a, b = index.search(q, k=20), loaded.search(q, k=20)
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_array_equal(a[1], b[1])
    # the loaded index keeps accepting updates, without writing into the files
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    loaded.add(texts[:10])
    loaded.remove([0, 149])
    loaded.compact()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    survivors = [t for s, t in enumerate(texts) if s not in (0, 3, 120, 149)] + texts[:10]
    _assert_equivalent(loaded, list(enumerate(survivors)), ["w1", "w2 w30"])


def test_save_over_a_mapped_index_in_place(tmp_path: Path) -> None:
    index = BM25Index(PLAIN)
    index.add(["aa bb", "bb cc"])
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path, mmap=True)
    loaded.add(["cc dd"])
    loaded.save(tmp_path)  # replaces the files it is mapped from
    assert loaded.search("cc", k=3)[0].tolist() == [1, 2]
    assert BM25Index.load(tmp_path).search("cc", k=3)[0].tolist() == [1, 2]


def test_save_empty_and_errors(tmp_path: Path) -> None:
    BM25Index().save(tmp_path / "empty")
    empty = BM25Index.load(tmp_path / "empty")
    assert empty.n_slots == 0 and empty.add(["xx yy"]).tolist() == [0]
    with pytest.raises(FileNotFoundError, match=r"missing bm25\.json"):
        BM25Index.load(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        BM25Index().save(tmp_path / "file")
    meta = tmp_path / "empty" / "bm25.json"
    cfg = json.loads(meta.read_text())
    cfg["version"] = 99
    meta.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="version"):
        BM25Index.load(tmp_path / "empty")


def test_pickle_and_deepcopy_are_independent() -> None:
    index = BM25Index(PLAIN)
    index.add(["aa bb", "bb cc"])
    clone = copy.deepcopy(index)
    pickled = pickle.loads(pickle.dumps(index))
    clone.remove([0])
    assert index.n_live == 2 and clone.n_live == 1
    assert pickled.search("bb", k=2)[0].tolist() == [0, 1]


def test_concurrent_reads_and_writes() -> None:
    index = BM25Index(PLAIN)
    texts = synthetic_corpus(400, seed=9)
    index.add(texts[:200])
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                _, scores = index.search("w1 w2", k=5)
                assert np.all(np.diff(scores) <= 0)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(200, 400, 10):
        index.add(texts[i : i + 10])
    for t in threads:
        t.join()
    assert not errors
    _assert_equivalent(index, list(enumerate(texts)), ["w1 w2"])
