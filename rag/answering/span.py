"""The short answer: the span of a cited sentence that answers the question (a name, number,
date or phrase), picked by a learned span scorer.

Candidates come from spaCy's parse of the sentence (entities, noun chunks and their heads,
numbers with their units, quoted strings, syntactic subtrees, the clause after "because"/"to");
each gets named features (its entity label and kind crossed with the question's type, how much
of it the question already says, how close it stands to the question's words, whether the verb
that governs it is the question's verb, …); a logistic model over those features, fitted by
``python -m eval.train_span`` and shipped as ``settings.SPAN_MODEL`` (plain JSON), ranks them,
and the best one is the short answer. When the span reader ships (``span_reader.py``, MiniLM
pointing at the answer's first and last token), each candidate's score adds ``reader_weight``
times the reader's log-probability of that span; the weight is chosen on dev with the rest.
Plain functions; the parse comes from the caller's tagger.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag import settings as C
from rag.answering.span_reader import TokenScores, load_span_reader
from rag.errors import RagError
from rag.question.analysis import STOPWORDS, Question
from rag.question.answer_types import stem

MODEL_FORMAT = 1
UNSEEN_PENALTY = 10.0  # reader log-probability below the worst seen, for a span past the cut
MAX_SUBTREE_TOKENS = 12  # longer subtrees are clauses, not answers
SUBTREE_DEPS = frozenset(
    "nsubj nsubjpass dobj pobj attr acomp appos conj advcl xcomp ccomp relcl npadvmod oprd dative agent advmod".split()
)
CLAUSE_MARKERS = frozenset("because to after since as so for by amid following over".split())
DEPS = ("nsubj", "nsubjpass", "dobj", "pobj", "nummod", "compound", "appos", "attr", "conj", "ROOT", "poss", "amod")
SAY_VERBS = frozenset(stem(w) for w in "say tell add according claim warn insist argue explain describe call".split())
LIGHT_VERBS = frozenset(stem(w) for w in "be do have will would can could should may might".split())
_QUOTE = re.compile(r"[\"“]([^\"“”]{2,200})[\"”]|[‘']([^‘’']{2,200})[’']")
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
_ASKS = {
    "percent": re.compile(r"\b(percent|per cent|percentage|%|share|rate|proportion)\b", re.I),
    "money": re.compile(r"\b(how much|cost|price|worth|pay|paid|value|valued|fee|salary|profit|sales|revenue|bid|fine)\b", re.I),
    "year": re.compile(r"\b(what|which) year\b|\bin what year\b", re.I),
    "day": re.compile(r"\b(what|which) day\b|\bday of the week\b", re.I),
    "month": re.compile(r"\b(what|which) month\b", re.I),
    "age": re.compile(r"\bhow old\b|\bage\b", re.I),
    "rank": re.compile(r"\b(rank|ranked|place|position|stand)\b", re.I),
}
_UNIT = r"(?:hours?|minutes?|seconds?|days?|weeks?|months?|years?|points?|goals?|runs?|sets?|games?|metres?|miles?|km)"
_NUM = r"(?:\d[\d.,]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|a|an)"
_NUMERIC = [  # a tennis or match score, a duration with its parts, an age
    re.compile(r"\d+-\d+(?:\s+\(\d+-\d+\))?(?:\s+\d+-\d+(?:\s+\(\d+-\d+\))?)*"),
    re.compile(rf"\b{_NUM}\s+{_UNIT}(?:,?\s+(?:and\s+)?{_NUM}\s+{_UNIT})*(?:\s+ago)?\b", re.I),
]
_WHAT_NOUN = re.compile(r"^(?:\W*\w+\W+){0,6}?(?:what|which)\s+(?:[a-z’'-]+\s+){0,2}?([a-z’'-]+)\s+(?:did|does|do|was|were|is|are|has|had|will|would)\b", re.I)


@dataclass(frozen=True)
class SpanCandidate:
    start: int  # char offsets into the sentence
    end: int
    text: str
    tokens: tuple[int, int]  # token range [a, b) in the parse
    kinds: frozenset[str]  # ent, chunk, head, num, quote, subtree, clause
    label: str  # the spaCy entity label when the span is exactly an entity, else ""


@dataclass(frozen=True)
class QuestionView:
    """What the span features need of a question: its type, content stems, verbs, the noun it
    counts or names ("how many *projectiles*"), and what kind of value it asks for."""

    qtype: str
    stems: frozenset[str]
    verbs: frozenset[str]
    root: str  # the verb that governs the wh-phrase (else the question's root), stemmed
    wh_noun: str
    asks: frozenset[str]
    wh_dep: str = ""  # the wh-phrase's role: nsubj, dobj, pobj, attr, …
    wh: str = ""  # the question word: which, what, who, how_many, how_long, …
    partitive: bool = False  # "how many *of the* projectiles": the answer counts a part of wh_noun


def _content(tok) -> bool:
    return tok.is_alpha and tok.lower_ not in STOPWORDS or tok.like_num


def question_view(question: Question, doc) -> QuestionView:
    """``doc`` is the spaCy parse of ``question.text``."""
    toks = [t for t in doc if _content(t)]
    verbs = {stem(t.lower_) for t in doc if t.tag_.startswith("VB") and t.dep_ not in ("aux", "auxpass")}
    root, wh_dep = _wh_role(doc)
    counted = _counted(doc)
    if counted is None:  # no "how many/much": the noun of "what/which <noun> did …"
        m = _WHAT_NOUN.search(question.text)
        counted = (stem(m.group(1).lower()) if m else "", False)
    noun, partitive = counted
    return QuestionView(
        qtype=question.qtype,
        stems=frozenset(stem(t.lower_) for t in toks),
        verbs=frozenset(verbs - LIGHT_VERBS),
        root="" if root in LIGHT_VERBS else root,
        wh_noun=noun,
        asks=frozenset(k for k, p in _ASKS.items() if p.search(question.text)),
        wh_dep=wh_dep,
        wh=_wh_word(question.text),
        partitive=partitive,
    )


def _counted(doc) -> tuple[str, bool] | None:
    """What "how many/much" counts, from the parse: ("projectil", False) for "how many (more)
    projectiles", ("projectil", True) for "how many of the projectiles", ("", False) for "how many
    were intercepted"; None when the question has no "how many/much"."""
    for tok in doc:
        if tok.lower_ in ("many", "much") and any(c.lower_ == "how" for c in tok.children):
            noun = tok.head if tok.dep_ == "amod" else None
            if noun is not None and not noun.tag_.startswith("NN") and noun.head.tag_.startswith("NN"):
                noun = noun.head  # "how many more jobs"
            if noun is not None and noun.tag_.startswith("NN"):
                return stem(noun.lower_), False
            of = next((c for c in tok.children if c.dep_ == "prep" and c.lower_ == "of"), None)
            obj = next((c for c in of.children if c.dep_ == "pobj"), None) if of is not None else None
            return (stem(obj.lower_), True) if obj is not None else ("", False)
    return None


