"""Priors on a parameter's physical value, each owning its mathematics in one place.

Every prior gives

* ``logpdf_tensor(value)``: its normalised log density on PyTensor tensors (physical units);
* ``logpdf(value)``, ``cdf(value)``, ``ppf(q)``: numpy (the inverse CDF is what nested samplers
  call to map the unit cube onto the prior);
* ``support``: ``(lower, upper)``;
* ``variable(name, scale, initval)``: its PyMC random variable inside the current model, with the
  transform NUTS needs, sampled as ``value / scale``; returns the physical value.

Names, parameters and YAML (``{type, parameters: [{name, value, unit}], weight}``) follow gammapy
2.1 for `UniformPrior`, `LogUniformPrior`, `GaussianPrior` and `GeneralizedGaussianPrior`;
`HalfNormalPrior`, `LogNormalPrior` and `TruncatedNormalPrior` are bayesdl4's. ``weight``
multiplies the log density, as gammapy's weight multiplies its ``-2 log`` prior term (a weight
other than 1 makes the prior unnormalised: fine for MAP and NUTS, refused for evidence).

A prior is combined with the parameter's ``min`` / ``max`` by `restrict`: the support becomes
their intersection and the density is renormalised on it (`Restricted`).
"""

import math

import numpy as np
import pytensor.tensor as pt
from scipy import special, stats

from ..errors import ModelError

