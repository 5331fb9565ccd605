"""How a sentence-transformers model becomes the int8 ONNX model `onnx_runtime` runs; needs torch, once per export.

1. the model's transformer, switched to eager attention (the form ONNX Runtime's BERT fusions recognise), plus
   the model's mean pooling, traced by torch's TorchScript-based ONNX exporter. The newer torch.export-based
   exporter needs onnxscript, took 17 s instead of 1 s here and yields a graph whose attention ORT cannot fuse;
2. ONNX Runtime's transformer optimizer fuses attention, skip + layer norm and bias + GELU;
3. `quantize_dynamic`: int8 weights per output channel, activations quantized per call. The feed-forward
   down-projections of the first half of the layers stay float32: their inputs (GELU outputs) carry the largest
   per-channel outliers (up to 15x the median channel), which one int8 scale per tensor cannot represent; keeping
   them lifts the mean cosine to the fp32 model for ~10 % of the speed (docs/performance.md).

With `layers`, only the model's first `layers` transformer layers are exported (a shallow, cheaper encoder: the
cascade benchmark's contextual student), each quantized exactly as in the full model's export.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from support_nlp.core.encoders.base import UnsupportedModelError
from support_nlp.core.encoders.onnx_runtime import DESCRIPTION_FILE, MODEL_FILE, RECIPE_VERSION, TOKENIZER_FILE
from support_nlp.core.encoders.torch_backend import load_sentence_transformer

OPSET_VERSION = 17
FEED_FORWARD_DOWN_PROJECTION = re.compile(r"/layer\.(\d+)/output/dense/MatMul$")


def _check_exportable(sentence_transformer) -> None:
    kinds = [type(module).__name__ for module in sentence_transformer]
    pooling_mode = sentence_transformer[1].get_config_dict().get("pooling_mode") if len(kinds) > 1 else None
    if kinds[:2] != ["Transformer", "Pooling"] or pooling_mode != "mean" or kinds[2:] not in ([], ["Normalize"]):
        raise UnsupportedModelError(
            f"the onnx backend exports transformer + mean pooling (+ normalize); this model is {kinds} "
            f"with pooling {pooling_mode!r}: use backend 'torch'"
        )


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


def export_model(model: str, folder: Path, layers: int | None = None) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    # A private copy (the loader caches and shares its models): switching its attention must not touch theirs.
    sentence_transformer = load_sentence_transformer.__wrapped__(model, "cpu")
    _check_exportable(sentence_transformer)
    transformer = sentence_transformer[0].auto_model
    config = transformer.config
    # Which down-projections stay float32 is decided by the full model's depth, so that a truncated export's layers
    # are quantized exactly as the same layers of the full export.
    full_depth = config.num_hidden_layers
    if layers is not None:
        if not 1 <= layers <= full_depth:
            raise ValueError(f"{model} has {full_depth} transformer layers; cannot export the first {layers}")
        transformer.encoder.layer = transformer.encoder.layer[:layers]
        config.num_hidden_layers = layers
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
        if (match := FEED_FORWARD_DOWN_PROJECTION.search(node.name)) and int(match.group(1)) < full_depth // 2
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
    if layers is not None:
        description["layers"] = layers
    (folder / DESCRIPTION_FILE).write_text(json.dumps(description, indent=1))
