"""Crash-safe, pickle-free index directories: a manifest with checksums and an atomic swap.

A saved index is one directory holding ``manifest.json`` and data files (JSON, ``.npy`` written
with ``allow_pickle=False``, FAISS's own index format). The manifest records the format name and
version, the package version, the creation time, the index parameters and the size and checksum
of every file. Loading checks all of it *before* any data file is parsed, so a foreign, newer,
truncated or modified directory is refused with a message naming the problem, and nothing in the
directory is ever executed or unpickled.

The checksum is XXH3-128 (format versions 2 and 3): it catches truncation, bit flips and edits
like any 128-bit hash, at about 11 GB/s per core against SHA-256's 1.5 (hashing 3.9 GB on 2
cores: 0.41 s against 1.61 s). It is an integrity check, not a signature: whoever can rewrite a
data file can rewrite the manifest too, whatever the hash, which is why loading never executes
anything it reads. Indexes saved in format version 1 (SHA-256) are still read and verified with
SHA-256.

Saving ([`atomic_save`][]) never modifies the previous directory in place:

1. everything is written into a fresh sibling ``<path>.tmp-<random>``, files and directories are
   fsynced, and the manifest is written last;
2. the new directory replaces ``<path>``. On Linux this is one atomic ``renameat2`` exchange, so
   at every instant ``<path>`` is either the complete old or the complete new index. Elsewhere
   (or on filesystems without ``RENAME_EXCHANGE``) it is two renames, ``<path>`` ->
   ``<path>.old-<random>`` then ``.tmp-*`` -> ``<path>``: a crash *between* those two renames
   leaves no ``<path>`` but a complete ``<path>.old-*``, and [`resolve_index_dir`][] (called by
   ``load``) renames it back;
3. the old copy is deleted.

Any error before the swap (disk full, read-only directory, a metadata value JSON cannot encode)
removes the temporary directory and leaves the previous index untouched and loadable. A process
killed while *writing* may leave a ``<path>.tmp-*`` directory behind (never mistaken for an
index: it has no manifest until it is complete); it is safe to delete.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import errno
import glob
import hashlib
import json
import mmap
import os
import secrets
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import xxhash

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "READABLE_FORMAT_VERSIONS",
    "CorruptIndexError",
    "Verify",
    "atomic_save",
    "file_sha256",
    "file_xxh3_128",
    "IndexSnapshot",
    "load_consistent",
    "read_manifest",
    "resolve_index_dir",
]

FORMAT_NAME = "langchain-fusion-index"
"""The ``format`` field of every manifest this package writes."""
FORMAT_VERSION = 3
"""The manifest format version this package writes (it also reads versions 1 and 2)."""
READABLE_FORMAT_VERSIONS = (1, 2, 3)
"""The manifest format versions this package reads: 1 (SHA-256 checksums), 2 (XXH3-128) and 3
(XXH3-128; the BM25 tokenizer records its Unicode normalization, which versions reading only
1 and 2 would not know, so they refuse it with their "upgrade" message)."""
MANIFEST_FILE = "manifest.json"
"""Name of the manifest inside an index directory."""

Verify = Literal["full", "size"]
"""How [`read_manifest`][] checks the data files: a checksum of every byte, or sizes only."""

_HASH_BLOCK = 8 << 20  # 8 MiB
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100

_LOAD_ATTEMPTS = 50
_MAX_MANIFEST_BYTES = 256 << 20  # a manifest is a few KB per thousand files

T = TypeVar("T")

_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


class CorruptIndexError(ValueError):
    """An index directory whose files do not match its manifest (truncated, modified, missing).

    Example:
        >>> isinstance(CorruptIndexError("texts.jsonl is truncated"), ValueError)
        True

    """


# ---------------------------------------------------------------------------------- checksums


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (the checksum of format version 1), read in 8 MiB blocks via ``mmap``.

    ``hashlib`` releases the GIL while hashing, so several files hash in parallel threads.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = os.path.join(tmp, "f")
        ...     _ = open(p, "wb").write(b"abc")
        ...     file_sha256(p)[:16]
        'ba7816bf8f01cfea'

    """
    return _file_digest(path, hashlib.sha256())


def file_xxh3_128(path: str | Path) -> str:
    """XXH3-128 of a file (the checksum this package writes), read in 8 MiB blocks via ``mmap``.

    ``xxhash`` releases the GIL while hashing, so several files hash in parallel threads.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = os.path.join(tmp, "f")
        ...     _ = open(p, "wb").write(b"abc")
        ...     file_xxh3_128(p)
        '06b05ab6733a618578af5f94892f3950'

    """
    return _file_digest(path, xxhash.xxh3_128())


