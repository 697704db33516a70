from __future__ import annotations

import importlib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import FusionRetriever, HybridIndex
from langchain_fusion.cli import CLIError, build_parser, main
from langchain_fusion.evaluation import evaluate, load_beir
from tests.fakes import BagOfWordsEmbedding

TOPICS = ["battery", "solar", "winter", "pump", "grid", "vent", "warranty", "firmware"]


def make_beir(root: Path, prefix: str = "d") -> Path:
    """A tiny BEIR folder: 40 documents, train and test splits of 12 queries each."""
    rng = np.random.default_rng(0)
    (root / "qrels").mkdir(parents=True)
    corpus, queries = [], []
    for i in range(40):
        words = rng.choice(TOPICS, size=6).tolist()
        corpus.append(
            {"_id": f"{prefix}{i}", "title": f"Note {i}", "text": " ".join(words) + f" k{i}"}
        )
    for split, offset in (("train", 0), ("test", 20)):
        lines = ["query-id\tcorpus-id\tscore"]
        for j in range(12):
            d = offset + j
            words = corpus[d]["text"].split()
            qid = f"{split}{j}"
            queries.append({"_id": qid, "text": f"{words[0]} {words[-1]}"})
            lines.append(f"{qid}\t{prefix}{d}\t1")
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    return root


@pytest.fixture()
def beir(tmp_path: Path) -> Path:
    """A tiny BEIR folder: 40 documents, train and test splits of 12 queries each."""
    return make_beir(tmp_path / "tiny")


class CountingEmbedding(BagOfWordsEmbedding):
    """Counts query embeddings (the first one loads a real model)."""

    def __init__(self) -> None:
        super().__init__()
        self.queries = 0

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return super().embed_query(text)


def run(argv: list[str], embeddings: Any = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args, embeddings=embeddings or BagOfWordsEmbedding()))


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
        (["eval", "--beir", "/does/not/exist"], "does not exist"),
        (
            ["eval", "--beir", "{beir}", "--qrels", "{beir}/qrels/test.tsv"],
            "--qrels needs --queries",
        ),
        # --index without labels: the labels are what is missing
        (["eval", "--index", "{beir}"], "--index {beir} gives the documents but no labels"),
        (["tune", "--index", "{beir}"], "add --queries FILE and --qrels FILE"),
        # labels without documents
        (
            ["eval", "--queries", "{beir}/queries.jsonl", "--qrels", "{beir}/qrels/test.tsv"],
            "give the labels but no documents: add --index DIR",
        ),
        (
            ["tune", "--queries", "{beir}/queries.jsonl", "--qrels", "{beir}/qrels/train.tsv"],
            "give the labels but no documents: add --index DIR",
        ),
        # missing label files are named as such (not as a BEIR folder)
        (
            [
                "eval",
                "--index",
                "{beir}",
                "--queries",
                "nope.jsonl",
                "--qrels",
                "{beir}/qrels/test.tsv",
            ],
            "queries file not found: nope.jsonl",
        ),
        (
            ["tune", "--index", "{beir}", "--queries", "{beir}/queries.jsonl", "--qrels", "no.tsv"],
            "qrels file not found: no.tsv",
        ),
    ],
)
def test_errors_are_one_line(
    beir: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([a.format(beir=beir) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and message.format(beir=beir) in err
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
    fusion_best, combined_best = [x for x in out.splitlines() if x.startswith("best: ")]
    # the feedback choice is printed with the tuned fusion settings it was chosen with
    assert combined_best.startswith(fusion_best[:-1] + ", feedback_docs=")
    searches = [x for x in out.splitlines() if x.startswith("  or: ")]
    assert len(searches) == 2
    section = out.split("## Pseudo-relevance feedback", 1)[1].split("## tiny test", 1)[0]
    assert "| rank | feedback_docs | feedback_weight | ndcg@10 |" in section
    assert len([line for line in section.splitlines() if line.startswith("| ")]) == 7 + 1
    row = next(
        line for line in out.splitlines() if line.startswith("| tuned on tiny train + feedback")
    )
    value = float(row.split("|")[2].strip("* "))
    assert 0.0 <= value <= 1.0


def test_search_options_take_feedback_docs() -> None:
    from langchain_fusion.cli.search import _retriever_options

    args = build_parser().parse_args(["search", "--sample", "q", "--feedback-docs", "2"])
    assert _retriever_options(args) == {"feedback_docs": 2}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "--beir", "b", "--top", "-1"], "argument --top: must be an integer >= 1, got -1"),
        (["tune", "--beir", "b", "--top", "0"], "argument --top: must be an integer >= 1, got 0"),
        (["eval", "--beir", "b", "--fetch-k", "0"], "argument --fetch-k: must be an integer >= 1"),
        (["tune", "--beir", "b", "--fetch-k", "x"], "argument --fetch-k: must be an integer >= 1"),
        (["tune", "--beir", "b", "--cv", "1"], "argument --cv: must be an integer >= 2"),
        (["eval", "--beir", "b", "--alpha", "2"], "argument --alpha: must be a number in [0, 1]"),
        (
            ["eval", "--beir", "b", "--alpha", "-0.1"],
            "argument --alpha: must be a number in [0, 1]",
        ),
        (["eval", "--beir", "b", "--metrics", "ndcg"], "argument --metrics: unknown metric 'ndcg'"),
        (["tune", "--beir", "b", "--metric", "nope@3"], "argument --metric: unknown metric"),
    ],
)
def test_bad_numbers_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert message in err.splitlines()[-1]
    assert "Traceback" not in err


