"""FusionSpec: one validation for every option; fuse_many is fuse over many specs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import FusionMethod, FusionRetriever, Normalization
from langchain_fusion.fusion import (
    FEEDBACK_KEYS,
    GRID_KEYS,
    METHOD_CHOICES,
    NORMALIZATION_NAMES,
    OPTION_NAMES,
    FusionSpec,
    Pool,
    SpecBatch,
    fuse,
    fuse_many,
)
from tests.fakes import ScriptedSource


@pytest.fixture(scope="module")
def retriever() -> FusionRetriever:
    texts = ["battery too cold", "charging in winter", "warranty terms", "cold weather tips"]
    docs = [Document(t, id=str(i)) for i, t in enumerate(texts)]
    return FusionRetriever.from_documents(docs, DeterministicFakeEmbedding(size=16))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"alpha": True}, r"alpha must be a number in \[0, 1\], got True"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5"),
        ({"alpha": float("nan")}, r"alpha must be in \[0, 1\]"),
        ({"rrf_k": True}, "rrf_k must be a finite number >= 0, got True"),
        ({"rrf_k": -1}, "rrf_k must be a finite number >= 0"),
        ({"k": True}, "k must be an integer >= 1, got True"),
        ({"fetch_k": 0}, "fetch_k must be an integer >= 1"),
        ({"max_per_source": 0}, "max_per_source must be an integer >= 1"),
        ({"feedback_docs": True}, "feedback_docs must be an integer >= 0"),
        ({"feedback_weight": 2}, r"feedback_weight must be a number in \[0, 1\]"),
        ({"method": "mean"}, "method must be one of convex, rrf, minmax, zscore, dbsf"),
        ({"normalization": "l2"}, "normalization must be one of minmax, zscore, dbsf, none"),
        ({"weights": [1.0, -1.0]}, "weights must be finite and >= 0"),
        ({"weights": [0.0, 0.0]}, "weights must not all be zero"),
        ({"missing": "max"}, "missing must be a finite number or 'min'"),
        ({"alpha": 0.3, "weights": [1, 1]}, "not both"),
    ],
)
def test_every_option_is_checked_in_one_place(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FusionSpec(**options)
    with pytest.raises(ValueError, match=match):
        FusionSpec().with_overrides(**options)


def test_boolean_alpha_is_refused_in_the_constructor_and_per_call(
    retriever: FusionRetriever,
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="alpha must be a number in"):
        FusionRetriever.from_index(retriever.index, alpha=True)
    with pytest.raises(ValueError, match="alpha must be a number in"):
        retriever.invoke("cold", alpha=True)
    with pytest.raises(ValidationError, match="rrf_k must be a finite number"):
        FusionRetriever.from_index(retriever.index, rrf_k=True)


def test_spec_is_frozen_and_normalized() -> None:
    spec = FusionSpec(method="ZScore", alpha=1, weights=None, rrf_k=20)
    assert spec.method is FusionMethod.CONVEX and spec.normalization is Normalization.ZSCORE
    assert spec.alpha == 1.0 and isinstance(spec.alpha, float)
    with pytest.raises(AttributeError):
        spec.alpha = 0.2  # type: ignore[misc]
    assert hash(spec) == hash(FusionSpec(method="zscore", alpha=1.0, rrf_k=20))


def test_with_overrides_alpha_and_weights_replace_each_other() -> None:
    weighted = FusionSpec(weights=(1, 2, 3))
    assert weighted.weights == (1.0, 2.0, 3.0) and weighted.alpha is None
    assert weighted.with_overrides(alpha=0.2).weights is None
    assert FusionSpec(alpha=0.2).with_overrides(weights=[1, 1]).alpha is None
    with pytest.raises(ValueError, match="alpha applies to exactly two retrievers"):
        FusionSpec(alpha=0.2).weights_for(3)
    assert FusionSpec().weights_for(2).tolist() == [0.5, 0.5]
    assert FusionSpec().weights_for(3).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="one value per retriever"):
        weighted.weights_for(2)


def test_option_lists_derive_from_the_spec() -> None:
    assert set(OPTION_NAMES) == {
        "k",
        "fetch_k",
        "alpha",
        "weights",
        "method",
        "normalization",
        "rrf_k",
        "max_per_source",
        "feedback_docs",
        "feedback_weight",
        "feedback_terms",
    }
    assert GRID_KEYS == ("method", "alpha", "weights", "normalization", "rrf_k", "fetch_k")
    assert FEEDBACK_KEYS == ("feedback_docs", "feedback_weight", "feedback_terms")
    assert METHOD_CHOICES == ("convex", "rrf", "minmax", "zscore", "dbsf")
    assert tuple(n.value for n in Normalization) == NORMALIZATION_NAMES
    assert set(OPTION_NAMES) <= set(FusionRetriever.model_fields)


def test_retriever_spec_matches_its_fields(retriever: FusionRetriever) -> None:
    r = retriever.model_copy(update={"method": "dbsf", "alpha": 0.3, "k": 2})
    spec = r.fusion_spec()
    assert (spec.method, spec.normalization, spec.alpha, spec.k) == (
        FusionMethod.CONVEX,
        Normalization.DBSF,
        0.3,
        2,
    )
    # a shorthand method keeps deciding the normalization, as when constructed
    assert r.fusion_spec(normalization="zscore").normalization is Normalization.DBSF
    with pytest.raises(ValueError, match="unknown option"):
        r.fusion_spec(alhpa=0.2)


def _pool(rng: np.random.Generator, n_src: int, n: int, rank_only: int | None) -> Pool:
    raw = rng.normal(size=(n_src, n))
    raw[rng.random((n_src, n)) < 0.3] = np.nan
    found = np.zeros((n_src, n), dtype=np.int64)
    for i in range(n_src):
        hit = np.flatnonzero(np.isfinite(raw[i]))
        found[i, hit[np.argsort(-raw[i, hit])]] = np.arange(1, hit.size + 1)
    has = np.ones(n_src, dtype=bool)
    if rank_only is not None:
        has[rank_only] = False
        raw[rank_only] = np.nan
    return Pool(raw=raw, found_rank=found, has_scores=has)


@pytest.mark.parametrize("n_src", [2, 3])
def test_fuse_many_equals_fuse_for_each_spec(n_src: int) -> None:
    rng = np.random.default_rng(3)
    specs = []
    for method in ("convex", "rrf"):
        for norm in ("minmax", "zscore", "dbsf", "none"):
            for complete in (None, True):
                for missing in ("min", 0.0):
                    for w in rng.random((4, n_src)):
                        specs.append(
                            FusionSpec(
                                method=method,
                                normalization=norm,
                                weights=tuple(w + 0.01),
                                rrf_k=float(rng.integers(0, 80)),
                                complete_scoring=complete,
                                missing=missing,
                            )
                        )
    batch = SpecBatch.of(specs, n_src)
    for trial in range(15):
        pool = _pool(rng, n_src, int(rng.integers(0, 25)), 1 if trial % 3 == 0 else None)
        orders = fuse_many(pool, batch)
        assert orders.shape == (len(specs), pool.raw.shape[1])
        for spec, order in zip(specs, orders, strict=True):
            assert order.tolist() == fuse(pool, spec).order.tolist()


def test_missing_rule_changes_the_convex_sum() -> None:
    pool = Pool(
        raw=np.array([[1.0, 0.0, np.nan], [np.nan, 0.0, 1.0]]),
        found_rank=np.array([[1, 2, 0], [0, 2, 1]]),
        has_scores=np.array([True, True]),
    )
    assert fuse(pool, FusionSpec()).fused.tolist() == [0.5, 0.0, 0.5]
    assert fuse(pool, FusionSpec(missing=0.5)).fused.tolist() == [0.75, 0.0, 0.75]


def test_fuse_pool_and_metadata_use_the_spec(retriever: FusionRetriever) -> None:
    doc = retriever.invoke("cold", k=1, method="rrf", weights=[2.0, 1.0])[0]
    info = doc.metadata["fusion"]
    assert info["method"] == "rrf" and info["normalization"] is None
    assert info["weights"] == {"dense": 2.0, "bm25": 1.0}
    pool = retriever.gather("cold")
    res = retriever.fuse_pool(pool, alpha=0.0)
    assert res.order.tolist() == fuse(pool, retriever.fusion_spec(alpha=0.0)).order.tolist()


def test_rank_only_sources_still_fuse() -> None:
    docs = [Document(t, id=t) for t in ("a", "b", "c")]
    r = FusionRetriever(
        retrievers=[ScriptedSource(docs, [3.0, 2.0, 1.0]), ScriptedSource(docs[::-1], None)],
        weights=[1.0, 1.0],
        k=3,
    )
    assert [d.id for d in r.invoke("q", method="rrf")] == ["a", "c", "b"]  # a, c tie: position
