"""Retrieval over a corpus that holds the same story twice."""

from __future__ import annotations


def test_a_sentence_repeated_by_a_near_duplicate_article_is_a_candidate_once(tmp_path, tiny_corpus):
    from index.embed import HashEmbedder
    from rag.pipeline import RagPipeline

    # the cranes story filed again under another headline, one sentence added
    story = (tiny_corpus / "a_cranes.txt").read_text(encoding="utf-8")
    refiled = story.replace("Harbour cranes return to Nordport", "Nordport gets new cranes") + "Work starts in May.\n"
    (tiny_corpus / "c_cranes_again.txt").write_text(refiled, encoding="utf-8")
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    p.ensure_index([tiny_corpus])

    r = p.retrieve("Where were the cranes built?", k=5)
    texts = [" ".join(p.index.articles[s.doc_id].sentence_text(s.index).split()) for s in r.sentences]
    assert texts.count("The cranes were built in Rotterdam.") == 1
    assert len(texts) == len(set(texts))
    # both filings still take part: the added sentence is only in the second
    assert "Work starts in May." in texts
    assert {p.index.articles[s.doc_id].source for s in r.sentences} >= {"a_cranes.txt", "c_cranes_again.txt"}
