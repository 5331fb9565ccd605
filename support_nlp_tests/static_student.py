"""A static student distilled from the fast encoder on real tweets of the bundled sample, shared by the student and
cascade tests. Like the ONNX export the tests use, it is kept in the user's cache folder: the first run distils it
(every vocabulary token through the teacher, tens of seconds), later runs and the other module reuse it."""

import pandas as pd

from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.encoders.onnx_runtime import OnnxEncoder
from support_nlp.core.encoders.static_backend import StaticEncoder, default_student_root, distil_student
from support_nlp.core.text import clean_text

FIT_TEXTS = 1500


def distinct_cleaned(real_inbound: pd.DataFrame) -> pd.DataFrame:
    """The bundled sample's distinct non-empty cleaned inbound texts with their day, in a seeded random order."""
    frame = pd.DataFrame({"text": real_inbound["text"].map(clean_text), "day": real_inbound["day"].to_numpy()})
    frame = frame[frame["text"] != ""].drop_duplicates("text")
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def teacher() -> OnnxEncoder:
    return load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu")


def build_student(fit_texts: list[str]) -> StaticEncoder:
    return StaticEncoder(distil_student(teacher(), fit_texts, default_student_root()))
