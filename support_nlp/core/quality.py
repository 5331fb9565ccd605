"""Data-quality measures used by the asset checks; plain functions so they are testable on their own."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Share floor for categories absent on one side, so PSI stays finite.
PSI_EPSILON = 1e-4


def population_stability_index(expected: pd.Series, actual: pd.Series) -> float:
    """PSI between two category distributions (shares indexed by category): sum (a - e) * ln(a / e).

    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
    """
    categories = expected.index.union(actual.index)
    e = expected.reindex(categories, fill_value=0).clip(lower=PSI_EPSILON)
    a = actual.reindex(categories, fill_value=0).clip(lower=PSI_EPSILON)
    e, a = e / e.sum(), a / a.sum()
    return float(((a - e) * np.log(a / e)).sum())


def max_norm_deviation(vectors: np.ndarray) -> float:
    """Largest |‖v‖ - 1| over rows (0.0 for no rows)."""
    if len(vectors) == 0:
        return 0.0
    return float(np.abs(np.linalg.norm(vectors, axis=1) - 1.0).max())


def column_schema(frame: pd.DataFrame) -> dict[str, str]:
    return {column: str(dtype) for column, dtype in frame.dtypes.items()}


def schema_differences(previous: dict[str, str], current: dict[str, str]) -> list[str]:
    """Human-readable differences between two column→dtype schemas."""
    differences = [f"removed {c}" for c in previous if c not in current]
    differences += [f"added {c}" for c in current if c not in previous]
    differences += [
        f"{c}: {previous[c]} -> {current[c]}" for c in current if c in previous and previous[c] != current[c]
    ]
    return differences
