"""Reading article files into ``Article`` objects: decoding checks, front matter and sidecar
metadata, title/date/author extraction and sentence spans."""

from __future__ import annotations

import codecs
import errno
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date as _date
from pathlib import Path

from index import lexicon
from rag.errors import ArticleError, BadInputError, EmptyCorpusError
from index.sentences import find_debris, lines, sentence_spans
from rag.types import Article, Span, content_hash

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")
MAX_BYTES = 50 * 1024 * 1024  # one article; larger files are refused, not read into memory

MONTHS = lexicon.month_numbers()  # name or abbreviation -> 1..12
_MONTH_RE = "(" + lexicon.alternation(sorted(MONTHS, key=len, reverse=True)) + r")\.?"  # longest first
DATE_MDY = re.compile(_MONTH_RE + r"\s+(\d{1,2}),?\s+(\d{4})")
DATE_DMY = re.compile(r"\b(\d{1,2})\s+" + _MONTH_RE + r",?\s+(\d{4})")
BYLINE = re.compile(r"^\s*(?:By|Author:)\s+([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){0,3})")
BIO = re.compile(
    r"^([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,3}) is (?:the|a|an) [^.]*?"
    r"(?:correspondent|editor|reporter|writer|journalist|columnist)"
)
CAPTION_HINT = re.compile(r"\((?:AP|AFP|Reuters|photo credit|[^)]*/)[^)]*\)\s*$|\bPhoto\b", re.I)
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
META_KEYS = ("title", "date", "author")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Corpus:
    """The result of collecting articles: what was read, what was skipped and why, and which
    files were the same article under another name."""

    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (dup, kept)


def parse_date(s: str) -> str | None:
    """An ISO date from 'November 21, 2012', 'Nov. 21 2012', '21 November 2012' or ISO."""
    s = s.strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", s)
    if m:
        y, mo, d = map(int, m.groups())
    else:
        m = DATE_MDY.search(s)
        if m:
            mo, d, y = MONTHS[m.group(1).lower().rstrip(".")], int(m.group(2)), int(m.group(3))
        else:
            m = DATE_DMY.search(s)
            if not m:
                return None
            d, mo, y = int(m.group(1)), MONTHS[m.group(2).lower().rstrip(".")], int(m.group(3))
    try:
        return _date(y, mo, d).isoformat()
    except ValueError:
        return None


def find_date(text: str, body: list[Span]) -> tuple[str | None, str | None]:
    """The publication date where the text states it: a byline first, then a photo caption.
    Dates in the running text may be history (\"Cast Lead began December 27, 2008\"), so they
    are not used: better empty than wrong."""
    for kind in ("byline", "caption"):
        for sp in body:
            line = text[sp.start : sp.end]
            is_byline = bool(BYLINE.match(line)) or ("|" in line and len(line) < 200)
            if kind == "byline" and not is_byline:
                continue
            if kind == "caption" and not CAPTION_HINT.search(line):
                continue
            for m in list(DATE_MDY.finditer(line)) + list(DATE_DMY.finditer(line)):
                iso = parse_date(m.group(0))
                if iso:
                    return iso, kind
    return None, None


def find_author(text: str, body: list[Span]) -> str | None:
    for sp in body:
        line = text[sp.start : sp.end]
        m = BYLINE.match(line)
        if m:
            return m.group(1).strip()
    for sp in body:
        m = BIO.match(text[sp.start : sp.end])
        if m:
            return m.group(1).strip()
    return None