_WH = re.compile(r"\b(how (?:many|much|long|old|far)|how|which|what|who|whom|whose|where|when|why)\b", re.I)


def _wh_word(text: str) -> str:
    m = _WH.search(text)
    return m.group(1).lower().replace(" ", "_").replace("whom", "who").replace("whose", "who") if m else ""


def _wh_role(doc) -> tuple[str, str]:
    """(stem of the verb governing the wh-phrase, the wh-phrase's dependency label); the
    question's root and "" when it has no wh-word."""
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    wh = next((t for t in doc if t.tag_ in ("WP", "WDT", "WRB", "WP$")), None)
    if wh is None:
        return (stem(root.lower_) if root is not None else ""), ""
    phrase = wh
    for _ in range(3):  # "how many votes", "which German": up to the phrase's head
        if phrase.dep_ in ("det", "amod", "advmod", "npadvmod") and not phrase.head.tag_.startswith("VB") and phrase.head is not phrase:
            phrase = phrase.head
        else:
            break
    gov = _governing_verb(phrase) or root
    return (stem(gov.lower_) if gov is not None else ""), phrase.dep_


def _trim(doc, a: int, b: int) -> tuple[int, int]:
    """Drop leading determiners, prepositions, markers, punctuation and trailing punctuation."""
    while a < b and (doc[a].is_punct or doc[a].tag_ in ("DT", "IN", "PRP$", "CC", "TO", "WDT") or doc[a].dep_ == "mark"):
        a += 1
    while b > a and (doc[b - 1].is_punct or doc[b - 1].tag_ in ("CC", "IN", "DT")):
        b -= 1
    return a, b