class _Digest(Protocol):
    def update(self, data: memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


def _file_digest(path: str | Path, digest: _Digest) -> str:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size:
            with (
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
                memoryview(mapped) as view,
            ):
                for start in range(0, size, _HASH_BLOCK):
                    digest.update(view[start : start + _HASH_BLOCK])
    return digest.hexdigest()


def _data_files(directory: Path) -> list[str]:
    """Relative POSIX paths of every file under ``directory`` except the manifest."""
    out = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            rel = Path(root, name).relative_to(directory).as_posix()
            if rel != MANIFEST_FILE:
                out.append(rel)
    return sorted(out)


class _Checksum(NamedTuple):
    key: str  # the field of each manifest "files" entry
    label: str  # for error messages
    of_file: Callable[[str | Path], str]


# The checksum each manifest format version records for every file.
_CHECKSUM_OF_VERSION = {
    1: _Checksum("sha256", "SHA-256", file_sha256),
    2: _Checksum("xxh3_128", "XXH3-128", file_xxh3_128),
    3: _Checksum("xxh3_128", "XXH3-128", file_xxh3_128),
}


def _parallel_checksums(directory: Path, rels: list[str], checksum: _Checksum) -> dict[str, str]:
    if not rels:
        return {}
    by_size = sorted(rels, key=lambda r: -(directory / r).stat().st_size)
    workers = max(1, min(len(rels), os.cpu_count() or 1, 8))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = pool.map(lambda r: checksum.of_file(directory / r), by_size)
        return dict(zip(by_size, digests, strict=True))


# ---------------------------------------------------------------------------------- fsync


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if directory:  # Windows cannot open directories; nothing to sync there
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for root, dirs, files in os.walk(directory):
        for name in files:
            _fsync_path(Path(root, name))
        for name in dirs:
            _fsync_path(Path(root, name), directory=True)
    _fsync_path(directory, directory=True)


# ---------------------------------------------------------------------------------- swap


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot swap {str(a)!r} and {str(b)!r}: {os.strerror(err)}")


def _sibling(target: Path, kind: str) -> Path:
    return target.with_name(f"{target.name}.{kind}-{secrets.token_hex(4)}")


def _swap_into_place(tmp: Path, target: Path) -> Path | None:
    """Put ``tmp`` at ``target``; return the directory holding the previous index, if any."""
    parent = target.parent
    if not os.path.lexists(target):
        os.rename(tmp, target)
        _fsync_path(parent, directory=True)
        return None
    if _exchange(tmp, target):  # now ``tmp`` holds the previous index
        _fsync_path(parent, directory=True)
        return tmp
    old = _sibling(target, "old")
    os.rename(target, old)
    # Crash window: from here until the next rename there is no ``target``, only ``old`` (the
    # complete previous index) and ``tmp`` (the complete new one); resolve_index_dir recovers.
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    _fsync_path(parent, directory=True)
    return old


@contextlib.contextmanager
def _path_lock(target: Path) -> Iterator[None]:
    key = os.path.normcase(str(target))
    with _path_locks_guard:
        lock = _path_locks.setdefault(key, threading.Lock())
    with lock:
        yield


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("langchain-fusion")
    except PackageNotFoundError:
        return str(getattr(sys.modules.get("langchain_fusion"), "__version__", "unknown"))


def _is_index_dir(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_NAME


def _check_target(target: Path, *, overwrite: bool) -> None:
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise FileExistsError(
            f"cannot save the index to {str(target)!r}: it exists and is not a directory"
        )
    if not overwrite:
        raise FileExistsError(
            f"cannot save the index to {str(target)!r}: it already exists (pass overwrite=True "
            "to replace it)"
        )
    if any(target.iterdir()) and not _is_index_dir(target):
        raise FileExistsError(
            f"cannot save the index to {str(target)!r}: the directory is not empty and is not a "
            "langchain-fusion index, so it will not be replaced; choose a new or empty directory"
        )


def _make_tmp_dir(target: Path) -> Path:
    while True:
        tmp = _sibling(target, "tmp")
        try:
            os.mkdir(tmp)  # mode 0o777 minus the umask, like any directory the user creates
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(
                exc.errno,
                f"cannot save the index to {str(target)!r}: cannot create a directory in "
                f"{str(target.parent)!r} ({exc.strerror}); the parent directory must be "
                "writable",
            ) from exc


def atomic_save(
    path: str | Path,
    write: Callable[[Path], Mapping[str, Any]],
    *,
    overwrite: bool = True,
) -> Path:
    """Write an index directory atomically: all of the new one, or the previous one untouched.

    Args:
        path: The index directory. Its parent is created if missing. An existing directory is
            replaced only if it is empty or a langchain-fusion index.
        write: Called with an empty temporary directory to fill with the data files; returns
            the JSON-serialisable description of the index stored in the manifest as
            ``parameters`` (returned by ``write`` so that it describes exactly what was written).
        overwrite: Replace an existing index at ``path`` (default). ``False`` raises instead.

    Returns:
        The absolute path of the saved directory.

    Raises:
        FileExistsError: ``path`` is a file, a non-empty directory that is not an index, or an
            index while ``overwrite=False``.
        OSError: The filesystem failed (read-only, disk full...); the previous index is intact.

    Example:
        >>> import tempfile
        >>> def write(tmp):
        ...     _ = (tmp / "data.json").write_text("[1, 2]")
        ...     return {"n": 2}
        >>> with tempfile.TemporaryDirectory() as root:
        ...     saved = atomic_save(f"{root}/index", write)
        ...     sorted(p.name for p in saved.iterdir())
        ['data.json', 'manifest.json']

    """
    target = Path(os.path.abspath(path))
    _check_target(target, overwrite=overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(
            exc.errno,
            f"cannot save the index to {str(target)!r}: cannot create its parent directory "
            f"({exc.strerror})",
        ) from exc
    with _path_lock(target):
        _check_target(target, overwrite=overwrite)
        tmp = _make_tmp_dir(target)
        try:
            parameters = write(tmp)
            rels = _data_files(tmp)
            checksum = _CHECKSUM_OF_VERSION[FORMAT_VERSION]
            digests = _parallel_checksums(tmp, rels, checksum)
            manifest = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "package_version": _package_version(),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "parameters": dict(parameters),
                "files": {
                    rel: {"size": (tmp / rel).stat().st_size, checksum.key: digests[rel]}
                    for rel in rels
                },
            }
            _fsync_tree(tmp)  # data first, then the manifest that vouches for it
            with open(tmp / MANIFEST_FILE, "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=2, ensure_ascii=False)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            _fsync_path(tmp, directory=True)
            previous = _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        for stale in target.parent.glob(f"{glob.escape(target.name)}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by an earlier interrupted save
    return target


# ---------------------------------------------------------------------------------- loading


def resolve_index_dir(path: str | Path, *, stacklevel: int = 3) -> Path:
    """Return ``path``, recovering it first from an interrupted save if it is missing.

    If ``path`` does not exist but a complete ``<path>.old-*`` left by a save interrupted
    between its two renames does, that directory is renamed back to ``path`` (or, when that is
    impossible, e.g. on a read-only filesystem, used where it is) and a warning is issued.

    Raises:
        FileNotFoundError: Neither ``path`` nor a recoverable copy exists.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as root:
        ...     resolve_index_dir(root) == Path(root)
        True

    """
    target = Path(path)
    if os.path.lexists(target):
        return target
    candidates = [
        p
        for p in target.parent.glob(f"{glob.escape(target.name)}.old-*")
        if p.is_dir() and _is_index_dir(p)
    ]
    if not candidates:
        raise FileNotFoundError(f"no index at {str(target)!r}: the directory does not exist")
    best = max(candidates, key=lambda p: (p / MANIFEST_FILE).stat().st_mtime)
    try:
        os.rename(best, target)
        found = target
    except OSError:
        found = best
    warnings.warn(
        f"the index at {str(target)!r} was missing after an interrupted save; recovered the "
        f"previous version from {best.name!r}",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
    return found


def _not_an_index(directory: Path, why: str) -> ValueError:
    return ValueError(f"not a langchain-fusion index: {str(directory)!r} {why}")


def read_manifest(
    path: str | Path, *, verify: Verify = "full", display: str | Path | None = None
) -> dict[str, Any]:
    """Read and check an index directory's manifest and files, before any data file is parsed.

    Args:
        path: The index directory.
        verify: ``"full"`` (default) checks the size and checksum of every file (XXH3-128;
            SHA-256 for format version 1), catching any truncation, bit flip or edit;
            ``"size"`` checks only that every file exists with the recorded size (catches
            truncation and partial copies, not in-place edits), which skips reading the data
            and suits large, trusted indexes.
        display: The directory named in messages (default ``path``; [`load_consistent`][]
            reads through a handle on the directory and names the user's path).

    Returns:
        The manifest (``format``, ``format_version``, ``package_version``, ``created``,
        ``parameters``, ``files``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a langchain-fusion index, or a format version this package cannot read.
        CorruptIndexError: The manifest is damaged, or a file is missing, or its size or
            checksum differs from the manifest (the message names the file).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as root:
        ...     read_manifest(root)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: not a langchain-fusion index: '...' has no manifest.json

    """
    if verify not in ("full", "size"):
        raise ValueError(f"verify must be 'full' or 'size', got {verify!r}")
    directory = Path(path)
    shown = Path(display) if display is not None else directory
    if not directory.exists():
        raise FileNotFoundError(f"no index at {str(shown)!r}: the directory does not exist")
    if not directory.is_dir():
        raise _not_an_index(shown, "is not a directory")
    manifest_path = directory / MANIFEST_FILE
    manifest_name = str(shown / MANIFEST_FILE)
    if not manifest_path.is_file():
        raise _not_an_index(shown, f"has no {MANIFEST_FILE}")
    manifest = _parse_manifest(manifest_path, shown)
    if manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format")
        raise _not_an_index(
            shown, f"has a {MANIFEST_FILE} with format {found!r}, expected {FORMAT_NAME!r}"
        )
    version = manifest.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
        hint = (
            "; upgrade langchain-fusion to read it"
            if isinstance(version, int) and version > FORMAT_VERSION
            else ""
        )
        *rest, last = map(str, READABLE_FORMAT_VERSIONS)
        readable = f"{', '.join(rest)} and {last}" if rest else last
        raise ValueError(
            f"{manifest_name!r} is a langchain-fusion index manifest in format version "
            f"{version!r}, written by langchain-fusion "
            f"{str(manifest.get('package_version', 'unknown'))[:40]}; this version "
            f"({_package_version()}) reads format versions {readable}{hint}"
        )
    checksum = _CHECKSUM_OF_VERSION[version]
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("parameters"), dict):
        raise CorruptIndexError(
            f"{manifest_name!r} is damaged: it lacks the 'files' or 'parameters' table"
        )
    to_hash = []
    for rel, entry in files.items():
        pure = Path(rel)
        if (
            not rel
            or pure.is_absolute()
            or ".." in pure.parts
            or rel == MANIFEST_FILE
            or not isinstance(entry, dict)
        ):
            raise CorruptIndexError(f"{manifest_name!r} is damaged: bad entry {rel!r:.80}")
        recorded = entry.get("size")
        digest = entry.get(checksum.key)
        if isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < 0:
            raise CorruptIndexError(
                f"{manifest_name!r} is damaged: the size of {rel!r:.80} is {recorded!r:.40}"
            )
        if not isinstance(digest, str):
            other = [c.label for c in _CHECKSUM_OF_VERSION.values() if c.key in entry]
            raise CorruptIndexError(
                f"{manifest_name!r} is damaged: it records format version {version} "
                f"({checksum.label} checksums) but {rel!r:.80} has "
                + (f"a {other[0]} checksum" if other else "no checksum")
            )
        file = directory / rel
        if not file.is_file():
            raise CorruptIndexError(
                f"{rel} is missing from the index at {str(shown)!r} ({MANIFEST_FILE} lists it)"
            )
        size = file.stat().st_size
        if size != recorded:
            raise CorruptIndexError(
                f"{rel} in the index at {str(shown)!r} has {size} bytes, the manifest "
                f"records {recorded}: the file (or its entry in {MANIFEST_FILE}) is truncated or "
                "was modified"
            )
        to_hash.append(rel)
    if verify == "full":
        digests = _parallel_checksums(directory, to_hash, checksum)
        for rel in to_hash:
            if digests[rel] != files[rel].get(checksum.key):
                raise CorruptIndexError(
                    f"{rel} in the index at {str(shown)!r} does not match its {checksum.label} "
                    f"checksum in the manifest: the file (or its entry in {MANIFEST_FILE}) is "
                    "corrupted or was modified"
                )
    return manifest


def _parse_manifest(manifest_path: Path, shown: Path) -> dict[str, Any]:
    """Parse ``manifest.json``; anything malformed is a `CorruptIndexError` naming it."""
    name = str(shown / MANIFEST_FILE)
    with open(manifest_path, "rb") as f:
        raw = f.read(_MAX_MANIFEST_BYTES + 1)
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise CorruptIndexError(f"{name!r} is damaged: larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptIndexError(
            f"not a langchain-fusion index: {str(shown)!r} has a {MANIFEST_FILE} that is not "
            f"valid JSON ({name} is damaged: {exc})"
        ) from exc
    except (RecursionError, ValueError, OverflowError, MemoryError) as exc:
        # nesting deeper than the interpreter's limit, integers too long to convert...
        raise CorruptIndexError(
            f"{name!r} is damaged: it cannot be parsed ({type(exc).__name__})"
        ) from exc
    if not isinstance(manifest, dict):
        raise _not_an_index(
            shown, f"has a {MANIFEST_FILE} that is a JSON {type(manifest).__name__}, not an object"
        )
    return manifest


@dataclass
class IndexSnapshot:
    """One version of a saved index, opened for reading (see [`load_consistent`][]).

    ``root`` reaches the files of the directory that was opened (on Linux a handle on that
    directory, ``/proc/self/fd/N``, which keeps naming the same version even after a
    concurrent save swaps a new one in at the path); ``path`` is the user's path, for
    messages; ``manifest`` was verified against the files under ``root``.

    Example:
        >>> snap = IndexSnapshot(Path("/x"), Path("/x"), {})
        >>> snap.display("dense/")
        "'/x/dense/'"

    """

    root: Path
    path: Path
    manifest: dict[str, Any]
    manifest_file: str = MANIFEST_FILE

    def display(self, rel: str | None = None) -> str:
        """Return the user's path (of the directory, or of ``rel`` inside it), quoted."""
        return repr(str(self.path) if rel is None else f"{self.path}/{rel}")

    def clean(self, message: str) -> str:
        """Return ``message`` with the handle path replaced by the user's path."""
        if self.root == self.path:
            return message
        return message.replace(str(self.root), str(self.path))


def _directory_handle(directory: Path) -> tuple[int | None, Path]:
    """Open ``directory`` and return ``(fd, root)`` reaching its files through the handle."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/fd"):
        return None, directory
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(directory, flags)
    root = Path(f"/proc/self/fd/{fd}")
    if not (root / ".").is_dir():  # /proc without magic links (some sandboxes)
        os.close(fd)
        return None, directory
    return fd, root


def _identity_of(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def load_consistent(
    path: str | Path,
    build: Callable[[IndexSnapshot], T],
    *,
    verify: Verify = "full",
) -> T:
    """Verify and read one saved version of an index, even while another process saves.

    The directory at ``path`` is opened once; the manifest is checked against the files of
    *that* directory and ``build`` reads them through the same handle, so all parts come from
    one version. A save that swaps a new version in meanwhile cannot mix versions; if it
    deletes the version being read before its files were opened, the error is recognised (the
    directory at ``path`` is no longer the one opened) and the load starts again on the new
    version. Only an error from a version that is still in place is raised.

    Args:
        path: The index directory (recovered first if an interrupted save left it missing).
        build: Reads the index from the snapshot (inside the handle's lifetime).
        verify: As in [`read_manifest`][].

    Returns:
        What ``build`` returned.

    Example:
        >>> import tempfile
        >>> def write(tmp):
        ...     _ = (tmp / "data.txt").write_text("hello")
        ...     return {"n": 1}
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = atomic_save(f"{root}/index", write)
        ...     load_consistent(f"{root}/index", lambda s: (s.root / "data.txt").read_text())
        'hello'

    """
    last: BaseException | None = None
    for attempt in range(_LOAD_ATTEMPTS):
        directory = resolve_index_dir(path, stacklevel=4)  # the caller of load
        try:
            fd, root = _directory_handle(directory)
        except FileNotFoundError as exc:  # swapped away between resolve and open
            last = exc
            time.sleep(0.001 * attempt)
            continue
        try:
            opened = os.fstat(fd) if fd is not None else os.stat(directory)
            snapshot = IndexSnapshot(root, directory, {})
            try:
                snapshot.manifest = read_manifest(root, verify=verify, display=directory)
                return build(snapshot)
            except (ValueError, OSError) as exc:
                if _identity_of(directory) == (opened.st_dev, opened.st_ino):
                    raise  # the version read is still in place: a genuine error
                last = exc  # replaced by a concurrent save while reading: read the new one
        finally:
            if fd is not None:
                os.close(fd)
        time.sleep(0.001 * attempt)
    assert last is not None
    raise last