def test_empty_index_dir_is_built_there(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "empty"
    index_dir.mkdir()
    assert run(["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"saved the index to {index_dir}" in err
    assert (index_dir / "manifest.json").exists()
    assert run(["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"]) == 0
    assert "using the index" in capsys.readouterr().err


def test_empty_index_dir_without_corpus_says_so(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    labels = ["--queries", str(beir / "queries.jsonl"), "--qrels", str(beir / "qrels/test.tsv")]
    code = main(["eval", "--index", str(tmp_path / "empty"), *labels])
    err = capsys.readouterr().err
    assert code == 1
    assert "index not found" in err and "the directory is empty" in err and "--beir PATH" in err


@pytest.mark.parametrize("command", ["eval", "tune"])
def test_index_of_another_corpus_is_an_error(
    beir: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "idx"
    run(["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"])
    other = make_beir(tmp_path / "other", prefix="x")
    capsys.readouterr()
    with pytest.raises(CLIError) as exc:
        run([command, "--beir", str(other), "--index", str(index_dir), "--quiet"])
    message = str(exc.value)
    assert "none of the 12 documents judged in other" in message
    assert f"is in the index {index_dir}" in message
    assert "use a new --index DIR" in message and f"delete {index_dir}" in message
    assert "| system |" not in capsys.readouterr().out


def test_some_judged_documents_missing_is_not_an_error(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "idx"
    run(["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"])
    qrels = tmp_path / "qrels.tsv"
    lines = (beir / "qrels" / "test.tsv").read_text().splitlines()
    qrels.write_text("\n".join([*lines, "test0\tnot-in-the-corpus\t1"]) + "\n")
    argv = ["eval", "--index", str(index_dir), "--queries", str(beir / "queries.jsonl")]
    assert run([*argv, "--qrels", str(qrels), "--quiet"]) == 0
    assert "## queries.jsonl + qrels.tsv: 40 documents, 12 queries" in capsys.readouterr().out


def test_bm25_options_on_an_existing_index(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "idx"
    argv = ["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"]
    assert run([*argv, "--bm25-k1", "1.2"]) == 0
    assert run([*argv, "--bm25-k1", "1.2"]) == 0  # the same command again: same index
    with pytest.raises(CLIError) as exc:
        run([*argv, "--bm25-k1", "0.9", "--bm25-b", "0.75"])
    message = str(exc.value)
    assert message.startswith("--bm25-k1 0.9 only applies when building an index")
    assert "built with k1=1.2" in message and "--bm25-b" not in message
    assert "use a new --index DIR" in message


@pytest.mark.parametrize("command", ["eval", "tune"])
def test_retrieval_time_excludes_loading_the_model(
    beir: Path,
    tmp_path: Path,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tune_module = importlib.import_module("langchain_fusion.evaluation.tune")

    index_dir = tmp_path / "idx"
    run(["eval", "--beir", str(beir), "--index", str(index_dir), "--quiet"])
    embedding = CountingEmbedding()
    seen: list[int] = []
    gather = tune_module.gather_pools

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(embedding.queries)
        return gather(*args, **kwargs)

    monkeypatch.setattr(tune_module, "gather_pools", spy)
    argv = [command, "--beir", str(beir), "--index", str(index_dir), "--quiet"]
    assert run([*argv, "--methods", "rrf"], embeddings=embedding) == 0
    # the model embedded a query before the timed gathering started
    assert seen and all(n >= 1 for n in seen)


def test_fetch_k_below_the_metric_cutoff_is_noted(
    beir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["eval", "--beir", str(beir), "--fetch-k", "5", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (
        "note: fetch_k raised from --fetch-k 5 to 100, the deepest metric cutoff (recall@100)"
        in captured.err
    )
    assert "fetch_k=100)" in captured.out
    run(["eval", "--beir", str(beir), "--fetch-k", "50", "--quiet", "--metrics", "ndcg@10"])
    assert "note:" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--plot", "{tmp}/out.txt"], "unsupported image format ('.txt'); end the file name with"),
        (["--plot", "{tmp}/alpha"], "unsupported image format (no suffix)"),
        (["--plot", "{tmp}/a-file/alpha.png"], "a-file is not a directory"),
        (["--plot", "{tmp}"], "is a directory; give a file name"),
        (["--cv", "100"], "--cv 100 needs at least 100 train queries, but tiny train has 12"),
    ],
)
def test_tune_checks_plot_and_cv_before_the_work(
    beir: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a-file").write_text("x")
    argv = ["tune", "--beir", str(beir), "--quiet", *[a.format(tmp=tmp_path) for a in extra]]
    with pytest.raises(CLIError) as exc:
        run(argv)
    assert message in str(exc.value)
    assert "indexed" not in capsys.readouterr().err  # nothing was indexed or tuned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_tune_checks_the_plot_folder_is_writable(
    beir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CLIError, match=r"cannot write the plot to /proc/nope/a\.png"):
        run(["tune", "--beir", str(beir), "--quiet", "--plot", "/proc/nope/a.png"])
    assert "indexed" not in capsys.readouterr().err


def test_tune_plot_needs_matplotlib_up_front(
    beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"langchain-fusion\[plot\]"):
        run(["tune", "--beir", str(beir), "--quiet", "--plot", str(tmp_path / "a.png")])
    assert "indexed" not in capsys.readouterr().err


def test_tune_prints_a_search_command(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "my idx"
    argv = ["tune", "--beir", str(beir), "--index", str(index_dir), "--methods", "zscore"]
    assert run([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("  or: "))[len("  or: ") :]
    words = shlex.split(line)
    assert words[:4] == ["langchain-fusion", "search", str(index_dir), "your query"]
    # the flags parse as the search command's and give the tuned settings
    args = build_parser().parse_args(words[1:])
    best = next(x for x in out.splitlines() if x.startswith("best: "))
    assert f"method={args.method!r}" in best and f"normalization={args.normalization!r}" in best
    assert f"alpha={args.alpha!r}" in best and f"fetch_k={args.fetch_k!r}" in best


def test_search_line_maps_settings_to_flags() -> None:
    from langchain_fusion.cli.evaluate import _search_line

    defaults = {"rrf_k": 60.0, "feedback_weight": 0.5}
    convex = {"method": "convex", "normalization": "dbsf", "alpha": 0.35, "fetch_k": 50}
    assert _search_line(convex, "idx", defaults) == (
        'langchain-fusion search idx "your query" --method convex --normalization dbsf '
        "--alpha 0.35 --fetch-k 50"
    )
    rrf = {"method": "rrf", "rrf_k": 20, "alpha": 0.5, "feedback_docs": 2}
    line = _search_line(rrf, None, defaults)
    assert line == (
        'langchain-fusion search INDEX "your query" --method rrf --rrf-k 20 --alpha 0.5 '
        "--feedback-docs 2"
    )
    args = build_parser().parse_args(["search", "INDEX", "q", *line.split()[5:]])
    assert (args.method, args.rrf_k, args.alpha, args.feedback_docs) == ("rrf", 20, 0.5, 2)
    note = _search_line({**rrf, "feedback_weight": 0.3333}, None, defaults)
    assert note == (
        "(no langchain-fusion search equivalent: feedback_weight=0.3333 is only "
        "available from Python; the command uses feedback_weight=0.5)"
    )


def test_eval_help_shows_the_default_methods(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default convex zscore dbsf rrf)" in help_text


def _varied_beir(root: Path) -> Path:
    """Documents of very different lengths with repeated words: BM25's k1 and b matter."""
    rng = np.random.default_rng(0)
    words = [w for topic in TOPICS for w in topic.split()]
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": f"d{i}", "text": " ".join(rng.choice(words[: 8 + i % 20], size=4 + (i * 7) % 40))}
        for i in range(60)
    ]
    queries = []
    for split, offset in (("train", 0), ("test", 30)):
        lines = ["query-id\tcorpus-id\tscore"]
        for j in range(30):
            text = corpus[offset + j]["text"].split()
            qid = f"{split}{j}"
            queries.append({"_id": qid, "text": " ".join(rng.choice(text, size=3))})
            lines.append(f"{qid}\td{offset + j}\t1")
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    return root


def test_tune_bm25_chooses_k1_b_and_reports_them_on_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = _varied_beir(tmp_path / "varied")
    argv = ["tune", "--beir", str(beir), "--bm25", "--quiet", "--top", "3"]
    # random vectors: the ranking is BM25's, so its parameters decide
    assert run(argv, embeddings=DeterministicFakeEmbedding(size=16)) == 0
    out = capsys.readouterr().out
    section = out.split("## BM25 k1 and b on varied train", 1)[1].split("## Tuning on", 1)[0]
    assert "| rank | k1 | b | method |" in section
    assert len([line for line in section.splitlines() if line.startswith("| ")]) == 8 + 1
    line = next(x for x in out.splitlines() if x.startswith("BM25: "))
    assert "(the index was built with k1=1.5, b=0.75)" in line
    chosen = line.split("BM25: ", 1)[1].split(" (", 1)[0]  # e.g. "k1=0.7, b=0.5"
    assert chosen != "k1=1.5, b=0.75"  # on this corpus another pair wins on train
    test_rows = out.split("## varied test", 1)[1]
    assert "| fusion defaults (convex minmax, alpha=0.5) |" in test_rows
    row = next(x for x in test_rows.splitlines() if x.startswith("| tuned on varied train + BM25"))
    assert chosen in row and 0.0 <= float(row.split("|")[2].strip("* ")) <= 1.0


def test_tune_bm25_keeps_the_built_pair_on_ties(
    beir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the tiny corpus every pair scores 1.0: nothing beats the index as built."""
    assert run(["tune", "--beir", str(beir), "--bm25", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "BM25: k1=1.5, b=0.75 (the index was built with k1=1.5, b=0.75)" in out
    assert "| tuned on tiny train |" in out and "+ BM25" not in out


# ------------------------------------------------------------------ fine-tune


@pytest.mark.slow
def test_fine_tune_writes_a_model_that_eval_uses(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "minilm"
    argv = ["fine-tune", "--beir", str(beir), "--out", str(out), "--epochs", "1"]
    assert main([*argv, "--batch-size", "4", "--max-pairs-per-query", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "fine-tuning on 12 (query, passage) pairs of tiny train" in captured.err
    assert "1 epoch(s), 3 steps" in captured.err
    assert f"wrote the fine-tuned model to {out}" in captured.out
    assert f"--model {out}" in captured.out
    assert (out / "config.json").is_file()
    # the model is usable by the other commands
    assert main(["eval", "--beir", str(beir), "--model", str(out), "--quiet"]) == 0
    assert "| dense only (alpha=1)" in capsys.readouterr().out
    # a second run needs --overwrite
    assert main(argv) == 1
    assert "exists and is not empty; choose a new --out or add --overwrite" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_fine_tune_takes_the_documents_of_a_saved_index(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    assert main(["eval", "--beir", str(beir), "--index", str(index), "--quiet"]) == 0
    labels = ["--queries", str(beir / "queries.jsonl"), "--qrels", str(beir / "qrels/test.tsv")]
    out = tmp_path / "minilm"
    argv = ["fine-tune", "--index", str(index), *labels, "--out", str(out), "--epochs", "1"]
    capsys.readouterr()
    assert main([*argv, "--batch-size", "6", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "fine-tuning on 12 (query, passage) pairs of queries.jsonl + test.tsv" in err
    assert "40 documents" in err and "2 steps" in err
    assert (out / "config.json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --beir PATH"),
        (["--queries", "q.jsonl"], "--queries needs --qrels"),
        (["--beir", "{beir}", "--model", "{tmp}"], "is not a sentence-transformers model"),
        (["--beir", "{beir}", "--split", "dev"], "qrels"),
        (["--beir", "{other}"], "12 documents judged relevant in other train are not in"),
        (["--beir", "{beir}", "--folds", "13"], "--folds 13 needs at least 13 judged queries"),
        (["--beir", "{beir}", "--folds", "2", "--out", "{full}"], "--folds: "),
    ],
)
def test_fine_tune_errors_are_one_line_and_come_first(
    beir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    other = make_beir(tmp_path / "other", prefix="x")
    (other / "qrels" / "train.tsv").write_text(
        (beir / "qrels" / "train.tsv").read_text()  # labels of the first corpus
    )
    (other / "queries.jsonl").write_text((beir / "queries.jsonl").read_text())
    (tmp_path / "full.folds" / "fold-0").mkdir(parents=True)  # an earlier run's fold models
    full = str(tmp_path / "full")
    fill = {"{beir}": str(beir), "{tmp}": str(tmp_path), "{other}": str(other), "{full}": full}
    argv = ["fine-tune", "--out", str(tmp_path / "model"), *[fill.get(a, a) for a in extra]]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()  # nothing written


@pytest.mark.slow
def test_fine_tune_folds_then_tune_cross_fitted(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_fusion.dense import fine_tuning_record

    out = tmp_path / "minilm"
    small = ["--epochs", "1", "--batch-size", "4", "--max-pairs-per-query", "1", "--quiet"]
    assert main(["fine-tune", "--beir", str(beir), "--out", str(out), "--folds", "2", *small]) == 0
    captured = capsys.readouterr()
    assert "then 2 fold models of about 50% of it each" in captured.err
    assert f"--cross-fit {tmp_path / 'minilm.folds'}" in captured.out
    train = {f"train{j}" for j in range(12)}
    records = [fine_tuning_record(tmp_path / "minilm.folds" / f"fold-{i}") for i in range(2)]
    left_out = [train - set(r["query_ids"]) for r in records if r is not None]
    assert len(left_out) == 2 and left_out[0] | left_out[1] == train
    assert not left_out[0] & left_out[1] and all(left_out)

    tune = ["tune", "--beir", str(beir), "--model", str(out), "--methods", "minmax", "--quiet"]
    assert main(tune) == 0  # in-sample: warned
    assert "warning: the dense model" in capsys.readouterr().err
    assert main([*tune, "--bm25", "--cross-fit", str(tmp_path / "minilm.folds")]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert "indexing with fold model 2/2 (fold-1)" in captured.err
    assert "## BM25 k1 and b on tiny train" in captured.out and "| tuned on tiny train" in (
        captured.out
    )


def test_cross_fit_folders_are_checked_before_indexing(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folds = tmp_path / "folds"
    folds.mkdir()
    argv = ["tune", "--beir", str(beir), "--cross-fit", str(folds), "--index", str(tmp_path / "i")]
    assert main(argv) == 1
    assert "must hold at least two fold models written by" in capsys.readouterr().err
    for i in range(2):  # two "fold models" that both saw every train query
        (folds / f"fold-{i}").mkdir()
        (folds / f"fold-{i}" / "config.json").write_text("{}")
        ids = [f"train{j}" for j in range(12)]
        (folds / f"fold-{i}" / "fine_tuning.json").write_text(json.dumps({"query_ids": ids}))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "train query 'train0' of tiny train was left out by 0 of the 2 fold models" in err
    assert not (tmp_path / "i").exists()  # nothing was indexed
