"""Opening the index store of the configured backend: ``IndexStore`` (FAISS + bm25s in a
directory, the embedded default) or ``MilvusStore`` (Milvus Lite by file path, a Milvus server
or cluster by ``http://`` URI). Both build, update, load (``index.first_stage.SearchIndex``),
check their manifest and report stats the same way."""

from __future__ import annotations

from pathlib import Path

from index.embed import Embedder
from index.store import IndexStore
from rag import settings as C
from rag.errors import BadInputError


def open_store(embedder: Embedder, index_dir: Path | str, backend: str | None = None, milvus_uri: str | None = None):
    """The store for ``backend`` (default ``RAG_BACKEND``, else faiss). For Milvus, ``index_dir``
    names the collections (``rag.settings.milvus_collection_for``) and ``milvus_uri`` (default
    ``RAG_MILVUS_URI``) says where they live."""
    backend = backend or C.backend()
    if backend == "faiss":
        return IndexStore(index_dir, embedder)
    if backend == "milvus":
        from index.milvus_store import MilvusStore

        return MilvusStore(milvus_uri or C.milvus_uri(), embedder, collection=C.milvus_collection_for(Path(index_dir)))
    raise BadInputError(f"backend must be one of {', '.join(C.BACKENDS)}. Currently, it is {backend!r}")
