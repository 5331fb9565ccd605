"""The static student: a sentence-transformer distilled into one vector per vocabulary token, no neural network at
run time (the model2vec idea, fitted to a corpus like tokenlearn).

Distillation (`distil_student`), once per teacher, fit sample and library versions, cached on disk:
1. every token of the teacher's vocabulary, alone between the tokenizer's special tokens, is embedded by the
   teacher (the int8 ONNX encoder): one teacher vector per token. This pass depends on the teacher alone, not on
   the fit texts, so it is a cached folder of its own (`teacher_token_vectors`), keyed by the teacher, its
   tokenizer and library versions, made once and shared by every student of that teacher: a retrained model
   version (other fit texts) repeats only steps 2 and 3;
2. token weights a / (a + p(token)) from the token frequencies p of the fit texts (SIF weights: frequent tokens
   such as "the" or "?" say little about a tweet's topic; tokens unseen in the fit texts weigh 1);
3. the weighted mean of a fit text's token vectors is regressed onto the teacher's vector of that text by ridge
   least squares (a linear map plus an offset), so student vectors live in the teacher's space;
4. starting from that fit (the map folded into the token vectors: a weighted mean commutes with a linear map),
   the token vectors, their weights and the offset are trained together, with torch, so that each fit text's
   student vector points where the teacher's does (cosine loss): the tokenlearn idea, where step 3 alone can only
   move every token by the same map.
Encoding a text is a tokenization, a gather and a weighted mean: `tokenizers`' batch encoder and `np.add.reduceat`
over chunks of texts.

A text's vector depends on that text alone. The fit sample is explicit (`distil_student` takes the texts) and part
of the cache key and of the encoder identity, so the same texts always give the same student. The teacher's
token vectors are deterministic (each input runs alone, single-threaded), so a student built on the shared
vocabulary pass is bit for bit the one a pass of its own would give.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders.built_folder import build_once, keyed_folder, library_versions
from support_nlp.core.encoders.onnx_runtime import TOKENIZER_FILE, OnnxEncoder, default_export_root
from support_nlp.core.progress import Progress, ProgressCallback

if TYPE_CHECKING:
    from support_nlp.core.embedding_cache import EmbeddingCache

RECIPE_VERSION = "2"
# How step 1 makes its single-token inputs. Its token vectors feed every student: a change changes student vectors
# too, so RECIPE_VERSION (in the student's identity) goes up with it.
VOCABULARY_RECIPE_VERSION = "1"
DESCRIPTION_FILE = "student.json"
ARRAYS_FILE = "student.npz"
VOCABULARY_DESCRIPTION_FILE = "vocabulary.json"
VOCABULARY_VECTORS_FILE = "token_vectors.npy"
LIBRARIES = ("tokenizers", "numpy", "onnxruntime", "torch")
# SIF's smoothing constant (a token as frequent as 1 in 100 tokens of the fit texts gets half weight) and the ridge
# penalty relative to the mean feature variance: chosen among 1e-4..1e-2 and 1e-3..1 by the mean cosine to the
# teacher on distinct held-out tweets of the bundled sample (docs/performance.md).
SIF_SMOOTHING = 1e-2
RIDGE_PENALTY = 1e-2
# Step 4, chosen on distinct held-out tweets of the bundled sample by their mean cosine to the teacher (Adam; at
# a rate of 3e-3 or after 5 epochs the held-out cosine fell again; pulling tokens towards step 3's vectors lowered
# it: docs/performance.md).
TRAINING_EPOCHS = 4
TRAINING_RATE = 1e-3
TRAINING_BATCH_ROWS = 64
TRAINING_SEED = 0
# Texts per pooling step: bounds the gathered (tokens x dimension) block to ~40 MB for tweets.
ENCODE_CHUNK_ROWS = 1024
# Held-out cosine to the teacher still rose from 4,000 to 8,000 fit texts; the teacher embeds them once.
DEFAULT_FIT_ROWS = 8000
DEFAULT_FIT_SEED = 0


def default_student_root() -> Path:
    return default_export_root().with_name("static")


def fit_digest(fit_texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in fit_texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def default_fit_texts(rows: int = DEFAULT_FIT_ROWS, seed: int = DEFAULT_FIT_SEED) -> list[str]:
    """A seeded sample of the distinct cleaned inbound tweets of the bundled real twcs sample."""
    from support_nlp.core.text import clean_text
    from support_nlp.core.twcs import BUNDLED_SAMPLE

    sample = pd.read_csv(BUNDLED_SAMPLE, dtype=str, keep_default_na=False, usecols=["inbound", "text"])
    cleaned = sorted({text for text in map(clean_text, sample.loc[sample["inbound"] == "True", "text"]) if text})
    chosen = np.random.default_rng(seed).choice(len(cleaned), size=min(rows, len(cleaned)), replace=False)
    return [cleaned[row] for row in np.sort(chosen)]


def _teacher_key(teacher: OnnxEncoder) -> dict:
    """What the teacher's vectors depend on: the model, its export, and the libraries that tokenize and run it."""
    return {
        "teacher": teacher.identity,
        "teacher_export": teacher.folder.name,
        "libraries": library_versions(LIBRARIES),
    }


