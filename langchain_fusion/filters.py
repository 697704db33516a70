"""Metadata filters shared by every store in the package.

A filter is either a callable ``metadata -> bool`` or a dict in the syntax LangChain users know from
FAISS, Chroma and Qdrant:

* ``{"source": "a.pdf"}`` -- equality; a list value means "in" (or equal to the whole list):
  ``{"page": [1, 2]}``.
* Operators on a field: ``{"page": {"$gte": 2, "$lt": 5}}`` with ``$eq $ne $in $nin $gt $gte $lt
  $lte $exists``. Several operators on one field combine with AND.
* Logic: ``{"$and": [f1, f2]}``, ``{"$or": [f1, f2]}``, ``{"$not": f}`` (``$not`` also accepts a
  list, meaning "none of these").
* All top-level keys combine with AND.
* Nesting is limited to [`MAX_FILTER_DEPTH`][langchain_fusion.filters.MAX_FILTER_DEPTH] dicts and
  lists inside each other: a deeper filter raises a ``ValueError`` saying so, never a
  ``RecursionError``.

Semantics, chosen to never crash on messy metadata:

* A missing field never matches ``$eq``, ``$in`` or a comparison; it *does* match ``$ne`` and
  ``$nin`` (it is not equal to the value), and ``$exists: False``.
* Comparing incomparable values (``"a" > 1``, ``None < 3``) is "no match", not an error.
* Equality is Python equality, so ``1 == 1.0 == True``; strings never equal numbers.
* A **list-valued field** (a ``list``, ``tuple``, ``set`` or ``frozenset``; not a numpy array)
  is matched element-wise, as in MongoDB, by every operator: ``{"tags": "x"}`` and
  ``{"tags": {"$in": ["x", "z"]}}`` match ``["x", "y"]`` (an element matches); ``$ne`` and
  ``$nin`` match only when no element does (``{"tags": {"$ne": "x"}}`` excludes ``["x", "y"]``);
  ``{"n": {"$gt": 2}}`` matches ``[1, 5]``. The whole value is tried too, so
  ``{"tags": {"$eq": ["x", "y"]}}`` and ``{"tags": ["x", "y"]}`` match the identical list (and
  ``{"tags": []}`` an empty one); a tuple equals the list with the same items. Elements are
  compared one level deep (a list inside the list is compared as a whole). Several operators on
  one field are tested independently (MongoDB's rule): ``{"n": {"$gt": 2, "$lt": 4}}`` matches
  ``[1, 5]`` (5 > 2 and 1 < 4); use a callable for "one element satisfies all".
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FILTER_OPERATORS",
    "MAX_FILTER_DEPTH",
    "Filter",
    "MetadataPredicate",
    "check_filter",
    "compile_filter",
    "filter_mask",
]

Filter: TypeAlias = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool]
"""A metadata filter: a dict in the Mongo-like syntax above, or a predicate on the metadata."""

MetadataPredicate: TypeAlias = Callable[[Mapping[str, Any]], bool]
"""A compiled filter: ``metadata -> bool``."""

_FIELD_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists")
_LOGIC_OPERATORS = ("$and", "$or", "$not")
FILTER_OPERATORS: tuple[str, ...] = _FIELD_OPERATORS + _LOGIC_OPERATORS
"""Every operator the dict syntax accepts."""

_MISSING: Any = object()

MAX_FILTER_DEPTH = 100
"""Most dicts and lists a filter may nest inside each other (``{"$and": [f]}`` is two levels).

