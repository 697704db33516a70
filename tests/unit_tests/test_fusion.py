"""Tests for langchain_fusion.fusion: closed forms, edge cases, properties, agreement with ranx."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from langchain_fusion.fusion import (
    NORMALIZATIONS,
    alpha_to_weights,
    convex_fusion,
    dbsf,
    minmax,
    normalize,
    ranks_from_scores,
    rrf_fusion,
    top_k,
    validate_weights,
    zscore,
)

NAN = math.nan
NORMALIZERS = {"minmax": minmax, "zscore": zscore, "dbsf": dbsf}


def assert_same(actual: Any, expected: Any) -> None:
    """Equal up to 1e-12, NaN where NaN is expected, and float64."""
    actual = np.asarray(actual)
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=float), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- min-max


def test_minmax_closed_form() -> None:
    assert_same(minmax([2.0, 4.0, 3.0, NAN]), [0.0, 1.0, 0.5, NAN])
    assert_same(minmax([-5, 0, 15]), [0.0, 0.25, 1.0])  # integers are accepted


def test_minmax_constant_single_empty_all_nan() -> None:
    assert_same(minmax([3.0, 3.0, NAN]), [1.0, 1.0, NAN])
    assert_same(minmax([-2.5]), [1.0])
    assert_same(minmax([]), np.empty(0))
    assert_same(minmax([NAN, NAN]), [NAN, NAN])


def test_minmax_extreme_magnitudes() -> None:
    big = np.finfo(np.float64).max
    assert_same(minmax([-big, 0.0, big]), [0.0, 0.5, 1.0])  # max - min overflows
    tiny = 5e-324
    assert_same(minmax([0.0, tiny]), [0.0, 1.0])


def test_minmax_returns_a_new_array() -> None:
    scores = np.array([1.0, 2.0])
    out = minmax(scores)
    out[0] = 42.0
    assert scores.tolist() == [1.0, 2.0]


# ---------------------------------------------------------------- z-score


def test_zscore_closed_form() -> None:
    # mean 5, population standard deviation 2
    assert_same(zscore([2, 4, 4, 4, 5, 5, 7, 9]), [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0])
    # mean 2.5, population std sqrt(1.25); the NaN is ignored
    s = math.sqrt(1.25)
    assert_same(zscore([1.0, NAN, 2.0, 3.0, 4.0]), [-1.5 / s, NAN, -0.5 / s, 0.5 / s, 1.5 / s])


def test_zscore_constant_single_empty_all_nan() -> None:
    assert_same(zscore([0.1 + 0.2, 0.1 + 0.2, 0.1 + 0.2]), [0.0, 0.0, 0.0])
    assert_same(zscore([NAN, 7.0]), [NAN, 0.0])
    assert_same(zscore([]), np.empty(0))
    assert_same(zscore([NAN]), [NAN])


def test_zscore_tiny_and_huge_scores_do_not_underflow_or_overflow() -> None:
    assert_same(zscore([0.0, 1e-170]), [-1.0, 1.0])  # 1e-170 ** 2 underflows to 0
    assert_same(zscore([0.0, 1e200]), [-1.0, 1.0])  # 1e200 ** 2 overflows


# ---------------------------------------------------------------- DBSF


def test_dbsf_closed_form() -> None:
    # mean 2, sample std 1: lower = -1, upper = 5, (s + 1) / 6
    assert_same(dbsf([1.0, 2.0, 3.0, NAN]), [2 / 6, 3 / 6, 4 / 6, NAN])
    # mean 2.5, sample std sqrt(5/3)
    s = math.sqrt(5 / 3)
    lower, upper = 2.5 - 3 * s, 2.5 + 3 * s
    expected = [(x - lower) / (upper - lower) for x in (1.0, 2.0, 3.0, 4.0)]
    assert_same(dbsf([1.0, 2.0, 3.0, 4.0]), expected)


def test_dbsf_clips_outliers_beyond_three_standard_deviations() -> None:
    scores = [0.0] * 10 + [10.0]
    mean = 10 / 11
    std = math.sqrt((10 * mean**2 + (10 - mean) ** 2) / 10)  # sample std ~ 3.015
    lower, upper = mean - 3 * std, mean + 3 * std
    assert (10.0 - lower) / (upper - lower) > 1.0  # Qdrant's unclipped value
    assert_same(dbsf(scores), [(0.0 - lower) / (upper - lower)] * 10 + [1.0])


def test_dbsf_constant_single_empty() -> None:
    assert_same(dbsf([4.0, 4.0]), [1.0, 1.0])
    assert_same(dbsf([NAN, -1.0]), [NAN, 1.0])
    assert_same(dbsf([]), np.empty(0))


# ---------------------------------------------------------------- normalize


def test_normalize_dispatches_to_each_method() -> None:
    scores = [0.3, NAN, 2.0, 1.1, -4.0]
    assert NORMALIZATIONS == ("minmax", "zscore", "dbsf", "none")
    for name, function in NORMALIZERS.items():
        assert_same(normalize(scores, name), function(scores))
    assert_same(normalize(scores, "none"), scores)


def test_normalize_none_copies_and_still_validates() -> None:
    scores = np.array([1.0, 2.0])
    out = normalize(scores, "none")
    out[0] = 9.0
    assert scores[0] == 1.0
    with pytest.raises(ValueError, match=re.escape("scores must be finite numbers or NaN")):
        normalize([1.0, math.inf], "none")


@pytest.mark.parametrize("method", ["l2", "MinMax", "", None])
def test_normalize_unknown_method(method: Any) -> None:
    message = f"method must be one of 'minmax', 'zscore', 'dbsf', 'none', got {method!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        normalize([1.0], method)


@pytest.mark.parametrize("function", [minmax, zscore, dbsf])
def test_normalizations_reject_bad_scores(function: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("scores must be a 1-D array, got shape (2, 1)")):
        function([[1.0], [2.0]])
    with pytest.raises(ValueError, match=re.escape("scores must be a 1-D array, got shape ()")):
        function(1.0)
    with pytest.raises(ValueError, match=re.escape("got -inf at index 2")):
        function([1.0, NAN, -math.inf])
    with pytest.raises(TypeError, match="scores must be a 1-D array of numbers"):
        function(["high", "low"])


# ---------------------------------------------------------------- convex fusion


def test_convex_fusion_closed_form() -> None:
    vector = [1.0, 0.5, NAN, 0.0]
    keyword = [0.0, 1.0, 0.5, NAN]
    # 0.7 * vector + 0.3 * keyword, NaN -> 0
    assert_same(convex_fusion([vector, keyword], [0.7, 0.3]), [0.7, 0.65, 0.15, 0.0])
    # NaN -> -1
    fused = convex_fusion([vector, keyword], [0.7, 0.3], missing=-1.0)
    assert_same(fused, [0.7, 0.65, -0.7 + 0.15, -0.3])
    # NaN -> the row's minimum: 0.0 for vector, 0.0 for keyword
    assert_same(convex_fusion([vector, keyword], [0.7, 0.3], missing="min"), [0.7, 0.65, 0.15, 0])


def test_convex_fusion_missing_min_uses_each_rows_minimum() -> None:
    normalized = np.array([[0.2, NAN, 0.8], [NAN, 3.0, 5.0], [NAN, NAN, NAN]])
    weights = [1.0, 2.0, 4.0]
    # row mins: 0.2, 3.0, and an all-NaN row contributes 0
    expected = [0.2 + 2 * 3.0, 0.2 + 2 * 3.0, 0.8 + 2 * 5.0]
    assert_same(convex_fusion(normalized, weights, missing="min"), expected)
    assert np.isnan(normalized).sum() == 5  # the input is not modified


def test_convex_fusion_single_retriever_and_no_candidates() -> None:
    assert_same(convex_fusion([[0.25, NAN]], [2.0]), [0.5, 0.0])
    assert_same(convex_fusion(np.empty((2, 0)), [0.5, 0.5], missing="min"), np.empty(0))


def test_convex_fusion_validation() -> None:
    with pytest.raises(
        ValueError, match=re.escape("normalized must be a 2-D array, got shape (2,)")
    ):
        convex_fusion([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match=re.escape("got shape (0, 3)")):
        convex_fusion(np.empty((0, 3)), [])
    with pytest.raises(
        ValueError, match=re.escape("weights must have one value per retriever (2)")
    ):
        convex_fusion([[0.1], [0.2]], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("got inf at index (1, 0)")):
        convex_fusion([[0.1], [math.inf]], [1.0, 1.0])


@pytest.mark.parametrize("bad", ["max", NAN, math.inf, True, None])
def test_convex_fusion_rejects_bad_missing(bad: Any) -> None:
    message = f"missing must be a finite number or 'min', got {bad!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        convex_fusion([[0.1], [0.2]], [1.0, 1.0], missing=bad)


# ---------------------------------------------------------------- reciprocal rank fusion


def test_rrf_fusion_closed_form() -> None:
    ranks = [[1, 2, 0], [3, 1, 2]]
    expected = [1 / 61 + 2 / 63, 1 / 62 + 2 / 61, 2 / 62]
    assert_same(rrf_fusion(ranks, [1.0, 2.0]), expected)
    assert_same(rrf_fusion(ranks, [1.0, 1.0], k=0), [1 + 1 / 3, 1 / 2 + 1, 1 / 2])
    assert_same(
        rrf_fusion(np.array(ranks, dtype=np.uint32), [1, 1], k=2.5),
        [1 / 3.5 + 1 / 5.5, 1 / 4.5 + 1 / 3.5, 1 / 4.5],
    )


def test_rrf_fusion_not_retrieved_anywhere_and_no_candidates() -> None:
    assert_same(rrf_fusion([[0, 1], [0, 0]], [1.0, 1.0]), [0.0, 1 / 61])
    assert_same(rrf_fusion(np.zeros((2, 0), dtype=np.int64), [1.0, 1.0]), np.empty(0))
    assert_same(rrf_fusion([[], []], [1.0, 1.0]), np.empty(0))


def test_rrf_fusion_validation() -> None:
    with pytest.raises(
        TypeError, match=re.escape("ranks must be an integer array, got dtype float64")
    ):
        rrf_fusion([[1.0, 2.0]], [1.0])
    with pytest.raises(ValueError, match=re.escape("ranks must be a 2-D array, got shape (2,)")):
        rrf_fusion([1, 2], [1.0])
    with pytest.raises(
        ValueError, match=re.escape("ranks must be >= 0 (1 = best, 0 = not retrieved), got -1")
    ):
        rrf_fusion([[1, -1]], [1.0])
    with pytest.raises(ValueError, match=re.escape("weights must not all be zero, got [0.0, 0.0]")):
        rrf_fusion([[1], [1]], [0, 0])


@pytest.mark.parametrize("bad", [-1, NAN, math.inf, "60", True])
def test_rrf_fusion_rejects_bad_k(bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(f"k must be a finite number >= 0, got {bad!r}")):
        rrf_fusion([[1]], [1.0], k=bad)


# ---------------------------------------------------------------- ranks and top-k


def test_ranks_from_scores_closed_form() -> None:
    ranks = ranks_from_scores([0.2, 0.9, NAN, 0.2, -1.0, 0.9])
    assert ranks.dtype == np.int64
    assert ranks.tolist() == [3, 1, 0, 4, 5, 2]  # ties: the earlier position ranks first
    assert ranks_from_scores([-math.inf, NAN, math.inf, 0.0]).tolist() == [3, 0, 1, 2]
    assert ranks_from_scores([NAN, NAN]).tolist() == [0, 0]
    assert ranks_from_scores([]).tolist() == []
    with pytest.raises(ValueError, match=re.escape("scores must be a 1-D array, got shape (1, 2)")):
        ranks_from_scores([[1.0, 2.0]])


def test_top_k_closed_form() -> None:
    fused = [0.1, 0.7, 0.3, 0.7, NAN, 0.3]
    assert top_k(fused, 3).tolist() == [1, 3, 2]
    assert top_k(fused, 4).tolist() == [1, 3, 2, 5]
    assert top_k(fused, 5).tolist() == [1, 3, 2, 5, 0]
    assert top_k(fused, 6).tolist() == [1, 3, 2, 5, 0, 4]  # NaN last
    assert top_k(fused, 100).tolist() == [1, 3, 2, 5, 0, 4]
    assert top_k([NAN, 1.0, NAN], 2).tolist() == [1, 0]
    assert top_k(fused, 0).tolist() == []
    assert top_k([], 3).tolist() == []


@pytest.mark.parametrize("bad", [-1, 2.0, True, "3", None])
def test_top_k_rejects_bad_k(bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(f"k must be an integer >= 0, got {bad!r}")):
        top_k([1.0, 2.0], bad)


def test_top_k_rejects_bad_fused() -> None:
    with pytest.raises(ValueError, match=re.escape("fused must be a 1-D array, got shape (1, 1)")):
        top_k([[1.0]], 1)


def test_top_k_matches_a_stable_sort_on_a_large_array_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    fused = rng.integers(0, 50, size=20_000).astype(float) / 7
    fused[rng.random(fused.size) < 0.05] = NAN
    reference = np.argsort(-fused, kind="stable")
    for k in [1, 2, 10, 399, 400, 401, 5_000, 19_000, 19_999, 20_000]:
        np.testing.assert_array_equal(top_k(fused, k), reference[:k])


# ---------------------------------------------------------------- weights


def test_alpha_to_weights() -> None:
    assert alpha_to_weights(0.25) == (0.25, 0.75)
    assert alpha_to_weights(0) == (0.0, 1.0)
    assert alpha_to_weights(np.float32(1.0)) == (1.0, 0.0)
    for bad, shown in [(1.5, "1.5"), (-0.1, "-0.1"), (NAN, "nan"), (np.float64(2.0), "2.0")]:
        with pytest.raises(ValueError, match=re.escape(f"alpha must be in [0, 1], got {shown}")):
            alpha_to_weights(bad)


@pytest.mark.parametrize("wrong", ["0.5", None, True])
def test_alpha_to_weights_rejects_non_numbers(wrong: Any) -> None:
    message = f"alpha must be a number in [0, 1], got {wrong!r}"
    with pytest.raises(TypeError, match=re.escape(message)):
        alpha_to_weights(wrong)


def test_validate_weights() -> None:
    weights = [1, 0]
    out = validate_weights(weights, 2)
    assert out.dtype == np.float64
    assert out.tolist() == [1.0, 0.0]
    source = np.array([0.5, 0.5])
    validate_weights(source, 2)[0] = 3.0
    assert source[0] == 0.5  # a copy, never a view of the caller's array
    with pytest.raises(TypeError, match="weights must be a 1-D array of numbers"):
        validate_weights(["a", "b"], 2)


@pytest.mark.parametrize(
    ("bad", "n", "message"),
    [
        ([0.5], 2, "weights must have one value per retriever (2), got 1: [0.5]"),
        ([0.5, -0.1], 2, "weights must be finite and >= 0, got [0.5, -0.1]"),
        ([0.5, NAN], 2, "weights must be finite and >= 0, got [0.5, nan]"),
        ([math.inf, 1.0], 2, "weights must be finite and >= 0, got [inf, 1.0]"),
        ([0, 0, 0], 3, "weights must not all be zero, got [0.0, 0.0, 0.0]"),
        ([[0.5, 0.5]], 2, "weights must be a 1-D array, got shape (1, 2)"),
        (0.5, 1, "weights must be a 1-D array, got shape ()"),
        ([1.0], 0, "n must be an integer >= 1 (the number of retrievers), got 0"),
    ],
)
def test_validate_weights_rejects(bad: Any, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_weights(bad, n)


# ---------------------------------------------------------------- properties (hypothesis)

finite_scores = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
score_or_nan = st.one_of(finite_scores, st.just(NAN))
score_arrays = hnp.arrays(np.float64, st.integers(0, 40), elements=score_or_nan)
fast = settings(max_examples=75, deadline=None, database=None)  # no .hypothesis/ in the repo


@fast
@given(score_arrays, st.sampled_from(NORMALIZATIONS))
def test_nan_positions_and_shape_are_kept(scores: np.ndarray, method: str) -> None:
    out = normalize(scores, method)
    assert out.shape == scores.shape
    assert out.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(out), np.isnan(scores))


@fast
@given(score_arrays, st.sampled_from(["minmax", "dbsf"]))
def test_bounded_normalizations_stay_in_unit_interval(scores: np.ndarray, method: str) -> None:
    out = normalize(scores, method)
    finite = out[~np.isnan(out)]
    assert ((finite >= 0.0) & (finite <= 1.0)).all()
    if method == "minmax" and finite.size:
        assert finite.max() == 1.0
        assert finite.min() == (1.0 if np.unique(scores[~np.isnan(scores)]).size == 1 else 0.0)


@fast
@given(score_arrays, st.sampled_from(NORMALIZATIONS))
def test_normalizations_preserve_order(scores: np.ndarray, method: str) -> None:
    out = normalize(scores, method)
    scored = ~np.isnan(scores)
    order = np.argsort(scores[scored], kind="stable")
    assert (np.diff(out[scored][order]) >= 0).all()


@fast
@given(score_arrays, st.sampled_from(NORMALIZATIONS), st.randoms(use_true_random=False))
def test_normalizations_are_permutation_equivariant(
    scores: np.ndarray, method: str, random: Any
) -> None:
    permutation = np.array(random.sample(range(scores.size), scores.size), dtype=np.intp)
    direct = normalize(scores, method)[permutation]
    permuted = normalize(scores[permutation], method)
    if method in ("minmax", "none"):  # min and max do not depend on the order: exact
        np.testing.assert_array_equal(direct, permuted)
    else:  # mean and std are sums: equal up to rounding
        np.testing.assert_allclose(direct, permuted, rtol=0, atol=1e-9)


@fast
@given(hnp.arrays(np.float64, st.integers(2, 40), elements=finite_scores))
def test_zscore_has_zero_mean_and_unit_variance(scores: np.ndarray) -> None:
    out = zscore(scores)
    if np.unique(scores).size == 1:
        assert (out == 0.0).all()
    else:
        assert abs(out.mean()) < 1e-9
        assert abs(out.std() - 1.0) < 1e-9


@fast
@given(score_arrays)
def test_ranks_are_a_stable_ordering_of_the_scored_candidates(scores: np.ndarray) -> None:
    ranks = ranks_from_scores(scores)
    scored = ~np.isnan(scores)
    assert (ranks[~scored] == 0).all()
    assert sorted(ranks[scored].tolist()) == list(range(1, int(scored.sum()) + 1))
    by_rank = np.flatnonzero(scored)[np.argsort(ranks[scored])]
    for better, worse in itertools.pairwise(by_rank):
        assert scores[better] > scores[worse] or (
            scores[better] == scores[worse] and better < worse
        )


@fast
@given(score_arrays, st.integers(0, 45))
def test_top_k_is_the_prefix_of_a_stable_sort(scores: np.ndarray, k: int) -> None:
    expected = np.argsort(-scores, kind="stable")[:k]
    np.testing.assert_array_equal(top_k(scores, k), expected)


@fast
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(0, 20)), elements=score_or_nan),
    st.data(),
)
def test_convex_fusion_equals_an_explicit_weighted_sum(normalized: np.ndarray, data: Any) -> None:
    n = normalized.shape[0]
    weights = data.draw(st.lists(st.floats(0.01, 10.0), min_size=n, max_size=n))
    missing = data.draw(st.one_of(st.floats(-1.0, 1.0), st.just("min")))
    fused = convex_fusion(normalized, weights, missing=missing)
    for j in range(normalized.shape[1]):
        total = 0.0
        for i in range(n):
            value = normalized[i, j]
            if math.isnan(value):
                row = normalized[i][~np.isnan(normalized[i])]
                value = (row.min() if row.size else 0.0) if missing == "min" else missing
            total += weights[i] * value
        assert math.isclose(fused[j], total, rel_tol=1e-12, abs_tol=1e-6)


@fast
@given(
    hnp.arrays(
        np.int64, st.tuples(st.integers(1, 4), st.integers(0, 20)), elements=st.integers(0, 100)
    )
)
def test_rrf_rewards_better_ranks(ranks: np.ndarray) -> None:
    weights = np.ones(ranks.shape[0])
    fused = rrf_fusion(ranks, weights)
    improved = ranks.copy()
    improved[improved > 1] -= 1  # every retrieved candidate moves up one place
    assert (rrf_fusion(improved, weights) >= fused).all()
    assert ((fused > 0) == (ranks > 0).any(axis=0)).all()


# ---------------------------------------------------------------- agreement with ranx
#
# ranx compiles its fusion code with numba, which takes 15-40 s on a small machine. Its pure Python
# source is the reference here, so it runs once, in a subprocess with NUMBA_DISABLE_JIT=1: the
# cost is then only ranx's import (about 5 s), paid once for all the cases below.

Runs = list[dict[str, dict[str, float]]]

_RANX_SCRIPT = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import ranx
from ranx.fusion import rrf

results = {}
for name, job in json.load(sys.stdin).items():
    runs = [ranx.Run(run) for run in job["runs"]]
    if job.get("rrf_k") is not None:  # each run's own RRF scores, fused by weighted sum
        runs = [rrf([run], k=job["rrf_k"]) for run in runs]
    fused = ranx.fuse(runs=runs, norm=job["norm"], method=job["method"], params=job["params"])
    results[name] = fused.to_dict()
json.dump(results, sys.stdout)
"""


