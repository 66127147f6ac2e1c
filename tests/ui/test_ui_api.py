"""The /chat API under concurrency: the app runs on a free 127.0.0.1 port over an index built
into tmp_path from the bundled articles with the real MiniLM, and 20 gradio_client clients ask
(10 different questions, each twice) at the same moment; every answer must equal what
``pipeline.ask`` returns directly, and hold the expected fact."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARTICLES = Path(__file__).resolve().parents[2] / "articles"

# (question, a string the answer must contain) - from eval/qa.jsonl, one or more per article
CASES = [
    ("Which Israeli city did Hamas tell residents to evacuate “for their own safety” as Israel’s Security Cabinet "
     "discussed its next step?", "Ashkelon"),
    ("In which Italian city did Egyptian President al-Sisi announce he had arrived while rockets were flying "
     "between Gaza and Israel?", "Palermo"),
    ("In what language were the leaflets that the Israeli Air Force dropped over Gaza in November 2012 written?",
     "Arabic"),
    ("Which Israeli defense minister said in May 2021 that there was “currently no end date” for the Gaza "
     "operation?", "Gantz"),
    ("During Operation Pillar of Defense, Netanyahu thanked Obama for U.S. help in buying which missile defense "
     "system?", "Iron Dome"),
    ("According to the IDF, how many incoming projectiles did Iron Dome destroy on Tuesday, November 20, 2012?", "51"),
    ("Through which country's foreign ministry did Hamas make its truce offer in 2021?", "Russian"),
    ("Which U.S. Secretary of Defense reaffirmed an “ironclad” U.S. commitment to Israel during the May 2021 Gaza "
     "fighting?", "Austin"),
    ("On what date did Operation Cast Lead begin with air strikes?", "December 27, 2008"),
    ("How many projectiles did Gazan fighters launch during the 2023 conflict?", "866"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from rag.pipeline import RagPipeline
    from ui.app import build_app
    from ui.server import free_port as _free_port, serve

    index_dir = tmp_path_factory.mktemp("ui_api") / "index"
    pipeline = RagPipeline(index_dir=index_dir)
    pipeline.ensure_index([ARTICLES])
    pipeline.warm_up()
    port = _free_port()
    demo = build_app(pipeline)
    serve(demo, "127.0.0.1", port, block=False, concurrency=4, quiet=True)
    yield pipeline, f"http://127.0.0.1:{port}/"
    demo.close()


def test_twenty_simultaneous_users_get_complete_correct_answers(app):
    from gradio_client import Client

    pipeline, url = app
    expected = {q: pipeline.ask(q).answer for q, _ in CASES}
    for (q, fact) in CASES:
        assert fact in expected[q], (q, expected[q])  # the direct answers are right to begin with
    users = CASES * 2  # 20 users, each question asked by two of them
    clients = [Client(url, verbose=False) for _ in users]  # connect first: the asks start together
    barrier = threading.Barrier(len(users))

    def ask(i: int) -> tuple[str, float, float]:
        barrier.wait()
        t0 = time.perf_counter()
        text = clients[i].predict(users[i][0], api_name="/chat")
        return text, t0, time.perf_counter()

    t_start = time.perf_counter()
    with ThreadPoolExecutor(len(users)) as ex:
        results = list(ex.map(ask, range(len(users))))
    wall = time.perf_counter() - t_start
    for (q, fact), (text, _, _) in zip(users, results):
        assert text == expected[q], q
        assert fact in text and text.rstrip().endswith("]"), text  # whole answer, ending in its citation marker
    # the requests overlapped (served concurrently, not one after another)
    latest_start = max(r[1] for r in results)
    earliest_end = min(r[2] for r in results)
    assert latest_start < earliest_end, f"requests did not overlap (wall {wall:.1f}s)"


def test_chat_defaults_filters_and_history(app):
    from gradio_client import Client

    pipeline, url = app
    c = Client(url, verbose=False)
    q = "How many projectiles did Gazan fighters launch during the 2023 conflict?"
    # a filter that excludes the only article with the answer: the same abstention as direct
    direct = pipeline.ask(q, until="2022-12-31")
    assert direct.abstained
    assert c.predict(q, until="2022-12-31", api_name="/chat") == direct.answer
    # k and a source filter pass through
    assert c.predict(q, sources=["003_95e71b640879a191.txt"], k=3, api_name="/chat") == pipeline.ask(
        q, k=3, sources=("003_95e71b640879a191.txt",)).answer
    # history is the user's earlier questions
    follow = "How many of them were intercepted?"
    assert c.predict(follow, history=[q], api_name="/chat") == pipeline.ask(follow, history=[q]).answer
    full = c.predict(q, api_name="/ask")
    assert "866" in full["answer"] and full["citations"][0]["source"] == "003_95e71b640879a191.txt"
