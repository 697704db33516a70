"""Answer a question without a language model: pick the source sentences that match it best.

This is what [`build_qa_chain`][langchain_fusion.qa.build_qa_chain] falls back to when no chat
model is configured. It never invents text: the answer is made of sentences copied from the
sources, each followed by its source number ``[n]``.

How sentences are scored:

1. The sources are split into sentences (robust to abbreviations such as "e.g." and "Fig.",
   initials, decimals and section numbers such as "4.2.1", and to PDF text with hard line
   breaks, hyphenated line ends and heading lines).
2. The question and each sentence are tokenized with the package's BM25
   [`Tokenizer`][langchain_fusion.lexical.tokenizer.Tokenizer] (lowercase, stopwords
   removed, Snowball-stemmed), with question-framing words ("explain", "describe", ...) also
   ignored in the question.
3. A sentence's *coverage* is the idf-weighted fraction of the question's terms it contains,
   ``sum(idf(t) for t in question & sentence) / sum(idf(t) for t in question)``, with BM25's
   idf computed over the candidate sentences. A question term that appears in no sentence keeps
   the largest idf and so lowers every sentence's coverage: rare, specific words count most.
   A sentence is read with its heading: the innermost heading above it in the source (a heading
   line in the text, else the last part of ``metadata["section"]``, which ingestion sets for
   Markdown). So the table row "Code: E-217; Meaning: ..." under "7.2 Error codes" covers all of
   "What does error E-217 mean?", as a reader of the manual would take it.
4. With an embedding model (``embeddings=``; the QA chain passes its retriever's), every
   sentence is also embedded, read with its section path (``"12. Release notes > 12.3 Version
   4.1.3: Fixed: ..."``), and its *relevance* fuses, per sentence, the cosine similarity to the
   question and the sentence's BM25 score (k1 1.2, b 0.75, over the candidate sentences), both
   min-max normalized, weighted 0.5 / 0.5: the retriever's default fusion, one level down. So
   a sentence that paraphrases the question ranks high even without its words, and one that
   holds the question's exact identifiers ranks high even when the model blurs them. Without a
   model, the relevance is the coverage. Sentence vectors are cached per model and text.
5. ``score = relevance + 0.05 / rank`` of the sentence's source: among equally good sentences,
   those from higher-ranked sources win. A sentence that several sources hold (overlapping
   chunks) is one candidate, cited from the best-ranked of them.

The answer takes up to ``max_sentences`` sentences, best first, leaving out those scoring less
than half of the best and near-duplicates of one already taken (80 % of their terms shared, such
as a table row and the sentence that repeats it). A sentence's heading is shown before it when it
adds words ("Industrial Robots: AI enhances their precision ... (cobots). [1]").

The question counts as *answerable* when the best coverage reaches ``min_coverage``, default
0.55: the best sentence must hold more than half of the question's idf-weighted terms. Chosen on
the tutorial PDF ``AI_Information.pdf`` and its question set: the three questions the text
answers reach coverage 1.0, the five it does not answer stay at or below 0.52 (they share generic
words such as "AI", "predict", "weapons" with the text, but not the specific one), and none of
600 off-topic queries (SciFact and NFCorpus) reaches 0.5. With ``min_similarity`` (the QA chain
sets 0.7 for the bundled all-MiniLM-L6-v2), a sentence whose cosine similarity to the question
reaches it also makes the question answerable: "When can lumenctl --reset-bms be run, and does
it wipe my settings?" shares few words with "`lumenctl --reset-bms` does not erase settings or
history" (coverage 0.36) but has similarity 0.83, while the PDF's unanswerable questions and 200
off-topic queries stay below 0.7. Neither score sees every paraphrase: "How long is the
guarantee?" (answered under "Warranty", similarity 0.45) is still reported as unanswerable
(measured by ``benchmarks/offline_answers.py``, see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

from langchain_fusion.formatting import source_label
from langchain_fusion.ingest import SECTION_SEPARATOR
from langchain_fusion.lexical.stopwords import ENGLISH_STOPWORDS
from langchain_fusion.lexical.tokenizer import Tokenizer

__all__ = [
    "DEFAULT_MIN_COVERAGE",
    "DEFAULT_MIN_SIMILARITY",
    "ExtractiveAnswer",
    "ExtractedSentence",
    "extractive_answer",
    "source_label",
    "split_sentences",
]

DEFAULT_MIN_COVERAGE = 0.55
"""Default answerability threshold on the best sentence's idf-weighted question coverage."""

