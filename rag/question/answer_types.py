"""Answer types: does a sentence hold an answer of the type a question asks for (a number next
to the counted noun, a name next to the role asked about, a date, a place, a cause)? Plain
functions over text; the learned scorer uses them as features."""

from __future__ import annotations

import re

from index import lexical, lexicon
from rag.question.analysis import STOPWORDS, Question, words

stem = lexical.stem

_NUMBER_WORDS = frozenset(lexicon.number_values()) | lexicon.words("quantity_words")
_DAYS = lexicon.alternation(lexicon.rows("weekdays")[i][0] for i in range(7))
_MONTHS = lexicon.alternation(lexicon.month_names())
_MONTH_ABBR = "|".join(rf"{a.title()}\." for row in lexicon.rows("months") for a in row[1:])
_CARDINALS = "|".join(w for w, v in lexicon.number_values("cardinal").items() if 0 < v < 100)
_DIGITS = re.compile(r"\d")
_WHEN = re.compile(
    rf"\b({_DAYS}|{_MONTHS}|{_MONTH_ABBR}|today|yesterday|tonight|overnight|morning|evening|night|afternoon|noon|week|weekend|month|year|\d{{4}}|\d{{1,2}} ?[ap]\.?m\.?)\b",
    re.I,
)
_CAUSE = re.compile(r"\b(because|after|since|due to|sparked|triggered|in response|retaliat\w*|following|so that|in order|to (?:stop|end|avoid|restore|ensure|protect)|prompted|led to|caused|reason|as a result|goal|aim)\b", re.I)
_CAPS = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z’'\-]+(?:\s+(?:al-|bin\s|of\s|de\s)?[A-Z][a-z’'\-]+)*)")


def stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}


_ASKS_YEAR = re.compile(r"\b(what|which) year\b", re.I)
_ASKS_DAY = re.compile(r"\b(what|which) day\b|\bday of the week\b", re.I)
_YEAR_IN_TEXT = re.compile(r"\b(19|20)\d\d\b")
_WEEKDAY_OR_DATE = re.compile(rf"\b({_DAYS}|today|yesterday|({_MONTHS}|{_MONTH_ABBR})\s+\d{{1,2}})\b")
_HOW_MANY = re.compile(r"\bhow many\s+(?:more\s+|of the\s+)?((?:[a-z’'-]+\s+){0,2}?[a-z’'-]+?)(?=\s+(?:did|do|does|were|was|had|have|has|are|is|will|would|could|in|of|on|at|during|from|by|took|remained|said|live|lived|die|died|fire|fired|launch|launched|kill|killed|occur|occurred|take|injured|wounded|hit|struck)\b|\?|$)", re.I)
_CALENDAR = lexicon.words("weekdays") | frozenset(lexicon.month_names())
_AGE = re.compile(rf"\b(\d+|[a-z]+)[- ]year[- ]old\b|\bage[ds]? (?:\d+|(?:{_CARDINALS})\b)", re.I)
_COUNT_WINDOW = 4  # words between a number and the noun it counts ("launched 866 projectiles", "rocket attacks, 138 of which")
_PLACE = re.compile(r"\b(?:in|at|near|into|on|to|from|toward|towards|outside)\s+(?:the\s+)?([A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)*)")
_VAGUE_COUNT_NOUNS = frozenset({"times", "time", "people", "days", "more", "of"})


def _title_case(sentence: str) -> bool:
    ws = [w for w in re.findall(r"[A-Za-z][\w’'-]*", sentence) if len(w) > 3]
    return len(ws) >= 3 and sum(w[0].isupper() for w in ws) / len(ws) >= 0.85


def same_word(a: str, b: str) -> bool:
    """Same word up to inflection or demonym: rocket ~ rockets, Israel ~ Israeli, Italy ~ Italian."""
    if a == b or stem(a) == stem(b):
        return True
    n = max(4, min(len(a), len(b)) - 2)
    return min(len(a), len(b)) >= 5 and a[:n] == b[:n]


def counts_noun(sentence: str, nouns: list[str], window: int = _COUNT_WINDOW) -> bool:
    """A number stands within ``window`` words of the counted noun: "killed by Islamic Jihad
    rockets" four words on from "four Gazan civilians" does not count rockets."""
    if not nouns:
        return True
    toks = words(sentence)
    head = stem(nouns[-1])
    at = [i for i, w in enumerate(toks) if stem(w) == head]
    nums = [i for i, w in enumerate(toks) if _DIGITS.search(w) or w in _NUMBER_WORDS]
    return any(abs(i - j) <= window for i in at for j in nums)


def has_answer_type(qtype: str, sentence: str, question: Question, sentence_stems: frozenset[str] | None = None) -> bool:
    """Does the sentence hold an answer of the asked type? A number for "how many X" (with X in
    the sentence), an age for "how old", a date or day for "when", a name not already in the
    question for "who", a place after a preposition for "where", a causal phrase for "why"."""
    q = question.text
    if qtype == "number":
        if re.search(r"\bhow old\b", q, re.I):
            return bool(_AGE.search(sentence))
        if not (_DIGITS.search(sentence) or any(w in _NUMBER_WORDS for w in words(sentence))):
            return False
        m = _HOW_MANY.search(q)
        if m:
            nouns = [w for w in words(m.group(1)) if w not in _VAGUE_COUNT_NOUNS and w not in STOPWORDS]
            have = sentence_stems if sentence_stems is not None else stems(sentence)
            return all(stem(w) in have for w in nouns) and counts_noun(sentence, nouns)
        return True
    if qtype == "when":
        if _ASKS_YEAR.search(q):
            return bool(_YEAR_IN_TEXT.search(sentence))
        if _ASKS_DAY.search(q):
            return bool(_WEEKDAY_OR_DATE.search(sentence))
        return bool(_WHEN.search(sentence))
    asked = {stem(w) for w in words(question.search_text)}
    asked_words = set(words(question.search_text))
    if qtype in ("who", "where") and _title_case(sentence):
        return False  # a headline capitalises every word: no evidence of a name
    if qtype == "who":
        toks = words(sentence)
        focus: list[int] = []
        if question.focus:  # the role must occur as a phrase ("defense minister"); head positions
            fs = [stem(f) for f in question.focus]
            ts = [stem(w) for w in toks]
            focus = [k + len(fs) - 1 for k in range(len(ts) - len(fs) + 1) if ts[k : k + len(fs)] == fs]
            if not focus:
                return False
        for m in _CAPS.finditer(sentence):
            name = [w for w in words(m.group(1)) if w not in _CALENDAR]
            if not name or all(any(same_word(n, a) for a in asked_words) for n in name):
                continue
            if focus:  # the name must stand next to the role asked for
                k = len(words(sentence[: m.start()]))
                if not any(abs(k - f) <= 4 or abs(k + len(name) - 1 - f) <= 4 for f in focus):
                    continue
            return True
        return False
    if qtype == "where":
        for m in _PLACE.finditer(sentence):
            if not {stem(w) for w in words(m.group(1))} <= asked:
                return True
        return False
    if qtype == "why":
        return bool(_CAUSE.search(sentence))
    return True
