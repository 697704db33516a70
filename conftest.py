from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Send every ONNX export of the test run (tests and doctests) into one temporary cache.

    The directory is shared by the xdist workers of a run (their base temp dirs have a common
    parent, the run's own), and ``export_onnx`` locks per model, so the real model is exported
    once per run.
    """
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's base temp dir sits in the run's own directory; without it the
    # parent is shared by every run, so the cache goes inside the run's base temp dir instead
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "onnx-cache"
    old = os.environ.get("LANGCHAIN_FUSION_ONNX_CACHE")
    os.environ["LANGCHAIN_FUSION_ONNX_CACHE"] = str(shared)
    yield shared
    if old is None:
        os.environ.pop("LANGCHAIN_FUSION_ONNX_CACHE", None)
    else:
        os.environ["LANGCHAIN_FUSION_ONNX_CACHE"] = old