def _word_end(doc, b: int) -> int:
    """Token index ``b`` moved past the letters and digits glued to the token before it."""
    while 0 < b < len(doc) and not doc[b - 1].whitespace_ and doc[b].text.isalnum():
        b += 1
    return b


def candidates(doc) -> list[SpanCandidate]:
    """Candidate answer spans of a parsed sentence, deduplicated by offsets (kinds merged)."""
    found: dict[tuple[int, int], set[str]] = {}
    labels: dict[tuple[int, int], str] = {}

    def add(a: int, b: int, kind: str, trim: bool = True) -> None:
        if trim:
            a, b = _trim(doc, a, b)
        if b <= a or b - a > MAX_SUBTREE_TOKENS + 2:
            return
        found.setdefault((a, b), set()).add(kind)

    for e in doc.ents:
        end = _word_end(doc, e.end)  # an entity never stops inside a word: "$320" of "$320m"
        add(e.start, end, "ent", trim=False)
        labels[(e.start, end)] = e.label_
        a, b = _trim(doc, e.start, end)
        if (a, b) != (e.start, end):
            add(a, b, "ent")
            labels.setdefault((a, b), e.label_)
    for ch in doc.noun_chunks:
        add(ch.start, ch.end, "chunk")
        add(ch.root.i, ch.root.i + 1, "head")
    for t in doc:
        if t.like_num or t.tag_ == "CD":  # a number, with its currency, scale, unit or counted noun
            a, b = t.i, t.i + 1
            while a > 0 and (doc[a - 1].tag_ in ("$", "CD") or doc[a - 1].text in ("$", "£", "€", "A$", "US$")):
                a -= 1
            while b < len(doc) and (doc[b].tag_ == "CD" or doc[b].lower_ in ("%", "per", "cent", "percent", "m", "bn", "million", "billion", "pence", "p")):
                b += 1
            add(a, b, "num", trim=False)
            if b < len(doc) and doc[b].tag_.startswith("NN"):
                add(a, b + 1, "num", trim=False)
        if t.dep_ in SUBTREE_DEPS and t.right_edge.i - t.left_edge.i < MAX_SUBTREE_TOKENS:
            add(t.left_edge.i, t.right_edge.i + 1, "subtree")
        if t.lower_ in CLAUSE_MARKERS and t.i + 1 < len(doc):
            end = t.i + 1
            while end < len(doc) and end - t.i <= MAX_SUBTREE_TOKENS and doc[end].text not in (",", ";", ".", "-", "–", "—", ":"):
                end += 1
            add(t.i + 1, end, "clause")
    text = doc.text
    for m in _QUOTE.finditer(text):
        s, e = m.span(1) if m.group(1) else m.span(2)
        sp = doc.char_span(s, e, alignment_mode="expand")
        if sp is not None:
            add(sp.start, sp.end, "quote", trim=False)
    for pat in _NUMERIC:
        for m in pat.finditer(text):
            sp = doc.char_span(*m.span(), alignment_mode="expand")
            if sp is not None:
                add(sp.start, sp.end, "num", trim=False)
    out = []
    for (a, b), kinds in sorted(found.items()):
        span = doc[a:b]
        out.append(SpanCandidate(span.start_char, span.end_char, span.text, (a, b), frozenset(kinds), labels.get((a, b), "")))
    return out


