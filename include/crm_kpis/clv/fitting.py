"""Maximum likelihood with scipy, shared by the models: positive parameters fitted on the log scale."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class Fit:
    """Fitted parameters and the diagnostics stored with a run (and shown in the report)."""

    params: dict[str, float]
    log_likelihood: float
    converged: bool
    iterations: int
    observations: int
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"params": self.params, "log_likelihood": self.log_likelihood, "converged": self.converged,
                "iterations": self.iterations, "observations": self.observations, "message": self.message}


def fit_with_gradient(names: Sequence[str], negative_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
                      start: Sequence[float], observations: int) -> Fit:
    """Minimise a negative log-likelihood whose gradient is known, over positive parameters (on the
    log scale, so the search never leaves the domain), with L-BFGS-B: a few dozen evaluations where
    Nelder-Mead needs thousands, which is what makes a million customers fit in seconds. From the
    same data and start it takes the same steps, so a re-run gives the same parameters."""

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a wild step is just rejected
            params = np.exp(log_params)
            value, grad = negative_ll_and_grad(params)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(log_params)
        return float(value), np.asarray(grad, dtype=float) * params  # d/d log θ = θ · d/dθ

    result = minimize(objective, np.log(np.asarray(start, dtype=float)), jac=True, method="L-BFGS-B",
                      options={"maxiter": 2_000, "ftol": 1e-13, "gtol": 1e-8})
    # a line search that cannot improve any more in floating point ends "ABNORMAL"; at a point where
    # the gradient vanishes (relative to the log-likelihood's size) that is the optimum, not a failure
    flat = bool(np.max(np.abs(result.jac)) <= 1e-6 * max(1.0, abs(result.fun)))
    converged = bool((result.success or flat) and np.isfinite(result.fun) and result.fun < 1e299)
    return Fit(dict(zip(names, (float(v) for v in np.exp(result.x)), strict=True)), float(-result.fun), converged,
               int(result.nit), observations, str(result.message))


def fit_positive(names: Sequence[str], negative_ll: Callable[[np.ndarray], float], start: Sequence[float],
                 observations: int) -> Fit:
    """Minimise the negative log-likelihood over positive parameters (optimised as their logs, so the
    search never leaves the domain), with Nelder-Mead then BFGS from its result: the same data give
    the same parameters on every run."""

    def objective(log_params: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a wild step is just rejected
            value = negative_ll(np.exp(log_params))
        return float(value) if np.isfinite(value) else 1e300

    first = minimize(objective, np.log(np.asarray(start, dtype=float)), method="Nelder-Mead",
                     options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 40_000})
    polished = minimize(objective, first.x, method="BFGS", options={"gtol": 1e-8, "maxiter": 2_000})
    best = polished if polished.fun <= first.fun else first
    converged = bool((first.success or polished.success) and np.isfinite(best.fun) and best.fun < 1e299)
    return Fit(dict(zip(names, (float(v) for v in np.exp(best.x)), strict=True)), float(-best.fun), converged,
               int(first.nit + getattr(polished, "nit", 0)), observations, str(best.message))
