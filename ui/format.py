"""Pure formatting for the web UI: answers, citations, abstentions, the article viewer and the
documents table, as HTML strings. No Gradio, no model, no I/O, so every rule here is unit-tested.

Safety rule: every piece of article, title, file name or question text goes through ``esc``
(chat messages) or ``esc_panel`` (the article panel) before it is put into markup. ``esc``
HTML-escapes *and* turns every Markdown-significant character into a numeric entity, so text
rendered by the Chatbot's Markdown pass cannot become a link, an image or emphasis, and chat
messages are built without newlines so Markdown sees one inert HTML block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rag.types import Answer, Article, Citation, Passage

# Markdown/Gradio-significant characters (links, images, emphasis, code, tables, autolinks,
# LaTeX, template braces) as numeric entities; HTML's own five first.
_ESC_TABLE = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
    **{ord(ch): f"&#{ord(ch)};" for ch in "\\`*_[]()!#|~$:{}@"},
}
# The article panel is plain HTML (no Markdown), but keep template braces and `$` inert too.
_PANEL_TABLE = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
    **{ord(ch): f"&#{ord(ch)};" for ch in "${}`\\"},
}

MARKER = re.compile(r"\s*\[(\d+)\]")
NO_DATE = "undated"
LEAD_CHARS = 320  # length of a related-passage snippet
LEAD_LABEL_CHARS = 60  # length of a lead's opening words in the source picker
N_LEADS = 3


def esc(text: str | None) -> str:
    """Escape text for a Chatbot message: HTML-escaped, Markdown neutralised, newlines as <br>."""
    if not text:
        return ""
    out = str(text).translate(_ESC_TABLE)
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def esc_panel(text: str | None) -> str:
    """Escape text for the article panel (pre-wrapped, so newlines stay newlines)."""
    return str(text or "").translate(_PANEL_TABLE)


def find_span(haystack: str, needle: str | None) -> tuple[int, int] | None:
    """[start, end) of ``needle`` in ``haystack``: exact first, then case-insensitive."""
    if not needle or not haystack:
        return None
    i = haystack.find(needle)
    if i < 0:
        i = haystack.lower().find(needle.lower())
    if i < 0:
        return None
    return i, i + len(needle)


def wrap_span(text: str, span: tuple[int, int] | None, open_tag: str, close_tag: str, escape=esc) -> str:
    """``text`` escaped, with ``text[start:end]`` wrapped in the given (trusted) tags."""
    if span is None:
        return escape(text)
    s, e = span
    s, e = max(0, min(s, len(text))), max(0, min(e, len(text)))
    if e <= s:
        return escape(text)
    return escape(text[:s]) + open_tag + escape(text[s:e]) + close_tag + escape(text[e:])


def _date(d: str | None) -> str:
    return d or NO_DATE


def _meta_line(date: str | None, source: str) -> str:
    return f'<span class="nr-date">{esc(_date(date))}</span> · <span class="nr-file">{esc(source)}</span>'


# ---------------------------------------------------------------- chat messages
def format_question(question: str) -> str:
    return f'<div class="nr-q">{esc(question)}</div>'


def format_pending(message: str) -> str:
    return f'<div class="nr-answer nr-pending"><span class="nr-spinner"></span> {esc(message)}</div>'


def format_streaming(partial: str) -> str:
    """An answer while it streams in: escaped text and a cursor."""
    return f'<div class="nr-answer nr-streaming"><div class="nr-answer-text">{esc(partial)}<span class="nr-cursor">▍</span></div></div>'


def cite_href(turn: int | None, n: int) -> str:
    """The link target of citation ``n`` of turn ``turn``; the page's script opens it in the viewer."""
    return f"#nr-cite-{turn if turn is not None else 0}-{n}"