def vocabulary_folder(teacher: OnnxEncoder, root: Path) -> Path:
    tokenizer = hashlib.sha256((teacher.folder / TOKENIZER_FILE).read_bytes()).hexdigest()[:16]
    key = {**_teacher_key(teacher), "tokenizer": tokenizer, "recipe": VOCABULARY_RECIPE_VERSION}
    return keyed_folder(root, f"{teacher.model}-vocabulary", key)


def student_folder(teacher: OnnxEncoder, fit_texts: list[str], root: Path) -> Path:
    # The same key as before the vocabulary pass was shared (its vectors are bit-identical): students distilled
    # then are still found.
    key = {**_teacher_key(teacher), "recipe": RECIPE_VERSION, "fit_texts": fit_digest(fit_texts)}
    return keyed_folder(root, f"{teacher.model}-static", key)


def teacher_token_vectors(teacher: OnnxEncoder, root: Path, report: ProgressCallback | None = None) -> np.ndarray:
    """The teacher's vector of every vocabulary token (step 1), embedded on first use under `root`."""

    def embed(staging: Path) -> None:
        _embed_vocabulary(staging, teacher, report)

    folder = build_once(vocabulary_folder(teacher, root), VOCABULARY_DESCRIPTION_FILE, embed)
    return np.load(folder / VOCABULARY_VECTORS_FILE)


def distil_student(
    teacher: OnnxEncoder,
    fit_texts: list[str],
    root: Path,
    cache: EmbeddingCache | None = None,
    report: ProgressCallback | None = None,
) -> Path:
    """The folder of the student of `teacher` fitted on `fit_texts`, distilling it if it does not exist yet.

    `cache` (optional) serves and keeps the teacher's vectors of the fit texts; `report` follows the distillation."""
    if not fit_texts:
        raise ValueError("distilling a student needs fit texts")

    def distil(staging: Path) -> None:
        _distil_into(staging, teacher, teacher_token_vectors(teacher, root, report), fit_texts, cache, report)

    return build_once(student_folder(teacher, fit_texts, root), DESCRIPTION_FILE, distil)


def cross_fitted_vectors(
    teacher: OnnxEncoder,
    fit_texts: list[str],
    root: Path,
    cache: EmbeddingCache | None = None,
    report: ProgressCallback | None = None,
) -> np.ndarray:
    """Each fit text's vector from a student fitted on the other half of the fit texts (seeded halves).

    Trained on its fit texts, a student lands much closer to the teacher on them than on texts it has not seen, so
    a classifier trained on its own fit texts' vectors is surer of itself than it will be on new tweets. These are
    the vectors of texts a student was not fitted on; each half's student is an ordinary cached student."""
    halves = np.random.default_rng(TRAINING_SEED).permutation(len(fit_texts)) % 2
    vectors = np.empty((len(fit_texts), teacher.dimension), dtype=np.float32)
    for half in (0, 1):
        rows, others = np.flatnonzero(halves == half), np.flatnonzero(halves != half)
        student = StaticEncoder(distil_student(teacher, [fit_texts[row] for row in others], root, cache, report))
        vectors[rows] = student.encode([fit_texts[row] for row in rows])
    return vectors


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _single_token_inputs(tokenizer) -> list[list[int]]:
    """Each vocabulary token between the special tokens the tokenizer puts around a text."""
    probe_with = tokenizer.encode("a").ids
    probe = tokenizer.encode("a", add_special_tokens=False).ids
    start = next(i for i in range(len(probe_with)) if probe_with[i : i + len(probe)] == probe)
    prefix, suffix = probe_with[:start], probe_with[start + len(probe) :]
    return [[*prefix, token, *suffix] for token in range(tokenizer.get_vocab_size())]


