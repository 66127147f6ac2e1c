"""Split the written QA set by article into train / dev / test (about 60/20/20 of the questions).

Articles joined by a multi-article question form one group, and a group goes whole to one
split, so no article (and no question) sits in two splits. Groups are dealt per category in a
seeded order, each to the split furthest below its share.

    python -m eval.split RAW.jsonl [RAW2.jsonl ...] --typos T.jsonl [...] [--keep splits.json [--new-to train]]

writes ``eval/data/bbc/{train,dev,test}.jsonl``, the ``*_typos.jsonl`` copies (each with its
original's split) and ``splits.json``."""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

SHARES = {"train": 0.6, "dev": 0.2, "test": 0.2}
SEED = 2026
NEAR_DUPLICATE = 0.8  # share of shared word 5-grams that makes two articles one group


def _docs(d) -> list[str]:
    doc = d["doc"] if isinstance(d, dict) else d.docs
    if doc is None:
        return []
    return [doc] if isinstance(doc, str) else list(doc)


def article_groups(items, links: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """Article -> its group's name (the smallest article name of the group), joining the
    articles of every multi-article question and each pair of ``links`` (near-duplicate articles,
    so that no text sits in two splits) that touches them (union-find)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for d in items:
        docs = _docs(d)
        for a in docs:
            find(a)
        for a, b in zip(docs, docs[1:]):
            join(a, b)
    for a, b in links:
        if a in parent or b in parent:
            join(a, b)
    return {a: find(a) for a in parent}


def near_duplicates(texts: dict[str, str], overlap: float = NEAR_DUPLICATE) -> list[tuple[str, str]]:
    """Pairs of articles sharing at least ``overlap`` of the smaller one's word 5-grams (the BBC
    set repeats some stories under another headline)."""
    grams = {}
    for name, text in texts.items():
        w = re.findall(r"\w+", text.lower())
        grams[name] = {tuple(w[i : i + 5]) for i in range(len(w) - 4)}
    names = sorted(n for n in grams if grams[n])
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]
            if len(grams[a] & grams[b]) >= overlap * min(len(grams[a]), len(grams[b]))]


def category(article: str) -> str:
    return article.split("_")[1] if article.startswith("bbc_") else "other"


def assign(items, fixed: dict[str, str] | None = None, links: Iterable[tuple[str, str]] = (),
           new_to: str | None = None) -> dict[str, str]:
    """Article -> split. ``fixed`` (article -> split, e.g. an earlier ``splits.json``) keeps the
    split of every group holding one of its articles (the first split in ``SHARES`` order when a
    group now joins two); the other groups are dealt so that each category's splits, the fixed
    groups included, come near their shares, or all go to ``new_to`` when it is given (growing
    one split while the others stay exactly as they were)."""
    if new_to is not None and new_to not in SHARES:
        raise ValueError(f"unknown split {new_to!r}; one of {', '.join(SHARES)}")
    fixed = fixed or {}
    groups = article_groups(items, links)
    size: dict[str, int] = defaultdict(int)
    for d in items:
        docs = _docs(d)
        if docs:
            size[groups[docs[0]]] += 1
    by_cat: dict[str, list[str]] = defaultdict(list)
    for g in sorted(size):
        by_cat[category(g)].append(g)
    rng = random.Random(SEED)
    split_of_group: dict[str, str] = {}
    kept: dict[str, str] = {}
    order = list(SHARES)
    for a, g in sorted(groups.items()):
        if a in fixed and (g not in kept or order.index(fixed[a]) < order.index(kept[g])):
            kept[g] = fixed[a]
    for cat in sorted(by_cat):
        gs = [g for g in by_cat[cat] if g not in kept]
        rng.shuffle(gs)
        filled = {s: 0 for s in SHARES}
        for g in by_cat[cat]:
            if g in kept:
                split_of_group[g] = kept[g]
                filled[kept[g]] += size[g]
        for g in sorted(gs, key=lambda g: -size[g]):  # big groups first, then fill the gaps
            total = sum(filled.values()) + size[g]
            s = new_to or max(SHARES, key=lambda s: SHARES[s] * total - filled[s])
            split_of_group[g] = s
            filled[s] += size[g]
    return {a: split_of_group[g] for a, g in groups.items() if g in split_of_group}


def main(argv=None) -> int:
    from eval.bbc import QA_DIR

    ap = argparse.ArgumentParser(prog="python -m eval.split")
    ap.add_argument("raw", nargs="+", type=Path)
    ap.add_argument("--typos", nargs="*", type=Path, default=[])
    ap.add_argument("--out", type=Path, default=QA_DIR)
    ap.add_argument("--keep", type=Path, help="a splits.json whose article splits stay as they are")
    ap.add_argument("--new-to", choices=list(SHARES),
                    help="with --keep: every new article group goes to this split (the others stay as they are)")
    args = ap.parse_args(argv)
    if args.new_to and not args.keep:
        ap.error("--new-to needs --keep")
    fixed = json.loads(args.keep.read_text(encoding="utf-8"))["articles"] if args.keep else {}
    items = [json.loads(line) for p in args.raw for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    typos = [json.loads(line) for p in args.typos for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    from eval.bbc import stage_articles

    names = {a for d in items for a in _docs(d)}
    texts = {p.name: p.read_text(encoding="utf-8") for p in stage_articles() if p.name in names}
    split_of = assign(items, fixed, near_duplicates(texts), args.new_to)
    split_of_id = {}
    out: dict[str, list[dict]] = {s: [] for s in SHARES}
    for d in items:
        s = split_of[_docs(d)[0]]
        split_of_id[d["id"]] = s
        out[s].append(d)
    out_t: dict[str, list[dict]] = {s: [] for s in SHARES}
    for d in typos:
        base = d["id"].removesuffix("-t")
        out_t[split_of_id[base]].append(d)
    args.out.mkdir(parents=True, exist_ok=True)
    for s in SHARES:
        for name, rows in ((f"{s}.jsonl", out[s]), (f"{s}_typos.jsonl", out_t[s])):
            (args.out / name).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in rows), encoding="utf-8")
    (args.out / "splits.json").write_text(
        json.dumps({"seed": SEED, "shares": SHARES, "articles": dict(sorted(split_of.items()))}, indent=1) + "\n",
        encoding="utf-8",
    )
    for s in SHARES:
        arts = sum(1 for v in split_of.values() if v == s)
        print(f"{s:5s} {len(out[s]):5d} questions  {len(out_t[s]):4d} typo'd  {arts:4d} articles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
