from __future__ import annotations

from collections import Counter

from rag.question.spelling import SpellingCorrector


def _speller():
    return SpellingCorrector(Counter({"israel": 40, "rockets": 12, "government": 9, "wimbledon": 11, "haas": 3,
                                      "the": 500, "fired": 7}))


def test_unknown_words_become_the_nearest_corpus_word_in_their_case():
    sp = _speller()
    assert sp.correct("How many rokets were fired from Isreal, says the goverment?") == \
        "How many rockets were fired from Israel, says the government?"
    assert sp.correct("WIMBELDON") == "WIMBLEDON"


def test_known_short_and_far_words_stay_as_typed():
    sp = _speller()
    assert sp.correct("teh rockets") == "teh rockets"  # under four letters
    assert sp.correct("Zanzibar fired") == "Zanzibar fired"  # nothing near
    assert sp.suggest("rockets") is None


def test_known_english_words_are_never_corrected():
    sp = SpellingCorrector(Counter({"reported": 20}), known=frozenset({"reporter"}))
    assert sp.correct("Which reporter wrote it?") == "Which reporter wrote it?"
    assert sp.correct("Which reportd wrote it?") == "Which reported wrote it?"


def test_the_model_vocabulary_holds_whole_words_only():
    from rag.question.spelling import model_vocabulary

    v = model_vocabulary()
    assert {"reporter", "government", "hamas"} <= v and "isreal" not in v
    assert not any(w.startswith("#") for w in v)


def test_a_capitalised_word_needs_a_frequent_replacement():
    sp = _speller()
    assert sp.correct("Haass") == "Haass"  # "haas" occurs 3 times: too rare to rename a name
    assert sp.correct("haass") == "haas"
