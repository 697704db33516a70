"""Score answers against a gold file: content recall, citations, verifier findings, a hard floor.

This is the answer-quality gate behind ``langchain-fusion eval-answers``. A *gold file* lists
questions with a reference answer (JSON list, ``{"questions": [...]}`` or JSON Lines); a
question the documents cannot answer is marked ``"has_answer": false``. Every answer is scored
on three things, all computed without a model:

* **Content recall.** The share of the reference answer's content words that the answer
  contains. Words are the package's BM25 tokens (lowercase, English stopwords removed,
  Snowball-stemmed, see [`Tokenizer`][langchain_fusion.lexical.tokenizer.Tokenizer]); the
  reference's words that also occur in the question are left out (repeating the question is not
  answering it; if that leaves nothing, all the reference's words count). Citation marks and the
  offline notice are ignored. ``recall = |ref - question| & answer| / |ref - question|``.
  An answer *contains the reference answer's content* when ``recall >= min_recall`` (default
  0.5: at least half of the answer-specific content words).
* **Abstention.** Whether the answer says the sources do not answer the question ("the sources
  do not seem to answer", "I cannot answer this from the provided sources", "not enough
  information", ...; see [`is_abstention`][langchain_fusion.answer_eval.is_abstention]). For a
  question marked unanswerable this is the right answer; for an answerable one it is a
  *false abstention* when the sources given to the answerer contain the reference's content
  (up to three of their sentences reach ``min_recall``).
* **Citations and verifier findings.** Every ``[n]`` must name a source that exists, and the
  cited source must contain supporting text: at least half of the content words of the
  sentence carrying the citation occur in the source(s) it cites (``[1][2]`` cite together).
  The answer then goes through [`verify_answer`][langchain_fusion.verify.verify_answer]
  (unsupported quotations, optional banned phrases).

A question *passes* when it is answerable and the answer contains the reference's content, does
not abstain, cites at least one source and every citation is valid and supported, with no
verifier finding; or when it is unanswerable and the answer abstains (with no banned phrase).
The gate fails when the share of questions that pass is below ``--min``.

Example:
    >>> item = GoldItem(question="What is the capital of France?",
    ...                 reference="Paris is the capital of France.")
    >>> score = score_answer(item, "The capital is Paris. [1]",
    ...                      ["Paris is the capital of France."])
    >>> score.recall, score.passed
    (1.0, True)

"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.verify import verify_answer

__all__ = [
    "DEFAULT_MIN_RECALL",
    "AnswerEvalReport",
    "AnswerScore",
    "GoldItem",
    "content_recall",
    "evaluate_answers",
    "format_report",
    "is_abstention",
    "load_banned_phrases",
    "load_gold",
    "score_answer",
]

DEFAULT_MIN_RECALL = 0.5
"""An answer contains the reference's content when its content recall reaches this."""

