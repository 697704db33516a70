"""PostgreSQL binary COPY streams for the store's bulk writes, encoded with numpy.

``PostgresHybridStore.add_embeddings`` copies its rows straight into the documents and postings
tables. Encoding the binary COPY format here (instead of value by value in the driver) makes a
batch's postings one ``numpy`` buffer and a document row a handful of byte slices: the client
work of a load drops several-fold. The format (``COPY ... FROM STDIN (FORMAT BINARY)``): a
signature header, then per row an int16 field count and per field an int32 byte length and the
type's binary ("send") representation, then an int16 ``-1``.

Types written: ``int4``/``int8`` (big-endian), ``text`` (UTF-8), ``jsonb`` (version byte 1 and
the JSON text), pgvector's ``vector`` (uint16 dimension, uint16 unused, big-endian float32) and
one-dimensional ``int4[]`` (dimensions, no-null flag, element type oid 23, length and lower
bound, then each element as a length-prefixed int4).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from langchain_fusion.lexical.tokenizer import Encoding

__all__: list[str] = []

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_INT4_OID = 23
_EMPTY_INT4_ARRAY = struct.pack(">iiii", 12, 0, 0, _INT4_OID)  # field length + ndim 0 header
_DOC_FIELDS = 8  # rowid, id, content, metadata, embedding, terms, tfs, len

_POSTING = np.dtype(
    [
        ("fields", ">i2"),
        ("term_len", ">i4"),
        ("term", ">i4"),
        ("doc_len", ">i4"),
        ("doc", ">i8"),
        ("tf_len", ">i4"),
        ("tf", ">i4"),
        ("dl_len", ">i4"),
        ("dl", ">i4"),
    ]
)


@dataclass(frozen=True)
class Postings:
    """A batch's BM25 postings: one entry per (document, distinct term), in document order.

    ``doc`` indexes the batch (0..n-1), ``start[i]:start[i + 1]`` are document i's entries
    (terms in ascending id order), ``lengths[i]`` its length in tokens.
    """

    doc: NDArray[np.int64]
    term: NDArray[np.int64]
    tf: NDArray[np.int64]
    start: NDArray[np.int64]
    lengths: NDArray[np.int64]

    @classmethod
    def from_encoding(cls, encoding: Encoding, term_ids: NDArray[np.int64]) -> Postings:
        """Regroup a tokenizer's postings by document, with ``term_ids[t]`` for its term t.

        Example:
            >>> from langchain_fusion.lexical.tokenizer import TermEncoder, Tokenizer
            >>> enc = TermEncoder(Tokenizer()).encode(["purr cats purr", "dog"])
            >>> p = Postings.from_encoding(enc, np.array([70, 30, 50]))  # purr, cat, dog
            >>> p.term.tolist(), p.tf.tolist(), p.start.tolist(), p.lengths.tolist()
            ([30, 70, 50], [1, 2, 1], [0, 2, 3], [3, 1])

        """
        term = term_ids[encoding.terms]
        order = np.lexsort((term, encoding.docs))
        doc = encoding.docs[order]
        n = encoding.lengths.shape[0]
        start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(doc, minlength=n), out=start[1:])
        return cls(doc, term[order], encoding.tfs[order], start, encoding.lengths)


def postings_stream(postings: Postings, rowids: NDArray[np.int64]) -> bytes:
    """``COPY postings (term, doc, tf, dl)`` rows, sorted by (term, doc) for the B-tree.

    Example:
        >>> from langchain_fusion.lexical.tokenizer import TermEncoder, Tokenizer
        >>> enc = TermEncoder(Tokenizer()).encode(["cat purr cat"])
        >>> stream = postings_stream(Postings.from_encoding(enc, np.array([7, 3])), np.array([41]))
        >>> stream.startswith(HEADER) and stream.endswith(TRAILER)
        True
        >>> len(stream) == len(HEADER) + 2 * 38 + len(TRAILER)
        True

    """
    order = np.argsort(postings.term, kind="stable")  # documents stay in rowid order per term
    rec = np.empty(order.shape[0], dtype=_POSTING)
    rec["fields"] = 4
    rec["term_len"] = 4
    rec["term"] = postings.term[order]
    rec["doc_len"] = 8
    rec["doc"] = rowids[postings.doc[order]]
    rec["tf_len"] = 4
    rec["tf"] = postings.tf[order]
    rec["dl_len"] = 4
    rec["dl"] = postings.lengths[postings.doc[order]]
    return HEADER + rec.tobytes() + TRAILER


def _pairs(values: NDArray[np.int64]) -> bytes:
    """Each value as a length-prefixed big-endian int4 (array elements), in one buffer."""
    out = np.empty((values.shape[0], 2), dtype=">i4")
    out[:, 0] = 4
    out[:, 1] = values
    return out.tobytes()


def documents_stream(
    rowids: NDArray[np.int64],
    ids: Sequence[str],
    texts: Sequence[str],
    metadata_json: Sequence[str],
    vectors: NDArray[np.float32],
    postings: Postings,
    *,
    rows_per_chunk: int = 2000,
) -> Iterator[bytes]:
    """``COPY docs (rowid, id, content, metadata, embedding, terms, tfs, len)`` in chunks.

    Raises:
        ValueError: A text, id or metadata is not valid Unicode (a lone surrogate).

    Example:
        >>> from langchain_fusion.lexical.tokenizer import TermEncoder, Tokenizer
        >>> p = Postings.from_encoding(TermEncoder(Tokenizer()).encode(["cat"]), np.array([1]))
        >>> vec = np.zeros((1, 2), dtype=np.float32)
        >>> stream = b"".join(documents_stream(np.array([5]), ["d1"], ["A"], ["{}"], vec, p))
        >>> stream.startswith(HEADER) and stream.endswith(TRAILER)
        True

    """
    n, dim = vectors.shape
    vec_field = struct.pack(">iHH", 4 + 4 * dim, dim, 0)
    vec_bytes = 4 * dim
    vecs = np.ascontiguousarray(vectors, dtype=">f4").tobytes()
    terms, tfs = _pairs(postings.term), _pairs(postings.tf)
    start = postings.start.tolist()
    lengths = postings.lengths.tolist()
    rowid_list = rowids.tolist()
    pack_head = struct.Struct(">hiq").pack  # field count, then the int8 rowid
    pack_len = struct.Struct(">i").pack
    pack_array = struct.Struct(">iiiiii").pack  # field length, ndim, flags, oid, n, lower bound
    pack_tail = struct.Struct(">ii").pack
    parts: list[bytes] = [HEADER]
    for i in range(n):
        try:
            id_b = ids[i].encode()
            text_b = texts[i].encode()
            meta_b = metadata_json[i].encode()
        except UnicodeEncodeError:
            raise ValueError(
                f"document {i} (id {ids[i]!r}) holds a lone surrogate: it is not valid "
                "Unicode; clean the text (e.g. s.encode('utf-8', 'replace').decode())"
            ) from None
        a, b = start[i], start[i + 1]
        if b > a:
            field = pack_array(20 + 8 * (b - a), 1, 0, _INT4_OID, b - a, 1)
            term_f = field + terms[8 * a : 8 * b]
            tf_f = field + tfs[8 * a : 8 * b]
        else:
            term_f = tf_f = _EMPTY_INT4_ARRAY
        parts += (
            pack_head(_DOC_FIELDS, 8, rowid_list[i]),
            pack_len(len(id_b)),
            id_b,
            pack_len(len(text_b)),
            text_b,
            pack_len(len(meta_b) + 1),
            b"\x01",
            meta_b,
            vec_field,
            vecs[vec_bytes * i : vec_bytes * (i + 1)],
            term_f,
            tf_f,
            pack_tail(4, lengths[i]),
        )
        if (i + 1) % rows_per_chunk == 0:
            yield b"".join(parts)
            parts = []
    parts.append(TRAILER)
    yield b"".join(parts)
