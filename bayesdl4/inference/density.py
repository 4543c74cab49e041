"""Functions compiled from the one PyMC model: log density and gradient, draws, pointwise terms.

Every function takes the flat vector ``x`` of the model's value variables (the unconstrained
space NUTS and the optimiser work in, nutpie's order: ``model.free_RVs``) plus the model's data,
which the compiled function receives as inputs: the shared variables of the model (datasets'
arrays, frozen parameter values) are replaced by input variables before compiling, so the
compiled code depends on the graph only (`bayesdl4.compiled`), and one compiled function serves
every model of the same structure. For models made by `build_model` and left as they are, the
structure has a cheap key (`ModelInfo.structure_key`): a second model of the same structure (a
refit on fresh models, a simulated repetition) skips building the graph at all.

* `ModelFunctions.density(jacobian)`: ``x -> (log density, gradient, total_stat)``; without the
  Jacobian terms for MAP (as PyMC's own MAP), with them for NUTS;
* `ModelFunctions.draws()`: ``x -> [physical values, user variables, pointwise terms]``, called once
  per draw after sampling;
* `ModelFunctions.physical_density()`: ``theta -> (log density, gradient, total_stat)`` over the free
  variables' constrained values in physical units (`logp_function`).
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import graph_inputs

from ..compiled import cached_function, compile_function_keyed, disk, mode_name
from ..utils.gcpause import paused_gc
from .model import model_info

__all__ = ["ModelFunctions", "model_functions", "BoundFunction", "DEFAULT_MODE"]

# Backend of the log density + gradient of fit() and logp_function(). Measured on these graphs
# (benchmarks/bench_compile.py): Numba compiles a 3-dataset WStat graph in ~4 s and runs it in
# ~40 us; the C backend ("CVM") took ~25 s to compile and ~200 us per call without BLAS.
DEFAULT_MODE = "NUMBA"
_FUNCTIONS_ATTRIBUTE = "_bayesdl4_functions"
# compiled functions by (model structure, function): graphs of the same structure are not built again
_BY_STRUCTURE = OrderedDict()
_BY_STRUCTURE_MAX = 128


@dataclass
class BoundFunction:
    """A compiled ``(x, *data) -> outputs`` with its data bound: call it with ``x`` only.

    ``core`` is the Numba dispatcher behind the function where there is one (pure: no shared
    storage between calls, so threads may call it at once).
    """

    function: object
    data: list

    def __call__(self, x):
        return self.function(np.ascontiguousarray(x, dtype="float64"), *self.data)

    @property
    def core(self):
        return getattr(self.function.vm, "jit_fn", None)


def _signature(model):
    return (len(model.free_RVs), len(model.potentials), len(model.deterministics), len(model.named_vars),
            len(model.observed_RVs))


def model_functions(model):
    """The `ModelFunctions` of ``model``, kept on the model until its structure changes."""
    cached = getattr(model, _FUNCTIONS_ATTRIBUTE, None)
    if cached is not None and cached.signature == _signature(model):
        return cached
    functions = ModelFunctions(model)
    setattr(model, _FUNCTIONS_ATTRIBUTE, functions)
    return functions


def _data_inputs(outputs):
    """The shared variables of ``outputs`` (in the graph's own deterministic order) and an input
    variable for each."""
    shared = list(dict.fromkeys(v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)))
    return shared, [v.type(name=v.name) for v in shared]


class ModelFunctions:
    """Compiled functions of one model (see the module docstring).

    Attributes
    ----------
    value_names, slices, shapes : list
        Layout of ``x`` (value variables in nutpie's order).
    x0 : ndarray
        The initial point (parameters' current values, transformed).
    outputs : list of (name, shape, dims, unit, kind)
        What `draws` returns before the pointwise terms: the free model parameters (kind
        ``"parameters"``, one vector), population hyperparameters, ON/OFF background rates, and
        every variable a user added (free variables by their constrained value, and deterministics).
    """

    def __init__(self, model):
        self.model = model
        self.info = model_info(model)
        self.signature = _signature(model)
        self.structure = self.info.structure_key(model)
        self.free_rvs = list(model.free_RVs)
        self.value_vars = [model.rvs_to_values[rv] for rv in self.free_rvs]
        self.value_names = [v.name for v in self.value_vars]
        initvals = [model.rvs_to_initial_values.get(rv) for rv in self.free_rvs]
        point = None
        if self.structure is None or any(v is None for v in initvals):
            point = model.initial_point()
            self.shapes = [tuple(np.shape(point[name])) for name in self.value_names]
        else:
            self.shapes = [tuple(np.shape(v)) for v in initvals]
        sizes = [int(np.prod(s)) for s in self.shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.slices = [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        self.x = pt.dvector("x")
        self.replacements = {
            value: self.x[sl].reshape(shape).astype(value.dtype)
            for value, sl, shape in zip(self.value_vars, self.slices, self.shapes, strict=True)
        }
        self._compiled = {}
        self.outputs = self._draw_layout()
        if point is not None:
            self.x0 = (np.concatenate([np.ravel(point[name]).astype(float) for name in self.value_names])
                       if self.value_names else np.zeros(0))
        else:  # the initial values through the transforms, by a function compiled once per structure
            theta0 = np.concatenate([np.ravel(v).astype(float) * scale for v, (_, _, scale, *_) in
                                     zip(initvals, self.physical_layout(), strict=True)])
            self.x0 = np.asarray(self._x_of_theta()(theta0), dtype=float)

    # ------------------------------------------------------------------ compiling
    @paused_gc()
    def _function(self, key, build, mode):
        """The bound function ``key``: from this object, from another model of the same structure
        (in this process, or on disk from another one), or compiled from
        ``build() -> (x input, outputs graphs with the data as shared variables)``."""
        if key in self._compiled:
            return self._compiled[key]
        keys = self._structure_keys(key, mode)
        entry = self._structure_entry(*keys)
        if entry is None:
            with pytensor.config.change_flags(traceback__limit=0):
                x, outputs = build()
                shared, inputs = _data_inputs(outputs)
                outputs = clone_replace(list(outputs), dict(zip(shared, inputs, strict=True)))
                function, function_key = compile_function_keyed([x, *inputs], outputs, mode=mode)
            # data by name where the model registered them; arrays the builders made themselves
            # (map kernels, cutouts) are determined by the structure and kept with the function
            sources = [v.name if v.name in self.info.shared else np.ascontiguousarray(v.get_value(borrow=True))
                       for v in shared]
            entry = (function, sources)
            self._store_structure_entry(*keys, entry, function_key)
        data = [self.info.shared[s].get_value(borrow=True) if isinstance(s, str) else s for s in entry[1]]
        bound = BoundFunction(entry[0], [np.ascontiguousarray(d) for d in data])
        self._compiled[key] = bound
        return bound

    def _structure_keys(self, key, mode):
        """(in-memory key, on-disk digest or None) of function ``key`` for this model's structure
        (both None for a model without a structure key)."""
        if self.structure is None:
            return None, None
        name = mode_name(mode)
        # key[-1] is str(mode), which holds addresses for mode objects: the mode's name instead
        digest = None if name is None else \
            "structure-" + disk.stable_digest((repr(self.structure), key[0], key[1:-1], name))
        return (self.structure, key), digest

    @staticmethod
    def _structure_entry(cache_key, digest):
        if cache_key is None:
            return None
        entry = _BY_STRUCTURE.get(cache_key)
        if entry is None and digest is not None:
            stored = disk.load(digest)  # (the function's cache key, sources)
            function = None if stored is None else cached_function(stored[0])
            if function is not None:
                entry = _BY_STRUCTURE[cache_key] = (function, stored[1])
        if entry is not None:
            _BY_STRUCTURE.move_to_end(cache_key)
        return entry

    @staticmethod
    def _store_structure_entry(cache_key, digest, entry, function_key):
        if cache_key is None:
            return
        _BY_STRUCTURE[cache_key] = entry
        while len(_BY_STRUCTURE) > _BY_STRUCTURE_MAX:
            _BY_STRUCTURE.popitem(last=False)
        if digest is not None and function_key is not None:
            disk.save(digest, (function_key, entry[1]))  # the function itself is on disk under its key

    def _in_x(self, graphs):
        """Graphs of the model's random variables as graphs of ``x``."""
        values = self.model.replace_rvs_by_values(list(graphs))
        return clone_replace(values, self.replacements)

    # ------------------------------------------------------------------ the density
    def density(self, jacobian=True, mode=None):
        """``x -> (log density, gradient, total_stat)``; ``total_stat = -2 ln L`` (likelihood only)."""

        def build():
            logp = self.model.logp(jacobian=jacobian)
            grad = pt.grad(logp, self.value_vars) if self.value_vars else []
            grad = pt.concatenate([pt.as_tensor(g).ravel() for g in grad]) if grad else pt.zeros(0)
            loglike = self.model.replace_rvs_by_values([self.model["log_likelihood"]])[0]
            return self.x, clone_replace([logp, grad, -2.0 * loglike.sum()], self.replacements)

        return self._function(("density", jacobian, str(mode)), build, mode or DEFAULT_MODE)

    # ------------------------------------------------------------------ what a draw holds
    def _draw_layout(self):
        info, model = self.info, self.model
        layout = [("__parameters", (info.table.n_free,), None, None, "parameters")]
        for population, _ in info.populations:
            layout += [(f"{population.name}.{which}", (), None, None, "hyper") for which in ("mu", "sigma")]
        layout += [(name, spec.initval.shape, None, None, "latent") for name, (_, spec) in info.latent.items()]
        own = info.built_names
        for rv, shape in zip(self.free_rvs, self.shapes, strict=True):
            if rv.name not in own:
                layout.append((rv.name, shape, model.named_vars_to_dims.get(rv.name), None, "user"))
        for det in model.deterministics:
            if det.name not in own:
                layout.append((det.name, None, model.named_vars_to_dims.get(det.name), None, "user"))
        return layout

    def _draw_tensors(self):
        info, model = self.info, self.model
        tensors = []
        for name, _, _, _, kind in self.outputs:
            if kind == "parameters":
                tensors.append(info.theta[: info.table.n_free])
            else:
                tensors.append(model[name])
        return tensors

    def draws(self, pointwise=True, mode=None):
        """``x -> [outputs..., then per group: loglike_points and the predictive means]``."""

        def build():
            graphs = self._draw_tensors()
            if pointwise:
                for graph in self.info.graphs:
                    graphs.append(graph.loglike_points)
                    graphs += [graph.predictive[k] for k in sorted(graph.predictive)]
            return self.x, self._in_x(graphs)

        return self._function(("draws", pointwise, str(mode)), build, mode or DEFAULT_MODE)

    def constrained(self):
        """``x -> [constrained value of each free variable]`` (the samplers' space mapped back)."""

        def build():
            return self.x, self._in_x(self.free_rvs)

        return self._function(("constrained",), build, "FAST_COMPILE")

    # ------------------------------------------------------------------ physical space
    def physical_layout(self):
        """Per free variable: (name, slice in theta, scale, transform, rv, shape) where ``theta``
        holds the constrained values, ``name__scaled`` variables shown as ``name`` in physical units."""
        out = []
        for rv, sl, shape in zip(self.free_rvs, self.slices, self.shapes, strict=True):
            name, scale = rv.name, 1.0
            if name.endswith("__scaled"):
                name = name[: -len("__scaled")]
                scale = self.info.scales.get(name, 1.0)
            out.append((name, sl, float(scale), self.model.rvs_to_transforms.get(rv), rv, shape))
        return out

    def _x_graph(self, theta):
        pieces = []
        for _, sl, scale, transform, rv, shape in self.physical_layout():
            value = (theta[sl] / scale).reshape(shape)
            if transform is not None:
                value = transform.forward(value, *rv.owner.inputs)
            pieces.append(pt.as_tensor(value).ravel())
        return pt.concatenate(pieces) if pieces else pt.zeros(0)

    def _x_of_theta(self):
        """``theta -> x``: physical constrained values to the sampler's unconstrained space."""

        def build():
            theta = pt.dvector("theta")
            return theta, [self._x_graph(theta)]

        fn = self._function(("x_of_theta",), build, "FAST_COMPILE")
        return lambda theta: fn(theta)[0]

    def log_scale(self):
        """``sum log(scale)`` over the scaled variables: the model's density of the sampled
        ``value / scale`` minus this is the density of the physical values."""
        return float(sum((sl.stop - sl.start) * np.log(scale) for _, sl, scale, *_ in self.physical_layout()))

    def physical_total_stat(self, mode=None):
        """``theta -> [total_stat]`` (``-2 ln L``, likelihood only, no gradient), theta as in
        `physical_density`: what nested samplers call."""

        def build():
            theta = pt.dvector("theta")
            x_of_theta = self._x_graph(theta)
            loglike = self.model.replace_rvs_by_values([self.model["log_likelihood"]])[0]
            replacements = {value: x_of_theta[sl].reshape(shape).astype(value.dtype) for value, sl, shape in
                            zip(self.value_vars, self.slices, self.shapes, strict=True)}
            return theta, [clone_replace(-2.0 * loglike.sum(), replacements)]

        return self._function(("physical_total_stat", str(mode)), build, mode or DEFAULT_MODE)

    def physical_density(self, mode=None):
        """``theta -> (log density without Jacobian terms, gradient wrt theta, total_stat)``, theta
        in physical units (`physical_layout`)."""

        def build():
            theta = pt.dvector("theta")
            x_of_theta = self._x_graph(theta)
            # the log-likelihood graph once, in both outputs (built apart, PyMC's logp of the
            # potential and the statistic's copy of it are not merged: npred would run twice)
            loglike = self.model.replace_rvs_by_values([self.model["log_likelihood"]])[0]
            rest = [*self.model.free_RVs, *self.model.observed_RVs,
                    *(p for p in self.model.potentials if p.name != "log_likelihood")]
            logp = loglike.sum() + (self.model.logp(vars=rest, jacobian=False) if rest else 0.0)
            replacements = {value: x_of_theta[sl].reshape(shape).astype(value.dtype) for value, sl, shape in
                            zip(self.value_vars, self.slices, self.shapes, strict=True)}
            logp, total_stat = clone_replace([logp, -2.0 * loglike.sum()], replacements)
            return theta, [logp, pt.grad(logp, theta), total_stat]

        return self._function(("physical", str(mode)), build, mode or DEFAULT_MODE)
