"""The fast CPU path (ONNX Runtime, int8) against the float32 model, and the content-addressed embedding cache."""

import os
import subprocess
import sys

import numpy as np
import pytest
from upath import UPath

from support_nlp.core import embedding_cache
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache, text_key
from support_nlp.core.encoders import (
    BUNDLED_MODEL_NAME,
    UnsupportedModelError,
    load_encoder,
    onnx_export,
    onnx_runtime,
    resolve_model_location,
)
from support_nlp.core.encoders.torch_backend import TorchEncoder
from support_nlp.core.progress import Progress
from support_nlp.core.storage import s3_storage_options
from support_nlp.core.text import clean_text
from support_nlp_tests.s3_server import pointed_at

DIM = 384
FIDELITY_TEXTS = 200


@pytest.fixture(scope="module")
def distinct_real_texts(real_inbound) -> list[str]:
    return list(dict.fromkeys(t for t in (clean_text(x) for x in real_inbound["text"]) if t))


@pytest.fixture(scope="module")
def fidelity_texts(distinct_real_texts) -> list[str]:
    """Real cleaned tweets spread over the whole sample, not only its first days."""
    step = len(distinct_real_texts) // FIDELITY_TEXTS
    return distinct_real_texts[::step][:FIDELITY_TEXTS]


@pytest.fixture(scope="module")
def fast_encoder():
    return load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu")


@pytest.fixture(scope="module")
def fast_vectors(fast_encoder, fidelity_texts) -> np.ndarray:
    return embed_texts(fidelity_texts, load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu"))


# ------------------------------------------------------------------------------------------ fast path


def test_fast_path_stays_close_to_the_float32_model(fidelity_texts, fast_vectors):
    reference = embed_texts(fidelity_texts, load_encoder(BUNDLED_MODEL_NAME, "torch", "cpu"))
    cosines = (fast_vectors * reference).sum(axis=1)
    assert cosines.mean() >= 0.99
    # A tokenization or pooling mistake would push single texts far off, not shave the mean a little.
    assert cosines.min() >= 0.9


def test_fast_path_gives_unit_float32_vectors(fidelity_texts, fast_vectors):
    assert fast_vectors.shape == (len(fidelity_texts), DIM)
    assert fast_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast_vectors, axis=1), 1.0, atol=1e-5)


def test_fast_path_vectors_do_not_depend_on_the_other_texts_of_a_call(fidelity_texts, fast_vectors, fast_encoder):
    odd_ones = embed_texts(fidelity_texts[1::2][::-1], fast_encoder)
    np.testing.assert_array_equal(odd_ones, fast_vectors[1::2][::-1])
    alone = embed_texts([fidelity_texts[7]], fast_encoder)
    np.testing.assert_array_equal(alone[0], fast_vectors[7])


def test_auto_backend_picks_the_fast_path_on_cpu(fast_encoder):
    assert load_encoder(BUNDLED_MODEL_NAME, "auto", "cpu") is fast_encoder
    assert fast_encoder.identity == f"{BUNDLED_MODEL_NAME}|onnx-int8-r{onnx_runtime.RECIPE_VERSION}"
    assert load_encoder(BUNDLED_MODEL_NAME, "torch", "cpu").identity == f"{BUNDLED_MODEL_NAME}|torch-fp32"


def test_backend_choices_are_checked():
    with pytest.raises(ValueError, match="unknown embedding backend 'tensorrt'"):
        load_encoder(BUNDLED_MODEL_NAME, "tensorrt", "cpu")
    with pytest.raises(ValueError, match="onnx backend runs on CPU"):
        load_encoder(BUNDLED_MODEL_NAME, "onnx", "cuda")


