"""English stopwords: the function words BM25 should not spend its budget on.

Written for this package: closed-class English words (articles, pronouns, auxiliary verbs,
prepositions, conjunctions and a few function adverbs), grouped by part of speech so that the
choices are easy to review. Content words that often carry meaning in queries ("first", "new",
"use", "against", "without", "not", ...) are deliberately *not* included: negations and
polarity matter for claim-style queries, and BM25's idf already damps frequent words.

All entries are lowercase; the tokenizer compares lowercased tokens before stemming. So the
case of a token does not save it: "vitamin A" searches "vitamin", and "US", "IT", "May" (the
month) and "Will" (the name) are dropped like "us", "it", "may" and "will". Where such tokens
carry meaning, pass ``Tokenizer(stopwords=None)`` or your own list.
"""

from __future__ import annotations

__all__ = ["ENGLISH_STOPWORDS", "get_stopwords"]

_ARTICLES_AND_DETERMINERS = """
a an the this that these those each every either neither any some such
"""

_PRONOUNS = """
i me my myself we us our ours ourselves you your yours yourself yourselves
he him his himself she her hers herself it its itself they them their theirs themselves
what which who whom whose
"""

_AUXILIARIES = """
am is are was were be been being have has had having do does did doing
will would shall should can could may might must
"""

_PREPOSITIONS = """
about above after along among around at before below between by down during for from in into
of off on onto out over through to toward towards under until up upon via with within
"""

_CONJUNCTIONS = """
and but or nor so yet if then than because although though while whereas whether unless as
"""

_FUNCTION_ADVERBS = """
here there when where why how again once only very too just also
"""

# Fragments left when the default pattern splits possessives and contractions ("patient's",
# "don't", "we'll"). "t" stays: it is also the T of "T cells".
_CONTRACTION_FRAGMENTS = """
s ll re ve don doesn didn isn aren wasn weren hasn haven hadn won wouldn shouldn couldn
"""

ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    (
        _ARTICLES_AND_DETERMINERS
        + _PRONOUNS
        + _AUXILIARIES
        + _PREPOSITIONS
        + _CONJUNCTIONS
        + _FUNCTION_ADVERBS
        + _CONTRACTION_FRAGMENTS
    ).split()
)
"""The built-in English stopword list (``stopwords="en"``)."""

_NAMED_LISTS: dict[str, frozenset[str]] = {"en": ENGLISH_STOPWORDS, "english": ENGLISH_STOPWORDS}


def get_stopwords(name: str) -> frozenset[str]:
    """Return a built-in stopword list by name.

    Args:
        name: ``"en"`` or ``"english"`` (case-insensitive).

    Returns:
        The stopwords, lowercase.

    Raises:
        ValueError: ``name`` is not a built-in list.

    Example:
        >>> words = get_stopwords("en")
        >>> "the" in words, "protein" in words, "not" in words
        (True, False, False)

    """
    try:
        return _NAMED_LISTS[name.lower()]
    except KeyError:
        allowed = ", ".join(repr(n) for n in _NAMED_LISTS)
        raise ValueError(
            f"stopwords must be one of {allowed}, an iterable of words or None, got {name!r}"
        ) from None
