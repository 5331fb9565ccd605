"""Spreading a batch function over the machine's cores when its input is large enough to pay for the processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from support_nlp.core.encoders.base import available_cores

Item = TypeVar("Item")
Result = TypeVar("Result")

# Each worker is a fresh interpreter ("spawn": a forked copy of a process running model runtimes' thread pools can
# deadlock) that imports this package and the program's main module before it works: one to two CPU-seconds, while
# cleaning or detecting the language of a text takes tens of microseconds. Below this many texts per worker the
# start-up eats most of the gain, so the work stays in this process (a 20k-tweet day always does).
MIN_ITEMS_PER_PROCESS = 250_000


def map_batches(function: Callable[[list[Item]], list[Result]], items: Sequence[Item]) -> list[Result]:
    """`function(items)`, computed as one contiguous batch per available core when each would get at least
    `MIN_ITEMS_PER_PROCESS` items. `function` returns one result per item, in order, and is defined at a module's
    top level (workers import it by name); a script that gets here starts its work under
    `if __name__ == "__main__":`, as every program starting spawned processes must."""
    processes = min(available_cores(), len(items) // MIN_ITEMS_PER_PROCESS)
    if processes < 2:
        return function(list(items))
    batch_size = -(-len(items) // processes)
    batches = [list(items[start : start + batch_size]) for start in range(0, len(items), batch_size)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [result for batch in pool.map(function, batches) for result in batch]
