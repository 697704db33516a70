"""Former home of tuning: it moved to the [`langchain_fusion.tuning`][] package (re-exported here).

Example:
    >>> from langchain_fusion.evaluation.tune import tune
    >>> tune.__module__
    'langchain_fusion.tuning.search'

"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_fusion.tuning import *  # noqa: F403
    from langchain_fusion.tuning import __all__ as __all__


def __getattr__(name: str) -> Any:
    # Everything (``__all__`` too) is taken from ``langchain_fusion.tuning`` on first use:
    # ``langchain_fusion.evaluation`` loads this module while ``langchain_fusion.tuning`` (which
    # builds on evaluation's metrics) may still be loading.
    if name.startswith("__") and name != "__all__":  # the import system's probes
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    tuning = importlib.import_module("langchain_fusion.tuning")
    if name == "__all__":
        value: Any = list(tuning.__all__)
    elif name in tuning.__all__:
        value = getattr(tuning, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
