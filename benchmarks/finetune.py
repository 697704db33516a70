"""Fine-tuning benchmark: all-MiniLM-L6-v2 fine-tuned on SciFact train, measured on SciFact test.

Everything is chosen on the train claims; the test claims are used once, at the end:

  1. the number of epochs: for each candidate, fine-tune on 80% of the train claims and score
     the fused retriever at the package defaults on the other 20%;
  2. fine-tune on all train claims with the chosen number of epochs (``fine_tune_embeddings``);
  3. BM25 k1/b and the fusion settings with ``tune_bm25`` on all train claims, twice: in-sample
     (the fine-tuned model scores claims it was trained on) and cross-fitted (``cross_fit``:
     each claim is scored by a model fine-tuned on the other four fifths of train);
  4. measure on test: dense alone, fused defaults and tuned, next to the same rows with the
     original model.

Fine-tuned models and vectors are cached (``--cache``), so a second run only evaluates.
NFCorpus is left out: its 2,590 train queries have about 40 relevant documents each (110k
pairs), hours of CPU per epoch.

Usage:
    python benchmarks/finetune.py --data ../shared/data [--epochs 1 3] [--cache DIR]
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
from langchain_fusion.evaluation import compare, evaluate, tune_bm25

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
    name: str, ds: Any, query_ids: list[str], epochs: int, cache: Path
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
            overwrite=True,
        )
        log(f"  fine-tuned {name} in {time.perf_counter() - t0:.0f} s")
    return LocalEmbeddings(model_path=out, batch_size=32)


def fused(emb: Any, corpus: list) -> tuple[HybridIndex, FusionRetriever]:
    index = build_index(corpus, emb)
    return index, FusionRetriever.from_index(index, fetch_k=TUNE_FETCH_K)


def run(root: Path, cache: Path, epochs_grid: list[int]) -> dict[str, Any]:
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
        reports[label] = evaluate(
            retriever, test.queries, test.qrels, metrics=METRICS, k=100, show_progress=False
        )

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
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="path to shared/data (has beir/)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--out", type=Path, help="write results as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    results = run(data_dir(args.data), args.cache, args.epochs)
    if args.out:
        save_json(args.out, results)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
