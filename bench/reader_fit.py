"""The reader's fitting cost per batch in float32 (the baseline) and with the forward pass under
bfloat16 autocast (what ``rag train`` uses where the CPU computes in bfloat16), in one run. Each
variant fits the real ``eval.train_reader.fit_reader`` (listwise loss, two
questions a batch) for one epoch over the same pairs: the bundled questions of
eval/data/qa.jsonl, each with its gold sentences and ``NEGATIVES`` other sentences of the
bundled articles, titled as ``rag train`` reads them.

Run::

    .venv/bin/python bench/reader_fit.py [--questions 120]

bfloat16 is fast only where the CPU computes in it (AMX or AVX-512 BF16; printed), and only there
does ``rag train`` use it.
"""

from __future__ import annotations

import argparse
import random
import time

import common  # noqa: F401  (puts the project on the path, offline)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=120, help="bundled questions to fit on (two a batch)")
    args = ap.parse_args()

    import torch

    from eval import train_reader as tr
    from eval.gold import DEFAULT_QA, load_qa
    from eval.metrics import evidence_in
    from rag.pipeline import RagPipeline
    from rag.retrieval.reader import reader_text

    pipeline = RagPipeline()
    pipeline.ensure_index()
    articles = list(pipeline.index.articles.values())
    texts = [(a, i, reader_text(a, i, titled=True)) for a in articles for i in range(len(a.sentences))]
    items = [it for it in load_qa(DEFAULT_QA, {a.source: a.text for a in articles}) if it.answerable]
    rng = random.Random(0)
    pairs = []
    for it in items[: args.questions]:
        gold = [t for a, i, t in texts if any(evidence_in(a.sentence_text(i), e) for e in it.evidence)]
        others = [t for _, _, t in rng.sample(texts, tr.NEGATIVES * 2) if t not in gold][: tr.NEGATIVES]
        pairs += [(it.question, t, 1.0) for t in gold] + [(it.question, t, 0.0) for t in others]
    batches = len(tr.question_groups(pairs)) // tr.GROUPS
    print(f"{len(pairs)} pairs of {min(len(items), args.questions)} bundled questions, {batches} batches, "
          f"{torch.get_num_threads()} threads; the CPU computes in bfloat16: {tr.cpu_computes_bf16()} "
          f"(rag train fits in {tr.PRECISION})")

    base = None
    tr.EPOCHS = 1
    for name, precision in (("float32", "fp32"), ("bfloat16 autocast", "bf16")):
        tr.PRECISION = precision
        tr.minilm_net(0, 1, pooled=True)  # the model files in the page cache before timing
        t0 = time.perf_counter()
        tr.fit_reader(pairs, seed=0, progress=False)
        per_batch = (time.perf_counter() - t0) / batches
        base = base or per_batch
        print(f"  {name:38s} {per_batch:6.3f} s a batch   ratio {per_batch / base:.2f}")


if __name__ == "__main__":
    main()