DEFAULT_MIN_SIMILARITY = 0.7
"""Answerability threshold on the best question-sentence cosine, for all-MiniLM-L6-v2."""

DENSE_WEIGHT = 0.5
"""Weight of the dense similarity against BM25 when an embedding model ranks the sentences."""

NEAR_DUPLICATE = 0.8
"""Sentences whose term sets overlap this much (Jaccard) count as one statement."""

BM25_K1 = 1.2
BM25_B = 0.75

SOURCE_RANK_BONUS = 0.05
"""Score bonus ``SOURCE_RANK_BONUS / rank`` for a sentence from the source ranked ``rank``."""

# Words that frame a question rather than say what it is about ("What role does X play?", "How
# is X used?", "Why is X considered important?"). Answers rarely repeat them, so counting them
# would make answerable questions look unanswerable.
_QUESTION_FRAME = frozenset(
    {
        "according", "describe", "described", "describes", "explain", "explained", "explains",
        "mention", "mentioned", "mentions", "discuss", "discussed", "discusses", "tell", "list",
        "give", "document", "documents", "text", "source", "sources", "passage", "passages",
        "provided", "context", "please", "role", "roles", "play", "plays", "contribute",
        "contributes", "use", "used", "uses", "using", "help", "helps", "consider", "considered",
        "important", "importance", "purpose", "mean", "means", "meaning", "define", "defined",
        "definition", "example", "examples", "kind", "kinds", "type", "types", "way", "ways",
        "currently", "specific", "particular", "main", "key",
    }
)  # fmt: skip
_MIN_SENTENCE_WORDS = 4
_MAX_HEADING_CHARS = 80
_WORDS = re.compile(r"[^\W\d_]+")
_MAX_SENTENCE_CHARS = 600

# Abbreviations after which a period does not end a sentence (compared lowercase, without the
# final period). Single letters (initials, "p.", "e" of "e.g.") are handled separately.
_ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "cf", "vs", "viz", "al", "approx", "ca", "dr", "mr", "mrs", "ms", "prof",
        "sr", "jr", "st", "fig", "figs", "eq", "eqs", "ref", "refs", "sec", "ch", "chap", "vol",
        "pp", "no", "nos", "art", "dept", "est", "inc", "ltd", "corp", "co", "univ", "min", "max",
        "resp", "incl",
    }
)  # fmt: skip
_CLOSERS = "\"'\u201d\u2019)\\]"  # closing quotes and brackets after a full stop
_OPENERS = "\"'\u201c\u2018(\\["
_BOUNDARY = re.compile(f"[.!?\u2026]+[{_CLOSERS}]*\\s+")
_NEXT_STARTS_SENTENCE = re.compile(f"[{_OPENERS}]*[A-Z0-9]")
_WORD_BEFORE = re.compile(f"([\\w.]+)[.!?\u2026]*[{_CLOSERS}]*\\s*$")
_BULLET = re.compile(
    "^\\s*(?:[\u2022\u25cf\u25aa\u25e6\u2023\u2219\u00b7*\u2013\u2014-]"
    "|\\(?\\d{1,2}[.)]|\\(?[a-z][.)])\\s+"
)
_SOFT_HYPHEN = re.compile(r"(\w)-[ \t]*\n[ \t]*(?=[a-z])")  # "exam-\nple" -> "example"
_HARD_HYPHEN = re.compile(r"(\w)-[ \t]*\n[ \t]*(?=[A-Z0-9])")  # "COVID-\n19" -> "COVID-19"
_TERMINAL = re.compile(f"[.!?:;\u2026][{_CLOSERS}]*\\s*$")


