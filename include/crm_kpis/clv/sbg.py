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
#: the 95 % quantile of χ² with one degree of freedom
CHI2_1_95 = 3.841458820694124


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


def fit_lifetimes(ended_in: Sequence[float], completed: Sequence[float], start: tuple[float, float] = (1.0, 1.0)) -> Fit:
    """Fit on subscribers of any cohorts: those who left, with the period they left in (1, 2, …),
    contribute P(T = t); those still there after k completed periods (k = 0, 1, …) contribute S(k)
    (right-censored). Equal values are evaluated once, weighted by how many share them."""
    ended_t, ended_n = np.unique(np.asarray(ended_in, dtype=float), return_counts=True)
    kept_t, kept_n = np.unique(np.asarray(completed, dtype=float), return_counts=True)
    if len(ended_t) == 0 or ended_t.min() < 1 or (len(kept_t) and kept_t.min() < 0):
        raise ValueError("sBG needs lifetimes of 1 period or more and completed periods of 0 or more")

    def negative_ll(params: np.ndarray) -> float:
        alpha, beta = params
        return -float((ended_n * _log_churn(alpha, beta, ended_t)).sum()
                      + (kept_n * _log_survival(alpha, beta, kept_t)).sum())

    fit = fit_positive(PARAMS, negative_ll, start, int(ended_n.sum() + kept_n.sum()))
    geometric = _geometric(ended_t, ended_n, kept_t, kept_n)
    # heterogeneity is the sBG's one parameter more: when it does not improve the fit by the
    # likelihood-ratio test's 5 % bound (χ²₁ 3.84), the data do not show it and the simpler model
    # is the fit (its optimum is where the sBG's search was heading, without the search's noise)
    return geometric if 2 * (fit.log_likelihood - geometric.log_likelihood) < CHI2_1_95 else fit


def _geometric(ended_t: np.ndarray, ended_n: np.ndarray, kept_t: np.ndarray, kept_n: np.ndarray) -> Fit:
    """The sBG's limit as α, β → ∞ with α/(α+β) = θ: every subscriber cancels with the same θ each
    period (geometric lifetimes). When the data show no heterogeneity the sBG's likelihood keeps
    rising towards this limit, and its optimiser stops somewhere huge and flat (or does not
    converge); the limit has a closed-form maximum: θ = cancellations / periods observed."""
    cancelled = float(ended_n.sum())
    exposure = float((ended_n * ended_t).sum() + (kept_n * kept_t).sum())
    theta = cancelled / exposure
    ll = float(cancelled * np.log(theta) + (ended_n * (ended_t - 1)).sum() * np.log1p(-theta)
               + (kept_n * kept_t).sum() * np.log1p(-theta)) if 0 < theta < 1 else -np.inf
    return Fit({"theta": theta}, ll, bool(0 < theta < 1), 0, int(ended_n.sum() + kept_n.sum()),
               "geometric: no heterogeneity in the data (the sBG's limit α, β → ∞)")


def survival(params: dict[str, float], t) -> np.ndarray:
    """S(t): the share of a cohort still subscribed after t periods."""
    if "theta" in params:  # the geometric limit (see _geometric)
        return np.power(1.0 - params["theta"], np.asarray(t, dtype=float))
    return np.exp(_log_survival(params["alpha"], params["beta"], np.asarray(t, dtype=float)))


def retention_rate(params: dict[str, float], t) -> np.ndarray:
    """r(t) = S(t)/S(t-1) = (β+t-1)/(α+β+t-1): rises with t as the cancel-prone leave first."""
    t = np.asarray(t, dtype=float)
    return (params["beta"] + t - 1) / (params["alpha"] + params["beta"] + t - 1)
