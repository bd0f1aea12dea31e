"""A column with few distinct values, so that a costly function of it is computed once per value.

Why: the models' likelihoods apply the gamma function's logarithm, digamma and logarithms to
columns that repeat a few values over hundreds of thousands of rows (the repeat purchases x take a
few dozen values; t_x and T, in whole days, a few hundred), and the optimiser evaluates them a few
dozen times per fit. Evaluated on the distinct values and spread back by index, each row gets the
very number it got before, bit for bit (the function sees the same input), for a fraction of the
work: at company scale this was most of the lifetime-value fits' time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Levels:
    """A column as its distinct values and, per row, the index of its value."""

    values: np.ndarray
    at: np.ndarray

    @classmethod
    def of(cls, column: np.ndarray) -> Levels:
        values, at = np.unique(np.asarray(column, dtype=float), return_inverse=True)
        return cls(values, at.reshape(-1))

    def apply(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """f of each row's value, f evaluated once per distinct value."""
        return np.asarray(f(self.values))[self.at]