@dataclass(frozen=True)
class ExtractedSentence:
    """One source sentence chosen (or considered) for an extractive answer.

    Attributes:
        text: The sentence, whitespace-normalized.
        source: 1-based number of the source it comes from.
        score: ``coverage + 0.05 / source`` (see the module docstring).
        coverage: idf-weighted fraction of the question's terms the sentence contains, in [0, 1].
        matched_terms: The question terms (stemmed) found in the sentence or its heading.
        heading: The innermost heading the sentence is under, if the source shows one.
        similarity: Cosine similarity of the question and the sentence (read with its heading)
            under the embedding model; None without one.
        bm25: The sentence's BM25 score for the question (over the candidate sentences).

    Example:
        >>> answer = extractive_answer("Where is the Eiffel Tower?",
        ...                            ["The Eiffel Tower is in Paris."])
        >>> s = answer.sentences[0]
        >>> s.source, s.coverage, s.matched_terms
        (1, 1.0, ['eiffel', 'tower'])

    """

    text: str
    source: int
    score: float
    coverage: float
    matched_terms: list[str] = field(default_factory=list)
    heading: str | None = None
    similarity: float | None = None
    bm25: float = 0.0


@dataclass(frozen=True)
class ExtractiveAnswer:
    """The result of [`extractive_answer`][langchain_fusion.extractive.extractive_answer].

    Attributes:
        text: The answer: the chosen sentences, each followed by ``[n]``; or, when the
            question seems unanswerable, a statement saying so that names the closest source.
        sentences: The chosen sentences, best first (the closest one when unanswerable).
        answerable: Whether the best sentence covers at least ``min_coverage`` of the question.
        coverage: The best sentence's coverage (0.0 when there is none).
        closest_source: 1-based number of the source holding the best sentence, if any.
        similarity: The highest question-sentence cosine similarity (None without an
            embedding model).

    Example:
        >>> extractive_answer("Who painted the Mona Lisa?", ["Bread needs flour."]).answerable
        False

    """

    text: str
    sentences: list[ExtractedSentence]
    answerable: bool
    coverage: float = 0.0
    closest_source: int | None = None
    similarity: float | None = None


