"""Thin LangChain adapters: the retriever as a langchain-core ``BaseRetriever`` and the whole
chain as a ``Runnable``. The core stays plain Python; these only translate."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from rag.errors import BadInputError
from rag.pipeline import RagPipeline
from rag.types import Answer


class NewsRetriever(BaseRetriever):
    """Hybrid dense + BM25 retrieval with sentence-level re-scoring; returns the top passages
    as Documents whose metadata points into the original article (source, start, end)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any = None
    k: int = 5
    since: str | None = None
    until: str | None = None
    sources: tuple[str, ...] = ()

    def model_post_init(self, __context: Any) -> None:
        if self.pipeline is None:
            self.pipeline = RagPipeline()
        if self.k < 1:
            raise BadInputError(f"k must be at least 1. Currently, k is {self.k}")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        r = self.pipeline.retrieve(
            query, k=k or self.k, since=kwargs.get("since", self.since), until=kwargs.get("until", self.until),
            sources=kwargs.get("sources", self.sources),
        )
        index = self.pipeline.index
        docs = []
        for p in r.passages:
            a = index.articles[p.doc_id]
            docs.append(
                Document(
                    page_content=p.text,
                    id=f"{p.doc_id}:{p.start}-{p.end}",
                    metadata={
                        "doc_id": p.doc_id, "source": p.source, "title": a.title, "date": a.date,
                        "start": p.start, "end": p.end, "score": p.score, "rank": p.rank,
                    },
                )
            )
        return docs


def as_runnable(pipeline: RagPipeline | None = None, **defaults: Any) -> Runnable:
    """The whole chain as a Runnable: a question string, or {"question", "history", "k",
    "since", "until", "sources", "mode"}, in; an ``Answer`` out."""
    pipe = pipeline or RagPipeline()

    def run(inp: str | dict) -> Answer:
        if isinstance(inp, str):
            inp = {"question": inp}
        if not isinstance(inp, dict) or "question" not in inp:
            raise BadInputError("the chain takes a question string or a dict with a 'question' key")
        kw = {**defaults, **{k: v for k, v in inp.items() if k != "question"}}
        return pipe.ask(inp["question"], **kw)

    return RunnableLambda(run, name="news_rag_chain")
