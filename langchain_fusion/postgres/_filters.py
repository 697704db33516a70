"""Metadata filters (the package's dict syntax) as parameterised SQL over a jsonb column.

The translation follows [`langchain_fusion.filters`][] operator by operator: a missing field
never matches ``$eq``/``$in``/comparisons and does match ``$ne``/``$nin``/``$exists: False``; a
list-valued field matches element-wise (and as a whole); comparisons only match values of the
target's type (numbers with numbers, strings with strings in code-point order). Every key and
value reaches SQL as a query parameter; only fixed SQL text is concatenated.

Two documented differences from the Python predicate: ``True`` does not equal ``1`` (JSON keeps
booleans and numbers apart), and comparisons (``$gt``...) take a number or a string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from langchain_fusion.filters import FILTER_OPERATORS

__all__ = ["filter_sql"]

_LIST_TYPES = (list, tuple, set, frozenset)
_ORDER_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _json(value: Any, where: str) -> str:
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=repr)
    try:
        text = json.dumps(value, allow_nan=False, default=_reject)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"filter value {where} cannot be stored as JSON: {exc}") from None
    if "\\u0000" in text:
        raise ValueError(f"filter value {where} contains a NUL character, which PostgreSQL rejects")
    return text


def _reject(value: Any) -> Any:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Builder:
    def __init__(self, column: str, prefix: str) -> None:
        self.column = column
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def p(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def field(self, key: str) -> str:
        if "\x00" in key:
            raise ValueError(f"filter key {key!r} contains a NUL character")
        return f"({self.column} -> {self.p(key)})"

    def eq(self, key: str, target: Any) -> str:
        v = self.field(key)
        t = _json(target, f"for {key!r}")
        t1 = self.p(t)
        return (
            f"coalesce({v} = {t1}::jsonb OR (jsonb_typeof({v}) = 'array' AND EXISTS "
            f"(SELECT 1 FROM jsonb_array_elements({v}) e WHERE e = {t1}::jsonb)), false)"
        )

    def isin(self, key: str, targets: list[Any]) -> str:
        v = self.field(key)
        t = _json(list(targets), f"for {key!r}")
        t1 = self.p(t)
        return (
            f"coalesce({v} IN (SELECT jsonb_array_elements({t1}::jsonb)) OR "
            f"(jsonb_typeof({v}) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements({v}) e "
            f"WHERE e IN (SELECT jsonb_array_elements({t1}::jsonb)))), false)"
        )

    def order(self, key: str, op: str, target: Any) -> str:
        sym = _ORDER_SQL[op]
        if target is None:
            return "false"
        if isinstance(target, bool) or not isinstance(target, (int, float, str)):
            raise ValueError(
                f"filter operator {op!r} on field {key!r} compares with a number or a string in "
                f"PostgreSQL, got {type(target).__name__}: {target!r}"
            )
        if isinstance(target, float) and not math.isfinite(target):
            raise ValueError(f"filter operator {op!r} on field {key!r} needs a finite number")
        v = self.field(key)
        if isinstance(target, str):
            if "\x00" in target:
                raise ValueError(f"filter value for {key!r} contains a NUL character")
            t = self.p(target)

            def one(x: str) -> str:
                return (
                    f"(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') COLLATE \"C\" "
                    f"{sym} {t}::text)"
                )
        else:
            t = self.p(float(target))

            def one(x: str) -> str:
                return f"(jsonb_typeof({x}) = 'number' AND ({x})::float8 {sym} {t}::float8)"

        return (
            f"coalesce({one(v)} OR (jsonb_typeof({v}) = 'array' AND EXISTS "
            f"(SELECT 1 FROM jsonb_array_elements({v}) e WHERE {one('e')})), false)"
        )

    def exists(self, key: str) -> str:
        if "\x00" in key:
            raise ValueError(f"filter key {key!r} contains a NUL character")
        return f"({self.column} ? {self.p(key)})"

    # ---------------------------------------------------------------- structure

    def mapping(self, spec: Mapping[str, Any]) -> str:
        parts = []
        for key, value in spec.items():
            if not isinstance(key, str):
                raise TypeError(f"filter keys must be str, got {type(key).__name__}: {key!r}")
            if key.startswith("$"):
                if key not in ("$and", "$or", "$not"):
                    raise _unknown(key, "at the top level of a filter")
                parts.append(self.logic(key, value))
            else:
                parts.append(self.field_spec(key, value))
        if not parts:
            return "true"
        return "(" + " AND ".join(parts) + ")"

    def logic(self, op: str, arg: Any) -> str:
        if op == "$not" and isinstance(arg, Mapping):
            return f"(NOT {self.mapping(arg)})"
        if not isinstance(arg, _LIST_TYPES):
            raise TypeError(
                f"filter operator {op!r} on field {op!r} needs a list, got "
                f"{type(arg).__name__}: {arg!r}"
            )
        subs = []
        for item in arg:
            if not isinstance(item, Mapping):
                raise TypeError(
                    f"filter operator {op!r} needs a list of dicts, got an item of type "
                    f"{type(item).__name__}: {item!r}"
                )
            subs.append(self.mapping(item))
        if op == "$and":
            return "(" + " AND ".join(subs) + ")" if subs else "true"
        inner = "(" + " OR ".join(subs) + ")" if subs else "false"
        return f"(NOT {inner})" if op == "$not" else inner

    def field_spec(self, key: str, spec: Any) -> str:
        if (
            isinstance(spec, Mapping)
            and spec
            and all(isinstance(k, str) and k.startswith("$") for k in spec)
        ):
            return "(" + " AND ".join(self.operator(key, op, arg) for op, arg in spec.items()) + ")"
        if isinstance(spec, Mapping) and any(
            isinstance(k, str) and k.startswith("$") for k in spec
        ):
            bad = [k for k in spec if not (isinstance(k, str) and k.startswith("$"))]
            raise ValueError(
                f"filter field {key!r} mixes operators and plain keys {bad!r}; use either "
                f"{{'$op': value}} or a plain value for equality"
            )
        if isinstance(spec, _LIST_TYPES):
            return f"({self.isin(key, list(spec))} OR {self.eq(key, list(spec))})"
        return self.eq(key, spec)

    def operator(self, key: str, op: str, arg: Any) -> str:
        if op == "$eq":
            return self.eq(key, arg)
        if op == "$ne":
            return f"(NOT {self.eq(key, arg)})"
        if op in ("$in", "$nin"):
            if not isinstance(arg, _LIST_TYPES):
                raise TypeError(
                    f"filter operator {op!r} on field {key!r} needs a list, got "
                    f"{type(arg).__name__}: {arg!r}"
                )
            cond = self.isin(key, list(arg))
            return cond if op == "$in" else f"(NOT {cond})"
        if op in _ORDER_SQL:
            return self.order(key, op, arg)
        if op == "$exists":
            if not isinstance(arg, bool):
                raise TypeError(
                    f"filter operator '$exists' on field {key!r} needs True or False, got {arg!r}"
                )
            cond = self.exists(key)
            return cond if arg else f"(NOT {cond})"
        raise _unknown(op, f"on field {key!r}")


def _unknown(op: str, where: str) -> ValueError:
    allowed = ", ".join(FILTER_OPERATORS)
    return ValueError(f"filter has unknown operator {op!r} {where}; allowed operators: {allowed}")


def filter_sql(
    filter: Any, column: str = "d.metadata", prefix: str = "f"
) -> tuple[str, dict[str, Any]]:
    """Translate a dict filter into a SQL condition on a jsonb column and its parameters.

    Args:
        filter: A dict in the syntax of [`langchain_fusion.filters`][], or ``None``.
        column: The (fixed, trusted) SQL expression of the metadata column.
        prefix: Prefix of the parameter names (``%(f0)s``, ``%(f1)s``...).

    Returns:
        ``(condition, params)``: SQL text with named ``%(f0)s`` placeholders, and their values.

    Raises:
        ValueError: An unknown operator, a callable filter, or a value that is not JSON.
        TypeError: An operator argument of the wrong type.

    Example:
        >>> cond, params = filter_sql({"page": {"$gte": 2}})
        >>> params
        {'f0': 'page', 'f1': 2.0}
        >>> filter_sql(None)
        ('true', {})
        >>> filter_sql({"page": {"$regex": "x"}})
        Traceback (most recent call last):
        ...
        ValueError: filter has unknown operator '$regex' on field 'page'; allowed operators: ...

    """
    if filter is None:
        return "true", {}
    if not isinstance(filter, Mapping):
        if callable(filter):
            raise ValueError(
                "a callable filter cannot run inside PostgreSQL; use the dict syntax "
                "({'field': value, 'page': {'$gte': 2}})"
            )
        raise TypeError(f"filter must be a dict or None, got {type(filter).__name__}: {filter!r}")
    builder = _Builder(column, prefix)
    return builder.mapping(filter), builder.params
