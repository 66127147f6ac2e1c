"""rag.answering.llm: marker parsing, the support test, the grounding check and fallbacks with fake chat
models (fast); the packaged model through llama-cpp-python and through its OpenAI-compatible
server (slow, marked ``slow`` and ``llm``)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.answering.llm import answer as La
from rag.answering.llm import markers as Lk
from rag.answering.llm import model as Lm
from rag.answering.llm import prompt as Lp
from rag.answering.llm import support as Ls
from rag.errors import BadInputError, RagError
from index.ingest import parse_article
from rag.types import Answer, Passage

ROOT = Path(__file__).resolve().parents[3]

TEXT_A = (
    "Israel Rejects Truce Offer\n\n"
    "On Wednesday night, Israel rejected a ceasefire offer from Hamas. The cabinet then voted to "
    "escalate the attacks indefinitely. At least 83 Palestinians have been killed, including 17 children.\n"
)
TEXT_B = (
    "Rockets Hit Ashdod\n\n"
    "The Iron Dome system destroyed 51 incoming projectiles on Tuesday. Ashdod is a port city with "
    "around 200,000 inhabitants.\n"
)


def _passage(article, rank: int, first: str) -> Passage:
    start = article.text.index(first)
    end = len(article.text.rstrip("\n"))
    return Passage(rank, article.doc_id, article.source, start, end, article.text[start:end], 1.0 / rank)


@pytest.fixture()
def corpus():
    a = parse_article(TEXT_A, "a.txt")
    b = parse_article(TEXT_B, "b.txt")
    passages = [_passage(b, 1, "The Iron Dome"), _passage(a, 2, "On Wednesday")]
    return {a.doc_id: a, b.doc_id: b}, passages, a, b


def _fallback(question: str, abstained: bool = False) -> Answer:
    if abstained:
        return Answer(question=question, answer="No article answers this.", abstained=True, note="no evidence")
    return Answer(question=question, answer="Israel rejected a ceasefire offer from Hamas.", abstained=False)


def _fake(text: str):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=[text])


def _assert_citations_valid(ans: Answer, articles) -> None:
    assert [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    for c in ans.citations:
        assert articles[c.doc_id].text[c.start : c.end] == c.quote
        assert c.quote.strip()
    import re

    used = {int(k) for k in re.findall(r"\[(\d+)\]", ans.answer)}
    assert used == {c.n for c in ans.citations}


# ---------------------------------------------------------------- markers and sentences


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("Israel rejected the offer [1].", ("Israel rejected the offer.", [1])),
        ("It rose [2][1] and fell [2].", ("It rose and fell.", [2, 1])),
        ("Both said so [1, 3].", ("Both said so.", [1, 3])),
        ("Range [1-3].", ("Range.", [1, 2, 3])),
        ("Named [Passage 2] and [passage 1].", ("Named and.", [2, 1])),
        ("No marker here.", ("No marker here.", [])),
        ("Not a marker [a] or [].", ("Not a marker [a] or [].", [])),
    ],
)
def test_parse_markers(sentence, expected):
    assert Lk.parse_markers(sentence) == expected


def test_split_answer_keeps_markers_with_their_sentence():
    assert Lk.split_answer("Israel rejected the offer [1]. Gantz said no.[2] The U.S. backed it. [3]") == [
        "Israel rejected the offer [1].",
        "Gantz said no.[2]",
        "The U.S. backed it. [3]",
    ]
    assert Lk.split_answer("Answer: One thing [1].\n- Another [2].\n\n") == ["One thing [1].", "Another [2]."]
    assert Lk.split_answer("Dr. Smith spoke on Nov. 20 in Gaza [1].") == ["Dr. Smith spoke on Nov. 20 in Gaza [1]."]
    assert Lk.split_answer("   ") == []


def test_render_and_renumber():
    assert Lk.render_sentence("Israel rejected the offer.", [1, 2]) == "Israel rejected the offer [1][2]."
    assert Lk.render_sentence("No end date", [2]) == "No end date [2]."
    assert Lk.render_sentence("He said “no.”", [1]) == "He said “no.” [1]"
    assert Lk.render_sentence("Plain.", []) == "Plain."
    assert Lk.renumber([[3], [1, 3], [2]]) == ([[1], [2, 1], [3]], {3: 1, 1: 2, 2: 3})
    assert Lk.renumber([]) == ([], {})


def test_drop_out_of_range():
    assert Lk.drop_out_of_range([1, 5, 2, 0], 2) == ([1, 2], [5, 0])
    assert Lk.drop_out_of_range([], 3) == ([], [])


def test_is_abstention():
    assert Lk.is_abstention("The articles don't say.")
    assert Lk.is_abstention("The articles don’t say. [1]")
    assert Lk.is_abstention("The passages do not mention the date.")
    assert not Lk.is_abstention("Israel said the articles were wrong.")


# ---------------------------------------------------------------- the support test

EVIDENCE = [
    "On Wednesday night, Israel rejected a ceasefire offer from Hamas.",
    "The cabinet then voted to escalate the attacks indefinitely.",
    "At least 83 Palestinians have been killed, including 17 children.",
]


def test_support_paraphrase_and_numbers():
    s = Ls.check_support("Israel rejected the Hamas ceasefire offer [1].", EVIDENCE)
    assert s == Ls.Support(True, 1.0, 0)
    assert Ls.supports("At least 83 Palestinians were killed, 17 of them children.", EVIDENCE)
    assert Ls.supports("Seventeen children were among the 83 Palestinians killed.", EVIDENCE)


def test_support_rejects_wrong_number_and_unknown_name():
    s = Ls.check_support("At least 85 Palestinians have been killed.", EVIDENCE)
    assert (s.supported, s.missing_numbers) == (False, ("85",))
    s = Ls.check_support("Netanyahu rejected a ceasefire offer from Hamas.", EVIDENCE)
    assert (s.supported, s.missing_names) == (False, ("netanyahu",))


def test_support_threshold_and_empty():
    s = Ls.check_support("Israel rejected a peace plan and closed borders.", EVIDENCE)
    assert not s.supported and s.score == 0.3333  # israel, reject of israel/reject/peace/plan/clos/border
    assert Ls.supports("Israel rejected a peace plan and closed borders.", EVIDENCE, threshold=0.33)
    assert Ls.check_support("It is so.", EVIDENCE) == Ls.Support(False, 0.0, -1)
    # two consecutive evidence sentences together may support one claim
    assert Ls.supports("Israel rejected the offer and voted to escalate the attacks.", EVIDENCE)
    # a plain string is split into sentences; markers in the claim are ignored
    assert Ls.supports("The cabinet voted to escalate the attacks [7].", " ".join(EVIDENCE))


# ---------------------------------------------------------------- checking whole answers

Q = "What did Israel do with the Hamas ceasefire offer?"


def test_llm_answer_keeps_supported_sentences_and_renumbers(corpus):
    articles, passages, a, b = corpus
    raw = (
        "Israel rejected the Hamas ceasefire offer [2]. The cabinet voted to escalate the attacks [2]. "
        "Egypt brokered a truce on Friday [1]."
    )
    ans = La.llm_answer(Q, passages, articles, _fake(raw), _fallback(Q))
    assert ans.mode == "llm" and not ans.abstained
    assert ans.answer == (
        "Israel rejected the Hamas ceasefire offer [1]. The cabinet voted to escalate the attacks [1]."
    )
    assert ans.note == "llm: 2 sentences kept, 1 removed as unsupported"
    assert len(ans.citations) == 1
    c = ans.citations[0]
    assert (c.n, c.doc_id, c.source, c.title) == (1, a.doc_id, "a.txt", "Israel Rejects Truce Offer")
    assert c.quote == "On Wednesday night, Israel rejected a ceasefire offer from Hamas."
    assert ans.passages == tuple(passages)
    _assert_citations_valid(ans, articles)


def test_two_passages_cited_in_order_of_use(corpus):
    articles, passages, a, b = corpus
    raw = "Israel rejected a ceasefire offer from Hamas [2]. Iron Dome destroyed 51 projectiles [1]."
    ans = La.llm_answer(Q, passages, articles, _fake(raw), _fallback(Q))
    assert ans.answer == (
        "Israel rejected a ceasefire offer from Hamas [1]. Iron Dome destroyed 51 projectiles [2]."
    )
    assert [c.source for c in ans.citations] == ["a.txt", "b.txt"]
    assert ans.citations[1].quote == "The Iron Dome system destroyed 51 incoming projectiles on Tuesday."
    assert ans.note == "llm: 2 sentences kept"
    _assert_citations_valid(ans, articles)


def test_wrong_citation_is_removed_not_reattributed(corpus):
    articles, passages, a, b = corpus
    q = "How many people were killed?"
    raw = "Iron Dome killed 51 people [2]. At least 83 Palestinians were killed [2]."
    ans = La.llm_answer(q, passages, articles, _fake(raw), _fallback(q))
    assert ans.answer == "At least 83 Palestinians were killed [1]."
    assert ans.citations[0].quote == "At least 83 Palestinians have been killed, including 17 children."
    assert ans.note == "llm: 1 sentence kept, 1 removed as unsupported"
    # the right fact under the wrong passage number is removed, not moved to the right passage
    raw = "At least 83 Palestinians were killed [1]."
    ans = La.llm_answer(q, passages, articles, _fake(raw), _fallback(q))
    assert ans.mode == "llm-fallback"
    assert ans.note == "llm: 0 sentences kept, 1 removed as unsupported; showing the extractive answer"
    # ... unless asked to re-attribute it to the passage that does support it
    ans = La.check_llm_answer(q, raw, passages, articles, _fallback(q), reattribute=True)
    assert (ans.mode, ans.answer) == ("llm", "At least 83 Palestinians were killed [1].")
    assert ans.citations[0].source == "a.txt"
    assert ans.note == "llm: 1 sentence kept, 1 sentence moved to the passage that supports it"


def test_supported_but_unrelated_copy_falls_back(corpus):
    articles, passages, a, b = corpus
    q = "Who won the Eurovision song contest?"
    raw = "The Iron Dome system destroyed 51 incoming projectiles on Tuesday."
    fb = _fallback(q, abstained=True)
    ans = La.llm_answer(q, passages, articles, _fake(raw), fb)
    assert (ans.mode, ans.abstained, ans.answer) == ("llm-fallback", True, fb.answer)
    assert ans.note == (
        "llm: 1 sentence kept, 1 uncited sentence cited to its best passage, but none of them shares "
        "a content word with the question; showing the extractive answer (no evidence)"
    )
    assert Ls.addresses_question(q, ["Eurovision was won by Sweden [1]."])
    assert not Ls.addresses_question(q, ["Iron Dome destroyed 51 projectiles."])


def test_out_of_range_markers_dropped_and_uncited_sentence_attributed(corpus):
    articles, passages, a, b = corpus
    raw = "Israel rejected a ceasefire offer from Hamas [5]. Ashdod has around 200,000 inhabitants [1][9]."
    ans = La.llm_answer(Q, passages, articles, _fake(raw), _fallback(Q))
    assert ans.mode == "llm"
    assert ans.answer == (
        "Israel rejected a ceasefire offer from Hamas [1]. Ashdod has around 200,000 inhabitants [2]."
    )
    assert [c.source for c in ans.citations] == ["a.txt", "b.txt"]
    assert ans.note == (
        "llm: 2 sentences kept, 2 markers to passages not given dropped, "
        "1 uncited sentence cited to its best passage"
    )
    _assert_citations_valid(ans, articles)


def test_nothing_supported_falls_back(corpus):
    articles, passages, a, b = corpus
    fb = _fallback(Q)
    ans = La.llm_answer(Q, passages, articles, _fake("Egypt brokered a truce on Friday [1]. Talks continue [7]."), fb)
    assert ans.mode == "llm-fallback"
    assert (ans.answer, ans.abstained, ans.citations) == (fb.answer, False, fb.citations)
    assert ans.note == (
        "llm: 0 sentences kept, 2 removed as unsupported, 1 marker to passages not given dropped; "
        "showing the extractive answer"
    )


def test_abstention_kept_only_when_extractive_abstained(corpus):
    articles, passages, a, b = corpus
    q = "Who won the election?"
    ans = La.llm_answer(q, passages, articles, _fake("The articles don't say."), _fallback(q, abstained=True))
    assert (ans.mode, ans.abstained, ans.answer, ans.citations) == ("llm", True, "The articles don't say.", ())
    assert ans.note == "llm: the model abstained, and so did the extractive reader (no evidence)"

    fb = _fallback(Q)
    ans = La.llm_answer(Q, passages, articles, _fake("The articles don't say."), fb)
    assert (ans.mode, ans.answer, ans.abstained) == ("llm-fallback", fb.answer, False)
    assert ans.note == (
        "llm: the model abstained but the extractive reader found an answer; showing the extractive answer"
    )


def test_hedge_sentence_dropped_from_mixed_answer(corpus):
    articles, passages, a, b = corpus
    raw = "The articles don't say why. Israel rejected a ceasefire offer from Hamas [2]."
    ans = La.llm_answer(Q, passages, articles, _fake(raw), _fallback(Q))
    assert ans.answer == "Israel rejected a ceasefire offer from Hamas [1]."
    assert ans.note == "llm: 1 sentence kept, 1 hedge (\"The articles don't say.\") dropped"


def test_model_error_and_no_passages_fall_back(corpus):
    articles, passages, a, b = corpus

    class Broken:
        def invoke(self, messages):
            raise ConnectionError("server down")

        def stream(self, messages):
            yield from ()
            raise ConnectionError("server down")

    fb = _fallback(Q)
    ans = La.llm_answer(Q, passages, articles, Broken(), fb)
    assert ans.mode == "llm-fallback" and ans.answer == fb.answer
    assert ans.note == "llm: the model failed (ConnectionError: server down); showing the extractive answer"
    out = list(La.stream_llm_answer(Q, passages, articles, Broken(), fb))
    assert len(out) == 1 and out[0].mode == "llm-fallback"
    ans = La.llm_answer(Q, [], articles, _fake("anything [1]."), fb)
    assert ans.mode == "llm-fallback" and ans.note == "llm: no passages to answer from; showing the extractive answer"


def test_stream_yields_deltas_then_the_checked_answer(corpus):
    articles, passages, a, b = corpus
    raw = "Israel rejected a ceasefire offer from Hamas [2]. Mars is red [1]."
    out = list(La.stream_llm_answer(Q, passages, articles, _fake(raw), _fallback(Q)))
    *deltas, final = out
    assert all(isinstance(d, str) for d in deltas) and "".join(deltas) == raw
    assert isinstance(final, Answer)
    whole = La.llm_answer(Q, passages, articles, _fake(raw), _fallback(Q))
    assert (final.answer, final.citations, final.note, final.mode) == (
        whole.answer, whole.citations, whole.note, whole.mode,
    )
    assert final.answer == "Israel rejected a ceasefire offer from Hamas [1]."


def test_prompt_numbers_passages_with_titles(corpus):
    articles, passages, a, b = corpus
    msgs = Lp.build_messages(Q, passages, articles)
    assert [m.type for m in msgs] == ["system", "human", "ai", "human"]  # one worked example
    system, user = msgs[0], msgs[-1]
    assert "The articles don't say." in system.content
    assert user.content.startswith(
        f'Question: {Q}\n\nPassages:\n\n[1] From the article "Rockets Hit Ashdod":\nThe Iron Dome system destroyed'
    )
    assert '[2] From the article "Israel Rejects Truce Offer":\nOn Wednesday night' in user.content
    assert user.content.endswith(f"Question: {Q}\n\n{Lp.REMINDER}")


# ---------------------------------------------------------------- chat model factory (no model)


def test_make_chat_model_rejects_unknown_kind():
    with pytest.raises(BadInputError, match="unknown chat model kind"):
        Lm.make_chat_model("gpt")


def test_make_chat_model_openai_reads_env(monkeypatch):
    pytest.importorskip("langchain_openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NEWSRAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("NEWSRAG_LLM_MODEL", "qwen")
    m = Lm.make_chat_model("openai", max_tokens=64)
    assert (m.model_name, m.openai_api_base, m.max_tokens, m.temperature) == ("qwen", "http://127.0.0.1:9/v1", 64, 0.0)
    assert m.openai_api_key.get_secret_value() == "sk-no-key-needed"
    monkeypatch.setenv("NEWSRAG_LLM_KIND", "openai")
    assert type(Lm.chat_model_from_env()).__name__ == "ChatOpenAI"
    monkeypatch.delenv("NEWSRAG_LLM_BASE_URL")
    with pytest.raises(BadInputError, match="OPENAI_API_KEY"):
        Lm.make_chat_model("openai")


def test_local_chat_model_generates_and_streams_with_a_fake_llama(monkeypatch):
    class FakeLlama:
        def __init__(self):
            self.calls = []

        def create_chat_completion(self, messages, stream=False, **kw):
            self.calls.append((messages, stream, kw))
            if not stream:
                return {"choices": [{"message": {"content": "Yes [1]."}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
            return iter([{"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}]
                        + [{"choices": [{"delta": {"content": t}, "finish_reason": None}]} for t in ("Yes", " [1].")]
                        + [{"choices": [{"delta": {}, "finish_reason": "stop"}]}])

    import threading

    fake = FakeLlama()
    monkeypatch.setattr(Lm, "_load_llama", lambda *a: (fake, threading.Lock()))
    model = Lm.local_chat_model_class()(model_path="/nonexistent.gguf", max_tokens=32)
    from langchain_core.messages import HumanMessage, SystemMessage

    msg = model.invoke([SystemMessage(content="sys"), HumanMessage(content="q")])
    assert msg.content == "Yes [1]." and msg.usage_metadata["total_tokens"] == 8
    assert fake.calls[0] == (
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}], False,
        {"temperature": 0.0, "max_tokens": 32},
    )
    chunks = [c.content for c in model.stream("q")]
    assert "".join(chunks) == "Yes [1]." and chunks[:2] == ["Yes", " [1]."]


# ---------------------------------------------------------------- the packaged model file (tiny fake parts)


@pytest.fixture()
def fake_parts(tmp_path, monkeypatch):
    data = [b"GGUF" + bytes(range(40)), b"second part", b"third"]
    names = []
    for i, blob in enumerate(data, 1):
        pkg = tmp_path / "site" / f"fake_model_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
        names.append(f"fake_model_part{i}")
    joined = b"".join(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(Lm, "MODEL_PACKAGES", tuple(names))
    monkeypatch.setattr(Lm, "MODEL_PART_FILES", tuple(f"part{i:02d}.bin" for i in range(1, 4)))
    monkeypatch.setattr(Lm, "MODEL_SIZE", len(joined))
    monkeypatch.setattr(Lm, "MODEL_SHA256", hashlib.sha256(joined).hexdigest())
    monkeypatch.setattr(Lm, "_verified", set())
    return joined, tmp_path


def test_packaged_model_path_joins_once_and_reuses(fake_parts, monkeypatch):
    joined, tmp = fake_parts
    cache = tmp / "cache"
    p = Lm.packaged_model_path(cache)
    assert p == cache / Lm.MODEL_FILENAME and p.read_bytes() == joined
    assert [x.name for x in cache.iterdir()] == [Lm.MODEL_FILENAME]  # no temp file left
    mtime = p.stat().st_mtime_ns
    assert Lm.packaged_model_path(cache) == p and p.stat().st_mtime_ns == mtime
    # the env var sets the default folder
    monkeypatch.setenv("NEWSRAG_CACHE", str(tmp / "envcache"))
    assert Lm.packaged_model_path() == tmp / "envcache" / Lm.MODEL_FILENAME


def test_packaged_model_path_rebuilds_a_corrupt_cache(fake_parts):
    joined, tmp = fake_parts
    cache = tmp / "cache"
    cache.mkdir()
    (cache / Lm.MODEL_FILENAME).write_bytes(b"x" * len(joined))  # right size, wrong content
    assert Lm.packaged_model_path(cache).read_bytes() == joined


def test_packaged_model_path_errors(fake_parts, monkeypatch):
    joined, tmp = fake_parts
    monkeypatch.setattr(Lm, "MODEL_SHA256", "0" * 64)
    with pytest.raises(RagError, match="expected 0000"):
        Lm.packaged_model_path(tmp / "c1")
    assert list((tmp / "c1").iterdir()) == []
    monkeypatch.setattr(Lm, "MODEL_PACKAGES", Lm.MODEL_PACKAGES[:2] + ("no_such_model_part3",))
    with pytest.raises(RagError, match=r"package no-such-model-part3 is not installed\): pip install -e \.\[llm\]"):
        Lm.packaged_model_path(tmp / "c2")


def test_import_loads_nothing_heavy():
    code = "import sys, rag.answering.llm; print(sorted(m for m in ('llama_cpp', 'langchain_openai', 'openai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- the real model (slow)


def _require_model() -> Path:
    pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed or not loadable (pip install -e .[llm])",
        exc_type=ImportError,
    )
    for pkg in Lm.MODEL_PACKAGES:
        pytest.importorskip(
            pkg, reason=f"model package {pkg} is not installed (pip install -e .[llm])", exc_type=ImportError
        )
    return Lm.packaged_model_path()


def _real_case():
    from index.ingest import read_article

    a = read_article(ROOT / "articles" / "002_68a0928ee0260f57.txt")
    b = read_article(ROOT / "articles" / "001_2553db7c481c0c1a.txt")

    def passage(art, rank, first, last):
        s = art.text.index(first)
        e = art.text.index(last) + len(last)
        return Passage(rank, art.doc_id, art.source, s, e, art.text[s:e], 1.0)

    passages = [
        passage(b, 1, "Tuesday’s developments", "200,000 inhabitants."),
        passage(a, 2, "On Wednesday night", "continue bombing Gaza."),
    ]
    q = "Did Israel accept the ceasefire offer from Hamas?"
    fb = Answer(question=q, answer="Israel rejected a ceasefire offer from Hamas.", abstained=False)
    return q, passages, {a.doc_id: a, b.doc_id: b}, fb


def _check_real(ans: Answer, articles, fb: Answer) -> None:
    assert ans.mode in ("llm", "llm-fallback"), ans
    if ans.mode == "llm":
        assert ans.answer and not ans.abstained and ans.citations
        _assert_citations_valid(ans, articles)
        assert ans.note.startswith("llm: ")
    else:
        assert ans.answer == fb.answer


@pytest.mark.slow
@pytest.mark.llm
def test_local_model_answers_with_valid_citations_or_falls_back():
    path = _require_model()
    model = Lm.make_chat_model("local", model_path=path)
    q, passages, articles, fb = _real_case()
    ans = La.llm_answer(q, passages, articles, model, fb)
    _check_real(ans, articles, fb)
    *deltas, final = list(La.stream_llm_answer(q, passages, articles, model, fb))
    assert deltas and all(isinstance(d, str) for d in deltas)
    _check_real(final, articles, fb)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def llama_server(tmp_path):
    path = _require_model()
    for mod in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        pytest.importorskip(mod, reason=f"{mod} is missing: the server needs llama-cpp-python[server]")
    port = _free_port()
    log = tmp_path / "llama_server.log"  # a file, not a pipe: a full pipe would block the server
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer /v1/models within 300 s: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.llm
def test_openai_kind_through_llama_cpp_server(llama_server, monkeypatch):
    pytest.importorskip("langchain_openai", reason="langchain-openai is not installed (pip install -e .[llm])")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = Lm.make_chat_model("openai", base_url=llama_server)
    q, passages, articles, fb = _real_case()
    ans = La.llm_answer(q, passages, articles, model, fb)
    assert not (ans.note or "").startswith("llm: the model failed"), ans.note
    _check_real(ans, articles, fb)
    *deltas, final = list(La.stream_llm_answer(q, passages, articles, model, fb))
    assert deltas
    _check_real(final, articles, fb)
