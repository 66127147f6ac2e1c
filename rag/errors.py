"""The project's exception tree. Messages carry the bad value and the fix; the CLI and UI turn
them into one-line user messages."""


class RagError(Exception):
    """Base class for every error this package raises on purpose."""


class BadInputError(RagError, ValueError):
    """A question, path, date or option the user gave is unusable."""


class ArticleError(RagError):
    """One article file cannot be read (empty, binary, not UTF-8, too large)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EmptyCorpusError(RagError):
    """No readable article was found."""


class IndexMissingError(RagError):
    """No index exists at the given directory."""


class IndexMismatchError(RagError):
    """The index on disk was built with another model, format or settings."""


class IndexCorruptError(RagError):
    """A file of the index is truncated, edited or unreadable."""


class IndexBusyError(RagError):
    """Another program held the index's writer lock for longer than the wait allows."""
