"""Dense retrieval engine: local default embeddings, their fine-tuning, and ``DenseIndex``.

No LangChain retrieval machinery here beyond the ``Embeddings`` interface, and importing this
package never imports ``sentence_transformers`` or ``torch`` (the model loads on first use).
"""

from __future__ import annotations

from langchain_fusion.dense.embeddings import (
    LocalEmbeddings,
    default_embeddings,
    local_embeddings,
)
from langchain_fusion.dense.finetune import (
    fine_tune_embeddings,
    fine_tuning_record,
    training_pairs,
)
from langchain_fusion.dense.index import DenseIndex

__all__ = [
    "DenseIndex",
    "LocalEmbeddings",
    "default_embeddings",
    "fine_tune_embeddings",
    "fine_tuning_record",
    "local_embeddings",
    "training_pairs",
]
