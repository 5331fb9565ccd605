"""What a test does when a system binary it needs (PostgreSQL, Chromium, docker-compose, SeaweedFS) is missing.

`make test` (and so CI) sets SUPPORT_NLP_REQUIRE_SYSTEM_BINARIES=1: a missing binary fails the run, since the full
suite must prove the stack. Elsewhere (`make check`, a bare `pytest`) it is a skip naming what to install.
"""

import os

import pytest

REQUIRED = os.environ.get("SUPPORT_NLP_REQUIRE_SYSTEM_BINARIES") == "1"


def missing_system_binary(what: str, how_to_install: str) -> None:
    message = f"{what} not found; {how_to_install}"
    if REQUIRED:
        pytest.fail(message)
    pytest.skip(message)
