"""The question-answering pipeline: one object that owns the embedder, the loaded index and
the answerer. Cheap to construct; the model and index load on first use or ``warm_up()``."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from pathlib import Path

from rag import settings as C
from rag.answering.extractive import EntityTagger, build_answer
from rag.answering.model import Answerer, load_answerer
from rag.answering.span import load_span_model
from index.embed import Embedder, MiniLMEmbedder
from rag.errors import BadInputError
from index.ingest import collect
from rag.question.analysis import analyze, core_text, is_english, with_known_operations
from rag.question.spelling import SpellingCorrector, model_vocabulary
from rag.retrieval.reader import rerank
from rag.retrieval.search import Filters, Retrieval, Statistics, parse_filter_date, retrieve
from index.backends import open_store
from index.store import Index, corpus_hash
from index.update import UpdateReport
from rag.types import ABSTAIN_TEXT, Answer, Request

ADAPTED_MODEL = MiniLMEmbedder.name  # the model the question adapter was fine-tuned from

MODES = ("extractive", "llm")


class RagPipeline:
    def __init__(
        self,
        index_dir: Path | str | None = None,
        embedder: Embedder | None = None,
        entities: bool = True,
        chat_model=None,
        answerer: str = "learned",
        backend: str | None = None,
        milvus_uri: str | None = None,
        answerer_model: Path | str | None = None,
    ):
        if answerer not in C.ANSWERERS:
            raise BadInputError(f"answerer must be one of {', '.join(C.ANSWERERS)}. Currently, it is {answerer!r}")
        if answerer_model is not None:  # another learned answerer than the shipped one (one `rag train --out` wrote)
            if answerer != "learned":
                raise BadInputError(f"a model file is for the learned answerer, not {answerer!r}")
            if not Path(answerer_model).is_file():
                raise BadInputError(f"no answerer model at {answerer_model} (rag train --out writes one)")
        self.answerer_model = Path(answerer_model) if answerer_model is not None else None
        self.index_dir = Path(index_dir) if index_dir else C.default_index_dir()
        self.embedder = embedder or MiniLMEmbedder()
        self.store = open_store(self.embedder, self.index_dir, backend, milvus_uri)
        self.tagger = EntityTagger() if entities else None
        self.chat_model = chat_model  # a LangChain chat model for mode="llm"
        self.answerer_name = answerer
        self._answerer: Answerer | None | bool = False  # False: not loaded yet
        self.correct_spelling = C.CORRECT_SPELLING
        self._speller: SpellingCorrector | None = None
        self._index: Index | None = None
        self._stats: Statistics | None = None
        self._lock = threading.RLock()  # readers: the loaded index, held for a moment only
        self._write_lock = threading.Lock()  # writers: one index_paths at a time

    # ---------- index ----------
    @property
    def index(self) -> Index:
        with self._lock:
            if self._index is None:
                self._index = self.store.load()
                self._stats = Statistics(self._index)
            return self._index

    @property
    def stats(self) -> Statistics:
        self.index
        assert self._stats is not None
        return self._stats

    @property
    def speller(self) -> SpellingCorrector | None:
        """Typo correction against the indexed articles' words (built once per loaded index)."""
        if not self.correct_spelling:
            return None
        index = self.index
        with self._lock:
            if self._speller is None:
                self._speller = SpellingCorrector.from_texts((a.text for a in index.articles.values()), model_vocabulary())
            return self._speller

    def reload(self) -> None:
        with self._lock:
            self._index = None
            self._stats = None
            self._speller = None

    def warm_up(self) -> None:
        self.index
        self.speller  # built here rather than on the first question
        self.embedder.embed_query("warm up")
        if self.tagger:
            self.tagger.entities("Warm up in Gaza on Monday.")
            span_model = load_span_model()
            if span_model is not None:
                span_model.reader_scores("warm up", "Warm up in Gaza on Monday.")
        reader = self.answerer.read() if self.answerer else None
        if reader is not None:
            reader.scores("warm up", ["Warm up in Gaza on Monday."])

    def is_stale(self, paths: Sequence[Path | str]) -> bool:
        """True when the index is missing or does not hold exactly the articles at ``paths``."""
        if not self.store.exists():
            return True
        corpus = collect(paths)
        return self.store.read_manifest().get("corpus_hash") != corpus_hash(corpus.articles)

    def index_paths(
        self, paths: Sequence[Path | str], prune: bool = False, rebuild: bool = False,
        progress: Callable[[int, int], None] | None = None, embed=None,
    ) -> UpdateReport:
        """Index ``paths`` into a new version of the index and switch to it. Questions go on
        being answered from the current version meanwhile: reading, embedding, writing and
        loading the new version hold only the writers' locks (this pipeline's, and the store's
        lock file against other programs); the readers' lock is held only to swap it in."""
        with self._write_lock:
            report = self.store.update(collect(paths), prune=prune, rebuild=rebuild, progress=progress, embed=embed)
            index = self.store.load()
            stats = Statistics(index)
            speller = None
            if self.correct_spelling and self._speller is not None:  # it was in use: have the next one ready
                speller = SpellingCorrector.from_texts((a.text for a in index.articles.values()), model_vocabulary())
            with self._lock:
                self._index, self._stats, self._speller = index, stats, speller
            return report

    def ensure_index(self, paths: Sequence[Path | str] = (C.BUNDLED_ARTICLES,), progress=None) -> UpdateReport | None:
        if self.is_stale(paths):
            return self.index_paths(paths, prune=True, progress=progress)
        return None

    @property
    def answerer(self) -> Answerer | None:
        """The learned answerer (None: the hand rules answer, by choice or for want of a model)."""
        if self._answerer is False:
            self._answerer = load_answerer(self.answerer_model) if self.answerer_name == "learned" else None
        return self._answerer  # type: ignore[return-value]

    # ---------- asking ----------
    def _loaded(self) -> tuple[Index, Statistics]:
        """The loaded index and its statistics as one pair: a question uses one version
        throughout, even when ``index_paths`` swaps in the next one meanwhile."""
        with self._lock:
            return self.index, self.stats

    def retrieve(self, request: Request | str, *, _at: tuple[Index, Statistics] | None = None, **options: Any) -> Retrieval:
        """The ranked passages and scored sentences for a question (``Request.of(request, **options)``)."""
        req = Request.of(request, **options)
        index, stats = _at or self._loaded()
        question, history, since, until = req.question, req.history, req.since, req.until
        if self.speller is not None:
            question = self.speller.correct(question)
        q = with_known_operations(analyze(question, list(history or [])), stats.operations)
        filters = Filters(parse_filter_date(since, "since"), parse_filter_date(until, "until"), req.sources)
        if filters.since and filters.until and filters.since > filters.until:
            raise BadInputError(f"--since {filters.since} is after --until {filters.until}")
        unknown = [s for s in filters.sources if s not in index.by_source]
        if unknown:
            raise BadInputError(f"no indexed article is named {', '.join(unknown)}; see `rag stats --sources` or the documents list")
        # one encoder pass: the question without its period phrases (the period is matched on
        # article metadata, and the words would pull in sentences that merely name it)
        qv = self.embedder.embed_query(core_text(q))
        answerer = self.answerer
        if answerer is None:
            return retrieve(index, stats, q, qv, req.k, filters)
        # the adapter is MiniLM fine-tuned against MiniLM sentence vectors: only for such an index
        tuned = answerer.question_vector(core_text(q)) if self.embedder.name == ADAPTED_MODEL else None
        reader = answerer.read()
        read = (functools.partial(rerank, question=q, index=index, reader=reader, stack=answerer.stack)
                if reader is not None else None)
        return retrieve(index, stats, q, qv, req.k, filters, scorer=answerer.scorer, qv_tuned=tuned, rerank=read)

    def ask(self, request: Request | str, **options: Any) -> Answer:
        """The checked answer to ``Request.of(request, **options)``."""
        final = None
        for final in self.stream(request, **options):
            pass
        assert isinstance(final, Answer)
        return final

    def stream(self, request: Request | str, **options: Any) -> Iterator[str | Answer]:
        """Yields text deltas (language-model mode) and finally the checked Answer."""
        req = Request.of(request, **options)
        mode = req.mode
        if mode not in MODES:
            raise BadInputError(f"mode must be one of {', '.join(MODES)}. Currently, mode is {mode!r}")
        t0 = time.perf_counter()
        index, stats = self._loaded()
        r = self.retrieve(req, _at=(index, stats))
        if not is_english(r.question.text):
            ans = build_answer(r, index, stats, self.tagger, answerer=self.answerer)
            ans = _replace(ans, answer=f"{ABSTAIN_TEXT} (The articles are in English; ask in English.)",
                           abstained=True, citations=(), short_answer=None, note="question is not in English")
        else:
            ans = build_answer(r, index, stats, self.tagger, answerer=self.answerer)
        if mode == "llm":
            from rag.answering.llm import stream_llm_answer

            chat = self.chat_model or _default_chat_model()
            self.chat_model = chat
            for part in stream_llm_answer(r.question.text, list(r.passages), index.articles, chat, ans):
                if isinstance(part, Answer):
                    ans = part
                else:
                    yield part
        yield _replace(ans, latency_ms=(time.perf_counter() - t0) * 1000)


def _default_chat_model():
    from rag.answering.llm import make_chat_model

    return make_chat_model()


def _replace(ans: Answer, **kw) -> Answer:
    from dataclasses import replace

    return replace(ans, **kw)
