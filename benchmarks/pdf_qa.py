"""Question answering on ../shared/data/pdfs/AI_Information.pdf with its labelled questions.

For every answerable question: is a chunk containing the answer among the top 4 sources (default
settings, local embeddings)? For the unanswerable ones: what does the offline answerer say? Also
times the README's main-job command in a fresh process and further questions in `chat`.

"Contains the answer" is judged by an evidence phrase per question, read off the PDF text and
written below (the labels' reference chapters do not always exist in this PDF's text layer).

Usage:
    python benchmarks/pdf_qa.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, markdown_table

# question prefix -> phrase whose presence in a chunk means the chunk holds the answer
EVIDENCE = {
    "What is 'Explainable AI'": ["explainable ai", "xai"],
    "How does AI contribute to personalized medicine": ["personalized medicine"],
    "What is the role of AI in smart grids": ["grid stability"],  # closest text: page 11
    "What is a 'cobot'": ["cobots"],
    "What is Direct Air Capture": ["direct air capture"],  # absent from this PDF's text
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data")
    args = parser.parse_args()
    root = data_dir(args.data)
    pdf = root / "pdfs" / "AI_Information.pdf"
    questions = json.loads((root / "pdfs" / "AI_Information.qa.json").read_text())

    from langchain_fusion import FusionRetriever
    from langchain_fusion.ingest import ingest
    from langchain_fusion.qa import build_qa_chain

    t0 = time.perf_counter()
    chunks = ingest([pdf], show_progress=False).chunks
    retriever = FusionRetriever.from_documents(chunks)
    print(f"indexed {len(chunks)} chunks in {time.perf_counter() - t0:.1f} s (model load included)")
    chain = build_qa_chain(retriever, llm=False)

    rows = []
    hits = answerable = 0
    for q in questions:
        docs = retriever.invoke(q["question"], k=4)
        if q["has_answer"]:
            answerable += 1
            phrases = next(v for k, v in EVIDENCE.items() if q["question"].startswith(k))
            ranks = [
                i + 1
                for i, d in enumerate(docs)
                if any(p in d.page_content.lower() for p in phrases)
            ]
            in_text = any(any(p in c.page_content.lower() for p in phrases) for c in chunks)
            hits += bool(ranks)
            verdict = (
                f"rank {ranks[0]}"
                if ranks
                else ("not in top 4" if in_text else "answer not in PDF text")
            )
            rows.append([q["question"][:60], "yes", verdict, ""])
        else:
            result = chain.invoke(q["question"])
            first = result.answer.split("\n")
            said = next((ln for ln in first[1:] if ln.strip()), first[0])
            rows.append([q["question"][:60], "no", "-", said[:90]])
    print(
        markdown_table(
            ["question", "answerable", "answer chunk in top 4", "offline answer (unanswerable)"],
            rows,
        )
    )
    print(f"\n{hits}/{answerable} answerable questions have an answer chunk in the top 4")

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)
    cli = [sys.executable, "-m", "langchain_fusion.cli"]
    t0 = time.perf_counter()
    subprocess.run(
        [*cli, "ask", "--sample", "What does error E-217 mean?"],
        env=env,
        check=True,
        capture_output=True,
    )
    fresh = time.perf_counter() - t0
    qs = (
        "\n".join(
            [
                "What does error E-217 mean?",
                "How long is the guarantee?",
                "How do I reset the BMS?",
                "Can I install it outdoors?",
                "What happens in a blackout?",
            ]
        )
        + "\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [*cli, "chat", "--sample", "--no-stream"],
        input=qs,
        env=env,
        text=True,
        capture_output=True,
        check=True,
    )
    per_q = [
        float(ln.strip("() s"))
        for ln in out.stderr.splitlines()
        if ln.startswith("(") and ln.endswith(" s)")
    ]
    median = sorted(per_q)[len(per_q) // 2]
    print(f"\nREADME main-job command in a fresh process: {fresh:.1f} s")
    print("  (model load and indexing included)")
    print(f"chat: {len(per_q)} questions, median {median:.2f} s per further question")


if __name__ == "__main__":
    main()
