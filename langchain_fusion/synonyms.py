"""Query synonym expansion for the BM25 side.

A [`SynonymMap`][langchain_fusion.synonyms.SynonymMap] holds the user's synonyms (a dict, or a
JSON or text file). [`SynonymKeywordSource`][langchain_fusion.synonyms.SynonymKeywordSource]
searches the BM25 side of a [`HybridIndex`][langchain_fusion.HybridIndex] with the query's
own terms at their usual weight and the synonyms of the phrases it contains added at a lower
``weight`` (default 0.3). Only the keyword query changes: the dense side sees the question as
typed. The expansion is shown in ``metadata["fusion"]["query"]`` and by ``explain``.

Text file format (one rule per line, ``#`` starts a comment)::

    heart attack, myocardial infarction, MI      # equivalent: each expands to the others
    flu => influenza                              # one way: "flu" expands to "influenza"

A JSON file is an object ``{"phrase": ["synonym", ...]}`` (one way, like a dict).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_fusion.sources import Candidates, Source

if TYPE_CHECKING:
    from langchain_fusion.index import HybridIndex

__all__ = ["SynonymKeywordSource", "SynonymMap", "expand_query", "with_synonyms"]

DEFAULT_WEIGHT = 0.3
"""Weight of an expansion term relative to a query term (1.0)."""


def _as_list(key: str, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise TypeError(f"synonyms of {key!r} must be a string or a list of strings, got {value!r}")
    return [v.strip() for v in values if v.strip()]


class SynonymMap:
    """A user's synonyms: ``{phrase: [synonym, ...]}`` (one way).

    Args:
        synonyms: A mapping, or the path of a ``.json`` or text file (see the module docs).

    Raises:
        FileNotFoundError: If a path does not exist.
        TypeError: If a phrase is not a string or its synonyms are not strings.
        ValueError: If a file cannot be parsed (the message names the line).

    Example:
        >>> m = SynonymMap({"heart attack": ["myocardial infarction", "MI"]})
        >>> m.rules
        {'heart attack': ['myocardial infarction', 'MI']}
        >>> len(SynonymMap({}))
        0

    """

    def __init__(self, synonyms: Mapping[str, Any] | str | Path) -> None:
        if isinstance(synonyms, (str, Path)):
            synonyms = _read_file(Path(synonyms))
        if not isinstance(synonyms, Mapping):
            raise TypeError(
                f"synonyms must be a dict or a file path, got {type(synonyms).__name__}"
            )
        rules: dict[str, list[str]] = {}
        for key, value in synonyms.items():
            if not isinstance(key, str):
                raise TypeError(f"synonym phrases must be strings, got {key!r}")
            values = [v for v in _as_list(key, value) if v.casefold() != key.strip().casefold()]
            if key.strip() and values:
                bucket = rules.setdefault(key.strip(), [])
                bucket.extend(v for v in values if v not in bucket)
        self.rules = rules

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"SynonymMap({len(self.rules)} phrases)"

    def compile(self, tokenize: Callable[[str], list[str]]) -> list[tuple[tuple[str, ...], str]]:
        """Tokenize the phrases: ``[(phrase tokens, phrase)]``; phrases without terms dropped."""
        out = []
        for phrase in self.rules:
            tokens = tuple(tokenize(phrase))
            if tokens:
                out.append((tokens, phrase))
        return out


def _read_file(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"synonym file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object {{phrase: [synonyms]}}")
        return data
    rules: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=>" in line:
            left, right = line.split("=>", 1)
            targets = [t.strip() for t in right.split(",") if t.strip()]
            sources = [s.strip() for s in left.split(",") if s.strip()]
            if not sources or not targets:
                raise ValueError(f"{path}:{n}: expected 'phrase => synonym, ...', got {line!r}")
            for s in sources:
                rules.setdefault(s, []).extend(targets)
            continue
        group = [t.strip() for t in line.split(",") if t.strip()]
        if len(group) < 2:
            raise ValueError(
                f"{path}:{n}: expected 'a, b, ...' (equivalent) or 'a => b' (one way), got {line!r}"
            )
        for term in group:
            rules.setdefault(term, []).extend(t for t in group if t != term)
    return rules


def expand_query(
    query: str,
    tokenize: Callable[[str], list[str]],
    compiled: Iterable[tuple[tuple[str, ...], str]],
    rules: Mapping[str, list[str]],
    weight: float,
) -> tuple[dict[str, float], list[tuple[str, list[str]]]]:
    """Return the BM25 query ``{term: weight}`` and the ``(phrase, synonyms)`` that matched.

    The query's own terms keep their counts; a synonym's terms are added at ``weight`` unless
    the query already has them.

    Example:
        >>> tok = str.split
        >>> rules = {"flu": ["influenza virus"]}
        >>> expand_query("flu shot", tok, [(("flu",), "flu")], rules, 0.3)
        ({'flu': 1.0, 'shot': 1.0, 'influenza': 0.3, 'virus': 0.3}, [('flu', ['influenza virus'])])

    """
    tokens = tokenize(query)
    terms: dict[str, float] = {t: float(c) for t, c in Counter(tokens).items()}
    matched: list[tuple[str, list[str]]] = []
    for phrase_tokens, phrase in compiled:
        m = len(phrase_tokens)
        if not any(tuple(tokens[i : i + m]) == phrase_tokens for i in range(len(tokens) - m + 1)):
            continue
        matched.append((phrase, list(rules[phrase])))
        for synonym in rules[phrase]:
            for term in tokenize(synonym):
                if term not in terms or terms[term] < weight:
                    terms[term] = max(terms.get(term, 0.0), weight)
    return terms, matched


class SynonymKeywordSource(Source):
    """BM25 side of a [`HybridIndex`][langchain_fusion.HybridIndex], with synonym expansion.

    Use it instead of the index's plain keyword side:
    ``FusionRetriever(retrievers=[index, SynonymKeywordSource(index, synonyms)])``, or
    [`with_synonyms`][langchain_fusion.synonyms.with_synonyms].

    Args:
        index: The index whose BM25 side is searched.
        synonyms: A [`SynonymMap`][langchain_fusion.synonyms.SynonymMap], a dict or a file path.
        weight: Weight of an expansion term, in (0, 1] (a query term weighs 1).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["influenza vaccine", "shot glass"],
        ...     DeterministicFakeEmbedding(size=8), ids=["flu", "glass"])
        >>> src = SynonymKeywordSource(index, {"flu": ["influenza"]})
        >>> c = src.search("flu vaccine", 5)
        >>> c.ids, c.query_note
        (['flu'], 'synonyms flu -> influenza (weight 0.3)')

    """

    kind = "bm25"
    supports_filter = True

    def __init__(
        self,
        index: HybridIndex,
        synonyms: SynonymMap | Mapping[str, Any] | str | Path,
        *,
        weight: float = DEFAULT_WEIGHT,
    ) -> None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(f"weight must be a number in (0, 1], got {weight!r}")
        if not (0.0 < float(weight) <= 1.0):
            raise ValueError(
                f"weight must be in (0, 1] (expansion terms weigh less than query terms), "
                f"got {weight!r}"
            )
        self.index = index
        self.synonyms = synonyms if isinstance(synonyms, SynonymMap) else SynonymMap(synonyms)
        self.weight = float(weight)
        self._compiled = self.synonyms.compile(index.tokenizer)
        if not self._compiled:
            what = "is empty" if not len(self.synonyms) else "has no phrase with a searchable term"
            warnings.warn(
                f"the synonym map {what}: BM25 queries are searched unexpanded",
                UserWarning,
                stacklevel=2,
            )

    def expand(self, query: str) -> tuple[dict[str, float], list[tuple[str, list[str]]]]:
        """Return the BM25 ``{term: weight}`` query and the matched ``(phrase, synonyms)``."""
        tok = self.index.tokenizer
        return expand_query(query, tok, self._compiled, self.synonyms.rules, self.weight)

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Search BM25 with the query expanded by its synonyms."""
        terms, matched = self.expand(query)
        ids, scores = self.index.search_keyword(terms, k, filter=filter)
        note = None
        if matched:
            rules = "; ".join(f"{p} -> {', '.join(s)}" for p, s in matched)
            note = f"synonyms {rules} (weight {self.weight:g})"
        return Candidates(
            ids=list(ids),
            scores=np.asarray(scores, dtype=np.float64),
            loader=self.index._documents_or_none,
            id_scorer=lambda other: self.index.score_keyword(terms, other),
            query_note=note,
        )

    def __repr__(self) -> str:
        return f"SynonymKeywordSource({len(self.index)} documents, {self.synonyms!r})"


def with_synonyms(
    index: HybridIndex,
    synonyms: SynonymMap | Mapping[str, Any] | str | Path,
    *,
    weight: float = DEFAULT_WEIGHT,
    **kwargs: Any,
) -> Any:
    """Build a `FusionRetriever` over ``index`` whose BM25 side expands with ``synonyms``.

    ``kwargs`` are `FusionRetriever` options (``alpha``, ``k``, ``reranker``...).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import HybridIndex
        >>> index = HybridIndex.from_texts(["influenza vaccine", "shot glass"],
        ...     DeterministicFakeEmbedding(size=8))
        >>> r = with_synonyms(index, {"flu": ["influenza"]}, k=1)
        >>> r.invoke("flu")[0].metadata["fusion"]["query"]
        {'bm25': 'synonyms flu -> influenza (weight 0.3)'}

    """
    from langchain_fusion.retriever import FusionRetriever
    from langchain_fusion.sources import HybridDenseSource

    kwargs.setdefault("names", ["dense", "bm25"])
    source = SynonymKeywordSource(index, synonyms, weight=weight)
    return FusionRetriever(sources=[HybridDenseSource(index), source], index=index, **kwargs)
