"""Periods: which periods a question names (years, months, operations) and how well an article
matches them. Plain functions; retrieval uses them to filter and to score."""

from __future__ import annotations

import re
from datetime import date

from rag.question.analysis import Question
from rag.types import Article

def period_parts(question: Question) -> tuple[tuple[str, ...], ...]:
    """The separate periods a question names, each a tuple of cues an article must all match:
    an operation together with a year written next to it, or a year or operation alone. "In the
    2012 Pillar of Defense, the 2021 and the 2023 articles" has three: (Pillar of Defense, 2012),
    (2021,) and (2023,); an article needs to match only one of them."""
    years = {str(y) for y in question.years}
    parts: list[tuple[str, ...]] = []
    for op in question.operations:
        name = r"(?:Operation\s+)?" + re.escape(op)
        m = re.search(rf"\b((?:19|20)\d\d)(?:[’']s)?\s+{name}\b|\b{name}\s*,?\s*(?:\(|in\s+|of\s+)?((?:19|20)\d\d)\b",
                      question.text, re.I)
        year = next((g for g in (m.groups() if m else ()) if g in years), None)
        if year:
            years.discard(year)
        parts.append((op, year) if year else (op,))
    return tuple(parts) + tuple((y,) for y in sorted(years))


def multi_period(question: Question) -> bool:
    return question.multi and len(period_parts(question)) >= 2


def in_part(part: tuple[str, ...], article: Article) -> bool:
    """The article belongs to one period: its year (by date, else by title) and the operation it
    names, as the part has them."""
    for cue in part:
        if cue.isdigit():
            if not ((article.date or "")[:4] == cue if article.date else cue in article.title):
                return False
        elif cue.lower() not in article.lower_text:
            return False
    return True


def period_scores(question: Question, articles) -> dict[str, float]:
    """``period_score`` of each article, with the question's periods worked out once."""
    if not (question.years or question.months or question.operations):
        return {a.doc_id: 0.0 for a in articles}
    parts = period_parts(question) if multi_period(question) else ()
    return {a.doc_id: period_score(question, a, parts) for a in articles}


def period_score(question: Question, article: Article, parts: tuple[tuple[str, ...], ...] | None = None) -> float:
    """How well an article matches the period the question names (0 when it names none). For a
    question about several periods (``parts``, computed when None), matching any one of them is
    a full match."""
    if not (question.years or question.months or question.operations):
        return 0.0
    if parts is None:
        parts = period_parts(question) if multi_period(question) else ()
    if parts:
        return 1.0 if any(in_part(p, article) for p in parts) else 0.0
    score, cues = 0.0, 0
    year = int(article.date[:4]) if article.date else None
    if question.years:
        cues += 1
        if year in question.years:
            score += 1.0
        elif any(str(y) in article.title for y in question.years):
            score += 0.8
    if question.months:
        cues += 1
        if article.date and date.fromisoformat(article.date).strftime("%B") in question.months:
            score += 1.0
    if question.operations:
        cues += 1
        low = article.lower_text
        if any(op.lower() in low for op in question.operations):
            score += 1.0
    return score / cues