def _token_ids(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' token ids end to end, and each text's token count."""
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(encoding.ids) for encoding in encodings), dtype=np.int64, count=len(texts))
    ids = np.fromiter(chain.from_iterable(encoding.ids for encoding in encodings), dtype=np.int64, count=lengths.sum())
    return ids, lengths


def token_ids_by_teacher(teacher: OnnxEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' token ids end to end and each text's token count, by the teacher's tokenizer (students use it)."""
    return _token_ids(_tokenizer(teacher.folder / TOKENIZER_FILE), texts)


def _weighted_sums(token_rows: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per text, the sum of `token_rows` over its tokens; zero for a text without tokens."""
    sums = np.zeros((len(lengths), token_rows.shape[1]), dtype=np.float32)
    present = lengths > 0
    if present.any():
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[present]
        sums[present] = np.add.reduceat(token_rows[ids], starts, axis=0)
    return sums


def _embed_vocabulary(folder: Path, teacher: OnnxEncoder, report: ProgressCallback | None) -> None:
    tokenizer = _tokenizer(teacher.folder / TOKENIZER_FILE)
    inputs = _single_token_inputs(tokenizer)
    progress = Progress("student: every vocabulary token through the transformer (once per model)", len(inputs), report)
    np.save(folder / VOCABULARY_VECTORS_FILE, teacher.encode_token_ids(inputs, progress))
    description = {"model": teacher.model, "teacher": teacher.identity, "vocabulary_tokens": tokenizer.get_vocab_size()}
    (folder / VOCABULARY_DESCRIPTION_FILE).write_text(json.dumps(description, indent=1))


def _distil_into(
    folder: Path,
    teacher: OnnxEncoder,
    token_vectors: np.ndarray,
    fit_texts: list[str],
    cache: EmbeddingCache | None,
    report: ProgressCallback | None,
) -> None:
    ids, lengths = token_ids_by_teacher(teacher, fit_texts)
    targets = embed_texts(
        fit_texts, teacher, Progress("student: fit texts through the transformer", len(fit_texts), report), cache
    )
    mapped = mapped_student(token_vectors, ids, lengths, targets)
    steps = TRAINING_EPOCHS * int((lengths > 0).sum())
    training = Progress(f"student: training, {TRAINING_EPOCHS} epochs", steps, report)
    trained = trained_student(mapped, ids, lengths, targets, training)
    np.savez(
        folder / ARRAYS_FILE,
        weighted_token_vectors=trained.token_vectors * trained.token_weights[:, None],
        token_weights=trained.token_weights,
        offset=trained.offset,
    )
    shutil.copy(teacher.folder / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    description = {
        "model": teacher.model,
        "teacher": teacher.identity,
        "dimension": int(token_vectors.shape[1]),
        "recipe": RECIPE_VERSION,
        "fit_texts": len(fit_texts),
        "fit_digest": fit_digest(fit_texts),
        "fit_mean_cosine_to_teacher_after_map": round(_mean_cosine(mapped, ids, lengths, targets), 4),
        "fit_mean_cosine_to_teacher": round(_mean_cosine(trained, ids, lengths, targets), 4),
        "training_epochs": TRAINING_EPOCHS,
        "vocabulary_tokens": len(token_vectors),
        "tokens_seen_in_fit_texts": int((np.bincount(ids, minlength=len(token_vectors)) > 0).sum()),
    }
    (folder / DESCRIPTION_FILE).write_text(json.dumps(description, indent=1))


@dataclass(frozen=True)
class StudentArrays:
    token_vectors: np.ndarray  # vocabulary x dimension, in the teacher's space
    token_weights: np.ndarray  # vocabulary
    offset: np.ndarray  # dimension

    def encode_ids(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        weighted = self.token_vectors * self.token_weights[:, None]
        return _student_vectors(weighted, self.token_weights[:, None], self.offset, ids, lengths)


def _student_vectors(
    weighted_token_vectors: np.ndarray,
    token_weights: np.ndarray,
    offset: np.ndarray,
    ids: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
    """Unit-length vectors of texts given as token ids end to end and token counts (`token_weights` a column)."""
    weight_sums = _weighted_sums(token_weights, ids, lengths)
    # A text without tokens gets the offset alone: the fitted map's answer for "no evidence".
    vectors = _weighted_sums(weighted_token_vectors, ids, lengths) / np.maximum(weight_sums, 1e-12) + offset
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def mapped_student(
    token_vectors: np.ndarray, ids: np.ndarray, lengths: np.ndarray, targets: np.ndarray
) -> StudentArrays:
    """Steps 2 and 3: SIF weights from the fit texts' token counts, and the ridge map of their weighted means onto
    the teacher's vectors `targets`, folded into the token vectors."""
    counts = np.bincount(ids, minlength=len(token_vectors))
    weights = (SIF_SMOOTHING / (SIF_SMOOTHING + counts / counts.sum())).astype(np.float32)
    weight_sums = _weighted_sums(weights[:, None], ids, lengths)
    features = _weighted_sums(token_vectors * weights[:, None], ids, lengths) / np.maximum(weight_sums, 1e-12)
    # Ridge with an unpenalised offset: centre both sides, solve the normal equations, recover the offset.
    feature_mean, target_mean = features.mean(axis=0), targets.mean(axis=0)
    centred = (features - feature_mean).astype(np.float64)
    gram = centred.T @ centred
    penalty = RIDGE_PENALTY * np.trace(gram) / len(gram)
    projection = np.linalg.solve(gram + penalty * np.eye(len(gram)), centred.T @ (targets - target_mean))
    offset = target_mean - feature_mean @ projection
    return StudentArrays((token_vectors @ projection).astype(np.float32), weights, offset.astype(np.float32))


def _mean_cosine(student: StudentArrays, ids: np.ndarray, lengths: np.ndarray, targets: np.ndarray) -> float:
    return float((student.encode_ids(ids, lengths) * targets).sum(axis=1).mean())


def trained_student(
    start: StudentArrays,
    ids: np.ndarray,
    lengths: np.ndarray,
    targets: np.ndarray,
    progress: Progress | None = None,
) -> StudentArrays:
    """Step 4: token vectors, log token weights and offset trained by Adam on 1 - cosine to the teacher, from
    `start`, in seeded batches of fit texts. Tokens absent from the fit texts keep their start values."""
    import torch
    from torch.nn.functional import cosine_similarity, embedding_bag

    token_vectors = torch.nn.Parameter(torch.from_numpy(start.token_vectors.copy()))
    log_weights = torch.nn.Parameter(torch.from_numpy(np.log(start.token_weights)))
    offset = torch.nn.Parameter(torch.from_numpy(start.offset.copy()))
    optimiser = torch.optim.Adam([token_vectors, log_weights, offset], lr=TRAINING_RATE)
    ones = torch.ones(len(start.token_weights), 1)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    goals = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    rng = np.random.default_rng(TRAINING_SEED)
    with_tokens = np.flatnonzero(lengths > 0)
    torch.manual_seed(TRAINING_SEED)
    for _ in range(TRAINING_EPOCHS):
        order = rng.permutation(with_tokens)
        for batch_start in range(0, len(order), TRAINING_BATCH_ROWS):
            rows = order[batch_start : batch_start + TRAINING_BATCH_ROWS]
            tokens = torch.from_numpy(np.concatenate([ids[starts[row] : starts[row] + lengths[row]] for row in rows]))
            bags = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths[rows])[:-1]]))
            weights = torch.exp(log_weights[tokens])
            sums = embedding_bag(tokens, token_vectors, bags, mode="sum", per_sample_weights=weights)
            vectors = sums / embedding_bag(tokens, ones, bags, mode="sum", per_sample_weights=weights) + offset
            loss = (1 - cosine_similarity(vectors, goals[rows])).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if progress:
                progress.advance(len(rows))
    with torch.no_grad():
        return StudentArrays(token_vectors.numpy().copy(), torch.exp(log_weights).numpy().copy(), offset.numpy().copy())


class StaticEncoder:
    """Unit-length float32 vectors from the distilled token vectors; see the module docstring."""

    def __init__(self, folder: Path):
        description = json.loads((folder / DESCRIPTION_FILE).read_text())
        self.description = description
        self.model = description["model"]
        self.dimension = int(description["dimension"])
        teacher_kind = description["teacher"].split("|", 1)[1]
        self.identity = f"{self.model}|static-r{RECIPE_VERSION}-from-{teacher_kind}-fit-{description['fit_digest']}"
        self._tokenizer = _tokenizer(folder / TOKENIZER_FILE)
        with np.load(folder / ARRAYS_FILE) as arrays:
            self._weighted_token_vectors = arrays["weighted_token_vectors"]
            self._token_weights = arrays["token_weights"][:, None]
            self._offset = arrays["offset"]

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), ENCODE_CHUNK_ROWS):
            chunk = texts[start : start + ENCODE_CHUNK_ROWS]
            ids, lengths = _token_ids(self._tokenizer, chunk)
            vectors[start : start + len(chunk)] = _student_vectors(
                self._weighted_token_vectors, self._token_weights, self._offset, ids, lengths
            )
            if progress:
                progress.advance(len(chunk))
        return vectors
