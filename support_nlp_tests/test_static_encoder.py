"""The static student encoder, distilled from the fast encoder and fitted on real tweets."""

import numpy as np
import pytest

from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, dispatch, load_encoder, static_backend
from support_nlp_tests.static_student import FIT_TEXTS, build_student, distinct_cleaned, teacher

HELD_OUT_TEXTS = 300
OTHER_FIT_TEXTS = 300


@pytest.fixture(scope="module")
def real_texts(real_inbound) -> list[str]:
    return distinct_cleaned(real_inbound)["text"].tolist()


@pytest.fixture(scope="module")
def fit_texts(real_texts) -> list[str]:
    return real_texts[:FIT_TEXTS]


@pytest.fixture(scope="module")
def held_out_texts(real_texts) -> list[str]:
    return real_texts[-HELD_OUT_TEXTS:]


@pytest.fixture(scope="module")
def student(fit_texts):
    return build_student(fit_texts)


@pytest.fixture(scope="module")
def student_vectors(student, held_out_texts) -> np.ndarray:
    return student.encode(held_out_texts)


def test_student_gives_unit_float32_vectors_in_the_teachers_dimension(student, student_vectors, held_out_texts):
    assert student.dimension == teacher().dimension
    assert student_vectors.shape == (len(held_out_texts), student.dimension)
    assert student_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(student_vectors, axis=1), 1.0, atol=1e-5)


def test_student_vectors_are_deterministic_and_do_not_depend_on_the_other_texts(
    student, student_vectors, held_out_texts
):
    np.testing.assert_array_equal(student.encode(held_out_texts), student_vectors)
    odd_ones = student.encode(held_out_texts[1::2][::-1])
    np.testing.assert_array_equal(odd_ones, student_vectors[1::2][::-1])
    np.testing.assert_array_equal(student.encode([held_out_texts[7]])[0], student_vectors[7])


def test_student_vectors_point_where_the_teachers_do_on_held_out_tweets(student_vectors, held_out_texts):
    cosines = (student_vectors * embed_texts(held_out_texts, teacher())).sum(axis=1)
    # Measured 0.68 with this fit sample (docs/performance.md); a pooling or projection mistake gives ~0 or worse.
    assert cosines.mean() >= 0.55


def test_a_text_without_tokens_still_gets_a_unit_vector(student):
    vectors = student.encode(["", "my order never arrived"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_identity_names_the_recipe_the_teacher_and_the_fit_sample(student, fit_texts):
    digest = static_backend.fit_digest(fit_texts)
    assert student.identity == (
        f"{BUNDLED_MODEL_NAME}|static-r{static_backend.RECIPE_VERSION}-from-onnx-int8-r1-fit-{digest}"
    )
    assert static_backend.fit_digest(fit_texts[:-1]) != digest


def test_a_second_build_reuses_the_distilled_student(student, fit_texts, monkeypatch):
    def distil_again(*args):
        raise AssertionError("distilled again although the student is cached")

    monkeypatch.setattr(static_backend, "_distil_into", distil_again)
    root = static_backend.default_student_root()
    folder = static_backend.distil_student(teacher(), fit_texts, root)
    assert static_backend.StaticEncoder(folder).identity == student.identity
    assert static_backend.student_folder(teacher(), fit_texts[:-1], root) != folder


def test_students_of_one_teacher_share_one_vocabulary_pass_bit_for_bit(
    student, fit_texts, real_texts, tmp_path, monkeypatch
):
    passes = []
    embed_vocabulary = static_backend._embed_vocabulary

    def counted(*args):
        passes.append(args)
        embed_vocabulary(*args)

    monkeypatch.setattr(static_backend, "_embed_vocabulary", counted)
    reported = []
    other_version = static_backend.distil_student(
        teacher(), real_texts[FIT_TEXTS : FIT_TEXTS + OTHER_FIT_TEXTS], tmp_path, report=reported.append
    )
    shared = static_backend.distil_student(teacher(), fit_texts, tmp_path)
    assert len(passes) == 1
    # A distillation takes minutes on a real corpus: each step shows its progress.
    for step in ("every vocabulary token through the transformer", "fit texts through the transformer", "training"):
        assert any(message.startswith(f"student: {step}") for message in reported), (step, reported)
    assert static_backend.StaticEncoder(other_version).identity != student.identity
    assert static_backend.StaticEncoder(shared).identity == student.identity
    # `student` lives in the user's cache folder with a vocabulary pass of its own (or from before it was shared):
    # the student on the vocabulary another student embedded must be the same to the bit.
    own = static_backend.student_folder(teacher(), fit_texts, static_backend.default_student_root())
    with (
        np.load(shared / static_backend.ARRAYS_FILE) as from_shared,
        np.load(own / static_backend.ARRAYS_FILE) as from_own,
    ):
        assert sorted(from_shared.files) == sorted(from_own.files)
        for name in from_own.files:
            np.testing.assert_array_equal(from_shared[name], from_own[name])


def test_the_static_backend_is_selectable_and_uses_its_fit_sample(student, fit_texts, monkeypatch):
    monkeypatch.setattr(static_backend, "default_fit_texts", lambda: fit_texts)
    dispatch._static_encoder.cache_clear()
    try:
        assert load_encoder(BUNDLED_MODEL_NAME, "static").identity == student.identity
    finally:
        dispatch._static_encoder.cache_clear()
    assert load_encoder(BUNDLED_MODEL_NAME, "auto", "cpu").identity.endswith("onnx-int8-r1")


def test_training_brings_the_student_closer_to_the_teacher_on_held_out_tweets(fit_texts, held_out_texts):
    token_vectors = static_backend.teacher_token_vectors(teacher(), static_backend.default_student_root())
    fit_ids, fit_lengths = static_backend.token_ids_by_teacher(teacher(), fit_texts)
    fit_targets = embed_texts(fit_texts, teacher())
    mapped = static_backend.mapped_student(token_vectors, fit_ids, fit_lengths, fit_targets)
    trained = static_backend.trained_student(mapped, fit_ids, fit_lengths, fit_targets)

    held_out = static_backend.token_ids_by_teacher(teacher(), held_out_texts)
    held_out_targets = embed_texts(held_out_texts, teacher())

    def mean_cosine(student: static_backend.StudentArrays) -> float:
        return float((student.encode_ids(*held_out) * held_out_targets).sum(axis=1).mean())

    assert mean_cosine(trained) > mean_cosine(mapped)
    unseen = np.setdiff1d(np.arange(len(token_vectors)), fit_ids)
    np.testing.assert_array_equal(trained.token_vectors[unseen], mapped.token_vectors[unseen])