def extractive_answer(
    question: str,
    docs: Sequence[Document] | Sequence[str],
    *,
    max_sentences: int = 3,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    tokenizer: Tokenizer | None = None,
    embeddings: Embeddings | None = None,
    min_similarity: float | None = None,
) -> ExtractiveAnswer:
    """Answer ``question`` with the best-matching sentences of ``docs``, citing them as ``[n]``.

    Args:
        question: The question.
        docs: The sources, best first (``[1]`` is ``docs[0]``): documents or plain texts.
        max_sentences: At most this many sentences in the answer (>= 1). Sentences scoring less
            than half of the best one are left out.
        min_coverage: Answerability threshold on the best sentence's coverage, in ``[0, 1]``.
        tokenizer: Tokenizer for question and sentences; default: the package's BM25 tokenizer
            (English stopwords plus question-framing words, Snowball stemming).
        embeddings: An embedding model: sentences are then ranked by dense similarity and BM25
            together (see the module docstring). None: by coverage alone.
        min_similarity: With ``embeddings``, the question also counts as answerable when a
            sentence's cosine similarity reaches this (``DEFAULT_MIN_SIMILARITY`` = 0.7 suits
            all-MiniLM-L6-v2; other models need their own value). None: coverage decides alone.

    Returns:
        An [`ExtractiveAnswer`][langchain_fusion.extractive.ExtractiveAnswer].

    Raises:
        TypeError: If ``question`` is not a string, a doc is neither a Document nor a string, or
            ``embeddings`` is not an Embeddings model.
        ValueError: If ``max_sentences`` < 1, ``min_coverage`` or ``min_similarity`` is outside
            ``[0, 1]``, or the model returns vectors of the wrong shape.

    Example:
        >>> docs = [
        ...     "Paris is the capital of France. It has 2.1 million inhabitants.",
        ...     "The Louvre, in Paris, is the world's most-visited museum.",
        ... ]
        >>> print(extractive_answer("What is the capital of France?", docs).text)
        Paris is the capital of France. [1]
        >>> print(extractive_answer("How tall is Mount Everest?", docs).text)
        The sources do not seem to answer this question. The closest source is [1].

    """
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int):
        raise TypeError(f"max_sentences must be an int, got {max_sentences!r}")
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage!r}")
    if min_similarity is not None and not 0.0 <= min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be None or in [0, 1], got {min_similarity!r}")
    if embeddings is not None and not isinstance(embeddings, Embeddings):
        raise TypeError(
            f"embeddings must be a LangChain Embeddings model or None, got "
            f"{type(embeddings).__name__}"
        )
    docs_list = _as_documents(docs)
    tok = tokenizer if tokenizer is not None else _default_tokenizer()

    candidates, parents = _candidates(docs_list)
    if not candidates:
        text = (
            "No sources were found for this question."
            if not docs_list
            else "The sources do not seem to answer this question: they contain no usable text."
        )
        return ExtractiveAnswer(text=text, sentences=[], answerable=False)

    query_terms = list(dict.fromkeys(_question_terms(question, tok)))
    headings = list(dict.fromkeys(h for _, _, h in candidates if h))
    heading_tokens = dict(zip(headings, tok.tokenize_many(headings), strict=True))
    texts = [sentence for _, sentence, _ in candidates]
    tokens = [
        terms + (heading_tokens[heading] if heading else [])
        for terms, (_, _, heading) in zip(tok.tokenize_many(texts), candidates, strict=True)
    ]
    sentence_terms = [set(t) for t in tokens]
    n = len(candidates)
    df = Counter(t for terms in sentence_terms for t in terms if t in query_terms)
    idf = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query_terms}
    total = sum(idf.values())
    bm25 = _bm25(query_terms, tokens, idf)
    similarity = (
        None if embeddings is None else _similarities(embeddings, question, candidates, parents)
    )
    relevance = _relevance(sentence_terms, query_terms, idf, total, bm25, similarity)

    scored: list[ExtractedSentence] = []
    for i, ((source, sentence, heading), terms) in enumerate(
        zip(candidates, sentence_terms, strict=True)
    ):
        matched = [t for t in query_terms if t in terms]
        coverage = sum(idf[t] for t in matched) / total if total > 0 else 0.0
        scored.append(
            ExtractedSentence(
                text=_clip(sentence),
                source=source,
                score=relevance[i] + SOURCE_RANK_BONUS / source,
                coverage=coverage,
                matched_terms=matched,
                heading=heading,
                similarity=None if similarity is None else float(similarity[i]),
                bm25=float(bm25[i]),
            )
        )
    best_coverage = max(s.coverage for s in scored)
    best_similarity = None if similarity is None else float(similarity.max())
    # Stable sort: ties keep source order, then sentence order.
    scored.sort(key=lambda s: -s.score)
    best = scored[0]

    answerable = best_coverage >= min_coverage and best_coverage > 0.0
    if not answerable and min_similarity is not None and best_similarity is not None:
        answerable = best_similarity >= min_similarity
    if not answerable:
        closest = scored[0] if similarity is not None else max(scored, key=lambda s: s.coverage)
        return _unanswerable(closest, docs_list, best_similarity)

    chosen: list[ExtractedSentence] = []
    chosen_terms: list[set[str]] = []
    floor = 0.5 * (best.score - SOURCE_RANK_BONUS / best.source)
    for s in scored:
        if len(chosen) == max_sentences:
            break
        if s.score - SOURCE_RANK_BONUS / s.source < floor:
            break
        terms = set(tok(s.text))
        if any(_near_duplicate(terms, other) for other in chosen_terms):
            continue  # the same statement again (a table row and its prose, say)
        chosen.append(s)
        chosen_terms.append(terms)
    return ExtractiveAnswer(
        text=_answer_text(chosen),
        sentences=chosen,
        answerable=True,
        coverage=best_coverage,
        closest_source=best.source,
        similarity=best_similarity,
    )


def _bm25(
    query_terms: list[str], tokens: list[list[str]], idf: Mapping[str, float]
) -> NDArray[np.float64]:
    """BM25 score of every candidate sentence (read with its heading) for the question terms."""
    lengths = np.array([len(t) for t in tokens], dtype=np.float64)
    avg = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
    norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths / avg)
    scores = np.zeros(len(tokens))
    wanted = set(query_terms)
    for i, terms in enumerate(tokens):
        counts = Counter(t for t in terms if t in wanted)
        scores[i] = sum(idf[t] * tf * (BM25_K1 + 1.0) / (tf + norm[i]) for t, tf in counts.items())
    return scores


# Sentence vectors per model: {id(model): (model, {text: unit vector})}. The entry holds the model
# itself, so its id cannot be reused by another model while the vectors are kept.
_SIMILARITY_CACHE: dict[int, tuple[Embeddings, dict[str, NDArray[np.float64]]]] = {}
_SIMILARITY_CACHE_LIMIT = 20_000  # vectors in all, over every model