__all__ = [
    "Prior",
    "UniformPrior",
    "LogUniformPrior",
    "GaussianPrior",
    "GeneralizedGaussianPrior",
    "HalfNormalPrior",
    "LogNormalPrior",
    "TruncatedNormalPrior",
    "FlatPrior",
    "Restricted",
    "restrict",
]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Prior:
    """Base class: a prior on a parameter's physical value (see the module docstring)."""

    tag = None
    _names = ()
    _may_be_infinite = ()
    #: whether ``ppf`` and random draws exist (False for improper priors)
    proper = True

    def __init__(self, weight=1.0, **values):
        for name in self._names:
            value = values[name]
            try:
                value = float(value)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"{type(self).__name__}: {name} must be a number, got {value!r}") from exc
            if not math.isfinite(value) and name not in self._may_be_infinite:
                raise ModelError(f"{type(self).__name__}: {name} must be finite, got {value}")
            setattr(self, name, value)
        try:
            self.weight = float(weight)
        except (TypeError, ValueError):
            self.weight = math.nan
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise ModelError(f"{type(self).__name__}: weight must be a positive number, got {weight!r}")
        self._validate()

    def _validate(self):
        """Raise `ModelError` for invalid parameter values (subclasses)."""

    # ---- mathematics (subclasses) --------------------------------------------------------
    @property
    def support(self):
        return (-np.inf, np.inf)

    def logpdf_tensor(self, value):
        """Normalised log density (weight not applied) at tensor ``value``."""
        raise ModelError(f"{type(self).__name__} defines no density")

    def _scipy(self):
        """The frozen scipy distribution with this density (numpy evaluation)."""
        raise ModelError(f"{type(self).__name__} has no scipy form")

    def _frozen(self):
        """`_scipy`, built once per parameter values (nested samplers call ``ppf`` per point)."""
        key = self.structure_key()
        cached = self.__dict__.get("_frozen_cache")
        if cached is None or cached[0] != key:
            cached = (key, self._scipy())
            self.__dict__["_frozen_cache"] = cached
        return cached[1]

    def logpdf(self, value):
        """Normalised log density (weight not applied) at ``value`` (numpy); -inf outside the support."""
        return self._frozen().logpdf(np.asarray(value, dtype=float))

    def cdf(self, value):
        return self._frozen().cdf(np.asarray(value, dtype=float))

    def ppf(self, q):
        """Inverse CDF: maps ``q`` in [0, 1] onto the prior (nested sampling)."""
        return self._frozen().ppf(np.asarray(q, dtype=float))

    @property
    def normalised(self):
        """Whether the density integrates to 1 (proper and weight 1): needed for evidence."""
        return self.proper and self.weight == 1.0

    def _transform(self, lower, upper):
        """PyMC transform for the support ``[lower, upper]`` in sampling units."""
        from pymc.distributions import transforms

        if np.isfinite(lower) and np.isfinite(upper):
            return transforms.Interval(lower, upper)
        if np.isfinite(lower):
            return _bound_transform(lower, "lower")
        if np.isfinite(upper):
            return _bound_transform(upper, "upper")
        return None

    def _default_initval(self):
        """A starting value strictly inside the support: the median, or for improper priors the
        middle of the bounds (or a unit inside the one finite bound, or 0)."""
        lower, upper = self.support
        if self.proper:
            return float(self.ppf(0.5))
        if np.isfinite(lower) and np.isfinite(upper):
            return 0.5 * (lower + upper)
        if np.isfinite(lower):
            return lower + max(1.0, abs(lower))
        if np.isfinite(upper):
            return upper - max(1.0, abs(upper))
        return 0.0

    def variable(self, name, scale=1.0, initval=None):
        """PyMC random variable ``name__scaled`` = value / ``scale`` in the current model, with this
        density and a transform onto the real line; returns the physical value as the
        deterministic ``name``.

        Its log density is ``weight * logpdf(value) + log(scale)``: the weighted prior of the
        physical value, and the Jacobian of the scaling (a constant), so that subtracting
        ``log(scale)`` gives the physical density exactly. ``initval`` (physical units)
        defaults to the median (`_default_initval`).
        """
        import pymc as pm
        import pytensor

        scale = float(scale)
        if not (scale > 0 and math.isfinite(scale)):
            raise ModelError(f"variable {name!r}: the sampling scale must be a positive number, got {scale!r}; "
                             "set the parameter's scale")
        lower, upper = self.support
        template = _custom_dist_template(self, scale)
        # a new node of the cached type with its own random generator
        rng = pytensor.shared(np.random.default_rng())
        rv = template.owner.clone_with_new_inputs([rng, *template.owner.inputs[1:]]).default_output()
        kwargs = {"initval": float(self._default_initval() if initval is None else initval) / scale}
        transform = self._transform(lower / scale, upper / scale)
        kwargs["transform" if transform is not None else "default_transform"] = transform
        raw = pm.modelcontext(None).register_rv(rv, f"{name}__scaled", **kwargs)
        return pm.Deterministic(name, raw * scale)

    # ---- serialisation ------------------------------------------------------------------
    def to_dict(self):
        return {"type": self.tag, "parameters": [{"name": n, "value": getattr(self, n), "unit": ""}
                                                 for n in self._names], "weight": self.weight}

    def copy(self):
        return type(self)(weight=self.weight, **{n: getattr(self, n) for n in self._names})

    def structure_key(self):
        return (self.tag, tuple(getattr(self, n) for n in self._names), self.weight)

    def __eq__(self, other):
        return type(other) is type(self) and other.structure_key() == self.structure_key()

    def __hash__(self):
        return hash(self.structure_key())

    def __repr__(self):
        args = ", ".join(f"{n}={getattr(self, n):.6g}" for n in self._names)
        weight = "" if self.weight == 1.0 else f", weight={self.weight:g}"
        return f"{type(self).__name__}({args}{weight})"


# One `pm.CustomDist` random-variable type per (prior, scale). PyMC creates a new class for every
# CustomDist and registers it, for good, in its logp / logcdf / support-point dispatch tables, so a
# type per model would grow the process by ~19 kB per parameter with every model built (a study
# that builds 2 x 10,000 models); equal priors share one type instead.
_CUSTOM_DISTS = {}


def _custom_dist_template(prior, scale):
    """The (cached) unregistered `pm.CustomDist` of ``prior`` sampled as ``value / scale``."""
    import pymc as pm

    key = (type(prior), prior.structure_key(), scale)
    template = _CUSTOM_DISTS.get(key)
    if template is not None:
        return template
    log_scale, weight = math.log(scale), prior.weight

    def logp(value):
        density = prior.logpdf_tensor(value * scale)
        return (density if weight == 1.0 else weight * density) + log_scale

    random = None
    if prior.proper:
        def random(rng=None, size=None):
            return np.asarray(prior.ppf(rng.uniform(size=size)) / scale, dtype=float)

    template = _CUSTOM_DISTS[key] = pm.CustomDist.dist(logp=logp, random=random, shape=())
    return template


