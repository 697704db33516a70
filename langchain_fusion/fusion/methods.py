"""The names of the fusion methods and score normalizations: the one list every other derives.

`FusionMethod` and `Normalization` are the registry: the normalization dispatcher
([`normalize`][langchain_fusion.fusion.normalize]),
[`FusionSpec`][langchain_fusion.fusion.FusionSpec], the tuning grid and the command-line
choices all read their names from here.

Example:
    >>> [m.value for m in FusionMethod], NORMALIZATION_NAMES
    (['convex', 'rrf'], ('minmax', 'zscore', 'dbsf', 'none'))
    >>> METHOD_CHOICES
    ('convex', 'rrf', 'minmax', 'zscore', 'dbsf')

"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "METHOD_CHOICES",
    "METHOD_SHORTHANDS",
    "NORMALIZATION_NAMES",
    "FusionMethod",
    "Normalization",
]


class FusionMethod(str, Enum):
    """How ranked lists are merged.

    * ``CONVEX``: normalize each retriever's scores, then ``sum_i w_i * s_i``; with two
      retrievers, ``alpha * vector + (1 - alpha) * keyword``.
    * ``RRF``: weighted Reciprocal Rank Fusion, ``sum_i w_i / (rrf_k + rank_i)``.

    Example:
        >>> FusionMethod("rrf") is FusionMethod.RRF
        True

    """

    CONVEX = "convex"
    RRF = "rrf"


class Normalization(str, Enum):
    """Score normalization used by the convex method.

    * ``MINMAX``: ``(s - min) / (max - min)`` over the candidates.
    * ``ZSCORE``: ``(s - mean) / std``.
    * ``DBSF``: distribution-based score fusion (Qdrant): min-max between mean ± 3 std, clipped.
    * ``NONE``: raw scores (only sensible when retrievers share a scale).

    Example:
        >>> Normalization("dbsf").value
        'dbsf'

    """

    MINMAX = "minmax"
    ZSCORE = "zscore"
    DBSF = "dbsf"
    NONE = "none"


NORMALIZATION_NAMES: tuple[str, ...] = tuple(n.value for n in Normalization)
"""Every normalization name: ``("minmax", "zscore", "dbsf", "none")``."""

METHOD_SHORTHANDS: tuple[str, ...] = tuple(n.value for n in Normalization if n.value != "none")
"""Method names that mean "convex with this normalization": ``("minmax", "zscore", "dbsf")``."""

METHOD_CHOICES: tuple[str, ...] = (*(m.value for m in FusionMethod), *METHOD_SHORTHANDS)
"""Every value a ``method`` option accepts (methods, then the convex shorthands)."""
