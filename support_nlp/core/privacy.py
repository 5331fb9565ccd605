"""Masking personal data in customer messages before they leave raw_tweets.

E-mail addresses, IBANs, payment card numbers, phone numbers and long account/order/booking references are
replaced by typed placeholders (`<EMAIL>`, `<IBAN>`, `<CARD>`, `<PHONE>`, `<REFERENCE>`): the model and the
category names still see that a tweet carried a phone number or an order reference, never which one.

Checksums and numbering plans decide what a digit run is, from well-kept libraries rather than home-made
tables: python-stdnum (IBAN country formats and mod-97, Luhn) and phonenumbers (Google's libphonenumber
metadata). Presidio's recognisers do the same but pull in spaCy and its models for nothing used here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import phonenumbers
from stdnum import iban, luhn

from support_nlp.core.text import MENTION_PATTERN, URL_PATTERN

# twcs already replaced e-mail addresses by this token; it becomes the same placeholder as a live address.
TWCS_EMAIL_TOKEN = "__email__"
# Whose national formats count as phone numbers (international +/00 numbers are recognised from any country):
# twcs brands answer mostly in the US, the UK, India, Nigeria and Kenya.
PHONE_REGIONS = ("US", "GB", "IN", "NG", "KE")
PHONE_DIGITS = range(7, 16)  # E.164 allows at most 15
REFERENCE_MIN_DIGITS = 8
# A reference holds one run of at least this many digits; ISO dates (2017-11-04) hold 8 digits in short runs.
REFERENCE_MIN_RUN = 5


@dataclass(frozen=True)
class PersonalDataKind:
    """One kind of personal data: where it may be (`pattern`) and whether a candidate really is one."""

    name: str
    placeholder: str
    pattern: re.Pattern
    confirm: Callable[[str], bool]
    # Also inside handles and links (an address in a mailto: or query string is still an address).
    inside_handles_and_links: bool = False


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _is_card(candidate: str) -> bool:
    return luhn.is_valid(_digits(candidate))


def _is_phone(candidate: str) -> bool:
    if len(_digits(candidate)) not in PHONE_DIGITS:
        return False
    # Dotted numbers are versions or IP addresses (61.0.3163.100, 137.221.83.74) unless grouped as 555.555.5555.
    if "." in candidate and not re.fullmatch(r"\(?\d{3}\)?\.\d{3}\.\d{4}", candidate):
        return False
    for region in PHONE_REGIONS:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _is_reference(candidate: str) -> bool:
    has_long_run = re.search(rf"\d{{{REFERENCE_MIN_RUN}}}", candidate) is not None
    return has_long_run and len(_digits(candidate)) >= REFERENCE_MIN_DIGITS


# In masking order: a card or IBAN is checked before its digits could be taken for a phone number or reference.
KINDS = (
    PersonalDataKind(
        "email",
        "<EMAIL>",
        re.compile(rf"{TWCS_EMAIL_TOKEN}|[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{{2,}}\b"),
        lambda candidate: True,
        inside_handles_and_links=True,
    ),
    PersonalDataKind(
        "iban",
        "<IBAN>",
        # Compact, or printed in groups of four as banks do.
        re.compile(r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [0-9]{1,3})?)\b"),
        iban.is_valid,
    ),
    PersonalDataKind(
        "card",
        "<CARD>",
        # 13-19 digits, contiguous or in the groups printed on cards (4-4-4-4[-3], American Express 4-6-5).
        re.compile(r"(?<![\w-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{5})(?![\w-])"),
        _is_card,
    ),
    PersonalDataKind(
        "phone",
        "<PHONE>",
        re.compile(r"(?<![\w.+-])(?:\+ ?|\( ?)?\d[\d ().-]{5,20}\d(?![\w-])"),
        _is_phone,
    ),
    PersonalDataKind(
        "reference",
        "<REFERENCE>",
        # Letters and digits joined by hyphens: CAS-19708536-CB92N2, 3632693-6196346, 111-5014070-4118645;
        # not hexadecimal error codes (0xc1900107), which say what went wrong rather than whose it is.
        re.compile(r"(?<![\w-])(?!0x)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w-])"),
        _is_reference,
    ),
)
KIND_NAMES = tuple(kind.name for kind in KINDS)
# Handles and links are left alone: handles name the brand a tweet is addressed to (twcs anonymised the
# customers' own), links are dropped by clean_text, and their digits (status ids) would read as references.
HANDLES_AND_LINKS = f"(?i:{URL_PATTERN.pattern})|{MENTION_PATTERN.pattern}"


def _masker(kind: PersonalDataKind) -> re.Pattern:
    if kind.inside_handles_and_links:
        return re.compile(f"(?P<found>{kind.pattern.pattern})")
    # Matched first at each position, a handle or link is consumed whole and given back unchanged.
    return re.compile(f"(?P<keep>{HANDLES_AND_LINKS})|(?P<found>{kind.pattern.pattern})")


MASKERS = tuple((kind, _masker(kind)) for kind in KINDS)
# Every kind's candidates contain one of these; most tweets contain none and skip the five passes.
# (A run of five digits that does not start a handle: twcs' anonymised handles like @115850 are in most tweets.)
MAY_HOLD_PERSONAL_DATA = re.compile(
    rf"[\w.+-]@|{TWCS_EMAIL_TOKEN}|(?<![@\d])\d{{5}}|\d[\d ().-]{{5,}}\d|[A-Z]{{2}}\d\d"
)


def mask_personal_data(text: str) -> tuple[str, Counter[str]]:
    """`text` with each kind of personal data replaced by its placeholder, and how many of each were replaced."""
    counts: Counter[str] = Counter()
    if not MAY_HOLD_PERSONAL_DATA.search(text):
        return text, counts

    def replace(match: re.Match, kind: PersonalDataKind) -> str:
        found = match.group("found")
        if found is None or not kind.confirm(found):
            return match.group(0)
        counts[kind.name] += 1
        return kind.placeholder

    for kind, masker in MASKERS:
        text = masker.sub(lambda match, kind=kind: replace(match, kind), text)
    return text, counts


def mask_texts(texts: pd.Series) -> tuple[pd.Series, Counter[str]]:
    """Masked texts (same index) and the number of replacements per kind over all of them."""
    total: Counter[str] = Counter()
    masked = []
    for text in texts:
        clean, counts = mask_personal_data(text)
        masked.append(clean)
        total.update(counts)
    return pd.Series(masked, index=texts.index, dtype=str), total
