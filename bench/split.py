"""Chunking one over-long sentence (no sentence-ending punctuation) of 50k to 400k characters
with the model's own tokenizer: seconds, and characters handed to the tokenizer, with ratios
against the 50k run. Linear cutting keeps both ratios near the size ratio (8x at 400k); the
former binary search over the rest of the sentence grew as its square (64x).

    python bench/split.py [--sizes 50000 100000 200000 400000]
"""

from __future__ import annotations

import argparse
import random
import time

from common import load_avg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000, 400_000])
    args = ap.parse_args()
    from index.chunking import ChunkSettings, chunk_article
    from index.embed import MiniLMEmbedder
    from index.ingest import parse_article

    emb = MiniLMEmbedder()
    rng = random.Random(0)
    vocab = "the council met on monday to discuss harbour cranes library budgets and ferry routes".split()
    print(f"# chunking one unpunctuated sentence (MiniLM tokenizer); load average {load_avg()}")
    print("| characters | seconds | chunks | characters tokenized | time / 50k-size | work / 50k-size |")
    print("|---:|---:|---:|---:|---:|---:|")
    base = None
    for n in args.sizes:
        words, size = [], 0
        while size < n:
            w = rng.choice(vocab)
            words.append(w)
            size += len(w) + 1
        art = parse_article("One long sentence\n\n" + " ".join(words) + "\n", "long.txt")
        seen = [0]

        def count(texts):
            seen[0] += sum(len(t) for t in texts)
            return emb.count_tokens(texts)

        t0 = time.perf_counter()
        chunks = chunk_article(art, count, ChunkSettings())
        took = time.perf_counter() - t0
        base = base or (took, seen[0])
        print(f"| {n:,} | {took:.2f} | {len(chunks)} | {seen[0]:,} | {took / base[0]:.1f}x | {seen[0] / base[1]:.1f}x |")


if __name__ == "__main__":
    main()
