"""What a question asks once its period is settled: ``period_free`` takes the period phrases out
whole (the preposition and day that frame them too), and leaves the rest as asked."""

from __future__ import annotations

import pytest

from rag.question.analysis import analyze, core_text, period_free


@pytest.mark.parametrize("question, rest", [
    ("How many rockets were fired from Gaza in May 2023?", "How many rockets were fired from Gaza?"),
    ("How many rockets were fired from Gaza on May 12, 2023?", "How many rockets were fired from Gaza?"),
    ("Who won on 12 May 2005, in Paris?", "Who won, in Paris?"),
    ("what did hamas say about the 2021 ceasefire?", "what did hamas say about the ceasefire?"),
    ("Who brokered the truce during Operation Pillar of Defense?", "Who brokered the truce?"),
    ("What happened in 2012 and 2021?", "What happened?"),
    ("Where did he come from in 2012?", "Where did he come from?"),  # only the period's own "in" goes
    ("What was said in the 2012 fighting?", "What was said in the fighting?"),
    ("Who is the defense minister?", "Who is the defense minister?"),  # no period: as asked
    ("Who launched Operation Pillar of Defense?", "Who launched Operation Pillar of Defense?"),  # the subject, not a period
    ("in 2012?", "in 2012?"),  # nothing would be left to ask
])
def test_period_free_takes_out_the_period_phrases_whole(question, rest):
    assert period_free(question, analyze(question)) == rest


def test_a_follow_ups_earlier_question_loses_the_period_it_lends():
    q = analyze("and how many israelis?", ["how many rockets were fired in May 2023?"])
    assert q.followup and q.years == (2023,)
    assert period_free(q.earlier, q) == "how many rockets were fired?"
    assert period_free(q.text, q) == "and how many israelis?"


def test_core_text_still_keeps_the_prepositions_the_evidence_model_was_fitted_with():
    assert core_text(analyze("How many rockets were fired from Gaza in May 2023?")) == "How many rockets were fired from Gaza in ?"


@pytest.mark.parametrize("question, months", [
    ("how many rokets were fired in may 2023?", ("May",)),  # typed lower-case, before a year: the month
    ("who won on 12 march 2005?", ("March",)),
    ("what did he say on may 12, 2023?", ("May",)),
    ("What may happen in 2023?", ()),  # the verb
    ("Who signed the truce in May?", ("May",)),  # capitalised, as before
])
def test_a_month_is_read_in_any_case_before_a_year(question, months):
    q = analyze(question)
    assert q.months == months
    if months:
        assert months[0].lower() in q.period_words
