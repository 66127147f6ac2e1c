"""The one lexical analyzer: word tokens, stop words (``lexicon/en/stopwords.txt``) and the
Snowball English stemmer (PyStemmer). BM25 over chunks (index and query side), the sentence
scoring features and the language-model support check all use it, so "rockets"/"rocket" and
"Tories'"/"Tory" meet the same way everywhere."""

from __future__ import annotations

import functools
import re

from index import lexicon

STOPWORDS: frozenset[str] = lexicon.words("stopwords")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")


@functools.cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens; a possessive ``'s`` and an edge hyphen are dropped."""
    out = []
    for m in _WORD.finditer(text):
        w = m.group(0).lower().replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        out.append(w.strip("'-"))
    return out


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word.lower())


def terms(text: str) -> list[str]:
    """The stems of the non-stop words of ``text``, in order (numbers kept)."""
    return [stem(w) for w in words(text) if w and w not in STOPWORDS]


def bm25_tokenize(texts: list[str]):
    """bm25s tokens of ``texts`` with this analyzer's stop words and stemmer."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=sorted(STOPWORDS), stemmer=_stemmer(), show_progress=False)


def bm25_terms(texts: list[str]) -> list[list[str]]:
    """The tokens of ``bm25_tokenize`` as strings, for a store that computes BM25 itself from
    pre-analysed text (the Milvus backend), so both backends score the same stems."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=sorted(STOPWORDS), stemmer=_stemmer(), show_progress=False,
                          return_ids=False)
