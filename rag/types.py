"""Small frozen data classes shared by every stage. Offsets are character offsets into the
ORIGINAL article text, so ``article.text[x.start:x.end] == x.text`` holds everywhere."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

ABSTAIN_TEXT = "The articles don't say."  # every abstention, extractive or language model


def content_hash(*parts: str, length: int = 16) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:length]


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) of an article."""

    start: int
    end: int


@dataclass(frozen=True)
class Article:
    doc_id: str  # content hash of the text
    source: str  # the file name, used everywhere as the article's name
    text: str  # the original text, byte for byte as read (decoded UTF-8)
    title: str = ""
    date: str | None = None  # ISO yyyy-mm-dd, only when the text (or metadata) states it
    date_found: str | None = None  # how the date was found: byline, caption, metadata
    author: str | None = None
    sentences: tuple[Span, ...] = ()
    debris: tuple[Span, ...] = ()  # web debris excluded from chunks (offsets kept)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @functools.cached_property
    def lower_text(self) -> str:
        """The text lower-cased, computed once (period cues are matched against it per query)."""
        return self.text.lower()

    def sentence_text(self, i: int) -> str:
        s = self.sentences[i]
        return self.text[s.start : s.end]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sentences"] = [[s.start, s.end] for s in self.sentences]
        d["debris"] = [[s.start, s.end] for s in self.debris]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Article:
        d = dict(d)
        d["sentences"] = tuple(Span(a, b) for a, b in d.get("sentences", ()))
        d["debris"] = tuple(Span(a, b) for a, b in d.get("debris", ()))
        return cls(**d)


@dataclass(frozen=True)
class Chunk:
    id: str  # hash of the article content hash, position and text
    doc_id: str
    source: str
    start: int
    end: int
    text: str  # == article.text[start:end]
    sentences: tuple[int, ...]  # indices into article.sentences, in order
    header: str = ""  # title/date line embedded with the chunk, never cited

    @property
    def embed_text(self) -> str:
        return f"{self.header}\n{self.text}" if self.header else self.text

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sentences"] = list(self.sentences)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Chunk:
        d = dict(d)
        d["sentences"] = tuple(d["sentences"])
        return cls(**d)


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    source: str
    title: str
    date: str | None
    start: int
    end: int
    quote: str  # == article.text[start:end]


@dataclass(frozen=True)
class Passage:
    rank: int
    doc_id: str
    source: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Request:
    """One question with its options, as ``RagPipeline.ask/stream/retrieve`` take it."""

    question: str
    history: tuple[str, ...] = ()  # the user's earlier questions, oldest first
    k: int = 5  # passages to return (settings.DEFAULT_K)
    since: str | None = None  # YYYY-MM-DD
    until: str | None = None
    sources: tuple[str, ...] = ()  # only these article file names
    mode: str = "extractive"  # or "llm"

    @classmethod
    def of(cls, question: "str | Request", **options: Any) -> "Request":
        """``question`` as a Request, with ``options`` (None values dropped) replacing its fields."""
        options = {k: v for k, v in options.items() if v is not None}
        for key in ("history", "sources"):
            if key in options:
                value = options[key]  # one name given as a string is one item, not its characters
                options[key] = (value,) if isinstance(value, str) else tuple(value)
        if isinstance(question, Request):
            return replace(question, **options)
        return cls(question, **options)


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    latency_ms: float = 0.0
    short_answer: str | None = None  # the extracted span, when one was found
    mode: str = "extractive"
    note: str | None = None  # why the answer abstained, or how an LLM answer was checked
    confidence: float | None = None  # calibrated probability that the answer is right (learned answerer)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [asdict(c) for c in self.citations],
            "passages": [asdict(p) for p in self.passages],
            "latency_ms": round(self.latency_ms, 2),
            "short_answer": self.short_answer,
            "mode": self.mode,
            "note": self.note,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
        }
