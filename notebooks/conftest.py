"""Run the notebooks with ``pytest --nbmake notebooks``: a notebook whose data is missing is
skipped with a message instead of failing (as CI does).

Notebook 02 sweeps alpha on BEIR SciFact, which is not in the repository: it is looked for in
``$LANGCHAIN_FUSION_DATA`` or ``../shared/data`` beside the repository (see the README here).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]
_NEEDS_SCIFACT = {"02_choosing_alpha.ipynb"}


def _data_dir() -> Path:
    return Path(os.environ.get("LANGCHAIN_FUSION_DATA", _REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the notebooks that need BEIR SciFact when it is not there, saying where to put it."""
    corpus = _data_dir() / "beir" / "scifact" / "corpus.jsonl"
    if corpus.is_file():
        return
    skip = pytest.mark.skip(
        reason=f"BEIR SciFact not found ({corpus}): set LANGCHAIN_FUSION_DATA to the data folder"
    )
    for item in items:
        if Path(str(item.fspath)).name in _NEEDS_SCIFACT:
            item.add_marker(skip)
