"""Model and array artifacts as plain .npz files: numeric arrays plus a JSON header, never pickle.

Loading an artifact can therefore never execute code, and only the classes registered here can be
rebuilt from storage.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from support_nlp.core.category_schema import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.student_classifier import StudentClassifier

ARTIFACT_TYPES = {cls.__name__: cls for cls in (EmbeddingBatch, CategoryModel, ClassifierModel, StudentClassifier)}
HEADER_KEY = "__header__"


def artifact_to_bytes(artifact) -> bytes:
    type_name = type(artifact).__name__
    if type_name not in ARTIFACT_TYPES:
        raise TypeError(f"cannot store {type_name}; storable artifact types: {sorted(ARTIFACT_TYPES)}")
    arrays, meta = artifact.to_arrays()
    header = json.dumps({"type": type_name, "meta": meta})
    buffer = io.BytesIO()
    np.savez(buffer, **{HEADER_KEY: np.array(header)}, **arrays)
    return buffer.getvalue()


def artifact_from_bytes(data: bytes):
    # np.load reads each array's exact byte count and may stop before zipfile reaches the member's end, where it
    # compares the CRC-32: a flipped bit in the data would come back as a wrong value instead of an error.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if (damaged := archive.testzip()) is not None:
            raise ValueError(f"the CRC-32 of {damaged} does not match its content")
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        header = json.loads(str(archive[HEADER_KEY]))
        arrays = {name: archive[name] for name in archive.files if name != HEADER_KEY}
    cls = ARTIFACT_TYPES.get(header["type"])
    if cls is None:
        raise TypeError(f"refusing to load unknown artifact type {header['type']!r}")
    return cls.from_arrays(arrays, header["meta"])
