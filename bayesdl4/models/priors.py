"""Priors named as gammapy's (``UniformPrior``, ``LogUniformPrior``, ``GaussianPrior``).

Each prior is a thin description in the parameter's physical unit; `bayesdl4.inference`
turns it into a PyMC random variable. Any PyMC distribution can be used instead
(``pm.Normal.dist(mu=2.3, sigma=0.2)``, or a callable ``name -> random variable``).
"""

import numpy as np

from ..errors import ModelError

__all__ = ["Prior", "UniformPrior", "LogUniformPrior", "GaussianPrior", "prior_from_dict"]


class Prior:
    """Base class: a prior on a parameter's physical value."""

    tag = None
    _names = ()

    def __init__(self, **values):
        for name in self._names:
            setattr(self, name, float(values[name]))

    def to_dict(self):
        return {"type": self.tag, "parameters": [{"name": n, "value": getattr(self, n)} for n in self._names]}

    def copy(self):
        return type(self)(**{n: getattr(self, n) for n in self._names})

    def logpdf(self, value):
        """Normalised log density at ``value`` (numpy), for checks and for evidence bookkeeping."""
        raise ModelError(f"{type(self).__name__} defines no density")

    def __repr__(self):
        args = ", ".join(f"{n}={getattr(self, n):.6g}" for n in self._names)
        return f"{type(self).__name__}({args})"


class UniformPrior(Prior):
    """Uniform between ``min`` and ``max`` (physical units)."""

    tag = "UniformPrior"
    _names = ("min", "max")

    def __init__(self, min, max):
        super().__init__(min=min, max=max)
        if not (np.isfinite(self.min) and np.isfinite(self.max) and self.min < self.max):
            raise ModelError(f"UniformPrior needs finite min < max, got {self.min}, {self.max}")

    def logpdf(self, value):
        inside = (value >= self.min) & (value <= self.max)
        return np.where(inside, -np.log(self.max - self.min), -np.inf)


class LogUniformPrior(Prior):
    """Uniform in log(value) between ``min`` and ``max`` (both > 0, physical units)."""

    tag = "LogUniformPrior"
    _names = ("min", "max")

    def __init__(self, min, max):
        super().__init__(min=min, max=max)
        if not (0 < self.min < self.max < np.inf):
            raise ModelError(f"LogUniformPrior needs 0 < min < max, got {self.min}, {self.max}")

    def logpdf(self, value):
        value = np.asarray(value, dtype=float)
        inside = (value >= self.min) & (value <= self.max)
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = -np.log(value) - np.log(np.log(self.max / self.min))
        return np.where(inside, dens, -np.inf)


class GaussianPrior(Prior):
    """Normal with mean ``mu`` and standard deviation ``sigma`` (physical units)."""

    tag = "GaussianPrior"
    _names = ("mu", "sigma")

    def __init__(self, mu, sigma):
        super().__init__(mu=mu, sigma=sigma)
        if not self.sigma > 0:
            raise ModelError(f"GaussianPrior needs sigma > 0, got {self.sigma}")

    def logpdf(self, value):
        z = (np.asarray(value) - self.mu) / self.sigma
        return -0.5 * z**2 - np.log(self.sigma * np.sqrt(2 * np.pi))


PRIOR_REGISTRY = {cls.tag: cls for cls in (UniformPrior, LogUniformPrior, GaussianPrior)}


def prior_from_dict(data):
    """Prior from gammapy's YAML form ``{type: ..., parameters: [{name:, value:}, ...]}``."""
    kind = data.get("type")
    if kind not in PRIOR_REGISTRY:
        raise ModelError(f"unknown prior type {kind!r}; known: {sorted(PRIOR_REGISTRY)}")
    values = {p["name"]: p["value"] for p in data.get("parameters", [])}
    try:
        return PRIOR_REGISTRY[kind](**values)
    except TypeError as exc:
        raise ModelError(f"prior {kind}: parameters {sorted(values)} do not fit ({exc})") from exc
