"""Markers and sentences of the model's answer (plain functions)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.sentences import ABBREVIATIONS

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
