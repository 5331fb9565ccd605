"""A content-addressed store of embedding vectors: a text is embedded once per encoder, then read back.

Layout under `root`, a local folder or `s3://bucket/prefix` (a UPath carrying its storage options):

    <root>/<encoder folder>/<shard>/<segment>.npz

The encoder folder is named after the encoder identity (model and backend, see `embedding.Encoder`), so vectors
of different models or precisions never mix. A text's key is the SHA-256 of its UTF-8 bytes; its first hex digit
picks one of 16 shards. A segment holds `keys` (n x 32 bytes) and `vectors` (n x dim float32) and is never
modified once written: `store` adds one new segment per shard it touches, written whole or not at all and named
after its content, so concurrent writers cannot corrupt each other and a crash costs at most a later miss.
A shard that has gathered more than COMPACT_AFTER_SEGMENTS segments is merged into one when next written; the merged
segment is written before its parts are removed, so runs writing and merging the same cache at once lose nothing
(docs/scaling.md).

A segment whose bytes do not decode, or whose content no longer matches the hash in its name, is a miss: it is
reported, removed, and its texts are embedded and stored again. The cache is only a speed-up; it never stops a step.

A cache hit returns the stored vector bit for bit, which is what keeps a re-materialized day identical even
when its texts are recomputed in different company (batched backends differ at the 1e-7 level then).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable, Sequence

import numpy as np
from upath import UPath

from support_nlp.core.storage import (
    CorruptArtifactError,
    StorageError,
    decoding,
    is_local,
    list_names,
    storage_errors,
    write_atomically,
)

SHARD_DIGITS = 1
COMPACT_AFTER_SEGMENTS = 32
SEGMENT_SUFFIX = ".npz"
LOG = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def encoder_folder(encoder_id: str) -> str:
    """A path-safe folder name that stays readable and cannot collide for different ids."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", encoder_id).strip("-")
    return f"{readable}-{hashlib.sha256(encoder_id.encode()).hexdigest()[:12]}"


def _shard_of(key: bytes) -> str:
    return key.hex()[:SHARD_DIGITS]


def _segment_bytes(keys: np.ndarray, vectors: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, keys=keys, vectors=vectors)
    return buffer.getvalue()


