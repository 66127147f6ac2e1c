"""Chunking one over-long sentence (no sentence-ending punctuation) of 50k to 400k characters
with the model's own tokenizer: seconds, and characters handed to the tokenizer, with ratios
against the 50k run, and against the former cut (a binary search over the rest of the sentence
for every piece, kept below as ``former_split_long``) up to ``--former-max`` characters. Both
must give the same chunks.

    python bench/split.py [--sizes 50000 100000 200000 400000] [--former-max 200000]
"""

from __future__ import annotations

import argparse
import random
import time

from common import load_avg


def former_split_long(article, i, budget, count_tokens):
    """The cut before it was made linear (quadratic: every probe re-reads up to the sentence's end)."""
    from index.chunking import ArticleError, Span

    s, text, pieces, start = article.sentences[i], article.text, [], article.sentences[i].start
    while start < s.end:
        lo, hi, best = start + 1, s.end, None
        while lo <= hi:
            mid = (lo + hi) // 2
            cut = mid if mid == s.end else text.rfind(" ", start, mid + 1)
            if cut <= start:
                cut = mid
            if count_tokens([text[start:cut]])[0] <= budget:
                best, lo = cut, mid + 1
            else:
                hi = mid - 1
        if best is None or best <= start:
            raise ArticleError(article.source, f"cannot fit the text at offset {start} into {budget} tokens")
        pieces.append(Span(start, best))
        start = best
        while start < s.end and text[start].isspace():
            start += 1
    return pieces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000, 400_000])
    ap.add_argument("--former-max", type=int, default=200_000, help="largest size to time the former cut on")
    args = ap.parse_args()
    import index.chunking as chunking
    from index.embed import MiniLMEmbedder
    from index.ingest import parse_article

    emb = MiniLMEmbedder()
    rng = random.Random(0)
    vocab = "the council met on monday to discuss harbour cranes library budgets and ferry routes".split()
    linear = chunking._split_long

    def run(art, split):
        seen = [0]

        def count(texts):
            seen[0] += sum(len(t) for t in texts)
            return emb.count_tokens(texts)

        chunking._split_long = split
        try:
            t0 = time.perf_counter()
            chunks = chunking.chunk_article(art, count, chunking.ChunkSettings())
            return time.perf_counter() - t0, seen[0], [(c.start, c.end) for c in chunks]
        finally:
            chunking._split_long = linear

    print(f"# chunking one unpunctuated sentence (MiniLM tokenizer); load average {load_avg()}")
    print("| characters | seconds | chunks | characters tokenized | time / 50k | work / 50k | former cut: seconds | characters tokenized | former / now (time) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = None
    for n in args.sizes:
        words, size = [], 0
        while size < n:
            w = rng.choice(vocab)
            words.append(w)
            size += len(w) + 1
        art = parse_article("One long sentence\n\n" + " ".join(words) + "\n", "long.txt")
        took, work, spans = run(art, linear)
        base = base or (took, work)
        former = ""
        if n <= args.former_max:
            f_took, f_work, f_spans = run(art, former_split_long)
            assert f_spans == spans, "the two cuts disagree"
            former = f"{f_took:.2f} | {f_work:,} | {f_took / took:.1f}x"
        else:
            former = "– | – | –"
        print(f"| {n:,} | {took:.2f} | {len(spans)} | {work:,} | {took / base[0]:.1f}x | {work / base[1]:.1f}x | {former} |")


if __name__ == "__main__":
    main()
