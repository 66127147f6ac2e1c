"""Builds and loads the index: articles in, sentence-aware chunks embedded into FAISS, BM25 beside
them, all in one directory with a JSON manifest. Data flow: ingest -> sentences -> chunking ->
embed/encoder -> vector_index + lexical -> store."""