def parse_front_matter(text: str) -> tuple[dict[str, str], int]:
    """Simple 'key: value' front matter between --- lines; returns (meta, body offset)."""
    m = FRONT_MATTER.match(text)
    if not m:
        return {}, 0
    meta = {}
    for line in m.group(1).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            meta[k.strip().lower()] = v.strip().strip("\"'")
    return meta, m.end()


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def read_sidecar(path: Path) -> dict[str, str]:
    side = sidecar_path(path)
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArticleError(str(side), f"metadata file is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ArticleError(str(side), "metadata file must hold a JSON object")
    return {k: str(v) for k, v in data.items() if k in META_KEYS and v is not None}


def _looks_utf16(raw: bytes) -> bool:
    """UTF-16 without a byte-order mark: in ASCII-heavy text every other byte is NUL."""
    head = raw[:8192]
    if len(head) < 4:
        return False
    even, odd = head[0::2], head[1::2]
    zeros = sorted((even.count(0) / len(even), odd.count(0) / len(odd)))
    return zeros[1] > 0.4 and zeros[0] < 0.05


def decode(raw: bytes, name: str) -> str:
    """UTF-8 (a byte-order mark is dropped), or UTF-16 with a byte-order mark."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as e:
            raise ArticleError(name, f"UTF-16 text with a bad byte at offset {e.start}") from e
    elif b"\x00" in raw[:8192]:
        if _looks_utf16(raw):
            raise ArticleError(name, "UTF-16 text without a byte-order mark: save it as UTF-8")
        raise ArticleError(name, "binary file (NUL bytes), not text")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ArticleError(name, f"not UTF-8 text (bad byte at offset {e.start})") from e
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ArticleError(name, "empty file")
    if not any(_visible(ch) for ch in text):
        raise ArticleError(name, "empty file: only invisible characters (zero-width spaces and the like)")
    return text


def _visible(ch: str) -> bool:
    """Not white space and not an invisible format character (zero-width space, joiners, BOM)."""
    return not ch.isspace() and unicodedata.category(ch) != "Cf"


def parse_article(text: str, source: str, meta: dict[str, str] | None = None) -> Article:
    """Build an Article from decoded text. Explicit metadata (front matter, then ``meta``) wins
    over what is extracted."""
    fm, body_start = parse_front_matter(text)
    given = {**fm, **(meta or {})}
    debris = find_debris(text, body_start)
    debris_set = {(d.start, d.end) for d in debris}
    body = [sp for sp in lines(text) if sp.end > body_start and (sp.start, sp.end) not in debris_set]
    if not body:
        raise ArticleError(source, "no text besides metadata and page furniture")
    title = given.get("title") or text[body[0].start : body[0].end]
    if given.get("date"):
        date = parse_date(given["date"])
        if date is None:
            raise ArticleError(source, f"metadata date {given['date']!r} is not a date (use YYYY-MM-DD)")
        date_found = "metadata"
    else:
        date, date_found = find_date(text, body)
    author = given.get("author") or find_author(text, body)
    return Article(
        doc_id=content_hash(text),
        source=source,
        text=text,
        title=title.strip(),
        date=date,
        date_found=date_found,
        author=author,
        sentences=tuple(sentence_spans(text, debris, body_start)),
        debris=tuple(debris),
    )


def read_article(path: Path, source: str | None = None) -> Article:
    """Read one .txt/.md file. Raises ArticleError with the file name and reason."""
    name = source or path.name
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ArticleError(
                name, f"file is {size:,} bytes ({size / 2**20:.2f} MiB); the limit is {MAX_BYTES:,} bytes "
                f"({MAX_BYTES / 2**20:.0f} MiB)"
            )
        raw = path.read_bytes()
    except OSError as e:
        raise ArticleError(name, f"cannot read ({e.strerror})") from e
    return parse_article(decode(raw, name), name, read_sidecar(path))


def _link_problem(p: Path) -> str | None:
    """Why a path that is a symbolic link cannot be followed, or None."""
    if not p.is_symlink():
        return None
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop (the link leads back to itself)"
        return f"broken symlink (it points to {os.readlink(p)}, which does not exist)"
    return None


def iter_files(paths: Iterable[Path], skipped: list[Skipped] | None = None) -> Iterator[Path]:
    """The files at ``paths`` (folders walked, sorted). A folder or file that cannot be read
    is appended to ``skipped`` with the reason, and the walk goes on."""
    skipped = skipped if skipped is not None else []
    for p in paths:
        problem = _link_problem(p)
        if problem:
            raise BadInputError(f"{p}: {problem}")
        if not p.exists():
            raise BadInputError(f"{p}: no such file or folder")
        if p.is_dir():
            yield from _walk(p, skipped)
        else:
            yield p


def _walk(root: Path, skipped: list[Skipped]) -> list[Path]:
    def unreadable(e: OSError) -> None:
        skipped.append(Skipped(str(e.filename), f"cannot read the folder ({e.strerror}); skipped"))

    found = []
    for folder, _, names in os.walk(root, onerror=unreadable):
        for n in names:
            f = Path(folder, n)
            if f.suffix.lower() not in SUFFIXES or n.startswith("."):
                continue
            try:
                if f.is_file():
                    found.append(f)
                elif _link_problem(f):
                    skipped.append(Skipped(str(f), _link_problem(f)))
            except OSError as e:  # e.g. a folder that can be listed but not entered
                skipped.append(Skipped(str(f), f"cannot read ({e.strerror})"))
    return sorted(found)


def read_or_error(path: Path) -> Article | ArticleError:
    try:
        return read_article(path)
    except ArticleError as e:
        return e


def collect(
    paths: Iterable[Path | str],
    read_all: Callable[[list[Path]], Iterable[Article | ArticleError]] | None = None,
) -> Corpus:
    """Read every article under the given files/folders. Unreadable files are skipped (with
    the reason); the same text under two names is kept once. Raises EmptyCorpusError when
    nothing readable is left. ``read_all`` reads a list of files (default: one by one here;
    ``index.ray_ingest`` reads them on Ray workers)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise BadInputError("no article paths given")
    corpus = Corpus()
    by_hash: dict[str, str] = {}
    seen_sources: set[str] = set()
    files = list(iter_files(paths, corpus.skipped))
    readable = [f for f in files if f.suffix.lower() in SUFFIXES]
    results = dict(zip(readable, (read_all or (lambda fs: map(read_or_error, fs)))(readable)))
    for f in files:
        source = f.name
        if f.suffix.lower() not in SUFFIXES:
            corpus.skipped.append(Skipped(str(f), "not a .txt or .md file"))
            continue
        if source in seen_sources:
            corpus.skipped.append(Skipped(str(f), f"another file is already named {source}"))
            continue
        art = results[f]
        if isinstance(art, ArticleError):
            log.warning("skipped %s: %s", f, art.reason)
            corpus.skipped.append(Skipped(str(f), art.reason))
            continue
        if art.doc_id in by_hash:
            corpus.duplicates.append((source, by_hash[art.doc_id]))
            continue
        by_hash[art.doc_id] = source
        seen_sources.add(source)
        corpus.articles.append(art)
    if not corpus.articles:
        why = "; ".join(f"{s.path}: {s.reason}" for s in corpus.skipped[:5])
        where = ", ".join(str(p) for p in paths)
        raise EmptyCorpusError(f"no readable .txt or .md article in {where}" + (f" ({why})" if why else ""))
    return corpus
