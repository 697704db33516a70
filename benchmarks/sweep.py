"""Cost of a 21-point alpha sweep against one evaluation pass (target: at most 2x).

On one BEIR split (cached local embeddings, as in benchmarks/quality.py), in one process:

  * one ``evaluate()`` pass of ``FusionRetriever`` at its defaults (retrieve + fuse every query);
  * ``tune(grid={"alpha": DEFAULT_ALPHAS})``: gather the candidates once, then fuse and score
    the 21 settings (``fuse_many``);

each repeated ``--repeat`` times in alternation; the table gives medians and the ratio of the
medians. Both figures use the same retriever and queries, so the ratio is what an alpha sweep
costs in evaluation passes. It also checks that the sweep's score at alpha=0.5 equals the
evaluation pass's nDCG@10 (the tuner fuses exactly as the retriever does).

Usage:
    python benchmarks/sweep.py --data ../shared/data [--dataset scifact] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_CACHE, beir_with_embeddings, build_index, data_dir, markdown_table

from langchain_fusion import FusionRetriever
from langchain_fusion.evaluation import evaluate, tune
from langchain_fusion.evaluation.tune import DEFAULT_ALPHAS

SPLITS = {"scifact": "test", "nfcorpus": "dev"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="path to shared/data (has beir/)")
    parser.add_argument("--dataset", default="scifact", choices=list(SPLITS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    split = SPLITS[args.dataset]
    emb, data = beir_with_embeddings(args.dataset, (split,), data_dir(args.data), args.cache)
    ds = data[split]
    retriever = FusionRetriever.from_index(build_index(ds.corpus, emb))
    grid = {"alpha": list(DEFAULT_ALPHAS)}
    passes, sweeps, gathers, fuses = [], [], [], []
    ndcg_pass = ndcg_sweep = float("nan")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = evaluate(retriever, ds.queries, ds.qrels, metrics=["ndcg@10"], show_progress=False)
        passes.append(time.perf_counter() - t0)
        ndcg_pass = report.metrics["ndcg@10"]
        t0 = time.perf_counter()
        sweep = tune(retriever, ds.queries, ds.qrels, grid=grid, show_progress=False)
        sweeps.append(time.perf_counter() - t0)
        gathers.append(sweep.seconds["gather"])
        fuses.append(sweep.seconds["sweep"])
        ndcg_sweep = float(sweep.scores[[s["alpha"] for s in sweep.settings].index(0.5)])
    one, many = statistics.median(passes), statistics.median(sweeps)
    print(
        f"\n## {args.dataset} {split}: {len(ds.queries)} queries, {len(ds.corpus)} documents, "
        f"medians of {args.repeat} runs\n"
    )
    print(
        markdown_table(
            ["what", "seconds"],
            [
                ["one evaluate() pass, FusionRetriever defaults", one],
                ["21-point alpha sweep with tune() (gather + fuse)", many],
                ["  of which gathering candidates once", statistics.median(gathers)],
                ["  of which fusing + scoring 21 settings", statistics.median(fuses)],
            ],
        )
    )
    print(f"\nsweep / evaluate pass = {many / one:.2f}x (target <= 2x)")
    print(f"nDCG@10 at alpha=0.5: evaluate {ndcg_pass:.6f}, sweep {ndcg_sweep:.6f}")


if __name__ == "__main__":
    main()
