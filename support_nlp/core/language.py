"""Deterministic language identification of short customer texts.

Two detectors share one interface. `lingua` (default) is restricted to the languages seen in support
traffic, is deterministic by construction and is much faster and more accurate on tweets than
`langdetect`, which is kept as an option and seeded so that the same text always gets the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

UNDETERMINED = "und"
# Languages present in twcs inbound traffic (see the bundled sample's PROVENANCE.md).
SUPPORTED_LANGUAGES = ("en", "es", "fr", "de", "pt", "ja", "it", "nl")
# Below this many letters neither detector is better than a guess.
MIN_LETTERS = 3
DETECTORS = ("lingua", "langdetect")


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


@lru_cache(maxsize=1)
def _lingua_detector():
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in SUPPORTED_LANGUAGES]
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


def _detect_lingua(texts: list[str]) -> list[str]:
    results = _lingua_detector().detect_languages_in_parallel_of(texts)
    return [lang.iso_code_639_1.name.lower() if lang is not None else UNDETERMINED for lang in results]


def _detect_langdetect(texts: list[str]) -> list[str]:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    # langdetect samples n-grams at random; a fixed seed makes each call reproducible across processes.
    DetectorFactory.seed = 0
    out = []
    for text in texts:
        try:
            out.append(detect(text))
        except LangDetectException:
            out.append(UNDETERMINED)
    return out


def detect_languages(texts: Sequence[str], detector: str = "lingua") -> list[str]:
    """ISO 639-1 code per text, or "und" for texts too short to tell."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown language detector {detector!r}; choose one of {DETECTORS}")
    detect = _detect_lingua if detector == "lingua" else _detect_langdetect
    long_enough = [i for i, text in enumerate(texts) if _letters(text) >= MIN_LETTERS]
    codes = [UNDETERMINED] * len(texts)
    if long_enough:
        for i, code in zip(long_enough, detect([texts[i] for i in long_enough]), strict=True):
            codes[i] = code
    return codes
