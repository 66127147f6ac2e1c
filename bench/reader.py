"""The reader's cost per question: `ask` with the shipped answerer against the same answerer
without its reader, on the bundled corpus, interleaved in one run; and the reader alone (one
batch of ``settings.READER.candidates`` sentences) at each ONNX Runtime thread count.

Run::

    .venv/bin/python bench/reader.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import common  # noqa: F401  (puts the project on the path, offline)
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from eval.gold import DEFAULT_QA, load_qa
    from rag import settings as C
    from rag.answering.model import load_answerer
    from rag.pipeline import RagPipeline
    from rag.retrieval.reader import Reader, candidate_texts

    answerer = load_answerer()
    if answerer is None or answerer.reader is None:
        raise SystemExit("the shipped answerer has no reader: run rag train")
    with_reader = RagPipeline()
    without = RagPipeline()
    without._answerer = dataclasses.replace(answerer, reader=None, stack=None, _encoder=[], _reader=[])
    with_reader.warm_up()
    without.warm_up()
    items = load_qa(DEFAULT_QA, {a.source: a.text for a in with_reader.index.articles.values()})
    questions = [it.question for it in items]
    times = {"with the reader": [], "without the reader": []}
    for _ in range(args.rounds):
        for q in questions:
            for name, p in (("with the reader", with_reader), ("without the reader", without)):
                t0 = time.perf_counter()
                p.ask(q)
                times[name].append((time.perf_counter() - t0) * 1000)
    base = np.median(times["without the reader"])
    print(f"{len(questions)} bundled questions x {args.rounds} rounds, ask latency (ms):")
    for name, t in times.items():
        t = np.array(t)
        print(f"  {name:22s} p50 {np.median(t):6.1f}  p95 {np.percentile(t, 95):6.1f}  ratio p50 {np.median(t) / base:.2f}")

    texts = [candidate_texts(with_reader.index, with_reader.retrieve(q).sentences[: C.READER.candidates],
                             answerer.reader_titled)
             for q in questions]
    for threads in (1, 2):
        reader = Reader(answerer.reader, threads=threads)
        reader.scores(questions[0], texts[0])
        t = []
        for q, tx in zip(questions * args.rounds, texts * args.rounds):
            t0 = time.perf_counter()
            reader.scores(q, tx)
            t.append((time.perf_counter() - t0) * 1000)
        print(f"  reader alone, {threads} thread(s): p50 {np.median(t):5.1f} ms  p95 {np.percentile(t, 95):5.1f} ms "
              f"({C.READER.candidates} sentences a batch)")


if __name__ == "__main__":
    main()
