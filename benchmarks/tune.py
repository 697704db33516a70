"""Tuning benchmark: fusion settings tuned on train, reported on held-out queries.

SciFact (tune on train, report on test) and NFCorpus (tune on train, report on dev), with the
local all-MiniLM-L6-v2 embeddings cached as in benchmarks/quality.py. On the held-out split every
system goes through the real retriever (``evaluate``):

  * BM25 alone, dense alone;
  * FusionRetriever at defaults, and each method / normalization at defaults;
  * tuned on train: ``tune`` over method x alpha x normalization x RRF k x fetch_k;
  * tuned on train with BM25 k1/b also chosen on train (``tune_bm25``: fusion tuned per pair);
  * then pseudo-relevance feedback chosen on train (``tune_feedback``: off, or 2/3/5 feedback
    documents at weight 1/3 or 1/2), with its 5-fold check on train;
  * adaptive alpha (``AdaptiveFusion`` trained on train), with its k-fold check on train.

It also times a 21-point alpha sweep against one evaluation pass, and saves the metric-vs-alpha
plot of the held-out split to docs/assets/alpha_<dataset>.png.

Usage:
    python benchmarks/tune.py --data ../shared/data [--datasets scifact nfcorpus]
        [--no-bm25-grid] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DEFAULT_CACHE,
    CachedEmbeddings,
    beir_with_embeddings,
    build_index,
    data_dir,
    markdown_table,
    save_json,
)

from langchain_fusion import BM25Retriever, FusionRetriever
from langchain_fusion.evaluation import (
    AdaptiveFusion,
    compare,
    cross_validate_adaptive,
    evaluate,
    gather_pools,
    plot_alpha_sweep,
    tune,
    tune_bm25,
    tune_feedback,
)
from langchain_fusion.evaluation.tune import DEFAULT_ALPHAS

SPLITS = {"scifact": ("train", "test"), "nfcorpus": ("train", "dev")}
METRICS = ("ndcg@10", "recall@100")
BM25_GRID = {"k1": (0.7, 0.9, 1.2, 1.5), "b": (0.5, 0.75)}
TUNE_FETCH_K = 200  # tune() searches fetch_k in {200, 100, 50}
ASSETS = Path(__file__).resolve().parents[1] / "docs" / "assets"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_eval(retriever: Any, ds: Any) -> Any:
    return evaluate(retriever, ds.queries, ds.qrels, metrics=METRICS, k=100, show_progress=False)


def timing(retriever: FusionRetriever, ds: Any) -> dict[str, float]:
    """One evaluation pass vs a 21-point alpha sweep (and the full default grid), same split."""
    t0 = time.perf_counter()
    evaluate(retriever, ds.queries, ds.qrels, metrics=["ndcg@10"], show_progress=False)
    one_pass = time.perf_counter() - t0
    t0 = time.perf_counter()
    sweep = tune(
        retriever, ds.queries, ds.qrels, grid={"alpha": list(DEFAULT_ALPHAS)}, show_progress=False
    )
    sweep_total = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = tune(retriever, ds.queries, ds.qrels, show_progress=False)
    full_total = time.perf_counter() - t0
    return {
        "evaluate_pass_s": one_pass,
        "alpha_sweep_21_s": sweep_total,
        "alpha_sweep_gather_s": sweep.seconds["gather"],
        "alpha_sweep_fuse_s": sweep.seconds["sweep"],
        "ratio": sweep_total / one_pass,
        "full_grid_settings": len(full.settings),
        "full_grid_s": full_total,
    }


def choose_bm25(corpus: list, emb: CachedEmbeddings, train: Any, grid: dict) -> tuple[Any, list]:
    """Choose BM25 k1/b on train with ``tune_bm25`` (fusion tuned for each pair).

    Returns a new index left with the chosen pair, and one table row per pair.
    """
    index = build_index(corpus, emb)
    r = FusionRetriever.from_index(index, fetch_k=TUNE_FETCH_K)
    report = tune_bm25(r, train.queries, train.qrels, bm25_grid=grid, show_progress=False)
    rows = []
    for setting, score in zip(report.settings, report.scores):
        fusion = {k: v for k, v in setting.items() if k not in ("k1", "b")}
        rows.append([setting["k1"], setting["b"], float(score), str(fusion)])
        log(f"    k1={setting['k1']} b={setting['b']}: train nDCG@10 {score:.4f} {fusion}")
    return index, rows


def run_dataset(name: str, root: Path, cache: Path, bm25_grid: bool, assets: Path) -> dict:
    train_split, eval_split = SPLITS[name]
    emb, data = beir_with_embeddings(name, (train_split, eval_split), root, cache)
    train, held = data[train_split], data[eval_split]
    corpus = train.corpus
    print(
        f"\n## {name}: tune on {train_split} ({len(train.queries)} queries), report on "
        f"{eval_split} ({len(held.queries)} queries), {len(corpus)} documents\n"
    )
    out: dict[str, Any] = {}

    index = build_index(corpus, emb)
    defaults = FusionRetriever.from_index(index)

    log(f"[{name}] timing")
    out["timing"] = timing(defaults, held)

    log(f"[{name}] tuning on {train_split} (default BM25 k1=1.5, b=0.75)")
    tunable = defaults.model_copy(update={"fetch_k": TUNE_FETCH_K})
    tuned = tune(tunable, train.queries, train.qrels, cv=5, show_progress=False)
    out["tuned"] = {
        "best": tuned.best,
        "train": tuned.best_score,
        "train_cv": tuned.cv.mean_score if tuned.cv else None,
    }

    final_index, final_tuned, bm25_rows = index, tuned, []
    bm25_best = {"k1": 1.5, "b": 0.75}
    if bm25_grid:
        log(f"[{name}] BM25 k1/b chosen on {train_split}")
        final_index, bm25_rows = choose_bm25(corpus, emb, train, BM25_GRID)
        bm25_best = {k: final_index.bm25_params[k] for k in ("k1", "b")}
        final_r = FusionRetriever.from_index(final_index, fetch_k=TUNE_FETCH_K)
        final_tuned = tune(final_r, train.queries, train.qrels, cv=5, show_progress=False)
    out["bm25"] = {"chosen": bm25_best, "grid": bm25_rows}

    log(f"[{name}] feedback chosen on {train_split} (5-fold check)")
    fb_report = tune_feedback(
        final_tuned.retriever, train.queries, train.qrels, cv=5, show_progress=False
    )
    out["feedback"] = {
        "best": fb_report.best,
        "train": fb_report.best_score,
        "train_cv": fb_report.cv.mean_score if fb_report.cv else None,
        "grid": [[str(st), float(sc)] for st, sc in zip(fb_report.settings, fb_report.scores)],
        "seconds": fb_report.seconds,
    }
    final_base = FusionRetriever.from_index(final_index, fetch_k=TUNE_FETCH_K)

    log(f"[{name}] adaptive fusion (train, 5-fold check)")
    pools = gather_pools(final_base, train.queries, train.qrels, show_progress=False)
    cv_adaptive = cross_validate_adaptive(
        final_base, train.queries, train.qrels, pools=pools, show_progress=False
    )
    model = AdaptiveFusion.fit(
        final_base, train.queries, train.qrels, pools=pools, show_progress=False
    )
    model.save(Path(cache) / f"adaptive-{name}.json")
    out["adaptive_cv_train"] = {
        "fixed": cv_adaptive.fixed,
        "adaptive": cv_adaptive.adaptive,
        "oracle": cv_adaptive.oracle,
        "wins": cv_adaptive.wins,
        "p": cv_adaptive.p_value(),
    }

    log(f"[{name}] evaluating on {eval_split}")
    systems: dict[str, Any] = {
        "BM25 (langchain-fusion, k1=1.5 b=0.75)": BM25Retriever.from_documents(corpus, k=100),
        "dense (MiniLM, exact cosine)": index.as_retriever(search_kwargs={"k": 100}),
        "FusionRetriever (defaults: convex minmax, alpha=0.5)": defaults,
    }
    for method in ("zscore", "dbsf", "rrf"):
        systems[f"FusionRetriever method={method}"] = defaults.model_copy(update={"method": method})
    systems[f"tuned on {train_split}"] = tuned.retriever
    if bm25_grid:
        label = f"tuned on {train_split} + BM25 k1={bm25_best['k1']} b={bm25_best['b']}"
        systems[label] = final_tuned.retriever
    fb_label = f"tuned on {train_split} + feedback {fb_report.best}"
    systems[fb_label] = fb_report.retriever
    systems[f"adaptive alpha (trained on {train_split})"] = model.as_retriever(final_base)
    reports = {}
    for label, retriever in systems.items():
        reports[label] = run_eval(retriever, held)
        log(f"    {label}: nDCG@10 {reports[label].metrics['ndcg@10']:.4f}")
    out["held_out"] = {label: r.metrics for label, r in reports.items()}

    # plot: the held-out sweep, with the setting tuned on train starred
    best = final_tuned.best
    sweep_grid = {
        "method": ["convex", "rrf"],
        "normalization": ["minmax", "zscore", "dbsf"],
        "rrf_k": [best.get("rrf_k", 60)],
        "alpha": list(DEFAULT_ALPHAS),
        "fetch_k": [best["fetch_k"]],
    }
    sweep = tune(
        final_tuned.retriever, held.queries, held.qrels, grid=sweep_grid, show_progress=False
    )
    png = plot_alpha_sweep(
        sweep,
        assets / f"alpha_{name}.png",
        mark=best,
        mark_label=f"tuned on {train_split}",
        title=f"{name} {eval_split}: nDCG@10 against alpha (BM25 k1={bm25_best['k1']}, "
        f"b={bm25_best['b']}, fetch_k={best['fetch_k']})",
    )
    out["plot"] = str(png)

    # ------------------------------------------------------------------ tables
    print(f"### {eval_split} split (every system through evaluate())\n")
    print(compare(reports, baseline="FusionRetriever (defaults: convex minmax, alpha=0.5)"))
    print(
        f"\ntuned setting (default BM25): {tuned.best}, train nDCG@10 {tuned.best_score:.4f}, "
        f"5-fold CV on train {tuned.cv.mean_score:.4f}"
        if tuned.cv
        else ""
    )
    if bm25_grid:
        print(
            f"tuned setting (BM25 k1={bm25_best['k1']}, b={bm25_best['b']}): {final_tuned.best}, "
            f"train nDCG@10 {final_tuned.best_score:.4f}"
        )
        print("\nBM25 parameters, each with fusion tuned on train:\n")
        print(markdown_table(["k1", "b", "train nDCG@10", "best setting"], bm25_rows))
    print(f"\nfeedback settings, each with the tuned fusion, on {train_split}:\n")
    print(fb_report.to_markdown(top=None))
    if fb_report.cv:
        print(f"5-fold CV of the feedback choice on {train_split}: {fb_report.cv.mean_score:.4f}")
    print(f"\n### adaptive alpha vs best fixed setting, 5-fold CV on {train_split}\n")
    print(cv_adaptive.to_markdown())
    t = out["timing"]
    print(f"\n### timing on {eval_split} ({len(held.queries)} queries)\n")
    print(
        markdown_table(
            ["what", "seconds"],
            [
                ["one evaluate() pass, FusionRetriever defaults", t["evaluate_pass_s"]],
                ["21-point alpha sweep with tune() (gather + fuse)", t["alpha_sweep_21_s"]],
                ["  of which gathering candidates once", t["alpha_sweep_gather_s"]],
                ["  of which fusing + scoring 21 settings", t["alpha_sweep_fuse_s"]],
                [f"full default grid ({t['full_grid_settings']} settings)", t["full_grid_s"]],
            ],
        )
    )
    print(f"\nsweep / evaluate pass = {t['ratio']:.2f}x; plot: {png}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="path to shared/data (has beir/)")
    parser.add_argument("--datasets", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--no-bm25-grid", action="store_true", help="skip the BM25 k1/b search")
    parser.add_argument("--assets", type=Path, default=ASSETS, help="where the plots go")
    parser.add_argument("--out", type=Path, help="write results as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    root = data_dir(args.data)
    results = {}
    for name in args.datasets:
        results[name] = run_dataset(name, root, args.cache, not args.no_bm25_grid, args.assets)
    if args.out:
        save_json(args.out, results)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