def _segment_arrays(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as segment:
        keys, vectors = segment["keys"], segment["vectors"]
    if _segment_name(keys, vectors) != name:
        raise ValueError("its content does not match the SHA-256 in its name")
    return keys, vectors


def _segment_name(keys: np.ndarray, vectors: np.ndarray) -> str:
    # Named after the content: writing the same entries twice (a retried run) yields one file, not two.
    digest = hashlib.sha256(keys.tobytes())
    digest.update(vectors.tobytes())
    return digest.hexdigest()[:32] + SEGMENT_SUFFIX


class EmbeddingCache:
    """Vectors by (encoder identity, text), kept in sharded, immutable `.npz` segments under `root`.

    Segments read once are remembered for the life of the object, so a run that embeds day after day reads
    each segment once; segments written meanwhile by other processes are picked up at the next lookup.
    """

    def __init__(self, root: UPath | str, warn: Callable[[str], None] = LOG.warning):
        self.root = UPath(root)
        self.warn = warn
        self._vectors: dict[str, dict[bytes, np.ndarray]] = {}
        self._segments_read: dict[str, set[str]] = {}

    def lookup(self, encoder_id: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vector of every text in `texts` that has one."""
        keys = {text: text_key(text) for text in texts}
        for shard in sorted({_shard_of(key) for key in keys.values()}):
            self._read_new_segments(encoder_id, shard)
        known = self._vectors.get(encoder_id, {})
        return {text: known[key] for text, key in keys.items() if key in known}

    def store(self, encoder_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Add `vectors[i]` as the vector of `texts[i]`; texts already stored keep their first vector."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts for {len(vectors)} vectors")
        known = self._vectors.setdefault(encoder_id, {})
        by_shard: dict[str, list[int]] = {}
        keys = [text_key(text) for text in texts]
        for row, key in enumerate(keys):
            if key not in known:
                by_shard.setdefault(_shard_of(key), []).append(row)
        for shard, rows in sorted(by_shard.items()):
            shard_keys = np.frombuffer(b"".join(keys[row] for row in rows), dtype=np.uint8).reshape(len(rows), 32)
            shard_vectors = np.ascontiguousarray(vectors[rows], dtype=np.float32)
            name = self._write_segment(encoder_id, shard, shard_keys, shard_vectors)
            self._remember(encoder_id, shard, name, shard_keys, shard_vectors)
            self._compact_if_fragmented(encoder_id, shard)

    def _shard_path(self, encoder_id: str, shard: str) -> UPath:
        return self.root / encoder_folder(encoder_id) / shard

    def _list_segments(self, encoder_id: str, shard: str) -> list[str]:
        try:
            names = list_names(self._shard_path(encoder_id, shard))
        except (FileNotFoundError, NotADirectoryError):
            # A shard never written: a missing folder locally, a prefix with no objects (not a "directory") on S3.
            return []
        return [name for name in names if name.endswith(SEGMENT_SUFFIX)]

    def _read_new_segments(self, encoder_id: str, shard: str) -> None:
        seen = self._segments_read.setdefault(encoder_id, set())
        # A segment listed but gone when read was merged away by another process, into a segment written before the
        # removal but possibly after the listing: list again until nothing listed has vanished, so that a lookup
        # racing a merge still finds every entry stored before it began.
        vanished = True
        while vanished:
            vanished = False
            for name in self._list_segments(encoder_id, shard):
                if f"{shard}/{name}" in seen:
                    continue
                path = self._shard_path(encoder_id, shard) / name
                try:
                    with storage_errors("read", path):
                        data = path.read_bytes()
                except FileNotFoundError:
                    vanished = True
                    continue
                try:
                    with decoding(path):
                        keys, vectors = _segment_arrays(data, name)
                except CorruptArtifactError as error:
                    seen.add(f"{shard}/{name}")
                    self._discard(path, error)
                    continue
                self._remember(encoder_id, shard, name, keys, vectors)

    def _discard(self, path: UPath, error: CorruptArtifactError) -> None:
        """Report a corrupt segment and remove it; its entries are stored again as new segments once re-embedded."""
        try:
            with storage_errors("remove", path):
                path.unlink(missing_ok=True)
        except StorageError as removal_error:
            error = f"{error} (and it could not be removed: {removal_error})"
        self.warn(f"embedding cache: {error}; its texts count as misses and are embedded and stored again")

    def _remember(self, encoder_id: str, shard: str, name: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        known = self._vectors.setdefault(encoder_id, {})
        for key, vector in zip(keys, vectors, strict=True):
            known.setdefault(key.tobytes(), vector)
        self._segments_read.setdefault(encoder_id, set()).add(f"{shard}/{name}")

    def _write_segment(self, encoder_id: str, shard: str, keys: np.ndarray, vectors: np.ndarray) -> str:
        folder = self._shard_path(encoder_id, shard)
        if is_local(folder):
            folder.mkdir(parents=True, exist_ok=True)
        name = _segment_name(keys, vectors)
        with storage_errors("write", folder / name):
            write_atomically(folder / name, _segment_bytes(keys, vectors))
        return name

    def _compact_if_fragmented(self, encoder_id: str, shard: str) -> None:
        names = self._list_segments(encoder_id, shard)
        if len(names) <= COMPACT_AFTER_SEGMENTS:
            return
        self._read_new_segments(encoder_id, shard)
        known = self._vectors[encoder_id]
        shard_keys = sorted(key for key in known if _shard_of(key) == shard)
        keys = np.frombuffer(b"".join(shard_keys), dtype=np.uint8).reshape(len(shard_keys), 32)
        vectors = np.stack([known[key] for key in shard_keys]).astype(np.float32, copy=False)
        merged = self._write_segment(encoder_id, shard, keys, vectors)
        self._segments_read[encoder_id].add(f"{shard}/{merged}")
        # The merged segment is complete before any part is removed, so a reader never loses an entry.
        for name in names:
            if name != merged:
                (self._shard_path(encoder_id, shard) / name).unlink(missing_ok=True)
