"""Offline (extractive) answers before and after, scored against reference answers, in one run.

Two question sets, each answered from the same retrieved sources (default `FusionRetriever`,
local all-MiniLM-L6-v2, k=4) by two answerers:

* before: `extractive_answer` as it is on the git ref ``--baseline`` (default ``main``), loaded
  from that commit's ``langchain_fusion/extractive.py``; what `build_qa_chain(llm=False)` did;
* after: `build_qa_chain(retriever, llm=False)` of this tree (sentences ranked with the dense
  model and BM25 together).

Sets: ``pdfs/AI_Information.qa.json`` with its PDF (10 questions, 5 unanswerable), and the
bundled sample manual's ``questions.json`` (10 questions, 1 unanswerable), a second source the
method was not tuned on.

Scoring is `langchain_fusion.answer_eval.score_answer` (see its module docstring): an answer
*contains the reference answer's content* when, for an answerable question, it does not abstain
and holds at least ``--min-recall`` (default 0.5) of the reference's content words (package
Tokenizer: stopwords removed, Snowball-stemmed; words of the question left out), and, for an
unanswerable one, it says the sources do not answer. A *false abstention* is an abstention on an
answerable question whose retrieved sources hold the reference content (three of their
sentences reach the threshold). Also printed: the same share at other thresholds, the mean
recall, and how many of ``--offtopic`` SciFact/NFCorpus queries (nothing to do with the PDF)
get an answer instead of an abstention (fewer is better), and the median time per answer.

Usage:
    python benchmarks/offline_answers.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, markdown_table

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def baseline_module(ref: str) -> Any:
    """Import ``langchain_fusion/extractive.py`` as it is at git ``ref``."""
    source = subprocess.run(
        ["git", "show", f"{ref}:langchain_fusion/extractive.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "extractive_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("extractive_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def question_sets(root: Path) -> list[tuple[str, Path, Path]]:
    from langchain_fusion.ingest import sample_path

    sample = sample_path()
    return [
        ("AI_Information.pdf", root / "pdfs" / "AI_Information.pdf",
         root / "pdfs" / "AI_Information.qa.json"),
        ("sample manual", sample, sample.parent / "questions.json"),
    ]  # fmt: skip


def contains(score: Any, threshold: float) -> bool:
    if not score.has_answer:
        return bool(score.abstained)
    return not score.abstained and (score.recall or 0.0) >= threshold


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data")
    parser.add_argument("--baseline", default="main", help="git ref of the 'before' code")
    parser.add_argument("--min-recall", type=float, default=0.5)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--offtopic", type=int, default=100, help="off-topic queries per corpus")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    root = data_dir(args.data)

    from langchain_fusion import FusionRetriever, LocalEmbeddings
    from langchain_fusion.answer_eval import load_gold, score_answer
    from langchain_fusion.ingest import ingest
    from langchain_fusion.qa import build_qa_chain

    before_mod = baseline_module(args.baseline)
    emb = LocalEmbeddings()
    totals: dict[str, dict[str, list[Any]]] = {}
    times: dict[str, list[float]] = {"before": [], "after": []}
    pdf_retriever = None
    for name, document, gold_path in question_sets(root):
        chunks = ingest([document], show_progress=False).chunks
        retriever = FusionRetriever.from_documents(chunks, emb, k=args.k)
        if pdf_retriever is None:
            pdf_retriever = retriever
        chain = build_qa_chain(retriever, llm=False)
        gold = load_gold(gold_path)
        rows = []
        scores: dict[str, list[Any]] = {"before": [], "after": []}
        chain.invoke(gold[0].question)  # warm up: the model is loaded before timing
        for item in gold:
            docs = retriever.invoke(item.question)
            t0 = time.perf_counter()
            before_text = before_mod.extractive_answer(item.question, docs).text
            times["before"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = chain._extractive(item.question, docs)  # what invoke runs after retrieval
            times["after"].append(time.perf_counter() - t0)
            pair = {
                "before": score_answer(item, before_text, docs, min_recall=args.min_recall),
                "after": score_answer(
                    item, result.answer, result.sources, min_recall=args.min_recall
                ),
            }
            for key, s in pair.items():
                scores[key].append(s)
            b, a = pair["before"], pair["after"]
            rows.append(
                [
                    item.id,
                    item.question[:44],
                    "answer" if item.has_answer else "abstain",
                    "-" if b.recall is None else f"{b.recall:.2f}",
                    "-" if a.recall is None else f"{a.recall:.2f}",
                    ("abstain" if b.abstained else "answer")
                    + (" (false)" if b.false_abstention else ""),
                    ("abstain" if a.abstained else "answer")
                    + (" (false)" if a.false_abstention else ""),
                    "yes" if contains(b, args.min_recall) else "no",
                    "yes" if contains(a, args.min_recall) else "no",
                ]
            )
            if args.show:
                print(f"\n## {item.id} {item.question}\nREF: {item.reference}")
                print(f"BEFORE: {before_text}\nAFTER: {result.answer}")
        totals[name] = scores
        print(f"\n### {name} ({len(gold)} questions, {len(chunks)} chunks, k={args.k})\n")
        print(
            markdown_table(
                ["id", "question", "expected", "recall before", "recall after", "before",
                 "after", "contains before", "contains after"],
                rows,
            )
        )  # fmt: skip

    print(f"\n### Summary (threshold {args.min_recall:g} unless stated)\n")
    rows = []
    for name, scores in totals.items():
        for key in ("before", "after"):
            ss = scores[key]
            answerable = [s for s in ss if s.has_answer]
            recalls = [s.recall or 0.0 for s in answerable]
            rows.append(
                [
                    name,
                    key,
                    f"{sum(contains(s, args.min_recall) for s in ss)}/{len(ss)}",
                    *[f"{sum(contains(s, t) for s in ss)}" for t in THRESHOLDS],
                    f"{statistics.mean(recalls):.2f}" if recalls else "-",
                    str(sum(s.false_abstention for s in ss)),
                    str(sum(s.abstained for s in answerable)),
                    str(sum(s.abstained for s in ss if not s.has_answer))
                    + f"/{sum(not s.has_answer for s in ss)}",
                    str(sum(len(s.invalid_citations) + len(s.unsupported_citations) for s in ss)),
                ]
            )
    print(
        markdown_table(
            ["set", "code", "contains reference", *[f"@{t:g}" for t in THRESHOLDS],
             "mean recall (answerable)", "false abstentions", "abstained (answerable)",
             "abstained (unanswerable)", "bad citations"],
            rows,
        )
    )  # fmt: skip

    if args.offtopic and pdf_retriever is not None:
        from langchain_fusion.evaluation import load_beir

        queries: list[str] = []
        for corpus, split in (("scifact", "test"), ("nfcorpus", "dev")):
            ds = load_beir(root / "beir" / corpus, split)
            queries += sorted(ds.queries.values())[: args.offtopic]
        chain = build_qa_chain(pdf_retriever, llm=False)
        answered = {"before": 0, "after": 0}
        for q in queries:
            docs = pdf_retriever.invoke(q)
            answered["before"] += bool(before_mod.extractive_answer(q, docs).answerable)
            result = chain._extractive(q, docs)
            answered["after"] += bool(result.extractive and result.extractive.answerable)
        print(
            f"\noff-topic queries on the PDF (SciFact test + NFCorpus dev, {len(queries)}): "
            f"answered instead of abstaining: before {answered['before']}, "
            f"after {answered['after']}"
        )
    print(
        "\nmedian time per answer from the retrieved sources (retrieval excluded): "
        f"before {1000 * statistics.median(times['before']):.1f} ms, "
        f"after {1000 * statistics.median(times['after']):.1f} ms"
    )
    print(json.dumps({"min_recall": args.min_recall, "baseline": args.baseline}))


if __name__ == "__main__":
    main()
