"""Language data as files, one copy each, read once: ``index/lexicon/<lang>/<name>.txt``.

A file holds one entry a line; ``#`` starts a comment line. ``rows`` gives each line's
white-space separated fields, ``words`` every field as one set, ``table`` the first field mapped
to the second (``number_words``: word -> value)."""

from __future__ import annotations

import functools
from pathlib import Path

LEXICON_DIR = Path(__file__).resolve().parent
DEFAULT_LANGUAGE = "en"


@functools.cache
def rows(name: str, lang: str = DEFAULT_LANGUAGE) -> tuple[tuple[str, ...], ...]:
    path = LEXICON_DIR / lang / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(tuple(line.split()) for line in lines if line.strip() and not line.lstrip().startswith("#"))


@functools.cache
def words(name: str, lang: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    return frozenset(w for row in rows(name, lang) for w in row)


@functools.cache
def table(name: str, lang: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    return {row[0]: row[1] for row in rows(name, lang) if len(row) > 1}


def number_values(*kinds: str, lang: str = DEFAULT_LANGUAGE) -> dict[str, int]:
    """Number word -> value, of the given kinds (cardinal, scale, ordinal; default all)."""
    return {row[0]: int(row[1]) for row in rows("number_words", lang) if not kinds or row[2] in kinds}


def month_names(lang: str = DEFAULT_LANGUAGE) -> tuple[str, ...]:
    """The twelve full month names, lower-case, in calendar order."""
    return tuple(row[0] for row in rows("months", lang))


def month_numbers(lang: str = DEFAULT_LANGUAGE) -> dict[str, int]:
    """Every month name and abbreviation, lower-case -> 1..12."""
    return {name: i for i, row in enumerate(rows("months", lang), start=1) for name in row}


def alternation(names, *, title: bool = True) -> str:
    """``January|February|…`` for a regular expression (title-cased unless told otherwise)."""
    return "|".join(n.title() if title else n for n in names)
