from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import langchain_fusion.dense.index as index_module
from langchain_fusion.dense import DenseIndex

DIM = 16


def _unit(x: NDArray[np.float64]) -> NDArray[np.float32]:
    x32 = np.asarray(x, dtype=np.float32)
    return (x32 / np.linalg.norm(x32.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, dim: int, seed: int, n_clusters: int = 20) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim))
    labels = rng.integers(0, n_clusters, size=n)
    return (centers[labels] + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(
    vectors: NDArray[np.float32],
    queries: NDArray[np.float32],
    k: int,
    allowed: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Reference top-k: float64 inner products over the allowed slots, ties by lower slot."""
    slots_out = np.full((len(queries), k), -1, dtype=np.int64)
    scores_out = np.full((len(queries), k), -np.inf)
    ids = np.flatnonzero(allowed)
    for row, query in enumerate(queries):
        scores = vectors[ids].astype(np.float64) @ query.astype(np.float64)
        order = np.lexsort((ids, -scores))[:k]
        slots_out[row, : len(order)] = ids[order]
        scores_out[row, : len(order)] = scores[order]
    return slots_out, scores_out


def recall_at_k(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hits = [
        len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum())
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


@pytest.fixture
def data() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    rng = np.random.default_rng(7)
    vectors = _unit(rng.standard_normal((300, DIM)))
    queries = _unit(rng.standard_normal((12, DIM)))
    return vectors, queries


@pytest.fixture
def force_filtered_ann(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make filtered searches use the FAISS selector path even at toy sizes."""
    monkeypatch.setattr(index_module, "_EXACT_FILTER_MAX_ALLOWED", 0)
    monkeypatch.setattr(index_module, "_EXACT_FILTER_MAX_FRACTION", 0.0)


def exact_params(kind: str) -> dict[str, object]:
    """Parameters that make hnsw/ivf exact at toy sizes (so results can be compared exactly)."""
    if kind == "hnsw":
        return {"ef_search": 400, "ef_construction": 200}
    if kind == "ivf":
        return {"nlist": 4, "nprobe": 4}
    return {}


# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"dim": 0}, ValueError, "dim must be an int >= 1, got 0"),
        ({"dim": 3.0}, TypeError, "dim must be an int >= 1, got float 3.0"),
        ({"dim": True}, TypeError, "dim must be an int"),
        (
            {"dim": 4, "kind": "annoy"},
            ValueError,
            "kind must be one of 'auto', 'flat', 'hnsw', 'ivf', got 'annoy'",
        ),
        ({"dim": 4, "ef_search": 0}, ValueError, "ef_search must be an int >= 1, got 0"),
        ({"dim": 4, "nlist": 0}, ValueError, "nlist must be an int >= 1, got 0"),
        ({"dim": 4, "hnsw_m": 1}, ValueError, "hnsw_m must be an int >= 2, got 1"),
        ({"dim": 4, "normalize": "yes"}, TypeError, "normalize must be a bool"),
    ],
)
def test_constructor_validation(
    kwargs: dict[str, object], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message.replace("(", r"\(").replace(")", r"\)")):
        DenseIndex(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "active"), [("auto", "flat"), ("flat", "flat"), ("hnsw", "hnsw"), ("ivf", "ivf")]
)
def test_kind_and_active_kind(kind: str, active: str) -> None:
    index = DenseIndex(DIM, kind=kind)
    assert index.kind == kind
    assert index.active_kind == active
    assert (index.n_slots, index.n_live) == (0, 0)
    assert index.live_mask.shape == (0,)


# ----------------------------------------------------------------------------- add


def test_add_returns_consecutive_slots_and_normalizes(
    data: tuple[NDArray[np.float32], NDArray[np.float32]],
) -> None:
    vectors, _ = data
    index = DenseIndex(DIM)
    first = index.add(vectors[:10] * 3.0)
    second = index.add(vectors[10:25].tolist())
    assert first.dtype == np.int64
    np.testing.assert_array_equal(first, np.arange(10))
    np.testing.assert_array_equal(second, np.arange(10, 25))
    assert (index.n_slots, index.n_live) == (25, 25)
    stored = index.get_vectors(np.arange(25))
    assert stored.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(stored, vectors[:25], atol=1e-6)


