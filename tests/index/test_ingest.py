from __future__ import annotations

import json

import pytest

from rag.errors import ArticleError, BadInputError, EmptyCorpusError
from index.ingest import collect, parse_article, parse_date, read_article
from index.sentences import split_sentences

from conftest import ARTICLES, as_unprivileged


def by_source():
    return {a.source: a for a in collect([ARTICLES]).articles}


def test_bundled_metadata():
    arts = by_source()
    assert len(arts) == 5
    a1 = arts["001_2553db7c481c0c1a.txt"]
    assert a1.title == "Gaza Conflict Rages Amid Ceasefire Push"
    assert (a1.date, a1.date_found) == ("2012-11-21", "byline")
    assert a1.author == "Patrick Goodenough"
    a3 = arts["003_95e71b640879a191.txt"]
    assert (a3.date, a3.date_found) == ("2023-05-12", "caption")
    a4 = arts["004_f3772e32fd93a989.txt"]
    assert (a4.date, a4.date_found) == ("2012-11-14", "caption")  # not the 2008 date in the text
    assert a4.author == "Raphael Ahren"
    assert arts["002_68a0928ee0260f57.txt"].author == "Dave DeCamp"
    # the two articles whose text gives no year carry curator metadata, marked as such
    assert arts["002_68a0928ee0260f57.txt"].date_found == "metadata"
    assert arts["000_1ac2ec0afcdbae9b.txt"].date_found == "metadata"


def test_date_left_empty_rather_than_guessed():
    text = "Cabinet meets on Monday Nov. 12\n\nThe cabinet met. Cast Lead began in December 27, 2008.\n"
    a = parse_article(text, "x.txt")
    assert a.date is None and a.date_found is None


def test_debris_removed_offsets_kept():
    arts = by_source()
    a4 = arts["004_f3772e32fd93a989.txt"]
    debris = [a4.text[d.start : d.end] for d in a4.debris]
    assert "read more:" in debris and "You're subscribed" in debris
    assert "Never miss breaking news on Israel" in debris
    # the caption printed twice is kept once
    cap = "Prime Minister Benjamin Netanyahu speaks with Defense Minister Ehud Barak"
    kept = [i for i in range(len(a4.sentences)) if a4.sentence_text(i).startswith(cap)]
    assert len(kept) == 1
    for a in arts.values():
        for s in a.sentences:
            text = a.text[s.start : s.end]
            assert text == text.strip() and text
            assert not any(d.start <= s.start < d.end for d in a.debris)


def test_sentence_splitting_respects_abbreviations_and_credits():
    t = "Maj. Gen. Ghassan Alian spoke. The U.S. said no. Room No. 5 is shut. Smoke rises, May 12, 2023. (AP Photo/Hatem Moussa)"
    spans = [t[s.start : s.end] for s in split_sentences(t, 0, len(t))]
    assert spans == [
        "Maj. Gen. Ghassan Alian spoke.",
        "The U.S. said no.",
        "Room No. 5 is shut.",
        "Smoke rises, May 12, 2023. (AP Photo/Hatem Moussa)",
    ]


def test_parse_date_forms():
    assert parse_date("November 21, 2012") == "2012-11-21"
    assert parse_date("Nov. 21, 2012") == "2012-11-21"
    assert parse_date("21 November 2012") == "2012-11-21"
    assert parse_date("2023-05-12") == "2023-05-12"
    assert parse_date("February 30, 2012") is None


def test_front_matter_and_sidecar_win(tmp_path):
    f = tmp_path / "a.md"
    f.write_text("---\ntitle: Given title\ndate: 2020-01-02\nauthor: Jane Roe\n---\nReal headline\n\nBody text here. More.\n")
    a = read_article(f)
    assert (a.title, a.date, a.date_found, a.author) == ("Given title", "2020-01-02", "metadata", "Jane Roe")
    assert all(s.start >= a.text.index("Real headline") for s in a.sentences)
    g = tmp_path / "b.txt"
    g.write_text("Headline\n\nBy John Smith | March 3, 2019\n\nBody.\n")
    assert read_article(g).date == "2019-03-03"
    (tmp_path / "b.txt.meta.json").write_text(json.dumps({"date": "2019-03-04", "title": "Sidecar title"}))
    b = read_article(g)
    assert (b.date, b.title, b.author) == ("2019-03-04", "Sidecar title", "John Smith")