def _governing_verb(tok):
    t = tok
    for _ in range(6):
        if t.head is t:
            return t if t.tag_.startswith("VB") else None
        t = t.head
        if t.tag_.startswith("VB") and stem(t.lower_) not in LIGHT_VERBS:
            return t
    return None


def _bin(x: float, edges: tuple[float, ...]) -> str:
    for e in edges:
        if x <= e:
            return f"<={e:g}"
    return f">{edges[-1]:g}"


def features(doc, c: SpanCandidate, q: QuestionView) -> dict[str, float]:
    """Named features of one candidate (absent = 0)."""
    a, b = c.tokens
    span = doc[a:b]
    t = q.qtype
    f: dict[str, float] = {}
    for k in c.kinds:
        f[f"kind={k}"] = 1.0
        f[f"kind={k}|q={t}"] = 1.0
    f[f"label={c.label or 'none'}|q={t}"] = 1.0
    f[f"label={c.label or 'none'}|wh={q.wh}"] = 1.0
    for lab in {e.label_ for e in doc.ents if e.start >= a and e.end <= b and (e.start, e.end) != (a, b)}:
        f[f"has={lab}|q={t}"] = 1.0
    content = [x for x in span if _content(x)]
    _question_words(f, doc, a, b, content, q)
    _syntax(f, span, q)
    _surroundings(f, doc, a, b, t)
    _values(f, span, content, c.label, q)
    if b - a == 1 and span.root.is_stop:
        f["stop_word"] = 1.0
    return f


def _distance(i: int, a: int, b: int) -> int:
    return a - i if i < a else i - b + 1


def _question_words(f: dict, doc, a: int, b: int, content: list, q: QuestionView) -> None:
    """How much of the span the question says, and how close the question's words stand."""
    t = q.qtype
    in_q = [stem(x.lower_) in q.stems for x in content]
    if not content:
        f["no_content"] = 1.0
    else:
        f["q_share"] = sum(in_q) / len(in_q)
        f["q_all"] = float(all(in_q))
        f["q_none"] = float(not any(in_q))
        f[f"q_all|q={t}"] = float(all(in_q))
    matched = [x.i for x in doc if (x.i < a or x.i >= b) and _content(x) and stem(x.lower_) in q.stems]
    if matched:
        f[f"dist{_bin(min(_distance(i, a, b) for i in matched), (1, 2, 4, 7, 12))}"] = 1.0
        f["near_share"] = sum(1 for i in matched if _distance(i, a, b) <= 5) / len(matched)
    else:
        f["no_match"] = 1.0
    lo, hi = max(0, a - 6), min(len(doc), b + 6)
    window = {stem(x.lower_) for x in doc[lo:hi] if (x.i < a or x.i >= b) and _content(x)} & q.stems
    f["window_q_share"] = len(window) / max(1, len(q.stems))
    if a > 0 and _content(doc[a - 1]) and stem(doc[a - 1].lower_) in q.stems:
        f["prev_in_q"] = 1.0
    if b < len(doc) and _content(doc[b]) and stem(doc[b].lower_) in q.stems:
        f["next_in_q"] = 1.0


