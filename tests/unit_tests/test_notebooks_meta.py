"""Static checks of the tutorial notebooks: valid, executed, clean and portable.

Nothing is executed here (CI runs the notebooks with ``pytest --nbmake notebooks``); these tests
read the saved ``.ipynb`` files and check that what a reader sees on GitHub is a real run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_quickstart.ipynb",
    "02_choosing_alpha.ipynb",
    "03_agent_tool.ipynb",
    "04_bring_your_own_stores.ipynb",
    "05_postgres.ipynb",
    "06_query_side_fusion.ipynb",
]
# Paths that only exist on the machine that ran the notebook.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(/work/|/root\b|/home/|/Users/|/tmp/|[A-Za-z]:\\)")
SECRET = re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")
LLM_NOTICE = re.compile(r"No OPENAI_API_KEY set|configured LLM")


def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]


def _code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _output_text(output: Any) -> str:
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return "\n".join([output.ename, output.evalue, *output.traceback])
    data = output.get("data", {})
    return "\n".join(str(v) for k, v in data.items() if k.startswith("text/"))


def _all_output_text(nb: Any) -> str:
    return "\n".join(_output_text(o) for cell in _code_cells(nb) for o in cell.outputs)


notebook_params = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])


def test_expected_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    missing = [name for name in EXPECTED if name not in names]
    assert not missing, f"missing notebooks in {NOTEBOOK_DIR}: {missing}"


def test_readme_lists_every_notebook() -> None:
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    unlisted = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not unlisted, f"notebooks/README.md does not mention {unlisted}"


@notebook_params
def test_valid_nbformat_v4(path: Path) -> None:
    nb = _read(path)
    assert nb.nbformat == 4
    nbformat.validate(nb)  # raises ValidationError on a malformed notebook


@notebook_params
def test_kernel_is_python3(path: Path) -> None:
    nb = _read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["language"] == "python"


@notebook_params
def test_opens_with_a_title_and_explains_between_cells(path: Path) -> None:
    nb = _read(path)
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# "), "the first cell should be a '# Title' markdown cell"
    n_markdown = sum(cell.cell_type == "markdown" for cell in nb.cells)
    assert n_markdown >= len(_code_cells(nb)) // 2, "too little prose between the code cells"


@notebook_params
def test_every_code_cell_was_executed_and_shows_output(path: Path) -> None:
    nb = _read(path)
    cells = _code_cells(nb)
    assert cells, "a notebook without code"
    for i, cell in enumerate(cells, 1):
        assert isinstance(cell.execution_count, int), f"code cell {i} was not executed"
        assert cell.outputs, f"code cell {i} has no saved output:\n{cell.source[:200]}"


@notebook_params
def test_execution_counts_in_order(path: Path) -> None:
    counts = [cell.execution_count for cell in _code_cells(_read(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"execution counts {counts}: run the notebook top to bottom in a fresh kernel"
    )


@notebook_params
def test_no_error_outputs(path: Path) -> None:
    for i, cell in enumerate(_code_cells(_read(path)), 1):
        for output in cell.outputs:
            assert output.output_type != "error", (
                f"code cell {i} raised {output.ename}: {output.evalue}"
            )
            assert "Traceback (most recent call last)" not in _output_text(output), (
                f"code cell {i} prints a traceback"
            )


@notebook_params
def test_no_stderr_noise(path: Path) -> None:
    for i, cell in enumerate(_code_cells(_read(path)), 1):
        for output in cell.outputs:
            is_stderr = output.output_type == "stream" and output.name == "stderr"
            assert not is_stderr, f"code cell {i} writes to stderr:\n{output.text[:300]}"


@notebook_params
def test_no_absolute_paths(path: Path) -> None:
    nb = _read(path)
    for i, cell in enumerate(nb.cells, 1):
        match = ABSOLUTE_PATH.search(cell.source)
        assert match is None, f"cell {i} source has an absolute path: {match.group(0)!r}"
    match = ABSOLUTE_PATH.search(_all_output_text(nb))
    assert match is None, f"an output shows a machine-specific path: {match.group(0)!r}"


@notebook_params
def test_no_secrets(path: Path) -> None:
    nb = _read(path)
    text = "\n".join(cell.source for cell in nb.cells) + _all_output_text(nb)
    assert SECRET.search(text) is None, "something that looks like an API key is saved"


@notebook_params
def test_offline_and_portable_setup(path: Path) -> None:
    nb = _read(path)
    first_code = _code_cells(nb)[0].source
    assert 'os.environ.setdefault("HF_HUB_OFFLINE", "1")' in first_code
    sources = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    if "shared/data" in sources:
        # Located from the notebook's folder (nbmake runs there), overridable by env var.
        assert '"../../shared/data"' in sources
        assert 'os.environ.get("LANGCHAIN_FUSION_DATA"' in sources


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "03_agent_tool.ipynb"])
def test_llm_cells_say_which_model_answered(name: str) -> None:
    text = _all_output_text(_read(NOTEBOOK_DIR / name))
    assert LLM_NOTICE.search(text), f"{name} should print whether an LLM or the offline path ran"


def test_alpha_sweep_plot_is_saved() -> None:
    nb = _read(NOTEBOOK_DIR / "02_choosing_alpha.ipynb")
    images = [
        o for cell in _code_cells(nb) for o in cell.outputs if "image/png" in o.get("data", {})
    ]
    assert len(images) == 1, "the nDCG@10-vs-alpha plot should be saved as one inline PNG"
    text = _all_output_text(nb)
    assert "BM25 only" in text and "dense only" in text