_REFERENCE_KEYS = ("reference_answer", "ideal_answer", "answer")
_NOTICE = re.compile(r"^No LLM configured[^\n]*\n*")
_CITATION = re.compile(r"\[\s*(?:sources?\s*)?\d+(?:\s*(?:,|;|-|\u2013|and)\s*\d+)*\s*\]", re.I)
_CITED_NUMBERS = re.compile(r"\d+(?:\s*[-\u2013]\s*\d+)?")
_SUBJECT = (
    r"(?:sources?|documents?|context|text|passages?|manual|information|material|excerpts?"
    r"|provided\s+\w+)"
)
_ABSTENTION = re.compile(
    "|".join(
        [
            _SUBJECT + r"\W+(?:\w+\W+){0,3}?(?:do|does|did)\s*(?:not|n't)\s+(?:seem\s+to\s+)?"
            r"(?:answer|contain|say|mention|cover|provide|include|specify|address|state)",
            r"(?:cannot|can't|can\s+not|unable\s+to|not\s+able\s+to)\s+(?:\w+\s+){0,2}?"
            r"(?:answer|determine|tell|find\s+(?:the\s+)?(?:answer|information))",
            r"(?:don't|do\s+not|doesn't|does\s+not)\s+have\s+(?:enough|sufficient|any)\s+"
            r"information",
            r"(?:not|insufficient)\s+enough\s+information|insufficient\s+information",
            r"no\s+(?:relevant\s+)?(?:sources|information)\s+(?:were|was)\s+found",
            r"not\s+(?:mentioned|stated|specified|covered|addressed|discussed)\s+in\s+the\s+"
            r"(?:provided\s+)?" + _SUBJECT,
        ]
    ),
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


# ---------------------------------------------------------------------------- gold file


@dataclass(frozen=True)
class GoldItem:
    """One question of a gold file.

    Attributes:
        question: The question.
        reference: The reference answer (for an unanswerable question, e.g. "The manual does
            not say").
        has_answer: False when the documents cannot answer the question: the right answer then
            says so.
        id: The item's id (``"id"`` in the file, else its 1-based position).

    Example:
        >>> GoldItem("Capital of France?", "Paris.").has_answer
        True

    """

    question: str
    reference: str
    has_answer: bool = True
    id: str = ""


def load_gold(path: str | Path) -> list[GoldItem]:
    r"""Read a gold file: JSON (a list, or an object with a ``"questions"`` list) or JSON Lines.

    Each item needs ``"question"`` and a reference answer under ``"reference_answer"``,
    ``"ideal_answer"`` or ``"answer"`` (the first present); ``"has_answer"`` (default true) and
    ``"id"`` are optional. Both bundled formats are read as they are: ``AI_Information.qa.json``
    and the sample manual's ``questions.json``.

    Args:
        path: The file.

    Returns:
        The items, in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not valid JSON/JSONL or an item lacks a field; the message
            names the item.

    Example:
        >>> import json, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "gold.jsonl")
        >>> with open(path, "w") as f:
        ...     _ = f.write(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
        >>> load_gold(path)
        [GoldItem(question='Q?', reference='A.', has_answer=True, id='1')]

    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"gold file not found: {p}")
    text = p.read_text(encoding="utf-8")
    raw: Any
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raw = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{p}: not JSON, and line {line_no} is not a JSON object either ({exc.msg}); "
                    "give a JSON list of {question, answer} objects or one object per line"
                ) from None
    if isinstance(raw, Mapping) and "question" in raw:  # JSON Lines with a single line
        raw = [raw]
    if isinstance(raw, Mapping):
        if not isinstance(raw.get("questions"), list):
            raise ValueError(
                f'{p}: a JSON object must hold the items under "questions" (a list), got keys '
                f"{sorted(raw)}"
            )
        raw = raw["questions"]
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{p}: no questions found; give a list of {{question, answer}} objects")
    return [_gold_item(p, i, item) for i, item in enumerate(raw, 1)]


def _gold_item(path: Path, i: int, item: Any) -> GoldItem:
    where = f"{path}: item {i}"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object, got {type(item).__name__}")
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f'{where} has no "question" (a non-empty string)')
    reference = next((item[k] for k in _REFERENCE_KEYS if k in item), None)
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError(
            f'{where} has no reference answer: add "answer" (or "reference_answer", '
            '"ideal_answer"), a non-empty string'
        )
    has_answer = item.get("has_answer", True)
    if not isinstance(has_answer, bool):
        raise ValueError(f'{where}: "has_answer" must be true or false, got {has_answer!r}')
    ident = item.get("id", i)
    return GoldItem(question.strip(), reference.strip(), has_answer, str(ident))


def load_banned_phrases(path: str | Path) -> list[str]:
    r"""Read banned phrases: one per line; blank lines and lines starting with ``#`` are skipped.

    Args:
        path: The file.

    Returns:
        The phrases.

    Raises:
        FileNotFoundError: If the file does not exist.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "banned.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("# never say\nas an AI language model\n\nguaranteed\n")
        >>> load_banned_phrases(path)
        ['as an AI language model', 'guaranteed']

    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"banned-phrases file not found: {p}")
    lines = (line.strip() for line in p.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# ---------------------------------------------------------------------------- scoring

_TOKENIZER: Tokenizer | None = None


def _tokenizer() -> Tokenizer:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer()
    return _TOKENIZER


def _clean(answer: str) -> str:
    return _CITATION.sub(" ", _NOTICE.sub("", answer))


def _terms(text: str) -> set[str]:
    return set(_tokenizer()(text))


def content_recall(answer: str, reference: str, question: str = "") -> float:
    """Share of the reference answer's content words (stemmed) that ``answer`` contains.

    The reference's words that the question also contains are not counted (if that leaves
    none, all are); citations ``[n]`` and the offline notice in ``answer`` are ignored.

    Args:
        answer: The answer to score.
        reference: The reference answer.
        question: The question.

    Returns:
        A number in ``[0, 1]``; 1.0 when the reference has no content words.

    Example:
        >>> content_recall("Paris is the capital. [1]", "The capital is Paris, on the Seine.",
        ...                "What is the capital of France?")
        0.5

    """
    wanted = _terms(reference)
    specific = wanted - _terms(question)
    wanted = specific or wanted
    if not wanted:
        return 1.0
    return len(wanted & _terms(_clean(answer))) / len(wanted)


def is_abstention(answer: str) -> bool:
    """Tell whether ``answer`` says that the sources do not answer the question.

    Recognised: the sources/documents/context/manual "do not (seem to) answer / contain / say /
    mention / cover ..."; "cannot / unable to answer / determine / tell"; "(do not) have enough
    information", "insufficient information"; "no sources were found"; "not mentioned in the
    sources". A sentence quoted from a source such as "The warranty does not cover misuse" is
    not an abstention: the subject must be the sources.

    Args:
        answer: The answer.

    Returns:
        True when the answer abstains.

    Example:
        >>> is_abstention("The sources do not seem to answer this question.")
        True
        >>> is_abstention("I don't have enough information to answer that.")
        True
        >>> is_abstention("The warranty does not cover misuse. [2]")
        False

    """
    return _ABSTENTION.search(_NOTICE.sub("", answer)) is not None


@dataclass(frozen=True)
class AnswerScore:
    """How one answer scored (see the module docstring for every rule).

    Attributes:
        id: The gold item's id.
        question: The question.
        has_answer: Whether the gold file says the documents answer it.
        answer: The answer that was scored.
        recall: Content recall of the reference answer (None for an unanswerable question).
        abstained: Whether the answer says the sources do not answer.
        false_abstention: Answerable, abstained, and the sources held the reference's content.
        citations: Citations in the answer (valid or not), in order of first appearance.
        invalid_citations: Cited numbers with no such source.
        unsupported_citations: Valid cited numbers whose source lacks supporting text.
        unverified_quotes: Quotations the verifier found in no source.
        banned_phrases: Banned phrases found.
        passed: Whether the answer passes.
        reasons: Why it fails (empty when it passes).

    Example:
        >>> s = score_answer(GoldItem("Q?", "No.", has_answer=False), "Not enough information.",
        ...                  [])
        >>> s.abstained, s.passed
        (True, True)

    """

    id: str
    question: str
    has_answer: bool
    answer: str
    recall: float | None
    abstained: bool
    false_abstention: bool = False
    citations: list[int] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    unsupported_citations: list[int] = field(default_factory=list)
    unverified_quotes: list[str] = field(default_factory=list)
    banned_phrases: list[str] = field(default_factory=list)
    passed: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def citations_ok(self) -> bool:
        """No invalid and no unsupported citation."""
        return not self.invalid_citations and not self.unsupported_citations


def _source_texts(sources: Sequence[Document] | Sequence[str]) -> list[str]:
    return [s.page_content if isinstance(s, Document) else str(s) for s in sources]


def _citation_checks(answer: str, texts: list[str]) -> tuple[list[int], list[int], list[int]]:
    """Return (cited, invalid, unsupported) for the citations of ``answer``."""
    cited: dict[int, None] = {}
    invalid: dict[int, None] = {}
    unsupported: dict[int, None] = {}
    source_terms: list[set[str]] = []
    body = _NOTICE.sub("", answer)
    # Citation groups: "[1][2]" (only spaces between) is one group supporting one claim, the
    # last sentence of the text since the previous group.
    groups: list[tuple[str, list[int]]] = []
    previous = 0
    for m in _CITATION.finditer(body):
        numbers: list[int] = []
        for item in _CITED_NUMBERS.findall(m.group(0)):
            a, _, b = item.replace("\u2013", "-").partition("-")
            lo, hi = int(a), int(b or a)
            numbers.extend(range(lo, min(hi, lo + 50) + 1))
        between = body[previous : m.start()].strip()
        previous = m.end()
        if not between and groups:
            groups[-1][1].extend(numbers)
            continue
        groups.append((_SENTENCE_END.split(between)[-1] if between else "", numbers))
    for claim, numbers in groups:
        valid = []
        for n in numbers:
            cited.setdefault(n, None)
            if 1 <= n <= len(texts):
                valid.append(n)
            else:
                invalid.setdefault(n, None)
        if not valid:
            continue
        if not source_terms:
            source_terms = [_terms(t) for t in texts]
        claim_terms = _terms(_clean(claim))
        if not claim_terms:
            continue
        found = set().union(*(source_terms[n - 1] for n in valid))
        if len(claim_terms & found) < 0.5 * len(claim_terms):
            for n in valid:
                unsupported.setdefault(n, None)
    return list(cited), list(invalid), list(unsupported)


def _sources_hold(reference: str, question: str, texts: list[str], min_recall: float) -> bool:
    """Whether up to three sentences of the sources reach ``min_recall`` of the reference."""
    wanted = _terms(reference)
    wanted = (wanted - _terms(question)) or wanted
    if not wanted:
        return True
    sentences = [s for t in texts for s in _SENTENCE_END.split(t) if s.strip()]
    covered: set[str] = set()
    pool = [_terms(s) & wanted for s in sentences]
    for _ in range(3):  # greedy set cover
        best = max(pool, key=lambda terms: len(terms - covered), default=set())
        covered |= best
    return len(covered) >= min_recall * len(wanted)


def score_answer(
    item: GoldItem,
    answer: str,
    sources: Sequence[Document] | Sequence[str],
    *,
    min_recall: float = DEFAULT_MIN_RECALL,
    banned_phrases: Sequence[str] = (),
) -> AnswerScore:
    """Score one answer against its gold item (see the module docstring for the rules).

    Args:
        item: The gold item.
        answer: The answer, citing ``sources`` as ``[n]``.
        sources: The sources the answerer was given, ``[1]`` first.
        min_recall: Content recall an answer needs, in ``[0, 1]``.
        banned_phrases: Phrases no answer may contain.

    Returns:
        An [`AnswerScore`][langchain_fusion.answer_eval.AnswerScore].

    Raises:
        ValueError: If ``min_recall`` is outside ``[0, 1]``.

    Example:
        >>> item = GoldItem("How long is the warranty?", "Ten years for the battery.")
        >>> s = score_answer(item, "The battery is covered for ten years. [3]",
        ...                  ["The battery is covered for ten years."])
        >>> s.invalid_citations, s.reasons
        ([3], ['cites missing source(s) [3]'])

    """
    if not 0.0 <= min_recall <= 1.0:
        raise ValueError(f"min_recall must be in [0, 1], got {min_recall!r}")
    texts = _source_texts(sources)
    abstained = is_abstention(answer)
    report = verify_answer(answer, texts, banned_phrases=banned_phrases)
    cited, invalid, unsupported = _citation_checks(answer, texts)
    if abstained:  # "the closest source is [2]" claims nothing the source must support
        unsupported = []
    reasons: list[str] = []
    recall: float | None = None
    false_abstention = False
    if item.has_answer:
        recall = content_recall(answer, item.reference, item.question)
        if abstained:
            false_abstention = _sources_hold(item.reference, item.question, texts, min_recall)
            reasons.append(
                "false abstention: the sources hold the answer"
                if false_abstention
                else "abstained (the sources lack the reference's content)"
            )
        if recall < min_recall:
            reasons.append(f"recall {recall:.2f} < {min_recall:g}")
        if not cited and not abstained:
            reasons.append("no citation")
        if invalid:
            reasons.append(f"cites missing source(s) {_numbers(invalid)}")
        if unsupported:
            reasons.append(f"cited source(s) {_numbers(unsupported)} lack supporting text")
        if report.unverified_quotes:
            reasons.append(f"{len(report.unverified_quotes)} unverified quote(s)")
    elif not abstained:
        reasons.append("answered a question the documents cannot answer")
    if report.banned_phrases:
        reasons.append("banned phrase(s): " + ", ".join(repr(p) for p in report.banned_phrases))
    return AnswerScore(
        id=item.id,
        question=item.question,
        has_answer=item.has_answer,
        answer=answer,
        recall=recall,
        abstained=abstained,
        false_abstention=false_abstention,
        citations=cited,
        invalid_citations=invalid,
        unsupported_citations=unsupported,
        unverified_quotes=list(report.unverified_quotes),
        banned_phrases=list(report.banned_phrases),
        passed=not reasons,
        reasons=reasons,
    )


def _numbers(numbers: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in numbers)


# ---------------------------------------------------------------------------- running


@dataclass(frozen=True)
class AnswerEvalReport:
    """Scores of every gold question, and the summary the gate checks.

    Attributes:
        scores: One [`AnswerScore`][langchain_fusion.answer_eval.AnswerScore] per question.
        min_recall: The content-recall threshold used.

    Example:
        >>> report = AnswerEvalReport([score_answer(GoldItem("Q?", "Paris."), "Paris. [1]",
        ...                                         ["Paris."])])
        >>> report.pass_rate, report.summary()["false_abstentions"]
        (1.0, 0)

    """

    scores: list[AnswerScore]
    min_recall: float = DEFAULT_MIN_RECALL

    @property
    def pass_rate(self) -> float:
        """Share of the questions that pass (0.0 for none)."""
        return sum(s.passed for s in self.scores) / len(self.scores) if self.scores else 0.0

    def summary(self) -> dict[str, Any]:
        """Return counts and rates over all questions (a JSON-ready dict)."""
        answerable = [s for s in self.scores if s.has_answer]
        recalls = [s.recall for s in answerable if s.recall is not None]
        return {
            "questions": len(self.scores),
            "passed": sum(s.passed for s in self.scores),
            "pass_rate": round(self.pass_rate, 4),
            "answerable": len(answerable),
            "contains_reference": sum(
                (s.recall or 0.0) >= self.min_recall and not s.abstained for s in answerable
            ),
            "mean_recall": round(sum(recalls) / len(recalls), 4) if recalls else None,
            "false_abstentions": sum(s.false_abstention for s in self.scores),
            "unanswerable": len(self.scores) - len(answerable),
            "correct_abstentions": sum(s.abstained for s in self.scores if not s.has_answer),
            "invalid_citations": sum(len(s.invalid_citations) for s in self.scores),
            "unsupported_citations": sum(len(s.unsupported_citations) for s in self.scores),
            "unverified_quotes": sum(len(s.unverified_quotes) for s in self.scores),
            "banned_phrases": sum(len(s.banned_phrases) for s in self.scores),
            "min_recall": self.min_recall,
        }


def evaluate_answers(
    answer: Callable[[str], Any],
    gold: Sequence[GoldItem],
    *,
    min_recall: float = DEFAULT_MIN_RECALL,
    banned_phrases: Sequence[str] = (),
) -> AnswerEvalReport:
    """Answer every gold question with ``answer`` and score the answers.

    Args:
        answer: Called with each question; returns a
            [`QAResult`][langchain_fusion.qa.QAResult] (e.g. a QA chain's ``invoke``), or any
            object with ``answer`` and ``sources``, or a ``(answer text, sources)`` pair.
        gold: The gold items (see [`load_gold`][langchain_fusion.answer_eval.load_gold]).
        min_recall: Content recall an answer needs.
        banned_phrases: Phrases no answer may contain.

    Returns:
        An [`AnswerEvalReport`][langchain_fusion.answer_eval.AnswerEvalReport].

    Raises:
        TypeError: If ``answer`` returns something else.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> from langchain_fusion.qa import build_qa_chain
        >>> docs = [Document("Paris is the capital of France.")]
        >>> chain = build_qa_chain(RunnableLambda(lambda q: docs), llm=False)
        >>> gold = [GoldItem("What is the capital of France?", "Paris."),
        ...         GoldItem("Who painted the Mona Lisa?", "Not in the sources.", False)]
        >>> evaluate_answers(chain.invoke, gold).pass_rate
        1.0

    """
    scores = []
    for item in gold:
        out = answer(item.question)
        if isinstance(out, tuple) and len(out) == 2:
            text, sources = out
        elif hasattr(out, "answer") and hasattr(out, "sources"):
            text, sources = out.answer, out.sources
        else:
            raise TypeError(
                "answer must return a QAResult, an object with .answer and .sources, or an "
                f"(answer, sources) pair; got {type(out).__name__}"
            )
        scores.append(
            score_answer(
                item, str(text), list(sources), min_recall=min_recall,
                banned_phrases=banned_phrases,
            )
        )  # fmt: skip
    return AnswerEvalReport(scores, min_recall)


def format_report(report: AnswerEvalReport, *, width: int = 48) -> str:
    """Format the per-question table and the summary lines.

    Args:
        report: The report.
        width: Questions are cut to this many characters.

    Returns:
        The text (a Markdown table, then the summary).

    Example:
        >>> report = AnswerEvalReport([score_answer(GoldItem("Q?", "Paris.", id="q1"),
        ...                                         "Paris. [1]", ["Paris."])])
        >>> print(format_report(report).splitlines()[2])
        | q1 | Q?       | answer   | 1.00   | no        | 1 ok      | -        | PASS   |

    """
    header = ["id", "question", "expected", "recall", "abstained", "citations", "findings"]
    table = [[*header, "result"]]
    for s in report.scores:
        q = s.question if len(s.question) <= width else s.question[: width - 1] + "…"
        bad = len(s.invalid_citations) + len(s.unsupported_citations)
        table.append(
            [
                s.id,
                q,
                "answer" if s.has_answer else "abstain",
                "-" if s.recall is None else f"{s.recall:.2f}",
                "yes" if s.abstained else "no",
                f"{len(s.citations)} ok" if not bad else f"{len(s.citations)}, {bad} bad",
                "; ".join(s.reasons) if s.reasons else "-",
                "PASS" if s.passed else "FAIL",
            ]
        )
    table = [[cell.replace("|", "\\|") for cell in row] for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    rows = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in table]
    rows.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    m = report.summary()
    lines = [
        "",
        f"passed {m['passed']}/{m['questions']} ({m['pass_rate']:.0%})",
        f"answerable: {m['contains_reference']}/{m['answerable']} contain the reference "
        f"(recall >= {m['min_recall']:g}), mean recall "
        + ("-" if m["mean_recall"] is None else f"{m['mean_recall']:.2f}")
        + f", false abstentions {m['false_abstentions']}",
        f"unanswerable: {m['correct_abstentions']}/{m['unanswerable']} abstained",
        f"citations: {m['invalid_citations']} to missing sources, {m['unsupported_citations']} "
        f"unsupported; {m['unverified_quotes']} unverified quotes; {m['banned_phrases']} banned "
        "phrases",
    ]
    return "\n".join(rows + lines)
