from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from langchain_fusion import FusionRetriever, HybridIndex
from langchain_fusion.cli import build_parser, main
from langchain_fusion.evaluation import evaluate, load_beir
from tests.fakes import BagOfWordsEmbedding

TOPICS = ["battery", "solar", "winter", "pump", "grid", "vent", "warranty", "firmware"]


@pytest.fixture()
def beir(tmp_path: Path) -> Path:
    """A tiny BEIR folder: 40 documents, train and test splits of 12 queries each."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    corpus, queries = [], []
    for i in range(40):
        words = rng.choice(TOPICS, size=6).tolist()
        corpus.append({"_id": f"d{i}", "title": f"Note {i}", "text": " ".join(words) + f" k{i}"})
    for split, offset in (("train", 0), ("test", 20)):
        lines = ["query-id\tcorpus-id\tscore"]
        for j in range(12):
            d = offset + j
            words = corpus[d]["text"].split()
            qid = f"{split}{j}"
            queries.append({"_id": qid, "text": f"{words[0]} {words[-1]}"})
            lines.append(f"{qid}\td{d}\t1")
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    return root


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args, embeddings=BagOfWordsEmbedding()))


def _row(out: str, label: str) -> list[float]:
    line = next(line for line in out.splitlines() if line.startswith(f"| {label}"))
    return [float(x.strip("* ")) for x in line.split("|")[2:-1]]


def test_commands_are_registered() -> None:
    text = build_parser().format_help()
    assert "eval" in text and "tune" in text


def test_eval_prints_bm25_dense_and_fusion(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "index"
    assert (
        run(
            [
                "eval",
                "--beir",
                str(beir),
                "--split",
                "test",
                "--index",
                str(index_dir),
                "--quiet",
                "--alpha",
                "0.4",
                "--methods",
                "zscore",
                "rrf",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("## tiny test: 40 documents, 12 queries")
    assert "| system | ndcg@10 | recall@100 |" in out
    for label in (
        "BM25 only (alpha=0)",
        "dense only (alpha=1)",
        "fusion convex zscore (alpha=0.4)",
        "fusion rrf (alpha=0.4)",
    ):
        assert all(0.0 <= v <= 1.0 for v in _row(out, label))
    assert "ms/query" in out
    # the table equals real evaluations of retrievers over the saved index
    index = HybridIndex.load(index_dir, BagOfWordsEmbedding())
    ds = load_beir(beir, "test")
    for label, settings in (
        ("BM25 only (alpha=0)", {"alpha": 0.0}),
        ("fusion rrf (alpha=0.4)", {"alpha": 0.4, "method": "rrf"}),
    ):
        real = evaluate(
            FusionRetriever.from_index(index, **settings),
            ds.queries,
            ds.qrels,
            metrics=["ndcg@10", "recall@100"],
            show_progress=False,
        )
        assert _row(out, label) == pytest.approx(
            [round(real.metrics["ndcg@10"], 4), round(real.metrics["recall@100"], 4)], abs=1e-4
        )


def test_tune_reports_train_and_test_and_plots(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "plots" / "alpha.png"
    assert run(["tune", "--beir", str(beir), "--plot", str(png), "--cv", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "## Tuning on tiny train: 12 queries" in out
    assert "3-fold cross-validation: held-out ndcg@10" in out
    assert "best: FusionRetriever.from_index(index, method=" in out
    assert "## tiny test: 12 queries" in out
    tuned = _row(out, "tuned on tiny train")
    assert len(tuned) == 1 and 0.0 <= tuned[0] <= 1.0
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in out


def test_tune_reuses_a_saved_index(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "idx"
    run(["tune", "--beir", str(beir), "--index", str(index_dir), "--methods", "rrf", "--quiet"])
    first = capsys.readouterr()
    assert "saved the index" in first.err
    run(["tune", "--beir", str(beir), "--index", str(index_dir), "--methods", "rrf", "--quiet"])
    second = capsys.readouterr()
    assert "using the index" in second.err
    # --methods rrf: only RRF settings were searched
    table = [line for line in second.out.splitlines() if re.match(r"\| \d+ \|", line)]
    assert table and all("| rrf |" in line for line in table)

    def tables(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("|")]

    assert tables(first.out) == tables(second.out)


def test_tune_on_label_files_cross_validates(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "idx"
    run(["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"])
    capsys.readouterr()
    assert (
        run(
            [
                "tune",
                "--index",
                str(index_dir),
                "--queries",
                str(beir / "queries.jsonl"),
                "--qrels",
                str(beir / "qrels" / "train.tsv"),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "## Tuning on queries.jsonl + train.tsv: 12 queries" in out
    assert "5-fold cross-validation" in out
    assert "## tiny test" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune"], "give --beir PATH"),
        (["eval"], "give --beir PATH"),
        (["tune", "--beir", "{beir}", "--train-split", "nope"], "nope"),
        (["eval", "--beir", "{beir}", "--split", "dev"], "dev"),
        (["tune", "--queries", "{beir}/queries.jsonl"], "--queries needs --qrels"),
        (["eval", "--beir", "{beir}", "--alpha", "2"], "--alpha must be in [0, 1], got 2.0"),
        (["tune", "--beir", "{beir}", "--cv", "1"], "--cv must be >= 2, got 1"),
        (["eval", "--beir", "/does/not/exist"], "does not exist"),
    ],
)
def test_errors_are_one_line(
    beir: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([a.format(beir=beir) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_index_dir_without_corpus_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["tune", "--index", str(tmp_path / "missing"), "--queries", "q.jsonl", "--qrels", "q.tsv"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "error:" in err


def test_tune_feedback_reports_the_feedback_choice_on_test(
    beir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["tune", "--beir", str(beir), "--feedback", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "## Pseudo-relevance feedback on tiny train (tuned fusion kept)" in out
    section = out.split("## Pseudo-relevance feedback", 1)[1].split("## tiny test", 1)[0]
    assert "| rank | feedback_docs | feedback_weight | ndcg@10 |" in section
    assert len([line for line in section.splitlines() if line.startswith("| ")]) == 7 + 1
    row = next(
        line for line in out.splitlines() if line.startswith("| tuned on tiny train + feedback")
    )
    value = float(row.split("|")[2].strip("* "))
    assert 0.0 <= value <= 1.0


def test_search_options_take_feedback_docs() -> None:
    from langchain_fusion.cli import _retriever_options

    args = build_parser().parse_args(["search", "--sample", "q", "--feedback-docs", "2"])
    assert _retriever_options(args) == {"feedback_docs": 2}
