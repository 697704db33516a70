"""The SQL of ``PostgresHybridStore``'s writes and searches (BM25 computed in SQL).

Split out of ``_store.py``: statement texts with ``{name}`` placeholders for the collection's
checked identifiers and ``%(name)s`` parameters; nothing here imports the store.
"""

from __future__ import annotations

__all__: list[str] = []

# ------------------------------------------------------------------------------ SQL

_DELETE = """
WITH gone AS (
    DELETE FROM {docs} WHERE id = ANY(%(ids)s) RETURNING rowid, terms, len
), p AS (
    DELETE FROM {postings} p USING (
        SELECT u.t, g.rowid FROM gone g, unnest(g.terms) AS u(t)
    ) x WHERE p.term = x.t AND p.doc = x.rowid
), d AS (
    UPDATE {terms} t SET df = t.df - c.n FROM (
        SELECT u.t, count(*) AS n FROM gone g, unnest(g.terms) AS u(t) GROUP BY u.t
    ) c WHERE t.id = c.t
), s AS (
    UPDATE {registry} SET
        n_docs = n_docs - (SELECT count(*) FROM gone),
        total_len = total_len - (SELECT coalesce(sum(len), 0) FROM gone)
    WHERE name = %(collection)s
)
SELECT count(*) FROM gone"""

# After the rows of an add are copied in: the added documents' term frequencies and the corpus
# size and length, from counts the client computed over the batch (terms in id order).
_ADD_STATISTICS = """
WITH d AS (
    UPDATE {terms} t SET df = t.df + u.n
    FROM unnest(%(terms)s::text::int4[], %(df)s::text::int8[]) AS u(id, n) WHERE t.id = u.id
)
UPDATE {registry} SET n_docs = n_docs + %(n_docs)s, total_len = total_len + %(total_len)s
WHERE name = %(collection)s"""

# The query terms with their weights qtf * idf (Lucene idf), from the stored statistics.
_QUERY_TERMS = """
st AS (
    SELECT n_docs::float8 AS n, greatest(total_len::float8 / greatest(n_docs, 1), 1e-9) AS avgdl
    FROM {registry} WHERE name = %(collection)s
), qw AS (
    SELECT t.id, q.qtf * ln(1 + (st.n - t.df + 0.5) / (t.df + 0.5)) AS w
    FROM unnest(%(qterms)s::text[], %(qtf)s::float8[]) AS q(term, qtf)
    JOIN {terms} t ON t.term = q.term, st
    WHERE t.df > 0
)"""

_TFC = "p.tf / (p.tf + %(k1)s::float8 * (1 - %(b)s::float8 + %(b)s::float8 * p.dl / st.avgdl))"


def _joint_sql(filtered: bool, exact: bool, k_dense: bool, k_bm25: bool) -> str:
    """One statement: dense top-k, BM25 top-k, both sides' scores of every candidate, docs."""
    order = (
        "(d.embedding <=> %(qvec)s::vector) + 0" if exact else "d.embedding <=> %(qvec)s::vector"
    )
    where = "WHERE {filter}" if filtered else ""
    dense = (
        f"""dn AS MATERIALIZED (
        SELECT d.rowid, row_number() OVER () AS rk FROM (
            SELECT d.rowid FROM {{docs}} d {where} ORDER BY {order} LIMIT %(k)s
        ) d
    )"""
        if k_dense
        else "dn AS (SELECT NULL::int8 AS rowid, NULL::int8 AS rk WHERE false)"
    )
    if not k_bm25:
        bm = "bm AS (SELECT NULL::int8 AS doc, NULL::int8 AS rk WHERE false)"
    elif filtered:
        bm = f"""bm AS MATERIALIZED (
        SELECT doc, row_number() OVER (ORDER BY score DESC, doc) AS rk FROM (
            SELECT p.doc, sum(qw.w * {_TFC}) AS score
            FROM qw JOIN {{postings}} p ON p.term = qw.id JOIN {{docs}} d ON d.rowid = p.doc, st
            {where}
            GROUP BY p.doc ORDER BY score DESC, p.doc LIMIT %(kk)s
        ) x WHERE score > 0
    )"""
    else:
        bm = f"""bm AS MATERIALIZED (
        SELECT doc, row_number() OVER (ORDER BY score DESC, doc) AS rk FROM (
            SELECT p.doc, sum(qw.w * {_TFC}) AS score
            FROM qw JOIN {{postings}} p ON p.term = qw.id, st
            GROUP BY p.doc ORDER BY score DESC, p.doc LIMIT %(kk)s
        ) x WHERE score > 0
    )"""
    return f"""
WITH {_QUERY_TERMS}, {dense}, {bm},
cand AS (
    SELECT rowid, max(dr) AS dr, max(br) AS br FROM (
        SELECT rowid, rk AS dr, NULL::int8 AS br FROM dn
        UNION ALL SELECT doc, NULL, rk FROM bm
    ) u GROUP BY rowid
), kw AS (
    SELECT p.doc, sum(qw.w * {_TFC}) AS score
    FROM cand c CROSS JOIN qw JOIN {{postings}} p ON p.term = qw.id AND p.doc = c.rowid, st
    GROUP BY p.doc
)
SELECT d.id, c.dr, c.br, 1 - (d.embedding <=> %(qvec)s::vector) AS dense,
       coalesce(kw.score, 0) AS bm25, d.content, d.metadata,
       (SELECT n_docs FROM {{registry}} WHERE name = %(collection)s) AS n_docs
FROM cand c JOIN {{docs}} d ON d.rowid = c.rowid LEFT JOIN kw ON kw.doc = c.rowid"""


_SCORE_SQL = """
WITH {query_terms}, ids AS (
    SELECT d.rowid, d.id, d.embedding FROM {{docs}} d WHERE d.id = ANY(%(ids)s)
), kw AS (
    SELECT p.doc, sum(qw.w * {tfc}) AS score
    FROM ids c CROSS JOIN qw JOIN {{postings}} p ON p.term = qw.id AND p.doc = c.rowid, st
    GROUP BY p.doc
)
SELECT ids.id, {dense}, coalesce(kw.score, 0)
FROM ids LEFT JOIN kw ON kw.doc = ids.rowid"""
