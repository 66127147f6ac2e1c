"""Optional language-model answers, never at the cost of grounding.

A chat model (a local GGUF model through llama-cpp-python, or any OpenAI-compatible server) writes
a short answer from numbered passages with ``[n]`` markers (``prompt``). The answer is split into
sentences and markers (``markers``) and checked sentence by sentence against the passages it cites
with a plain lexical support test (``support``): a sentence whose content words, numbers and names
are not found in its cited passage is removed. When nothing supported is left, the extractive
answer is returned instead (``answer``; ``mode="llm-fallback"``). ``model`` makes the chat model
and assembles the packaged GGUF file.
"""

from rag.answering.llm.answer import check_llm_answer, llm_answer, stream_llm_answer
from rag.answering.llm.model import chat_model_from_env, make_chat_model

__all__ = ["check_llm_answer", "chat_model_from_env", "llm_answer", "make_chat_model", "stream_llm_answer"]
