from __future__ import annotations

import subprocess
import sys

import langchain_fusion

EXPECTED_ALL = [
    "BM25Index",
    "BM25Retriever",
    "CandidatePool",
    "Candidates",
    "CommunitySunsetWarning",
    "DenseIndex",
    "FusionMethod",
    "FusionRetriever",
    "HybridIndex",
    "LocalEmbeddings",
    "MultiQueryFusionRetriever",
    "Normalization",
    "Source",
    "SynonymKeywordSource",
    "TfidfSource",
    "Tokenizer",
    "__version__",
    "default_embeddings",
]


def test_all_is_explicit_and_complete() -> None:
    assert sorted(langchain_fusion.__all__) == sorted(EXPECTED_ALL)
    for name in langchain_fusion.__all__:
        assert hasattr(langchain_fusion, name), name


def test_import_is_light_and_never_touches_langchain_community() -> None:
    code = (
        "import sys, langchain_fusion, langchain_fusion.cli, langchain_fusion.qa, "
        "langchain_fusion.ingest, langchain_fusion.evaluation\n"
        "heavy = [m for m in ('langchain_community', 'sentence_transformers', 'torch', "
        "'langchain_openai', 'matplotlib', 'rank_bm25') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("langchain_fusion").joinpath("py.typed").is_file()


PUBLIC_MODULES = [
    "langchain_fusion",
    "langchain_fusion.fusion",
    "langchain_fusion.lexical",
    "langchain_fusion.dense",
    "langchain_fusion.filters",
    "langchain_fusion.ingest",
    "langchain_fusion.qa",
    "langchain_fusion.tools",
    "langchain_fusion.evaluation",
    "langchain_fusion.multi_query",
    "langchain_fusion.rerank",
    "langchain_fusion.synonyms",
    "langchain_fusion.tfidf",
]


def _public_objects() -> list[tuple[str, object]]:
    import importlib
    import inspect

    found = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((f"{module_name}.{name}", obj))
    return found


def test_every_public_class_and_function_has_a_runnable_example() -> None:
    """Each one's docstring holds a doctest (run by ``--doctest-modules`` in the test suite)."""
    import inspect

    def exempt(obj: object) -> bool:  # warnings and errors are shown where they are raised
        return inspect.isclass(obj) and issubclass(obj, Warning | Exception)

    missing = [
        name
        for name, obj in _public_objects()
        if ">>>" not in (inspect.getdoc(obj) or "") and not exempt(obj)
    ]
    assert not missing, f"public objects without a '>>>' example: {missing}"
