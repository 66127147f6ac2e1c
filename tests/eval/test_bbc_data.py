"""The written QA set over BBC News: evidence verbatim in its article, articles only from the
eligible range (>= 350 in each category), one split per article, typo'd copies beside their
originals."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from eval import bbc
from eval.gold import load_qa
from eval.split import article_groups


@pytest.fixture(scope="module")
def bbc_texts() -> dict[str, str]:
    from eval.bbc import bbc_paths

    return {bbc.staged_name(p): p.read_text(encoding="utf-8") for p in bbc_paths() if bbc.eligible(p)}


def _raw(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _files(split: str) -> list:
    """A split's question files: its questions, their typo'd copies and its follow-ups."""
    return [bbc.qa_path(split), bbc.qa_path(split, typos=True), bbc.qa_path(split, followups=True)]


def test_every_split_loads_with_verbatim_evidence(bbc_texts):
    ids = Counter()
    for split in bbc.SPLITS:
        for path in _files(split):
            items = load_qa(path, bbc_texts)  # raises on any evidence not verbatim
            ids.update(it.id for it in items)
    assert not [i for i, n in ids.items() if n > 1]


def test_follow_ups_are_asked_after_a_question_on_their_split():
    for split in bbc.SPLITS:
        items = _raw(bbc.qa_path(split, followups=True))
        assert len(items) >= 100 and all(d["history"] and "followup" in d["tags"] for d in items)
        assert sum(d["type"] == "unanswerable" for d in items) / len(items) >= 0.15


def test_no_article_in_two_splits_and_only_eligible_articles():
    splits = bbc.read_splits()
    seen: dict[str, str] = {}
    for split in bbc.SPLITS:
        for d in [d for path in _files(split) for d in _raw(path)]:
            docs = [d["doc"]] if isinstance(d["doc"], str) else list(d["doc"] or [])
            for doc in docs:
                m = bbc.NAME.fullmatch(doc)
                assert m and int(m.group(2)) >= bbc.MIN_NUMBER, doc
                assert seen.setdefault(doc, split) == split, f"{doc} is in {seen[doc]} and {split}"
                assert splits[doc] == split
    assert set(seen) == set(splits)


def test_the_set_is_large_and_mixed():
    items = [d for s in bbc.SPLITS for d in _raw(bbc.qa_path(s))]
    n = len(items)
    types = Counter(d["type"] for d in items)
    docs = {doc for d in items for doc in ([d["doc"]] if isinstance(d["doc"], str) else d["doc"] or [])}
    assert n >= 1000 and len(docs) >= 100
    assert {bbc.NAME.fullmatch(doc).group(1) for doc in docs} == {"business", "entertainment", "politics", "sports", "tech"}
    assert types["unanswerable"] / n >= 0.15
    assert types["false_premise"] / n >= 0.03
    assert types["multi_doc"] / n >= 0.10
    # The split is by article; train articles carry more questions each, so the question shares
    # lean to train while dev and test stay large enough to measure on.
    splits = bbc.read_splits()
    shares = {s: sum(v == s for v in splits.values()) / len(splits) for s in bbc.SPLITS}
    assert 0.55 <= shares["train"] <= 0.7 and 0.15 <= shares["dev"] <= 0.25 and 0.15 <= shares["test"] <= 0.25
    assert min(len(_raw(bbc.qa_path(s))) for s in ("dev", "test")) >= 500


def test_article_groups_join_multi_article_questions():
    items = [{"doc": ["a", "b"]}, {"doc": ["c", "b"]}, {"doc": "d"}, {"doc": None}]
    g = article_groups(items)
    assert g == {"a": "a", "b": "a", "c": "a", "d": "d"}


def test_questions_name_the_copy_of_a_repeated_article_that_the_index_keeps(bbc_texts):
    """The index holds one article per text: of byte-identical files, the first by name."""
    kept: dict[str, str] = {}
    for name in sorted(bbc_texts):
        kept.setdefault(bbc_texts[name], name)
    for split in bbc.SPLITS:
        for d in [d for path in _files(split) for d in _raw(path)]:
            for doc in [d["doc"]] if isinstance(d["doc"], str) else list(d["doc"] or []):
                assert kept[bbc_texts[doc]] == doc, f"{d['id']}: {doc} repeats {kept[bbc_texts[doc]]}"


def test_near_duplicate_articles_sit_in_one_split(bbc_texts):
    from eval.split import near_duplicates

    splits = bbc.read_splits()
    named = {a: bbc_texts[a] for a in splits}
    assert all(splits[a] == splits[b] for a, b in near_duplicates(named))
