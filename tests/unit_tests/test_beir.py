from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from langchain_fusion.evaluation.beir import (
    BeirDataset,
    available_splits,
    load_beir,
    load_corpus,
    load_qrels,
    load_queries,
)

DATA_DIR = Path(
    os.environ.get(
        "LANGCHAIN_FUSION_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
BEIR_DIR = DATA_DIR / "beir"

CORPUS: list[dict[str, Any]] = [
    {"_id": "d1", "title": "Cats", "text": "Cats purr when content."},
    {"_id": "d2", "title": "", "text": "Dogs bark at strangers."},
    {"_id": "d3", "text": "No title field at all."},
]
QUERIES: list[dict[str, Any]] = [
    {"_id": "q1", "text": "why do cats purr", "metadata": {}},
    {"_id": "q2", "text": "barking dogs"},
    {"_id": "q3", "text": "never judged"},
]
QRELS = {
    "test": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\n",
    "train": "query-id\tcorpus-id\tscore\nq3\td3\t1\n",
}


def _jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    root = tmp_path / "toy"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(_jsonl(CORPUS), encoding="utf-8")
    (root / "queries.jsonl").write_text(_jsonl(QUERIES), encoding="utf-8")
    for split, text in QRELS.items():
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


# --------------------------------------------------------------------------------------------------
# Happy paths
# --------------------------------------------------------------------------------------------------


def test_load_beir_toy(toy: Path) -> None:
    ds = load_beir(toy)
    assert isinstance(ds, BeirDataset)
    assert ds.name == "toy" and ds.split == "test"
    assert [d.id for d in ds.corpus] == ["d1", "d2", "d3"]
    assert ds.corpus[0].page_content == "Cats\nCats purr when content."
    assert ds.corpus[0].metadata == {"_id": "d1", "title": "Cats"}
    assert ds.corpus[1].page_content == "Dogs bark at strangers."  # empty title: text only
    assert ds.corpus[2].metadata == {"_id": "d3", "title": ""}
    assert ds.queries == {"q1": "why do cats purr", "q2": "barking dogs"}  # judged in test only
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}
    assert "corpus=3 documents" in repr(ds) and "qrels=3 judgments" in repr(ds)


def test_load_beir_other_split(toy: Path) -> None:
    ds = load_beir(str(toy), split="train")
    assert ds.queries == {"q3": "never judged"}
    assert ds.qrels == {"q3": {"d3": 1}}


def test_separate_loaders_accept_folder_or_file(toy: Path) -> None:
    assert load_queries(toy) == load_queries(toy / "queries.jsonl")
    assert len(load_queries(toy)) == 3  # all queries, not only judged ones
    assert [d.id for d in load_corpus(toy / "corpus.jsonl")] == ["d1", "d2", "d3"]
    assert load_qrels(toy, "train") == load_qrels(toy / "qrels" / "train.tsv") == {"q3": {"d3": 1}}
    assert available_splits(toy) == ["test", "train"]


def test_blank_lines_and_crlf_are_tolerated(toy: Path) -> None:
    (toy / "queries.jsonl").write_text(_jsonl(QUERIES[:1]) + "\n\n" + _jsonl(QUERIES[1:]))
    (toy / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n\r\n")
    assert list(load_queries(toy)) == ["q1", "q2", "q3"]
    assert load_qrels(toy) == {"q1": {"d1": 1}}


def test_qrels_without_header_and_with_spaces(tmp_path: Path) -> None:
    file = tmp_path / "q.tsv"
    file.write_text("q1 d1 1\nq1 d2 0\n")
    assert load_qrels(file) == {"q1": {"d1": 1, "d2": 0}}


def test_duplicate_judgment_same_score_is_kept_once(tmp_path: Path) -> None:
    file = tmp_path / "q.tsv"
    file.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t1\n")
    assert load_qrels(file) == {"q1": {"d1": 1}}


def test_integer_ids_are_read_as_strings(tmp_path: Path) -> None:
    file = tmp_path / "corpus.jsonl"
    file.write_text('{"_id": 17, "title": "T", "text": "x"}\n')
    assert load_corpus(file)[0].id == "17"


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist; expected a folder with corpus"):
        load_beir(tmp_path / "nope")
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_beir(file)


def test_missing_member_files(toy: Path) -> None:
    (toy / "corpus.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"corpus\.jsonl not found in"):
        load_beir(toy)
    with pytest.raises(FileNotFoundError, match=r"corpus\.jsonl not found in"):
        load_corpus(toy)


def test_unknown_split_lists_available_ones(toy: Path) -> None:
    with pytest.raises(ValueError, match=r"split 'dev' not found .*available splits: test, train"):
        load_beir(toy, split="dev")
    with pytest.raises(ValueError, match="available splits: test, train"):
        load_qrels(toy, split="validation")


def test_broken_json_line_names_file_and_line(toy: Path) -> None:
    lines = _jsonl(QUERIES).splitlines()
    lines[1] = '{"_id": "q2", "text": '
    (toy / "queries.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"queries\.jsonl, line 2: invalid JSON"):
        load_beir(toy)


def test_non_object_json_line(toy: Path) -> None:
    (toy / "corpus.jsonl").write_text(_jsonl(CORPUS) + "[1, 2]\n")
    with pytest.raises(
        ValueError, match=r"corpus\.jsonl, line 4: expected a JSON object, got list"
    ):
        load_corpus(toy)


def test_missing_field_names_file_line_and_field(toy: Path) -> None:
    rows = [*CORPUS[:2], {"_id": "d3", "title": "T"}]
    (toy / "corpus.jsonl").write_text(_jsonl(rows))
    with pytest.raises(ValueError, match=r"corpus\.jsonl, line 3: missing field 'text'"):
        load_corpus(toy)
    (toy / "queries.jsonl").write_text(_jsonl([{"text": "no id"}]))
    with pytest.raises(ValueError, match=r"queries\.jsonl, line 1: missing field '_id'"):
        load_queries(toy)


def test_wrong_field_type(toy: Path) -> None:
    (toy / "corpus.jsonl").write_text(_jsonl([{"_id": "d1", "text": 5}]))
    with pytest.raises(ValueError, match=r"line 1: field 'text' must be a string, got int"):
        load_corpus(toy)
    (toy / "corpus.jsonl").write_text(_jsonl([{"_id": None, "text": "x"}]))
    with pytest.raises(ValueError, match=r"line 1: field '_id' must be a non-empty string"):
        load_corpus(toy)


def test_duplicate_ids(toy: Path) -> None:
    (toy / "corpus.jsonl").write_text(_jsonl([*CORPUS, CORPUS[0]]))
    with pytest.raises(ValueError, match=r"line 4: duplicate _id 'd1' \(first seen on line 1\)"):
        load_corpus(toy)


def test_qrels_wrong_number_of_columns(toy: Path) -> None:
    (toy / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\n")
    with pytest.raises(ValueError, match=r"test\.tsv, line 3: expected 3 columns .*got 2"):
        load_beir(toy)
    (toy / "qrels" / "test.tsv").write_text("q1\t0\td1\t1\n")  # TREC 4-column format
    with pytest.raises(ValueError, match=r"line 1: expected 3 columns"):
        load_qrels(toy)


def test_qrels_non_integer_score(toy: Path) -> None:
    (toy / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1.5\n")
    with pytest.raises(
        ValueError, match=r"test\.tsv, line 2: score must be an integer, got '1\.5'"
    ):
        load_qrels(toy)
    (toy / "qrels" / "test.tsv").write_text("q1\td1\t1\nq2\td2\thigh\n")
    with pytest.raises(ValueError, match=r"line 2: score must be an integer, got 'high'"):
        load_qrels(toy)
    (toy / "qrels" / "test.tsv").write_text("q1\td1\t0.5\n")  # a number on line 1 is no header
    with pytest.raises(ValueError, match=r"line 1: score must be an integer"):
        load_qrels(toy)


def test_qrels_conflicting_duplicate(toy: Path) -> None:
    (toy / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\td1\t2\n")
    with pytest.raises(ValueError, match=r"line 2: \('q1', 'd1'\) judged again with score 2"):
        load_qrels(toy)


def test_unknown_documents_and_queries_strict(toy: Path) -> None:
    rows = ["query-id\tcorpus-id\tscore", "q1\td1\t1"]
    rows += [f"q1\tghost{i}\t1" for i in range(7)] + ["q9\td1\t1"]
    (toy / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError) as info:
        load_beir(toy)
    message = str(info.value)
    assert "7 document id(s) not in corpus.jsonl ('ghost0', 'ghost1'" in message
    assert "..." in message  # only a few are listed
    assert "1 query id(s) not in queries.jsonl ('q9')" in message
    assert "strict=False" in message


def test_unknown_references_dropped_with_warning_when_not_strict(toy: Path) -> None:
    rows = ["q1\td1\t1", "q1\tghost\t1", "q2\tghost\t2", "q9\td1\t1"]
    (toy / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"dropped their judgments \(2 query\(s\) left without"):
        ds = load_beir(toy, strict=False)
    assert ds.qrels == {"q1": {"d1": 1}}
    assert ds.queries == {"q1": "why do cats purr"}


# --------------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_load_scifact_fast_and_complete() -> None:
    path = BEIR_DIR / "scifact"
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    start = time.perf_counter()
    ds = load_beir(path, split="test")
    seconds = time.perf_counter() - start
    assert len(ds.corpus) == 5183
    assert len(ds.queries) == 300
    assert sum(len(v) for v in ds.qrels.values()) == 339
    assert set(ds.queries) == set(ds.qrels)
    assert all(doc.id == doc.metadata["_id"] for doc in ds.corpus)
    assert seconds < 4.0, f"loading SciFact took {seconds:.2f} s"  # ~0.2 s on a quiet machine


@pytest.mark.data
def test_load_nfcorpus_dev_graded() -> None:
    path = BEIR_DIR / "nfcorpus"
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    ds = load_beir(path, split="dev")
    assert len(ds.corpus) == 3633
    assert len(ds.queries) == 324
    assert {score for docs in ds.qrels.values() for score in docs.values()} == {1, 2}
    assert available_splits(path) == ["dev", "train"]