def _similarities(
    embeddings: Embeddings,
    question: str,
    candidates: Sequence[tuple[int, str, str | None]],
    parents: Sequence[str],
) -> NDArray[np.float64]:
    """Cosine similarity of the question and each sentence, read with its section path."""
    texts = []
    for (_, sentence, heading), parent in zip(candidates, parents, strict=True):
        path = SECTION_SEPARATOR.join(p for p in (parent, heading) if p)
        texts.append(f"{path}: {sentence}" if path else sentence)
    entry = _SIMILARITY_CACHE.get(id(embeddings))
    if entry is None or entry[0] is not embeddings:
        entry = _SIMILARITY_CACHE[id(embeddings)] = (embeddings, {})
    cache = entry[1]
    vectors = {t: cache[t] for t in texts if t in cache}
    missing = list(dict.fromkeys(t for t in texts if t not in vectors))
    if missing:
        vectors.update(
            zip(missing, _unit_rows(embeddings.embed_documents(missing), len(missing)), strict=True)
        )
        held = sum(len(c) for _, c in _SIMILARITY_CACHE.values())
        if held + len(missing) > _SIMILARITY_CACHE_LIMIT:
            _SIMILARITY_CACHE.clear()
            cache = _SIMILARITY_CACHE.setdefault(id(embeddings), (embeddings, {}))[1]
        cache.update((t, vectors[t]) for t in missing)
    matrix = np.stack([vectors[t] for t in texts])
    query = _unit_rows([embeddings.embed_query(question)], 1)[0]
    if query.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"the embedding model returned a question vector of dimension {query.shape[0]} "
            f"and sentence vectors of dimension {matrix.shape[1]}"
        )
    return np.asarray(matrix @ query, dtype=np.float64)


def _unit_rows(vectors: Any, expected: int) -> NDArray[np.float64]:
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != expected or not np.isfinite(arr).all():
        raise ValueError(
            f"the embedding model must return {expected} finite vectors, got an array of shape "
            f"{arr.shape}"
        )
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.asarray(arr / np.where(norms > 0, norms, 1.0), dtype=np.float64)


def _relevance(
    sentence_terms: list[set[str]],
    query_terms: list[str],
    idf: Mapping[str, float],
    total: float,
    bm25: NDArray[np.float64],
    similarity: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    """Each sentence's relevance: coverage alone, or dense and BM25 fused (both min-max)."""
    if similarity is None:
        return np.array(
            [
                sum(idf[t] for t in query_terms if t in terms) / total if total > 0 else 0.0
                for terms in sentence_terms
            ]
        )
    return DENSE_WEIGHT * _minmax(similarity) + (1.0 - DENSE_WEIGHT) * _minmax(bm25)


def _near_duplicate(a: set[str], b: set[str]) -> bool:
    """Whether two sentences' term sets overlap by 80 % or more (Jaccard)."""
    union = a | b
    return bool(union) and len(a & b) >= NEAR_DUPLICATE * len(union)


def _minmax(values: NDArray[np.float64]) -> NDArray[np.float64]:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-12:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)


def _answer_text(chosen: Sequence[ExtractedSentence]) -> str:
    """Chosen sentences with their ``[n]``; a heading is shown once, before its first sentence."""
    parts = []
    shown: set[str] = set()
    for s in chosen:
        text = s.text
        heading = s.heading
        if heading and heading not in shown and _shows_heading(heading, text):
            shown.add(heading)
            text = f"{heading}: {text}"
        parts.append(f"{text} [{s.source}]")
    return " ".join(parts)


