"""The joint model: datasets are factors of one log density; PyMC model and plain PyTensor functions."""

import logging
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import vectorize_graph

from ..datasets import Datasets
from ..errors import InferenceError
from ..graph import build_dataset_graphs
from ..graph.joint import data_fingerprint
from ..graph.joint import total_stat as _total_stat
from .priors import free_parameters, make_random_variable, prior_logp

__all__ = ["JointModel"]

log = logging.getLogger(__name__)

# Compiled log densities of recent joint models, keyed by everything their graph depends on, so that
# refitting the same datasets (new starting values, repeated fits in a session) compiles nothing.
_COMPILED = OrderedDict()
_COMPILED_MAX = 16

# Backend for the log density + gradient of fit() and logp_function(). Measured on these graphs
# (benchmarks/bench_compile.py): Numba compiles a 3-dataset WStat graph in ~4 s and runs it in
# ~40 us; the C backend ("CVM") took ~25 s to compile and ~200 us per call without BLAS.
DEFAULT_MODE = "NUMBA"


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
        return build_dataset_graphs(self.datasets, pvals)

    def _log_density(self, x):
        physical = x * self.scales
        total_stat = _total_stat(self._graph(physical))
        loglike = -0.5 * total_stat
        logprior = pt.add(*[prior_logp(f, physical[i]) for i, f in enumerate(self.free)])
        return loglike + logprior, total_stat

    def structure_key(self):
        """Everything the compiled graphs depend on: data, model objects, frozen values, scales, priors."""
        parameters = []
        for model in self.models:
            for par in model.parameters:
                prior = par.prior
                prior_key = repr(prior) if prior is None or hasattr(prior, "to_dict") else id(prior)
                parameters.append((id(par), par.frozen, par.value if par.frozen else par.scale, prior_key))
        data = tuple(data_fingerprint(d) for d in self.datasets)
        return data, tuple(id(m) for m in self.models), tuple(parameters)

    def log_density_function(self, mode=None):
        """Compiled ``x -> (log density, gradient, total_stat)`` in scaled space.

        Cached in memory across `JointModel` instances with the same `structure_key`.
        """
        mode = mode or DEFAULT_MODE
        key = ("logp", mode, self.structure_key())
        if key in _COMPILED:
            _COMPILED.move_to_end(key)
            return _COMPILED[key][0]
        x = pt.dvector("x")
        logp, total_stat = self._log_density(x)
        outputs = [logp, pytensor.grad(logp, x), total_stat]
        fn = pytensor.function([x], outputs, mode=mode, trust_input=True)
        # keep the datasets and models alive so the ids in the key cannot be reused
        _COMPILED[key] = (fn, self.datasets, self.models)
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
        return fn

    def pointwise_function(self):
        """Compiled (n_draws, n_free) physical values -> per dataset: log-likelihood per bin, mu_on
        and (WStat) mu_off, each (n_draws, n_bins); ``layout`` lists (data, has_off) per dataset."""
        if "pointwise" not in self._cache:
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
            fn = pytensor.function([thetas], batched, mode=DEFAULT_MODE, on_unused_input="ignore")
            self._cache["pointwise"] = (fn, layout)
        return self._cache["pointwise"]

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
        """nutpie ``CompiledModel`` of `pymc_model`, cached like `log_density_function`."""
        from .nutpie_pyfunc import compile_pymc_pyfunc

        key = ("nutpie", self.structure_key())
        if key in _COMPILED:
            _COMPILED.move_to_end(key)
            return _COMPILED[key][0]
        compiled = compile_pymc_pyfunc(self.pymc_model())
        _COMPILED[key] = (compiled, self.datasets, self.models)
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
        return compiled
