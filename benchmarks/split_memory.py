"""Peak memory of `split_documents` on hostile inputs: text without whitespace, a base64 image.

Each case runs in a fresh Python process: it builds the input, records its resident set size,
splits, and reports the peak growth of its resident set during the split (so the interpreter,
the imports and the input itself do not count) as a multiple of the input size. The target is
under 10x for any text. The peak is the kernel's high-water mark (``VmHWM``), reset just before
the split, minus the resident set size at that moment. ``--compare DIR`` runs the same cases
with the package from another source tree (e.g. a checkout of the previous release) in the same
run, side by side.

Usage::

    python benchmarks/split_memory.py [--mb 20] [--compare /path/to/other/tree [--compare-mb 2]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "no whitespace": "text",
    "markdown + base64 image": "markdown",
    "prose (words, lines)": "text",
}

_CHILD = r"""
import base64, json, os, sys, time
from langchain_core.documents import Document
from langchain_fusion.ingest import split_documents

case, size, unit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if case == "no whitespace":
    text = ("abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]
    file_type = "text"
elif case == "markdown + base64 image":
    blob = base64.b64encode(os.urandom(size * 3 // 4)).decode("ascii")
    text = "# Report\n\nA figure.\n\n![figure](data:image/png;base64," + blob + ")\n\nEnd.\n"
    file_type = "markdown"
else:
    words = "the battery module reports error E-217 after a cold start".split()
    n = size // 60 + 1
    lines = [" ".join(words[(i + j) % len(words)] for j in range(12)) for i in range(n)]
    text = "\n".join(lines)[:size]
    file_type = "text"

def status(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

doc = Document(text, metadata={"source": "/bench/input", "file_type": file_type})
split_documents([Document("warm up")], length_unit=unit)  # loads the tokenizer (tokens): ~40 MB
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current resident set size
before = status("VmRSS")
start = time.perf_counter()
chunks = split_documents([doc], chunk_size=600, chunk_overlap=150, length_unit=unit)
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"chars": len(text), "chunks": len(chunks), "peak": peak - before, "s": seconds}))
"""


def run(tree: Path, case: str, size: int, unit: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, case, str(size), unit],
        env=env,
        cwd=tree,  # "-c" puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="input size in MB (default 20)")
    parser.add_argument("--unit", choices=["chars", "tokens"], default="chars")
    parser.add_argument("--compare", type=Path, help="another source tree to run side by side")
    parser.add_argument("--compare-mb", type=float, help="input size for --compare (default: --mb)")
    args = parser.parse_args()
    trees = [("this tree", ROOT, args.mb)]
    if args.compare:
        trees.append((str(args.compare), args.compare, args.compare_mb or args.mb))
    print(f"split_documents, chunk_size=600, chunk_overlap=150, length_unit={args.unit}")
    header = (
        f"{'case':<26} {'tree':<22} {'input MB':>9} {'chunks':>8} {'peak MB':>9} {'x input':>8}"
    )
    print(header + f" {'seconds':>8}")
    for case in CASES:
        for name, tree, mb in trees:
            size = int(mb * 1_000_000)
            r = run(tree, case, size, args.unit)
            ratio = r["peak"] / r["chars"]
            print(
                f"{case:<26} {name[-22:]:<22} {r['chars'] / 1e6:>9.1f} {r['chunks']:>8.0f} "
                f"{r['peak'] / 1e6:>9.1f} {ratio:>8.2f} {r['s']:>8.1f}"
            )


if __name__ == "__main__":
    main()
