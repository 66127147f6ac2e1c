"""Fit the span reader (``rag/answering/span_reader.py``): the packaged MiniLM fine-tuned to point
at the first and the last token of the short answer in (question, gold sentence), on the train
split; exported to an int8 ONNX graph.

Examples: every answerable train question whose scored gold sentence (``train_span.gold_sentences``)
holds one of its gold answers word for word (the first that does, in the order written). Loss:
cross-entropy of the start and of the end position over the sentence's tokens. Seeded; about
``EPOCHS`` passes over ~4,900 examples, about 10 minutes on 2 cores."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eval.train_span import gold_sentences

EPOCHS = 3
LR = 5e-5  # encoder layers
HEAD_LR = 1e-3  # batches of train_reader.BATCH


@dataclass(frozen=True)
class SpanExample:
    question: str
    sentence: str
    start: int  # char offsets of the gold answer in ``sentence``
    end: int


def locate(sentence: str, answers) -> tuple[int, int] | None:
    """Char offsets of the first gold answer (in the order written) found in ``sentence`` as whole
    words, ignoring case; None when none is."""
    for a in answers:
        a = a.strip()
        if not a:
            continue
        m = re.search(rf"(?<!\w){re.escape(a)}(?!\w)", sentence, re.I)
        if m:
            return m.span()
    return None


def examples(items: list[dict]) -> list[SpanExample]:
    out = []
    for it in items:
        for sentence, scored in gold_sentences(it):
            at = locate(sentence, it["answers"]) if scored else None
            if at:
                out.append(SpanExample(it["question"], sentence, *at))
    return out


def targets(enc, start: int, end: int) -> tuple[int, int] | None:
    """Token positions of the first and the last sentence token overlapping [start, end)."""
    toks = [i for i, (s, (a, b)) in enumerate(zip(enc.sequence_ids, enc.offsets)) if s == 1 and a < end and b > start]
    return (toks[0], toks[-1]) if toks else None


def fit(data: list[SpanExample], seed: int, progress: bool = True, epochs: int = EPOCHS):
    """The fine-tuned torch model (eval mode)."""
    import torch

    from eval.train_reader import minilm_net, train_loop
    from rag.answering.span_reader import encode, sentence_mask, span_tokenizer

    net = minilm_net(seed, 2, pooled=False)  # (pairs, tokens, 2): start and end logits
    tok = span_tokenizer()
    encs = tok.encode_batch([(e.question, e.sentence) for e in data])
    usable = [(e, t) for e, enc in zip(data, encs) if (t := targets(enc, e.start, e.end))]

    def loss(batch):
        feeds, encs = encode(tok, [(e.question, e.sentence) for e, _ in batch])
        out = net(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        mask = torch.from_numpy(sentence_mask(encs))
        return sum(torch.nn.functional.cross_entropy(out[..., k].masked_fill(~mask, -1e4),
                                                     torch.tensor([t[k] for _, t in batch])) for k in (0, 1))

    return train_loop(net, usable, loss, seed, progress, "span reader", epochs, LR, HEAD_LR)


def export(net, path: Path) -> None:
    """The span reader as an int8 ONNX graph at ``path`` (start and end logits per token)."""
    from eval.train_reader import SAMPLE_PAIRS, export_graph
    from rag.answering.span_reader import encode, span_tokenizer

    export_graph(net, path, encode(span_tokenizer(), SAMPLE_PAIRS)[0], {0: "pairs", 1: "tokens"})
