"""What the runs of a multi-run backfill share, written by several processes at once: the embedding cache (local
and on S3) and the parse cache of the source. Each writer is a separate process started at the same moment."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from upath import UPath

from support_nlp.core import embedding_cache, twcs
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache, text_key
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.storage import s3_storage_options
from support_nlp.core.text import clean_text
from support_nlp_tests.s3_server import pointed_at

WRITERS = 2
TEXTS_PER_WRITER = 240
# Each writer's texts overlap the next one's by half: both embed and store the shared ones.
OVERLAP = TEXTS_PER_WRITER // 2
# A run stores each day's new texts; small days and a low merge threshold make merges race with writes.
TEXTS_PER_DAY = 8
COMPACT_AFTER_SEGMENTS = 3
BARRIER_TIMEOUT_S = 120


def spawned_pool() -> ProcessPoolExecutor:
    # Spawned, not forked: the parent holds ONNX Runtime and s3fs threads, which a fork would copy mid-state.
    return ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn"))


def embed_like_a_run(root: str, options: dict, texts: list[str], start) -> int:
    """Embed `texts` day by day through the cache, as the embeddings step of one run does; returns how many of them
    the cache then holds."""
    embedding_cache.COMPACT_AFTER_SEGMENTS = COMPACT_AFTER_SEGMENTS
    encoder, cache = load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu"), EmbeddingCache(UPath(root, **options))
    start.wait(BARRIER_TIMEOUT_S)
    for first in range(0, len(texts), TEXTS_PER_DAY):
        embed_texts(texts[first : first + TEXTS_PER_DAY], encoder, cache=cache)
    return len(EmbeddingCache(UPath(root, **options)).lookup(encoder.identity, texts))


@pytest.fixture(scope="module")
def real_texts_and_vectors(real_inbound) -> tuple[list[str], np.ndarray]:
    distinct = list(dict.fromkeys(text for text in (clean_text(raw) for raw in real_inbound["text"]) if text))
    texts = distinct[:: len(distinct) // (WRITERS * OVERLAP + OVERLAP)][: WRITERS * OVERLAP + OVERLAP]
    return texts, embed_texts(texts, load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu"))


@pytest.fixture
def s3_root(s3_server):
    with pointed_at(s3_server):
        url = f"s3://{s3_server.bucket}/concurrent_writers/embedding_cache"
        yield url, s3_storage_options(url, s3_server.endpoint_url)


def cache_written_by_concurrent_writers(root: str, options: dict, texts: list[str], vectors: np.ndarray) -> None:
    shares = [slice(writer * OVERLAP, writer * OVERLAP + TEXTS_PER_WRITER) for writer in range(WRITERS)]
    with multiprocessing.get_context("spawn").Manager() as manager, spawned_pool() as pool:
        start = manager.Barrier(WRITERS)
        found = [pool.submit(embed_like_a_run, root, options, texts[share], start) for share in shares]
        # Every writer finds all of its texts once it is done, whatever the other merged meanwhile.
        assert [writer.result() for writer in found] == [TEXTS_PER_WRITER] * WRITERS
    stored = EmbeddingCache(UPath(root, **options)).lookup(
        load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu").identity, texts
    )
    assert list(stored) == texts
    # Bit for bit what the encoder gives each text alone, without a cache.
    for row, text in enumerate(texts):
        np.testing.assert_array_equal(stored[text], vectors[row])


def test_runs_writing_the_embedding_cache_at_once_lose_no_vector(tmp_path, real_texts_and_vectors):
    cache_written_by_concurrent_writers(str(tmp_path), {}, *real_texts_and_vectors)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert files and all(path.suffix == ".npz" and not path.name.startswith(".") for path in files)  # no temp files


def test_runs_writing_the_embedding_cache_on_s3_at_once_lose_no_vector(s3_root, real_texts_and_vectors):
    cache_written_by_concurrent_writers(*s3_root, *real_texts_and_vectors)


def test_a_lookup_racing_a_merge_finds_every_stored_vector(tmp_path, real_texts_and_vectors, monkeypatch):
    """Deterministically, the interleaving the concurrent writers hit now and then: a reader lists a shard's segments,
    another run merges them and removes them, then the reader reads what it listed."""
    monkeypatch.setattr(embedding_cache, "COMPACT_AFTER_SEGMENTS", COMPACT_AFTER_SEGMENTS)
    texts, vectors = real_texts_and_vectors
    shard = text_key(texts[0]).hex()[0]
    rows = [row for row, text in enumerate(texts) if text_key(text).hex()[0] == shard][: COMPACT_AFTER_SEGMENTS + 1]
    writer = EmbeddingCache(tmp_path)
    for row in rows[:-1]:
        writer.store("model", [texts[row]], vectors[row : row + 1])
    reader = EmbeddingCache(tmp_path)
    list_segments, last = reader._list_segments, rows[-1]

    def list_then_let_another_run_merge(encoder_id, listed_shard):
        names = list_segments(encoder_id, listed_shard)
        if texts[last] not in writer.lookup("model", [texts[last]]):
            # One segment more than the threshold: the writer merges the shard and removes the parts just listed.
            writer.store("model", [texts[last]], vectors[last : last + 1])
            assert set(list_segments(encoder_id, listed_shard)).isdisjoint(names)
        return names

    monkeypatch.setattr(reader, "_list_segments", list_then_let_another_run_merge)
    found = reader.lookup("model", [texts[row] for row in rows[:-1]])
    assert list(found) == [texts[row] for row in rows[:-1]]
    for row in rows[:-1]:
        np.testing.assert_array_equal(found[texts[row]], vectors[row])


def parse_in_a_container(source: str, cache_dir: str, start) -> dict:
    """Parse `source` into the shared `cache_dir` as a run container does: every container's run worker has the same
    pid, and both reach the point of writing the cache together."""
    own_pid, write_cache = os.getpid, twcs._write_cache

    def write_cache_together(*args):
        start.wait(BARRIER_TIMEOUT_S)
        write_cache(*args)

    os.getpid, twcs._write_cache = (lambda: 1), write_cache_together
    try:
        parsed = twcs.parse_source(source, Path(cache_dir))
    finally:
        os.getpid = own_pid
    return {"directory": str(parsed.directory), "summary": parsed.summary}


def test_runs_parsing_the_source_at_once_share_one_intact_parse_cache(real_slice_csv, tmp_path):
    with multiprocessing.get_context("spawn").Manager() as manager, spawned_pool() as pool:
        start = manager.Barrier(WRITERS)
        parsed = [pool.submit(parse_in_a_container, real_slice_csv, str(tmp_path), start) for _ in range(WRITERS)]
        results = [writer.result() for writer in parsed]
    assert results[0] == results[1]
    cached = twcs.parse_source(real_slice_csv, tmp_path)
    assert cached.damage() is None and cached.summary == results[0]["summary"]
    assert [path.name for path in tmp_path.iterdir()] == [cached.directory.name]  # no staging folder left behind