@pytest.fixture(scope="module")
def cls_pooling_model(tmp_path_factory) -> str:
    """The bundled transformer with CLS pooling instead of mean: a model the onnx backend does not export."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(resolve_model_location(BUNDLED_MODEL_NAME))
    folder = tmp_path_factory.mktemp("cls_pooling_model")
    SentenceTransformer(modules=[transformer, Pooling(DIM, pooling_mode="cls")]).save(str(folder))
    return str(folder)


def test_a_model_the_fast_path_cannot_export_runs_on_torch(cls_pooling_model, tmp_path):
    export_dir = str(tmp_path)
    assert load_encoder(cls_pooling_model, "auto", "cpu", None, export_dir).identity.endswith("|torch-fp32")
    with pytest.raises(UnsupportedModelError, match="mean pooling"):
        load_encoder(cls_pooling_model, "onnx", "cpu", None, export_dir)
    assert list(tmp_path.iterdir()) == []


def test_the_gpu_pipeline_gives_the_plain_vectors(fidelity_texts, monkeypatch):
    """CI has no GPU: run the CUDA path's batching and tokenizer prefetching on CPU, in float32, unpinned."""
    encoder = TorchEncoder(BUNDLED_MODEL_NAME, "cpu", batch_size=8)
    monkeypatch.setattr(encoder, "_tokenize_pinned", encoder.sentence_transformer.preprocess)
    texts = fidelity_texts[:30]
    pipelined = encoder._encode_on_cuda(texts, None)
    np.testing.assert_allclose(pipelined, encoder._encode_on_cpu(texts, None), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(pipelined, axis=1), 1.0, atol=1e-5)


def test_the_export_is_made_once_and_reused(fast_encoder, monkeypatch):
    location = resolve_model_location(BUNDLED_MODEL_NAME)
    root = onnx_runtime.default_export_root()

    def no_second_export(model, folder, layers=None):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_model", no_second_export)
    folder = onnx_runtime.ensure_exported(BUNDLED_MODEL_NAME, location, root)
    assert folder == onnx_runtime.export_folder(BUNDLED_MODEL_NAME, location, root)
    assert (folder / onnx_runtime.MODEL_FILE).stat().st_size > 0
    assert onnx_runtime.export_folder("other-model", location, root) != folder


def test_a_failed_export_leaves_no_folder_behind(tmp_path, monkeypatch):
    def crashing_export(model, folder, layers=None):
        (folder / onnx_runtime.MODEL_FILE).write_bytes(b"half a model")
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(onnx_export, "export_model", crashing_export)
    with pytest.raises(RuntimeError, match="killed mid-export"):
        onnx_runtime.ensure_exported(BUNDLED_MODEL_NAME, resolve_model_location(BUNDLED_MODEL_NAME), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def one_layer_encoder() -> onnx_runtime.OnnxEncoder:
    location = resolve_model_location(BUNDLED_MODEL_NAME)
    return onnx_runtime.OnnxEncoder(
        onnx_runtime.ensure_exported(BUNDLED_MODEL_NAME, location, onnx_runtime.default_export_root(), layers=1)
    )


def test_a_truncated_export_gives_unit_vectors_of_its_own(
    one_layer_encoder, fast_encoder, fidelity_texts, fast_vectors
):
    shallow = embed_texts(fidelity_texts, one_layer_encoder)
    assert shallow.shape == fast_vectors.shape
    np.testing.assert_allclose(np.linalg.norm(shallow, axis=1), 1.0, atol=1e-5)
    # Five layers fewer is another vector space: its vectors must not pass for the full model's.
    assert (shallow * fast_vectors).sum(axis=1).mean() < 0.9
    assert one_layer_encoder.identity == f"{fast_encoder.identity}-layers1"
    assert one_layer_encoder.folder != fast_encoder.folder
    assert fast_encoder.layers is None
    alone = embed_texts([fidelity_texts[7]], one_layer_encoder)
    np.testing.assert_array_equal(alone[0], shallow[7])


def test_a_truncated_export_is_made_once_and_keyed_by_its_depth(one_layer_encoder, fast_encoder, monkeypatch):
    location = resolve_model_location(BUNDLED_MODEL_NAME)
    root = onnx_runtime.default_export_root()

    def no_second_export(model, folder, layers=None):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_model", no_second_export)
    assert onnx_runtime.ensure_exported(BUNDLED_MODEL_NAME, location, root, layers=1) == one_layer_encoder.folder
    assert onnx_runtime.ensure_exported(BUNDLED_MODEL_NAME, location, root) == fast_encoder.folder
    assert onnx_runtime.export_folder(BUNDLED_MODEL_NAME, location, root, layers=2) != one_layer_encoder.folder


def test_a_truncation_deeper_than_the_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="has 6 transformer layers; cannot export the first 7"):
        onnx_runtime.ensure_exported(BUNDLED_MODEL_NAME, resolve_model_location(BUNDLED_MODEL_NAME), tmp_path, 7)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- cache


