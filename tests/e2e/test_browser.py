"""End to end in a real headless Chromium, at 1366×900 and at 390×844: the app starts through
``ui.launch`` (building an index in tmp_path from the bundled articles with the real MiniLM).
Each test is one thing a person does or minds: an answer with clickable citations, refusals
that keep the conversation, a readable abstention, the phone layout, the search options, copy
and export, uploads, the keyboard, and an accessibility check with axe-core.

Screenshots go to a temporary folder; ``make screenshots`` (NEWSRAG_SCREENSHOT_DIR=docs)
refreshes the ones in docs/."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 120_000  # ms
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
Q_866 = "How many projectiles did Gazan fighters launch during the 2023 conflict?"
Q_AUSTIN = "Which U.S. Secretary of Defense reaffirmed an “ironclad” commitment to Israel in May 2021?"
Q_HEZBOLLAH = "How many rockets did Hezbollah fire from Lebanon?"

UPLOAD = """Zephyr Bridge opens in Fooville <img src=x onerror="window.__pwned=1">

By Cy Moor | March 4, 2024

The Zephyr Bridge in Fooville opened on 3 March 2024 and cost 42 million euros.

Engineers said the deck ![x](http://127.0.0.1:9/track.png) was assembled <script>window.__pwned=2</script> in Barland.
"""


def screenshot_dir(tmp: Path) -> Path:
    """Where the browser test saves its pictures: ``tmp`` unless NEWSRAG_SCREENSHOT_DIR says
    otherwise (``make screenshots`` sets it to docs)."""
    chosen = os.environ.get("NEWSRAG_SCREENSHOT_DIR")
    return (ROOT / chosen if not os.path.isabs(chosen) else Path(chosen)) if chosen else tmp


def test_screenshots_go_to_a_temporary_folder_unless_asked(tmp_path, monkeypatch):
    """`make test` must not overwrite tracked pictures in docs/."""
    monkeypatch.delenv("NEWSRAG_SCREENSHOT_DIR", raising=False)
    assert screenshot_dir(tmp_path) == tmp_path
    monkeypatch.setenv("NEWSRAG_SCREENSHOT_DIR", "docs")
    assert screenshot_dir(tmp_path) == ROOT / "docs"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ui import launch
    from ui.server import free_port

    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    demo = launch(index_dir=tmp / "index", host="127.0.0.1", port=port, articles=[ROOT / "articles"], block=False,
                  quiet=True)
    yield f"http://127.0.0.1:{port}/", tmp
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):  # a failure in CI (tests/conftest.py), which installs it
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture
def open_page(server, browser):
    """open_page(viewport) -> a fresh page on the app, index ready (a new conversation)."""
    url, _ = server
    contexts = []

    def make(viewport=WIDE, dark: bool = False):
        ctx = browser.new_context(viewport=viewport, accept_downloads=True, color_scheme="dark" if dark else "light")
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto(url + ("?__theme=dark" if dark else ""))
        page.wait_for_selector("#nr-status:has-text('Index ready')", timeout=TIMEOUT)
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def ask(page, question: str, n_messages: int, press_enter: bool = True):
    """Type a question, send it (Enter or the Ask button) and wait for the n-th finished
    assistant message (an answer, an abstention or an inline refusal); return it."""
    page.fill("#nr-question textarea", question)
    if press_enter:
        page.press("#nr-question textarea", "Enter")
    else:
        page.click("#nr-ask")
    return ask_wait(page, n_messages)


def ask_wait(page, n_messages: int):
    """Wait for the n-th finished assistant message and return it."""
    done = "#nr-chat .nr-answer:not(.nr-streaming):not(.nr-pending)"
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length >= n", arg=[done, n_messages],
                           timeout=TIMEOUT)
    return page.locator(done).nth(n_messages - 1)


def send_and_wait_for_start(page, question: str) -> None:
    """Send a question and return once its answer has started (its first update empties the box)."""
    page.fill("#nr-question textarea", question)
    page.press("#nr-question textarea", "Enter")
    page.wait_for_function("() => document.querySelector('#nr-question textarea').value === ''", timeout=TIMEOUT)


def error_pills(page) -> int:
    return page.locator(".toast-body.error, .toast-wrap .error").count()


def mark_in_view(page) -> bool:
    return page.evaluate("""() => { const m = document.querySelector('#nr-article mark#cite-span');
        const box = document.querySelector('#nr-article .nr-article-body');
        if (!m || !box) return false;
        const a = m.getBoundingClientRect(), b = box.getBoundingClientRect();
        return a.top >= b.top && a.top < b.bottom; }""")


# ---------------------------------------------------------------- 1. refusals keep the conversation
@pytest.mark.slow
def test_refusals_are_inline_and_keep_every_earlier_turn(open_page):
    page = open_page(WIDE)
    first = ask(page, Q_AUSTIN, 1)
    assert "Austin" in first.inner_text()
    follow = ask(page, "and what did he say?", 2)  # only common words: resolved against the previous turn
    # an answer or an abstention, not a refusal; its passages (cited, or the closest ones listed
    # under an abstention) come from the Austin story: the earlier question found them
    assert "nr-notice" not in follow.get_attribute("class") and "Austin" in follow.text_content()
    empty = ask(page, "   ", 3, press_enter=False)
    assert "nr-notice" in empty.get_attribute("class")
    assert "Type a question first" in empty.inner_text()
    assert page.locator("#nr-chat .nr-footer").count() == 2  # both earlier answers are still there
    assert error_pills(page) == 0


@pytest.mark.slow
def test_a_question_sent_while_an_answer_arrives_is_asked_next(open_page):
    page = open_page(WIDE)
    send_and_wait_for_start(page, Q_AUSTIN)
    page.fill("#nr-question textarea", "and what did he say?")
    page.press("#nr-question textarea", "Enter")  # sent before the first answer is in
    second = ask_wait(page, 2)
    assert "nr-notice" not in second.get_attribute("class") and "Austin" in second.text_content()
    assert "Austin" in page.locator("#nr-chat .nr-answer").nth(0).inner_text()
    assert page.input_value("#nr-question textarea") == ""


@pytest.mark.slow
def test_an_example_clicked_while_an_answer_arrives_is_asked_next(open_page):
    page = open_page(WIDE)
    send_and_wait_for_start(page, Q_AUSTIN)
    page.locator("button.nr-example").first.click()  # Q_866, before the first answer is in
    second = ask_wait(page, 2)
    assert "866" in second.inner_text()
    answers = page.locator("#nr-chat .nr-answer")
    assert "Austin" in answers.nth(0).inner_text()  # neither answer overwrote the other
    page.wait_for_timeout(1000)
    assert answers.count() == 2


# ---------------------------------------------------------------- 2. clickable citations
@pytest.mark.slow
@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1366", "390"])
def test_clicking_a_citation_opens_the_source_at_the_span(open_page, viewport):
    page = open_page(viewport)
    answer = ask(page, Q_866, 1)
    ref = answer.locator(".nr-answer-text a.nr-ref").first
    assert ref.inner_text() == "[1]"
    assert "launched 866 projectiles" in ref.get_attribute("title")  # hovering shows the quoted sentence
    ref.click()
    mark = page.locator("#nr-article mark#cite-span")
    mark.wait_for(timeout=TIMEOUT)
    assert "launched 866 projectiles" in mark.inner_text()
    assert "Israel walks away from ceasefire talks" in page.locator("#nr-article .nr-article-title").inner_text()
    page.wait_for_function("() => { const b = document.querySelector('#nr-article .nr-article-body');"
                           " return b && b.scrollTop > 0; }", timeout=10_000)
    assert mark_in_view(page)
    assert len(page.locator("#nr-article .nr-article-body").inner_text()) > 3000  # the whole article
    if viewport is WIDE:  # opening a source does not scroll the page header away
        assert page.evaluate("window.scrollY") == 0
        assert page.locator(".nr-header h1").bounding_box()["y"] >= 0
    else:  # on a phone the viewer opens below the chat and is brought into view
        box = page.locator("#nr-article").bounding_box()
        assert box["y"] < PHONE["height"] and box["y"] + 40 > 0
    # Esc closes the viewer
    page.keyboard.press("Escape")
    page.wait_for_selector("#nr-article mark#cite-span", state="detached", timeout=10_000)
    # the source's title under the answer opens it too
    answer.locator("a.nr-source-link").first.click()
    mark.wait_for(timeout=TIMEOUT)
    page.click("#nr-close-source")
    page.wait_for_selector("#nr-article mark#cite-span", state="detached", timeout=10_000)


# ---------------------------------------------------------------- 3. phone width
@pytest.mark.slow
def test_phone_shows_the_chat_and_the_question_box_first(open_page):
    page = open_page(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing sticks out
    assert page.locator(".sidebar, [class*=sidebar]").count() == 0  # no full-screen sidebar
    for sel in ("#nr-chat", "#nr-question textarea", "#nr-ask"):
        b = page.locator(sel).bounding_box()
        assert b and b["y"] >= 0 and b["y"] + b["height"] <= PHONE["height"], sel  # on the first screen
        assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"], sel
    # the options sit behind a button and open in place, covering nothing
    page.get_by_role("button", name="Search options").click()
    page.locator("#nr-since input").first.wait_for(state="visible", timeout=10_000)
    page.locator("#nr-ask").scroll_into_view_if_needed()
    b = page.locator("#nr-ask").bounding_box()
    hit = page.evaluate("([x, y]) => !!document.elementFromPoint(x, y).closest('#nr-ask')",
                        [b["x"] + b["width"] / 2, b["y"] + b["height"] / 2])
    assert hit, "something covers the Ask button"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


# ---------------------------------------------------------------- 4. abstentions
@pytest.mark.slow
def test_an_abstention_puts_its_verdict_first_and_folds_the_leads(open_page):
    page = open_page(WIDE)
    ask(page, Q_866, 1)
    abstain = ask(page, Q_HEZBOLLAH, 2)
    assert "nr-abstain" in abstain.get_attribute("class")
    verdict = abstain.locator(".nr-verdict")
    assert verdict.inner_text().startswith("Not in the articles:")
    assert len(verdict.inner_text()) > len("Not in the articles: ") + 10  # with the reason
    assert abstain.locator(".nr-source").count() == 0
    assert abstain.locator("details.nr-leads").get_attribute("open") is None  # leads folded
    assert not abstain.locator(".nr-lead").first.is_visible()
    chat = page.locator("#nr-chat").bounding_box()
    card = abstain.bounding_box()
    assert card["height"] < chat["height"] / 2
    page.wait_for_timeout(500)  # auto-scroll settles
    v = verdict.bounding_box()
    assert chat["y"] <= v["y"] and v["y"] + v["height"] <= chat["y"] + chat["height"]  # the verdict is in view
    abstain.locator("details.nr-leads summary").click()
    assert abstain.locator(".nr-lead").count() == 3 and abstain.locator(".nr-lead").first.is_visible()
    page.locator("#nr-picker label").filter(has_text="Lead 1").click()
    page.wait_for_selector("#nr-article mark.nr-mark-lead", timeout=TIMEOUT)
    assert "not support" in page.locator("#nr-article .nr-kicker").inner_text().lower()


# ---------------------------------------------------------------- 5. field messages
@pytest.mark.slow
def test_a_bad_date_is_named_by_its_field(open_page):
    page = open_page(WIDE)
    ask(page, Q_866, 1)
    page.get_by_role("button", name="Search options").click()
    since = page.locator("#nr-since input").first
    since.fill("2023-02-30")
    since.press("Enter")
    notice = ask(page, Q_866, 2)
    text = notice.inner_text()
    assert "nr-notice" in notice.get_attribute("class")
    assert "The “Since” date “2023-02-30” is not a real date" in text and "--since" not in text
    assert page.locator("#nr-chat .nr-footer").count() == 1 and error_pills(page) == 0
    since.fill("2023-05-01")
    since.press("Enter")
    assert "866" in ask(page, Q_866, 3).inner_text()


# ---------------------------------------------------------------- 6. smaller defects
@pytest.mark.slow
def test_small_defects(open_page):
    page = open_page(WIDE)
    page.evaluate("""() => { window.__streamed = 0; new MutationObserver(() => {
        if (document.querySelector('#nr-chat .nr-streaming')) window.__streamed++; })
        .observe(document.body, {subtree: true, childList: true}); }""")
    # an example question is shown whole and one click asks it
    example = page.locator("button.nr-example").first
    assert example.inner_text() == Q_866 and "…" not in example.inner_text()
    example.click()
    page.wait_for_selector("#nr-chat .nr-footer", timeout=TIMEOUT)
    answer = page.locator("#nr-chat .nr-answer").first
    assert "866" in answer.inner_text()
    assert page.evaluate("window.__streamed") == 0  # no typing effect
    # the answer sentence is printed once
    assert answer.inner_text().count("launched 866 projectiles") == 1
    assert "003_95e71b640879a191.txt" in answer.locator(".nr-source").first.inner_text()
    # no single-option answer mode
    assert page.locator("#nr-mode").count() == 0
    # message labels are text
    labels = page.locator("#nr-chat [aria-label]").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    assert labels and not [x for x in labels if "<" in x]
    assert any(x.startswith("Answer: ") and "866" in x for x in labels)
    # the source filter lists titles with dates
    page.get_by_role("button", name="Search options").click()
    page.locator("#nr-sources input").first.click()
    page.wait_for_selector("li.item", timeout=10_000)
    options = page.locator("li.item").all_inner_texts()
    assert any("Israel walks away from ceasefire talks" in o and "(2023-05-12)" in o for o in options), options
    assert not any(re.fullmatch(r"\d+_[0-9a-f]+\.txt", o.strip()) for o in options)


@pytest.mark.slow
def test_copy_and_export(open_page):
    page = open_page(WIDE)
    ask(page, Q_866, 1)
    page.click("#nr-copy")
    page.wait_for_function("() => document.querySelector('#nr-copy').textContent.includes('Copied')", timeout=10_000)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "866" in copied and "[1] Israel walks away from ceasefire talks" in copied
    assert "(2023-05-12), 003_95e71b640879a191.txt: “" in copied
    page.wait_for_selector("#nr-export:not([disabled])", timeout=10_000)
    with page.expect_download() as d:
        page.click("#nr-export")
    md = Path(d.value.path()).read_text(encoding="utf-8")
    assert md.startswith("# NewsRAG conversation") and f"## 1. {Q_866}" in md
    assert "— 2023-05-12 — source: `003_95e71b640879a191.txt`" in md and "> " in md


@pytest.mark.slow
def test_upload_then_ask_and_a_refused_upload_replaces_the_message(open_page, server):
    _, tmp = server
    page = open_page(WIDE)
    external = []
    url = page.url
    page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith("data:") else external.append(r.url))
    upload = tmp / "zephyr_fooville.txt"
    upload.write_text(UPLOAD, encoding="utf-8")
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#nr-docs:has-text('003_95e71b640879a191.txt')", timeout=TIMEOUT)
    page.set_input_files("#nr-upload input[type=file]", str(upload))
    page.wait_for_selector("#nr-upload-status:has-text('Added: zephyr_fooville.txt')", timeout=TIMEOUT)
    page.wait_for_selector("#nr-docs:has-text('zephyr_fooville.txt')", timeout=TIMEOUT)
    bad = tmp / "notes.pdf"
    bad.write_bytes(b"%PDF-1.4 not an article")
    page.set_input_files("#nr-upload input[type=file]", str(bad))
    page.wait_for_selector("#nr-upload-status:has-text('notes.pdf')", timeout=TIMEOUT)
    assert "Indexed" not in page.locator("#nr-upload-status").inner_text()
    page.get_by_role("tab", name="Ask").click()
    zephyr = ask(page, "How much did the Zephyr Bridge in Fooville cost?", 1)
    assert re.search(r"42 million euros", zephyr.inner_text())
    zephyr.locator("a.nr-ref").first.click()
    page.wait_for_selector("#nr-article mark#cite-span:has-text('42 million euros')", timeout=TIMEOUT)
    # the upload's markup stayed text: no script ran, no image was made or fetched
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#nr-chat img, #nr-article img, #nr-chat script, #nr-article script").count() == 0
    assert "<img src=x" in page.locator("#nr-article .nr-article-title").inner_text()
    assert not [u for u in external if "track.png" in u]


# ---------------------------------------------------------------- accessibility
@pytest.fixture(scope="module")
def axe_js(tmp_path_factory) -> Path:
    """axe.min.js from npm (axe-core), installed into a temporary folder."""
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed, so axe-core cannot be had (apt-get install -y npm)")
    d = tmp_path_factory.mktemp("axe")
    r = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(d), "axe-core@4"],
                       capture_output=True, text=True, timeout=300)
    path = d / "node_modules" / "axe-core" / "axe.min.js"
    if r.returncode != 0 or not path.exists():
        pytest.skip(f"npm install axe-core failed (offline?): {r.stderr.strip()[-300:]}")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("viewport, dark", [(WIDE, False), (PHONE, False), (WIDE, True)],
                         ids=["1366", "390", "1366-dark"])
def test_accessibility_no_serious_violations(open_page, axe_js, viewport, dark):
    page = open_page(viewport, dark)
    ask(page, Q_866, 1)
    ask(page, Q_HEZBOLLAH, 2)
    page.locator("#nr-chat a.nr-ref").first.click()
    page.wait_for_selector("#nr-article mark#cite-span", timeout=TIMEOUT)
    # colours are judged once no CSS transition is under way (a half-faded background is neither state)
    page.wait_for_function("document.getAnimations().every(a => !(a instanceof CSSTransition) || a.playState !== 'running')",
                           timeout=TIMEOUT)
    page.add_script_tag(path=str(axe_js))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, serious


# ---------------------------------------------------------------- screenshots
def _tracked_pictures() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "docs").glob("screenshot*.png")}


@pytest.mark.slow
def test_screenshots(open_page, tmp_path):
    before = _tracked_pictures()
    out = screenshot_dir(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("wide", WIDE), ("phone", PHONE)):
        page = open_page(viewport)
        ask(page, Q_866, 1)
        ask(page, Q_HEZBOLLAH, 2)
        page.locator("#nr-chat a.nr-ref").first.click()
        page.wait_for_selector("#nr-article mark#cite-span", timeout=TIMEOUT)
        page.wait_for_timeout(1600)  # let the highlight flash settle before the picture
        if viewport is PHONE:
            page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(out / f"screenshot-{name}.png"))
        assert (out / f"screenshot-{name}.png").stat().st_size > 10_000
    if out != ROOT / "docs":
        assert _tracked_pictures() == before  # nothing tracked was overwritten
