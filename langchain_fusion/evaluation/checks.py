"""Small helpers shared by the evaluation modules: argument checks and error-message excerpts."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any


def examples(items: Iterable[Any], n: int = 3) -> str:
    """Return the first ``n`` items as reprs, for error messages (``'a', 'b', ...``).

    Example:
        >>> examples(["a", "b", "c", "d"])
        "'a', 'b', 'c', ..."
        >>> examples(["a"], n=5)
        "'a'"

    """
    shown: list[str] = []
    for i, item in enumerate(items):
        if i == n:
            shown.append("...")
            break
        shown.append(repr(item))
    return ", ".join(shown)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise ValueError naming ``name`` if it is not >= minimum.

    Example:
        >>> check_int("k", 10)
        10
        >>> check_int("cv", 1, 2)
        Traceback (most recent call last):
        ...
        ValueError: cv must be an integer >= 2, got 1

    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
