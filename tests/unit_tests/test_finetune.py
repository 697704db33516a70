"""Fine-tuning the local model: training pairs, checks before any work, and a real short run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_fusion import LocalEmbeddings
from langchain_fusion.dense import fine_tune_embeddings, fine_tuning_record, training_pairs

DOCS = [
    Document("Error E-217: the cells are too cold to charge.", id="d1", metadata={"key": "a"}),
    Document("The warranty lasts ten years or 6,000 cycles.", id="d2", metadata={"key": "b"}),
    Document("Hold the service button for ten seconds to reset.", id="d3", metadata={"key": "c"}),
]


def test_training_pairs_keep_relevant_judgments_in_a_stable_order() -> None:
    queries = {"q2": "how long is the cover", "q1": "why no charging in winter"}
    qrels = {"q2": {"d2": 1, "d3": 0}, "q1": {"d1": 2}}
    assert training_pairs(queries, qrels, DOCS) == [
        ("why no charging in winter", DOCS[0].page_content),
        ("how long is the cover", DOCS[1].page_content),
    ]
    by_key = training_pairs(queries, {"q1": {"a": 1}}, DOCS, id_key="key")
    assert by_key == [("why no charging in winter", DOCS[0].page_content)]
    assert training_pairs(queries, {"q1": {"x": 1}}, {"x": "text"}) == [
        ("why no charging in winter", "text")
    ]


def test_max_per_query_keeps_the_most_relevant_then_a_seeded_draw() -> None:
    docs = {f"d{i}": f"text {i}" for i in range(30)}
    qrels = {"q": {**{f"d{i}": 1 for i in range(28)}, "d28": 2, "d29": 0}, "r": {"d5": 1}}
    queries = {"q": "many", "r": "one"}
    pairs = training_pairs(queries, qrels, docs, max_per_query=4)
    assert next(t for q, t in pairs if q == "many") == "text 28"  # relevance 2 first
    assert len(pairs) == 5 and ("one", "text 5") in pairs  # "r" has 1 <= 4
    assert "text 29" not in [t for _, t in pairs]
    again = training_pairs(queries, qrels, docs, max_per_query=4)
    assert again == pairs  # same seed, same draw
    draws = {tuple(training_pairs(queries, qrels, docs, max_per_query=4, seed=s)) for s in range(5)}
    assert len(draws) > 1  # the ties are drawn, not the first ids
    assert len(training_pairs(queries, qrels, docs)) == 30  # None keeps every relevant pair
    with pytest.raises(ValueError, match="max_per_query must be a positive integer"):
        training_pairs(queries, qrels, docs, max_per_query=0)
    with pytest.raises(ValueError, match="document 'd99'"):  # every judged id is checked
        training_pairs(queries, {"q": {"d1": 2, "d99": 1}}, docs, max_per_query=1)


@pytest.mark.parametrize(
    ("queries", "qrels", "match"),
    [
        ({}, {"q1": {"d1": 1}}, "query 'q1', which is not in queries"),
        ({"q1": "x"}, {"q1": {"d9": 1}}, "document 'd9' .* pass id_key="),
        ({"q1": "x"}, {"q1": {"d1": 0}}, "no relevant"),
    ],
)
def test_training_pairs_name_what_is_wrong(queries: Any, qrels: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        training_pairs(queries, qrels, DOCS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 1.5}, "epochs must be a positive integer"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"learning_rate": -1e-5}, "learning_rate must be a positive number"),
        ({"scale": float("inf")}, "scale must be a positive number"),
        ({"warmup": 1.0}, r"warmup must be a number in \[0, 1\)"),
    ],
)
def test_bad_parameters_fail_before_loading_anything(
    kwargs: dict[str, Any], match: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=match):
        fine_tune_embeddings({"q": "x"}, {"q": {"d1": 1}}, DOCS, tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_a_non_empty_output_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"exists and is not empty.*overwrite=True"):
        fine_tune_embeddings({"q": "x"}, {"q": {"d1": 1}}, DOCS, tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"


def _cosines(emb: Any, queries: list[str], docs: list[str]) -> np.ndarray:
    q = np.asarray(emb.embed_documents(queries))
    d = np.asarray(emb.embed_documents(docs))
    return q @ d.T


@pytest.mark.slow
def test_fine_tuning_pulls_each_question_to_its_passage(tmp_path: Path) -> None:
    """Questions that share no words with their passages: training makes them rank first."""
    texts = {d.id: d.page_content for d in DOCS if d.id}
    queries = {
        "q1": "my battery will not take power when it freezes outside",
        "q2": "for how many years am I covered",
        "q3": "how do I restart the management system",
    }
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
    base = LocalEmbeddings()
    before = _cosines(base, list(queries.values()), list(texts.values()))
    tuned = fine_tune_embeddings(
        queries,
        qrels,
        DOCS,
        tmp_path / "model",
        epochs=8,
        batch_size=3,
        learning_rate=1e-4,
        show_progress=False,
    )
    after = _cosines(tuned, list(queries.values()), list(texts.values()))
    margin = lambda m: np.diag(m) - (m.sum(axis=1) - np.diag(m)) / 2  # noqa: E731
    assert (margin(after) > margin(before)).all()
    assert (after.argmax(axis=1) == np.arange(3)).all()
    # the shared default model is untouched
    np.testing.assert_allclose(
        _cosines(LocalEmbeddings(), list(queries.values()), list(texts.values())), before
    )
    assert (tmp_path / "model" / "config.json").is_file()
    record = fine_tuning_record(tmp_path / "model")
    assert record is not None and record["query_ids"] == ["q1", "q2", "q3"]
    assert (record["pairs"], record["epochs"], record["max_pairs_per_query"]) == (3, 8, None)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    # overwrite=True replaces the model in one step
    again = fine_tune_embeddings(
        queries, qrels, DOCS, tmp_path / "model", epochs=1, overwrite=True, show_progress=False
    )
    assert again.model_path == str(tmp_path / "model")
    assert (fine_tuning_record(tmp_path / "model") or {})["epochs"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
