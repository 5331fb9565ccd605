"""Sentence encoders: one module per backend, one dispatcher (`load_encoder`).

- `torch_backend`: sentence-transformers; float32 on CPU, float16 with large batches on CUDA;
- `onnx_runtime`: the model exported to ONNX and int8-quantized, run by ONNX Runtime on CPU, without torch;
- `onnx_export`: how that export is made (torch), once per model and library versions, on first use;
- `static_backend`: a static student distilled from the ONNX encoder (backend "static");
- `use_multilingual`: Google's USE multilingual v3 in numpy, selected by its model name.

A new backend is one module with a class satisfying `Encoder`, plus its branch in `dispatch.load_encoder`.
"""

from support_nlp.core.encoders.base import (
    BACKENDS,
    BUNDLED_MODEL_NAME,
    Backend,
    Encoder,
    UnsupportedModelError,
    resolve_model_location,
)
from support_nlp.core.encoders.dispatch import load_encoder

__all__ = [
    "BACKENDS",
    "BUNDLED_MODEL_NAME",
    "Backend",
    "Encoder",
    "UnsupportedModelError",
    "load_encoder",
    "resolve_model_location",
]