def _random_runs(seed: int, n_runs: int, n_queries: int = 6, n_docs: int = 25) -> Runs:
    """Runs as {query: {doc: score}}, on different scales; each run misses some documents."""
    rng = np.random.default_rng(seed)
    runs: Runs = [{} for _ in range(n_runs)]
    for q in range(n_queries):
        for r, run in enumerate(runs):
            retrieved = rng.random(n_docs) < 0.7
            retrieved[rng.choice(n_docs, size=2, replace=False)] = True  # >= 2 docs per run
            scale, shift = (1.0, -0.2) if r == 0 else (20.0 * r, 0.0)  # cosine-like, BM25-like
            scores = shift + scale * rng.random(n_docs)
            run[f"q{q}"] = {f"d{d:02d}": float(scores[d]) for d in np.flatnonzero(retrieved)}
    return runs


@dataclass(frozen=True)
class RanxCase:
    """One comparison: our fusion ``method`` ("minmax", "zscore" or "rrf") against ranx."""

    method: str
    weights: list[float]
    runs: Runs
    k: float = 60  # RRF

    def ranx_job(self) -> dict[str, Any]:
        weighted_sum = {"method": "wsum", "params": {"weights": self.weights}}
        if self.method == "minmax":
            return {"runs": self.runs, "norm": "min-max", **weighted_sum}
        if self.method == "zscore":
            return {"runs": self.runs, "norm": "zmuv", **weighted_sum}
        if set(self.weights) == {1.0}:
            return {"runs": self.runs, "norm": None, "method": "rrf", "params": {"k": self.k}}
        # ranx 0.3 has no weighted RRF: each run's own RRF scores, fused by ranx's weighted sum
        return {"runs": self.runs, "norm": None, "rrf_k": self.k, **weighted_sum}

    def ours(self, raw: np.ndarray) -> np.ndarray:
        """Fuse raw scores (n_runs, n_candidates), NaN = not retrieved, as the retriever does."""
        if self.method == "rrf":
            ranks = np.vstack([ranks_from_scores(row) for row in raw])
            return rrf_fusion(ranks, self.weights, k=self.k)
        # ranx scores a document missing from a run 0 after normalization: missing=0.0
        normalized = np.vstack([normalize(row, self.method) for row in raw])
        return convex_fusion(normalized, self.weights, missing=0.0)


