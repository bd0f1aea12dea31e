"""Shifted-beta-geometric: how many subscribers of a cohort are still there after t periods.

Fader & Hardie (2007), "How to project customer retention", Journal of Interactive Marketing 21(1).
Each subscriber cancels at the end of a period with probability θ, θ ~ Beta(α, β) across them:

    P(T = t) = B(α+1, β+t-1) / B(α, β)        (cancels in period t = 1, 2, …)
    S(t)     = B(α, β+t) / B(α, β)            (still subscribed after t periods)

Fitted on a cohort's counts still active at the start of each period n_0 ≥ n_1 ≥ … ≥ n_T: the
n_{t-1} - n_t who left in period t contribute P(T = t), the n_T still there S(T).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import betaln

from crm_kpis.clv.fitting import Fit, fit_positive

PARAMS = ("alpha", "beta")


def _log_churn(alpha: float, beta: float, t: np.ndarray) -> np.ndarray:
    return betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)


def _log_survival(alpha: float, beta: float, t: np.ndarray) -> np.ndarray:
    return betaln(alpha, beta + t) - betaln(alpha, beta)


def fit(active: Sequence[int], start: tuple[float, float] = (1.0, 1.0)) -> Fit:
    counts = np.asarray(active, dtype=float)
    if len(counts) < 2 or np.any(np.diff(counts) > 0) or counts[0] <= 0:
        raise ValueError("sBG needs a cohort's active counts, first > 0 and never growing, over 2+ periods")
    periods = np.arange(1, len(counts))
    lost = counts[:-1] - counts[1:]

    def negative_ll(params: np.ndarray) -> float:
        alpha, beta = params
        return -float((lost * _log_churn(alpha, beta, periods)).sum()
                      + counts[-1] * _log_survival(alpha, beta, periods[-1]))

    return fit_positive(PARAMS, negative_ll, start, int(counts[0]))


def survival(params: dict[str, float], t) -> np.ndarray:
    """S(t): the share of a cohort still subscribed after t periods."""
    return np.exp(_log_survival(params["alpha"], params["beta"], np.asarray(t, dtype=float)))


def retention_rate(params: dict[str, float], t) -> np.ndarray:
    """r(t) = S(t)/S(t-1) = (β+t-1)/(α+β+t-1): rises with t as the cancel-prone leave first."""
    t = np.asarray(t, dtype=float)
    return (params["beta"] + t - 1) / (params["alpha"] + params["beta"] + t - 1)
