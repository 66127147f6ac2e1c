"""ui.format: answer and citation HTML, highlight offsets, escaping of HTML and Markdown tricks,
abstentions, the article panel and the documents table, on hand-made objects (fast, no model)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from rag.types import Answer, Article, Citation, Passage
from ui import format as F

TEXT = (
    "Rockets fly again\n\n"
    "By Jane Roe | May 12, 2023\n\n"
    "Talks stalled on Friday. Gazan fighters launched 866 projectiles during the conflict, Hagari said. "
    "Most rockets targeted towns in the south.\n"
)
Q_START = TEXT.index("Gazan")
Q_END = TEXT.index("said.") + len("said.")
QUOTE = TEXT[Q_START:Q_END]

ART = Article(doc_id="d1", source="003_rockets.txt", text=TEXT, title="Rockets fly again", date="2023-05-12",
              author="Jane Roe")
ART2 = Article(doc_id="d2", source="004_other.txt", text="Other story\n\nNothing about Lebanon here.",
               title="Other story", date=None)
ARTICLES = {"d1": ART, "d2": ART2}

CIT = Citation(n=1, doc_id="d1", source="003_rockets.txt", title="Rockets fly again", date="2023-05-12",
               start=Q_START, end=Q_END, quote=QUOTE)


def passage(rank: int, doc: Article, start: int, end: int) -> Passage:
    return Passage(rank=rank, doc_id=doc.doc_id, source=doc.source, start=start, end=end,
                   text=doc.text[start:end], score=1.0 / rank)


ANSWER = Answer(
    question="How many projectiles did Gazan fighters launch?",
    answer=f"{QUOTE} [1]",
    abstained=False,
    citations=(CIT,),
    passages=(passage(1, ART, Q_START, Q_END),),
    latency_ms=123.0,
    short_answer="866",
)

ABSTAIN = Answer(
    question="How many rockets did Hezbollah fire from Lebanon?",
    answer="The articles don't say.",
    abstained=True,
    passages=(
        passage(1, ART, Q_START, Q_END),
        passage(2, ART2, 13, len(ART2.text)),
        passage(3, ART, 0, 17),
        passage(4, ART, 19, 45),
    ),
    latency_ms=50.0,
    note="the articles do not mention Hezbollah",
)


# ---------------------------------------------------------------- escaping
def test_esc_html_and_script():
    assert F.esc("<script>alert(1)</script>") == "&lt;script&gt;alert&#40;1&#41;&lt;/script&gt;"
    assert F.esc('a & "b" \'c\'') == "a &amp; &quot;b&quot; &#39;c&#39;"


def test_esc_markdown_image_and_link_are_inert():
    assert F.esc("![x](http://evil.example/t.png)") == "&#33;&#91;x&#93;&#40;http&#58;//evil.example/t.png&#41;"
    assert F.esc("**bold** _it_ `code` # h | t ~s~ $$x$$ {{v}} a@b.c") == (
        "&#42;&#42;bold&#42;&#42; &#95;it&#95; &#96;code&#96; &#35; h &#124; t &#126;s&#126; "
        "&#36;&#36;x&#36;&#36; &#123;&#123;v&#125;&#125; a&#64;b.c"
    )


def test_esc_newlines_become_br_so_messages_have_no_blank_lines():
    assert F.esc("a\n\nb\r\nc") == "a<br><br>b<br>c"
    assert F.esc(None) == "" and F.esc("") == ""


def test_esc_panel_keeps_newlines_and_neutralises_templates():
    assert F.esc_panel("<b>x</b>\n${a} {{b}} `c`") == "&lt;b&gt;x&lt;/b&gt;\n&#36;&#123;a&#125; &#123;&#123;b&#125;&#125; &#96;c&#96;"


# ---------------------------------------------------------------- spans
def test_find_span_exact_then_case_insensitive():
    assert F.find_span("launched 866 projectiles", "866") == (9, 12)
    assert F.find_span("Hamas and HAMAS", "HAMAS") == (10, 15)
    assert F.find_span("the Foo Bar", "foo bar") == (4, 11)
    assert F.find_span("abc", "xyz") is None
    assert F.find_span("abc", None) is None


def test_wrap_span_offsets_and_escaping():
    assert F.wrap_span("a<b>c", (1, 4), "<mark>", "</mark>") == "a<mark>&lt;b&gt;</mark>c"
    assert F.wrap_span("abc", None, "<mark>", "</mark>") == "abc"
    assert F.wrap_span("abc", (2, 2), "<mark>", "</mark>") == "abc"  # empty span: nothing marked
    assert F.wrap_span("abc", (1, 99), "<m>", "</m>") == "a<m>bc</m>"  # clipped to the text


# ---------------------------------------------------------------- answers
def test_answer_text_markers_and_bold_short_answer():
    got = F.format_answer_text("It launched 866 rockets [1] and 866 more [2]", "866", (CIT,), turn=3)
    assert got == (
        'It launched <strong class="nr-short">866</strong> rockets'
        '<sup><a class="nr-ref" href="#nr-cite-3-1" title="&#91;1&#93; Gazan fighters launched 866 projectiles during '
        'the conflict, Hagari said.">&#91;1&#93;</a></sup>'
        ' and 866 more<sup><a class="nr-ref" href="#nr-cite-3-2" title="Source &#91;2&#93;">&#91;2&#93;</a></sup>'
    )


def test_citation_markers_link_to_their_source_and_show_the_quote():
    """Clicking [n] opens source n of that turn; hovering shows the quoted sentence."""
    html = F.format_answer(ANSWER, ARTICLES, turn=2)
    refs = re.findall(r'<a class="nr-ref" href="([^"]+)" title="([^"]+)">', html)
    assert refs == [("#nr-cite-2-1", "&#91;1&#93; " + F.esc(QUOTE))]


def test_citation_card_exact():
    assert F.format_citation(CIT, "866", turn=0) == (
        '<div class="nr-source">'
        '<div class="nr-source-head"><a class="nr-source-link" href="#nr-cite-0-1" title="' + F.esc(QUOTE) + '">'
        '<span class="nr-n">&#91;1&#93;</span> <span class="nr-title">Rockets fly again</span></a></div>'
        '<div class="nr-source-meta"><span class="nr-date">2023-05-12</span> · <span class="nr-file">003&#95;rockets.txt</span></div>'
        '<blockquote class="nr-quote">Gazan fighters launched <mark class="nr-span">866</mark> projectiles during the '
        "conflict, Hagari said.</blockquote>"
        "</div>"
    )


def test_the_answer_sentence_is_not_printed_twice():
    """An extractive answer is the quote: the source under it shows title and date, not the quote again."""
    def visible(html: str) -> str:  # the text a reader sees (tooltips aside)
        return re.sub(r"<[^>]+>", "", html)

    html = F.format_answer(ANSWER, ARTICLES)
    assert visible(html).count("Hagari said") == 1
    assert "nr-quote" not in html
    other = Answer(question="q", answer="It was 866 [1]", abstained=False, citations=(CIT,), short_answer="866")
    assert visible(F.format_answer(other, ARTICLES)).count("Hagari said") == 1  # the quote, under Sources


def test_citation_without_short_answer_or_date():
    c = Citation(n=2, doc_id="d2", source="x.md", title="", date=None, start=0, end=5, quote="Hello")
    got = F.format_citation(c, None)
    assert '<span class="nr-title">x.md</span>' in got  # no title: the file name stands in
    assert '<span class="nr-date">undated</span>' in got
    assert "<mark" not in got and '<blockquote class="nr-quote">Hello</blockquote>' in got


def test_answer_message_exact():
    assert F.format_answer(ANSWER, ARTICLES, turn=0) == (
        '<div class="nr-answer">'
        '<div class="nr-answer-text">Gazan fighters launched <strong class="nr-short">866</strong> projectiles during '
        'the conflict, Hagari said.' + F.format_answer_text(" [1]", None, (CIT,), 0) + "</div>"
        '<div class="nr-sources"><div class="nr-sources-h">Sources</div>'
        + F.format_citation(CIT, "866", 0, ANSWER.answer)
        + "</div>"
        '<div class="nr-footer">extractive · 0.12 s</div>'
        "</div>"
    )


def test_messages_are_one_line_of_html():
    for html in (F.format_answer(ANSWER, ARTICLES), F.format_answer(ABSTAIN, ARTICLES), F.format_streaming("a\n\nb")):
        assert "\n" not in html
        assert html.startswith("<div")


def test_streaming_and_question_are_escaped():
    assert F.format_streaming("866 <i>x</i> [1]") == (
        '<div class="nr-answer nr-streaming"><div class="nr-answer-text">866 &lt;i&gt;x&lt;/i&gt; &#91;1&#93;'
        '<span class="nr-cursor">▍</span></div></div>'
    )
    assert F.format_question("What about ![a](http://x/y.png)?") == (
        '<div class="nr-q">What about &#33;&#91;a&#93;&#40;http&#58;//x/y.png&#41;?</div>'
    )


# ---------------------------------------------------------------- abstentions
def test_abstention_verdict_first_in_one_line_and_leads_folded():
    html = F.format_abstention(ABSTAIN, ARTICLES)
    assert html.startswith(
        '<div class="nr-answer nr-abstain"><div class="nr-verdict"><span class="nr-abstain-h">Not in the articles:</span> '
        '<span class="nr-reason">The articles do not mention Hezbollah.</span></div>'
        '<details class="nr-leads"><summary class="nr-leads-h">3 closest passages — related, not support</summary>')
    assert "<details open" not in html  # folded until asked for
    assert html.count('<div class="nr-lead">') == 3  # top 3 of 4 passages
    assert "Lead 1" in html and "Lead 3" in html and "Lead 4" not in html
    assert "nr-sources" not in html and "nr-ref" not in html  # no citation look
    # lead 2 is from the undated second article: its title and "undated"
    assert (
        '<span class="nr-n">Lead 2</span> <span class="nr-title">Other story</span></div>'
        '<div class="nr-source-meta"><span class="nr-date">undated</span> · <span class="nr-file">004&#95;other.txt</span></div>'
        '<blockquote class="nr-lead-text">Nothing about Lebanon here.</blockquote>'
    ) in html
    assert F.format_answer(ABSTAIN, ARTICLES) == html


def test_abstention_without_passages():
    a = Answer(question="q", answer="The articles don't say.", abstained=True, note="no article matches the filters")
    html = F.format_abstention(a, {})
    assert "No article matches the filters." in html and "nr-leads" not in html
    plain = Answer(question="q", answer="The articles don't say.", abstained=True)
    assert "No passage in the articles answers this question." in F.format_abstention(plain, {})


def test_refusal_is_an_inline_message():
    html = F.format_notice("The “Since” date “2023-02-30” is not a real date")
    assert html.startswith('<div class="nr-answer nr-notice" role="alert">') and "\n" not in html
    assert "2023&#45;02" not in html and "“2023-02-30”" in html


def test_source_filter_lists_titles_with_dates_newest_first():
    assert F.source_filter_choices(ARTICLES) == [
        ("Rockets fly again (2023-05-12)", "003_rockets.txt"), ("Other story (undated)", "004_other.txt")]


def test_snippet_cuts_at_a_word_boundary():
    assert F.snippet("one  two\nthree") == "one two three"
    assert F.snippet("alpha beta gamma delta", limit=15) == "alpha beta …"


# ---------------------------------------------------------------- escaping inside whole messages
EVIL = (
    'Evil <script>alert(1)</script> ![x](http://127.0.0.1:9/t.png) [c](javascript:alert(1)) '
    '<img src=x onerror="alert(2)"> **b** $$x$$ {{value}}'
)


def test_malicious_article_text_renders_inert_in_answers_and_leads():
    evil_art = Article(doc_id="e", source="<b>evil</b>_[1].txt", text=EVIL, title=EVIL, date="2024-03-03")
    c = Citation(n=1, doc_id="e", source=evil_art.source, title=EVIL, date="2024-03-03", start=0, end=len(EVIL), quote=EVIL)
    ans = Answer(question=EVIL, answer=EVIL + " [1]", abstained=False, citations=(c,), short_answer="alert(1)")
    abst = Answer(question=EVIL, answer="The articles don't say.", abstained=True,
                  passages=(Passage(1, "e", evil_art.source, 0, len(EVIL), EVIL, 1.0),))
    for html in (F.format_answer(ans, {"e": evil_art}), F.format_answer(abst, {"e": evil_art}),
                 F.format_question(EVIL), F.format_streaming(EVIL)):
        tags = set(re.findall(r"<\s*([a-zA-Z]+)", html))
        assert tags <= {"div", "span", "sup", "strong", "mark", "blockquote", "br", "a", "details", "summary"}, tags
        assert set(re.findall(r'href="([^"]*)"', html)) <= {"#nr-cite-0-1"}
        for bad in ("<script", "<img", "<b>", "](", "![", "**", "$$", "{{", "javascript:", "onerror=\""):
            assert bad not in html, bad


def test_malicious_article_renders_inert_in_panel():
    art = Article(doc_id="e", source="e.txt", text=EVIL + "\nsecond line", title=EVIL, date=None)
    html = F.format_article(art, 0, 4, label="Cited source [1]")
    assert set(re.findall(r"<\s*([a-zA-Z]+)", html)) <= {"div", "span", "mark", "strong"}
    assert "<script" not in html and "<img" not in html and "{{" not in html and "${" not in html
    assert '<mark id="cite-span" class="nr-mark nr-mark-cite">Evil</mark> &lt;script&gt;' in html


# ---------------------------------------------------------------- article panel
def test_article_panel_marks_exactly_the_cited_span():
    html = F.format_article(ART, Q_START, Q_END, label="Cited source [1]", kind="cite", inner="866")
    opening = '<div class="nr-article-body" tabindex="0" role="region" aria-label="Article text">'
    body = html[html.index(opening) + len(opening): -len("</div></div>")]
    assert body == (
        "Rockets fly again\n\nBy Jane Roe | May 12, 2023\n\nTalks stalled on Friday. "
        '<mark id="cite-span" class="nr-mark nr-mark-cite">Gazan fighters launched <strong>866</strong> projectiles '
        "during the conflict, Hagari said.</mark> Most rockets targeted towns in the south.\n"
    )
    assert html.startswith(
        '<div class="nr-article"><div class="nr-article-head"><div class="nr-kicker nr-kicker-cite">Cited source [1]</div>'
        '<div class="nr-article-title">Rockets fly again</div>'
        f'<div class="nr-article-meta">2023-05-12 · by Jane Roe · <span class="nr-file">003_rockets.txt</span> · characters {Q_START}–{Q_END}</div></div>'
    )
    # the marked text is exactly text[start:end]
    marked = re.search(r'<mark id="cite-span"[^>]*>(.*?)</mark>', body).group(1).replace("<strong>", "").replace("</strong>", "")
    assert marked == TEXT[Q_START:Q_END]


def test_article_panel_lead_and_bad_offsets():
    lead = F.format_article(ART, 0, 17, label="Lead 1 — related passage, not support for an answer", kind="lead", inner="866")
    assert '<mark id="cite-span" class="nr-mark nr-mark-lead">Rockets fly again</mark>' in lead
    assert "<strong>" not in lead  # a lead does not highlight an answer
    assert "cite-span" not in F.format_article(ART, 5, 2)
    assert "cite-span" not in F.format_article(ART, 0, len(TEXT) + 1)
    assert "cite-span" not in F.format_article(ART)


# ---------------------------------------------------------------- source picker
def test_source_choices_and_resolution():
    assert F.source_choices(ANSWER, ARTICLES) == [("[1] Rockets fly again — 003_rockets.txt", "cite:1")]
    assert F.resolve_choice(ANSWER, "cite:1") == ("cite", "d1", Q_START, Q_END, "Cited source [1]")
    assert F.resolve_choice(ANSWER, "cite:2") is None
    leads = F.source_choices(ABSTAIN, ARTICLES)
    assert [v for _, v in leads] == ["lead:1", "lead:2", "lead:3"]
    assert leads[1][0] == "Lead 2 (related, not support): Other story — “Nothing about Lebanon here.”"
    assert len({label for label, _ in leads}) == 3  # leads 1 and 3 share an article, not a label
    assert F.resolve_choice(ABSTAIN, "lead:2") == (
        "lead", "d2", 13, len(ART2.text), "Lead 2 — related passage, not support for an answer")
    assert F.resolve_choice(ABSTAIN, "lead:4") is None
    assert F.resolve_choice(ABSTAIN, "junk") is None and F.resolve_choice(None, "cite:1") is None
    assert F.source_choices(None) == []


# ---------------------------------------------------------------- documents and upload messages
def test_document_rows_newest_first_with_chunk_counts():
    arts = {
        "a": Article("a", "a.txt", "x", title="A", date="2012-11-21"),
        "b": Article("b", "b.txt", "x", title="", date=None),
        "c": Article("c", "c.txt", "x", title="C", date="2023-05-12"),
    }
    rows = F.document_rows(arts, {"a": [1, 2, 3], "c": [4]})
    assert rows == [["C", "2023-05-12", "c.txt", 1], ["A", "2012-11-21", "a.txt", 3], ["b.txt", "", "b.txt", 0]]


def test_update_report_and_refusal_messages():
    rep = SimpleNamespace(added=["new.txt"], updated=[], skipped=["old.md"], duplicates=[("copy.txt", "new.txt")],
                          unreadable=[("/tmp/x/<bad>.txt", "empty file")], chunks_embedded=3)
    assert F.format_update_report(rep) == (
        "<b>Indexed.</b> Added: new.txt. Updated: —. Unchanged (skipped): old.md."
        "<br>Duplicates, not added: copy.txt has the same text as new.txt."
        "<br>Unreadable, not added: &lt;bad&gt;.txt: empty file."
        "<br>3 chunks embedded."
    )
    assert F.format_refusal([("a.pdf", "not a .txt or .md file"), ("big.txt", "too big")]) == (
        "<b>Nothing was indexed.</b> a.pdf: not a .txt or .md file; big.txt: too big. "
        "Fix or remove these files and upload again."
    )


@pytest.mark.parametrize("ms,expected", [(0.0, "extractive"), (1534.0, "extractive · 1.53 s")])
def test_footer(ms, expected):
    a = Answer(question="q", answer="x [1]", abstained=False, latency_ms=ms)
    assert F.format_answer(a).endswith(f'<div class="nr-footer">{expected}</div></div>')


def test_confidence_badge_says_what_the_number_means():
    from rag.types import Answer
    from ui.format import confidence_badge, format_answer

    a = Answer("q?", "It was built in Rotterdam. [1]", False, confidence=0.8312)
    badge = confidence_badge(a)
    assert "confidence 83%" in badge and "nr-conf-high" in badge and "about 83 in 100 were right" in badge
    assert badge in format_answer(a)
    assert confidence_badge(Answer("q?", "x", False)) == ""
    assert "nr-conf-low" in confidence_badge(Answer("q?", "x", True, confidence=0.2))