Real filters nest a handful of levels; the limit keeps a hostile or generated filter from
exhausting Python's stack while it is compiled, evaluated or turned into a cache key.
"""


def _check_depth(filter: Any) -> None:
    """Raise ``ValueError`` if ``filter`` nests more than ``MAX_FILTER_DEPTH`` containers.

    Iterative, so a filter nested a million levels deep (or one that contains itself) cannot
    overflow the stack here.
    """
    stack: list[tuple[Any, int]] = [(filter, 1)]
    deepest: dict[int, int] = {}  # container id -> deepest level it was checked at
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, _LIST_TYPES):
            children = value
        else:
            continue
        if depth > MAX_FILTER_DEPTH:
            raise ValueError(
                f"filter is nested more than {MAX_FILTER_DEPTH} levels deep (dicts and lists "
                "inside each other); flatten it: list the conditions in one $and or $or "
                "(e.g. {'$and': [f1, f2, f3]}), and drop pairs of $not, which cancel out"
            )
        if deepest.get(id(value), 0) >= depth:  # shared, and checked deeper already
            continue
        deepest[id(value)] = depth
        stack.extend((child, depth + 1) for child in children)


_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def _unknown_operator(op: str, where: str) -> ValueError:
    allowed = ", ".join(FILTER_OPERATORS)
    return ValueError(f"filter has unknown operator {op!r} {where}; allowed operators: {allowed}")


_LIST_TYPES = (list, tuple, set, frozenset)
_SCALAR_TYPES = frozenset({str, int, float, bool})  # never list-valued: skip the isinstance()


def _scalar_equals(value: Any, target: Any) -> bool:
    # Strings and numbers never compare equal; numpy scalars behave like Python scalars.
    try:
        if value == target:
            return True
    except Exception:  # e.g. an array compared with a scalar -> ambiguous truth value
        return False
    if type(value) in _SCALAR_TYPES or type(target) in _SCALAR_TYPES:
        return False
    if isinstance(value, (list, tuple)) and isinstance(target, (list, tuple)):
        # A tuple equals the list with the same items: the JSON form of a filter (the cache key
        # of filter masks) cannot tell them apart, so neither may the filter.
        return len(value) == len(target) and all(
            _scalar_equals(v, t) for v, t in zip(value, target, strict=True)
        )
    return False


def _equals(value: Any, target: Any) -> bool:
    """``value`` equals ``target``, or (list-valued field) one of its elements does."""
    if value is _MISSING:
        return False
    if type(value) not in _SCALAR_TYPES and isinstance(value, _LIST_TYPES):
        for item in value:
            if _scalar_equals(item, target):
                return True
        return _scalar_equals(value, target)
    try:  # the common case, inlined: a scalar field
        return bool(value == target)
    except Exception:
        return False


def _is_in(value: Any, targets: Sequence[Any]) -> bool:
    """``value`` (or, for a list-valued field, one of its elements) equals one of ``targets``."""
    if value is _MISSING:
        return False
    if type(value) not in _SCALAR_TYPES and isinstance(value, _LIST_TYPES):
        for item in value:
            for target in targets:
                if _scalar_equals(item, target):
                    return True
        return any(_scalar_equals(value, target) for target in targets)
    for target in targets:  # the common case, inlined: a scalar field
        try:
            if value == target:
                return True
        except Exception:
            pass
    return False


def _compare(op: Callable[[Any, Any], Any], value: Any, target: Any) -> bool:
    """``op(value, target)``, or (list-valued field) ``op(element, target)`` for an element.

    ``target`` is never a tuple (see :func:`_compile_operator`).
    """
    if value is _MISSING or value is None or target is None:
        return False
    if type(value) not in _SCALAR_TYPES and isinstance(value, _LIST_TYPES):
        return any(_order(op, item, target) for item in value) or _order(op, value, target)
    try:
        return bool(op(value, target))
    except Exception:  # incomparable types (str > int, arrays, ...) -> no match
        return False


def _order(op: Callable[[Any, Any], Any], value: Any, target: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, tuple):  # tuples order like lists
        value = list(value)
    try:
        return bool(op(value, target))
    except Exception:
        return False


def _as_list(value: Any, *, op: str, key: str) -> list[Any]:
    if isinstance(value, _LIST_TYPES):
        return list(value)
    raise TypeError(
        f"filter operator {op!r} on field {key!r} needs a list, got {type(value).__name__}: "
        f"{value!r}"
    )


def _compile_field(key: str, spec: Any) -> MetadataPredicate:
    """Compile the condition for one metadata field."""
    if (
        isinstance(spec, Mapping)
        and spec
        and all(isinstance(k, str) and k.startswith("$") for k in spec)
    ):
        preds: list[Callable[[Any], bool]] = []
        for op, arg in spec.items():
            preds.append(_compile_operator(key, op, arg))

        def field_pred(metadata: Mapping[str, Any]) -> bool:
            value = metadata.get(key, _MISSING)
            return all(p(value) for p in preds)

        return field_pred
    if isinstance(spec, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in spec):
        bad = [k for k in spec if not (isinstance(k, str) and k.startswith("$"))]
        raise ValueError(
            f"filter field {key!r} mixes operators and plain keys {bad!r}; use either "
            f"{{'$op': value}} or a plain value for equality"
        )
    if isinstance(spec, (list, tuple, set, frozenset)):
        targets = list(spec)

        def in_pred(metadata: Mapping[str, Any]) -> bool:
            value = metadata.get(key, _MISSING)
            # "$in", or equal to the whole list (so {"tags": []} matches an empty list).
            return _is_in(value, targets) or _equals(value, spec)

        return in_pred

    def eq_pred(metadata: Mapping[str, Any]) -> bool:
        return _equals(metadata.get(key, _MISSING), spec)

    return eq_pred


def _compile_operator(key: str, op: str, arg: Any) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda v: _equals(v, arg)
    if op == "$ne":
        return lambda v: not _equals(v, arg)
    if op == "$in":
        targets = _as_list(arg, op=op, key=key)
        return lambda v: _is_in(v, targets)
    if op == "$nin":
        excluded = _as_list(arg, op=op, key=key)
        return lambda v: not _is_in(v, excluded)
    if op in _ORDERINGS:
        fn = _ORDERINGS[op]
        bound = list(arg) if isinstance(arg, tuple) else arg  # tuples order like lists
        return lambda v: _compare(fn, v, bound)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise TypeError(
                f"filter operator '$exists' on field {key!r} needs True or False, got {arg!r}"
            )
        return lambda v: (v is not _MISSING) is arg
    raise _unknown_operator(op, f"on field {key!r}")


def _compile_logic(op: str, arg: Any) -> MetadataPredicate:
    if op == "$not":
        if isinstance(arg, Mapping):
            inner = _compile_mapping(arg)
            return lambda m: not inner(m)
        subs = [_compile_mapping(_check_mapping(f, op)) for f in _as_list(arg, op=op, key=op)]
        return lambda m: not any(s(m) for s in subs)
    subs = [_compile_mapping(_check_mapping(f, op)) for f in _as_list(arg, op=op, key=op)]
    if op == "$and":
        return lambda m: all(s(m) for s in subs)
    return lambda m: any(s(m) for s in subs)


def _check_mapping(value: Any, op: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"filter operator {op!r} needs a list of dicts, got an item of type "
            f"{type(value).__name__}: {value!r}"
        )
    return value


def _compile_mapping(spec: Mapping[str, Any]) -> MetadataPredicate:
    preds: list[MetadataPredicate] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise TypeError(f"filter keys must be str, got {type(key).__name__}: {key!r}")
        if key.startswith("$"):
            if key not in _LOGIC_OPERATORS:
                raise _unknown_operator(key, "at the top level of a filter")
            preds.append(_compile_logic(key, value))
        else:
            preds.append(_compile_field(key, value))
    if len(preds) == 1:
        return preds[0]
    return lambda m: all(p(m) for p in preds)


def check_filter(filter: Filter | None) -> None:
    """Refuse a dict filter nested deeper than `MAX_FILTER_DEPTH`, before anything recurses.

    Call it before turning a filter into a cache key (``json.dumps`` recurses too): it is cheap,
    iterative, and the only check :func:`compile_filter` would otherwise do too late.

    Raises:
        ValueError: The filter nests more than ``MAX_FILTER_DEPTH`` dicts and lists.

    Example:
        >>> check_filter({"$or": [{"page": 1}, {"page": 2}]})  # fine: returns None
        >>> deep = {"page": 1}
        >>> for _ in range(60):
        ...     deep = {"$not": [deep]}
        >>> check_filter(deep)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: filter is nested more than 100 levels deep (dicts and lists inside ...

    """
    if isinstance(filter, Mapping):
        _check_depth(filter)


def compile_filter(filter: Filter | None) -> MetadataPredicate | None:
    """Compile a metadata filter into a predicate ``metadata -> bool``.

    The dict is validated once, here: an unknown operator raises immediately, not on the first
    document.

    Args:
        filter: A dict in the syntax described in this module, a callable ``metadata -> bool``
            (returned unchanged), or ``None`` (no filtering: returns ``None``). An empty dict
            matches everything.

    Returns:
        The predicate, or ``None`` when ``filter`` is ``None``.

    Raises:
        ValueError: An unknown operator, a field spec that mixes operators and plain keys, or
            a filter nested more than ``MAX_FILTER_DEPTH`` levels deep.
        TypeError: ``filter`` is neither a mapping, a callable nor ``None``, or an operator
            received an argument of the wrong type (``$in`` needs a list, ``$exists`` a bool).

    Example:
        >>> match = compile_filter({"source": "a.pdf", "page": {"$gte": 2}})
        >>> match({"source": "a.pdf", "page": 3}), match({"source": "a.pdf", "page": 1})
        (True, False)
        >>> compile_filter({"$or": [{"lang": "en"}, {"lang": {"$exists": False}}]})({})
        True
        >>> tagged = {"tags": ["x", "y"]}  # list-valued fields match element-wise
        >>> [compile_filter(f)(tagged) for f in ({"tags": "x"}, {"tags": {"$ne": "x"}},
        ...                                      {"tags": {"$nin": ["z"]}})]
        [True, False, True]
        >>> compile_filter(None) is None
        True

    """
    if filter is None:
        return None
    if isinstance(filter, Mapping):
        _check_depth(filter)
        return _compile_mapping(filter)
    if callable(filter):
        return filter
    raise TypeError(
        f"filter must be a dict, a callable metadata -> bool or None, got "
        f"{type(filter).__name__}: {filter!r}"
    )


def filter_mask(
    metadatas: Sequence[Mapping[str, Any]],
    filter: Filter | None,
) -> NDArray[np.bool_]:
    """Evaluate a filter on many metadata dicts at once.

    Args:
        metadatas: One metadata mapping per document.
        filter: See :func:`compile_filter`. ``None`` keeps everything.

    Returns:
        A boolean array with one entry per metadata dict, True where the filter matches.

    Example:
        >>> filter_mask([{"page": 1}, {"page": 5}, {}], {"page": {"$in": [1, 2]}}).tolist()
        [True, False, False]
        >>> filter_mask([{"tags": ["a", "b"]}, {"tags": ["c"]}, {}], {"tags": "a"}).tolist()
        [True, False, False]
        >>> filter_mask([{"page": 1}, {}], None).tolist()
        [True, True]

    """
    predicate = compile_filter(filter)
    n = len(metadatas)
    if predicate is None:
        return np.ones(n, dtype=np.bool_)
    out = np.empty(n, dtype=np.bool_)
    for i, metadata in enumerate(metadatas):
        out[i] = bool(predicate(metadata))
    return out
