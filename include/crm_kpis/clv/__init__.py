"""Predictive customer lifetime value: BG/NBD (purchase counts), Gamma-Gamma (spend), shifted-beta-
geometric (subscription retention), fitted by maximum likelihood with scipy.

Why written here: the Python libraries that shipped these models are unmaintained (lifetimes,
btyd) or need a probabilistic-programming stack and a compiler (pymc-marketing); the likelihoods
are a few lines each, and golden tests pin them to the published CDNOW and retention results.
"""
