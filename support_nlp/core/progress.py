"""Throughput reporting for long stages, so a run shows rows done and rows/s as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressCallback = Callable[[str], None]


class Progress:
    """Counts rows through a stage and reports at most every `every_s` seconds (and at the end)."""

    def __init__(self, stage: str, total: int, report: ProgressCallback | None, every_s: float = 5.0):
        self.stage = stage
        self.total = total
        self.done = 0
        self._report = report
        self._every_s = every_s
        self._started = time.perf_counter()
        self._last_report = self._started

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._started

    @property
    def rows_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if self._report and (now - self._last_report >= self._every_s or self.done >= self.total):
            self._last_report = now
            self._report(
                f"{self.stage}: {self.done:,}/{self.total:,} rows "
                f"({self.rows_per_s:,.0f} rows/s, {self.elapsed_s:,.1f} s)"
            )