RANX_CASES = {
    "minmax-equal": RanxCase("minmax", [0.5, 0.5], _random_runs(1, 2)),
    "minmax-0.8": RanxCase("minmax", [0.8, 0.2], _random_runs(2, 2)),
    "minmax-3-runs": RanxCase("minmax", [0.1, 0.3, 0.6], _random_runs(3, 3)),
    "zscore-equal": RanxCase("zscore", [0.5, 0.5], _random_runs(4, 2)),
    "zscore-0.8": RanxCase("zscore", [0.8, 0.2], _random_runs(5, 2)),
    "zscore-3-runs": RanxCase("zscore", [0.1, 0.3, 0.6], _random_runs(6, 3)),
    "rrf": RanxCase("rrf", [1.0, 1.0], _random_runs(7, 2)),
    "rrf-3-runs": RanxCase("rrf", [1.0, 1.0, 1.0], _random_runs(8, 3)),
    "weighted-rrf-k10": RanxCase("rrf", [0.7, 0.3], _random_runs(9, 2), k=10),
}


@pytest.fixture(scope="module")
def ranx_fused() -> dict[str, dict[str, dict[str, float]]]:
    if importlib.util.find_spec("ranx") is None:
        pytest.skip("ranx is not installed")
    jobs = {name: case.ranx_job() for name, case in RANX_CASES.items()}
    completed = subprocess.run(
        [sys.executable, "-c", _RANX_SCRIPT],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results: dict[str, dict[str, dict[str, float]]] = json.loads(completed.stdout)
    return results


@pytest.mark.parametrize("name", list(RANX_CASES))
def test_fusion_agrees_with_ranx(ranx_fused: dict[str, Any], name: str) -> None:
    case = RANX_CASES[name]
    expected = ranx_fused[name]
    assert set(expected) == set(case.runs[0])
    for query, ranx_scores in expected.items():
        docs = sorted({doc for run in case.runs for doc in run[query]})
        fused = case.ours(
            np.array([[run[query].get(doc, NAN) for doc in docs] for run in case.runs])
        )
        assert set(ranx_scores) == set(docs)
        for doc, value in zip(docs, fused, strict=True):
            assert abs(ranx_scores[doc] - value) < 1e-9, (query, doc, ranx_scores[doc], value)
        # our ranking never puts a document before one that ranx scores higher
        ranked = [ranx_scores[docs[i]] for i in top_k(fused, len(docs))]
        assert all(a >= b - 1e-9 for a, b in itertools.pairwise(ranked))
