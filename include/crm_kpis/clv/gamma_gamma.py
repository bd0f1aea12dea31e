"""Gamma-Gamma: how much a customer spends per purchase.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis",
Journal of Marketing Research 42; Fader & Hardie, "The Gamma-Gamma model of monetary value" (note 025).
A customer's purchases have mean value 1/ν·p (each ~ Gamma(p, ν)), with ν ~ Gamma(q, γ) across
customers. For a customer with x ≥ 1 repeat purchases of mean value z̄, the likelihood of z̄ is

    ln L = ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + (px-1) ln z̄ + px ln x - (px+q) ln(γ + x z̄)

and the expected value of his purchases, given what he spent, is

    E[Z | z̄, x] = p (γ + x z̄) / (px + q - 1).

The model assumes spend independent of frequency; it is fitted on repeat buyers only (x > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from crm_kpis.clv.fitting import Fit, fit_with_gradient
from crm_kpis.clv.levels import Levels

PARAMS = ("p", "q", "gamma")


def log_likelihood(params: np.ndarray, x: np.ndarray, zbar: np.ndarray) -> np.ndarray:
    return _log_likelihood_terms(params, x, zbar, Fixed.of(x, zbar))[0]


def _log_likelihood_terms(params: np.ndarray, x: np.ndarray, zbar: np.ndarray,
                          f: Fixed) -> tuple[np.ndarray, np.ndarray]:
    """Each repeat buyer's ln L, and ln(γ + x z̄), which the gradient needs too."""
    p, q, gamma = params
    px = p * x
    log_spend = np.log(gamma + x * zbar)
    value = (f.x.apply(lambda v: gammaln(p * v + q)) - f.x.apply(lambda v: gammaln(p * v)) - gammaln(q)
             + q * np.log(gamma) + (px - 1) * f.log_zbar + px * f.log_x - (px + q) * log_spend)
    return value, log_spend


def log_likelihood_and_gradient(params: np.ndarray, x: np.ndarray, zbar: np.ndarray,
                                fixed: Fixed | None = None) -> tuple[float, np.ndarray]:
    """Σ ln L and its gradient in (p, q, γ):
    ∂/∂p = x (ψ(px+q) − ψ(px) + ln z̄ + ln x − ln(γ + x z̄)), ∂/∂q = ψ(px+q) − ψ(q) + ln γ − ln(γ + x z̄),
    ∂/∂γ = q/γ − (px+q)/(γ + x z̄).

    `fixed`: what does not depend on the parameters (`Fixed.of`), found once per fit: ln z̄ and ln x
    once, the gamma functions once per distinct x. The value is `log_likelihood`'s sum."""
    p, q, gamma = params
    f = fixed if fixed is not None else Fixed.of(x, zbar)
    px, spend = p * x, gamma + x * zbar
    value, log_spend = _log_likelihood_terms(params, x, zbar, f)
    psi = f.x.apply(lambda v: digamma(p * v + q))
    d_p = x * (psi - f.x.apply(lambda v: digamma(p * v)) + f.log_zbar + f.log_x - log_spend)
    d_q = psi - digamma(q) + np.log(gamma) - log_spend
    d_gamma = q / gamma - (px + q) / spend
    return float(value.sum()), np.array([d_p.sum(), d_q.sum(), d_gamma.sum()])


@dataclass(frozen=True)
class Fixed:
    """The repeat buyers' terms that no parameter changes: ln z̄, ln x, and x's few distinct values."""

    x: Levels
    log_zbar: np.ndarray
    log_x: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, zbar: np.ndarray) -> Fixed:
        return cls(Levels.of(x), np.log(zbar), np.log(x))


def fit(x: np.ndarray, zbar: np.ndarray, start: tuple[float, ...] = (1.0, 1.0, 1.0)) -> Fit:
    x, zbar = np.asarray(x, dtype=float), np.asarray(zbar, dtype=float)
    keep = (x > 0) & (zbar > 0)
    x, zbar = x[keep], zbar[keep]
    order = np.lexsort((zbar, x))  # sums in one order whatever order the rows came in
    x, zbar = x[order], zbar[order]
    fixed = Fixed.of(x, zbar)  # once: the optimiser evaluates the likelihood dozens of times

    def negative(params: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = log_likelihood_and_gradient(params, x, zbar, fixed)
        return -value, -grad

    return fit_with_gradient(PARAMS, negative, start, len(x))


def expected_average_value(params: dict[str, float], x, zbar) -> np.ndarray:
    """E[Z | z̄, x]: a customer's expected spend per purchase; the population mean pγ/(q-1) for x = 0."""
    p, q, gamma = (params[k] for k in PARAMS)
    x, zbar = np.asarray(x, dtype=float), np.asarray(zbar, dtype=float)
    return p * (gamma + x * np.where(x > 0, zbar, 0.0)) / (p * x + q - 1)