def _syntax(f: dict, span, q: QuestionView) -> None:
    """The span's head and governing verb against the question's: the same verb, the same role."""
    t = q.qtype
    a, b = span.start, span.end
    root = span.root
    head = root.head
    if head is not root and stem(head.lower_) in q.stems:
        f["head_in_q"] = 1.0
    gov = _governing_verb(root)
    if gov is not None and not (a <= gov.i < b):
        g = stem(gov.lower_)
        f["gov_is_q_root"] = float(g == q.root and bool(q.root))
        f["gov_in_q_verbs"] = float(g in q.verbs)
        f["gov_in_q"] = float(g in q.stems)
        if g in SAY_VERBS and root.dep_ in ("nsubj", "nsubjpass", "pobj"):
            f[f"speaker|q={t}"] = 1.0
    if q.wh_noun and (stem(head.lower_) == q.wh_noun or any(stem(x.lower_) == q.wh_noun for x in span)):
        f[f"wh_noun{'_whole' if q.partitive else ''}|q={t}"] = 1.0  # "866 projectiles" when a part is asked
    if q.partitive and b < len(span.doc) - 1 and span.doc[b].lower_ == "of" and span.doc[b + 1].tag_ in ("WDT", "WP", "PRP", "DT"):
        f["part_of_whole"] = 1.0  # "260 of which", "two of them"
    dep = root.dep_ if root.dep_ in DEPS else "other"
    f[f"dep={dep}|q={t}"] = 1.0
    f[f"dep={dep}|wh={q.wh_dep if q.wh_dep in DEPS else 'other'}"] = 1.0
    if f.get("gov_is_q_root") and q.wh_dep and (q.wh_dep == root.dep_ or {q.wh_dep, root.dep_} <= {"nsubj", "nsubjpass", "agent"}):
        f["role_match"] = 1.0


def _surroundings(f: dict, doc, a: int, b: int, t: str) -> None:
    """Length, position, and the words just before and after the span."""
    f[f"len{_bin(b - a, (1, 2, 3, 5, 8))}|q={t}"] = 1.0
    f["position"] = a / max(1, len(doc))
    prev = doc[a - 1] if a > 0 else None
    nxt = doc[b] if b < len(doc) else None
    if prev is not None:
        if prev.tag_ == "IN":
            f[f"after_prep|q={t}"] = 1.0
        if stem(prev.lower_) in SAY_VERBS:
            f["after_say"] = 1.0
        if prev.lower_ in ("by", "from"):
            f[f"after_{prev.lower_}"] = 1.0
    f[f"prev={'^' if prev is None else prev.lower_ if prev.is_stop else prev.tag_}"] = 1.0
    f[f"next={'$' if nxt is None else nxt.lower_ if nxt.is_stop else nxt.tag_}"] = 1.0
    if nxt is not None and stem(nxt.lower_) in SAY_VERBS:
        f[f"before_say|q={t}"] = 1.0


def _values(f: dict, span, content: list, label: str, q: QuestionView) -> None:
    """A number, money, a percentage, a year, a capitalised name; and whether the question asks
    for that kind of value."""
    flags = {
        "num": any(x.like_num or x.tag_ == "CD" for x in span),
        "money": any(x.text in ("$", "£", "€") or x.tag_ == "$" or x.text.startswith(("A$", "US$")) for x in span),
        "percent": any(x.text in ("%", "percent", "cent") for x in span),
        "year": any(_YEAR.match(x.text) for x in span),
        "caps": all(x.text[:1].isupper() for x in content) and bool(content),
    }
    for k, v in flags.items():
        if v:
            f[f"{k}|q={q.qtype}"] = 1.0
            f[f"{k}|wh={q.wh}"] = 1.0
    for k in q.asks:
        if flags.get(k) or (k in ("day", "month", "age") and label in ("DATE", "TIME")):
            f[f"asks_{k}_match"] = 1.0


