"""The joint model: datasets are factors of one log density; PyMC model and plain PyTensor functions."""

import logging

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import vectorize_graph

from ..datasets import Datasets
from ..errors import InferenceError
from ..graph import build_dataset_graphs
from ..graph.joint import total_stat as _total_stat
from . import disk_cache
from .compiled import cache_get, cache_put, content_key
from .priors import free_parameters, make_random_variable, prior_logp

__all__ = ["JointModel", "ScaledLogDensity"]

log = logging.getLogger(__name__)

# Backend for the log density + gradient of fit() and logp_function(). Measured on these graphs
# (benchmarks/bench_compile.py): Numba compiles a 3-dataset WStat graph in ~4 s and runs it in
# ~40 us; the C backend ("CVM") took ~25 s to compile and ~200 us per call without BLAS.
DEFAULT_MODE = "NUMBA"
# Backend of the pointwise groups after sampling: one call on all draws, so compile time is all
# that counts. Measured on joint-crab (4000 draws): FAST_COMPILE (numpy perform methods, no C, no
# Numba) builds in 2.0 s and runs in 0.24 s; Numba takes 3.4 s + 0.46 s with warm caches and ~19 s
# more with cold ones.
POINTWISE_MODE = "FAST_COMPILE"


class ScaledLogDensity:
    """``x -> (log density, gradient wrt x, total_stat)`` of a compiled core ``(x, scales) -> ...``."""

    def __init__(self, core, scales):
        self.core = core
        self.scales = np.ascontiguousarray(scales, dtype="float64")

    def __call__(self, x):
        return self.core(np.ascontiguousarray(x, dtype="float64"), self.scales)


