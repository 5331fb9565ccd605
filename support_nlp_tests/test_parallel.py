"""Large calls of the per-text stages run in worker processes and give what one process gives (real tweets)."""

import os

import numpy as np
import pytest

from support_nlp.core import parallel
from support_nlp.core.conversation import message_kinds, opens_thread
from support_nlp.core.language import detect_languages
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs


def process_ids(texts: list[str]) -> list[int]:
    return [os.getpid()] * len(texts)


@pytest.fixture
def small_worker_share(monkeypatch):
    """Workers start from 1,000 texts each, so that a slice of the sample is 'large'."""
    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_WORKER", 1_000)


def test_a_large_call_is_spread_over_worker_processes_in_order(small_worker_share, real_inbound):
    texts = real_inbound["text"].tolist()[:4_000]
    owners = parallel.map_in_chunks(process_ids, texts, workers=2)
    assert len(owners) == len(texts)
    assert os.getpid() not in owners and len(set(owners)) == 2
    # Contiguous chunks, handed out in order: each worker's rows form runs, not a shuffle.
    assert np.count_nonzero(np.diff(owners)) < parallel.CHUNKS_PER_WORKER * 2


def test_a_small_call_stays_in_the_calling_process(small_worker_share, real_inbound):
    texts = real_inbound["text"].tolist()[:1_999]
    assert set(parallel.map_in_chunks(process_ids, texts, workers=2)) == {os.getpid()}


def test_stages_in_workers_match_one_process(monkeypatch):
    inbound, _, summary = read_twcs(str(BUNDLED_SAMPLE))
    tweets = inbound.iloc[:3_000]
    opens = opens_thread(tweets["in_response_to_tweet_id"])

    def stages():
        cleaned = clean_frame(tweets, frozenset(summary.brands))
        return (
            cleaned["text_clean"].tolist(),
            detect_languages(cleaned["text_clean"].tolist()),
            message_kinds(tweets["text"].tolist(), opens),
        )

    in_one_process = stages()
    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_WORKER", 1_000)
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    assert stages() == in_one_process
