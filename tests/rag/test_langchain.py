"""The langchain-tests standard retriever suite against NewsRetriever, plus the Runnable."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag.lc import NewsRetriever, as_runnable
from rag.types import Answer


@pytest.fixture(scope="class")
def _shared_pipeline(request, pipeline):
    request.cls.shared_pipeline = pipeline


@pytest.mark.usefixtures("_shared_pipeline")
class TestNewsRetrieverStandard(RetrieversIntegrationTests):
    shared_pipeline = None

    @property
    def retriever_constructor(self) -> type[NewsRetriever]:
        return NewsRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"pipeline": self.shared_pipeline, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "How many rockets did Iron Dome intercept?"


def test_documents_point_into_articles(pipeline):
    docs = NewsRetriever(pipeline=pipeline, k=5).invoke("Who brokered the ceasefire talks in 2023?")
    assert len(docs) == 5
    for d in docs:
        art = pipeline.index.articles[d.metadata["doc_id"]]
        assert art.text[d.metadata["start"] : d.metadata["end"]] == d.page_content
        assert d.metadata["source"].endswith(".txt")


def test_filters_inside_search_return_k(pipeline):
    docs = NewsRetriever(pipeline=pipeline, k=4, sources=("002_68a0928ee0260f57.txt",)).invoke("rockets")
    assert len(docs) == 4 and {d.metadata["source"] for d in docs} == {"002_68a0928ee0260f57.txt"}
    docs = NewsRetriever(pipeline=pipeline, k=6, since="2023-01-01").invoke("ceasefire talks")
    assert len(docs) == 6 and all(d.metadata["date"] >= "2023-01-01" for d in docs)


def test_runnable_composes(pipeline):
    chain = as_runnable(pipeline)
    a = chain.invoke("How many projectiles did Gazan fighters launch during Operation Shield and Arrow?")
    assert isinstance(a, Answer) and "866" in a.answer and not a.abstained
    b = chain.invoke({"question": "and how many were intercepted?", "history": [a.question]})
    assert "260" in b.answer
    from langchain_core.runnables import RunnableLambda

    to_text = chain | RunnableLambda(lambda ans: ans.answer)
    assert "866" in to_text.invoke(a.question)
    assert [x.abstained for x in chain.batch([a.question, "Who won the 2010 World Cup final?"])] == [False, True]
