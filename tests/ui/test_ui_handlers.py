"""The chat's event functions over a real pipeline (hash embedder, two small articles): refusals
join the conversation instead of replacing it, citations open their source, the viewer
closes, copy and export carry the citations, and the inputs are checked with messages that
name the field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from index.embed import HashEmbedder
from rag.pipeline import RagPipeline
from rag.types import Answer, Citation
from ui.export import EXPORT_NAME, ExportFiles, answer_plaintext, conversation_markdown
from ui.inputs import FieldError, check_date, check_k, check_request

from test_ui_app import STORY_A, STORY_B  # the same two small articles

CRANES = "Where were the new harbour cranes of Nordport built?"


@pytest.fixture
def handlers(tmp_path: Path):
    from ui.handlers import Handlers
    from ui.server import Readiness

    d = tmp_path / "articles"
    d.mkdir()
    (d / "a_cranes.txt").write_text(STORY_A, encoding="utf-8")
    (d / "b_library.txt").write_text(STORY_B, encoding="utf-8")
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    p.ensure_index([d])
    return Handlers(p, tmp_path / "uploads", Readiness(ready=True))


def run(h, question, turns, since=None, until=None, sources=(), k=5, mode="extractive"):
    """The last thing ``respond`` yields: (box, messages, turns, focus, picker, article)."""
    *_, last = h.respond(question, turns, since, until, list(sources), k, mode)
    return last


def test_a_refusal_is_an_inline_message_and_keeps_the_conversation(handlers):
    box, msgs, turns, *_ = run(handlers, CRANES, [])
    assert "Nordport" in msgs[1]["content"]
    for bad, field_words in [("", "Type a question first"),
                             (CRANES, "The “Since” date “2023-02-30” is not a real date")]:
        since = "2023-02-30" if bad else None
        box, msgs, turns2, *_ = run(handlers, bad, turns, since=since)
        assert len(msgs) == 4 and "Nordport" in msgs[1]["content"]  # the earlier turn is still there
        assert "nr-notice" in msgs[3]["content"] and field_words in msgs[3]["content"].replace("&#45;", "-")
        assert "--since" not in msgs[3]["content"] and "Error" not in msgs[3]["content"]
        assert box == bad  # the question stays in the box to be fixed
        assert turns2[:1] == turns and turns2[1]["answer"] is None


def test_a_follow_up_of_common_words_leans_on_the_previous_turn(handlers):
    _, _, turns, *_ = run(handlers, CRANES, [])
    _, msgs, turns, *_ = run(handlers, "and what was it?", turns)
    assert "nr-notice" not in msgs[3]["content"] and turns[1]["answer"] is not None
    assert "Nordport" in msgs[3]["content"]


def test_refused_turns_are_not_history_for_follow_ups(handlers):
    _, _, turns, *_ = run(handlers, CRANES, [])
    _, _, turns, *_ = run(handlers, "", turns)
    assert handlers.request("and what was it?", turns, None, None, [], 5, "extractive").history == (CRANES,)


def test_clicking_a_citation_opens_its_source_at_the_span(handlers):
    _, msgs, turns, *_ = run(handlers, CRANES, [])
    assert 'href="#nr-cite-0-1"' in msgs[1]["content"]
    focus, picker, article = handlers.open_citation("0-1", turns)
    assert focus == 0 and picker["value"] == "cite:1"
    assert '<mark id="cite-span"' in article
    marked = article.split('id="cite-span"')[1].split(">", 1)[1].split("</mark>")[0]
    assert marked and marked in msgs[1]["content"]  # the highlighted span is the quote the answer cites
    assert handlers.open_citation("5-1", turns)[2] == {"__type__": "update"}  # no such turn: nothing changes
    picker, article = handlers.close_source()
    assert picker["value"] is None and "cite-span" not in article


def test_no_typing_effect_an_extractive_answer_arrives_at_once(handlers):
    steps = list(handlers.respond(CRANES, [], None, None, [], 5, "extractive"))
    assert len(steps) == 2  # "searching…", then the answer
    assert steps[0][0] == "" and steps[1][0] == {"__type__": "update"}  # only the first empties the box


def test_copy_and_export_carry_the_citations(handlers, tmp_path: Path):
    _, _, turns, *_ = run(handlers, CRANES, [])
    _, _, turns, *_ = run(handlers, "", turns)
    text = handlers.copy_text(turns, None)
    assert "Nordport" in text and "[1] Harbour cranes return to Nordport (2022-06-02), a_cranes.txt: “" in text
    upd = handlers.export_file(turns)
    md = Path(upd["value"]).read_text(encoding="utf-8")
    assert md.startswith("# NewsRAG conversation")
    assert "## 1. Where were the new harbour cranes of Nordport built?" in md
    assert "[1] **Harbour cranes return to Nordport** — 2022-06-02 — source: `a_cranes.txt`" in md
    quote = turns[0]["answer"].citations[0].quote
    assert quote and f"> {quote}" in md  # the cited sentence, quoted
    assert "*Not answered:* Type a question first" in md
    assert handlers.export_file([])["interactive"] is False


def test_exports_are_kept_in_one_folder_that_is_pruned_and_removed():
    files = ExportFiles(keep_seconds=0)
    first = files.write("# one\n")
    assert first.name == EXPORT_NAME and first.read_text(encoding="utf-8") == "# one\n"
    assert files.write("# one\n") == first  # the same conversation: the same file
    second = files.write("# two\n")
    assert second != first and second.parent.parent == first.parent.parent
    assert not first.exists() and [p.name for p in files.root.iterdir()] == [second.parent.name]
    root = files.root
    files.close()
    assert not root.exists()
    kept = ExportFiles(keep_seconds=600)
    a, b = kept.write("a"), kept.write("b")
    assert a.exists() and b.exists()  # a recent export stays until the page has copied it
    os.utime(a.parent, (0, 0))  # exported long ago ...
    assert kept.write("a") == a  # ... and again now: fresh, so the next export keeps it
    kept.write("c")
    assert a.exists()
    os.utime(b.parent, (0, 0))
    kept.write("d")
    assert not b.exists()
    kept.close()


def test_source_filter_lists_titles_with_dates(handlers):
    names = handlers.source_names()
    assert names == [("Harbour cranes return to Nordport (2022-06-02)", "a_cranes.txt"),
                     ("Library reopens in Sudvale (2021-07-09)", "b_library.txt")]


def test_a_refused_upload_replaces_the_last_upload_message(handlers, tmp_path: Path):
    good = tmp_path / "zephyr.txt"
    good.write_text("Zephyr Bridge opens\n\nBy Cy Moor | March 3, 2024\n\nThe bridge cost 42 million euros.\n",
                    encoding="utf-8")
    assert handlers.on_upload([str(good)], [])[0].startswith("<b>Indexed.</b>")
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    msg = handlers.on_upload([str(pdf)], [])[0]
    assert "Indexed" not in msg and "paper.pdf: not a .txt or .md file" in msg


# ---------------------------------------------------------------- field checks
def test_field_checks_name_the_field():
    assert check_date("2023-02-03", "Since") == "2023-02-03" and check_date("", "Until") is None
    with pytest.raises(FieldError, match="The “Until” date “2023-02-30” is not a real date"):
        check_date("2023-02-30", "Until")
    assert check_k(None) == 5 and check_k("3") == 3 and check_k(7.0) == 7
    for bad in ("abc", 0, 11, 2.5, True, [3]):
        with pytest.raises(FieldError, match=r"“Passages to retrieve \(k\)” must be a whole number from 1 to 10"):
            check_k(bad)
    with pytest.raises(FieldError, match="is after the “Until” date"):
        check_request("q?", [], "2023-05-01", "2023-01-01", None, 5, "extractive", {})
    with pytest.raises(FieldError, match="“Only these articles”: no indexed article is named x.txt"):
        check_request("q?", [], None, None, ["x.txt"], 5, "extractive", {"a.txt": "d"})


def test_export_markdown_escapes_article_text():
    c = Citation(n=1, doc_id="d", source="a_[x].txt", title="*Big* [news](http://x)", date=None, start=0, end=3,
                 quote="<b>hi</b>")
    ans = Answer(question="q?", answer="It was so [1]", abstained=False, citations=(c,))
    md = conversation_markdown([{"question": "q?", "answer": ans}])
    assert "It was so [1]" in md and "**\\*Big\\* \\[news\\](http://x)** — undated" in md
    assert "> \\<b\\>hi\\</b\\>" in md
    assert answer_plaintext(ans).endswith("[1] *Big* [news](http://x) (undated), a_[x].txt: “<b>hi</b>”")
