"""Splitting the written QA set by article: groups, near-duplicate articles, kept splits."""

from __future__ import annotations

import pytest

from eval.split import SHARES, assign, near_duplicates


def _item(i: int, *docs: str) -> dict:
    return {"id": f"q{i}", "doc": list(docs) if len(docs) > 1 else docs[0]}


def _items(n_articles: int, per_article: int = 5, cat: str = "business") -> list[dict]:
    return [_item(a * 100 + q, f"bbc_{cat}_{a:03d}.txt") for a in range(n_articles) for q in range(per_article)]


def test_near_duplicates_pair_articles_sharing_most_of_their_text():
    body = " ".join(f"word{i}" for i in range(60))
    texts = {"a.txt": "Headline one\n\n" + body, "b.txt": "Another headline\n\n" + body + " and a tail",
             "c.txt": " ".join(f"other{i}" for i in range(60)), "d.txt": "short"}
    assert near_duplicates(texts) == [("a.txt", "b.txt")]


def test_near_duplicate_articles_go_to_one_split():
    items = _items(40)
    links = [("bbc_business_001.txt", "bbc_business_002.txt"), ("bbc_business_010.txt", "bbc_business_030.txt")]
    split = assign(items, links=links)
    assert split["bbc_business_001.txt"] == split["bbc_business_002.txt"]
    assert split["bbc_business_010.txt"] == split["bbc_business_030.txt"]
    assert assign(items, links=links) == split


def test_kept_articles_stay_and_new_groups_fill_toward_the_shares():
    old = _items(20)
    first = assign(old)
    new = old + [_item(9000 + i, f"bbc_business_{100 + i // 5:03d}.txt") for i in range(100)]
    second = assign(new, fixed=first)
    assert {a: second[a] for a in first} == first  # nothing moves
    counts = {s: sum(1 for d in new if second[d["doc"]] == s) for s in SHARES}
    assert abs(counts["train"] / len(new) - SHARES["train"]) < 0.05
    assert abs(counts["test"] / len(new) - SHARES["test"]) < 0.05


def test_a_group_joining_two_kept_splits_takes_the_first_in_order():
    items = _items(10)
    first = assign(items)
    a = next(x for x, s in first.items() if s == "test")
    b = next(x for x, s in first.items() if s == "dev")
    second = assign(items, fixed=first, links=[(a, b)])
    assert second[a] == second[b] == "dev"


def test_new_groups_can_all_go_to_one_split_while_kept_ones_stay():
    old = _items(20)
    first = assign(old)
    dup = next(a for a, s in first.items() if s == "test")
    new = old + [_item(9000 + i, f"bbc_business_{100 + i // 5:03d}.txt") for i in range(50)]
    second = assign(new, fixed=first, links=[(dup, "bbc_business_100.txt")], new_to="train")
    assert {a: second[a] for a in first} == first
    assert second["bbc_business_100.txt"] == "test"  # a near-duplicate of a test article stays with it
    assert {second[f"bbc_business_{100 + k:03d}.txt"] for k in range(1, 10)} == {"train"}
    with pytest.raises(ValueError, match="unknown split"):
        assign(new, fixed=first, new_to="validation")
