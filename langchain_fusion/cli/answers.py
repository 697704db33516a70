"""``langchain-fusion eval-answers``: the answer-quality gate (logic in `answer_eval`).

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="langchain-fusion")
    >>> add_commands(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["eval-answers", "--sample"]).min_recall
    0.5

"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_fusion.answer_eval import (
    DEFAULT_MIN_RECALL,
    evaluate_answers,
    format_report,
    load_banned_phrases,
    load_gold,
)
from langchain_fusion.cli._common import CLIError, unit_interval
from langchain_fusion.cli.search import (
    _add_fusion_args,
    _add_source,
    _chat_model,
    _open,
    _retriever_options,
)

__all__ = ["add_commands", "cmd_eval_answers"]


def add_commands(subparsers: Any) -> None:
    """Register ``eval-answers`` on the ``langchain-fusion`` command's subparsers.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="langchain-fusion")
        >>> add_commands(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["eval-answers", "--sample", "--min", "0.8"])
        >>> args.sample, args.min, args.min_recall, args.gold
        (True, 0.8, 0.5, None)

    """
    p = subparsers.add_parser(
        "eval-answers",
        help="score answers against a gold file (content, citations, verifier); CI gate",
        description=cmd_eval_answers.__doc__,
    )
    _add_source(p)
    p.add_argument(
        "--gold",
        metavar="FILE",
        help="questions with reference answers: JSON list, {'questions': [...]} or JSONL; "
        "fields question, answer (or reference_answer / ideal_answer), has_answer (optional); "
        "default with --sample: the sample manual's questions",
    )
    p.add_argument(
        "--min",
        type=unit_interval,
        default=None,
        metavar="RATE",
        help="hard floor on the share of questions that pass: exit code 1 below it",
    )
    p.add_argument(
        "--min-recall",
        dest="min_recall",
        type=unit_interval,
        default=DEFAULT_MIN_RECALL,
        metavar="R",
        help="content recall an answer needs to contain the reference (default 0.5)",
    )
    p.add_argument(
        "--banned",
        metavar="FILE",
        help="banned phrases, one per line (# comments); an answer containing one fails",
    )
    _add_fusion_args(p)
    p.add_argument(
        "--llm",
        help='chat model: "openai:gpt-4o-mini", ... (default: gpt-4o-mini when OPENAI_API_KEY '
        "is set, else offline extractive answers)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_eval_answers)


def cmd_eval_answers(args: Any) -> int:
    """Answer a gold file's questions and score the answers; --min makes it a CI gate.

    Each answer is scored for content recall of the reference answer, citation validity and
    support, and verifier findings (unsupported quotes, banned phrases). With --min, the exit
    code is 1 when the share of passing questions is below it.
    """
    from langchain_fusion.qa import LLMError, build_qa_chain
    from langchain_fusion.retriever import FusionRetriever

    gold_path = args.gold
    if gold_path is None:
        if not args.sample:
            raise CLIError("give --gold FILE (questions with reference answers)")
        from langchain_fusion.ingest import sample_path

        gold_path = sample_path().parent / "questions.json"
    try:
        gold = load_gold(gold_path)
        banned = load_banned_phrases(args.banned) if args.banned else []
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    llm = _chat_model(args)
    index = _open(args)
    retriever = FusionRetriever.from_index(index, **_retriever_options(args))
    chain = build_qa_chain(retriever, llm=llm, banned_phrases=banned)
    if chain.llm is None:
        print("No LLM configured: scoring offline extractive answers.", file=sys.stderr)
    try:
        report = evaluate_answers(
            chain.invoke, gold, min_recall=args.min_recall, banned_phrases=banned
        )
    except LLMError as exc:
        raise CLIError(
            f"{exc}; check the --llm model name and its API key, or drop --llm for offline answers"
        ) from None
    passed = args.min is None or report.pass_rate >= args.min
    if args.json:
        out = {
            "summary": {**report.summary(), "min": args.min, "gate": "pass" if passed else "fail"},
            "questions": [
                {
                    "id": s.id,
                    "question": s.question,
                    "has_answer": s.has_answer,
                    "answer": s.answer,
                    "recall": s.recall,
                    "abstained": s.abstained,
                    "false_abstention": s.false_abstention,
                    "citations": s.citations,
                    "invalid_citations": s.invalid_citations,
                    "unsupported_citations": s.unsupported_citations,
                    "unverified_quotes": s.unverified_quotes,
                    "banned_phrases": s.banned_phrases,
                    "passed": s.passed,
                    "reasons": s.reasons,
                }
                for s in report.scores
            ],
        }
        print(json.dumps(out, indent=2))
    else:
        print(format_report(report))
        if args.min is not None:
            verdict = "PASS" if passed else "FAIL"
            print(f"gate: {verdict} (pass rate {report.pass_rate:.2f}, --min {args.min:g})")
    if not passed:
        print(
            f"error: {report.summary()['passed']}/{len(report.scores)} questions pass "
            f"({report.pass_rate:.2f}), below --min {args.min:g}",
            file=sys.stderr,
        )
        return 1
    return 0
