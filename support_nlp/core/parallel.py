"""Per-text work spread over worker processes, for calls large enough to repay starting them.

Cleaning, language detection and message kinds are pure Python, one text at a time: a backfill of the whole corpus
in one run would otherwise use one core of the machine while the others wait for the embedding stage."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items per worker the start of the workers (a fresh interpreter importing pandas and the models'
# libraries) costs more than it saves; a day of traffic stays in the calling process.
MIN_ITEMS_PER_WORKER = 100_000
# Several chunks per worker keep both busy to the end when some chunks hold longer texts.
CHUNKS_PER_WORKER = 4


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_in_chunks(
    function: Callable[[list[Item]], list[Result]], items: Sequence[Item], workers: int | None = None
) -> list[Result]:
    """`function(list(items))`, computed on contiguous chunks in worker processes when `items` is large.

    `function` maps a list to a list of the same length, each result depending on its own item only, and must be
    importable by name (a module-level function) so that a worker can run it. Results come back in `items` order."""
    items = list(items)
    workers = min(workers or available_cores(), len(items) // MIN_ITEMS_PER_WORKER)
    if workers < 2:
        return function(items)
    size = -(-len(items) // (workers * CHUNKS_PER_WORKER))
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    # Spawned, not forked: workers inherit no threads (ONNX Runtime's, Dagster's) of the calling process, and as its
    # direct children their CPU time counts in its os.times() once they are joined.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(chain.from_iterable(pool.map(function, chunks)))