def _bound_transform(bound, side):
    from pymc.distributions import transforms

    return transforms.Interval(bound, None) if side == "lower" else transforms.Interval(None, bound)


class UniformPrior(Prior):
    """Uniform between ``min`` and ``max`` (physical units)."""

    tag = "UniformPrior"
    _names = ("min", "max")

    def __init__(self, min, max, weight=1.0):
        super().__init__(weight=weight, min=min, max=max)

    def _validate(self):
        if not self.min < self.max:
            raise ModelError(f"UniformPrior needs min < max, got {self.min}, {self.max}")

    @property
    def support(self):
        return (self.min, self.max)

    def logpdf_tensor(self, value):
        return 0.0 * value - math.log(self.max - self.min)  # 0 * value: a zero gradient, not a disconnected one

    def _scipy(self):
        return stats.uniform(self.min, self.max - self.min)


class LogUniformPrior(Prior):
    """Uniform in ``log(value)`` between ``min`` and ``max`` (0 < min < max); sampled as the
    logit of the position in log space."""

    tag = "LogUniformPrior"
    _names = ("min", "max")

    def __init__(self, min, max, weight=1.0):
        super().__init__(weight=weight, min=min, max=max)

    def _validate(self):
        if not 0 < self.min < self.max:
            raise ModelError(f"LogUniformPrior needs 0 < min < max, got {self.min}, {self.max}")

    @property
    def support(self):
        return (self.min, self.max)

    def logpdf_tensor(self, value):
        return -pt.log(value) - math.log(math.log(self.max / self.min))

    def _scipy(self):
        return stats.loguniform(self.min, self.max)

    def _transform(self, lower, upper):
        from pymc.distributions import transforms

        if lower > 0:  # uniform in log: an interval on log(value) is the natural space
            return transforms.Chain([transforms.log, transforms.Interval(math.log(lower), math.log(upper))])
        return super()._transform(lower, upper)


class GaussianPrior(Prior):
    """Normal with mean ``mu`` and standard deviation ``sigma`` (physical units)."""

    tag = "GaussianPrior"
    _names = ("mu", "sigma")

    def __init__(self, mu=0.0, sigma=1.0, weight=1.0):
        super().__init__(weight=weight, mu=mu, sigma=sigma)

    def _validate(self):
        if not self.sigma > 0:
            raise ModelError(f"GaussianPrior needs sigma > 0, got {self.sigma}")

    def logpdf_tensor(self, value):
        z = (value - self.mu) / self.sigma
        return -0.5 * z**2 - math.log(self.sigma) - _LOG_SQRT_2PI

    def _scipy(self):
        return stats.norm(self.mu, self.sigma)


class GeneralizedGaussianPrior(Prior):
    """gammapy 2.1's generalised Gaussian: ``gennorm(beta=1/eta, loc=mu, scale=sigma*sqrt(2))``;
    ``eta = 0.5`` is a Gaussian, ``eta = 1`` a Laplace distribution."""

    tag = "GeneralizedGaussianPrior"
    _names = ("mu", "sigma", "eta")

    def __init__(self, mu=0.0, sigma=1.0, eta=0.5, weight=1.0):
        super().__init__(weight=weight, mu=mu, sigma=sigma, eta=eta)

    def _validate(self):
        if not (self.sigma > 0 and self.eta > 0):
            raise ModelError(f"GeneralizedGaussianPrior needs sigma > 0 and eta > 0, got {self.sigma}, {self.eta}")

    def logpdf_tensor(self, value):
        beta, width = 1.0 / self.eta, self.sigma * math.sqrt(2.0)
        norm = math.log(beta / (2.0 * width)) - math.lgamma(1.0 / beta)
        return norm - pt.abs((value - self.mu) / width) ** beta

    def _scipy(self):
        return stats.gennorm(beta=1.0 / self.eta, loc=self.mu, scale=self.sigma * math.sqrt(2.0))


