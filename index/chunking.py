"""Sentence-aware chunking that fits the embedder's token window exactly (counted with the
model's own tokenizer), with sentence overlap; chunks never cross page debris."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.errors import ArticleError, BadInputError, RagError
from rag.types import Article, Chunk, Span, content_hash

CountTokens = Callable[[Sequence[str]], list[int]]
SPECIAL_TOKENS = 2  # [CLS] and [SEP]
CHARS_PER_TOKEN_GUESS = 8  # first window when cutting an over-long sentence (it doubles as needed)


@dataclass(frozen=True)
class ChunkSettings:
    target_tokens: int = 128  # MiniLM was trained on passages of up to 128 tokens
    max_tokens: int = 256  # the model's window, special tokens and header included
    overlap_sentences: int = 1

    def __post_init__(self):
        if self.target_tokens < 8:
            raise BadInputError(f"target_tokens must be at least 8. Currently, target_tokens is {self.target_tokens}")
        if self.max_tokens < self.target_tokens:
            raise BadInputError(
                f"max_tokens ({self.max_tokens}) must be at least target_tokens ({self.target_tokens})"
            )
        if self.overlap_sentences < 0:
            raise BadInputError(f"overlap_sentences must be 0 or more. Currently, it is {self.overlap_sentences}")


def chunk_header(article: Article) -> str:
    return f"{article.title} ({article.date})" if article.date else article.title


def _blocks(article: Article) -> list[list[int]]:
    """Runs of sentence indices not separated by debris."""
    blocks: list[list[int]] = [[]]
    debris = sorted(article.debris, key=lambda d: d.start)
    di = 0
    prev_end = None
    for i, s in enumerate(article.sentences):
        while di < len(debris) and debris[di].end <= s.start:
            if prev_end is not None and debris[di].start >= prev_end and blocks[-1]:
                blocks.append([])
            di += 1
        blocks[-1].append(i)
        prev_end = s.end
    return [b for b in blocks if b]


def _count(count_tokens: CountTokens, texts: list[str], batch: int = 2048) -> list[int]:
    out: list[int] = []
    for i in range(0, len(texts), batch):
        out.extend(count_tokens(texts[i : i + batch]))
    return out


def _split_long(article: Article, i: int, budget: int, count_tokens: CountTokens) -> list[Span]:
    """A sentence longer than the window is cut at white space into pieces that fit.

    Each piece is searched for in a window that starts at ``budget * CHARS_PER_TOKEN_GUESS``
    characters and doubles while it still fits, so the text the tokenizer sees per piece is a
    few times the piece, not the rest of the sentence: total work grows as the sentence's
    length times log(window), not as its square."""
    s = article.sentences[i]
    text = article.text
    pieces: list[Span] = []
    start = s.start
    while start < s.end:
        # gallop: the smallest window end (doubling) whose text no longer fits, or the sentence end
        width = max(64, budget * CHARS_PER_TOKEN_GUESS)
        fits_to = start
        while True:
            hi = min(s.end, start + width)
            if count_tokens([text[start:hi]])[0] > budget:
                break
            fits_to = hi
            if hi == s.end:
                break
            width *= 2
        best = fits_to if fits_to == s.end else (_longest_fit(text, start, fits_to, hi, budget, count_tokens) or fits_to)
        if best is None or best <= start:
            raise ArticleError(article.source, f"cannot fit the text at offset {start} into {budget} tokens")
        pieces.append(Span(start, best))
        start = best
        while start < s.end and text[start].isspace():
            start += 1
    return pieces


def _longest_fit(text: str, start: int, lo: int, hi: int, budget: int, count_tokens: CountTokens) -> int | None:
    """The end of the longest prefix of ``text[start:hi]``, cut at white space where there is
    some, that fits ``budget`` tokens (binary search; ``text[start:lo]`` is known to fit)."""
    best = None
    lo = max(lo, start + 1)
    while lo <= hi:
        mid = (lo + hi) // 2
        cut = text.rfind(" ", start, mid + 1)
        if cut <= start:
            cut = mid
        if count_tokens([text[start:cut]])[0] <= budget:
            best = cut
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def chunk_article(article: Article, count_tokens: CountTokens, settings: ChunkSettings = ChunkSettings()) -> list[Chunk]:
    header = chunk_header(article)
    texts = [article.sentence_text(i) for i in range(len(article.sentences))]
    if header:  # one tokenizer call for the header and the sentences
        header_tokens, *ntok = _count(count_tokens, [header + "\n", *texts])
    else:
        header_tokens, ntok = 0, _count(count_tokens, texts)
    budget = settings.max_tokens - SPECIAL_TOKENS - header_tokens
    target = min(settings.target_tokens, budget)
    if budget < 16:
        raise ArticleError(
            article.source,
            f"the first line ({len(article.title):,} characters) is too long for a title; start the file "
            "with a short title line, or give one as 'title:' in front matter",
        )
    chunks: list[Chunk] = []

    def emit(units: list[tuple[int, Span]]):
        start, end = units[0][1].start, units[-1][1].end
        text = article.text[start:end]
        sent_ids = tuple(dict.fromkeys(i for i, _ in units))
        chunks.append(
            Chunk(
                id=content_hash(article.doc_id, str(start), str(end)),
                doc_id=article.doc_id,
                source=article.source,
                start=start,
                end=end,
                text=text,
                sentences=sent_ids,
                header=header,
            )
        )

    for block in _blocks(article):
        # units: (sentence index, span, tokens); long sentences become several pieces
        units: list[tuple[int, Span, int]] = []
        for i in block:
            if ntok[i] <= budget:
                units.append((i, article.sentences[i], ntok[i]))
            else:
                for p in _split_long(article, i, budget, count_tokens):
                    units.append((i, p, _count(count_tokens, [article.text[p.start : p.end]])[0]))
        cur: list[tuple[int, Span, int]] = []
        cur_tok = 0
        k = 0
        while k < len(units):
            u = units[k]
            if cur and cur_tok + u[2] > target:
                emit([(i, s) for i, s, _ in cur])
                keep = cur[-settings.overlap_sentences :] if settings.overlap_sentences and len(cur) > 1 else []
                if sum(t for _, _, t in keep) + u[2] > target:
                    keep = []
                cur = list(keep)
                cur_tok = sum(t for _, _, t in cur)
                continue
            cur.append(u)
            cur_tok += u[2]
            k += 1
        if cur:
            emit([(i, s) for i, s, _ in cur])
    return chunks


def check_chunks(chunks: list[Chunk], count_tokens: CountTokens, max_tokens: int) -> None:
    """Counts every chunk's embedded text with the real tokenizer: nothing may be truncated."""
    counts = _count(count_tokens, [c.embed_text for c in chunks])
    for c, n in zip(chunks, counts):
        if n + SPECIAL_TOKENS > max_tokens:
            raise RagError(f"{c.source}: chunk at {c.start}-{c.end} has {n + SPECIAL_TOKENS} tokens > {max_tokens}")


def sentence_spans_in(chunk: Chunk, article: Article) -> list[tuple[int, int]]:
    """Where each of the chunk's sentences sits inside ``chunk.embed_text``."""
    base = len(chunk.header) + 1 if chunk.header else 0
    out = []
    for i in chunk.sentences:
        s = article.sentences[i]
        a, b = max(s.start, chunk.start), min(s.end, chunk.end)
        out.append((base + a - chunk.start, base + b - chunk.start))
    return out
