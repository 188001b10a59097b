"""Embedded LanceDB store (the default): dense vectors, built-in BM25 full-text index, payload filters.

Why these settings (measured here, 384-d, 2 cores): LanceDB's default IVF_PQ index gave recall@10 of only
0.43 at 200k rows, so it is never used. Below `exact_below` rows search is exact (brute force is a few ms);
above, IVF_HNSW_SQ with a refine step keeps recall ≥ 0.95. Searches read each hit's Chunk from one JSON column
(`chunk_json`) rather than its payload columns: dense_search at 200k rows went from 8.5 to ~2.5 ms p50. Several
processes may read and write one table: each `add` is one atomic commit, and readers pick up new versions within
`read_consistency_s`.

Above `exact_below` rows, unfiltered dense searches are answered by an in-process HNSW graph beside the table
(rag/graph_index.py, `store.graph`): LanceDB's per-query cost alone was 5.7-7.8 ms p95 at 200k rows.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from adaptlab.config import StoreConfig
from adaptlab.errors import BackendError, StoreMismatchError
from adaptlab.rag.graph_index import GraphIndex, GraphSettings, TableRows
from adaptlab.rag.store import CollectionInfo, DocVersion, SearchFilter, StoreHit
from adaptlab.types import Chunk

_META_EMBEDDER = b"adaptlab.embedder"
_META_DIMENSION = b"adaptlab.dimension"
_PAYLOAD_COLUMNS = [
    "chunk_id", "doc_id", "doc_hash", "chunk_index", "chunk_count", "path", "title", "text", "index_text",
    "char_start", "char_end", "page", "tags", "slide", "sheet", "cells", "table", "heading_path",
]
_WRITE_RETRIES = 5
# The whole Chunk as one JSON string, which searches read instead of the payload columns: LanceDB fetches each
# selected column of each hit separately (0.2-0.8 ms a column at 200k rows), so one column instead of 13 took
# dense_search from 8.5 to ~2.5 ms p50 (benchmarks/README.md). The separate columns stay for filters, FTS,
# list_versions and deletes; tables written before this column existed are read column by column.
_CHUNK_JSON = "chunk_json"


# Where in its source a chunk sits, beyond the page (Chunk.slide ... heading_path). Tables written before these
# columns existed get them, all null, when a store opens them (LanceStore._add_location_columns).
_LOCATION_FIELDS = (
    pa.field("slide", pa.int32(), nullable=True),
    pa.field("sheet", pa.string(), nullable=True),
    pa.field("cells", pa.string(), nullable=True),
    pa.field("table", pa.int32(), nullable=True),
    pa.field("heading_path", pa.list_(pa.string()), nullable=True),
)


def _schema(embedder_name: str, dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("chunk_id", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("doc_hash", pa.string(), nullable=False),
            pa.field("chunk_index", pa.int32()),
            pa.field("chunk_count", pa.int32()),
            pa.field("path", pa.string()),
            pa.field("title", pa.string()),
            pa.field("text", pa.string()),
            pa.field("index_text", pa.string()),
            pa.field("char_start", pa.int64()),
            pa.field("char_end", pa.int64()),
            pa.field("page", pa.int32(), nullable=True),
            pa.field("tags", pa.list_(pa.string())),
            *_LOCATION_FIELDS,
            pa.field("vector", pa.list_(pa.float32(), dimension)),
            pa.field(_CHUNK_JSON, pa.string()),
        ],
        metadata={_META_EMBEDDER: embedder_name.encode(), _META_DIMENSION: str(dimension).encode()},
    )


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _glob_to_like(glob: str) -> str | None:
    """fnmatch glob → SQL LIKE; None when the glob uses [...] classes LIKE cannot express."""
    if "[" in glob:
        return None
    escaped = re.sub(r"([%_\\])", r"\\\1", glob)
    return escaped.replace("*", "%").replace("?", "_")


def _where(flt: SearchFilter | None) -> tuple[str | None, bool]:
    """SQL filter pushed into LanceDB, and whether a Python post-filter is still needed."""
    if flt is None or flt.is_empty():
        return None, False
    clauses: list[str] = []
    needs_post = False
    if flt.path_glob:
        like = _glob_to_like(flt.path_glob)
        if like is None:
            needs_post = True
        else:
            clauses.append(f"path LIKE {_sql_string(like)}")
    if flt.tags:
        tags = ", ".join(_sql_string(tag) for tag in flt.tags)
        clauses.append(f"array_has_any(tags, make_array({tags}))")
    return (" AND ".join(clauses) or None), needs_post


def _row_to_chunk(row: dict[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=row["chunk_id"],
        doc_id=row["doc_id"],
        doc_hash=row["doc_hash"],
        chunk_index=int(row["chunk_index"]),
        chunk_count=int(row["chunk_count"]),
        path=row["path"],
        title=row["title"],
        text=row["text"],
        index_text=row["index_text"],
        char_start=int(row["char_start"]),
        char_end=int(row["char_end"]),
        page=None if row["page"] is None else int(row["page"]),
        tags=tuple(row["tags"] or ()),
        # .get: rows read from a table or chunk_json written before the location columns existed
        slide=None if row.get("slide") is None else int(row["slide"]),
        sheet=row.get("sheet"),
        cells=row.get("cells"),
        table=None if row.get("table") is None else int(row["table"]),
        heading_path=tuple(row.get("heading_path") or ()),
    )


def _chunk_json(chunk: Chunk) -> str:
    return json.dumps({column: getattr(chunk, column) for column in _PAYLOAD_COLUMNS}, ensure_ascii=False)


def _chunk_from_json(text: str) -> Chunk:
    # A column added to the payload after a row was written reads as None (as a new nullable column would).
    return _row_to_chunk({column: None for column in _PAYLOAD_COLUMNS} | json.loads(text))


class LanceStore:
    def __init__(self, config: StoreConfig, directory: Path, *, threads: int = 1) -> None:
        """threads: for building the graph index at finalize (runtime.threads)."""
        import lancedb

        self._config = config
        self._threads = threads
        self._graph: GraphIndex | None = None
        # The table version last read and when (time.monotonic): asking LanceDB costs a round trip to its event
        # loop (~0.2-0.4 ms, a fifth of a graph search), and LanceDB itself refreshes only every read_consistency_s.
        self._version_read: tuple[float, int] | None = None
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(
            str(directory), read_consistency_interval=timedelta(seconds=config.read_consistency_s)
        )
        self._table: Any = None
        self._embedder = ""
        self._dimension = 0
        self._has_chunk_json = False  # the table has the chunk_json column

    # -- lifecycle -----------------------------------------------------------------------------------
    def open(self, embedder_name: str, dimension: int) -> None:
        name = self._config.collection
        try:
            table = self._db.create_table(name, schema=_schema(embedder_name, dimension), exist_ok=True)
        except ValueError:  # the table exists with another schema (another embedder's dimension)
            table = self._db.open_table(name)
        metadata = table.schema.metadata or {}
        stored_name = metadata.get(_META_EMBEDDER, b"").decode()
        stored_dim = int(metadata.get(_META_DIMENSION, b"0") or 0)
        if (stored_name, stored_dim) != (embedder_name, dimension):
            raise StoreMismatchError(
                f"The index '{name}' in {self._directory} was built with embedder '{stored_name}' ({stored_dim}-d), "
                f"but the configured embedder is '{embedder_name}' ({dimension}-d) — switch the embedder back, or "
                f"use a new store.collection (or project --home) and ingest again."
            )
        self._table, self._embedder, self._dimension = table, embedder_name, dimension
        self._add_location_columns()
        self._has_chunk_json = _CHUNK_JSON in table.schema.names
        if self._config.graph != "off":
            self._graph = GraphIndex(self._directory / f"{name}.graph", GraphSettings(
                dimension=dimension, embedder=embedder_name, connectivity=self._config.graph_connectivity,
                expansion_search=self._config.graph_expansion, threads=self._threads,
            ))

    def _add_location_columns(self) -> None:
        """Schema evolution: a table from before chunk locations gets the columns, all null (a metadata-only
        change in Lance: no rows are rewritten), so old indexes open, answer and take new chunks."""
        def add_missing() -> None:  # re-checked on a retry: another process may have added them meanwhile
            missing = [f for f in _LOCATION_FIELDS if f.name not in self.table.schema.names]
            if missing:
                self.table.add_columns(missing)

        if any(f.name not in self.table.schema.names for f in _LOCATION_FIELDS):
            self._with_retries(add_missing)

    @property
    def table(self) -> Any:
        if self._table is None:
            raise BackendError("LanceStore used before open() — call open(embedder_name, dimension) first.")
        return self._table

    # -- writes --------------------------------------------------------------------------------------
    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            row = {column: getattr(chunk, column) for column in _PAYLOAD_COLUMNS}
            row["tags"] = list(chunk.tags)
            row["heading_path"] = list(chunk.heading_path)
            row["vector"] = np.asarray(vector, dtype=np.float32)
            if self._has_chunk_json:
                row[_CHUNK_JSON] = _chunk_json(chunk)
            rows.append(row)
        data = pa.Table.from_pylist(rows, schema=self.table.schema)
        self._with_retries(lambda: self.table.add(data))  # one add = one atomic commit

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        return self._delete_in("doc_id", doc_ids)

    def delete_versions(self, versions: Sequence[tuple[str, str]]) -> int:
        if not versions:
            return 0
        clause = " OR ".join(
            f"(doc_id = {_sql_string(doc_id)} AND doc_hash = {_sql_string(doc_hash)})" for doc_id, doc_hash in versions
        )
        return self._delete_where(clause)

    def _delete_in(self, column: str, values: Sequence[str]) -> int:
        if not values:
            return 0
        deleted = 0
        for start in range(0, len(values), 500):  # keep SQL statements a sane size
            batch = ", ".join(_sql_string(v) for v in values[start : start + 500])
            deleted += self._delete_where(f"{column} IN ({batch})")
        return deleted

    def _delete_where(self, clause: str) -> int:
        count = self.table.count_rows(clause)
        if count:
            self._with_retries(lambda: self.table.delete(clause))
        return count

    def _with_retries(self, action) -> None:
        # Concurrent writers from other processes can conflict on a commit; LanceDB resolves most itself,
        # and a retry handles the rest.
        try:
            for attempt in range(_WRITE_RETRIES):
                try:
                    action()
                    return
                except (OSError, RuntimeError, ValueError) as exc:
                    if "conflict" not in str(exc).lower() or attempt == _WRITE_RETRIES - 1:
                        raise
                    self.table.checkout_latest()
        finally:
            self._version_read = None  # a write makes a new table version, which the graph does not match

    def finalize(self) -> None:
        """Build or update the indexes, compact small files, drop versions older than cleanup_older_than_s."""
        from lancedb.index import FTS

        table = self.table
        rows = table.count_rows()
        indices = {tuple(index.columns): index for index in table.list_indices()}
        if rows and ("index_text",) not in indices:
            table.create_index("index_text", config=FTS(with_position=False))
        if rows and ("vector",) not in indices and self._wants_vector_index(rows):
            table.create_index("vector", config=self._vector_index_config(rows))
        table.optimize(cleanup_older_than=timedelta(seconds=self._config.cleanup_older_than_s))
        if self._graph is not None:
            if rows >= self._config.exact_below:
                self._graph.sync(self._table_rows(), table.version)
            else:
                self._graph.drop()
        self._version_read = None

    def _table_version(self) -> int:
        """The table's version, re-read at most every read_consistency_s (every write here forgets it), so the
        graph is used no longer after another process's write than LanceDB's own reads would be stale."""
        now = time.monotonic()
        if self._version_read is None or now - self._version_read[0] >= self._config.read_consistency_s:
            self._version_read = (now, self.table.version)
        return self._version_read[1]

    def _table_rows(self) -> TableRows:
        """Every chunk id with its row id, and a reader of (chunk ids, vectors, chunk JSON) by row id."""
        table = self.table
        listing = table.search().with_row_id(True).select(["chunk_id"]).limit(None).to_arrow()
        payload_columns = [_CHUNK_JSON] if self._has_chunk_json else list(_PAYLOAD_COLUMNS)

        def read(row_ids: Sequence[int]) -> tuple[list[str], np.ndarray, list[str]]:
            data = table.take_row_ids(list(row_ids)).select(["chunk_id", "vector", *payload_columns]).to_arrow()
            vectors = np.asarray(data.column("vector").combine_chunks().flatten(), dtype=np.float32)
            if self._has_chunk_json:
                texts = data.column(_CHUNK_JSON).to_pylist()
            else:  # a table from before chunk_json: the graph's payload is written in the new form
                texts = [_chunk_json(_row_to_chunk(row)) for row in data.select(_PAYLOAD_COLUMNS).to_pylist()]
            return data.column("chunk_id").to_pylist(), vectors.reshape(data.num_rows, self._dimension), texts

        return TableRows(chunk_ids=listing.column("chunk_id").to_pylist(),
                         row_ids=listing.column("_rowid").to_numpy(), read=read)

    def _wants_vector_index(self, rows: int) -> bool:
        if self._config.index == "flat":
            return False
        if self._config.index == "auto":
            return rows >= self._config.exact_below
        return rows >= 256  # an IVF index needs enough rows to train its partitions

    def _vector_index_config(self, rows: int):
        """Partition layout by target size, never by count: the optimize() that ends every finalize() re-balances
        IVF partitions toward the index's target size and joins "undersized" ones. Built with num_partitions =
        sqrt(rows)/2 (223 at 200k rows), an IVF_SQ index came out of optimize() with 7 partitions (a near
        brute-force scan, ~1.5x slower per query) and an IVF_HNSW_SQ index with 1, after a 100 s rebuild
        (benchmarks/bench_retrieval.py; numbers in benchmarks/README.md)."""
        from lancedb.index import HnswSq, IvfFlat, IvfSq

        # ~sqrt(rows)/2 partitions of ~2·sqrt(rows) rows each, stored in the index so optimize() keeps them.
        target = max(256, int(2 * np.sqrt(rows)))
        if self._config.index == "ivf_sq":
            return IvfSq(distance_type="cosine", target_partition_size=target)
        if self._config.index == "ivf_flat":
            return IvfFlat(distance_type="cosine", target_partition_size=target)
        # IVF_HNSW_SQ: LanceDB's own partition size (one HNSW graph up to ~1M rows). At 200k rows one graph
        # answered faster than 223 small ones probed 20 at a time (p95 13.8 vs 17.6 ms, recall@10 1.0 vs 0.99),
        # and ef_construction 150 (default 300) builds it in ~60-75 s instead of ~130 s at the same recall.
        return HnswSq(distance_type="cosine", ef_construction=150)

    # -- reads ---------------------------------------------------------------------------------------
    def list_versions(self) -> list[DocVersion]:
        columns = ["doc_id", "doc_hash", "path", "chunk_count"]
        data = self.table.search().select(columns).limit(None).to_arrow()
        groups: dict[tuple[str, str], list[Any]] = {}
        for doc_id, doc_hash, path, chunk_count in zip(*(data.column(c).to_pylist() for c in columns)):
            entry = groups.setdefault((doc_id, doc_hash), [path, 0, chunk_count])
            entry[1] += 1
        return [
            DocVersion(doc_id=doc_id, doc_hash=doc_hash, path=path, rows=rows, chunk_count=int(chunk_count))
            for (doc_id, doc_hash), (path, rows, chunk_count) in groups.items()
        ]

    def dense_search(self, vector: np.ndarray, k: int, flt: SearchFilter | None = None, *,
                     with_vectors: bool = True) -> list[StoreHit]:
        from lancedb.background_loop import LOOP
        from lancedb.table import AsyncTable

        if self._graph is not None and (flt is None or flt.is_empty()):
            hits = self._graph.search(vector, k, self._table_version(), with_vectors=with_vectors,
                                      decode=_chunk_from_json)
            if hits is not None:
                return hits
        where, needs_post = _where(flt)
        limit = k * 10 if needs_post else k
        config = self._config
        # HNSW refuses ef below the candidates it must return (limit × refine_factor): the Retriever asks for 50,
        # so ef 64 with refine_factor 4 failed ("ef must be greater than or equal to k") on any HNSW-indexed table.
        ef = max(config.ef, limit * max(1, config.refine_factor))
        table = self.table
        async_table = getattr(table, "_table", None)  # the AsyncTable the sync table delegates to
        query_vector = np.asarray(vector, dtype=np.float32)
        # Naming _distance keeps it without LanceDB's deprecation warning for projections that leave it out.
        columns = [*self._hit_columns(), "_distance", *(["vector"] if with_vectors else [])]

        def tuned(query):
            # The same builder methods exist on the async and the sync query: configure both one way.
            query = query.distance_type("cosine").nprobes(config.nprobes).ef(ef).limit(limit).select(columns)
            return query.refine_factor(config.refine_factor) if config.refine_factor else query

        if isinstance(async_table, AsyncTable):
            # One round trip to LanceDB's event-loop thread. The sync builder below makes six (schema look-ups
            # before and after the query): ~1.5 ms of a ~10 ms query on 2 cores (benchmarks/bench_retrieval.py).
            query = tuned(async_table.query().nearest_to(query_vector).column("vector"))
            if where:
                query = query.where(where)  # the async API pre-filters unless told postfilter()
            data = LOOP.run(query.to_arrow())
        else:  # a LanceDB whose sync table no longer wraps an AsyncTable: same query, sync API
            query = tuned(table.search(query_vector, vector_column_name="vector"))
            if where:
                query = query.where(where, prefilter=True)
            data = query.to_arrow()
        hits = self._hits(data, [1.0 - distance for distance in data.column("_distance").to_pylist()], with_vectors)
        return _post_filter(hits, flt, k) if needs_post else hits

    def keyword_search(self, query: str, k: int, flt: SearchFilter | None = None, *,
                       with_vectors: bool = False) -> list[StoreHit]:
        if not query.strip():
            return []
        where, needs_post = _where(flt)
        limit = k * 10 if needs_post else k
        columns = [*self._hit_columns(), "_score", *(["vector"] if with_vectors else [])]
        search = (
            self.table.search(query, query_type="fts", fts_columns="index_text")
            .select(columns)
            .limit(limit)
        )
        if where:
            search = search.where(where, prefilter=True)
        data = search.to_arrow()
        hits = self._hits(data, data.column("_score").to_pylist(), with_vectors)
        return _post_filter(hits, flt, k) if needs_post else hits

    def _hit_columns(self) -> list[str]:
        return [_CHUNK_JSON] if self._has_chunk_json else list(_PAYLOAD_COLUMNS)

    def _hits(self, data: pa.Table, scores: list[float], with_vectors: bool) -> list[StoreHit]:
        """A search's Arrow result → hits: each chunk from its chunk_json (or its columns, on an older table), the
        vectors converted as one array."""
        if self._has_chunk_json:
            chunks = [_chunk_from_json(text) for text in data.column(_CHUNK_JSON).to_pylist()]
        else:
            chunks = [_row_to_chunk(row) for row in data.select(_PAYLOAD_COLUMNS).to_pylist()]
        if not with_vectors:
            return [StoreHit(chunk, float(score)) for chunk, score in zip(chunks, scores, strict=True)]
        flat = data.column("vector").combine_chunks().flatten()  # FixedSizeList → its values, offset-aware
        vectors = np.asarray(flat, dtype=np.float32).reshape(len(chunks), self._dimension)
        return [StoreHit(chunk, float(score), vector)
                for chunk, score, vector in zip(chunks, scores, vectors, strict=True)]

    def count(self) -> int:
        return self.table.count_rows()

    def info(self) -> CollectionInfo:
        indices = self.table.list_indices()
        vector_index = next((index.index_type for index in indices if list(index.columns) == ["vector"]), "")
        description = str(vector_index) or "exact (brute force)"
        if self._graph is not None and self._graph.serves(self.table.version):
            description = f"in-process HNSW graph (usearch, f16); filtered searches: {description}"
        return CollectionInfo(
            embedder=self._embedder,
            dimension=self._dimension,
            rows=self.count(),
            backend="lancedb",
            location=str(self._directory),
            index=description,
        )


def _post_filter(hits: list[StoreHit], flt: SearchFilter | None, k: int) -> list[StoreHit]:
    # Globs with [...] classes cannot be pushed into SQL LIKE: filter the oversampled hits here.
    if flt is None:
        return hits[:k]
    return [hit for hit in hits if flt.matches(hit.chunk)][:k]
