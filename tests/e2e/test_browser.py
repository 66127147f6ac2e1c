"""End to end in a real headless Chromium: the app starts through ``ui.launch`` (building
an index in tmp_path from the bundled articles with the real MiniLM), a question is answered
with a citation, the citation opens the article with the cited span highlighted, an
unanswerable question abstains with leads, an uploaded article becomes answerable (and its
HTML/Markdown tricks stay inert). Saves docs/screenshot.png."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
TIMEOUT = 120_000  # ms

UPLOAD = """Zephyr Bridge opens in Fooville <img src=x onerror="window.__pwned=1">

By Cy Moor | March 4, 2024

The Zephyr Bridge in Fooville opened on 3 March 2024 and cost 42 million euros.

Engineers said the deck ![x](http://127.0.0.1:9/track.png) was assembled <script>window.__pwned=2</script> in Barland.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ui.server import free_port as _free_port, launch

    tmp = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    demo = launch(index_dir=tmp / "index", host="127.0.0.1", port=port, articles=[ROOT / "articles"], block=False,
                  quiet=True)
    yield f"http://127.0.0.1:{port}/", tmp
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):  # CI installs it (.ci/run): missing there is a failure
            pytest.fail(f"{CHROMIUM} is not installed in CI")
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


def ask(page, question: str, n_answers: int):
    """Type a question, press Enter, wait for the n-th finished assistant message; return it."""
    page.fill("#nr-question textarea", question)
    page.press("#nr-question textarea", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#nr-chat .nr-footer').length >= n", arg=n_answers, timeout=TIMEOUT)
    return page.locator("#nr-chat .nr-answer:not(.nr-streaming):not(.nr-pending)").nth(n_answers - 1)


def test_ask_cite_open_abstain_upload(server, browser):
    url, tmp = server
    page = browser.new_page(viewport={"width": 1440, "height": 960})
    external = []
    page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith("data:") else external.append(r.url))
    page.goto(url)
    page.wait_for_selector("#nr-status:has-text('Index ready')", timeout=TIMEOUT)

    # 1. an answer with its citation
    answer = ask(page, "How many projectiles did Gazan fighters launch during the 2023 conflict?", 1)
    text = answer.inner_text()
    assert "866" in text
    assert answer.locator(".nr-answer-text .nr-ref").first.inner_text() == "[1]"
    source = answer.locator(".nr-source").first
    assert "003_95e71b640879a191.txt" in source.inner_text()
    assert "2023-05-12" in source.inner_text()
    assert source.locator("mark").inner_text() == "866"  # the short answer marked inside the quote

    # 2. open the citation: the whole article, scrolled to the highlighted span
    page.locator("#nr-picker label").filter(has_text="[1]").click()
    mark = page.locator("#nr-article mark#cite-span")
    mark.wait_for(timeout=TIMEOUT)
    assert "launched 866 projectiles" in mark.inner_text()
    assert "Israel walks away from ceasefire talks" in page.locator("#nr-article .nr-article-title").inner_text()
    page.wait_for_function(
        """() => { const m = document.querySelector('#nr-article mark#cite-span');
                   const box = document.querySelector('#nr-article .nr-article-body');
                   if (!m || !box || box.scrollTop <= 0) return false;
                   const a = m.getBoundingClientRect(), b = box.getBoundingClientRect();
                   return a.top >= b.top && a.top < b.bottom; }""",
        timeout=10_000,
    )
    body = page.locator("#nr-article .nr-article-body").inner_text()
    assert len(body) > 3000  # the whole article, not a snippet
    page.wait_for_timeout(1600)  # let the highlight flash settle before the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    # 3. an abstention looks different and offers leads, not support
    abstain = ask(page, "How many rockets did Hezbollah fire from Lebanon?", 2)
    assert "nr-abstain" in abstain.get_attribute("class")
    t = abstain.inner_text().lower()  # (the leads heading is upper-cased by CSS)
    assert "not in the articles" in t and "related, not support" in t
    assert abstain.locator(".nr-lead").count() == 3
    assert abstain.locator(".nr-source").count() == 0
    page.locator("#nr-picker label").filter(has_text="Lead 1").click()
    page.wait_for_selector("#nr-article mark.nr-mark-lead", timeout=TIMEOUT)
    assert "not support" in page.locator("#nr-article .nr-kicker").inner_text().lower()

    # 4. upload an article, then ask about it
    upload = tmp / "zephyr_fooville.txt"
    upload.write_text(UPLOAD, encoding="utf-8")
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#nr-docs:has-text('003_95e71b640879a191.txt')", timeout=TIMEOUT)
    page.set_input_files("#nr-upload input[type=file]", str(upload))
    page.wait_for_selector("#nr-upload-status:has-text('Added: zephyr_fooville.txt')", timeout=TIMEOUT)
    page.wait_for_selector("#nr-docs:has-text('zephyr_fooville.txt')", timeout=TIMEOUT)
    page.get_by_role("tab", name="Ask").click()
    zephyr = ask(page, "How much did the Zephyr Bridge in Fooville cost?", 3)
    assert re.search(r"42 million euros", zephyr.inner_text())
    assert "zephyr_fooville.txt" in zephyr.locator(".nr-source").first.inner_text()
    page.locator("#nr-picker label").filter(has_text="[1]").click()
    page.wait_for_selector("#nr-article mark#cite-span:has-text('42 million euros')", timeout=TIMEOUT)

    # the upload's markup stayed text: no script ran, no image was made or fetched
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#nr-chat img, #nr-article img, #nr-chat script, #nr-article script").count() == 0
    assert "<img src=x" in page.locator("#nr-article .nr-article-title").inner_text()
    assert not [u for u in external if "track.png" in u]
    page.close()
