from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from langchain_fusion.filters import FILTER_OPERATORS, compile_filter, filter_mask

METAS: list[dict[str, Any]] = [
    {"source": "a.pdf", "page": 1, "tags": ["x", "y"], "score": 0.5},
    {"source": "b.pdf", "page": 2, "tags": ["y"], "score": None},
    {"source": "a.pdf", "page": 3, "lang": "en"},
    {"source": "c.txt", "page": "iv"},
    {},
]


def idx(filter: Any) -> list[int]:
    return [int(i) for i in np.flatnonzero(filter_mask(METAS, filter))]


def test_none_and_empty_match_everything() -> None:
    assert compile_filter(None) is None
    assert idx(None) == [0, 1, 2, 3, 4]
    assert idx({}) == [0, 1, 2, 3, 4]


def test_equality_and_list_means_in() -> None:
    assert idx({"source": "a.pdf"}) == [0, 2]
    assert idx({"source": ["b.pdf", "c.txt"]}) == [1, 3]
    assert idx({"source": "a.pdf", "page": 3}) == [2]  # top-level keys AND
    assert idx({"source": "zzz"}) == []


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"page": {"$eq": 2}}, [1]),
        ({"page": {"$ne": 2}}, [0, 2, 3, 4]),  # missing field is "not equal"
        ({"page": {"$in": [1, 3]}}, [0, 2]),
        ({"page": {"$nin": [1, 3]}}, [1, 3, 4]),
        ({"page": {"$gt": 1}}, [1, 2]),  # "iv" > 1 is incomparable -> no match
        ({"page": {"$gte": 1}}, [0, 1, 2]),
        ({"page": {"$lt": 3}}, [0, 1]),
        ({"page": {"$lte": 3}}, [0, 1, 2]),
        ({"page": {"$gte": 2, "$lt": 3}}, [1]),
        ({"page": {"$gt": "a"}}, [3]),  # str vs str compares, str vs int does not
        ({"lang": {"$exists": True}}, [2]),
        ({"lang": {"$exists": False}}, [0, 1, 3, 4]),
        ({"score": {"$gt": 0.1}}, [0]),  # None is never ordered
        ({"tags": {"$in": ["x"]}}, [0]),  # list-valued field: any item
        ({"tags": "y"}, []),  # plain equality compares the whole value
        ({"tags": {"$eq": ["y"]}}, [1]),
    ],
)
def test_operators(flt: dict[str, Any], expected: list[int]) -> None:
    assert idx(flt) == expected


def test_logic() -> None:
    assert idx({"$or": [{"source": "b.pdf"}, {"page": 3}]}) == [1, 2]
    assert idx({"$and": [{"source": "a.pdf"}, {"page": {"$gt": 1}}]}) == [2]
    assert idx({"$not": {"source": "a.pdf"}}) == [1, 3, 4]
    assert idx({"$not": [{"source": "a.pdf"}, {"page": 2}]}) == [3, 4]  # none of these
    assert idx({"$or": [{"$and": [{"source": "a.pdf"}, {"page": 1}]}, {"source": "c.txt"}]}) == [
        0,
        3,
    ]
    assert idx({"$or": []}) == []
    assert idx({"$and": []}) == [0, 1, 2, 3, 4]


def test_callable_filter_is_used_as_is() -> None:
    def pred(m: Any) -> bool:
        return bool(m.get("page") == 1)

    assert compile_filter(pred) is pred
    assert idx(pred) == [0]


def test_unknown_operator_lists_allowed() -> None:
    with pytest.raises(ValueError, match=r"'\$regex'.*allowed operators: \$eq"):
        compile_filter({"source": {"$regex": "a"}})
    with pytest.raises(ValueError, match=r"'\$xor'"):
        compile_filter({"$xor": []})
    assert "$exists" in FILTER_OPERATORS


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"'\$in' on field 'page' needs a list"):
        compile_filter({"page": {"$in": 3}})
    with pytest.raises(TypeError, match=r"'\$exists'.*True or False"):
        compile_filter({"page": {"$exists": "yes"}})
    with pytest.raises(TypeError, match=r"'\$or' needs a list of dicts"):
        compile_filter({"$or": ["a"]})
    with pytest.raises(ValueError, match="mixes operators and plain keys"):
        compile_filter({"page": {"$gt": 1, "x": 2}})
    with pytest.raises(TypeError, match="filter must be a dict"):
        compile_filter(42)  # type: ignore[arg-type]


def test_mask_dtype_and_shape() -> None:
    mask = filter_mask([], {"a": 1})
    assert mask.dtype == np.bool_ and mask.shape == (0,)
    mask = filter_mask(METAS, {"page": 1})
    assert mask.dtype == np.bool_ and mask.shape == (5,)


def test_numpy_and_numeric_equality() -> None:
    metas = [{"n": np.int64(2)}, {"n": 2.0}, {"n": "2"}, {"n": np.array([2, 2])}]
    assert np.flatnonzero(filter_mask(metas, {"n": 2})).tolist() == [0, 1]
    assert np.flatnonzero(filter_mask(metas, {"n": {"$gte": 2}})).tolist() == [0, 1]
