"""The cascade benchmark's trained shallow student: distilled on some real tweets, closer to the teacher on others."""

import numpy as np
import pytest

from support_nlp.benchmarks.cascade import bundled_inbound
from support_nlp.benchmarks.shallow_students import shallow_encoder
from support_nlp.benchmarks.trained_students import DistillationSettings, trained_shallow_encoder
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.encoders.torch_backend import load_sentence_transformer

FIT_TEXTS = 400
HELD_OUT_TEXTS = 200


@pytest.mark.benchmark
def test_training_brings_the_first_layer_closer_to_the_teacher_on_held_out_tweets(tmp_path):
    texts = list(bundled_inbound()["text"])
    np.random.default_rng(0).shuffle(texts)
    fit, held_out = texts[:FIT_TEXTS], texts[FIT_TEXTS : FIT_TEXTS + HELD_OUT_TEXTS]
    teacher = load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu")
    settings = DistillationSettings(epochs=2, max_seconds=60.0)

    trained, training = trained_shallow_encoder(
        BUNDLED_MODEL_NAME, 1, fit, embed_texts(fit, teacher), tmp_path, settings
    )

    assert training.texts == FIT_TEXTS and training.epochs == 2
    assert trained.layers == 1 and trained.identity.endswith("-layers1")
    teacher_vectors = embed_texts(held_out, teacher)
    before = (embed_texts(held_out, shallow_encoder(teacher, 1)) * teacher_vectors).sum(axis=1)
    after = (embed_texts(held_out, trained) * teacher_vectors).sum(axis=1)
    # Untrained, the first layer's mean pooling points far from the teacher; a few hundred tweets move it well
    # towards it on tweets it never saw, for most of them.
    assert after.mean() > before.mean() + 0.1
    assert (after > before).mean() > 0.8
    # Only the first layer was trained: the saved model's deeper layers are still the teacher's.
    saved = load_sentence_transformer.__wrapped__(str(next((tmp_path / "trained").iterdir())), "cpu")
    original = load_sentence_transformer.__wrapped__(teacher.model, "cpu")
    layers_of = [model[0].auto_model.encoder.layer for model in (saved, original)]
    assert len(layers_of[0]) == len(layers_of[1])
    for deep_saved, deep_original in zip(layers_of[0][1:], layers_of[1][1:], strict=True):
        for a, b in zip(deep_saved.parameters(), deep_original.parameters(), strict=True):
            assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    first_moved = [
        not np.array_equal(a.detach().numpy(), b.detach().numpy())
        for a, b in zip(layers_of[0][0].parameters(), layers_of[1][0].parameters(), strict=True)
    ]
    assert all(first_moved)
