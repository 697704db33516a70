"""The chunker is LangChain's RecursiveCharacterTextSplitter with exact offsets, in bounded memory.

`split_documents` must give exactly the chunks of ``langchain_text_splitters`` (same separators,
``keep_separator="end"``, stripped) for text without sections, with ``start_index`` pointing at
the chunk in the document; and a long run without separators (no whitespace, a base64 image in
Markdown) must not cost memory per character.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import tracemalloc
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from langchain_fusion.ingest import sample_path, split_documents
from langchain_fusion.ingest._split import _patterns, _RecursiveSplitter, _token_length

DATA = Path(
    os.environ.get(
        "LANGCHAIN_FUSION_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
DOCS = Path(__file__).resolve().parents[2] / "docs"
SETTINGS = [("chars", 600, 150), ("chars", 200, 40), ("chars", 1000, 0), ("tokens", 128, 32)]


def library_chunks(text: str, unit: str, size: int, overlap: int, file_type: str | None) -> list:
    return RecursiveCharacterTextSplitter(
        separators=_patterns(None, file_type),
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=len if unit == "chars" else _token_length(),
    ).split_text(text)


def assert_same_as_library(
    texts: list[str], unit: str, size: int, overlap: int, file_type: str | None = None
) -> int:
    length = len if unit == "chars" else _token_length()
    for n, text in enumerate(texts):
        spans = _RecursiveSplitter(text, _patterns(None, file_type), size, overlap, length).split()
        expected = library_chunks(text, unit, size, overlap, file_type)
        assert [text[s:e] for s, e in spans] == expected, (n, unit, size, overlap)
        doc = Document(text, metadata={"source": f"/t/{n}", "file_type": file_type})
        chunks = split_documents([doc], chunk_size=size, chunk_overlap=overlap, length_unit=unit)
        for chunk in chunks:
            start = chunk.metadata["start_index"]
            assert text[start : start + len(chunk.page_content)] == chunk.page_content
    return len(texts)


def peak_bytes(text: str, file_type: str | None) -> tuple[int, int]:
    doc = Document(text, metadata={"source": "/t/big", "file_type": file_type})
    tracemalloc.start()
    try:
        chunks = split_documents([doc], chunk_size=600, chunk_overlap=150)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, len(chunks)


def test_no_whitespace_costs_memory_per_chunk_not_per_character() -> None:
    text = ("abcdefghijklmnopqrstuvwxyz0123456789" * 6000)[:200_000]
    peak, n_chunks = peak_bytes(text, None)
    assert peak < 10 * len(text)  # a Python object per character would be ~150x
    assert n_chunks == len(library_chunks(text, "chars", 600, 150, None))
    assert_same_as_library([text[:20_000]], "chars", 600, 150)


def test_base64_image_in_markdown_is_split_in_bounded_memory() -> None:
    blob = base64.b64encode(random.Random(3).randbytes(150_000)).decode("ascii")
    text = f"# Report\n\nA figure.\n\n![figure](data:image/png;base64,{blob})\n\n## End\n\nDone."
    peak, _ = peak_bytes(text, "markdown")
    assert peak < 10 * len(text)
    chunks = split_documents(
        [Document(text, metadata={"source": "/t/r.md", "file_type": "markdown"})],
        chunk_size=600,
        chunk_overlap=150,
    )
    assert chunks[-1].page_content == "## End\n\nDone."
    assert chunks[-1].metadata["section"] == "Report > End"
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        assert text[start : start + len(chunk.page_content)] == chunk.page_content
        assert len(chunk.page_content) <= 600


@pytest.mark.parametrize("unit", ["chars", "tokens"])
@pytest.mark.parametrize("separator", ["", " ", "\u00a0", "\u3000 "])
@pytest.mark.parametrize(("size", "overlap"), [(1, 0), (2, 0), (2, 1), (7, 3), (50, 49)])
def test_character_windows_equal_the_library_merge(
    unit: str, separator: str, size: int, overlap: int
) -> None:
    rng = random.Random(size * 100 + overlap)
    for _ in range(20):
        words = ("".join(rng.choices("xxxxé日😀", k=rng.randint(1, 40))) for _ in range(8))
        text = separator.join(itertools.islice(words, rng.randint(1, 8)))
        assert_same_as_library([text], unit, size, overlap)


def test_bundled_sample_and_docs_as_plain_text_equal_the_library() -> None:
    texts = [sample_path().read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md"))]
    for unit, size, overlap in SETTINGS:
        assert assert_same_as_library(texts, unit, size, overlap) == len(texts)
        assert_same_as_library(texts[:3], unit, size, overlap, "pdf")


@pytest.mark.data
def test_beir_texts_equal_the_library() -> None:
    if not (DATA / "beir").is_dir():
        pytest.skip(f"benchmark data not found at {DATA}")
    texts = []
    for name in ("scifact", "nfcorpus"):
        with (DATA / "beir" / name / "corpus.jsonl").open(encoding="utf-8") as f:
            for line, _ in zip(f, range(200)):
                doc = json.loads(line)
                texts.append(f"{doc['title']}\n\n{doc['text']}")
    for unit, size, overlap in SETTINGS:
        assert assert_same_as_library(texts, unit, size, overlap) == len(texts)
