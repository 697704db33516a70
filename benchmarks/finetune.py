"""Fine-tuning benchmark: all-MiniLM-L6-v2 fine-tuned on train, measured on held-out queries.

SciFact (test claims). Everything is chosen on the train claims; the test claims are used once:

  1. the number of epochs: for each candidate, fine-tune on four fifths of the train claims and
     score the fused retriever at the package defaults on the last fifth;
  2. fine-tune on all train claims with the chosen number of epochs (``fine_tune_embeddings``);
  3. BM25 k1/b and the fusion settings with ``tune_bm25`` on all train claims, twice: in-sample
     (the fine-tuned model scores claims it was trained on) and cross-fitted (``cross_fit``:
     each claim is scored by a model fine-tuned on the other four fifths of train);
  4. measure on test: dense alone, fused defaults and tuned, next to the same rows with the
     original model.

NFCorpus (dev queries). Its 2,590 train queries have about 40 relevant documents each (110k
pairs, hours of CPU per epoch), so the budget is fixed in advance instead of searched: one
epoch on at most 2 relevant documents per query (``max_pairs_per_query=2``), fine-tuned on four
fifths of the train queries; BM25 k1/b, the fusion and feedback are chosen on the last fifth,
which the model never saw, and the same protocol is run with the original model beside it.

Fine-tuned models and vectors are cached (``--cache``), so a second run only evaluates.

Usage:
    python benchmarks/finetune.py --data ../shared/data [--collections scifact nfcorpus]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DEFAULT_CACHE,
    beir_with_embeddings,
    build_index,
    cached_embeddings,
    data_dir,
    markdown_table,
    save_json,
)

from langchain_fusion import FusionRetriever, HybridIndex, LocalEmbeddings
from langchain_fusion.dense import fine_tune_embeddings
from langchain_fusion.evaluation import compare, evaluate, tune_bm25, tune_feedback

METRICS = ("ndcg@10", "recall@100")
FOLDS = 5  # the last fold scores the epoch candidates; all five cross-fit the tuning
TUNE_FETCH_K = 200


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_folds(qrels: dict[str, Any], seed: int = 0) -> list[list[str]]:
    """The judged train claims in ``FOLDS`` near-equal folds (fixed seed)."""
    ids = sorted(qrels)
    random.Random(seed).shuffle(ids)
    cuts = [round(i * len(ids) / FOLDS) for i in range(FOLDS + 1)]
    return [ids[a:b] for a, b in pairwise(cuts)]


def fold_model(ds: Any, data: Any, folds: list[list[str]], f: int, epochs: int, cache: Path) -> Any:
    """Embeddings of the model fine-tuned on every fold but ``f`` (cached)."""
    name = f"scifact-train-cf{f}of{FOLDS}-e{epochs}"
    fit = [q for g, fold in enumerate(folds) if g != f for q in fold]
    return cached_embeddings(tuned_model(name, ds, fit, epochs, cache), name, data, cache)


def tuned_model(
    name: str,
    ds: Any,
    query_ids: list[str],
    epochs: int,
    cache: Path,
    max_pairs_per_query: int | None = None,
) -> LocalEmbeddings:
    """Fine-tune on ``query_ids`` of ``ds`` once; later runs reuse ``cache/finetuned/name``."""
    out = cache / "finetuned" / name
    if (out / "config.json").is_file():
        log(f"  using the cached model {out}")
    else:
        t0 = time.perf_counter()
        fine_tune_embeddings(
            {q: ds.queries[q] for q in query_ids},
            {q: ds.qrels[q] for q in query_ids},
            ds.corpus,
            out,
            epochs=epochs,
            max_pairs_per_query=max_pairs_per_query,
            overwrite=True,
        )
        log(f"  fine-tuned {name} in {time.perf_counter() - t0:.0f} s")
    return LocalEmbeddings(model_path=out, batch_size=32, quantize=False)  # as the base vectors


def measure(retriever: Any, ds: Any) -> Any:
    """nDCG@10 and recall@100 of ``retriever`` on the held-out split ``ds``."""
    return evaluate(retriever, ds.queries, ds.qrels, metrics=METRICS, k=100, show_progress=False)


def fused(emb: Any, corpus: list) -> tuple[HybridIndex, FusionRetriever]:
    index = build_index(corpus, emb)
    return index, FusionRetriever.from_index(index, fetch_k=TUNE_FETCH_K)


def run_scifact(root: Path, cache: Path, epochs_grid: list[int]) -> dict[str, Any]:
    base_emb, data = beir_with_embeddings("scifact", ("train", "test"), root, cache)
    train, test = data["train"], data["test"]
    folds = train_folds(train.qrels)
    holdout_ids = folds[-1]
    holdout_q = {q: train.queries[q] for q in holdout_ids}
    holdout_r = {q: train.qrels[q] for q in holdout_ids}
    out: dict[str, Any] = {"holdout": {}}

    # 1. epochs, chosen on the last fold of train
    log(
        f"[epochs] fine-tune on {len(train.qrels) - len(holdout_ids)} train claims, "
        f"score on {len(holdout_ids)}"
    )
    rows = []
    for epochs in epochs_grid:
        emb = fold_model(train, data, folds, FOLDS - 1, epochs, cache)
        index, _ = fused(emb, train.corpus)
        scores = {}
        for name, r in (
            ("dense", index.as_retriever(search_kwargs={"k": 100})),
            ("fused", FusionRetriever.from_index(index)),
        ):
            rep = evaluate(r, holdout_q, holdout_r, metrics=["ndcg@10"], show_progress=False)
            scores[name] = rep.metrics["ndcg@10"]
        rows.append([epochs, scores["dense"], scores["fused"]])
        out["holdout"][epochs] = scores
        log(
            f"  {epochs} epoch(s): holdout dense {scores['dense']:.4f}, fused {scores['fused']:.4f}"
        )
    chosen = max(epochs_grid, key=lambda e: (out["holdout"][e]["fused"], -e))
    out["epochs"] = chosen

    # 2. fine-tune on all train claims
    log(f"[model] fine-tune on all {len(train.qrels)} train claims, {chosen} epoch(s)")
    t0 = time.perf_counter()
    cached = (cache / "finetuned" / f"scifact-train-e{chosen}" / "config.json").is_file()
    model = tuned_model(f"scifact-train-e{chosen}", train, sorted(train.qrels), chosen, cache)
    out["fine_tune_s"] = None if cached else time.perf_counter() - t0
    tuned_emb = cached_embeddings(model, f"scifact-train-e{chosen}", data, cache)

    # 3. + 4. BM25 k1/b and fusion chosen on train, then test, for both models
    reports: dict[str, Any] = {}
    settings: dict[str, Any] = {}

    def on_test(label: str, retriever: Any) -> None:
        reports[label] = measure(retriever, test)

    def tuned_on_train(label: str, emb: Any, cross_fit: Any = None) -> None:
        _, retriever = fused(emb, train.corpus)  # a fresh index: BM25 at the defaults
        report = tune_bm25(
            retriever, train.queries, train.qrels, show_progress=False, cross_fit=cross_fit
        )
        settings[label] = report.best
        on_test(label, report.retriever)
        log(f"  {label}: {report.best} -> train {report.best_score:.4f}")

    fine = f"MiniLM fine-tuned ({chosen} epochs)"
    for model, emb in (("MiniLM", base_emb), (fine, tuned_emb)):
        index, _ = fused(emb, train.corpus)
        on_test(f"{model}: dense alone", index.as_retriever(search_kwargs={"k": 100}))
        on_test(f"{model}: fused, defaults", FusionRetriever.from_index(index))
        tuned_on_train(f"{model}: fused, BM25 + fusion tuned on train", emb)

    # 3b. the same tuning, cross-fitted: each train claim is scored by the model fine-tuned on
    # the four folds it is not in, as the refit model will score the test claims
    log(f"[cross-fit] {FOLDS} models, each fine-tuned on the other folds, {chosen} epoch(s)")
    cross_fit, dense_train = [], {}
    for f, fold in enumerate(folds):
        index, retriever = fused(fold_model(train, data, folds, f, chosen, cache), train.corpus)
        cross_fit.append((fold, retriever))
        dense_train[f"fold {f}"] = evaluate(
            index.as_retriever(search_kwargs={"k": 100}),
            {q: train.queries[q] for q in fold},
            {q: train.qrels[q] for q in fold},
            metrics=["ndcg@10"],
            show_progress=False,
        ).metrics["ndcg@10"] * len(fold)
    index, _ = fused(tuned_emb, train.corpus)
    out["dense_train_ndcg@10"] = {
        "in-sample": evaluate(
            index.as_retriever(search_kwargs={"k": 100}),
            train.queries,
            train.qrels,
            metrics=["ndcg@10"],
            show_progress=False,
        ).metrics["ndcg@10"],
        "out-of-fold": sum(dense_train.values()) / len(train.qrels),
    }
    tuned_on_train(
        f"{fine}: fused, BM25 + fusion tuned on train, cross-fitted", tuned_emb, cross_fit
    )
    out["test"] = {label: r.metrics for label, r in reports.items()}
    out["settings"] = settings
    out["paired"] = paired(reports, f"{fine}: fused, BM25 + fusion tuned on train, cross-fitted")

    print(f"\n## Epochs, chosen on 1/{FOLDS} of SciFact train (fine-tuned on the rest)\n")
    print(markdown_table(["epochs", "dense nDCG@10", "fused nDCG@10 (defaults)"], rows))
    took = "cached" if out["fine_tune_s"] is None else f"took {out['fine_tune_s']:.0f} s"
    print(f"\nchosen: {chosen} epoch(s); fine-tuning on all train: {took}")
    in_sample, oof = out["dense_train_ndcg@10"].values()
    print(
        f"fine-tuned dense nDCG@10 on train: {in_sample:.4f} in-sample, {oof:.4f} out-of-fold "
        f"(test: {reports[f'{fine}: dense alone'].metrics['ndcg@10']:.4f})"
    )
    print("\n## SciFact test (300 claims)\n")
    print(compare(reports, baseline="MiniLM: fused, defaults"))
    for label, best in settings.items():
        print(f"\n{label}, chosen on train: {best}")
    print_paired(out["paired"], f"{fine}: cross-fitted", len(test.qrels))
    return out


NF_PAIRS, NF_EPOCHS = 2, 1  # NFCorpus budget, fixed in advance (about 13 minutes on 2 cores)


def run_nfcorpus(root: Path, cache: Path) -> dict[str, Any]:
    base_emb, data = beir_with_embeddings("nfcorpus", ("train", "dev"), root, cache)
    train, dev = data["train"], data["dev"]
    *fit_folds, holdout_ids = train_folds(train.qrels)
    fit_ids = [q for fold in fit_folds for q in fold]
    name = f"nfcorpus-train80-p{NF_PAIRS}-e{NF_EPOCHS}"
    log(f"[nfcorpus] fine-tune on {len(fit_ids)} train queries, tune on {len(holdout_ids)}")
    model = tuned_model(name, train, fit_ids, NF_EPOCHS, cache, max_pairs_per_query=NF_PAIRS)
    tuned_emb = cached_embeddings(model, name, data, cache)
    holdout_q = {q: train.queries[q] for q in holdout_ids}
    holdout_r = {q: train.qrels[q] for q in holdout_ids}
    reports: dict[str, Any] = {}
    settings: dict[str, Any] = {}

    def on_dev(label: str, retriever: Any) -> None:
        reports[label] = measure(retriever, dev)

    fine = f"MiniLM fine-tuned ({NF_EPOCHS} epoch, {NF_PAIRS} pairs/query)"
    for model_name, emb in (("MiniLM", base_emb), (fine, tuned_emb)):
        index, retriever = fused(emb, train.corpus)
        on_dev(f"{model_name}: dense alone", index.as_retriever(search_kwargs={"k": 100}))
        on_dev(f"{model_name}: fused, defaults", FusionRetriever.from_index(index))
        report = tune_bm25(retriever, holdout_q, holdout_r, show_progress=False)
        on_dev(f"{model_name}: BM25 + fusion tuned on the train fifth", report.retriever)
        feedback = tune_feedback(report.retriever, holdout_q, holdout_r, show_progress=False)
        on_dev(
            f"{model_name}: BM25 + fusion + feedback tuned on the train fifth", feedback.retriever
        )
        settings[model_name] = {**report.best, **feedback.best}
        log(f"  {model_name}: {settings[model_name]}")
    last = f"{fine}: BM25 + fusion + feedback tuned on the train fifth"
    out = {
        "test": {label: r.metrics for label, r in reports.items()},
        "settings": settings,
        "paired": paired(reports, last),
    }
    print(f"\n## NFCorpus dev ({len(dev.qrels)} queries)\n")
    print(compare(reports, baseline="MiniLM: fused, defaults"))
    for label, best in settings.items():
        print(f"\n{label}, chosen on the train fifth: {best}")
    print_paired(out["paired"], last, len(dev.qrels))
    return out


def print_paired(result: dict[str, Any], name: str, n: int) -> None:
    print(f"\n## {name}, against the other rows (nDCG@10, paired t-test)\n")
    versus = [[other, f"{d:+.4f}", f"{p:.3f}"] for other, (d, p) in result["rows"].items()]
    print(markdown_table(["against", "difference", "p"], versus))
    low, high = result["ci95"]
    print(f"\n95% confidence interval of its nDCG@10 over the {n} queries: [{low:.3f}, {high:.3f}]")


def paired(reports: dict[str, Any], name: str) -> dict[str, Any]:
    """``name``'s nDCG@10 against every other row (difference, paired p) and its 95% interval."""
    from langchain_fusion.evaluation.evaluate import _paired_p_value

    def values(label: str) -> list[float]:
        per_query = reports[label].per_query
        return [per_query[q]["ndcg@10"] for q in sorted(per_query)]

    mine = values(name)
    rows = {}
    for other in reports:
        if other != name:
            theirs = values(other)
            diff = (sum(mine) - sum(theirs)) / len(mine)
            rows[other] = (diff, _paired_p_value(mine, theirs))
    mean = sum(mine) / len(mine)
    se = (sum((v - mean) ** 2 for v in mine) / (len(mine) - 1) / len(mine)) ** 0.5
    return {"rows": rows, "ci95": (mean - 1.96 * se, mean + 1.96 * se)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="path to shared/data (has beir/)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3], help="SciFact grid")
    parser.add_argument(
        "--collections", nargs="+", choices=["scifact", "nfcorpus"], default=["scifact", "nfcorpus"]
    )
    parser.add_argument("--out", type=Path, help="write results as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    root = data_dir(args.data)
    results = {}
    if "scifact" in args.collections:
        results["scifact"] = run_scifact(root, args.cache, args.epochs)
    if "nfcorpus" in args.collections:
        results["nfcorpus"] = run_nfcorpus(root, args.cache)
    if args.out:
        save_json(args.out, results)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
