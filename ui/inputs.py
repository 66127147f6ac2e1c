"""Checks on what a person (or an API client) typed, before the pipeline sees it: each problem
becomes one sentence that names the field it is about, in the words the page uses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from typing import Any

from rag import settings as C
from rag.types import Request

DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2})?)?")
K_MIN, K_MAX = 1, 10  # the page's slider range; the API takes the same


class FieldError(ValueError):
    """A bad value in one field; ``str(e)`` is the message to show."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_question(question: Any) -> str:
    q = " ".join(str(question or "").split())
    if not q:
        raise FieldError("question", "Type a question first.")
    return q


def check_date(value: Any, label: str) -> str | None:
    """``value`` as YYYY-MM-DD, or None when empty."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # a timestamp from a date picker
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).date().isoformat()
    text = str(value).strip()
    if not text:
        return None
    m = DATE.fullmatch(text)
    if m:
        try:
            return dt.date.fromisoformat(m.group(1)).isoformat()
        except ValueError:
            pass
    return _bad_date(text, label)


def _bad_date(text: str, label: str) -> str:
    raise FieldError(label.lower(), f"The “{label}” date “{text}” is not a real date; pick a day in the calendar "
                                    "or type it as YYYY-MM-DD (for example 2023-05-09).")


def check_k(value: Any) -> int:
    """The number of passages to retrieve: a whole number from 1 to 10 (empty: the default)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return C.DEFAULT_K
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if isinstance(value, bool) or not f.is_integer() or not K_MIN <= f <= K_MAX:
        raise FieldError("k", f"“Passages to retrieve (k)” must be a whole number from {K_MIN} to {K_MAX}; "
                              f"it is {value!r}.")
    return int(f)


def check_sources(value: Any, known: Collection[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    unknown = [s for s in items if s not in known]
    if unknown:
        raise FieldError("sources", f"“Only these articles”: no indexed article is named {', '.join(map(str, unknown))}; "
                                    "see the Documents tab.")
    return tuple(items)


def check_request(
    question: Any, history: Sequence[str], since: Any, until: Any, sources: Any, k: Any, mode: Any,
    known_sources: Collection[str],
) -> Request:
    """A Request from the page's (or the API's) fields, or FieldError naming the first bad field."""
    q = check_question(question)
    s, u = check_date(since, "Since"), check_date(until, "Until")
    if s and u and s > u:
        raise FieldError("since", f"The “Since” date ({s}) is after the “Until” date ({u}); swap them or clear one.")
    return Request(q, tuple(history or ()), check_k(k), s, u, check_sources(sources, known_sources),
                   str(mode or "extractive"))