def format_answer_text(
    text: str, short_answer: str | None = None, citations: Sequence[Citation] = (), turn: int | None = None,
) -> str:
    """The answer sentence(s): escaped, ``[n]`` markers as links that open the cited source
    (hovering shows the quoted sentence), the first occurrence of the short answer in bold."""
    quotes = {c.n: c.quote for c in citations}
    out = []
    pos = 0
    bolded = False
    pieces = []
    for m in MARKER.finditer(text):
        pieces.append((text[pos : m.start()], m.group(1)))
        pos = m.end()
    pieces.append((text[pos:], None))
    for segment, n in pieces:
        span = None if bolded else find_span(segment, short_answer)
        if span:
            bolded = True
        out.append(wrap_span(segment, span, '<strong class="nr-short">', "</strong>"))
        if n is not None:
            quote = quotes.get(int(n))
            tip = f"[{n}] {quote}" if quote else f"Source [{n}]"
            out.append(f'<sup><a class="nr-ref" href="{cite_href(turn, int(n))}" title="{esc(tip)}">'
                       f"&#91;{n}&#93;</a></sup>")
    return "".join(out)


def _plain(text: str) -> str:
    return " ".join(MARKER.sub("", text).split()).lower()


def format_citation(c: Citation, short_answer: str | None = None, turn: int | None = None,
                    answer_text: str = "") -> str:
    """One source under an answer: number and title (a link that opens it), date and file
    name, and the cited sentence with the short answer marked, unless the answer already
    says that sentence word for word."""
    quote = ""
    if not c.quote or _plain(c.quote) not in _plain(answer_text):
        marked = wrap_span(c.quote, find_span(c.quote, short_answer), '<mark class="nr-span">', "</mark>")
        quote = f'<blockquote class="nr-quote">{marked}</blockquote>'
    return (
        '<div class="nr-source">'
        f'<div class="nr-source-head"><a class="nr-source-link" href="{cite_href(turn, c.n)}" title="{esc(c.quote)}">'
        f'<span class="nr-n">&#91;{c.n}&#93;</span> '
        f'<span class="nr-title">{esc(c.title or c.source)}</span></a></div>'
        f'<div class="nr-source-meta">{_meta_line(c.date, c.source)}</div>'
        f"{quote}"
        "</div>"
    )