@dataclass(frozen=True)
class SpanModel:
    names: tuple[str, ...]
    coef: np.ndarray
    intercept: float
    meta: dict
    reader_weight: float = 0.0  # times the span reader's log-probability; 0: the reader is not read
    reader_path: Path | None = None  # the span reader graph (set on load, beside the model file)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def scores(self, rows: list[dict[str, float]]) -> np.ndarray:
        idx = self._index
        out = np.full(len(rows), self.intercept, dtype=np.float64)
        for r, feats in enumerate(rows):
            out[r] += sum(self.coef[idx[k]] * v for k, v in feats.items() if k in idx)
        return out

    def reader_scores(self, question: str, sentence: str) -> TokenScores | None:
        """The span reader's token scores of the sentence, or None when the reader is not read."""
        if not self.reader_weight or self.reader_path is None:
            return None
        return load_span_reader(self.reader_path).scores(question, sentence)

    def to_json(self) -> dict:
        return {"format": MODEL_FORMAT, "features": list(self.names), "coef": [round(float(x), 6) for x in self.coef],
                "intercept": float(self.intercept), "reader_weight": self.reader_weight, "meta": self.meta}

    @classmethod
    def from_json(cls, d: dict, reader_path: Path | None = None) -> SpanModel:
        if d.get("format") != MODEL_FORMAT:
            raise ValueError(f"span model format {d.get('format')!r}; this program reads format {MODEL_FORMAT}")
        if len(d["features"]) != len(d["coef"]):
            raise ValueError(f"{len(d['features'])} features but {len(d['coef'])} weights")
        return cls(tuple(d["features"]), np.asarray(d["coef"], dtype=np.float64), float(d["intercept"]), d.get("meta", {}),
                   float(d.get("reader_weight", 0.0)), reader_path)


def save_span_model(model: SpanModel, path: Path) -> None:
    from rag.answering.model import write_model_json

    write_model_json(model.to_json(), path)


@functools.cache
def load_span_model(path: Path | None = None) -> SpanModel | None:
    """The shipped span model, or None when there is none (the typed-entity rule then picks)."""
    path = Path(path or C.SPAN_MODEL)
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        reader = d.get("meta", {}).get("reader", {}).get("file")
        return SpanModel.from_json(d, path.parent / reader if reader else None)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RagError(f"{path}: the span model cannot be read ({e}); run `python -m eval.train_span` to rebuild it") from e


@dataclass(frozen=True)
class ScoredSpan:
    candidate: SpanCandidate
    score: float  # log-odds that the span is the answer


def reader_column(tokens: TokenScores, cands: list[SpanCandidate]) -> np.ndarray:
    """The span reader's log-probability of each candidate; a candidate it cannot see (the
    sentence was cut) gets the worst seen, less ``UNSEEN_PENALTY``."""
    got = [tokens.span_score(c.start, c.end) for c in cands]
    seen = [g for g in got if g is not None]
    floor = (min(seen) if seen else 0.0) - UNSEEN_PENALTY
    return np.array([floor if g is None else g for g in got], dtype=np.float64)


def span_scores(model: SpanModel, feats: list[dict[str, float]], cands: list[SpanCandidate],
                tokens: TokenScores | None) -> np.ndarray:
    """The linear score of each candidate, plus the reader's weighted log-probability when read."""
    z = model.scores(feats)
    if tokens is not None and model.reader_weight:
        z = z + model.reader_weight * reader_column(tokens, cands)
    return z


def rank_spans(model: SpanModel, question: Question, qdoc, doc, tokens: TokenScores | None = None) -> list[ScoredSpan]:
    """Candidates of the parsed sentence ``doc``, best first (``qdoc``: the question's parse;
    ``tokens``: the span reader's scores of the sentence, when it is read)."""
    view = question_view(question, qdoc)
    cands = candidates(doc)
    if not cands:
        return []
    z = span_scores(model, [features(doc, c, view) for c in cands], cands, tokens)
    order = sorted(range(len(cands)), key=lambda i: (-z[i], cands[i].start, cands[i].end))
    return [ScoredSpan(cands[i], float(z[i])) for i in order]


def pick_span(model: SpanModel, question: Question, sentence: str, tagger) -> str | None:
    """The short answer in ``sentence``: the best-scored candidate span (None: no candidate).
    ``tagger`` parses (``EntityTagger.parse``)."""
    ranked = rank_spans(model, question, tagger.parse(question.text, entities=False), tagger.parse(sentence),
                        model.reader_scores(question.text, sentence))
    return ranked[0].candidate.text if ranked else None

