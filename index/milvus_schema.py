"""The schemas and indexes of the three Milvus collections (see ``index.milvus_store``)."""

from __future__ import annotations

VECTOR_INDEX = "AUTOINDEX"  # the server picks (HNSW on a standalone server); Milvus Lite searches FLAT
SOURCE_BYTES = 1024
TITLE_BYTES = 1024


def build(client, role: str, dim: int, bm25: tuple[float, float]):
    """(schema, index params) of the collection for ``role``: chunks, sentences or articles."""
    from pymilvus import DataType, Function, FunctionType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    ip = client.prepare_index_params()
    if role == "chunks":
        s.add_field("cid", DataType.INT64, is_primary=True)
        s.add_field("chunk_id", DataType.VARCHAR, max_length=64)
        _doc_fields(s, DataType)
        s.add_field("title", DataType.VARCHAR, max_length=TITLE_BYTES)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=65_535)
        s.add_field("header", DataType.VARCHAR, max_length=65_535)
        s.add_field("sentences", DataType.VARCHAR, max_length=65_535)
        # the chunk's stems (index.lexical), which Milvus's BM25 function turns into the sparse vector
        s.add_field("terms", DataType.VARCHAR, max_length=65_535, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                input_field_names=["terms"], output_field_names=["sparse"]))
        ip.add_index(field_name="vector", index_type=VECTOR_INDEX, metric_type="IP")
        ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": bm25[0], "bm25_b": bm25[1]})
    elif role == "sentences":
        s.add_field("sid", DataType.VARCHAR, is_primary=True, max_length=128)
        _doc_fields(s, DataType)
        s.add_field("sent_index", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        ip.add_index(field_name="vector", index_type=VECTOR_INDEX, metric_type="IP")
    elif role == "articles":
        s.add_field("part_id", DataType.VARCHAR, is_primary=True, max_length=128)
        s.add_field("doc_id", DataType.VARCHAR, max_length=64)
        s.add_field("source", DataType.VARCHAR, max_length=SOURCE_BYTES)
        s.add_field("seq", DataType.INT64)
        s.add_field("part", DataType.INT64)
        s.add_field("parts", DataType.INT64)
        s.add_field("data", DataType.VARCHAR, max_length=65_535)
        s.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
        ip.add_index(field_name="placeholder", index_type="FLAT", metric_type="L2")
    else:
        raise ValueError(f"unknown collection role {role!r}")
    ip.add_index(field_name="doc_id", index_type="INVERTED")
    return s, ip


def _doc_fields(s, DataType) -> None:
    s.add_field("doc_id", DataType.VARCHAR, max_length=64)
    s.add_field("source", DataType.VARCHAR, max_length=SOURCE_BYTES)
    s.add_field("date", DataType.VARCHAR, max_length=10)  # ISO yyyy-mm-dd, "" when undated