def split_sentences(text: str) -> list[str]:
    r"""Split text (including PDF-extracted text) into sentences.

    Lines are joined unless a line is blank, starts with a bullet or list number, or looks like a
    heading (short, no final punctuation, followed by a capitalised line). A hyphen at the end of
    a line followed by a lowercase letter is taken as a word split across lines. A period ends a
    sentence only when followed by whitespace and a capital letter, digit, quote or bracket, and
    not after an abbreviation ("e.g.", "Fig.", "Dr.", "et al.") or an initial ("J."); so decimals
    and section numbers such as "4.2.1" never split.

    Args:
        text: The text.

    Returns:
        The sentences, whitespace-normalized, in order.

    Example:
        >>> split_sentences("See Fig. 2 and section 4.2.1 (e.g. Smith et al. 2020). Next one.")
        ['See Fig. 2 and section 4.2.1 (e.g. Smith et al. 2020).', 'Next one.']
        >>> split_sentences("Deep Learning\nDeep learning uses many\nlayers. It is power-\nful.")
        ['Deep Learning', 'Deep learning uses many layers.', 'It is powerful.']

    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [sentence for sentence, _ in _sentences(text)]


def _sentences(text: str) -> list[tuple[str, bool]]:
    """Sentences with a flag telling whether each is a heading line."""
    out: list[tuple[str, bool]] = []
    for block, heading in _blocks(text):
        if heading:
            out.append((" ".join(block.split()), True))
        else:
            out.extend((sentence, False) for sentence in _split_block(block))
    return out


# ---------------------------------------------------------------------------- helpers

_TOKENIZER: Tokenizer | None = None


def _default_tokenizer() -> Tokenizer:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer()
    return _TOKENIZER


def _unanswerable(
    best: ExtractedSentence, docs: list[Document], similarity: float | None
) -> ExtractiveAnswer:
    label = source_label(docs[best.source - 1])
    where = f"[{best.source}] ({label})" if label else f"[{best.source}]"
    text = f"The sources do not seem to answer this question. The closest source is {where}."
    if best.coverage > 0.0:
        text += f" Closest passage: {best.text} [{best.source}]"
    return ExtractiveAnswer(
        text=text,
        sentences=[best] if best.coverage > 0.0 else [],
        answerable=False,
        coverage=best.coverage,
        closest_source=best.source,
        similarity=similarity,
    )


def _shows_heading(heading: str, sentence: str) -> bool:
    """Show a heading before its sentence when it is short and adds words the sentence lacks."""
    if len(heading) > _MAX_HEADING_CHARS:
        return False
    words = set(_WORDS.findall(sentence.lower()))
    return any(w not in words for w in _WORDS.findall(heading.lower()) if not w.isdigit())


def _question_terms(question: str, tok: Tokenizer) -> list[str]:
    words = " ".join(
        w for w in question.split() if w.strip("?!.,:;'\"").lower() not in _QUESTION_FRAME
    )
    terms = tok(words)
    if not terms:  # a question made only of stopwords ("What is it?"): use them all
        terms = tok(question)
    return terms


def _as_documents(docs: Sequence[Document] | Sequence[str]) -> list[Document]:
    if isinstance(docs, (str, Document)):
        raise TypeError(
            f"docs must be a sequence of Documents or strings, got a single {type(docs).__name__}"
        )
    out: list[Document] = []
    for i, d in enumerate(docs):
        if isinstance(d, Document):
            out.append(d)
        elif isinstance(d, str):
            out.append(Document(page_content=d))
        else:
            raise TypeError(f"docs[{i}] must be a Document or a str, got {type(d).__name__}")
    return out


def _clip(sentence: str) -> str:
    if len(sentence) <= _MAX_SENTENCE_CHARS:
        return sentence
    cut = sentence.rfind(" ", 0, _MAX_SENTENCE_CHARS)
    return sentence[: cut if cut > 0 else _MAX_SENTENCE_CHARS] + " …"


def _is_heading(line: str, next_line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 8
        and words[-1] not in ENGLISH_STOPWORDS  # "... developed by" continues on the next line
        and not _TERMINAL.search(line)
        and not line.rstrip().endswith(",")
        and _NEXT_STARTS_SENTENCE.match(next_line.lstrip()) is not None
    )


_TABLE_ROW = re.compile(r"^\|.*\|$")
_TABLE_RULE = re.compile(r"^:?-{3,}:?$")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?$")  # "## 2. Setup ##" -> "2. Setup"


def _candidates(
    docs: list[Document],
) -> tuple[list[tuple[int, str, str | None]], list[str]]:
    """Return the candidate sentences ``(source, sentence, heading)`` and their parent sections.

    A sentence that several sources hold (overlapping chunks) is one candidate, cited from the
    best-ranked of them; if that one shows no heading above it and another does, it takes that
    heading.
    """
    found: dict[str, int] = {}
    candidates: list[tuple[int, str, str | None]] = []
    parents: list[str] = []
    for n, doc in enumerate(docs, 1):
        parent = _parent_sections(doc)
        for sentence, heading in _sentences_under_headings(doc):
            if len(sentence.split()) < _MIN_SENTENCE_WORDS:
                continue
            key = " ".join(sentence.lower().split())
            if key in found:
                i = found[key]
                if candidates[i][2] is None and heading is not None:
                    candidates[i] = (candidates[i][0], sentence, heading)
                    parents[i] = parents[i] or parent
                continue
            found[key] = len(candidates)
            candidates.append((n, sentence, heading))
            parents.append(parent)
    return candidates, parents


def _parent_sections(doc: Document) -> str:
    """Return the section path above a chunk's innermost section, without the title.

    ``"Manual > 12. Release notes > 12.3 Version 4.1.3"`` gives ``"12. Release notes"``.
    """
    section = (doc.metadata or {}).get("section")
    if not isinstance(section, str):
        return ""
    parts = [p.strip() for p in section.split(SECTION_SEPARATOR)]
    return SECTION_SEPARATOR.join(p for p in parts[1:-1] if p)


def _sentences_under_headings(doc: Document) -> list[tuple[str, str | None]]:
    """Return the body sentences of a source, each with the innermost heading above it."""
    section = (doc.metadata or {}).get("section")
    heading: str | None = None
    if isinstance(section, str):  # ingestion's heading path "Manual > 7. Troubleshooting > 7.2"
        heading = section.rsplit(SECTION_SEPARATOR, 1)[-1].strip() or None
    out: list[tuple[str, str | None]] = []
    for sentence, is_heading in _sentences(doc.page_content):
        if is_heading:
            heading = sentence
        else:
            out.append((sentence, heading))
    return out


def _blocks(text: str) -> list[tuple[str, bool]]:
    """Group lines into blocks that no sentence crosses; flag the heading blocks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HARD_HYPHEN.sub(r"\1-", _SOFT_HYPHEN.sub(r"\1", text))
    lines = text.split("\n")
    blocks: list[tuple[str, bool]] = []
    current: list[str] = []
    header: list[str] | None = None

    def flush(heading: bool = False) -> None:
        if current:
            blocks.append((" ".join(current), heading))
            current.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            flush()
            continue
        if _TABLE_ROW.match(line):
            # A Markdown table row is one sentence, its cells labelled by the header row.
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(_TABLE_RULE.match(c) for c in cells):
                continue
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if _TABLE_ROW.match(following) and all(
                _TABLE_RULE.match(c) for c in following.strip("|").split("|")
            ):
                header = cells
                continue
            if header is not None and len(header) == len(cells):
                row = "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells) if c)
            else:
                row = " | ".join(c for c in cells if c)
            current.append(row.rstrip(".") + ".")
            flush()
            continue
        header = None
        atx = _MARKDOWN_HEADING.match(line)
        if atx:
            flush()
            current.append(atx.group(1))
            flush(heading=True)
            continue
        if _BULLET.match(line):
            flush()
            line = _BULLET.sub("", line, count=1)
        next_line = next((x for x in lines[i + 1 : i + 2] if x.strip()), "")
        if next_line and _is_heading(line, next_line):
            # A short unpunctuated line before a capitalised one: a heading if the line before
            # it ended a sentence, else the tail of a wrapped sentence ("... developed by \n
            # Google Research \n The next ...").
            if not current or _TERMINAL.search(current[-1]):
                flush()
                current.append(line)
                flush(heading=True)
                continue
            current.append(line)
            flush()
            continue
        current.append(line)
    flush()
    return blocks


def _split_block(block: str) -> list[str]:
    block = " ".join(block.split())
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(block):
        rest = block[m.end() :]
        if not _NEXT_STARTS_SENTENCE.match(rest):
            continue
        before = _WORD_BEFORE.search(block[: m.start() + 1])
        word = before.group(1).lower().rstrip(".") if before else ""
        last = word.rsplit(".", 1)[-1] if "." in word and word not in _ABBREVIATIONS else word
        if word in _ABBREVIATIONS or last in _ABBREVIATIONS:
            continue
        if len(last) == 1 and last.isalpha():  # an initial ("J. Smith") or "p. 3"
            continue
        piece = block[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = block[start:].strip()
    if tail:
        out.append(tail)
    return out
