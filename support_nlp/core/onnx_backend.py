"""The fast CPU encoder: a sentence-transformers model exported to ONNX, int8-quantized, run by ONNX Runtime.

Export, once per model and library versions, offline, cached on disk (`ensure_exported`):
1. the model's transformer, switched to eager attention (the form ONNX Runtime's BERT fusions recognise), plus
   the model's mean pooling, traced by torch's TorchScript-based ONNX exporter. The newer torch.export-based
   exporter needs onnxscript, took 17 s instead of 1 s here and yields a graph whose attention ORT cannot fuse;
2. ONNX Runtime's transformer optimizer fuses attention, skip + layer norm and bias + GELU;
3. `quantize_dynamic`: int8 weights per output channel, activations quantized per call. The feed-forward
   down-projections of the first half of the layers stay float32: their inputs (GELU outputs) carry the largest
   per-channel outliers (up to 15x the median channel), which one int8 scale per tensor cannot represent; keeping
   them lifts the mean cosine to the fp32 model from ~0.990 to ~0.993 on real tweets for ~10 % of the speed.

Inference runs each text on its own. There is then no padding to compute, and since dynamic quantization
derives activation scales from the whole input of a call, a text's vector depends on that text alone, never on
which other texts are embedded alongside it. Texts run in parallel, one single-threaded ORT run per core.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from support_nlp.core.progress import Progress

# Bump when the export or quantization recipe changes: it names both the export folder and the cache namespace.
RECIPE_VERSION = "1"
PRECISION = "int8"
OPSET_VERSION = 17
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
DESCRIPTION_FILE = "encoder.json"
LIBRARIES = ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime")
FEED_FORWARD_DOWN_PROJECTION = re.compile(r"/layer\.(\d+)/output/dense/MatMul$")
PROGRESS_CHUNK_ROWS = 256


class UnsupportedModelError(ValueError):
    """The model's sentence-transformers pipeline is not transformer + mean pooling (+ normalize)."""


def is_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_export_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "support_nlp" / "onnx"


def _check_exportable(sentence_transformer) -> None:
    kinds = [type(module).__name__ for module in sentence_transformer]
    pooling_mode = sentence_transformer[1].get_config_dict().get("pooling_mode") if len(kinds) > 1 else None
    if kinds[:2] != ["Transformer", "Pooling"] or pooling_mode != "mean" or kinds[2:] not in ([], ["Normalize"]):
        raise UnsupportedModelError(
            f"the onnx backend exports transformer + mean pooling (+ normalize); this model is {kinds} "
            f"with pooling {pooling_mode!r}: use backend 'torch'"
        )


def _weights_fingerprint(location: str) -> list:
    """Size and mtime of local weight files, so a model replaced at the same path is exported again."""
    folder = Path(location)
    if not folder.is_dir():
        return []
    return [
        [path.name, path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted(folder.iterdir())
        if path.suffix in (".safetensors", ".bin")
    ]


def export_folder(model: str, location: str, root: Path) -> Path:
    """Where the export of `model` for the installed library versions lives (whether or not it exists yet)."""
    recipe = {
        "model": model,
        "location": location,
        "weights": _weights_fingerprint(location),
        "recipe": RECIPE_VERSION,
        "libraries": {name: metadata.version(name) for name in LIBRARIES},
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")
    return root / f"{readable}-{digest}"


def ensure_exported(model: str, location: str, root: Path) -> Path:
    """The folder with the quantized model, tokenizer and description of `model`, exporting it if needed."""
    folder = export_folder(model, location, root)
    if (folder / DESCRIPTION_FILE).exists():
        return folder
    # Built beside its final place and renamed in one step: a crash or a concurrent export leaves no half folder.
    staging = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    try:
        _export(model, staging)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / DESCRIPTION_FILE).exists():
                raise  # not a concurrent export that finished first: a real failure
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@contextmanager
def _quiet_tracing() -> Iterator[None]:
    # The TorchScript exporter is deprecated upstream and its tracer warns about padding branches that this graph,
    # whose attention mask always spans the whole input, never takes; neither warning is actionable here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    # quantize_dynamic advises "pre-processing" (shape inference) on the root logger at every export; the fused
    # graph cannot take it (see DefaultTensorType below), so in a user's first run the advice is only noise.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class MeanPooledTransformer(torch.nn.Module):
    """The transformer's token states averaged over real (unmasked) tokens, as sentence-transformers pools."""

    def __init__(self, transformer: torch.nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def _export(model: str, folder: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from support_nlp.core.embedding import load_model

    # A private copy (load_model caches and shares its models): switching its attention must not touch theirs.
    sentence_transformer = load_model.__wrapped__(model, "cpu")
    _check_exportable(sentence_transformer)
    transformer = sentence_transformer[0].auto_model
    config = transformer.config
    transformer.set_attn_implementation("eager")
    traced = folder / "traced.onnx"
    fused = folder / "fused.onnx"
    example = torch.ones((2, 8), dtype=torch.int64)
    with _quiet_tracing(), torch.inference_mode():
        torch.onnx.export(
            MeanPooledTransformer(transformer).eval(),
            (example, example),
            str(traced),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET_VERSION,
            dynamo=False,
        )
    optimize_model(
        str(traced),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,
    ).save_model_to_file(str(fused))
    graph = onnx.load(str(fused), load_external_data=False)
    kept_float = [
        node.name
        for node in graph.graph.node
        if (match := FEED_FORWARD_DOWN_PROJECTION.search(node.name))
        and int(match.group(1)) < config.num_hidden_layers // 2
    ]
    with _quiet_quantizer():
        quantize_dynamic(
            str(fused),
            str(folder / MODEL_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=kept_float,
            # Fused contrib ops defeat ONNX shape inference; every tensor they produce is float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    traced.unlink()
    fused.unlink()
    sentence_transformer.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    description = {
        "model": model,
        "dimension": int(config.hidden_size),
        "max_seq_length": int(sentence_transformer.max_seq_length),
        "recipe": RECIPE_VERSION,
        "float32_nodes": kept_float,
    }
    (folder / DESCRIPTION_FILE).write_text(json.dumps(description, indent=1))


class OnnxEncoder:
    """Unit-length float32 embeddings from the exported int8 model; see the module docstring."""

    def __init__(self, folder: Path, workers: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        description = json.loads((folder / DESCRIPTION_FILE).read_text())
        self.model = description["model"]
        self.dimension = int(description["dimension"])
        self.identity = f"{self.model}|onnx-{PRECISION}-r{RECIPE_VERSION}"
        self.workers = workers or available_cores()
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        # The saved tokenizer pads to a fixed length for batches; one text per run needs no padding at all.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(description["max_seq_length"])
        options = ort.SessionOptions()
        # Parallelism comes from running texts side by side; each run stays on one core and so stays
        # deterministic and free of thread hand-offs, which dominate for inputs of a few dozen tokens.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])

    def _embed_one(self, token_ids: list[int]) -> np.ndarray:
        input_ids = np.asarray([token_ids], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        return self._session.run(None, feeds)[0][0]

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        token_ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        with ThreadPoolExecutor(self.workers) as pool:
            for start in range(0, len(texts), PROGRESS_CHUNK_ROWS):
                chunk = token_ids[start : start + PROGRESS_CHUNK_ROWS]
                vectors[start : start + len(chunk)] = list(pool.map(self._embed_one, chunk))
                if progress:
                    progress.advance(len(chunk))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
