"""nutpie on PyTensor functions called from Python: no per-model Numba wrapper compilation.

``nutpie.compile_pymc_model(backend="numba")`` compiles Numba C callbacks around the model's
functions on every call (tens of seconds, not cached). Our graphs are small, so calling the
compiled PyTensor functions from Python costs a few microseconds per gradient and saves that
compilation entirely; the PyTensor functions themselves come from PyTensor's on-disk cache.
"""

import threading

import numpy as np

__all__ = ["compile_pymc_pyfunc", "START_JITTER"]

START_JITTER = 1e-3  # standard deviation of the chains' start jitter, in the sampler's space


def compile_pymc_pyfunc(model, mode="NUMBA"):
    """A nutpie ``CompiledModel`` for ``model`` whose log density runs as a PyTensor function."""
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, _wrap_with_lock
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    # start every chain at the parameters' current values with a small jitter: PyMC's default
    # (+-1 in the transformed space) would throw a position with scale 10 deg off its cutout
    initial_point_fn = _wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point", jitter_rvs=set(),
        return_transformed=True,
    ))
    n_dim, _, logp_fn_pt, expand_fn_pt, initial_point_fn, shape_info, reparameterized = _make_functions(
        model, mode=mode, compute_grad=True, join_expanded=False, pymc_initial_point_fn=initial_point_fn,
    )
    if logp_fn_pt.get_shared() or expand_fn_pt.get_shared():
        raise ValueError("models with shared variables are not supported by the pyfunc path")
    start = initial_point_fn

    def initial_point_fn(seed):
        point = np.asarray(start(seed), dtype="float64")
        return point + np.random.default_rng(seed).normal(0.0, START_JITTER, point.shape)

    logp_fn_pt.trust_input = True
    expand_fn_pt.trust_input = True
    names, _, shapes = shape_info
    dtypes = [np.dtype("float64")] * len(names)

    # nutpie runs chains in threads; a PyTensor function keeps its inputs and outputs in storage
    # cells, so calls are serialised with a lock (the callbacks hold the GIL anyway; a copy per
    # chain would re-link the Numba function, ~1 s each)
    lock = threading.Lock()

    def make_logp_func():
        def logp(x):
            with lock:  # outputs may live in the function's storage: copy them inside the lock
                value, grad = logp_fn_pt(np.asarray(x, dtype="float64"))
                return float(value), np.array(grad, dtype="float64", order="C")

        return logp

    def make_expand_func(seed1, seed2, chain):
        def expand(x):
            with lock:
                values = expand_fn_pt(np.asarray(x, dtype="float64"))
                return {
                    name: np.array(val, order="C", dtype=dtype).reshape(shape)
                    for name, val, dtype, shape in zip(names, values, dtypes, shapes, strict=True)
                }

        return expand

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return from_pyfunc(
        ndim=n_dim, make_logp_fn=make_logp_func, make_expand_fn=make_expand_func,
        make_initial_point_fn=initial_point_fn, expanded_dtypes=dtypes, expanded_shapes=shapes,
        expanded_names=names, dims=dims, coords=coords, reparameterized_names=reparameterized,
    )
