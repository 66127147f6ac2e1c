"""Plain functions over article text: web-debris detection and sentence splitting, both
returning character spans into the original text (nothing is ever rewritten)."""

from __future__ import annotations

import re

from index import lexicon
from rag.types import Span

# Lines that are page furniture, not article text.
DEBRIS_LINE = re.compile(
    r"^\s*(read more:?|most popular|never miss breaking news.*|get notifications to stay updated"
    r"|you['’]re subscribed|sign up.*newsletter.*|share this article|advertisement|related:?"
    r"|click here.*|subscribe( now)?|follow us.*)\s*$",
    re.IGNORECASE,
)

# Words after which a period does not end a sentence.
ABBREVIATIONS = lexicon.words("abbreviations")

_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
_CREDIT_TAIL = re.compile(r"\s*\([^()]*\)\s*$")  # "(AP Photo/Name)" stays with its caption
_NEXT_START = re.compile(r"\s+[\"'“‘(\[]?[A-Z0-9#@]")


def lines(text: str) -> list[Span]:
    """Spans of non-blank lines, stripped of surrounding white space."""
    out = []
    for m in re.finditer(r"[^\n]+", text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append(Span(s, e))
    return out


def find_debris(text: str, body_start: int = 0) -> list[Span]:
    """Lines that are web debris: known furniture lines, and a line that repeats the line just
    before it (photo captions printed twice, author names printed twice)."""
    out: list[Span] = []
    prev = None
    for sp in lines(text):
        if sp.end <= body_start:
            continue
        line = text[sp.start : sp.end]
        if DEBRIS_LINE.match(line) or (prev is not None and line == prev):
            out.append(sp)
        prev = line
    return out


def split_sentences(text: str, start: int, end: int) -> list[Span]:
    """Split text[start:end] (one paragraph) into sentence spans. Rule-based: a sentence ends at
    . ! ? (plus closing quotes) followed by white space and a capital, digit or opening quote,
    unless the word before the period is a known abbreviation or a single initial."""
    spans: list[Span] = []
    s = start
    for m in _BOUNDARY.finditer(text, start, end):
        cut = m.end()
        if not _NEXT_START.match(text, cut, end) or _CREDIT_TAIL.match(text, cut, end):
            continue
        if text[m.start()] == "." and _is_abbreviation(text, s, m.start(), cut):
            continue
        if cut > s:
            spans.append(Span(s, cut))
        s = cut
        while s < end and text[s].isspace():
            s += 1
    if s < end:
        e = end
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append(Span(s, e))
    return spans


def _is_abbreviation(text: str, sent_start: int, dot: int, cut: int) -> bool:
    k = dot
    while k > sent_start and not text[k - 1].isspace():
        k -= 1
    word = text[k:dot].lower().lstrip("(\"'“‘")
    if not word:
        return False
    if word == "no":  # "No. 5", but "they said no."
        return bool(re.match(r"\s*\d", text[cut : cut + 4]))
    if word in ABBREVIATIONS:
        return True
    # single initial ("J. Smith") or dotted acronym ("U.S", "a.m")
    return bool(re.fullmatch(r"[a-z]|([a-z]\.)+[a-z]", word))


def sentence_spans(text: str, skip: list[Span], body_start: int = 0) -> list[Span]:
    """Sentences of every non-blank line outside the skipped spans; a line break always ends a
    sentence."""
    skipped = {(s.start, s.end) for s in skip}
    out: list[Span] = []
    for sp in lines(text):
        if sp.end <= body_start or (sp.start, sp.end) in skipped:
            continue
        out.extend(split_sentences(text, max(sp.start, body_start), sp.end))
    return out
