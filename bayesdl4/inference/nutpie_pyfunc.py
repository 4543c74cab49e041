"""nutpie on the model's compiled log density, called from Python: no per-model Numba wrapper.

``nutpie.compile_pymc_model(backend="numba")`` compiles Numba C callbacks around the model's
functions on every call (tens of seconds, not cached) and cannot pass data held in shared
variables to the pure-function path. Here the log density is `ModelFunctions.density` compiled in
a Numba mode that releases the GIL (`bayesdl4.compiled.NOGIL_NUMBA`), with the model's data bound
as inputs, and called through its jitted core, which keeps no state between calls: nutpie's chain
threads run it in parallel without a lock. The trace holds the flat unconstrained vector ``x``;
physical values, pointwise terms and predictive draws are computed from it after sampling.
"""

import numpy as np

from ..compiled import NOGIL_NUMBA

__all__ = ["compiled_model", "START_JITTER"]

START_JITTER = 1e-3  # standard deviation of the chains' start jitter, in the sampler's space


def compiled_model(functions):
    """A nutpie ``CompiledModel`` sampling ``functions.model``; its trace variable ``x`` is the flat
    unconstrained point (`ModelFunctions` layout). Chains start at the initial point (the
    parameters' current values) plus a jitter of `START_JITTER`."""
    from nutpie.compiled_pyfunc import from_pyfunc

    bound = functions.density(jacobian=True, mode=NOGIL_NUMBA)
    core, data = bound.core, tuple(bound.data)
    if core is None:
        raise TypeError("expected a function compiled with a Numba mode")
    n_dim = int(functions.x0.size)
    x0 = functions.x0.copy()

    def make_logp_func():
        def logp(x):
            value, grad, _ = core(np.asarray(x, dtype="float64"), *data)
            return float(value), np.array(grad, dtype="float64", order="C")

        return logp

    def make_expand_func(seed1, seed2, chain):
        def expand(x):
            return {"x": np.array(x, dtype="float64")}

        return expand

    def initial_point(seed):
        return x0 + np.random.default_rng(seed).normal(0.0, START_JITTER, x0.shape)

    return from_pyfunc(
        ndim=n_dim, make_logp_fn=make_logp_func, make_expand_fn=make_expand_func,
        make_initial_point_fn=initial_point, expanded_dtypes=[np.dtype("float64")],
        expanded_shapes=[(n_dim,)], expanded_names=["x"],
    )
