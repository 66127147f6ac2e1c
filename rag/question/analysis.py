"""Question analysis: validation, the expected answer type, content terms, period cues and
follow-up resolution. Plain functions, no model."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from index import lexical, lexicon
from rag.settings import MAX_QUESTION_CHARS
from rag.errors import BadInputError

# question terms drop stop words and words about the articles rather than the events
STOPWORDS = lexical.STOPWORDS | lexicon.words("meta_words")
QUESTION_WORDS = frozenset("what when where which who whom whose why how".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")  # as index.lexical, but keeping case
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_MONTH = re.compile(rf"\b({lexicon.alternation(lexicon.month_names())})\b")
# a month name in any case before a year ("in may 2023", "may 12, 2023"): typed lower-case, still the month
_MONTH_YEAR = re.compile(rf"\b({lexicon.alternation(lexicon.month_names())})\s+(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?(?:19|20)\d\d\b", re.I)
# "Operation Pillar of Defense", "Operation Shield and Arrow": capitalised words joined by of/and/the
OPERATION = re.compile(r"\bOperation\s+([A-Z][\w’'-]+(?:\s+(?:of|and|the)\s+[A-Z][\w’'-]+|\s+[A-Z][\w’'-]+)*)")
_FOLLOWUP_START = re.compile(r"^(and|but|also|what about|how about|then|so)\b", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|that|those|these|this|there)\b", re.I)

TYPE_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("number", re.compile(r"\b(how many|how much|what (?:was |is )?the (?:number|total|toll|death toll|percentage|population)|what number|how large|how big|how old|how long|by how much)\b", re.I)),
    ("when", re.compile(r"\b(when|what (?:day|date|time|month|year)|on (?:what|which) (?:day|date)|which (?:day|date|month|year)|at what time|in what year|in which year)\b", re.I)),
    ("who", re.compile(r"\b(who|whom|whose|which (?:\S+\s+){0,3}?(?:person|people|officials?|ministers?|leaders?|politicians?|spokes(?:man|person)|journalist|reporter|commanders?|chief|presidents?|secretary|envoy|coordinator|general|head|group|organi[sz]ation|country|countries|parties|members?)|what (?:is|was|were|are) the names? of|what name|what (?:group|organi[sz]ation|country))\b", re.I)),
    ("where", re.compile(r"\b(where|in what (?:city|town|place|country)|in which (?:city|town|place|country)|what (?:city|town|place))\b", re.I)),
    ("why", re.compile(r"\b(why|what (?:caused|sparked|triggered|prompted|led to)|for what reason|what was the reason)\b", re.I)),
]
MULTI_CUE = re.compile(r"\b(both|each|all three|which two|in (?:19|20)\d\d and (?:in )?(?:19|20)\d\d)\b", re.I)
LIST_CUE = re.compile(r"\b(which (?:countries|leaders|officials|groups|ministers)|name (?:the|all)|list|what are the|who are the|both|each of|which two|three)\b", re.I)


@dataclass(frozen=True)
class Question:
    text: str  # as asked (normalised white space)
    search_text: str  # what retrieval uses: with the previous turn for a follow-up
    qtype: str  # number | when | who | where | why | what
    terms: tuple[str, ...]  # lower-cased content words
    names: tuple[str, ...]  # capitalised words/phrases inside the question (not the first word)
    years: tuple[int, ...]
    months: tuple[str, ...]
    operations: tuple[str, ...]
    period_words: frozenset[str]  # words that only name the period ("during Operation X", "in 2012")
    is_list: bool
    followup: bool
    focus: tuple[str, ...] = ()  # the role asked for by name: ("foreign", "minister")
    earlier: str = ""  # a follow-up's previous turn, as search_text borrows it ("" when not a follow-up)

    @property
    def multi(self) -> bool:
        """Asks about several articles or periods at once ("in 2012 and 2021", "both")."""
        return len(self.years) + len(self.operations) >= 2 or bool(MULTI_CUE.search(self.text))


def normalize_question(q: str, what: str = "the question") -> str:
    if q is None:
        raise BadInputError(f"{what} is empty; type a question about the articles")
    q = unicodedata.normalize("NFC", str(q))
    q = " ".join(q.split())
    if not q:
        raise BadInputError(f"{what} is empty; type a question about the articles")
    if len(q) > MAX_QUESTION_CHARS:
        raise BadInputError(
            f"{what} is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. Ask a shorter question"
        )
    return q


words = lexical.words


def content_terms(text: str) -> list[str]:
    return [w for w in words(text) if w and w not in STOPWORDS and len(w) > 1 or w.isdigit()]


FOREIGN_FUNCTION_WORDS = frozenset(
    """el la los las del que en por para con una unos y es qué quién cuándo dónde cómo cuántos le les
    des du et est qui quand où combien une dans sur pour der die das und ist nicht wer wann wo wie
    wieviele ein eine hat den dem mit von auf il lo gli che chi quando dove come quanti non sono""".split()
)


def is_english(q: str) -> bool:
    """A cheap guess: mostly ASCII letters, and more English than foreign function words."""
    letters = [c for c in q if c.isalpha()]
    if not letters:
        return False
    if sum(c.isascii() for c in letters) / len(letters) < 0.8:
        return False
    ws = words(q)
    foreign = sum(w in FOREIGN_FUNCTION_WORDS for w in ws)
    english = sum(w in STOPWORDS for w in ws)
    return foreign <= english or foreign < 2


_LEAD = re.compile(r"^(?:[^,?]*,\s*){0,3}")


def question_type(q: str) -> str:
    """The asked type from the question phrase at the start, or right after leading comma
    clauses ("As of Thursday, how many ..." is a number question; "What did police fire when
    they stormed ..." is not a when question)."""
    starts = {0} | {m.end() for m in re.finditer(r",\s*", q)}
    best = None
    for name, pat in TYPE_PATTERNS:
        for m in pat.finditer(q):
            if m.start() in starts and (best is None or m.start() < best[0]):
                best = (m.start(), name)
    return best[1] if best else "what"


def period_cues(text: str) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
    years = tuple(sorted({int(y) for y in _YEAR.findall(text)}))
    months = tuple(sorted(set(_MONTH.findall(text)) | {m.title() for m in _MONTH_YEAR.findall(text)}))
    ops = tuple(sorted({" ".join(m.split()) for m in OPERATION.findall(text)}))
    return years, months, ops


_PERIOD_PREPOSITIONS = "during|in|amid|throughout|of|since|after|before|by|on"  # words that frame a period
_PERIOD_FRAME = re.compile(rf"\b({_PERIOD_PREPOSITIONS})\s+(?:the\s+)?(?:[\w’'-]+\s+){{0,2}}$", re.I)


def period_words(text: str, years, months, operations) -> frozenset[str]:
    """Year and month words, and the words of an operation's name when the question frames it as
    a period ("during Operation Shield and Arrow"), not as its subject ("launch Operation ...")."""
    out = {str(y) for y in years} | {m.lower() for m in months}
    for op in operations:
        i = text.lower().find(op.lower())
        if i < 0:
            continue
        before = text[:i]
        if before.rstrip().endswith("Operation"):
            before = before.rstrip()[: -len("Operation")]
        if _PERIOD_FRAME.search(before):
            out |= set(words(op)) | {"operation"}
    return frozenset(out)


def _names(q: str) -> tuple[str, ...]:
    toks = _WORD.findall(q)
    out = []
    for i, t in enumerate(toks):
        if i > 0 and t[0].isupper() and t.lower() not in STOPWORDS and t.lower() not in QUESTION_WORDS:
            out.append(t.strip("'’-"))
    return tuple(dict.fromkeys(out))


_FOCUS = [
    re.compile(r"\bnames? of (?:the |an? |its |their )?((?:[\w’'-]+ ){0,7}?[\w’'-]+?)(?: (?:who|that|which|whom|when|killed|in|on|at|during|of|from|to|for|by)\b|[?,]|$)", re.I),
    re.compile(r"\bwhat name did\b.*?\bgive (?:to )?(?:its |the |their |his |her )?((?:[\w’'-]+ ){0,3}?[\w’'-]+?)(?: (?:in|on|at|during|of|from|for|when)\b|[?,]|$)", re.I),
    re.compile(r"\bwho (?:was|is|were|are) (?:the )?(?:[\w’'-]+[’']s? )((?:[\w’'-]+ ){0,2}?[\w’'-]+?)(?: (?:in|on|at|during|of|from|for|when)\b|[?,]|$)", re.I),
    re.compile(r"^which ((?:[\w’'-]+ ){0,3}?(?:minister|president|chancellor|chief|commander|spokes(?:man|woman|person)|secretary|envoy|coordinator|general|ambassador|mayor|governor|king|emir)) (?:did|does|do|was|were|is|are|has|had)\b", re.I),
    re.compile(r"\bwho (?:was|is|were|are) the ((?:[\w’'-]+ ){0,3}?[\w’'-]+?)(?: (?:in|on|at|during|of|from|for|when|mentioned|named|quoted|cited|described|who|that)\b|[?,]|$)", re.I),
]


def focus_noun(q: str) -> tuple[str, ...]:
    """The role a name is asked for: the last run of lower-case words of the phrase ("foreign
    minister" in "Who was Egypt's foreign minister?", "commander" in "the name of the Islamic
    Jihad rocket division commander Israel killed"), at most two words; () when none."""
    for pat in _FOCUS:
        m = pat.search(q)
        if not m:
            continue
        run: list[str] = []
        for tok in m.group(1).split():
            if tok[0].isupper():
                if run:
                    break
                continue
            if run and tok.lower().endswith(("ing", "ed")):
                break  # a participle ends the role: "the Mossad chief taking part in ..."
            run.append(tok.lower())
        run = [w for w in run if w not in STOPWORDS]
        if run:
            return tuple(run[-2:])
    return ()


def is_followup(q: str) -> bool:
    n = len(words(q))
    return bool(_FOLLOWUP_START.search(q)) or (n <= 8 and bool(_PRONOUN.search(q)) and not _names(q))


_FRAMED = rf"(?:\b(?:{_PERIOD_PREPOSITIONS}|and|or)\s+)?"  # a period phrase's own preposition ("in", "and" of "in 2012 and 2021")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"


def _cut_period(text: str, q: Question, framed: bool) -> str:
    """``text`` without the words that only name ``q``'s period: its operations framed as a
    period, its years and its months. ``framed``: each with the preposition and day around it, a
    month in any case; else the bare words, a month as capitalised. Only whole phrases go:
    "defense minister" keeps its "defense"."""
    pre, flags = (_FRAMED, re.I) if framed else ("", 0)
    before_month, after_month = (rf"(?:\b{_DAY}\s+)?", rf"(?:\s+{_DAY}\b,?)?") if framed else ("", "")
    for op in q.operations:
        if set(words(op)) <= q.period_words:
            text = re.sub(pre + r"(?:\bOperation\s+)?\b" + re.escape(op) + r"\b", " ", text, flags=re.I)
    for m in q.months:
        if m.lower() in q.period_words:
            text = re.sub(rf"{pre}{before_month}\b{m}\b{after_month}", " ", text, flags=flags)
    for y in q.years:
        if str(y) in q.period_words:
            text = re.sub(rf"{pre}\b{y}\b", " ", text, flags=flags)
    return " ".join(text.split())


def core_text(q: Question) -> str:
    """The question without the words that only name its period ("during Operation Pillar of
    Defense", "in May 2023"), for scoring sentences: a sentence should match what is asked, not
    the operation's name."""
    if not q.period_words:
        return q.search_text
    text = _cut_period(q.search_text, q, framed=False)
    return text if content_terms(text) else q.search_text


def period_free(text: str, q: Question) -> str:
    """``text`` (the question, or a follow-up's earlier one) with ``q``'s period phrases taken out
    whole, the preposition and day that frame them too ("How many rockets were fired from Gaza
    on May 12, 2023?" -> "How many rockets were fired from Gaza?"; "the 2021 ceasefire" -> "the
    ceasefire"): what is asked once an article's date has settled the period. ``text`` itself
    when nothing would be left to ask."""
    if not q.period_words:
        return text
    out = re.sub(r"\s+([?,.;:!])", r"\1", _cut_period(text, q, framed=True))
    return out if content_terms(out) else text


def with_known_operations(q: Question, operations: list[str]) -> Question:
    """Add the operation names the corpus uses ("Pillar of Defense") that the question names
    without the word "Operation"."""
    low = q.search_text.lower()
    extra = tuple(op for op in operations if op.lower() in low and op not in q.operations)
    if not extra:
        return q
    ops = q.operations + extra
    return replace(q, operations=ops, period_words=period_words(q.search_text, q.years, q.months, ops))


def analyze(question: str, history: list[str] | None = None) -> Question:
    """Validate and analyse a question. ``history`` holds the user's earlier questions, newest
    last; a follow-up borrows the previous question's words and period."""
    q = normalize_question(question)
    terms = content_terms(q)
    prev = normalize_question(history[-1], "the earlier question (history)") if history else None
    if not terms:
        if not any(c.isalnum() for c in q):
            raise BadInputError("the question has no words to search for (only symbols or emoji); ask in words")
        if is_english(q) and not prev:
            raise BadInputError(
                "the question has only common words (like 'what is the'); add what you want to know about"
            )
    # a follow-up made only of common words ("and what did she say?") leans on the previous turn
    followup = bool(prev) and (is_followup(q) or not terms)
    years, months, ops = period_cues(q)
    if followup:
        p_years, p_months, p_ops = period_cues(prev)
        if years or months or ops:
            # the follow-up names its own period ("what about in 2012?"): drop the earlier one
            drop = period_words(prev, p_years, p_months, p_ops) | {str(y) for y in p_years}
            drop |= {w for op in p_ops for w in words(op)}
            prev = " ".join(w for w in _WORD.findall(prev) if w.strip("'’-").lower() not in drop)
        else:
            years, months, ops = p_years, p_months, p_ops
    search_text = f"{prev} {q}" if followup else q
    qtype = question_type(q)
    if followup and qtype == "what":  # "and how many ...?" / "what about ...?" keep the earlier type
        rest = _FOLLOWUP_START.sub("", q).strip()
        qtype = question_type(rest) if question_type(rest) != "what" else question_type(prev)
    return Question(
        text=q,
        search_text=search_text,
        qtype=qtype,
        terms=tuple(dict.fromkeys(content_terms(search_text) if followup else terms)),
        names=_names(search_text),
        years=years,
        months=months,
        operations=ops,
        period_words=period_words(search_text, years, months, ops),
        is_list=bool(LIST_CUE.search(q)),
        followup=followup,
        focus=focus_noun(search_text if followup else q),
        earlier=prev if followup else "",
    )
