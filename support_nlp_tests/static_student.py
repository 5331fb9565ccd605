"""A static student distilled from the fast encoder on real tweets of the bundled sample, shared by the student and
cascade tests: both build it in the same folder of the session's temp root, so the second build is a cache hit."""

from pathlib import Path

import pandas as pd
import pytest

from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.encoders.onnx_runtime import OnnxEncoder
from support_nlp.core.encoders.static_backend import StaticEncoder, distil_student
from support_nlp.core.text import clean_text

FIT_TEXTS = 1500


def distinct_cleaned(real_inbound: pd.DataFrame) -> pd.DataFrame:
    """The bundled sample's distinct non-empty cleaned inbound texts with their day, in a seeded random order."""
    frame = pd.DataFrame({"text": real_inbound["text"].map(clean_text), "day": real_inbound["day"].to_numpy()})
    frame = frame[frame["text"] != ""].drop_duplicates("text")
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def teacher() -> OnnxEncoder:
    return load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu")


def student_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "static-students"


def build_student(tmp_path_factory: pytest.TempPathFactory, fit_texts: list[str]) -> StaticEncoder:
    return StaticEncoder(distil_student(teacher(), fit_texts, student_root(tmp_path_factory)))
