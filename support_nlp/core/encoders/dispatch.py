"""The one place that turns (model, backend, device) into an encoder.

"auto" runs torch on a CUDA device, otherwise the ONNX int8 export when onnxruntime is installed and the model can
be exported (transformer + mean pooling), otherwise torch. "static" is the student distilled from the ONNX
encoder (`static_backend`), never picked by "auto". `use_multilingual.MODEL_NAME` names a model with a runtime of
its own (numpy, CPU): "auto" runs it, the other backends refuse it. Encoders are built once per process and shared.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from support_nlp.core.encoders import onnx_runtime, use_multilingual
from support_nlp.core.encoders.base import (
    BACKENDS,
    BUNDLED_MODEL_NAME,
    Encoder,
    UnsupportedModelError,
    resolve_model_location,
)

# Where the NVIDIA driver exposes its devices. Without them CUDA cannot be available, and the CPU path is decided
# without importing torch (seconds of start-up on every run that the ONNX encoder does not need).
NVIDIA_DEVICE = Path("/dev/nvidiactl")


def default_device() -> str:
    if not NVIDIA_DEVICE.exists():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(
    model: str = BUNDLED_MODEL_NAME,
    backend: str = "auto",
    device: str | None = None,
    batch_size: int | None = None,
    export_dir: str | None = None,
) -> Encoder:
    """The encoder for `model` on `device` (default: CUDA if available, else CPU) with `backend` (module doc).

    The onnx backend exports the model on first use into `export_dir` (default: the user's cache folder) and
    reuses that export afterwards; `batch_size` applies to the torch backend (the onnx one runs one text per call).
    The static backend distils its student on first use, fitted on `static_backend.default_fit_texts()`, and keeps
    it beside the export (in `export_dir`, or the user's cache folder).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")
    if model == use_multilingual.MODEL_NAME:
        if backend != "auto":
            raise UnsupportedModelError(
                f"embedding model {model!r} runs on its own numpy encoder, not on backend {backend!r}; "
                "use backend 'auto'"
            )
        if device not in (None, "cpu"):
            raise ValueError(f"embedding model {model!r} runs on CPU, not on device {device!r}")
        return _use_multilingual_encoder()
    if backend in ("onnx", "static") and not onnx_runtime.is_available():
        raise ValueError(f"the {backend} backend needs onnxruntime, which is not installed; use backend 'torch'")
    if backend == "static":
        return _static_encoder(model, export_dir)
    device = device or default_device()
    if backend == "onnx" and device != "cpu":
        raise ValueError(f"the onnx backend runs on CPU; use backend 'torch' for device {device!r}")
    if backend != "torch" and device == "cpu" and onnx_runtime.is_available():
        encoder = _onnx_encoder(model, export_dir)
        if encoder is not None:
            return encoder
        if backend == "onnx":
            raise UnsupportedModelError(
                f"embedding model {model!r} is not transformer + mean pooling, which the onnx backend exports; "
                "use backend 'torch'"
            )
    return _torch_encoder(model, device, batch_size)


@lru_cache(maxsize=1)
def _use_multilingual_encoder() -> Encoder:
    return use_multilingual.UseMultilingualEncoder()


@lru_cache(maxsize=4)
def _torch_encoder(model: str, device: str, batch_size: int | None) -> Encoder:
    from support_nlp.core.encoders.torch_backend import TorchEncoder

    return TorchEncoder(model, device, batch_size)


@lru_cache(maxsize=4)
def _static_encoder(model: str, export_dir: str | None) -> Encoder:
    # Imported here: the static backend embeds its fit texts through core.embedding, which imports this package.
    from support_nlp.core.encoders import static_backend

    teacher = _onnx_encoder(model, export_dir)
    if teacher is None:
        raise UnsupportedModelError(f"the static backend distils the onnx export, which model {model!r} has none of")
    root = Path(export_dir) if export_dir else static_backend.default_student_root()
    folder = static_backend.distil_student(teacher, static_backend.default_fit_texts(), root)
    return static_backend.StaticEncoder(folder)


@lru_cache(maxsize=4)
def _onnx_encoder(model: str, export_dir: str | None) -> Encoder | None:
    """None for a model the onnx backend cannot export, remembered so that "auto" falls back without retrying."""
    root = Path(export_dir) if export_dir else onnx_runtime.default_export_root()
    try:
        return onnx_runtime.OnnxEncoder(onnx_runtime.ensure_exported(model, resolve_model_location(model), root))
    except UnsupportedModelError:
        return None
