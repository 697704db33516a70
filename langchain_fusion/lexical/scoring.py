"""BM25 scoring functions: inverse document frequency and term-frequency saturation.

Pure numpy functions, shared by the index and its tests. The variants and their definitions
follow Kamphuis et al., "Which BM25 do you mean? A large-scale reproducibility study of scoring
variants" (ECIR 2020), as implemented by bm25s, so that scores agree with bm25s to float
precision. With ``N`` live documents, ``df`` documents containing the term, ``tf`` its count in
a document of length ``dl`` and ``avgdl`` the mean length:

==========  ==================================  =================================================
method      idf                                 term-frequency part ``tfc``
==========  ==================================  =================================================
lucene      ``ln(1 + (N - df + .5)/(df + .5))``  ``tf / (tf + k1 (1 - b + b dl/avgdl))``
robertson   ``ln(max(1, (N - df + .5)/(df + .5)))``  same as lucene
atire       ``ln(N / df)``                      ``tf (k1 + 1) / (tf + k1 (1 - b + b dl/avgdl))``
bm25l       ``ln((N + 1)/(df + .5))``           ``(k1 + 1)(c + delta)/(k1 + c + delta)``,
                                                ``c = tf / (1 - b + b dl/avgdl)``
bm25+       ``ln((N + 1)/df)``                  ``(k1 + 1) tf / (tf + k1 (1 - b + b dl/avgdl))
                                                + delta``
==========  ==================================  =================================================

A document's score is ``sum over query tokens t of idf(t) * tfc(t, d)``; a query term repeated
``n`` times counts ``n`` times (as in bm25s and rank-bm25). Lucene and Robertson leave out the
constant ``(k1 + 1)`` factor, which does not change rankings.

BM25L and BM25+ give a positive ``tfc`` even when ``tf = 0``: a matching document also earns
``idf * tfc(0)`` for each query term it lacks. The index adds that for the documents that match
at least one query term; documents matching none are not results and score 0.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["METHODS", "Method", "idf", "tf_component", "zero_tf_component", "validate_params"]

Method: TypeAlias = Literal["lucene", "robertson", "atire", "bm25l", "bm25+"]
METHODS: tuple[str, ...] = get_args(Method)
"""The supported BM25 variants."""


def validate_params(*, k1: float, b: float, method: str, delta: float) -> None:
    """Check BM25 parameters; raise ``ValueError``/``TypeError`` naming the bad one.

    Example:
        >>> validate_params(k1=1.5, b=0.75, method="lucene", delta=0.5)
        >>> validate_params(k1=1.5, b=2.0, method="lucene", delta=0.5)
        Traceback (most recent call last):
        ...
        ValueError: b must be in [0, 1], got 2.0

    """
    for name, value in (("k1", k1), ("b", b), ("delta", delta)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if k1 < 0:
        raise ValueError(f"k1 must be >= 0, got {k1!r}")
    if not 0 <= b <= 1:
        raise ValueError(f"b must be in [0, 1], got {b!r}")
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def idf(df: ArrayLike, n_docs: int, method: str = "lucene") -> NDArray[np.float64]:
    """Inverse document frequency of terms.

    Args:
        df: Document frequencies, each in ``[1, n_docs]``.
        n_docs: Number of documents ``N``.
        method: One of :data:`METHODS`.

    Returns:
        float64 idf per term, always ``>= 0`` (Robertson's is clipped at 0, as in bm25s).

    Example:
        >>> idf([1, 5, 10], 10).round(4).tolist()
        [1.9924, 0.6931, 0.0465]
        >>> idf([1, 5, 10], 10, "robertson").round(4).tolist()
        [1.8458, 0.0, 0.0]

    """
    d = np.asarray(df, dtype=np.float64)
    n = float(n_docs)
    if method == "lucene":
        return np.log1p((n - d + 0.5) / (d + 0.5))
    if method == "robertson":
        return np.log(np.maximum((n - d + 0.5) / (d + 0.5), 1.0))
    if method == "atire":
        return np.log(n / d)
    if method == "bm25l":
        return np.log((n + 1.0) / (d + 0.5))
    if method == "bm25+":
        return np.log((n + 1.0) / d)
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def tf_component(
    tf: ArrayLike,
    doc_len: ArrayLike,
    avg_doc_len: float,
    *,
    k1: float = 1.5,
    b: float = 0.75,
    method: str = "lucene",
    delta: float = 0.5,
) -> NDArray[np.float64]:
    """Term-frequency part of BM25 (``tfc`` in the module table), elementwise.

    Args:
        tf: Term counts in the documents.
        doc_len: Lengths (in tokens) of those documents.
        avg_doc_len: Mean document length of the collection (``> 0``).
        k1: Saturation parameter.
        b: Length normalization strength.
        method: One of :data:`METHODS`.
        delta: Lower bound shift of BM25L / BM25+ (ignored by the others).

    Returns:
        float64 array broadcast from ``tf`` and ``doc_len``.

    Example:
        >>> tf_component([1, 2], [10, 10], 10.0, k1=1.5, b=0.75).round(4).tolist()
        [0.4, 0.5714]
        >>> tf_component([1], [10], 10.0, method="atire").round(4).tolist()
        [1.0]

    """
    t = np.asarray(tf, dtype=np.float64)
    norm = (1.0 - b) + (b / avg_doc_len) * np.asarray(doc_len, dtype=np.float64)
    if method in ("lucene", "robertson"):
        return t / (t + k1 * norm)
    if method == "atire":
        return t * (k1 + 1.0) / (t + k1 * norm)
    if method == "bm25l":
        c = t / norm + delta
        return (k1 + 1.0) * c / (k1 + c)
    if method == "bm25+":
        return (k1 + 1.0) * t / (t + k1 * norm) + delta
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def zero_tf_component(*, k1: float = 1.5, method: str = "lucene", delta: float = 0.5) -> float:
    """``tfc`` of a term absent from the document (``tf = 0``); non-zero only for BM25L/BM25+.

    It does not depend on the document length, so it is a constant per collection.

    Example:
        >>> zero_tf_component(method="lucene"), zero_tf_component(method="bm25+", delta=0.5)
        (0.0, 0.5)
        >>> round(zero_tf_component(k1=1.5, method="bm25l", delta=0.5), 4)
        0.625

    """
    if method == "bm25l":
        return (k1 + 1.0) * delta / (k1 + delta)
    if method == "bm25+":
        return float(delta)
    if method in METHODS:
        return 0.0
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
