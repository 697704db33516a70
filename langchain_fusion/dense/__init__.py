"""Dense retrieval engine: local default embeddings and the FAISS-backed ``DenseIndex``.

No LangChain retrieval machinery here beyond the ``Embeddings`` interface, and importing this
package never imports ``sentence_transformers`` or ``torch`` (the model loads on first use).
"""

from __future__ import annotations

from langchain_fusion.dense.embeddings import (
    LocalEmbeddings,
    default_embeddings,
    local_embeddings,
)
from langchain_fusion.dense.index import DenseIndex

__all__ = ["DenseIndex", "LocalEmbeddings", "default_embeddings", "local_embeddings"]
