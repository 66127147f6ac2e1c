"""A dated copy of a split of the written BBC QA set, to measure questions that name their period.

The BBC articles carry no dates, so no question of the set names a period that an article's
date settles, as questions on dated news do ("How many rockets were fired from Gaza in May
2023?"). The copy gives every eligible article a date, written as front matter into a copy of
the file, and each one-article question that names no year or month of its own its article's
period at the end: "in 2005" or "in March 2005", by turns. The dates are placeholders drawn from
the file name (the twelve months from June 2004, about when the stories ran), not the stories'
own. Two-article questions are left out: their articles' dates differ.
"""

from __future__ import annotations

import json
import zlib
from datetime import date
from pathlib import Path

from eval import bbc
from index import lexicon
from rag import settings as C
from rag.question.analysis import period_cues

DATED_DIR = C.DATA_DIR / "bbc" / "dated"
ARTICLES_DIR = DATED_DIR / "articles"
INDEX_DIR = DATED_DIR / "index"
FIRST_MONTH = (2004, 6)  # the first of the twelve months the placeholder dates fall in


def article_date(name: str) -> date:
    """The placeholder date of the article file ``name``: one of the twelve months from
    ``FIRST_MONTH``, day 1 to 28, fixed by the name's CRC-32."""
    h = zlib.crc32(name.encode("utf-8"))
    months = FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + h % 12
    return date(months // 12, months % 12 + 1, 1 + (h >> 8) % 28)


def stage_dated_articles(src: Path = bbc.DEFAULT_ARTICLES_DIR, dest: Path = ARTICLES_DIR) -> list[Path]:
    """Copy the staged BBC articles in ``src`` into ``dest``, each with its placeholder date as
    front matter (a file already right is not written again). Returns the copies, sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in sorted(Path(src).glob("*.txt")):
        text = f"---\ndate: {article_date(p.name).isoformat()}\n---\n" + p.read_text(encoding="utf-8")
        target = dest / p.name
        if not (target.exists() and target.read_text(encoding="utf-8") == text):
            target.write_text(text, encoding="utf-8")
        out.append(target)
    return out


def period_phrase(when: date, key: str) -> str:
    """"2005" or "March 2005", by the CRC-32 of ``key`` (the question's id)."""
    if zlib.crc32(key.encode("utf-8")) % 2:
        return str(when.year)
    return f"{lexicon.month_names()[when.month - 1].title()} {when.year}"


def dated_question(question: str, phrase: str) -> str:
    """``question`` asking about the period ``phrase``: "… buy back?" -> "… buy back in 2005?"."""
    q = question.rstrip()
    if q.endswith("?"):
        return f"{q[:-1].rstrip()} in {phrase}?"
    return f"{q} in {phrase}"


def write_dated_qa(src: Path, dest: Path) -> int:
    """Write the dated copy of the questions in ``src`` (the split's JSON lines) to ``dest``.
    Returns how many questions it holds."""
    out = []
    for line in Path(src).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        years, months, _ = period_cues(item["question"])
        if not isinstance(item["doc"], str) or years or months:
            continue
        phrase = period_phrase(article_date(item["doc"]), item["id"])
        out.append(json.dumps({**item, "question": dated_question(item["question"], phrase)}, ensure_ascii=False))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(line + "\n" for line in out), encoding="utf-8")
    return len(out)