def test_add_without_normalize_keeps_raw_vectors() -> None:
    index = DenseIndex(2, normalize=False)
    index.add([[3.0, 4.0], [0.0, 0.0]])  # a zero vector is fine without normalization
    np.testing.assert_array_equal(index.get_vectors([0, 1]), [[3.0, 4.0], [0.0, 0.0]])
    slots, scores = index.search([1.0, 1.0], k=2)
    np.testing.assert_array_equal(slots, [[0, 1]])
    np.testing.assert_allclose(scores, [[7.0, 0.0]])


def test_add_empty_is_a_no_op() -> None:
    index = DenseIndex(DIM)
    assert index.add(np.empty((0, DIM))).shape == (0,)
    assert index.add([]).shape == (0,)
    assert index.n_slots == 0


def test_buffer_grows_across_many_small_adds() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng.standard_normal((200, DIM)))
    index = DenseIndex(DIM)
    for i in range(200):
        assert index.add(vectors[i : i + 1])[0] == i
    np.testing.assert_allclose(index.get_vectors(np.arange(200)), vectors, atol=1e-6)
    # amortised doubling: capacity is a small multiple of the size, not one row per add
    assert index._vectors.shape[0] < 2 * 200 + 16


@pytest.mark.parametrize(
    ("bad", "exc", "message"),
    [
        (np.ones(DIM), ValueError, rf"vectors must have shape \(n, {DIM}\), got shape \({DIM},\)"),
        (np.ones((2, 3)), ValueError, rf"vectors has dimension 3, expected dimension {DIM}"),
        (np.ones((2, 2, DIM)), ValueError, "vectors must have shape"),
        ([["a"] * DIM], TypeError, "vectors must hold real numbers, got dtype <U1"),
        ([[1.0] * DIM, [1.0] * 3], ValueError, "ragged"),
    ],
)
def test_add_rejects_bad_shapes_and_types(bad: object, exc: type[Exception], message: str) -> None:
    index = DenseIndex(DIM)
    with pytest.raises(exc, match=message):
        index.add(bad)  # type: ignore[arg-type]
    assert index.n_slots == 0


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf, 1e39])
def test_add_rejects_non_finite_rows_atomically(bad_value: float) -> None:
    index = DenseIndex(DIM)
    index.add(np.ones((2, DIM)))
    batch = np.ones((5, DIM))
    batch[3, 7] = bad_value
    with pytest.raises(ValueError, match="vectors row 3 contains NaN or infinity"):
        index.add(batch)
    assert (index.n_slots, index.n_live) == (2, 2)
    assert index.add(np.ones((1, DIM)))[0] == 2  # nothing was half-added