class JointModel:
    """Datasets with their models, seen as one log density over the free parameters.

    ``names`` are the free parameters' unique names (``"<model>.<parameter>"``); vectors of values
    follow that order. ``x`` denotes the scaled vector ``value / scale`` optimisers work in.
    """

    def __init__(self, datasets):
        self.datasets = Datasets(datasets)
        if not len(self.datasets):
            raise InferenceError("no datasets given")
        models = self.datasets.models
        if not len(models):
            raise InferenceError("the datasets have no models: set datasets.models = [...] first")
        self.models = models
        self.free = free_parameters(models)
        if not self.free:
            raise InferenceError("all parameters are frozen: nothing to fit")
        self.names = [f.name for f in self.free]
        self.scales = np.array([f.scale for f in self.free])
        self._cache = {}

    # ------------------------------------------------------------------ values
    @property
    def values(self):
        """Current physical values of the free parameters."""
        return np.array([f.parameter.value for f in self.free])

    def set_values(self, values):
        for free, value in zip(self.free, values, strict=True):
            free.parameter.value = float(value)

    def bounds(self):
        """Physical bounds per free parameter, shape (n, 2)."""
        return np.array([f.bounds() for f in self.free], dtype=float)

    # ------------------------------------------------------------------ graphs
    def _graph(self, physical):
        pvals = {f.parameter: physical[i] for i, f in enumerate(self.free)}
        # no Python stack trace per graph node: a third of the build time, of no use to our graphs
        with pytensor.config.change_flags(traceback__limit=0):
            return build_dataset_graphs(self.datasets, pvals)

    def _log_density(self, x, scales=None):
        physical = x * (self.scales if scales is None else scales)
        total_stat = _total_stat(self._graph(physical))
        loglike = -0.5 * total_stat
        logprior = pt.add(*[prior_logp(f, physical[i]) for i, f in enumerate(self.free)])
        return loglike + logprior, total_stat

    def structure_key(self, scales=True):
        """Everything the compiled graphs depend on: data arrays, the models' structure (frozen values,
        bounds, priors, links, and the scales unless ``scales=False``) and the free parameters' order,
        not their values (`bayesdl4.inference.compiled.content_key`)."""
        if scales not in self._cache:
            self._cache[scales] = content_key(self.datasets, self.models, self.names, scales=scales)
        return self._cache[scales]

    def log_density_function(self, mode=None):
        """Compiled ``x -> (log density, gradient, total_stat)`` in scaled space (``x = value / scale``).

        The compiled core takes the scales as a second input, so it is cached in memory across
        `JointModel` instances with the same `structure_key` whatever their values and scales.
        """
        mode = mode or DEFAULT_MODE
        key = ("logp", str(mode), self.structure_key(scales=False))
        core = cache_get(key)
        if core is None:
            # on disk only for named modes: a Mode object's repr does not describe its content
            digest = disk_cache.stable_digest(key) if isinstance(mode, str) else None
            core = disk_cache.load(digest)
            if core is None:
                x, scales = pt.dvector("x"), pt.dvector("scales")
                # no Python stack trace per node, also for the nodes the rewrites create
                with pytensor.config.change_flags(traceback__limit=0):
                    logp, total_stat = self._log_density(x, scales)
                    outputs = [logp, pytensor.grad(logp, x), total_stat]
                    core = pytensor.function([x, scales], outputs, mode=mode, trust_input=True)
                disk_cache.save(digest, core)
            # keep the datasets and models alive so that ids in the key cannot be reused
            cache_put(key, core, (self.datasets, self.models))
        return ScaledLogDensity(core, self.scales)

    def pointwise_function(self):
        """Compiled (n_draws, n_free) physical values -> per dataset: log-likelihood per bin, mu_on
        and (WStat) mu_off, each (n_draws, n_bins); ``layout`` lists (data, has_off) per dataset."""
        key = ("pointwise", self.structure_key(scales=False))  # takes physical values
        compiled = cache_get(key)
        if compiled is None:
            theta = pt.dvector("theta")
            outputs, layout = [], []
            for graph in self._graph(theta):
                if not getattr(graph.data, "pointwise", True):
                    continue  # map datasets: per-plane sufficient statistics, no per-bin terms yet
                mu_bkg_on, mu_off = graph.npred_background()
                outputs += [graph.loglike, graph.npred_signal + mu_bkg_on]
                if mu_off is not None:
                    outputs.append(mu_off)
                layout.append((graph.data, mu_off is not None))
            # on_unused_input: with map datasets only there are no pointwise outputs yet
            # one call for all draws: the graph vectorised over a (n_draws, n_parameters) matrix
            thetas = pt.dmatrix("thetas")
            batched = vectorize_graph(outputs, replace={theta: thetas}) if outputs else []
            fn = pytensor.function([thetas], batched, mode=POINTWISE_MODE, on_unused_input="ignore")
            compiled = cache_put(key, (fn, layout), (self.datasets, self.models))
        return compiled

    def pymc_model(self):
        """One PyMC model: a variable per free parameter (with its prior), a Potential per dataset."""
        import pymc as pm

        with pm.Model() as model:
            physical = pt.stack([make_random_variable(f) for f in self.free])
            pm.Potential("loglike", -0.5 * _total_stat(self._graph(physical)))
        return model

    def hessian(self, fn, x, step=1e-5):
        """Hessian of the log density at scaled ``x`` by central differences of the exact gradient.

        In the scaled space parameters are of order one, so a fixed step is well conditioned; this
        avoids compiling a symbolic Hessian (minutes with the C backend, seconds with Numba).
        """
        n = x.size
        hess = np.empty((n, n))
        for i in range(n):
            dx = np.zeros(n)
            dx[i] = step * max(1.0, abs(x[i]))
            grad_hi = fn(x + dx)[1]
            grad_lo = fn(x - dx)[1]
            hess[i] = (grad_hi - grad_lo) / (2 * dx[i])
        return 0.5 * (hess + hess.T)

    def nutpie_model(self):
        """nutpie ``CompiledModel`` of `pymc_model`, cached like `log_density_function`; chains start
        at the parameters' current values."""
        from .nutpie_pyfunc import compile_pymc_pyfunc, with_initial_point

        key = ("nutpie", self.structure_key())
        compiled = cache_get(key)
        model = self.pymc_model()
        if compiled is None:
            return cache_put(key, compile_pymc_pyfunc(model, var_names=self.names), (self.datasets, self.models))
        return with_initial_point(compiled, model)
