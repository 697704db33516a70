from __future__ import annotations

import copy
import json
import pickle
import threading
import unicodedata

import pytest

from langchain_fusion.lexical import DEFAULT_TOKEN_PATTERN, ENGLISH_STOPWORDS, BM25Index, Tokenizer
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
        "strasse",  # casefold(), not lower()
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
    with pytest.raises(ValueError, match=r"unicode_normalization must be 'NFKC', 'NFC' or None"):
        Tokenizer(unicode_normalization="NFD")
    with pytest.raises(TypeError, match=r"unicode_normalization must be .*got bool"):
        Tokenizer(unicode_normalization=True)  # type: ignore[arg-type]


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


# ---------------------------------------------------------------- Unicode normalization

FULLWIDTH_CPP = "\uff23\uff0b\uff0b"  # full-width "C++" (as typed with a CJK input method)
FULLWIDTH_C = "\uff43"  # full-width "c": what is left of it without NFKC
TEXT = f"Résumé of Müller: a naïve ﬁnancial {FULLWIDTH_CPP} guide, Straße İstanbul"
NFD = unicodedata.normalize("NFD", TEXT)


def test_nfd_and_nfc_give_the_same_tokens() -> None:
    assert NFD != TEXT
    for tok in [Tokenizer(), Tokenizer(stopwords=None, stemmer=None)]:
        assert tok(NFD) == tok(TEXT)
        assert tok.tokenize_many([NFD, TEXT]) == [tok(TEXT), tok(TEXT)]
    plain = Tokenizer(stopwords=None, stemmer=None)
    for word, expected in [("résumé", "résumé"), ("Müller", "müller"), ("naïve", "naïve")]:
        assert plain(unicodedata.normalize("NFD", word)) == [expected]
        assert plain(unicodedata.normalize("NFC", word)) == [expected]
    assert plain("re\u0301sume\u0301") == ["résumé"]
    assert Tokenizer(unicode_normalization="NFC", stopwords=None)(NFD) == Tokenizer(
        unicode_normalization="NFC", stopwords=None
    )(TEXT)


def test_nfd_query_finds_nfc_document() -> None:
    index = BM25Index(Tokenizer())
    index.add(["Müller wrote about résumé writing", "a guide to gardening"])
    query = unicodedata.normalize("NFD", "Müller résumé")
    assert index.search(query, k=2)[0].tolist() == [0]
    nfd_index = BM25Index(Tokenizer())
    nfd_index.add([unicodedata.normalize("NFD", "Müller wrote"), "gardening"])
    assert nfd_index.search("MÜLLER", k=2)[0].tolist() == [0]


def test_compatibility_forms_and_case_folding() -> None:
    plain = Tokenizer(stopwords=None, stemmer=None)
    assert plain("ﬁnancial ﬂow") == ["financial", "flow"]  # PDF ligatures U+FB01, U+FB02
    assert Tokenizer()("ﬁnancial") == Tokenizer()("financial") == ["financi"]
    fullwidth_python3 = "".join(chr(ord(c) + 0xFEE0) for c in "Python3")
    assert plain(f"{FULLWIDTH_CPP} {fullwidth_python3}") == ["c++", "python3"]  # full-width
    assert plain("CO₂ 5 µg") == plain("co2 5 μg") == ["co2", "5", "μg"]  # sub/superscripts, micro
    assert plain("Straße STRASSE strasse") == ["strasse"] * 3
    assert Tokenizer()("Straße") == Tokenizer()("strasse")
    assert plain("İstanbul ISTANBUL") == ["istanbul", "istanbul"]
    assert plain("ΣΊΣΥΦΟΣ σίσυφος") == ["σίσυφοσ", "σίσυφοσ"]  # final sigma folds too
    assert plain("ǰ") == ["ǰ"]  # casefold() decomposes it: recomposed, not split
    assert plain("🙂👍 ☕") == ["🙂", "👍", "☕"]
    # NFC composes but does not fold compatibility forms; casefold() still applies
    nfc = Tokenizer(unicode_normalization="NFC", stopwords=None, stemmer=None)
    assert nfc(f"ﬁnancial {FULLWIDTH_CPP} Straße") == ["financial", FULLWIDTH_C, "strasse"]


def test_normalization_without_lowercase_and_stopwords() -> None:
    tok = Tokenizer(lowercase=False, stopwords=None, stemmer=None)
    assert tok(NFD) == [
        "Résumé",
        "of",
        "Müller",
        "a",
        "naïve",
        "financial",
        "C++",
        "guide",
        "Straße",
        "İstanbul",
    ]
    # stopwords are normalized and case-folded like the text, and matched case-insensitively
    custom = Tokenizer(stopwords=["Straße", "ﬁn"], stemmer=None)
    assert custom("STRASSE strasse Straße fin FIN x") == ["x"]
    assert Tokenizer(lowercase=False, stopwords=["straße"], stemmer=None)("STRASSE Cat") == ["Cat"]
    assert Tokenizer(lowercase=False, stemmer=None)("THE Cat") == ["Cat"]


