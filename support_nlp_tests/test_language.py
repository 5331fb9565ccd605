"""Language identification of real cleaned tweets: deterministic, 'und' when short, sane on clear cases."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support_nlp.core.language import DETECT, DETECTORS, MIN_LETTERS, UNDETERMINED, detect_languages
from support_nlp.core.text import clean_text

SUBPROCESS_SCRIPT = """
import json, sys
from support_nlp.core.language import detect_languages
texts = json.load(open(sys.argv[1], encoding="utf-8"))
from support_nlp.core.language import DETECTORS
json.dump({d: detect_languages(texts, d) for d in DETECTORS}, open(sys.argv[2], "w"))
"""


def letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


@pytest.fixture(scope="module")
def cleaned_texts(real_inbound) -> list[str]:
    return [clean_text(t) for t in real_inbound["text"]]


@pytest.fixture(scope="module")
def sample_texts(cleaned_texts) -> list[str]:
    """~300 real cleaned tweets: the first 280 non-empty ones plus every one with Spanish/French words."""
    head = [t for t in cleaned_texts if t][:280]
    words = ("Gracias", "gracias", "Merci", "Bonjour", "réservé")
    foreign = [t for t in cleaned_texts if any(w in t for w in words)]
    assert len(foreign) >= 10
    return head + foreign


@pytest.fixture(scope="module")
def in_process(sample_texts) -> dict[str, list[str]]:
    return {detector: detect_languages(sample_texts, detector) for detector in DETECTORS}


def find(texts: list[str], fragment: str) -> str:
    found = [t for t in texts if fragment in t]
    assert found, f"no real tweet contains {fragment!r}"
    return found[0]


def test_results_are_identical_in_a_separate_process(sample_texts, in_process, tmp_path):
    texts_path, result_path = tmp_path / "texts.json", tmp_path / "codes.json"
    texts_path.write_text(json.dumps(sample_texts), encoding="utf-8")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SCRIPT, str(texts_path), str(result_path)],
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
    )
    other = json.loads(result_path.read_text())
    for detector in DETECTORS:
        assert len(other[detector]) == len(sample_texts)
        assert other[detector] == in_process[detector], detector
    # Not everything is English: the comparison covers real language decisions.
    assert {"es", "fr"} <= set(in_process["lingua"])


@pytest.mark.parametrize("detector", DETECTORS)
def test_result_of_a_text_does_not_depend_on_its_neighbours(sample_texts, in_process, detector):
    reversed_codes = detect_languages(sample_texts[::-1], detector)
    assert reversed_codes[::-1] == in_process[detector]
    assert detect_languages(sample_texts[:50], detector) == in_process[detector][:50]


@pytest.mark.parametrize("detector", DETECTORS)
def test_short_texts_are_undetermined(cleaned_texts, detector):
    short = [t for t in cleaned_texts if letters(t) < MIN_LETTERS]
    assert "" in short and len(set(short)) > 10  # real tweets such as "ok", "No", "ty" and empty ones
    assert set(detect_languages(short, detector)) == {UNDETERMINED}
    # Mixed with long texts, only the short ones are 'und'.
    long_text = find(cleaned_texts, "Already contacted 3-4 times")
    assert detect_languages([short[0], long_text, short[1]], detector) == [UNDETERMINED, "en", UNDETERMINED]


def test_empty_input():
    assert detect_languages([]) == []


def test_unknown_detector_is_rejected():
    with pytest.raises(ValueError, match="unknown language detector 'cld3'"):
        detect_languages(["a perfectly ordinary sentence"], detector="cld3")


@pytest.mark.parametrize("detector", DETECTORS)
def test_clear_sentences_from_the_real_data(cleaned_texts, detector):
    expected = {
        "Already contacted 3-4 times in the last month": "en",
        "Pero un cobro con la misma información me lo tomo": "es",
        "compre una tarjeta de 50$, la metí y no se me acreditaron": "es",
        "Bonjour, j'ai passé une commande jeudi 23": "fr",
        "Elle avait déjà été repoussée": "fr",
    }
    texts = [find(cleaned_texts, fragment) for fragment in expected]
    assert detect_languages(texts, detector) == list(expected.values())


def reference_detect_languages(texts: list[str], detector: str) -> list[str]:
    """detect_languages done the obvious way: letters counted in full, every row sent to the detector."""
    long_enough = [row for row, text in enumerate(texts) if letters(text) >= MIN_LETTERS]
    codes = [UNDETERMINED] * len(texts)
    for row, code in zip(long_enough, DETECT[detector]([texts[row] for row in long_enough]), strict=True):
        codes[row] = code
    return codes


def test_default_detector_equals_the_reference_on_the_whole_real_sample(cleaned_texts):
    # Every real tweet twice, the second time reversed: texts detected once must still reach each of their rows.
    # The default detector only: how the others detect a text is not what this test is about, and they are slow.
    texts = cleaned_texts + cleaned_texts[::-1]
    codes = detect_languages(texts)
    assert codes == reference_detect_languages(texts, "fasttext")
    assert {"en", "es", "fr", UNDETERMINED} <= set(codes)
