"""The model's log density as a plain callable, for external samplers (UltraNest, emcee, dynesty)."""

import numpy as np
from scipy.special import ndtri

from ..errors import InferenceError
from ..models.population import PopulationPrior
from .density import model_functions
from .model import as_model

__all__ = ["logp_function", "LogDensity"]


class LogDensity:
    """``theta -> (log density, gradient)`` over the model's free variables in physical units.

    Attributes
    ----------
    names : list of str
        One per entry of ``theta``: the free parameters (``"<model>.<parameter>"``), population
        hyperparameters and members' standard-normal offsets (``"<population>.z[i]"``), and every
        free variable a user added, by its constrained value.
    x0 : ndarray
        Current (starting) values.
    bounds : ndarray, shape (n, 2)
        Support of each entry (prior support intersected with min/max).

    The log density is the one model's density without Jacobian terms: log-likelihood
    (``-0.5 * total_stat``, gammapy's convention) plus the log priors, normalised in physical
    units. Outside the bounds, at non-finite parameters or where a term is not finite it is
    ``-inf`` with a zero gradient.
    """

    def __init__(self, model, mode=None):
        self._functions = functions = model_functions(model)
        self._info = functions.info
        self._fn = functions.physical_density(mode=mode)
        self._layout = functions.physical_layout()
        constrained = functions.constrained()(functions.x0)
        self.names, x0, bounds, self._entries = [], [], [], []
        for (name, sl, scale, _, _rv, shape), value in zip(self._layout, constrained, strict=True):
            value = np.ravel(np.asarray(value, dtype=float)) * scale
            size = sl.stop - sl.start
            prior = self._info.priors.get(name)
            support = prior.support if prior is not None and hasattr(prior, "support") else (-np.inf, np.inf)
            if name.endswith("__raw"):
                support = (0.0, np.inf)
            self.names += [name] if not shape else [f"{name}[{i}]" for i in range(size)]
            x0.append(value)
            bounds += [support] * size
            self._entries.append((name, sl, prior, shape))
        self.x0 = np.concatenate(x0) if x0 else np.zeros(0)
        self.bounds = np.array(bounds, dtype=float).reshape(-1, 2)
        self._log_scale = functions.log_scale()

    def _check(self, theta):
        theta = np.asarray(theta, dtype=float)
        if theta.shape != self.x0.shape:
            raise InferenceError(f"expected {self.x0.size} values ({self.names}), got shape {theta.shape}")
        lo, hi = self.bounds.T
        return theta, bool(np.all(np.isfinite(theta)) and np.all(theta >= lo) and np.all(theta <= hi))

    def __call__(self, theta):
        theta, ok = self._check(theta)
        if not ok:
            return -np.inf, np.zeros_like(theta)
        logp, grad, _ = self._fn(theta)
        logp, grad = float(logp), np.asarray(grad, dtype=float)
        if not (np.isfinite(logp) and np.all(np.isfinite(grad))):
            return -np.inf, np.zeros_like(theta)
        return logp - self._log_scale, grad

    def log_density(self, theta):
        """Log density only (for samplers that want no gradient)."""
        return self(theta)[0]

    def log_likelihood(self, theta):
        """``-0.5 * total_stat``, no prior (for UltraNest / dynesty with ``prior_transform``)."""
        theta, ok = self._check(theta)
        if not ok:
            return -np.inf
        value = -0.5 * float(self._functions.physical_total_stat()(theta)[0])
        return value if np.isfinite(value) else -np.inf

    def prior_transform(self, cube):
        """Map the unit cube onto the priors (nested sampling); needs proper priors.

        Hierarchies are mapped in order: hyperparameters first, then the members given them.
        """
        cube = np.asarray(cube, dtype=float)
        out = np.empty_like(cube)
        for name, sl, prior, _shape in self._entries:
            q = cube[..., sl]
            if prior is not None and getattr(prior, "proper", False) and not isinstance(prior, PopulationPrior) \
                    and hasattr(prior, "ppf"):
                if not prior.normalised:
                    raise InferenceError(f"variable {name!r}: its prior {prior!r} has weight {prior.weight:g}, an "
                                         "unnormalised density that the unit cube cannot map; use weight 1")
                out[..., sl] = prior.ppf(q)
            elif name.endswith(".z"):
                out[..., sl] = ndtri(q)
            else:
                reason = "an improper (flat) prior" if prior is not None else "a prior bayesdl4 cannot invert"
                raise InferenceError(f"variable {name!r} has {reason}: nested sampling needs proper priors with "
                                     "an inverse CDF; give it a UniformPrior, LogUniformPrior, GaussianPrior, ...")
        return out


def logp_function(datasets, mode=None):
    """Compile the model's log density and its gradient (see `LogDensity`).

    ``datasets``: datasets with models, or a `pymc.Model` from `build_model`.
    """
    model, _ = as_model(datasets)
    return LogDensity(model, mode=mode)
