from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document

from langchain_fusion.verify import (
    UNVERIFIED_QUOTE_MARKER,
    VerificationReport,
    quote_support,
    verify_answer,
)

SOURCES = [
    "Explainable AI (XAI) aims to make AI systems more transparent and understandable.",
    "Reinforcement learning trains an agent to make decisions in an environment to maximize a "
    "reward. The agent learns through trial and error.",
    "CNNs are widely used in object detection, facial recognition, and medical image analysis.",
]


# ---------------------------------------------------------------------------- citations


@pytest.mark.parametrize(
    ("answer", "expected", "removed"),
    [
        ("XAI aims at transparency [1].", "XAI aims at transparency [1].", []),
        ("XAI aims at transparency [9].", "XAI aims at transparency.", [9]),
        ("Agents learn by trial and error [1, 9].", "Agents learn by trial and error [1].", [9]),
        ("Agents learn by trial and error [2][9].", "Agents learn by trial and error [2].", [9]),
        ("Both [1][2][3].", "Both [1][2][3].", []),
        ("All of them [1-3].", "All of them [1-3].", []),
        ("All of them [2-9].", "All of them [2-3].", [9]),
        ("All of them [1\u20133].", "All of them [1\u20133].", []),  # en dash
        ("Nothing [0].", "Nothing.", [0]),
        ("Nothing [4-7].", "Nothing.", [7]),
        ("See [Source 2] and [source 5].", "See [Source 2] and.", [5]),
        ("Mixed [1; 4, 3].", "Mixed [1, 3].", [4]),
        ("[7] Leading citation.", " Leading citation.", [7]),
    ],
)
def test_citations(answer: str, expected: str, removed: list[int]) -> None:
    report = verify_answer(answer, SOURCES)
    assert report.text == expected
    assert report.removed_citations == removed
    assert report.ok is (not removed)


def test_citations_in_code_and_links_are_left_alone() -> None:
    answer = "Use `scores[5]` and see [the docs](https://x.org) or [12](https://y.org) [1]."
    report = verify_answer(answer, SOURCES)
    assert report.text == answer
    assert report.removed_citations == []
    fenced = "```python\nx = items[7]\n```\nDone [8]."
    assert verify_answer(fenced, SOURCES).text == "```python\nx = items[7]\n```\nDone."


def test_cited_lists_valid_numbers_in_order_of_first_appearance() -> None:
    report = verify_answer("B [3]. A [1, 3]. C [2-3]. D [9].", SOURCES)
    assert report.cited == [3, 1, 2]
    assert report.removed_citations == [9]


def test_no_sources_removes_every_citation() -> None:
    report = verify_answer("Claim [1].", [])
    assert report.text == "Claim."
    assert report.removed_citations == [1]


# ---------------------------------------------------------------------------- quotes


def test_exact_quote_is_kept_regardless_of_case_and_punctuation() -> None:
    answer = 'The source says "explainable ai xai: aims to make AI systems more transparent" [1].'
    report = verify_answer(answer, SOURCES)
    assert report.text == answer
    assert report.unverified_quotes == []
    assert report.ok
    # Leaving out the "(XAI)" is one missing word in nine: 8/9 < 0.9.
    partial = "explainable AI aims to make AI systems more transparent"
    assert quote_support(partial, SOURCES[0]) == pytest.approx(8 / 9)


def test_fabricated_quote_is_replaced_with_marker() -> None:
    answer = 'The paper claims "XAI guarantees that every model decision is fair" [1].'
    report = verify_answer(answer, SOURCES)
    assert report.text == f"The paper claims {UNVERIFIED_QUOTE_MARKER} [1]."
    assert report.unverified_quotes == ["XAI guarantees that every model decision is fair"]
    assert not report.ok


def test_curly_quotes_and_guillemets_are_checked() -> None:
    fake = "“agents never make mistakes in any environment”"
    real = "«the agent learns through trial and error»"
    report = verify_answer(f"{fake} but {real}", SOURCES)
    assert report.text == f"{UNVERIFIED_QUOTE_MARKER} but {real}"


def test_threshold_one_word_changed_in_ten() -> None:
    # 10 words, one substituted: support exactly 0.9.
    quote = "Reinforcement learning trains an agent to make choices in an environment"
    source = SOURCES[1]
    assert quote_support(quote, source) == pytest.approx(10 / 11)  # 11 words, one changed
    ten = "trains an agent to make choices in an environment to"
    assert quote_support(ten, source) == pytest.approx(0.9)
    assert verify_answer(f'"{ten}"', SOURCES, quote_threshold=0.9).ok
    assert not verify_answer(f'"{ten}"', SOURCES, quote_threshold=0.95).ok


def test_two_words_changed_in_ten_is_rejected() -> None:
    quote = "trains an agent to take choices in an environment to"
    assert quote_support(quote, SOURCES[1]) == pytest.approx(0.8)
    assert verify_answer(f'"{quote}"', SOURCES).unverified_quotes == [quote]


def test_quote_support_edit_operations() -> None:
    src = "the quick brown fox jumps over the lazy dog"
    assert quote_support("quick brown fox jumps", src) == 1.0
    assert quote_support("quick red fox jumps", src) == 0.75  # substitution
    assert quote_support("quick brown big fox jumps", src) == 0.8  # inserted word
    assert quote_support("quick fox jumps over", src) == 0.75  # a source word left out
    assert quote_support("", src) == 1.0
    assert quote_support("completely unrelated words here", src) == 0.0


def test_words_scattered_across_a_source_do_not_count_as_a_quote() -> None:
    # Every word occurs in the source, in order, but far apart: not a quotation.
    src = "the agent acts. later the environment reacts. finally a reward follows the action"
    assert quote_support("the agent the environment a reward", src) < 0.9


