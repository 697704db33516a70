"""Ingestion: load PDFs, text and Markdown (files and folders), split them into chunks with ids.

The usual entry point is :func:`ingest`, which runs :func:`load_documents` then
:func:`split_documents`::

    from langchain_fusion.ingest import ingest

    result = ingest("docs/", chunk_size=600, chunk_overlap=150)
    print(result.summary())       # 12 files, 214 chunks; skipped 1: scan.pdf (no text layer ...)
    vectorstore.add_documents(result.chunks, ids=result.ids)  # upsert by stable id

Chunk ids depend only on the file path, the page and the chunk's position, so ingesting the same
files again gives the same ids: an index upserts instead of duplicating. The same file reached by
another path (copied or moved) gets other ids: :func:`find_copies` finds such files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.documents import Document

from langchain_fusion.ingest._load import (
    DEFAULT_MAX_PDF_PAGES,
    SUPPORTED_EXTENSIONS,
    LoadResult,
    PathInput,
    SkippedFile,
    load_documents,
    plural,
    skipped_tail,
)
from langchain_fusion.ingest._sample import (
    SAMPLE_FILE_NAME,
    SAMPLE_PDF_NAME,
    sample_path,
    sample_pdf_path,
    sample_questions,
    write_sample_pdf,
)
from langchain_fusion.ingest._split import (
    LENGTH_UNITS,
    SECTION_SEPARATOR,
    TOKEN_ENCODING,
    chunk_id,
    split_documents,
)

__all__ = [
    "DEFAULT_MAX_PDF_PAGES",
    "LENGTH_UNITS",
    "SAMPLE_FILE_NAME",
    "SAMPLE_PDF_NAME",
    "SECTION_SEPARATOR",
    "SUPPORTED_EXTENSIONS",
    "TOKEN_ENCODING",
    "IngestResult",
    "LoadResult",
    "SkippedFile",
    "chunk_id",
    "find_copies",
    "ingest",
    "load_documents",
    "sample_path",
    "sample_pdf_path",
    "sample_questions",
    "split_documents",
    "write_sample_pdf",
]


@dataclass
class IngestResult:
    """What :func:`ingest` produced.

    Attributes:
        chunks: The chunks to index, each with a stable ``id`` (see :func:`split_documents`).
        documents: The loaded documents the chunks come from (one per PDF page / text file).
        skipped: Files found but not loaded, with the reason.
        files: The files that were loaded.
        notes: Non-fatal remarks, e.g. PDF pages without text or a file decoded as cp1252.

    Example:
        >>> from langchain_core.documents import Document
        >>> from pathlib import Path
        >>> result = IngestResult(
        ...     chunks=[Document("a", id="x-c0"), Document("b", id="x-c1")],
        ...     documents=[Document("a b")],
        ...     skipped=[SkippedFile(Path("/d/old.docx"), "unsupported extension .docx")],
        ...     files=[Path("/d/a.txt")],
        ... )
        >>> result.summary()
        '1 file, 2 chunks; skipped 1: old.docx (unsupported extension .docx)'
        >>> result.ids
        ['x-c0', 'x-c1']

    """

    chunks: list[Document]
    documents: list[Document]
    skipped: list[SkippedFile]
    files: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """The chunk ids, in chunk order.

        Example:
            >>> IngestResult([Document("a", id="k-c0")], [], [], []).ids
            ['k-c0']

        """
        return [chunk.id or "" for chunk in self.chunks]

    @property
    def sources(self) -> list[str]:
        """``metadata["source"]`` of each loaded file (the absolute path as ``str``).

        Useful to find stale chunks: ids stored for these sources but absent from :attr:`ids`.

        Example:
            >>> IngestResult([], [], [], [Path("/d/a.txt")]).sources
            ['/d/a.txt']

        """
        return [str(path) for path in self.files]

    def summary(self) -> str:
        """One readable line, e.g. ``"12 files, 214 chunks; skipped 2: a.bin (binary file), ..."``.

        Example:
            >>> IngestResult([], [], [], []).summary()
            '0 files, 0 chunks'

        """
        head = f"{plural(len(self.files), 'file')}, {plural(len(self.chunks), 'chunk')}"
        return head + skipped_tail(self.skipped)


def find_copies(
    chunks: Iterable[Document], others: Iterable[Document] = ()
) -> list[tuple[str, str]]:
    """Find files whose content is already there under another path.

    Chunk ids depend on the file's absolute path, so the same PDF indexed from a second path
    (a copy, or the file moved) adds every chunk again, and a search shows both copies under one
    file name. Files are compared by ``metadata["file_sha256"]`` (written by :func:`ingest`).

    Args:
        chunks: The chunks about to be indexed.
        others: Documents already indexed (or any other collection).

    Returns:
        ``(source, copy_of)`` pairs, one per file of ``chunks`` whose content equals a file
        with another ``source`` in ``others`` or earlier in ``chunks``; sorted.

    Example:
        >>> from langchain_core.documents import Document
        >>> old = Document("x", metadata={"source": "/a/manual.pdf", "file_sha256": "f00"})
        >>> new = Document("x", metadata={"source": "/b/manual.pdf", "file_sha256": "f00"})
        >>> find_copies([new], [old])
        [('/b/manual.pdf', '/a/manual.pdf')]
        >>> find_copies([new], [new])
        []

    """
    first: dict[str, str] = {}  # content hash -> the first source seen with it
    for doc in others:
        sha, source = doc.metadata.get("file_sha256"), doc.metadata.get("source")
        if isinstance(sha, str) and isinstance(source, str):
            first.setdefault(sha, source)
    pairs: set[tuple[str, str]] = set()
    for doc in chunks:
        sha, source = doc.metadata.get("file_sha256"), doc.metadata.get("source")
        if not (isinstance(sha, str) and isinstance(source, str)):
            continue
        seen = first.setdefault(sha, source)
        if seen != source:
            pairs.add((source, seen))
    return sorted(pairs)


def ingest(
    paths: PathInput | Sequence[PathInput],
    *,
    chunk_size: int = 600,
    chunk_overlap: int = 150,
    length_unit: str = "chars",
    recursive: bool = True,
    glob: str | None = None,
    show_progress: bool = True,
    max_pdf_pages: int | None = DEFAULT_MAX_PDF_PAGES,
    max_seconds_per_file: float | None = None,
) -> IngestResult:
    """Load files or folders and split them into chunks ready to index.

    :func:`load_documents` followed by :func:`split_documents`; see those for the details
    (supported formats, skip reasons, metadata, chunk ids).

    Args:
        paths: A file or folder, or a sequence of them.
        chunk_size: Maximum chunk length in ``length_unit`` (>= 1).
        chunk_overlap: Target overlap between consecutive chunks (0 <= overlap < chunk_size).
        length_unit: ``"chars"`` or ``"tokens"`` (tiktoken ``cl100k_base``).
        recursive: Whether to descend into subfolders.
        glob: Only take folder files matching this pattern, e.g. ``"*.pdf"``.
        show_progress: Show a progress bar over files on stderr.
        max_pdf_pages: Skip a PDF with more pages (``None``: no limit).
        max_seconds_per_file: Skip a PDF whose text extraction takes longer (default: 30 s
            plus 60 s per MB of file).

    Returns:
        The chunks, documents, skipped files and loaded files, with :meth:`IngestResult.summary`.

    Raises:
        FileNotFoundError: If a path does not exist.
        ValueError: If nothing could be loaded, or a chunking parameter is out of range.

    Example:
        >>> result = ingest(sample_path(), show_progress=False)
        >>> result.summary()
        '1 file, 44 chunks'
        >>> chunk = next(c for c in result.chunks if "| E-217 |" in c.page_content)
        >>> chunk.metadata["section"]
        "Lumen-7 Home Battery: Owner's Manual > 7. Troubleshooting > 7.2 Error codes"
        >>> ingest(sample_path(), show_progress=False).ids == result.ids  # stable ids
        True

    """
    # Validate the chunking arguments before spending time on loading.
    split_documents([], chunk_size=chunk_size, chunk_overlap=chunk_overlap, length_unit=length_unit)
    loaded = load_documents(
        paths,
        recursive=recursive,
        glob=glob,
        show_progress=show_progress,
        max_pdf_pages=max_pdf_pages,
        max_seconds_per_file=max_seconds_per_file,
    )
    chunks = split_documents(
        loaded.documents,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_unit=length_unit,
    )
    return IngestResult(
        chunks=chunks,
        documents=loaded.documents,
        skipped=loaded.skipped,
        files=loaded.files,
        notes=loaded.notes,
    )