def snippet(text: str, limit: int = LEAD_CHARS) -> str:
    """``text`` with collapsed white space, cut at a word boundary to at most ``limit`` chars."""
    t = " ".join(text.split())
    if len(t) <= limit:
        return t
    cut = t.rfind(" ", 0, limit)
    return t[: cut if cut > limit // 2 else limit].rstrip(" ,;:") + " …"


def lead_title(p: Passage, article: Article | None) -> str:
    """A lead's heading: its article's title, else its file name."""
    return article.title if article and article.title else p.source


def format_lead(i: int, p: Passage, article: Article | None) -> str:
    title = lead_title(p, article)
    date = article.date if article else None
    return (
        '<div class="nr-lead">'
        f'<div class="nr-source-head"><span class="nr-n">Lead {i}</span> <span class="nr-title">{esc(title)}</span></div>'
        f'<div class="nr-source-meta">{_meta_line(date, p.source)}</div>'
        f'<blockquote class="nr-lead-text">{esc(snippet(p.text))}</blockquote>'
        "</div>"
    )


def confidence_badge(answer: Answer) -> str:
    """A small badge with the answer's calibrated confidence and a tooltip saying what it means
    (nothing when the answerer gives none)."""
    if answer.confidence is None:
        return ""
    pct = round(100 * answer.confidence)
    level = "high" if answer.confidence >= 0.75 else "medium" if answer.confidence >= 0.5 else "low"
    tip = (f"Confidence {pct}%: of past answers given with this confidence, about {pct} in 100 were right "
           "(calibrated on questions the model was not trained on).")
    return f'<span class="nr-conf nr-conf-{level}" title="{esc(tip)}">confidence {pct}%</span>'


def _footer(answer: Answer) -> str:
    bits = [esc(answer.mode)]
    badge = confidence_badge(answer)
    if badge:
        bits.append(badge)
    if answer.latency_ms:
        bits.append(f"{answer.latency_ms / 1000:.2f} s")
    return f'<div class="nr-footer">{" · ".join(bits)}</div>'


def abstention_reason(answer: Answer) -> str:
    """Why the articles don't answer, in plain words, as one sentence."""
    note = (answer.note or "").strip()
    if not note:
        return "No passage in the articles answers this question."
    note = note[0].upper() + note[1:]
    return note if note.endswith((".", "!", "?")) else note + "."


def format_abstention(answer: Answer, articles: Mapping[str, Article] | None = None, n_leads: int = N_LEADS) -> str:
    """The verdict first, in one line with its reason in plain words; the closest passages
    follow collapsed, labelled as leads that do not support an answer."""
    articles = articles or {}
    parts = [
        '<div class="nr-answer nr-abstain">',
        f'<div class="nr-verdict"><span class="nr-abstain-h">Not in the articles:</span> '
        f'<span class="nr-reason">{esc(abstention_reason(answer))}</span></div>',
    ]
    leads = list(answer.passages[:n_leads])
    if leads:
        parts.append(f'<details class="nr-leads"><summary class="nr-leads-h">{len(leads)} closest passages '
                     "— related, not support</summary>")
        parts.extend(format_lead(i, p, articles.get(p.doc_id)) for i, p in enumerate(leads, start=1))
        parts.append("</details>")
    parts.append(_footer(answer))
    parts.append("</div>")
    return "".join(parts)


def format_answer(answer: Answer, articles: Mapping[str, Article] | None = None, turn: int | None = None) -> str:
    """The whole assistant message for a finished answer (one line of HTML). ``turn`` numbers
    the answer in the conversation, for its citation links."""
    if answer.abstained:
        return format_abstention(answer, articles)
    parts = [
        '<div class="nr-answer">',
        '<div class="nr-answer-text">'
        f"{format_answer_text(answer.answer, answer.short_answer, answer.citations, turn)}</div>",
    ]
    if answer.note:
        parts.append(f'<div class="nr-note">{esc(answer.note)}</div>')
    if answer.citations:
        parts.append('<div class="nr-sources"><div class="nr-sources-h">Sources</div>')
        parts.extend(format_citation(c, answer.short_answer, turn, answer.answer) for c in answer.citations)
        parts.append("</div>")
    parts.append(_footer(answer))
    parts.append("</div>")
    return "".join(parts)


def format_notice(message: str) -> str:
    """A refusal (an empty question, a bad date…) as an inline message in the conversation."""
    return (f'<div class="nr-answer nr-notice" role="alert"><span class="nr-notice-h">Can\'t answer that yet:</span> '
            f"{esc(message)}</div>")


# ---------------------------------------------------------------- source picker + article panel
def source_choices(answer: Answer | None, articles: Mapping[str, Article] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for the source picker: the citations of an answer ("cite:n"), or for
    an abstention its leads ("lead:i"), each labelled with its opening words, since several leads
    can come from one article."""
    if answer is None:
        return []
    articles = articles or {}
    if not answer.abstained:
        return [(f"[{c.n}] {c.title or c.source} — {c.source}", f"cite:{c.n}") for c in answer.citations]
    out = []
    for i, p in enumerate(answer.passages[:N_LEADS], start=1):
        title = lead_title(p, articles.get(p.doc_id))
        out.append((f"Lead {i} (related, not support): {title} — “{snippet(p.text, LEAD_LABEL_CHARS)}”", f"lead:{i}"))
    return out


def resolve_choice(answer: Answer | None, value: str | None) -> tuple[str, str, int, int, str] | None:
    """What a picker value points at: (kind, doc_id, start, end, label) or None."""
    if answer is None or not value or ":" not in value:
        return None
    kind, _, num = value.partition(":")
    if not num.isdigit():
        return None
    n = int(num)
    if kind == "cite":
        for c in answer.citations:
            if c.n == n:
                return "cite", c.doc_id, c.start, c.end, f"Cited source [{n}]"
    elif kind == "lead" and 1 <= n <= min(N_LEADS, len(answer.passages)):
        p = answer.passages[n - 1]
        return "lead", p.doc_id, p.start, p.end, f"Lead {n} — related passage, not support for an answer"
    return None


def format_article(
    article: Article, start: int | None = None, end: int | None = None, label: str = "Source",
    kind: str = "cite", inner: str | None = None,
) -> str:
    """The whole article for the side panel, HTML-escaped, with ``text[start:end]`` wrapped in
    ``<mark id="cite-span">`` (and ``inner``, e.g. the short answer, in bold inside it)."""
    text = article.text
    head = [
        '<div class="nr-article">',
        '<div class="nr-article-head">',
        f'<div class="nr-kicker nr-kicker-{esc_panel(kind)}">{esc_panel(label)}</div>',
        f'<div class="nr-article-title">{esc_panel(article.title or article.source)}</div>',
        '<div class="nr-article-meta">',
        f"{esc_panel(_date(article.date))}",
        f" · by {esc_panel(article.author)}" if article.author else "",
        f' · <span class="nr-file">{esc_panel(article.source)}</span>',
    ]
    if start is not None and end is not None:
        head.append(f" · characters {start}–{end}")
    head.append("</div></div>")
    if start is None or end is None or not (0 <= start < end <= len(text)):
        body = esc_panel(text)
    else:
        span_text = text[start:end]
        inner_span = find_span(span_text, inner) if kind == "cite" else None
        marked = wrap_span(span_text, inner_span, "<strong>", "</strong>", escape=esc_panel)
        body = (
            esc_panel(text[:start])
            + f'<mark id="cite-span" class="nr-mark nr-mark-{esc_panel(kind)}">{marked}</mark>'
            + esc_panel(text[end:])
        )
    # focusable, so the article can be scrolled with the keyboard
    return "".join(head) + f'<div class="nr-article-body" tabindex="0" role="region" aria-label="Article text">{body}</div></div>'


def article_placeholder(message: str = "Pick a source above to read the whole article with the cited passage highlighted.") -> str:
    return f'<div class="nr-article nr-article-empty">{esc_panel(message)}</div>'


def source_filter_choices(articles: Mapping[str, Article]) -> list[tuple[str, str]]:
    """(label, file name) pairs for the source filter: "Title (date)", newest first."""
    arts = sorted(articles.values(), key=lambda a: a.source)
    arts.sort(key=lambda a: a.date or "", reverse=True)
    return [(f"{a.title or a.source} ({_date(a.date)})", a.source) for a in arts]


# ---------------------------------------------------------------- documents
DOC_HEADERS = ["Title", "Date", "File", "Chunks"]


def document_rows(articles: Mapping[str, Article], chunks_by_doc: Mapping[str, Sequence[Any]]) -> list[list[Any]]:
    """One row per indexed article: title, date, file name, chunk count; newest first."""
    rows = [
        [a.title or a.source, a.date or "", a.source, len(chunks_by_doc.get(doc_id, ()))]
        for doc_id, a in articles.items()
    ]
    rows.sort(key=lambda r: r[2])
    rows.sort(key=lambda r: r[1], reverse=True)  # stable: ties stay by file name; undated last
    return rows


def _names(items: Sequence[str]) -> str:
    return ", ".join(esc(s) for s in items) if items else "—"


def format_update_report(report: Any) -> str:
    """A short Markdown/HTML summary of an ``UpdateReport`` for the upload status line."""
    lines = [
        f"<b>Indexed.</b> Added: {_names(report.added)}. Updated: {_names(report.updated)}. "
        f"Unchanged (skipped): {_names(report.skipped)}."
    ]
    if report.duplicates:
        dups = "; ".join(f"{esc(d)} has the same text as {esc(k)}" for d, k in report.duplicates)
        lines.append(f"Duplicates, not added: {dups}.")
    if getattr(report, "unreadable", None):
        bad = "; ".join(f"{esc(_basename(p))}: {esc(r)}" for p, r in report.unreadable)
        lines.append(f"Unreadable, not added: {bad}.")
    if report.chunks_embedded:
        lines.append(f"{report.chunks_embedded} chunks embedded.")
    return "<br>".join(lines)


def format_refusal(problems: Sequence[tuple[str, str]]) -> str:
    items = "; ".join(f"{esc(name)}: {esc(reason)}" for name, reason in problems)
    return f"<b>Nothing was indexed.</b> {items}. Fix or remove these files and upload again."


def _basename(p: str) -> str:
    return re.split(r"[\\/]", p)[-1]
