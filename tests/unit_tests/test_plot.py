"""The alpha-sweep plot: the star marks the requested setting at its own score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_fusion.evaluation.tune import TuningReport

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure

from langchain_fusion.evaluation.plot import plot_alpha_sweep

ALPHAS = (0.0, 0.5, 1.0)
SETTINGS = [
    {"method": "convex", "normalization": norm, "alpha": a, "fetch_k": 100}
    for norm in ("minmax", "zscore")
    for a in ALPHAS
]
SCORES = np.array([0.60, 0.70, 0.50, 0.60, 0.75, 0.50])  # best: zscore, alpha 0.5


def _report() -> TuningReport:
    best = SETTINGS[int(np.argmax(SCORES))]
    return TuningReport(
        "ndcg@10", SETTINGS, SCORES, np.zeros((len(SETTINGS), 1)), ["q"], best, 0.75, None
    )


def _stars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kwargs: Any) -> list[Any]:
    figures: list[Figure] = []
    original = Figure.savefig

    def capture(self: Figure, *args: Any, **kw: Any) -> None:
        figures.append(self)
        original(self, *args, **kw)

    monkeypatch.setattr(Figure, "savefig", capture)
    out = plot_alpha_sweep(_report(), tmp_path / "alpha.png", **kwargs)
    assert out.is_file()
    (ax,) = figures[0].axes
    return [line for line in ax.get_lines() if line.get_marker() == "*"]


def test_star_defaults_to_the_best_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (star,) = _stars(monkeypatch, tmp_path)
    assert list(star.get_xdata()) == [0.5] and list(star.get_ydata()) == [0.75]
    assert star.get_label() == "best: 0.7500"


def test_star_marks_the_given_setting_at_its_own_score(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tuned_on_train = {"method": "convex", "normalization": "minmax", "alpha": 0.5, "fetch_k": 100}
    (star,) = _stars(monkeypatch, tmp_path, mark=tuned_on_train, mark_label="tuned on train")
    assert list(star.get_xdata()) == [0.5] and list(star.get_ydata()) == [0.70]
    assert star.get_label() == "tuned on train: 0.7000"