def test_ascii_fast_path_matches_full_normalization() -> None:
    from langchain_fusion.lexical.tokenizer import _casefolder

    fold = _casefolder("NFKC")
    for text in ["Hello WORLD_x C++ 3.14", "", "MiXeD cAsE\twith\ncontrol\x00chars"]:
        assert fold(text) == unicodedata.normalize("NFKC", text).casefold()


def test_default_config_round_trips() -> None:
    cfg = Tokenizer().to_config()
    assert cfg["unicode_normalization"] == "NFKC"
    for tok in [
        Tokenizer(),
        Tokenizer(unicode_normalization="NFC"),
        Tokenizer(unicode_normalization=None),
        Tokenizer(lowercase=False, stopwords=["Straße", "b"], unicode_normalization="NFKC"),
    ]:
        cfg = json.loads(json.dumps(tok.to_config()))
        assert "unicode_normalization" in cfg
        again = Tokenizer.from_config(cfg)
        assert again == tok
        assert hash(again) == hash(tok)
        assert again.unicode_normalization == tok.unicode_normalization
        assert again(NFD) == tok(NFD)
        assert pickle.loads(pickle.dumps(tok)).unicode_normalization == tok.unicode_normalization
    assert Tokenizer(unicode_normalization="nfc").unicode_normalization == "NFC"
    assert Tokenizer() != Tokenizer(unicode_normalization=None)
    assert Tokenizer() != Tokenizer(unicode_normalization="NFC")
    assert "unicode_normalization='NFKC'" in repr(Tokenizer())


def test_old_config_without_the_key_tokenizes_as_before() -> None:
    """An index saved before ``unicode_normalization`` existed must tokenize queries as before."""
    for kwargs, nfd_tokens, nfc_tokens in [
        (
            {},
            ["sume", "mu", "ller", "nai", "ﬁnancial", FULLWIDTH_C, "guid", "straße", "stanbul"],
            ["résumé", "müller", "naïv", "ﬁnancial", FULLWIDTH_C, "guid", "straße", "stanbul"],
        ),
        (
            {"stopwords": None, "stemmer": None},
            "re sume of mu ller a nai ve ﬁnancial C guide straße i stanbul".replace(
                "C", FULLWIDTH_C
            ).split(),
            "résumé of müller a naïve ﬁnancial C guide straße i stanbul".replace(
                "C", FULLWIDTH_C
            ).split(),
        ),
    ]:
        old = Tokenizer(**kwargs).to_config()
        del old["unicode_normalization"], old["compounds"]  # what versions before them wrote
        assert set(old) == {"lowercase", "stopwords", "stemmer", "token_pattern"}
        rebuilt = Tokenizer.from_config(json.loads(json.dumps(old)))
        assert rebuilt.unicode_normalization is None
        assert rebuilt == Tokenizer(**kwargs, unicode_normalization=None)
        assert rebuilt != Tokenizer(**kwargs)
        # exactly the tokens of the code before the option (lower(), no normalization)
        assert rebuilt(NFD) == nfd_tokens
        assert rebuilt(TEXT) == nfc_tokens
        assert rebuilt.tokenize_many([NFD]) == [nfd_tokens]
        # saving the rebuilt tokenizer again keeps it legacy, now explicitly
        assert rebuilt.to_config() == {**old, "unicode_normalization": None, "compounds": False}
    # old custom stopwords were stored lowercased, and are still matched with lower()
    legacy = Tokenizer.from_config({"stopwords": ["straße"], "stemmer": None})
    assert legacy("Straße STRASSE x") == ["strasse", "x"]


def test_compounds_with_a_digit_are_extra_tokens_and_rank_exact_codes_first() -> None:
    from langchain_fusion import BM25Retriever

    tok = Tokenizer(compounds=True)
    assert tok("Error E-217 in v2.3.1; state-of-the-art") == [
        "error", "e", "217", "v2", "3", "1", "state", "art", "e-217", "v2.3.1",
    ]  # fmt: skip
    assert Tokenizer()("E-217") == ["e", "217"]  # off by default
    assert Tokenizer.from_config(tok.to_config()) == tok != Tokenizer()
    assert not Tokenizer.from_config({}).compounds  # configs without the key: off, as before

    texts = ["Error E-217: cell voltage imbalance.", "vitamin e is 217 mg", "E 217 and others"]

    def top(compounds: bool) -> str:
        r = BM25Retriever.from_texts(texts, tokenizer=Tokenizer(compounds=compounds), k=1)
        return r.invoke("E-217")[0].page_content

    assert top(False) != texts[0]  # the parts alone favour the shorter text
    assert top(True) == texts[0]
