"""What an index's ``manifest.json`` records besides counts and checksums: the chunking
settings, each vector file's type and size, the library versions that wrote it."""

from __future__ import annotations

from index.chunking import ChunkSettings


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("faiss-cpu", "sentence-transformers", "bm25s", "numpy", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def vector_meta(vix, files: list[str]) -> dict:
    """Manifest entry of one ``VectorIndex`` file."""
    return {
        "type": vix.index_type,
        "vectors": int(vix.ntotal),
        "tombstones": int(vix.tombstones),
        "ef_search": vix.current_ef_search() if vix.kind == "hnsw" else None,
        "files": list(files),
    }


def index_type_summary(m: dict) -> str | None:
    """``"chunks Flat, sentences HNSW32"`` (format 1 recorded one string for both)."""
    vec = m.get("vector_indexes")
    if not isinstance(vec, dict):
        return m.get("index_type")
    return ", ".join(f"{name.removesuffix('.faiss')} {meta.get('type')}" for name, meta in vec.items())


def settings_json(s: ChunkSettings) -> dict:
    return {"target_tokens": s.target_tokens, "max_tokens": s.max_tokens, "overlap_sentences": s.overlap_sentences}
