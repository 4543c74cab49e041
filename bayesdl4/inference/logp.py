"""The joint log density as a plain callable, for external samplers (UltraNest, emcee, dynesty)."""

import numpy as np

from ..errors import InferenceError
from ..models.priors import GaussianPrior, LogUniformPrior, UniformPrior
from .model import JointModel
from .priors import is_proper

__all__ = ["logp_function", "LogDensity"]


class LogDensity:
    """``theta -> (log density, gradient)`` over the free parameters' physical values.

    Attributes
    ----------
    names : list of str
        Free-parameter names; ``theta`` follows this order.
    x0 : ndarray
        Current (starting) values.
    bounds : ndarray, shape (n, 2)
        Support of each parameter (prior support or min/max).

    The log density is log-likelihood (``-0.5 * total_stat``, gammapy's convention) plus the log
    prior (normalised densities in physical units). Outside the bounds it is ``-inf``.
    """

    def __init__(self, joint, mode=None):
        self._joint = joint
        self._fn = joint.log_density_function(mode=mode)
        self.names = list(joint.names)
        self.scales = joint.scales.copy()
        self.x0 = joint.values
        self.bounds = joint.bounds()

    def __call__(self, theta):
        theta = np.asarray(theta, dtype=float)
        lo, hi = self.bounds.T
        if theta.shape != self.x0.shape:
            raise InferenceError(f"expected {self.x0.size} values ({self.names}), got shape {theta.shape}")
        if np.any(theta < lo) or np.any(theta > hi):
            return -np.inf, np.zeros_like(theta)
        logp, grad, _ = self._fn(theta / self.scales)
        # the graph works on theta / scale: chain rule back to physical values
        return float(logp), np.asarray(grad) / self.scales

    def log_density(self, theta):
        """Log density only (for samplers that want no gradient)."""
        return self(theta)[0]

    def log_likelihood(self, theta):
        """-0.5 x total statistic, no prior (for UltraNest / dynesty with ``prior_transform``)."""
        theta = np.asarray(theta, dtype=float)
        _, _, total_stat = self._fn(theta / self.scales)
        return -0.5 * float(total_stat)

    def prior_transform(self, cube):
        """Map the unit cube to the priors (nested sampling); needs proper uniform/log-uniform/Gaussian priors."""
        from scipy.special import ndtri

        cube = np.asarray(cube, dtype=float)
        out = np.empty_like(cube)
        for i, free in enumerate(self._joint.free):
            prior = free.parameter.prior
            if prior is None and is_proper(free):
                prior = UniformPrior(*free.bounds())
            if isinstance(prior, UniformPrior):
                out[..., i] = prior.min + cube[..., i] * (prior.max - prior.min)
            elif isinstance(prior, LogUniformPrior):
                out[..., i] = prior.min * (prior.max / prior.min) ** cube[..., i]
            elif isinstance(prior, GaussianPrior):
                out[..., i] = prior.mu + prior.sigma * ndtri(cube[..., i])
            else:
                raise InferenceError(
                    f"parameter {free.name!r}: prior_transform needs a proper UniformPrior, LogUniformPrior or "
                    "GaussianPrior (or finite min/max)"
                )
        return out


def logp_function(datasets, mode=None):
    """Compile the joint log density and its gradient (see `LogDensity`)."""
    return LogDensity(JointModel(datasets), mode=mode)
