from __future__ import annotations

import pytest

from index.chunking import ChunkSettings, check_chunks, chunk_article, sentence_spans_in
from rag.errors import BadInputError
from index.ingest import collect, parse_article

from conftest import ARTICLES


@pytest.fixture(scope="module")
def chunked(minilm):
    out = []
    for a in collect([ARTICLES]).articles:
        out.append((a, chunk_article(a, minilm.count_tokens)))
    return out


def test_offset_invariant_every_chunk_every_article(chunked):
    for a, chunks in chunked:
        assert chunks
        for c in chunks:
            assert a.text[c.start : c.end] == c.text
            assert c.source == a.source and c.doc_id == a.doc_id
            for i in c.sentences:
                s = a.sentences[i]
                assert c.start <= s.start and s.end <= c.end  # sentences are never split


def test_every_sentence_is_in_a_chunk(chunked):
    for a, chunks in chunked:
        covered = {i for c in chunks for i in c.sentences}
        assert covered == set(range(len(a.sentences)))


def test_token_window_is_never_exceeded(chunked, minilm):
    for _, chunks in chunked:
        check_chunks(chunks, minilm.count_tokens, 256)
        counts = minilm.count_tokens([c.embed_text for c in chunks])
        assert max(counts) + 2 <= 256


def test_header_is_embedded_but_not_cited(chunked):
    a, chunks = chunked[1]
    c = chunks[0]
    assert c.embed_text == f"{c.header}\n{c.text}" and "2012-11-21" in c.header
    assert "2012-11-21" not in a.text  # the ISO date is embedded from the header, never cited text
    assert c.text == a.text[c.start : c.end]


def test_sentence_overlap_between_neighbours(chunked):
    overlaps = 0
    for _, chunks in chunked:
        for x, y in zip(chunks, chunks[1:]):
            overlaps += bool(set(x.sentences) & set(y.sentences))
    assert overlaps > 10


def test_sentence_spans_inside_embed_text(chunked):
    a, chunks = chunked[3]
    for c in chunks:
        for (s, e), i in zip(sentence_spans_in(c, a), c.sentences):
            assert c.embed_text[s:e] == a.sentence_text(i)


def test_overlong_sentence_is_split_not_truncated(minilm):
    long_sentence = " ".join(f"word{i}" for i in range(900)) + "."
    a = parse_article(f"Title\n\n{long_sentence}\n", "long.txt")
    chunks = chunk_article(a, minilm.count_tokens)
    assert len(chunks) > 1
    check_chunks(chunks, minilm.count_tokens, 256)
    s = a.sentences[1]
    covered = set()
    for c in chunks:
        covered |= set(range(c.start, c.end))
    assert all(i in covered for i in range(s.start, s.end) if not a.text[i].isspace())  # nothing lost


def test_chunk_ids_are_stable_content_hashes(minilm):
    a = collect([ARTICLES]).articles[0]
    ids1 = [c.id for c in chunk_article(a, minilm.count_tokens)]
    ids2 = [c.id for c in chunk_article(a, minilm.count_tokens)]
    assert ids1 == ids2 and len(set(ids1)) == len(ids1)


def test_settings_are_checked():
    with pytest.raises(BadInputError, match="target_tokens"):
        ChunkSettings(target_tokens=2)
    with pytest.raises(BadInputError, match="max_tokens"):
        ChunkSettings(target_tokens=300, max_tokens=256)


def _tokenizer_work(n_chars: int) -> tuple[int, list]:
    """Characters handed to the tokenizer to chunk one unpunctuated sentence of ``n_chars``."""
    from index.embed import HashEmbedder

    words = ("harbour", "cranes", "council", "library", "monday", "budget", "the", "of")
    body = " ".join(words[i % len(words)] for i in range(n_chars // 6))
    art = parse_article("A title\n\n" + body + "\n", "long.txt")
    seen = [0]

    def count(texts):
        seen[0] += sum(len(t) for t in texts)
        return HashEmbedder().count_tokens(texts)

    chunks = chunk_article(art, count, ChunkSettings(target_tokens=64, max_tokens=128))
    return seen[0], [(c, art) for c in chunks]


def test_splitting_an_unpunctuated_sentence_is_linear():
    """Work counted, not timed: 8x the text may cost about 8x the tokenizer's reading (a
    quadratic cut, re-reading the rest of the sentence for every piece, costs ~64x)."""
    small, _ = _tokenizer_work(25_000)
    large, chunks = _tokenizer_work(200_000)
    assert large / small < 12, (small, large)
    for c, art in chunks:
        assert art.text[c.start : c.end] == c.text
    art = chunks[0][1]
    assert sum(c.end - c.start for c, _ in chunks) >= 0.99 * len(art.text)  # the whole text, once


def test_a_first_line_too_long_for_a_title_is_an_article_error(minilm):
    from rag.errors import ArticleError

    art = parse_article("word " * 20_000 + "\n\nThe council met on Monday.\n", "long-title.txt")
    with pytest.raises(ArticleError) as e:
        chunk_article(art, minilm.count_tokens)
    assert e.value.path == "long-title.txt" and "first line" in e.value.reason and "too long for a title" in e.value.reason