def test_bad_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "ok.txt").write_text("Title\n\nA sentence about Gaza.\n")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    c = collect([tmp_path])
    assert [a.source for a in c.articles] == ["ok.txt"]
    reasons = {p.split("/")[-1]: r for p, r in ((s.path, s.reason) for s in c.skipped)}
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "ignored.pdf" not in reasons  # folders only yield .txt/.md


def test_duplicate_text_indexed_once(tmp_path):
    (tmp_path / "a.txt").write_text("Title\n\nSame text.\n")
    (tmp_path / "b.txt").write_text("Title\n\nSame text.\n")
    c = collect([tmp_path])
    assert len(c.articles) == 1
    assert c.duplicates == [("b.txt", "a.txt")]


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(EmptyCorpusError, match="no readable"):
        collect([tmp_path])
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(EmptyCorpusError, match="empty file"):
        collect([tmp_path])
    with pytest.raises(BadInputError, match="no such file"):
        collect([tmp_path / "missing"])


def test_doc_id_is_content_hash(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("Title\n\nText one.\n")
    id1 = read_article(f).doc_id
    assert read_article(f).doc_id == id1
    f.write_text("Title\n\nText two.\n")
    assert read_article(f).doc_id != id1


def test_article_error_names_file(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ArticleError, match="bad.txt"):
        read_article(f)


def test_utf16_with_a_byte_order_mark_is_read_and_without_one_named(tmp_path):
    text = "Ferry order in Zubrovka\n\nThe ferry company ordered a vessel on Friday.\n"
    (tmp_path / "bom.txt").write_bytes(text.encode("utf-16"))  # with BOM
    (tmp_path / "nobom.txt").write_bytes(text.replace("Friday", "Monday").encode("utf-16-le"))
    c = collect([tmp_path])
    assert [a.source for a in c.articles] == ["bom.txt"] and c.articles[0].text == text
    [s] = c.skipped
    assert s.path.endswith("nobom.txt") and "UTF-16" in s.reason and "save it as UTF-8" in s.reason


def test_an_article_of_invisible_characters_is_empty(tmp_path):
    (tmp_path / "ok.txt").write_text("Title\n\nA sentence about Gaza.\n")
    (tmp_path / "zw.txt").write_text("\u200b\u200b\n\u2060\ufeff\u200c\u00a0\n")
    c = collect([tmp_path])
    assert [a.source for a in c.articles] == ["ok.txt"]
    assert "empty file" in c.skipped[0].reason and "invisible" in c.skipped[0].reason


def test_size_limit_message_has_the_bytes(tmp_path, monkeypatch):
    import index.ingest as ingest

    monkeypatch.setattr(ingest, "MAX_BYTES", 1000)
    f = tmp_path / "big.txt"
    f.write_text("Title\n\n" + "x" * 1000)
    with pytest.raises(ArticleError) as e:
        read_article(f)
    assert "1,007 bytes" in e.value.reason and "the limit is 1,000 bytes" in e.value.reason


def test_symlink_loops_are_named(tmp_path):
    (tmp_path / "ok.txt").write_text("Title\n\nA sentence about Gaza.\n")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    c = collect([tmp_path])
    reasons = {s.path.split("/")[-1]: s.reason for s in c.skipped}
    assert "symlink loop" in reasons["loop.txt"] and "broken symlink" in reasons["gone.txt"]
    with pytest.raises(BadInputError, match="symlink loop"):
        collect([tmp_path / "loop.txt"])



def test_a_folder_that_cannot_be_entered_is_skipped(tmp_path):
    """It raised PermissionError out of the walk, and the whole batch stopped."""
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "ok.txt").write_text("Title\n\nA sentence about Gaza.\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("Title\n\nAnother sentence.\n")
    locked.chmod(0o600)  # a listing can be read, entries cannot be opened
    code = (
        "import sys; from index.ingest import collect; c = collect([sys.argv[1]]); "
        "print([a.source for a in c.articles]); print([s.path for s in c.skipped])"
    )
    try:
        r = subprocess.run(as_unprivileged([sys.executable, "-c", code, str(tmp_path)]),
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    finally:
        locked.chmod(0o755)
    assert r.returncode == 0, r.stderr
    articles, skipped = r.stdout.splitlines()
    assert articles == "['ok.txt']" and "locked" in skipped
