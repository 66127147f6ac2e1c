"""Typo correction for questions against the corpus's own words (SymSpell, Damerau edit
distance): a question word that is neither in the articles nor a known English word is replaced
by the most frequent corpus word within ``MAX_DISTANCE`` edits ("Isreal" -> "Israel", "rokets"
-> "rockets"). Known words are the whole words of the embedding model's own vocabulary
(``vocab.txt`` of the packaged MiniLM), so "reporter" stays "reporter" in a corpus that only says
"reported". Short words and numbers are left alone."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

MIN_LENGTH = 4  # shorter words are left as typed
MAX_DISTANCE = 2  # for words of 8 letters or more; 1 below that
MIN_COUNT = 2  # a replacement must occur at least this often in the corpus
MIN_NAME_COUNT = 10  # ... and this often for a capitalised word (a name the corpus lacks is often right as typed)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*[A-Za-z]|[A-Za-z]")


def model_vocabulary() -> frozenset[str]:
    """The whole words (no ``##`` pieces) of the packaged MiniLM's WordPiece vocabulary."""
    from index.encoder import model_dir

    lines = (model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w.isalpha())


class SpellingCorrector:
    def __init__(self, counts: Counter[str], known: frozenset[str] = frozenset()):
        """``counts``: corpus word -> frequency (lower case); ``known``: words never corrected."""
        from symspellpy import SymSpell

        self.counts = counts
        self.known = known
        self._sym = SymSpell(max_dictionary_edit_distance=MAX_DISTANCE, prefix_length=7)
        for word, n in counts.items():
            if n >= MIN_COUNT and len(word) >= MIN_LENGTH - 1:
                self._sym.create_dictionary_entry(word, n)

    @classmethod
    def from_texts(cls, texts: Iterable[str], known: frozenset[str] = frozenset()) -> SpellingCorrector:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(w.lower() for w in _WORD.findall(t))
        return cls(counts, known)

    def suggest(self, word: str) -> str | None:
        """The corpus word to read ``word`` as, or None to keep it."""
        from symspellpy import Verbosity

        low = word.lower()
        if len(low) < MIN_LENGTH or low in self.counts or low in self.known:
            return None
        hits = self._sym.lookup(low, Verbosity.TOP, max_edit_distance=MAX_DISTANCE if len(low) >= 8 else 1)
        if not hits or (word[0].isupper() and hits[0].count < MIN_NAME_COUNT):
            return None
        return hits[0].term

    def correct(self, text: str) -> str:
        """``text`` with each unknown word replaced by its suggestion, in the word's own case
        pattern (capitalised stays capitalised)."""

        def fix(m: re.Match) -> str:
            w = m.group(0)
            s = self.suggest(w)
            if s is None:
                return w
            return s.upper() if w.isupper() and len(w) > 1 else s.capitalize() if w[0].isupper() else s

        return _WORD.sub(fix, text)
