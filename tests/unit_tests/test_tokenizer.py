from __future__ import annotations

import copy
import json
import pickle
import threading

import pytest

from langchain_fusion.lexical import DEFAULT_TOKEN_PATTERN, ENGLISH_STOPWORDS, Tokenizer
from langchain_fusion.lexical.stopwords import get_stopwords


def test_default_pipeline() -> None:
    tok = Tokenizer()
    assert tok("The Runners were RUNNING quickly!") == ["runner", "run", "quick"]
    # possessive "s" and "don" are stopwords; "t" is kept (T cells)
    assert tok("The patient's T cells don't") == ["patient", "t", "cell", "t"]


def test_identifiers_symbols_and_scripts() -> None:
    tok = Tokenizer(stopwords=None, stemmer=None)
    assert tok("read_csv E-104 C++ C# F# g++ x") == [
        "read_csv",
        "e",
        "104",
        "c++",
        "c#",
        "f#",
        "g++",
        "x",
    ]
    assert tok("covid19 3.14 2023 vitamin D") == ["covid19", "3", "14", "2023", "vitamin", "d"]
    # non-English letters survive, emoji are one token each
    assert tok("Café naïve Straße данные δεδομένα 🙂👍") == [
        "café",
        "naïve",
        "straße",
        "данные",
        "δεδομένα",
        "🙂",
        "👍",
    ]
    # scripts without spaces: one token per run (documented limitation) unless the pattern
    # says otherwise
    assert tok("数据科学") == ["数据科学"]
    cjk = Tokenizer(stopwords=None, stemmer=None, token_pattern=r"[\u4e00-\u9fff]|\w+")
    assert cjk("数据科学 ok") == ["数", "据", "科", "学", "ok"]
    assert tok("c++11 a+b") == ["c++", "11", "a", "b"]


def test_lowercase_off_keeps_case_but_stopwords_match_case_insensitively() -> None:
    tok = Tokenizer(lowercase=False, stemmer=None)
    assert tok("The Cat and THE dog") == ["Cat", "dog"]


def test_custom_stopwords_and_stemmers() -> None:
    assert Tokenizer(stopwords=["Cat"], stemmer=None)("cat dog cats") == ["dog", "cats"]
    assert Tokenizer(stopwords=None)("the cats") == ["the", "cat"]
    assert Tokenizer(stemmer="french", stopwords=None)("les chats mangeaient") == [
        "le",
        "chat",
        "mang",
    ]


def test_custom_pattern_with_groups_uses_whole_match() -> None:
    tok = Tokenizer(stopwords=None, stemmer=None, token_pattern=r"(\w)\w+")
    assert tok("ab c def") == ["ab", "def"]


def test_tokenize_many_equals_single_calls() -> None:
    texts = ["First text here.", "", "Second TEXT, with more words", "🙂 émoji"]
    tok = Tokenizer()
    assert tok.tokenize_many(texts) == [tok(t) for t in texts]
    assert Tokenizer().tokenize_many(iter(texts)) == [tok(t) for t in texts]
    assert tok.tokenize_many([]) == []


def test_config_round_trip_is_json() -> None:
    for tok in [
        Tokenizer(),
        Tokenizer(lowercase=False, stopwords=["b", "a"], stemmer=None, token_pattern=r"\S+"),
        Tokenizer(stopwords=None, stemmer="porter"),
    ]:
        cfg = json.loads(json.dumps(tok.to_config()))
        again = Tokenizer.from_config(cfg)
        assert again == tok
        assert again("The quick brown foxes") == tok("The quick brown foxes")
    assert Tokenizer().to_config()["token_pattern"] == DEFAULT_TOKEN_PATTERN
    assert Tokenizer(stopwords=["b", "a"]).to_config()["stopwords"] == ["a", "b"]


def test_pickle_and_copy() -> None:
    tok = Tokenizer(stopwords=["x"])
    assert pickle.loads(pickle.dumps(tok)) == tok
    assert copy.deepcopy(tok) == tok
    assert hash(Tokenizer()) == hash(Tokenizer())
    assert Tokenizer() != Tokenizer(stemmer=None)


def test_validation_messages() -> None:
    with pytest.raises(
        ValueError, match=r"stemmer must be None or one of .*'english'.*got 'klingon'"
    ):
        Tokenizer(stemmer="klingon")
    with pytest.raises(ValueError, match=r"stopwords must be one of 'en', 'english'.*got 'fr'"):
        Tokenizer(stopwords="fr")
    with pytest.raises(ValueError, match=r"token_pattern must be a valid regular expression"):
        Tokenizer(token_pattern="(")
    with pytest.raises(TypeError, match="lowercase must be a bool"):
        Tokenizer(lowercase="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stopwords must contain only str"):
        Tokenizer(stopwords=["a", 1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="text must be a str, got int"):
        Tokenizer()(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got NoneType"):
        Tokenizer().tokenize_many(["ok", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        Tokenizer().tokenize_many("abc")
    with pytest.raises(ValueError, match=r"unknown keys \['lower'\]"):
        Tokenizer.from_config({"lower": True})


def test_stopword_list() -> None:
    assert get_stopwords("EN") is ENGLISH_STOPWORDS
    assert {"the", "and", "of", "is", "which"} <= ENGLISH_STOPWORDS
    # negations and content words are deliberately kept
    assert not {"not", "no", "without", "cancer", "new"} & ENGLISH_STOPWORDS
    assert all(w == w.lower() and w.isalpha() for w in ENGLISH_STOPWORDS)


def test_cache_overflow_still_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_fusion.lexical.tokenizer as mod

    monkeypatch.setattr(mod, "_CACHE_LIMIT", 10)
    tok = Tokenizer()
    words = [f"word{i}s" for i in range(50)]
    expected = [f"word{i}" for i in range(50)]
    assert tok(" ".join(words)) == expected
    assert tok.tokenize_many([" ".join(words)] * 2) == [expected, expected]
    assert len(tok._cache) <= 50


def test_thread_safety() -> None:
    tok = Tokenizer()
    texts = [f"running tests number{i} in thread" for i in range(300)]
    expected = [Tokenizer()(t) for t in texts]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for text, exp in zip(texts, expected, strict=True):
                assert tok(text) == exp
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
