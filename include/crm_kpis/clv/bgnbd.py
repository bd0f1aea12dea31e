"""BG/NBD: how many purchases a customer will make, and whether he is still "alive".

Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
While alive a customer buys at rate λ (Poisson), λ ~ Gamma(r, α) across customers; after any
purchase he drops out with probability p, p ~ Beta(a, b). With x repeat purchases, the last at t_x,
in a calibration window of length T (all in the same unit, weeks for CDNOW), the likelihood is (eq. 6)

    L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] · B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))

The expected purchases of a new customer in (0, t] (eq. 7), with 2F1 Gauss's hypergeometric function:

    E[X(t)] = (a+b-1)/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b; a+b-1; t/(α+t))]

and of a customer with history (x, t_x, T) in the next t (eq. 10):

    E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]
                          / (1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))

and P(alive | x, t_x, T) = 1 / (1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from crm_kpis.clv.fitting import Fit, fit_with_gradient
from crm_kpis.clv.levels import Levels

PARAMS = ("r", "alpha", "a", "b")


def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
    """Each customer's log-likelihood (eq. 6), in log space so that large x cannot overflow."""
    r, alpha, a, b = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ended = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    dropped = np.where(x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b)
                       - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(ended, dropped)


def log_likelihood_and_gradient(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,  # noqa: N803
                                weight: np.ndarray,
                                levels: tuple[Levels, Levels, Levels] | None = None) -> tuple[float, np.ndarray]:
    """Σ weight · ln L and its gradient in (r, α, a, b). With L = e^A + e^B (the two terms of eq. 6)
    and w_A, w_B their shares of L, ∂ln L/∂θ = ∂common/∂θ + w_A ∂A/∂θ + w_B ∂B/∂θ, where
    ∂ ln B(p, q)/∂p = ψ(p) − ψ(p+q) and ∂ ln B(p, q)/∂q = ψ(q) − ψ(p+q).

    `levels`: x, t_x and T as `Levels` (`history_levels`), found once per fit: every special function
    and logarithm of them is then evaluated once per distinct value (the same numbers)."""
    r, alpha, a, b = params
    xs, tx_s, T_s = levels if levels is not None else history_levels(x, t_x, T)  # noqa: N806
    repeat = x > 0
    of_x = xs.apply
    log_T, log_tx = T_s.apply(lambda v: np.log(alpha + v)), tx_s.apply(lambda v: np.log(alpha + v))  # noqa: N806
    common = of_x(lambda v: gammaln(r + v)) - gammaln(r) + r * np.log(alpha)
    ended = of_x(lambda v: betaln(a, b + v)) - betaln(a, b) - (r + x) * log_T
    dropped = np.where(repeat, of_x(lambda v: betaln(a + 1, b + np.maximum(v, 1) - 1)) - betaln(a, b)
                       - (r + x) * log_tx, -np.inf)
    total = np.logaddexp(ended, dropped)
    w_end, w_drop = np.exp(ended - total), np.where(repeat, np.exp(dropped - total), 0.0)
    psi_ab = digamma(a + b)
    psi_abx, psi_abxb = of_x(lambda v: digamma(a + b + v)), of_x(lambda v: digamma(a + b + np.maximum(v, 1)))
    d_r = of_x(lambda v: digamma(r + v)) - digamma(r) + np.log(alpha) - w_end * log_T - w_drop * log_tx
    d_alpha = r / alpha - w_end * (r + x) / (alpha + T) - w_drop * (r + x) / (alpha + t_x)
    d_a = (w_end * (digamma(a) - psi_abx) + w_drop * (digamma(a + 1) - psi_abxb)
           - (w_end + w_drop) * (digamma(a) - psi_ab))
    d_b = (w_end * (of_x(lambda v: digamma(b + v)) - psi_abx)
           + w_drop * (of_x(lambda v: digamma(b + np.maximum(v, 1) - 1)) - psi_abxb)
           - (w_end + w_drop) * (digamma(b) - psi_ab))
    grad = np.array([(weight * d).sum() for d in (d_r, d_alpha, d_a, d_b)])
    return float((weight * (common + total)).sum()), grad


def history_levels(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[Levels, Levels, Levels]:  # noqa: N803
    """x, t_x and T as the few values each takes (see crm_kpis.clv.levels)."""
    return Levels.of(x), Levels.of(t_x), Levels.of(T)


@dataclass(frozen=True)
class Histories:
    """Customers' histories (x, t_x, T), each distinct one once. With t_x and T in whole days there
    are far fewer distinct histories than customers (at company scale 1.4 M customers, about half as
    many histories), and every per-customer quantity of the model is a function of the history: the
    likelihood weights each by its customers, a prediction is computed per history and spread back
    (`per_customer`), the same numbers for a fraction of the work."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray  # noqa: N815
    weight: np.ndarray
    inverse: np.ndarray  # customer i has history inverse[i]

    @classmethod
    def of(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Histories:  # noqa: N803
        """Distinct histories in ascending (x, t_x, T) order, as np.unique(axis=0) gives them: a
        lexsort of the three columns, which is three times faster than np.unique's row sort."""
        columns = [np.asarray(v, dtype=float) for v in (x, t_x, T)]
        n = len(columns[0])
        order = np.lexsort(columns[::-1])  # the last key is the primary one
        ordered = [c[order] for c in columns]
        new = np.ones(n, dtype=bool)
        if n:
            new[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in ordered])
        starts = np.flatnonzero(new)
        inverse = np.empty(n, dtype=np.intp)
        inverse[order] = np.cumsum(new) - 1
        weight = np.diff(np.append(starts, n)).astype(float)
        return cls(*(c[starts] for c in ordered), weight=weight, inverse=inverse)

    def per_customer(self, values: np.ndarray) -> np.ndarray:
        """A value per history, as a value per customer (in the customers' order)."""
        return np.asarray(values)[self.inverse]


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, start: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> Fit:  # noqa: N803
    """Maximum likelihood over the customers' histories (see `fit_histories`)."""
    return fit_histories(Histories.of(x, t_x, T), start)


def fit_histories(histories: Histories, start: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> Fit:
    """Customers with the same (x, t_x, T) share one likelihood term, evaluated once, weighted."""
    h = histories
    levels = history_levels(h.x, h.t_x, h.T)  # once: the optimiser evaluates the likelihood dozens of times

    def negative(params: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = log_likelihood_and_gradient(params, h.x, h.t_x, h.T, h.weight, levels)
        return -value, -grad

    return fit_with_gradient(PARAMS, negative, start, len(h.inverse))


def expected_purchases(params: dict[str, float], t: np.ndarray | float) -> np.ndarray:
    """E[X(t)]: purchases of a randomly chosen new customer in (0, t] (eq. 7)."""
    r, alpha, a, b = (params[k] for k in PARAMS)
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _alive_odds(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
    r, alpha, a, b = (params[k] for k in PARAMS)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, odds, 0.0)


def probability_alive(params: dict[str, float], x, t_x, T) -> np.ndarray:  # noqa: N803
    """P(alive | x, t_x, T): 1 for a customer who never bought again (the model's assumption)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    return 1.0 / (1.0 + _alive_odds(params, x, t_x, T))


def conditional_expected_purchases(params: dict[str, float], t: float, x, t_x, T) -> np.ndarray:  # noqa: N803
    """E[Y(t) | x, t_x, T]: a known customer's purchases in the next t (eq. 10)."""
    r, alpha, a, b = (params[k] for k in PARAMS)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    return head * tail / (1.0 + _alive_odds(params, x, t_x, T))
