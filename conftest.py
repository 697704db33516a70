from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Send every ONNX export of the test run (tests and doctests) into one temporary cache.

    The directory is shared by the xdist workers of a run (their base temp dirs have a common
    parent), and ``export_onnx`` locks per model, so the real model is exported once per run.
    """
    shared = tmp_path_factory.getbasetemp().parent / "onnx-cache"
    old = os.environ.get("LANGCHAIN_FUSION_ONNX_CACHE")
    os.environ["LANGCHAIN_FUSION_ONNX_CACHE"] = str(shared)
    yield shared
    if old is None:
        os.environ.pop("LANGCHAIN_FUSION_ONNX_CACHE", None)
    else:
        os.environ["LANGCHAIN_FUSION_ONNX_CACHE"] = old
