"""A trained shallow student: the teacher's first N transformer layers fine-tuned to reproduce the teacher's vectors.

Starts from the configured model cut after N layers (as `shallow_students`) and trains those layers (the word
embeddings stay the teacher's) with torch on CPU, so that their mean-pooled, normalised output has the largest
cosine to the teacher's vector of each fit text: the teacher's own vectors of the cascade's fit texts only, never a
calibration or an evaluation text; a few epochs, bounded by a time budget. The trained layers are put back in place
of the teacher's first N in the whole model, which is saved as a sentence-transformers folder, so that the product's
ONNX export with `layers=N` makes it exactly as it makes the untrained shallow students (the same float32 / int8
choice per layer, decided by the whole model's depth); its deeper layers are never used.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from support_nlp.core.encoders import resolve_model_location
from support_nlp.core.encoders.built_folder import build_once, keyed_folder
from support_nlp.core.encoders.onnx_export import MeanPooledTransformer
from support_nlp.core.encoders.onnx_runtime import OnnxEncoder, ensure_exported
from support_nlp.core.encoders.torch_backend import load_sentence_transformer

TRAINING_FILE = "training.json"


@dataclass(frozen=True)
class DistillationSettings:
    epochs: int = 3
    max_seconds: float = 540.0  # training stops after the epoch or batch that passes it
    batch_size: int = 32
    learning_rate: float = 1e-3
    threads: int = 2
    seed: int = 0


@dataclass(frozen=True)
class Training:
    texts: int
    epochs: float  # completed, fractional when the time budget ended one early
    wall_s: float
    cpu_s: float
    final_loss: float  # mean (1 - cosine) over the last epoch's batches


def distil_first_layers(
    model: str, layers: int, texts: list[str], targets: np.ndarray, settings: DistillationSettings
) -> tuple[object, Training]:
    """The sentence-transformers model `model` whose first `layers` transformer layers were trained so that their
    mean-pooled output points like `targets` (one unit vector per text); its deeper layers are the teacher's."""
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    # A private copy (the loader caches and shares its models): training must not touch theirs.
    sentence_transformer = load_sentence_transformer.__wrapped__(resolve_model_location(model), "cpu")
    transformer = sentence_transformer[0].auto_model
    every_layer = transformer.encoder.layer
    if not 1 <= layers <= len(every_layer):
        raise ValueError(f"{model} has {len(every_layer)} transformer layers; cannot train the first {layers}")
    transformer.encoder.layer = every_layer[:layers]  # the same module objects: training them trains the whole model's
    student = MeanPooledTransformer(transformer)
    student.eval()  # no dropout: a regression onto fixed targets
    # The word embeddings stay the teacher's: their dense update over the whole vocabulary cost most of each step,
    # and a fit corpus of tweets reaches a small part of the vocabulary.
    transformer.embeddings.word_embeddings.requires_grad_(False)
    trained = [*transformer.embeddings.parameters(), *transformer.encoder.layer.parameters()]
    parameters = [parameter for parameter in trained if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.0)
    target_tensor = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    batches_per_epoch = -(-len(texts) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=settings.epochs * batches_per_epoch)
    generator = np.random.default_rng(settings.seed)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    batches_done, epoch_losses = 0, []
    for _ in range(settings.epochs):
        epoch_losses = []
        for batch in np.array_split(generator.permutation(len(texts)), batches_per_epoch):
            features = sentence_transformer.preprocess([texts[i] for i in batch])
            pooled = student(features["input_ids"], features["attention_mask"])
            cosine = torch.nn.functional.cosine_similarity(pooled, target_tensor[batch], dim=1)
            loss = (1.0 - cosine).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            batches_done += 1
            epoch_losses.append(float(loss.detach()))
            if time.perf_counter() - started_wall > settings.max_seconds:
                break
        if time.perf_counter() - started_wall > settings.max_seconds:
            break
    transformer.encoder.layer = every_layer
    training = Training(
        len(texts),
        batches_done / batches_per_epoch,
        time.perf_counter() - started_wall,
        time.process_time() - started_cpu,
        float(np.mean(epoch_losses)),
    )
    return sentence_transformer, training


def trained_model_folder(
    model: str, layers: int, texts: list[str], targets: np.ndarray, root: Path, settings: DistillationSettings
) -> Path:
    """The folder of `distil_first_layers`' model for these inputs, trained once and kept in `root`."""
    key = {
        "model": model,
        "layers": layers,
        "texts": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
        "targets": hashlib.sha256(np.ascontiguousarray(targets, dtype=np.float32).tobytes()).hexdigest(),
        "settings": settings.__dict__,
    }

    def train(staging: Path) -> None:
        sentence_transformer, training = distil_first_layers(model, layers, texts, targets, settings)
        sentence_transformer.save(str(staging))
        (staging / TRAINING_FILE).write_text(json.dumps(training.__dict__, indent=1))

    return build_once(keyed_folder(root, f"{model}-trained{layers}", key), TRAINING_FILE, train)


def trained_shallow_encoder(
    model: str, layers: int, texts: list[str], targets: np.ndarray, root: Path, settings: DistillationSettings
) -> tuple[OnnxEncoder, Training]:
    """The trained model's first `layers` layers, exported by the product's ONNX export, and how it was trained."""
    folder = trained_model_folder(model, layers, texts, targets, root / "trained", settings)
    training = Training(**json.loads((folder / TRAINING_FILE).read_text()))
    return OnnxEncoder(ensure_exported(str(folder), str(folder), root / "onnx", layers)), training