class HalfNormalPrior(Prior):
    """Half-normal on ``[0, inf)`` with scale ``sigma`` (physical units)."""

    tag = "HalfNormalPrior"
    _names = ("sigma",)

    def __init__(self, sigma=1.0, weight=1.0):
        super().__init__(weight=weight, sigma=sigma)

    def _validate(self):
        if not self.sigma > 0:
            raise ModelError(f"HalfNormalPrior needs sigma > 0, got {self.sigma}")

    @property
    def support(self):
        return (0.0, np.inf)

    def logpdf_tensor(self, value):
        z = value / self.sigma
        return -0.5 * z**2 - math.log(self.sigma) - _LOG_SQRT_2PI + math.log(2.0)

    def _scipy(self):
        return stats.halfnorm(scale=self.sigma)


class LogNormalPrior(Prior):
    """``ln(value) ~ Normal(mu, sigma)`` (value in physical units; ``exp(mu)`` is the median)."""

    tag = "LogNormalPrior"
    _names = ("mu", "sigma")

    def __init__(self, mu=0.0, sigma=1.0, weight=1.0):
        super().__init__(weight=weight, mu=mu, sigma=sigma)

    def _validate(self):
        if not self.sigma > 0:
            raise ModelError(f"LogNormalPrior needs sigma > 0, got {self.sigma}")

    @property
    def support(self):
        return (0.0, np.inf)

    def logpdf_tensor(self, value):
        log_value = pt.log(value)
        z = (log_value - self.mu) / self.sigma
        return -0.5 * z**2 - log_value - math.log(self.sigma) - _LOG_SQRT_2PI

    def _scipy(self):
        return stats.lognorm(s=self.sigma, scale=math.exp(self.mu))


class TruncatedNormalPrior(Prior):
    """Normal(``mu``, ``sigma``) truncated to ``[min, max]`` (either may be infinite), renormalised."""

    tag = "TruncatedNormalPrior"
    _names = ("mu", "sigma", "min", "max")
    _may_be_infinite = ("min", "max")

    def __init__(self, mu=0.0, sigma=1.0, min=-np.inf, max=np.inf, weight=1.0):
        super().__init__(weight=weight, mu=mu, sigma=sigma, min=min, max=max)

    def _validate(self):
        if not self.sigma > 0:
            raise ModelError(f"TruncatedNormalPrior needs sigma > 0, got {self.sigma}")
        if not self.min < self.max:
            raise ModelError(f"TruncatedNormalPrior needs min < max, got {self.min}, {self.max}")

    @property
    def support(self):
        return (self.min, self.max)

    def _log_mass(self):
        a, b = (self.min - self.mu) / self.sigma, (self.max - self.mu) / self.sigma
        if a > 0:  # both in the upper tail: the mirrored difference keeps its precision
            return float(np.log(special.ndtr(-a) - special.ndtr(-b)))
        return float(np.log(special.ndtr(b) - special.ndtr(a)))

    def logpdf_tensor(self, value):
        z = (value - self.mu) / self.sigma
        return -0.5 * z**2 - math.log(self.sigma) - _LOG_SQRT_2PI - self._log_mass()

    def _scipy(self):
        a, b = (self.min - self.mu) / self.sigma, (self.max - self.mu) / self.sigma
        return stats.truncnorm(a, b, loc=self.mu, scale=self.sigma)


