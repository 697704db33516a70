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
        ({"tags": "y"}, [0, 1]),  # list-valued field: any item equals (MongoDB)
        ({"tags": {"$eq": ["y"]}}, [1]),  # ... or the whole value does
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


# A list-valued field is matched element-wise by every operator (MongoDB's rule), so that
# $eq/$ne and $in/$nin agree with each other; the whole value is tried too.
TAGGED: list[dict[str, Any]] = [
    {"tags": ["x", "y"]},
    {"tags": ["y"]},
    {"tags": []},
    {"tags": "x"},
    {"tags": ("x", "z")},
    {"tags": {"x"}},
    {},
    {"tags": [["x", "y"], "w"]},
]


def tagged(filter: Any) -> list[int]:
    return [int(i) for i in np.flatnonzero(filter_mask(TAGGED, filter))]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"tags": "x"}, [0, 3, 4, 5]),
        ({"tags": {"$eq": "x"}}, [0, 3, 4, 5]),
        ({"tags": {"$in": ["x"]}}, [0, 3, 4, 5]),
        ({"tags": {"$ne": "x"}}, [1, 2, 6, 7]),
        ({"tags": {"$nin": ["x"]}}, [1, 2, 6, 7]),
        ({"tags": {"$in": ["w", "z"]}}, [4, 7]),
        ({"tags": {"$nin": ["w", "z"]}}, [0, 1, 2, 3, 5, 6]),
        # whole-list equality still matches the identical list (and an element equal to it)
        ({"tags": {"$eq": ["x", "y"]}}, [0, 7]),
        ({"tags": {"$ne": ["x", "y"]}}, [1, 2, 3, 4, 5, 6]),
        ({"tags": {"$in": [["x", "y"]]}}, [0, 7]),
        ({"tags": ["x", "y"]}, [0, 1, 3, 4, 5, 7]),  # bare list = $in, or the whole list
        ({"tags": []}, [2]),  # an empty list matches the empty list
        ({"tags": {"$in": []}}, []),
        ({"tags": {"$nin": []}}, [0, 1, 2, 3, 4, 5, 6, 7]),
    ],
)
def test_list_valued_fields_match_element_wise(flt: dict[str, Any], expected: list[int]) -> None:
    assert tagged(flt) == expected


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        ({"tags": "x"}, {"tags": {"$ne": "x"}}),
        ({"tags": {"$eq": "x"}}, {"tags": {"$ne": "x"}}),
        ({"tags": {"$eq": ["x", "y"]}}, {"tags": {"$ne": ["x", "y"]}}),
        ({"tags": {"$in": ["x", "w"]}}, {"tags": {"$nin": ["x", "w"]}}),
        ({"tags": {"$in": [["x", "y"], "z"]}}, {"tags": {"$nin": [["x", "y"], "z"]}}),
    ],
)
def test_negations_are_complements(positive: dict[str, Any], negative: dict[str, Any]) -> None:
    """$ne is exactly "not $eq" and $nin exactly "not $in", on list-valued fields too."""
    everything = set(range(len(TAGGED)))
    assert set(tagged(negative)) == everything - set(tagged(positive))
    assert tagged(negative) == tagged({"$not": positive})


def test_ranges_on_list_valued_fields() -> None:
    metas: list[dict[str, Any]] = [{"n": [1, 5]}, {"n": [3]}, {"n": []}, {"n": ["a", 9]}, {}]

    def got(flt: Any) -> list[int]:
        return [int(i) for i in np.flatnonzero(filter_mask(metas, flt))]

    assert got({"n": {"$gt": 4}}) == [0, 3]  # any element; "a" > 4 is no match, 9 > 4 is
    assert got({"n": {"$lte": 1}}) == [0]
    assert got({"n": {"$lt": 0}}) == []
    # operators on one field are tested independently (MongoDB): 5 > 2 and 1 < 4
    assert got({"n": {"$gt": 2, "$lt": 4}}) == [0, 1]
    assert got({"n": {"$gt": "0"}}) == [3]  # strings compare with strings only


def test_predicate_and_mask_agree() -> None:
    for flt in [{"tags": "x"}, {"tags": {"$ne": "x"}}, {"tags": {"$nin": ["x"]}}, {"tags": []}]:
        predicate = compile_filter(flt)
        assert predicate is not None
        assert filter_mask(TAGGED, flt).tolist() == [predicate(m) for m in TAGGED]


def test_tuples_and_lists_are_interchangeable() -> None:
    """A filter and its JSON form (the key of cached masks) must mean the same thing."""
    metas: list[dict[str, Any]] = [{"v": ["a", "b"]}, {"v": ("a", "b")}, {"v": [1, 2]}, {"v": []}]

    def got(flt: Any) -> list[int]:
        return [int(i) for i in np.flatnonzero(filter_mask(metas, flt))]

    assert got({"v": {"$eq": ("a", "b")}}) == got({"v": {"$eq": ["a", "b"]}}) == [0, 1]
    assert got({"v": ()}) == got({"v": []}) == [3]
    assert got({"v": {"$lt": (1, 3)}}) == got({"v": {"$lt": [1, 3]}}) == [2, 3]