def test_add_rejects_zero_vector_when_normalizing() -> None:
    index = DenseIndex(DIM)
    batch = np.ones((3, DIM))
    batch[1] = 0.0
    with pytest.raises(ValueError, match="vectors row 1 is a zero vector"):
        index.add(batch)
    assert index.n_slots == 0


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_search_shapes_and_padding(
    kind: str, data: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM, kind=kind, **exact_params(kind))  # type: ignore[arg-type]
    slots, scores = index.search(queries[0], k=3)  # empty index
    assert slots.shape == scores.shape == (1, 3)
    assert (slots == -1).all() and np.isneginf(scores).all()

    index.add(vectors[:5])
    slots, scores = index.search(queries[0], k=8)  # 1-D query -> one row
    assert slots.dtype == np.int64 and scores.dtype == np.float64
    assert slots.shape == scores.shape == (1, 8)
    assert sorted(slots[0, :5]) == [0, 1, 2, 3, 4]
    assert (slots[0, 5:] == -1).all() and np.isneginf(scores[0, 5:]).all()
    assert (np.diff(scores[0, :5]) <= 0).all()

    slots, scores = index.search(queries, k=2)
    assert slots.shape == scores.shape == (len(queries), 2)
    slots, scores = index.search(np.empty((0, DIM)), k=2)
    assert slots.shape == scores.shape == (0, 2)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_search_matches_brute_force(
    kind: str, data: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM, kind=kind, **exact_params(kind))  # type: ignore[arg-type]
    index.add(vectors)
    slots, scores = index.search(queries, k=10)
    ref_slots, ref_scores = brute_force(vectors, queries, 10, np.ones(len(vectors), dtype=bool))
    np.testing.assert_array_equal(slots, ref_slots)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_flat_ties_are_broken_by_lower_slot() -> None:
    index = DenseIndex(2, kind="flat")
    index.add([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    slots, _ = index.search([1.0, 0.0], k=4)
    np.testing.assert_array_equal(slots, [[1, 3, 4, 0]])


@pytest.mark.parametrize(
    ("query", "k", "exc", "message"),
    [
        (np.ones(DIM), 0, ValueError, "k must be an int >= 1, got 0"),
        (np.ones(DIM), 2.5, TypeError, "k must be an int >= 1, got float 2.5"),
        (np.ones(3), 2, ValueError, rf"queries has dimension 3, expected dimension {DIM}"),
        (np.zeros(DIM), 2, ValueError, "queries row 0 is a zero vector"),
        (np.full((2, DIM), np.nan), 2, ValueError, "queries row 0 contains NaN"),
        (
            np.ones((1, 1, DIM)),
            2,
            ValueError,
            rf"queries must have shape \(n, {DIM}\) or \({DIM},\)",
        ),
    ],
)
def test_search_validation(query: object, k: object, exc: type[Exception], message: str) -> None:
    index = DenseIndex(DIM)
    index.add(np.ones((3, DIM)))
    with pytest.raises(exc, match=message):
        index.search(query, k)  # type: ignore[arg-type]


def test_mask_validation(data: tuple[NDArray[np.float32], NDArray[np.float32]]) -> None:
    vectors, queries = data
    index = DenseIndex(DIM)
    index.add(vectors[:10])
    with pytest.raises(TypeError, match="mask must be a boolean array over slots, got dtype int64"):
        index.search(queries[0], 3, mask=np.ones(10, dtype=np.int64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask has length 11, but the index has only 10 slots"):
        index.search(queries[0], 3, mask=np.ones(11, dtype=bool))
    with pytest.raises(ValueError, match="mask must be 1-D"):
        index.search(queries[0], 3, mask=np.ones((2, 5), dtype=bool))


def test_short_mask_disallows_the_slots_it_does_not_cover(
    data: tuple[NDArray[np.float32], NDArray[np.float32]],
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM)
    index.add(vectors[:10])
    slots, _ = index.search(queries[0], 10, mask=np.ones(4, dtype=bool))
    assert sorted(slots[0, :4]) == [0, 1, 2, 3]
    assert (slots[0, 4:] == -1).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("fraction", [0.9, 0.3, 0.03])
@pytest.mark.usefixtures("force_filtered_ann")
def test_mask_returns_exact_top_k_of_allowed_set(kind: str, fraction: float) -> None:
    vectors = _unit(_clustered(1000, DIM, seed=3).astype(np.float64))
    queries = _unit(_clustered(20, DIM, seed=4).astype(np.float64))
    rng = np.random.default_rng(5)
    index = DenseIndex(DIM, kind=kind, **exact_params(kind))  # type: ignore[arg-type]
    index.add(vectors)
    removed = rng.choice(1000, size=50, replace=False)
    index.remove(removed)
    mask = rng.random(1000) < fraction
    allowed = mask & index.live_mask
    slots, scores = index.search(queries, k=10, mask=mask)
    ref_slots, ref_scores = brute_force(vectors, queries, 10, allowed)
    np.testing.assert_array_equal(slots, ref_slots)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.usefixtures("force_filtered_ann")
def test_filtered_ann_with_default_params_still_returns_k_allowed(kind: str) -> None:
    # Default (approximate) parameters: a selective filter must still yield k allowed results.
    vectors = _unit(_clustered(3000, DIM, seed=8).astype(np.float64))
    queries = _unit(_clustered(30, DIM, seed=9).astype(np.float64))
    index = DenseIndex(DIM, kind=kind)
    index.add(vectors)
    mask = np.random.default_rng(10).random(3000) < 0.01  # ~30 allowed vectors
    slots, _ = index.search(queries, k=10, mask=mask)
    assert (slots >= 0).all()
    assert mask[slots].all()
    truth, _ = brute_force(vectors, queries, 10, mask)
    assert recall_at_k(slots, truth) >= 0.9


def test_selective_filter_uses_exact_scan_and_is_exact() -> None:
    # Without monkeypatching, a small allowed set goes through the exact scan even for HNSW.
    vectors = _unit(_clustered(2000, DIM, seed=11).astype(np.float64))
    queries = _unit(_clustered(10, DIM, seed=12).astype(np.float64))
    index = DenseIndex(DIM, kind="hnsw", ef_search=1)  # a deliberately poor graph search
    index.add(vectors)
    mask = np.zeros(2000, dtype=bool)
    mask[::7] = True
    slots, _ = index.search(queries, k=10, mask=mask)
    np.testing.assert_array_equal(slots, brute_force(vectors, queries, 10, mask)[0])


@pytest.mark.parametrize("n_allowed_fraction", [0.05, 0.8])
def test_flat_mask_gather_and_penalize_paths_agree(n_allowed_fraction: float) -> None:
    vectors = _unit(np.random.default_rng(13).standard_normal((500, DIM)))
    queries = _unit(np.random.default_rng(14).standard_normal((5, DIM)))
    index = DenseIndex(DIM, kind="flat")
    index.add(vectors)
    mask = np.random.default_rng(15).random(500) < n_allowed_fraction
    slots, scores = index.search(queries, k=25, mask=mask)
    ref_slots, ref_scores = brute_force(vectors, queries, 25, mask)
    np.testing.assert_array_equal(slots, ref_slots)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_exact_search_chunks_many_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_EXACT_CHUNK_SCORES", 500)  # several query chunks
    vectors = _unit(np.random.default_rng(16).standard_normal((200, DIM)))
    queries = _unit(np.random.default_rng(17).standard_normal((9, DIM)))
    index = DenseIndex(DIM, kind="flat")
    index.add(vectors)
    slots, _ = index.search(queries, k=5)
    np.testing.assert_array_equal(
        slots, brute_force(vectors, queries, 5, np.ones(200, dtype=bool))[0]
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 50),
    seed=st.integers(0, 2**16),
    fraction=st.floats(0.0, 1.0),
    n_removed=st.integers(0, 40),
)
def test_flat_search_property(n: int, k: int, seed: int, fraction: float, n_removed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = _unit(rng.standard_normal((n, 4)))
    queries = _unit(rng.standard_normal((3, 4)))
    index = DenseIndex(4, kind="flat")
    index.add(vectors)
    removed = rng.choice(n, size=min(n_removed, n), replace=False)
    index.remove(removed)
    mask = rng.random(n) < fraction
    slots, scores = index.search(queries, k, mask=mask)
    allowed = mask & index.live_mask
    ref_slots, ref_scores = brute_force(vectors, queries, k, allowed)
    assert slots.shape == (3, k)
    # same scores everywhere (slots may differ only among float-rounding ties)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert ((slots == -1) == (ref_slots == -1)).all()
    assert allowed[slots[slots >= 0]].all()


# ----------------------------------------------------------------------------- remove / compact


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_removed_slots_are_never_returned(
    kind: str, data: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM, kind=kind, **exact_params(kind))  # type: ignore[arg-type]
    index.add(vectors)
    before, _ = index.search(queries, k=5)
    top = np.unique(before[:, 0])
    index.remove(top)
    assert index.n_live == len(vectors) - len(top)
    assert not index.live_mask[top].any()
    after, _ = index.search(queries, k=len(vectors))
    assert not np.isin(after, top).any()
    assert ((after >= 0).sum(axis=1) == index.n_live).all()


def test_remove_validation_is_atomic() -> None:
    index = DenseIndex(DIM)
    index.add(np.ones((5, DIM)))
    index.remove([1])
    with pytest.raises(KeyError, match=r"slot 7 does not exist: valid slots are 0\.\.4"):
        index.remove([2, 7])
    with pytest.raises(KeyError, match="slot -1 does not exist"):
        index.remove([-1])
    with pytest.raises(KeyError, match="slot 1 was removed"):
        index.remove([3, 1])
    with pytest.raises(TypeError, match="slots must hold ints, got dtype float64"):
        index.remove([2.0])
    assert index.live_mask.tolist() == [True, False, True, True, True]
    index.remove(np.array([2, 2, 3]))  # duplicates in one call are fine
    assert index.n_live == 2
    index.remove([])  # no-op
    assert index.n_live == 2


@pytest.mark.parametrize("kind", ["auto", "flat", "hnsw", "ivf"])
def test_compact_renumbers_and_keeps_results(
    kind: str, data: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM, kind=kind, **exact_params(kind))  # type: ignore[arg-type]
    index.add(vectors)
    removed = np.arange(0, len(vectors), 3)
    index.remove(removed)
    before_slots, before_scores = index.search(queries, k=10)
    mapping = index.compact()
    assert mapping.dtype == np.int64 and mapping.shape == (len(vectors),)
    assert (mapping[removed] == -1).all()
    kept = np.setdiff1d(np.arange(len(vectors)), removed)
    np.testing.assert_array_equal(mapping[kept], np.arange(len(kept)))
    assert index.n_slots == index.n_live == len(kept)
    assert index.live_mask.all()
    np.testing.assert_allclose(index.get_vectors(np.arange(len(kept))), vectors[kept], atol=1e-6)
    after_slots, after_scores = index.search(queries, k=10)
    np.testing.assert_array_equal(after_slots, mapping[before_slots])
    np.testing.assert_allclose(after_scores, before_scores, atol=1e-6)
    assert index.add(vectors[:1])[0] == len(kept)  # slots continue after the compacted range


# ----------------------------------------------------------------------------- score / get_vectors


def test_score_equals_brute_force_dot_product(
    data: tuple[NDArray[np.float32], NDArray[np.float32]],
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM)
    index.add(vectors * 5.0)
    slots = np.array([17, 3, 3, 250])
    scores = index.score(queries[0] * 2.0, slots)
    assert scores.dtype == np.float64
    expected = vectors[slots].astype(np.float64) @ queries[0].astype(np.float64)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    # agrees with what search reports for the same slots
    found, found_scores = index.search(queries[0], k=5)
    np.testing.assert_allclose(index.score(queries[0], found[0]), found_scores[0], atol=1e-5)
    assert index.score(queries[0], []).shape == (0,)


def test_score_and_get_vectors_reject_removed_and_unknown_slots() -> None:
    index = DenseIndex(DIM)
    index.add(np.ones((3, DIM)))
    index.remove([0])
    with pytest.raises(KeyError, match="slot 0 was removed"):
        index.score(np.ones(DIM), [0])
    with pytest.raises(KeyError, match="slot 3 does not exist"):
        index.get_vectors([3])
    with pytest.raises(ValueError, match="query must be a single vector"):
        index.score(np.ones((2, DIM)), [1])


# ----------------------------------------------------------------------------- auto / ivf


def test_auto_switches_to_hnsw_past_the_threshold(
    data: tuple[NDArray[np.float32], NDArray[np.float32]],
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM, hnsw_threshold=100, ef_search=400)
    index.add(vectors[:99])
    assert index.active_kind == "flat"
    index.add(vectors[99:150])
    assert index.active_kind == "hnsw"
    index.add(vectors[150:])
    ref = brute_force(vectors, queries, 10, np.ones(len(vectors), dtype=bool))[0]
    assert recall_at_k(index.search(queries, 10)[0], ref) >= 0.95
    index.remove(np.arange(250))
    index.compact()  # 50 live vectors < threshold: back to exact search
    assert index.active_kind == "flat"
    assert index.kind == "auto"


def test_ivf_trains_lazily_and_covers_later_adds() -> None:
    vectors = _unit(_clustered(2000, DIM, seed=18).astype(np.float64))
    queries = _unit(_clustered(10, DIM, seed=19).astype(np.float64))
    index = DenseIndex(DIM, kind="ivf", nlist=8, nprobe=8)
    index.add(vectors[:5])  # fewer vectors than lists: exact search until there are enough
    np.testing.assert_array_equal(
        index.search(queries, 3)[0], brute_force(vectors[:5], queries, 3, np.ones(5, dtype=bool))[0]
    )
    index.add(vectors[5:1000])
    index.search(queries, 3)  # trains here
    index.add(vectors[1000:])  # added straight into the trained lists
    slots, _ = index.search(queries, 10)
    np.testing.assert_array_equal(
        slots, brute_force(vectors, queries, 10, np.ones(2000, dtype=bool))[0]
    )


# ----------------------------------------------------------------------------- recall


def _embedding_like(n: int, dim: int, seed: int) -> NDArray[np.float32]:
    """Unit vectors shaped like embeddings: topics, a shared direction, decaying spectrum."""
    model = np.random.default_rng(99)
    centers = model.standard_normal((50, dim)) / np.sqrt(dim) + 0.5 * _unit(
        model.standard_normal((1, dim))
    )
    spectrum = np.arange(1, dim + 1) ** -0.5
    spectrum *= 1.2 / np.linalg.norm(spectrum)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, dim)) * spectrum
    return _unit(centers[rng.integers(0, 50, n)] + noise)


def test_hnsw_recall_against_flat() -> None:
    dim = 64
    vectors = _embedding_like(4000, dim, seed=21)
    queries = _embedding_like(200, dim, seed=22)
    flat = DenseIndex(dim, kind="flat")
    hnsw = DenseIndex(dim, kind="hnsw")
    flat.add(vectors)
    hnsw.add(vectors)
    truth, _ = flat.search(queries, 10)
    found, _ = hnsw.search(queries, 10)
    assert recall_at_k(found, truth) >= 0.95


# ----------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("kind", ["auto", "flat", "hnsw", "ivf"])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip_then_add(
    kind: str, mmap: bool, tmp_path: Path, data: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    vectors, queries = data
    index = DenseIndex(DIM, kind=kind, **exact_params(kind))  # type: ignore[arg-type]
    index.add(vectors[:200])
    index.remove([5, 6, 150])
    expected_slots, expected_scores = index.search(queries, k=10)
    index.save(tmp_path)
    hnsw = index.active_kind == "hnsw"
    expected_files = {"live.npy", "dense_index.json"}
    expected_files |= {"faiss.index"} if kind in ("hnsw", "ivf") else set()
    expected_files |= set() if hnsw else {"vectors.npy"}  # HNSW's file holds the vectors
    assert {p.name for p in tmp_path.iterdir()} == expected_files
    files_before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    loaded = DenseIndex.load(tmp_path, mmap=mmap)
    # Vectors stay on disk with mmap; HNSW's are a read-only view of FAISS's storage either way.
    assert isinstance(loaded._vectors, np.memmap) == (mmap and not hnsw)
    assert (loaded._vectors_owner is loaded._faiss is not None) == hnsw
    live_slots = np.flatnonzero(index.live_mask)
    np.testing.assert_array_equal(loaded.get_vectors(live_slots), index.get_vectors(live_slots))
    # With mmap, HNSW's own vector storage is mapped from faiss.index too (not read into memory).
    hnsw_mapped = mmap and index.active_kind == "hnsw"
    assert (loaded._mapped_faiss is not None) == hnsw_mapped
    assert (loaded.dim, loaded.kind, loaded.active_kind) == (DIM, kind, index.active_kind)
    assert (loaded.n_slots, loaded.n_live) == (200, 197)
    np.testing.assert_array_equal(loaded.live_mask, index.live_mask)
    slots, scores = loaded.search(queries, k=10)
    np.testing.assert_array_equal(slots, expected_slots)
    np.testing.assert_allclose(scores, expected_scores)

    # still writable: add and remove (copy-on-write; the saved files never change)
    kept = loaded.get_vectors(live_slots)
    new = loaded.add(vectors[200:])  # FAISS aborts the process on an add to mapped storage
    np.testing.assert_array_equal(new, np.arange(200, len(vectors)))
    assert loaded._mapped_faiss is None  # the add worked on an owned copy
    if hnsw:  # one copy of the vectors: FAISS's storage, which the index views
        assert loaded._vectors_owner is loaded._faiss and not loaded._vectors.flags.writeable
    else:
        assert loaded._vectors_owner is None and loaded._vectors.flags.writeable
    np.testing.assert_array_equal(loaded.get_vectors(live_slots), kept)
    loaded.remove([0])
    allowed = np.ones(len(vectors), dtype=bool)
    allowed[[0, 5, 6, 150]] = False
    slots, _ = loaded.search(queries, k=10)
    np.testing.assert_array_equal(slots, brute_force(vectors, queries, 10, allowed)[0])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files_before


def test_save_requires_an_existing_empty_directory(tmp_path: Path) -> None:
    index = DenseIndex(DIM)
    index.add(np.ones((2, DIM)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index.save(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        index.save(tmp_path / "file")
    with pytest.raises(FileExistsError, match="must be an empty directory"):
        index.save(tmp_path)


def test_save_writes_no_pickle(tmp_path: Path) -> None:
    index = DenseIndex(DIM, kind="hnsw")
    index.add(np.random.default_rng(0).standard_normal((20, DIM)))
    index.save(tmp_path)
    assert {p.name for p in tmp_path.glob("*.npy")} == {"live.npy"}  # vectors: in faiss.index
    np.load(tmp_path / "live.npy", allow_pickle=False)  # raises if the file needed pickle
    flat = tmp_path / "flat"
    flat.mkdir()
    DenseIndex.load(tmp_path, mmap=False).compact()  # a rebuild keeps working on the view
    index = DenseIndex(DIM, kind="flat")
    index.add(np.random.default_rng(0).standard_normal((20, DIM)))
    index.save(flat)
    for name in ("vectors.npy", "live.npy"):
        np.load(flat / name, allow_pickle=False)


def test_format_version_1_hnsw_directory_with_vectors_npy_loads(
    tmp_path: Path, data: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    # Format 1 wrote every index's vectors to vectors.npy, HNSW's too.
    vectors, queries = data
    index = DenseIndex(DIM, kind="hnsw")
    index.add(vectors[:100])
    index.save(tmp_path)
    np.save(tmp_path / "vectors.npy", index.get_vectors(np.arange(100)), allow_pickle=False)
    params = json.loads((tmp_path / "dense_index.json").read_text())
    params["format_version"] = 1
    del params["vectors_in_faiss"]
    (tmp_path / "dense_index.json").write_text(json.dumps(params))
    loaded = DenseIndex.load(tmp_path)
    assert isinstance(loaded._vectors, np.memmap) and loaded._vectors_owner is None
    np.testing.assert_array_equal(loaded.search(queries, 5)[0], index.search(queries, 5)[0])
    params["format_version"] = 3
    (tmp_path / "dense_index.json").write_text(json.dumps(params))
    with pytest.raises(ValueError, match="format_version 3, this version reads 1 and 2"):
        DenseIndex.load(tmp_path)


def test_load_rejects_missing_or_inconsistent_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a saved DenseIndex"):
        DenseIndex.load(tmp_path)
    index = DenseIndex(DIM)
    index.add(np.ones((3, DIM)))
    index.save(tmp_path)
    np.save(tmp_path / "live.npy", np.ones(2, dtype=bool))
    with pytest.raises(ValueError, match=r"live.npy holds bool \(2,\), expected bool \(3,\)"):
        DenseIndex.load(tmp_path)


def test_empty_index_round_trip(tmp_path: Path) -> None:
    DenseIndex(DIM, kind="ivf").save(tmp_path)
    loaded = DenseIndex.load(tmp_path)
    assert loaded.n_slots == 0
    assert loaded.search(np.ones(DIM), 2)[0].tolist() == [[-1, -1]]
    loaded.add(np.ones((1, DIM)))
    assert loaded.search(np.ones(DIM), 2)[0].tolist() == [[0, -1]]


# ----------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_searches_run_concurrently_with_a_writer(kind: str) -> None:
    rng = np.random.default_rng(23)
    vectors = _unit(rng.standard_normal((3000, DIM)))
    queries = _unit(rng.standard_normal((4, DIM)))
    index = DenseIndex(DIM, kind=kind)
    index.add(vectors[:500])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                slots, scores = index.search(queries, k=10)
                assert slots.shape == (4, 10)
                assert (slots >= 0).all()
                assert (np.diff(scores, axis=1) <= 1e-6).all()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for start in range(500, 3000, 250):
            index.add(vectors[start : start + 250])
            index.remove([start])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert index.n_live == 3000 - 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_add_in_row_blocks_equals_whole_matrix(
    monkeypatch: pytest.MonkeyPatch, dtype: type
) -> None:
    rng = np.random.default_rng(7)
    vectors: NDArray[np.generic] = (rng.standard_normal((11, 5)) * 10).astype(dtype)
    # The reference: convert to float32, float64 norms, float64 division rounded to float32.
    as32 = np.ascontiguousarray(vectors, dtype=np.float32)
    expected = (as32 / np.linalg.norm(as32.astype(np.float64), axis=1)[:, None]).astype(np.float32)
    monkeypatch.setattr(index_module, "_ROW_CHUNK", 3)
    blocked = DenseIndex(5, kind="flat")
    blocked.add(vectors)
    blocked.add(np.asfortranarray(vectors))  # not C-contiguous: same rows
    assert np.array_equal(blocked.get_vectors(np.arange(11)), expected)
    assert np.array_equal(blocked.get_vectors(np.arange(11, 22)), expected)
    raw = DenseIndex(5, kind="flat", normalize=False)
    raw.add(vectors)
    assert np.array_equal(raw.get_vectors(np.arange(11)), as32)


def test_add_in_row_blocks_reports_the_first_bad_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_ROW_CHUNK", 3)
    index = DenseIndex(2, kind="flat")
    index.add([[1.0, 0.0]])
    bad = np.ones((10, 2), dtype=np.float32)
    bad[2] = 0.0  # a zero vector in the first block ...
    bad[7, 1] = np.nan  # ... but non-finite values are checked first, over all rows
    with pytest.raises(ValueError, match="vectors row 7 contains NaN"):
        index.add(bad)
    bad[7, 1] = 1.0
    with pytest.raises(ValueError, match="vectors row 2 is a zero vector"):
        index.add(bad)
    assert index.n_slots == 1 and index.n_live == 1  # nothing was added
    bad[2] = 3.0
    assert index.add(bad).tolist() == list(range(1, 11))


@pytest.mark.parametrize("kind", ["hnsw", "auto"])
def test_hnsw_keeps_one_copy_of_the_vectors(kind: str) -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(size=(300, DIM)).astype(np.float32)
    index = DenseIndex(DIM, kind=kind, hnsw_threshold=100)
    for start in range(0, 300, 50):  # auto crosses the threshold at the third add
        index.add(data[start : start + 50])
        if index.active_kind == "hnsw":
            # our "copy" is a read-only view of FAISS's storage, not a second buffer
            assert index._vectors_owner is index._faiss
            assert not index._vectors.flags.writeable
            assert index._vectors.shape == (start + 50, DIM)
    assert index.active_kind == "hnsw"
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    np.testing.assert_allclose(index.get_vectors(np.arange(300)), unit, atol=1e-6)
    slots, _ = index.search(unit[:5], k=1)
    np.testing.assert_array_equal(slots[:, 0], np.arange(5))
    np.testing.assert_allclose(index.score(unit[0], [0, 1]), unit[[0, 1]] @ unit[0], atol=1e-5)
    index.remove([0])
    mapping = index.compact()  # renumbered vectors are rebuilt into a new graph, still one copy
    assert mapping[0] == -1 and index.n_live == 299
    assert index._vectors_owner is index._faiss
    np.testing.assert_allclose(index.get_vectors([0]), unit[[1]], atol=1e-6)