class FlatPrior(Prior):
    """Improper flat density on ``[min, max]`` (either may be infinite): the default of a
    parameter without a prior and without both bounds. MAP and NUTS work with it when the
    likelihood constrains the parameter; evidence needs proper priors."""

    tag = "FlatPrior"
    proper = False

    def __init__(self, min=-np.inf, max=np.inf):
        self.min, self.max = float(min), float(max)
        super().__init__()
        if not self.min < self.max:
            raise ModelError(f"FlatPrior needs min < max, got {self.min}, {self.max}")

    @property
    def support(self):
        return (self.min, self.max)

    def logpdf_tensor(self, value):
        return 0.0 * value

    def logpdf(self, value):
        value = np.asarray(value, dtype=float)
        return np.where((value >= self.min) & (value <= self.max), 0.0, -np.inf)

    def ppf(self, q):
        raise ModelError("a flat prior without finite bounds has no inverse CDF: give the parameter a proper prior")

    cdf = ppf

    def structure_key(self):
        return (self.tag, self.min, self.max)

    def to_dict(self):
        raise ModelError("FlatPrior is the absence of a prior and has no YAML form")

    def copy(self):
        return FlatPrior(self.min, self.max)

    def __repr__(self):
        return f"FlatPrior(min={self.min:g}, max={self.max:g})"


class Restricted(Prior):
    """``prior`` restricted to ``[lower, upper]`` (a parameter's min / max) and renormalised there."""

    proper = True

    def __init__(self, prior, lower, upper):
        self.prior, self.lower, self.upper = prior, float(lower), float(upper)
        self.weight = prior.weight
        self.tag = prior.tag
        self.proper = prior.proper
        if prior.proper:
            self._cdf_lower = float(prior.cdf(self.lower)) if np.isfinite(self.lower) else 0.0
            self._cdf_upper = float(prior.cdf(self.upper)) if np.isfinite(self.upper) else 1.0
            mass = self._cdf_upper - self._cdf_lower
            if not mass > 0:
                raise ModelError(f"{prior!r} has no probability mass in [{self.lower:.6g}, {self.upper:.6g}]")
            self._log_mass = math.log(mass)
        else:
            self._log_mass = 0.0

    @property
    def support(self):
        return (self.lower, self.upper)

    def logpdf_tensor(self, value):
        return self.prior.logpdf_tensor(value) - self._log_mass

    def logpdf(self, value):
        value = np.asarray(value, dtype=float)
        inside = (value >= self.lower) & (value <= self.upper)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(inside, self.prior.logpdf(value) - self._log_mass, -np.inf)

    def cdf(self, value):
        raw = (np.asarray(self.prior.cdf(np.clip(value, self.lower, self.upper))) - self._cdf_lower)
        return raw / math.exp(self._log_mass)

    def ppf(self, q):
        q = np.asarray(q, dtype=float)
        return np.clip(self.prior.ppf(self._cdf_lower + q * (self._cdf_upper - self._cdf_lower)),
                       self.lower, self.upper)

    def _transform(self, lower, upper):
        return self.prior._transform(lower, upper)

    def structure_key(self):
        return ("Restricted", self.prior.structure_key(), self.lower, self.upper)

    def to_dict(self):
        return self.prior.to_dict()

    def copy(self):
        return Restricted(self.prior.copy(), self.lower, self.upper)

    def __repr__(self):
        return f"{self.prior!r} on [{self.lower:.6g}, {self.upper:.6g}]"


def restrict(prior, lower, upper, name="parameter"):
    """The prior of a parameter with bounds ``[lower, upper]`` (NaN = none): the intersection of
    the prior's support and the bounds (`ModelError` when it is empty); ``prior=None`` gives
    `UniformPrior` for two finite bounds, else `FlatPrior`."""
    lower = -np.inf if lower is None or np.isnan(lower) else float(lower)
    upper = np.inf if upper is None or np.isnan(upper) else float(upper)
    if prior is None:
        if np.isfinite(lower) and np.isfinite(upper):
            return UniformPrior(lower, upper)
        return FlatPrior(lower, upper)
    lo, hi = prior.support
    new_lo, new_hi = max(lo, lower), min(hi, upper)
    if not new_lo < new_hi:
        raise ModelError(
            f"{name}: its prior {prior!r} (support [{lo:.6g}, {hi:.6g}]) and its bounds "
            f"[{lower:.6g}, {upper:.6g}] do not overlap; change the prior or the parameter's min / max")
    if isinstance(prior, FlatPrior):  # the absence of a prior: the bounds alone decide
        return restrict(None, new_lo, new_hi)
    if (new_lo, new_hi) == (lo, hi):
        return prior
    return Restricted(prior, new_lo, new_hi)
