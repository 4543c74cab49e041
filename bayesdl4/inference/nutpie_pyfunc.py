"""nutpie on PyTensor functions called from Python: no per-model Numba wrapper compilation.

``nutpie.compile_pymc_model(backend="numba")`` compiles Numba C callbacks around the model's
functions on every call (tens of seconds, not cached). Our graphs are small, so calling the
compiled PyTensor functions from Python costs a few microseconds per gradient and saves that
compilation entirely; the PyTensor functions themselves come from PyTensor's on-disk cache.

The functions are compiled with a Numba mode that releases the GIL (`compiled.NOGIL_NUMBA`) and
called through their jitted core, which keeps no state between calls: nutpie's chain threads run
the log density in parallel, without a lock.
"""

import numpy as np

from .compiled import NOGIL_NUMBA

__all__ = ["compile_pymc_pyfunc", "initial_point_function", "with_initial_point", "START_JITTER"]

START_JITTER = 1e-3  # standard deviation of the chains' start jitter, in the sampler's space


def compile_pymc_pyfunc(model, mode=NOGIL_NUMBA, var_names=None):
    """A nutpie ``CompiledModel`` for ``model`` whose log density runs as a PyTensor function.

    ``var_names`` restricts the traced deterministics (the free variables are always traced).
    """
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords
    from nutpie.compiled_pyfunc import from_pyfunc

    n_dim, _, logp_fn_pt, expand_fn_pt, _, shape_info, reparameterized = _make_functions(
        model, mode=mode, compute_grad=True, join_expanded=True, pymc_initial_point_fn=_pymc_start(model),
        var_names=var_names,
    )
    if logp_fn_pt.get_shared() or expand_fn_pt.get_shared():
        raise ValueError("models with shared variables are not supported by the pyfunc path")
    initial_point_fn = initial_point_function(model)

    names, slices, shapes = shape_info
    dtypes = [np.dtype("float64")] * len(names)

    # the jitted core: a pure function of its inputs (the Function wrapper keeps inputs and outputs
    # in shared storage cells, which threads would overwrite)
    logp_core = _jitted_core(logp_fn_pt)
    expand_core = _jitted_core(expand_fn_pt)

    def make_logp_func():
        def logp(x):
            value, grad = logp_core(np.asarray(x, dtype="float64"))
            return float(value), np.array(grad, dtype="float64", order="C")

        return logp

    layout = list(zip(names, slices, shapes, strict=True))

    def make_expand_func(seed1, seed2, chain):
        def expand(x):
            (joined,) = expand_core(np.asarray(x, dtype="float64"))  # one flat array, a fresh one
            return {name: joined[where].reshape(shape) for name, where, shape in layout}

        return expand

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return from_pyfunc(
        ndim=n_dim, make_logp_fn=make_logp_func, make_expand_fn=make_expand_func,
        make_initial_point_fn=initial_point_fn, expanded_dtypes=dtypes, expanded_shapes=shapes,
        expanded_names=names, dims=dims, coords=coords, reparameterized_names=reparameterized,
    )


def _pymc_start(model):
    """PyMC's initial point as a dict (what nutpie's ``_make_functions`` expects)."""
    from nutpie.compile_pymc import _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    return _wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point", jitter_rvs=set(),
        return_transformed=True,
    ))


def initial_point_function(model):
    """``seed -> start point`` in the sampler's space: the parameters' current values (the model's
    initvals) plus a jitter of `START_JITTER`. PyMC's default (+-1 in the transformed space) would
    throw a position with scale 10 deg off its cutout."""
    start = _pymc_start(model)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]  # nutpie's order

    def initial_point_fn(seed):
        values = start(seed)
        point = np.concatenate([np.ravel(np.asarray(values[name], dtype="float64")) for name in names])
        return point + np.random.default_rng(seed).normal(0.0, START_JITTER, point.shape)

    return initial_point_fn


def with_initial_point(compiled, model):
    """``compiled`` starting from the initvals of ``model`` (a PyMC model of the same structure)."""
    import dataclasses

    return dataclasses.replace(compiled, _make_initial_points=initial_point_function(model))


def _jitted_core(function):
    """The Numba dispatcher behind a PyTensor ``Function`` compiled in a Numba mode (one input)."""
    core = getattr(function.vm, "jit_fn", None)
    if core is None or len(function.maker.fgraph.inputs) != 1:
        raise TypeError("expected a one-input PyTensor function compiled with a Numba mode")
    return core
