"""Priors -> PyMC random variables and PyTensor log densities, in a well-conditioned space.

Default priors (when a parameter has none):

* both ``min`` and ``max`` finite: uniform between them;
* otherwise an improper flat prior within whatever bound is set. MAP and NUTS work with it when
  the likelihood constrains the parameter; evidence needs proper priors and says so.

Samplers never see raw physical values: a parameter with ``scale`` s is sampled as ``value / s``
(``LogUniformPrior`` as ``log(value)``), and the physical value is a deterministic of it.
"""

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from ..errors import ModelError
from ..models.priors import GaussianPrior, LogUniformPrior, Prior, UniformPrior

__all__ = ["FreeParameter", "free_parameters", "prior_logp", "make_random_variable", "is_proper"]


@dataclass
class FreeParameter:
    """A free parameter of the joint model with its unique name (``"<model>.<parameter>"``)."""

    name: str
    parameter: object
    model_name: str

    @property
    def scale(self):
        return self.parameter.scale

    def bounds(self):
        """Bounds on the physical value: the prior's support if it has one, else min/max."""
        prior, par = self.parameter.prior, self.parameter
        if isinstance(prior, (UniformPrior, LogUniformPrior)):
            return prior.min, prior.max
        if isinstance(prior, GaussianPrior) or prior is not None:
            return -np.inf, np.inf
        lo = par.min if np.isfinite(par.min) else -np.inf
        hi = par.max if np.isfinite(par.max) else np.inf
        return lo, hi


def free_parameters(models):
    """Free, distinct parameters of ``models`` with unique names."""
    out, seen, names = [], set(), set()
    for model in models:
        for par in model.parameters:
            if par.frozen or id(par) in seen:
                continue
            seen.add(id(par))
            name = f"{model.name}.{par.name}"
            k = 2
            while name in names:
                name = f"{model.name}.{par.name}_{k}"
                k += 1
            names.add(name)
            out.append(FreeParameter(name, par, model.name))
    return out


def is_proper(free):
    """Whether the prior of a free parameter is a normalised density."""
    prior = free.parameter.prior
    if prior is not None:
        return True
    lo, hi = free.bounds()
    return bool(np.isfinite(lo) and np.isfinite(hi))


def prior_logp(free, value):
    """Log prior density (physical units, normalised where proper) of tensor ``value``.

    Outside hard bounds the optimiser's box keeps values away, so no step function enters the graph.
    """
    prior = free.parameter.prior
    if prior is None:
        lo, hi = free.bounds()
        if np.isfinite(lo) and np.isfinite(hi):
            return pt.constant(-np.log(hi - lo))
        return pt.constant(0.0)
    if isinstance(prior, UniformPrior):
        return pt.constant(-np.log(prior.max - prior.min))
    if isinstance(prior, LogUniformPrior):
        return -pt.log(value) - np.log(np.log(prior.max / prior.min))
    if isinstance(prior, GaussianPrior):
        return -0.5 * ((value - prior.mu) / prior.sigma) ** 2 - np.log(prior.sigma * np.sqrt(2 * np.pi))
    if isinstance(prior, pt.TensorVariable):
        import pymc as pm

        return pm.logp(prior, value)
    raise ModelError(
        f"parameter {free.name!r}: prior {prior!r} has no density for fit/logp_function; use UniformPrior, "
        "LogUniformPrior, GaussianPrior or a PyMC distribution (pm.Normal.dist(...))"
    )


def make_random_variable(free):
    """Create the PyMC variable(s) of one parameter inside the current model; return the physical value."""
    import pymc as pm

    par, prior, scale, name = free.parameter, free.parameter.prior, free.scale, free.name
    initval = par.value / scale
    if prior is None:
        lo, hi = free.bounds()
        if np.isfinite(lo) and np.isfinite(hi):
            prior = UniformPrior(lo, hi)
        elif np.isfinite(lo):
            raw = pm.HalfFlat(f"{name}__scaled", initval=max(initval - lo / scale, 1e-6))
            return pm.Deterministic(name, (raw + lo / scale) * scale)
        elif np.isfinite(hi):
            raw = pm.HalfFlat(f"{name}__scaled", initval=max(hi / scale - initval, 1e-6))
            return pm.Deterministic(name, (hi / scale - raw) * scale)
        else:
            raw = pm.Flat(f"{name}__scaled", initval=initval)
            return pm.Deterministic(name, raw * scale)
    if isinstance(prior, UniformPrior):
        _check_inside(free, prior.min, prior.max)
        raw = pm.Uniform(f"{name}__scaled", prior.min / scale, prior.max / scale, initval=initval)
        return pm.Deterministic(name, raw * scale)
    if isinstance(prior, LogUniformPrior):
        _check_inside(free, prior.min, prior.max)
        raw = pm.Uniform(f"{name}__log", np.log(prior.min), np.log(prior.max), initval=np.log(par.value))
        return pm.Deterministic(name, pt.exp(raw))
    if isinstance(prior, GaussianPrior):
        raw = pm.Normal(f"{name}__scaled", prior.mu / scale, prior.sigma / scale, initval=initval)
        return pm.Deterministic(name, raw * scale)
    if isinstance(prior, pt.TensorVariable):
        model = pm.modelcontext(None)
        return model.register_rv(prior.clone(), name, initval=par.value)
    if callable(prior) and not isinstance(prior, Prior):
        return prior(name)
    raise ModelError(f"parameter {name!r}: unsupported prior {prior!r}")


def _check_inside(free, lo, hi):
    value = free.parameter.value
    if not lo <= value <= hi:
        raise ModelError(
            f"parameter {free.name!r}: value {value:.6g} lies outside its prior support [{lo:.6g}, {hi:.6g}]; "
            "set a starting value inside it"
        )