def test_ellipsis_parts_are_matched_separately() -> None:
    quote = "Reinforcement learning trains an agent ... learns through trial and error"
    assert quote_support(quote, SOURCES[1]) == 1.0
    assert verify_answer(f'"{quote}"', SOURCES).ok


def test_quote_must_come_from_one_source() -> None:
    # First half from source 1, second half from source 3.
    quote = "aims to make AI systems more transparent and facial recognition and medical image"
    assert not verify_answer(f'"{quote}"', SOURCES).ok


def test_inch_marks_are_not_quotes() -> None:
    answer = 'Both the 12" model and the 15" model ship with it [3].'
    assert verify_answer(answer, SOURCES).text == answer


def test_short_quotes_are_not_checked() -> None:
    answer = 'So-called "black box" models [1].'
    assert verify_answer(answer, SOURCES).text == answer


def test_citations_inside_a_quote_are_ignored_for_matching() -> None:
    answer = '"CNNs are widely used in object detection [3]" says the source.'
    assert verify_answer(answer, SOURCES).ok


def test_pdf_hyphenation_in_source_is_joined() -> None:
    source = "The agent learns through trial and er-\nror, receiving feedback."
    assert quote_support("learns through trial and error, receiving feedback", source) == 1.0


def test_blockquote_verified_and_fabricated() -> None:
    good = (
        "As stated:\n> CNNs are widely used in object detection,\n> facial recognition [3]\n\nOk."
    )
    report = verify_answer(good, SOURCES)
    assert report.text == good
    bad = "As stated:\n> CNNs are rarely used for anything\n> outside of games.\n\nOk."
    report = verify_answer(bad, SOURCES)
    assert report.text == f"As stated:\n> {UNVERIFIED_QUOTE_MARKER}\n\nOk."
    assert report.unverified_quotes == ["CNNs are rarely used for anything\noutside of games."]


def test_quotes_inside_code_are_not_checked() -> None:
    answer = 'Run `print("this string is not a quote at all")` [1].'
    assert verify_answer(answer, SOURCES).text == answer


def test_documents_and_strings_are_equivalent() -> None:
    answer = '"the agent learns through trial and error" [2] and "made up words go here" [5]'
    as_docs = verify_answer(answer, [Document(s) for s in SOURCES])
    as_text = verify_answer(answer, SOURCES)
    assert as_docs == as_text
    assert as_docs.removed_citations == [5]
    assert as_docs.unverified_quotes == ["made up words go here"]


def test_report_type() -> None:
    report = verify_answer("x", SOURCES)
    assert isinstance(report, VerificationReport)
    assert report.ok and report.text == "x"


# ---------------------------------------------------------------------------- validation


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="answer must be a str"):
        verify_answer(None, SOURCES)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sources\[1\] must be a Document or a str"):
        verify_answer("x", ["ok", 3])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        verify_answer("x", "a single string")
    with pytest.raises(ValueError, match=r"quote_threshold must be in \(0, 1\], got 1.5"):
        verify_answer("x", SOURCES, quote_threshold=1.5)
    with pytest.raises(ValueError, match="min_quote_words must be >= 1, got 0"):
        verify_answer("x", SOURCES, min_quote_words=0)


# ---------------------------------------------------------------------------- properties


WORDS = st.sampled_from(
    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(WORDS, min_size=8, max_size=60), data=st.data())
def test_any_contiguous_passage_is_supported(words: list[str], data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(words) - 4))
    end = data.draw(st.integers(start + 4, len(words)))
    quote = " ".join(words[start:end])
    assert quote_support(quote.upper(), " ".join(words)) == 1.0


@settings(max_examples=60, deadline=None)
@given(quote=st.lists(WORDS, min_size=1, max_size=12), source=st.lists(WORDS, max_size=40))
def test_support_is_a_fraction(quote: list[str], source: list[str]) -> None:
    value = quote_support(" ".join(quote), " ".join(source))
    assert 0.0 <= value <= 1.0


def test_long_sources_are_fast() -> None:
    source = " ".join(f"word{i % 997} filler{i % 13}" for i in range(5000))  # 10,000 words
    quotes = [
        f'"{" ".join(f"word{i} filler{i % 13}" for i in range(s, s + 15))} nope"'
        for s in range(0, 200, 20)
    ]
    start = time.perf_counter()
    report = verify_answer(" ".join(quotes), [source] * 5)
    elapsed = time.perf_counter() - start
    assert report.ok  # 30 words, one extra: support 30/31
    assert elapsed < 2.0


def test_banned_phrases_are_reported_whole_words_case_and_spacing_ignored() -> None:
    sources = ["Paris is the capital of France."]
    report = verify_answer(
        "As an  AI\nlanguage model, I GUARANTEE it is Paris [1].",
        sources,
        banned_phrases=["as an AI language model", "guarantee", "Paris is", "guaranteed"],
    )
    assert report.banned_phrases == ["as an AI language model", "guarantee"]
    assert not report.ok
    assert report.text == "As an  AI\nlanguage model, I GUARANTEE it is Paris [1]."  # unchanged
    assert verify_answer("Guaranteed. [1]", sources, banned_phrases=["guarantee"]).ok
    with pytest.raises(ValueError, match=r"banned_phrases\[0\] is blank"):
        verify_answer("x", sources, banned_phrases=["  "])
    with pytest.raises(TypeError, match="banned_phrases must be a list of strings"):
        verify_answer("x", sources, banned_phrases="guarantee")
    with pytest.raises(TypeError, match=r"banned_phrases\[1\] must be a str"):
        verify_answer("x", sources, banned_phrases=["a", 3])  # type: ignore[list-item]