class CountingEncoder:
    """Wraps a real encoder and records every batch of texts it is asked to encode."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.identity = encoder.identity
        self.dimension = encoder.dimension
        self.calls: list[list[str]] = []

    def encode(self, texts, progress=None):
        self.calls.append(list(texts))
        return self.encoder.encode(texts, progress)


@pytest.fixture
def counting_encoder(fast_encoder) -> CountingEncoder:
    return CountingEncoder(fast_encoder)


def test_cache_hits_are_returned_as_stored_and_not_encoded_again(tmp_path, counting_encoder, fidelity_texts):
    texts = fidelity_texts[:30]
    first = embed_texts(texts, counting_encoder, cache=EmbeddingCache(tmp_path))
    assert counting_encoder.calls == [sorted(texts)]

    # A later run (a new cache object on the same folder) with the same texts, repeated and reordered.
    rerun = [*texts[::-1], *texts[:5]]
    again = embed_texts(rerun, counting_encoder, cache=EmbeddingCache(tmp_path))
    assert len(counting_encoder.calls) == 1
    np.testing.assert_array_equal(again, np.concatenate([first[::-1], first[:5]]))

    mixed = embed_texts([*texts[:10], *fidelity_texts[30:35]], counting_encoder, cache=EmbeddingCache(tmp_path))
    assert counting_encoder.calls[1] == sorted(fidelity_texts[30:35])
    np.testing.assert_array_equal(mixed[:10], first[:10])


def test_cache_hits_count_as_progress(tmp_path, counting_encoder, fidelity_texts):
    cache = EmbeddingCache(tmp_path)
    embed_texts(fidelity_texts[:6], counting_encoder, cache=cache)
    progress = Progress("embed", total=8, report=None)
    embed_texts(fidelity_texts[:8], counting_encoder, progress, cache)
    assert progress.done == 8
    assert counting_encoder.calls[-1] == sorted(fidelity_texts[6:8])


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Synthetic texts and vectors: the cache's bookkeeping does not depend on what the vectors mean.
SYNTHETIC_TEXTS = [f"synthetic text {i}" for i in range(40)]


def test_the_cache_is_keyed_by_encoder_identity(tmp_path):
    cache = EmbeddingCache(tmp_path)
    vectors = unit_vectors(len(SYNTHETIC_TEXTS))
    cache.store("model-a|onnx-int8-r1", SYNTHETIC_TEXTS, vectors)
    assert cache.lookup("model-b|onnx-int8-r1", SYNTHETIC_TEXTS) == {}
    assert EmbeddingCache(tmp_path).lookup("model-a|torch-fp32", SYNTHETIC_TEXTS) == {}
    found = EmbeddingCache(tmp_path).lookup("model-a|onnx-int8-r1", SYNTHETIC_TEXTS[:3])
    assert list(found) == SYNTHETIC_TEXTS[:3]
    for row, text in enumerate(SYNTHETIC_TEXTS[:3]):
        np.testing.assert_array_equal(found[text], vectors[row])


def test_a_text_keeps_its_first_stored_vector(tmp_path):
    cache = EmbeddingCache(tmp_path)
    first, second = unit_vectors(1, seed=1), unit_vectors(1, seed=2)
    cache.store("model", SYNTHETIC_TEXTS[:1], first)
    cache.store("model", SYNTHETIC_TEXTS[:1], second)
    np.testing.assert_array_equal(
        EmbeddingCache(tmp_path).lookup("model", SYNTHETIC_TEXTS[:1])[SYNTHETIC_TEXTS[0]], first[0]
    )


def test_vectors_written_by_another_process_are_found_at_the_next_lookup(tmp_path):
    reader = EmbeddingCache(tmp_path)
    assert reader.lookup("model", SYNTHETIC_TEXTS) == {}
    EmbeddingCache(tmp_path).store("model", SYNTHETIC_TEXTS, unit_vectors(len(SYNTHETIC_TEXTS)))
    assert len(reader.lookup("model", SYNTHETIC_TEXTS)) == len(SYNTHETIC_TEXTS)


def segment_files(root) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_a_crash_while_writing_leaves_only_whole_segments(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.store("model", SYNTHETIC_TEXTS[:20], unit_vectors(20))
    before = segment_files(tmp_path)

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        EmbeddingCache(tmp_path).store("model", SYNTHETIC_TEXTS[20:], unit_vectors(20, seed=3))
    monkeypatch.undo()
    assert segment_files(tmp_path) == before  # no temp files, no partial segments
    survivor = EmbeddingCache(tmp_path)
    assert set(survivor.lookup("model", SYNTHETIC_TEXTS)) == set(SYNTHETIC_TEXTS[:20])


def test_a_fragmented_shard_is_merged_without_losing_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(embedding_cache, "COMPACT_AFTER_SEGMENTS", 3)
    same_shard = [t for t in (f"text {i}" for i in range(200)) if text_key(t).hex()[0] == "a"][:5]
    vectors = unit_vectors(len(same_shard))
    writer = EmbeddingCache(tmp_path)
    for row, text in enumerate(same_shard):
        writer.store("model", [text], vectors[row : row + 1])
    shard = tmp_path / embedding_cache.encoder_folder("model") / "a"
    assert len(list(shard.iterdir())) == 2  # five single-entry segments: four merged into one, then one more
    found = EmbeddingCache(UPath(tmp_path)).lookup("model", same_shard)
    for row, text in enumerate(same_shard):
        np.testing.assert_array_equal(found[text], vectors[row])


def test_store_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="3 texts for 2 vectors"):
        EmbeddingCache(tmp_path).store("model", SYNTHETIC_TEXTS[:3], unit_vectors(2))


@pytest.fixture(scope="module")
def s3_cache_root(s3_server):
    """A cache root on a real S3 server (SeaweedFS on 127.0.0.1), with credentials from the environment."""
    with pointed_at(s3_server):
        url = f"s3://{s3_server.bucket}/embedding_cache"
        yield UPath(url, **s3_storage_options(url, s3_server.endpoint_url))


def test_the_cache_works_on_s3(s3_cache_root, monkeypatch):
    monkeypatch.setattr(embedding_cache, "COMPACT_AFTER_SEGMENTS", 2)
    assert EmbeddingCache(s3_cache_root).lookup("model", SYNTHETIC_TEXTS) == {}  # nothing written yet
    vectors = unit_vectors(len(SYNTHETIC_TEXTS))
    writer = EmbeddingCache(s3_cache_root)
    for start in range(0, len(SYNTHETIC_TEXTS), 10):  # four writes: every touched shard gets merged once
        writer.store("model", SYNTHETIC_TEXTS[start : start + 10], vectors[start : start + 10])
    found = EmbeddingCache(s3_cache_root).lookup("model", SYNTHETIC_TEXTS)
    for row, text in enumerate(SYNTHETIC_TEXTS):
        np.testing.assert_array_equal(found[text], vectors[row])
    shards = list((s3_cache_root / embedding_cache.encoder_folder("model")).iterdir())
    assert all(len(list(shard.iterdir())) <= 2 for shard in shards)


def test_the_onnx_path_runs_without_importing_torch(fast_encoder, fidelity_texts):
    """Once exported, the CPU encoder needs only ONNX Runtime and tokenizers: no run pays torch's start-up."""
    script = (
        "import sys; from support_nlp.core.embedding import embed_texts; from support_nlp.core.encoders import "
        f"load_encoder; vectors = embed_texts({fidelity_texts[:3]!r}, load_encoder()); "
        "assert vectors.shape == (3, 384), vectors.shape; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'torch'))"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "[]"
