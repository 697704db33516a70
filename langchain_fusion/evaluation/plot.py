"""Plot a tuning sweep: the metric against alpha, one line per fusion method (extra ``plot``).

Example:
    >>> import numpy as np, tempfile, os
    >>> from langchain_fusion.evaluation.tune import TuningReport
    >>> settings = [{"method": "convex", "normalization": "minmax", "alpha": a}
    ...             for a in (0.0, 0.5, 1.0)]
    >>> report = TuningReport("ndcg@10", settings, np.array([0.60, 0.70, 0.55]),
    ...                       np.zeros((3, 1)), ["q"], settings[1], 0.70, None)
    >>> path = plot_alpha_sweep(report, os.path.join(tempfile.mkdtemp(), "alpha.png"))
    >>> path.suffix, path.stat().st_size > 0
    ('.png', True)

"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_fusion.evaluation.tune import TuningReport

__all__ = ["load_matplotlib", "plot_alpha_sweep"]


def load_matplotlib() -> tuple[Any, Any]:
    """Return matplotlib's ``Figure`` and Agg canvas classes (ImportError naming the extra)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'plotting needs matplotlib: pip install "langchain-fusion[plot]"'
        ) from exc
    return Figure, FigureCanvasAgg


def plot_alpha_sweep(
    report: TuningReport,
    path: str | Path,
    *,
    baselines: Mapping[str, float] | None = None,
    fetch_k: int | None = None,
    title: str | None = None,
    mark: Mapping[str, Any] | None = None,
    mark_label: str = "best",
) -> Path:
    """Save a PNG of the metric against alpha, one line per method / normalization / RRF k.

    Horizontal dashed lines mark reference systems (``baselines``, e.g. BM25 only and dense
    only); by default they are read off the sweep itself (the convex curve at alpha = 0 is
    BM25 alone, at alpha = 1 dense alone). The best setting is marked with a star.

    Args:
        report: A `TuningReport` whose grid varied ``alpha``.
        path: Where to write the image (``.png``; the format follows the suffix).
        baselines: ``{label: score}`` reference lines; ``{}`` for none.
        fetch_k: Plot the settings with this ``fetch_k`` (default: the best setting's).
        title: Figure title (default: the metric and query count).
        mark: The setting to star (default: the report's best), e.g. the setting tuned on a
            train split when ``report`` sweeps the test split.
        mark_label: Legend label of the star.

    Returns:
        The path written.

    Raises:
        ValueError: If the report has no alpha sweep (e.g. it varied ``weights``).
        ImportError: If matplotlib is missing (install the ``plot`` extra).

    Example:
        >>> import numpy as np, tempfile, os
        >>> settings = [{"method": "rrf", "rrf_k": 60, "alpha": a} for a in (0.0, 1.0)]
        >>> report = TuningReport("ndcg@10", settings, np.array([0.6, 0.5]), np.zeros((2, 1)),
        ...                       ["q"], settings[0], 0.6, None)
        >>> out = plot_alpha_sweep(report, os.path.join(tempfile.mkdtemp(), "a.png"),
        ...                        baselines={"BM25 only": 0.62})
        >>> out.exists()
        True

    """
    star = dict(mark) if mark is not None else dict(report.best)
    fk = fetch_k if fetch_k is not None else star.get("fetch_k", report.best.get("fetch_k"))
    curves = {label: curve for label, curve in report.curves(fk).items() if curve[0]}
    if not curves:
        raise ValueError(
            "report has no alpha sweep to plot (its grid must vary 'alpha'"
            + (f" at fetch_k={fk}" if fk is not None else "")
            + ")"
        )
    if baselines is None:
        baselines = _default_baselines(report, fk)
    figure_cls, canvas_cls = load_matplotlib()
    fig = figure_cls(figsize=(9.0, 4.8), dpi=120)
    canvas_cls(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, (alphas, scores) in curves.items():
        style = "-" if label.startswith("convex") else "--" if "rrf" in label else "-."
        ax.plot(alphas, scores, style, marker="o", markersize=3, linewidth=1.5, label=label)
    colors = ("0.35", "0.6", "0.8")
    for i, (label, value) in enumerate(baselines.items()):
        ax.axhline(value, color=colors[i % len(colors)], linestyle=":", linewidth=1.5, label=label)
    if "alpha" in star and (fk is None or star.get("fetch_k", fk) == fk):
        star_alphas, star_scores = report.curve(**{k: v for k, v in star.items() if k != "alpha"})
        if star["alpha"] in star_alphas:
            star_score = star_scores[star_alphas.index(star["alpha"])]
            ax.plot(
                [star["alpha"]],
                [star_score],
                marker="*",
                markersize=14,
                color="black",
                linestyle="none",
                label=f"{mark_label}: {star_score:.4f}",
            )
    ax.set_xlabel("alpha  (0 = keyword only, 1 = vector only)")
    ax.set_ylabel(report.metric)
    ax.set_xlim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    n = len(report.query_ids)
    default_title = f"{report.metric} against alpha ({n} queries"
    default_title += f", fetch_k={fk})" if fk is not None else ")"
    ax.set_title(title if title is not None else default_title)
    # beside the axes, never over the curves
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    return target


def _default_baselines(report: TuningReport, fetch_k: Any) -> dict[str, float]:
    for s in report.settings:
        if s.get("method") == "convex" and (fetch_k is None or s.get("fetch_k") == fetch_k):
            alphas, scores = report.curve(**{k: v for k, v in s.items() if k != "alpha"})
            out: dict[str, float] = {}
            if alphas and alphas[0] == 0.0:
                out["BM25 only (alpha=0)"] = scores[0]
            if alphas and alphas[-1] == 1.0:
                out["dense only (alpha=1)"] = scores[-1]
            return out
    return {}
