"""``HybridIndex.save`` and ``HybridIndex.load`` (a mixin, split out of ``index.py``).

The directory format, its atomic swap and its checks are those of
[`langchain_fusion.persistence`][]; the files are written and read by the index's
[`Collection`][langchain_fusion.collection.Collection].
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from langchain_fusion.collection import Collection
from langchain_fusion.embedding_checks import embedding_identity
from langchain_fusion.index_input import check_bool
from langchain_fusion.persistence import IndexSnapshot, Verify, load_consistent

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["IndexPersistence"]


class IndexPersistence:
    """The ``save``/``load`` methods of ``HybridIndex`` (a mixin; see that class)."""

    _collection: Collection
    _embedding: Embeddings
    batch_size: int

    @classmethod
    def _from_snapshot(
        cls, snapshot: IndexSnapshot, embedding: Embeddings | None, *, mmap: bool
    ) -> Self:
        raise NotImplementedError

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Save the index into a directory, atomically and without pickle.

        Layout: ``manifest.json`` (format, version, parameters, embedding identity, XXH3-128
        checksum of every file), ``docstore/`` (JSON Lines), ``bm25/`` and ``dense/`` (``.npy``
        arrays and FAISS's own index format). The new directory is written beside ``path`` and
        swapped in only when complete (see [`langchain_fusion.persistence`][]), so a failure or
        crash leaves the previous index at ``path`` loadable. Searches continue during the save;
        writes wait.

        Args:
            path: The directory. An existing index there is replaced; an existing non-empty
                directory that is not an index is refused.
            overwrite: ``False`` refuses to replace anything.

        Returns:
            The absolute path written.

        Raises:
            ValueError: A metadata value that JSON cannot represent (the message names the
                document id and key); nothing is written.
            FileExistsError: ``path`` is a file or a foreign directory (or exists while
                ``overwrite=False``).
            OSError: The filesystem failed (read-only, disk full); the previous index is intact.

        Example:
            >>> import tempfile
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["red apples", "green pears"], emb, ids=["1", "2"])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     _ = index.save(f"{tmp}/index")
            ...     loaded = HybridIndex.load(f"{tmp}/index", emb)
            ...     loaded.search_keyword("pears", k=1)[0]
            ['2']

        """
        overwrite = check_bool(overwrite, "overwrite")
        self._collection.identity = embedding_identity(self._embedding)
        return self._collection.save(
            path, overwrite=overwrite, extra=lambda: {"batch_size": self.batch_size}
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        embedding: Embeddings | None = None,
        *,
        mmap: bool = True,
        verify: Verify = "full",
    ) -> Self:
        """Open an index saved by [`save`][].

        Everything is checked before any data file is parsed: the format name and version, and
        every file's size and checksum against the manifest (XXH3-128; SHA-256 for indexes saved
        in format version 1). Nothing is unpickled or executed. If ``path`` is missing because a
        save was interrupted between its two renames, the previous version is recovered (with a
        warning).

        Args:
            path: The index directory.
            embedding: The model the index was built with. ``None`` works for indexes built
                with the default local model; otherwise pass the same model (its dimension and,
                when both are known, model name are checked). The model is not called here.
            mmap: Memory-map the large arrays and the document texts (opening is fast and
                memory is shared with the page cache); ``False`` reads everything into memory.
                Either way the loaded index accepts adds and deletes; files are never modified.
            verify: ``"full"`` (default) checksums every byte (XXH3-128, files hashed in
                parallel: the load of a 1M-chunk, 2.4 GB index takes 0.28 s on 2 cores with a
                warm page cache); ``"size"`` only checks file sizes (0.11 s for the same
                index), for large indexes on trusted storage.

        Raises:
            FileNotFoundError: No index at ``path``.
            ValueError: Not a langchain-fusion index, an unsupported format version, or an
                embedding that does not match the saved one.
            CorruptIndexError: A truncated, modified or missing file (named in the message).

        Example:
            >>> import tempfile
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_fusion import HybridIndex
            >>> index = HybridIndex.from_texts(["x"], DeterministicFakeEmbedding(size=8))
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     _ = index.save(tmp)
            ...     HybridIndex.load(tmp, DeterministicFakeEmbedding(size=4))
            Traceback (most recent call last):
            ...
            ValueError: embedding dimension mismatch: the index holds 8-dimensional vectors from DeterministicFakeEmbedding, but the embedding passed (DeterministicFakeEmbedding) produces 4-dimensional vectors

        """  # noqa: E501
        mmap = check_bool(mmap, "mmap")

        build = functools.partial(cls._from_snapshot, embedding=embedding, mmap=mmap)
        return load_consistent(path, build, verify=verify)
