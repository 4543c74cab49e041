"""Compiled functions of joint models: the Numba mode they run in and a cache keyed by content.

A compiled log density depends only on the data arrays, the models' structure (types, frozen values,
scales, bounds, priors, links, ``datasets_names``) and the order of the free parameters, never on
the free parameters' current values. `content_key` captures exactly that, so a new `fit` or
`sample` on fresh model objects with the same structure (a refit with other starting values, the
next cell of a notebook) reuses the compiled function instead of rebuilding, rewriting and linking
the graph again (seconds against a fit of a fraction of a second).
"""

from collections import OrderedDict

import numpy as np
from astropy import units as u

__all__ = ["NOGIL_NUMBA", "content_key", "cache_get", "cache_put", "clear_cache", "single_blas_thread"]

_COMPILED = OrderedDict()
_COMPILED_MAX = 32


def _nogil_numba_mode():
    """PyTensor's NUMBA mode whose compiled function releases the GIL while it runs.

    nutpie calls the log density of each chain from its own thread; with the GIL released, chains
    run in parallel on several cores. Same rewrites and generated code as ``mode="NUMBA"``.
    """
    from pytensor.compile.mode import NUMBA, Mode
    from pytensor.link.numba.linker import NumbaLinker

    class NoGilNumbaLinker(NumbaLinker):
        def jit_compile(self, fn_and_cache):
            from pytensor.link.numba.dispatch.basic import numba_njit

            fn, cache_key = fn_and_cache
            return numba_njit(fn.py_func, final_function=True, cache=cache_key is not None, nogil=True)

    return Mode(linker=NoGilNumbaLinker(), optimizer=NUMBA.provided_optimizer)


NOGIL_NUMBA = _nogil_numba_mode()

# attributes that hold lazily filled caches, not model content
_SKIP_ATTRIBUTES = {"_compiled", "_cache", "_numpy_cache"}


def _array_key(array):
    from ..graph.joint import _digest

    return ("array", *_digest(array))


def _fingerprint(obj, memo, values=False, scales=True):
    """Hashable description of ``obj``; free parameters contribute everything but their value,
    except inside spatial models (``values=True``): map graphs place cutouts and take PSF and
    energy-dispersion kernels where the source is when the graph is built."""
    from ..models.parameter import Parameter
    from ..models.spatial_base import SpatialModel

    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and obj != obj:
        return "nan"  # nan != nan would make every key unique
    if obj is None or isinstance(obj, bool | int | float | str | bytes):
        return obj
    if isinstance(obj, u.UnitBase):
        return ("unit", obj.to_string())
    if isinstance(obj, u.Quantity):
        return ("quantity", _array_key(obj.value), obj.unit.to_string())
    if isinstance(obj, np.ndarray):
        return _array_key(obj)
    if isinstance(obj, dict):
        return ("dict", tuple((str(k), _fingerprint(v, memo, values, scales)) for k, v in obj.items()
                              if k not in _SKIP_ATTRIBUTES))
    if isinstance(obj, list | tuple):
        return (type(obj).__name__, tuple(_fingerprint(v, memo, values, scales) for v in obj))
    # objects (not the temporary containers above) are remembered: a shared one (a linked
    # parameter) is referenced by its first-seen index; memo keeps it alive so ids stay unique
    key = id(obj)
    if key in memo:
        return ("ref", memo[key][0])
    memo[key] = (len(memo), obj)
    if isinstance(obj, Parameter):
        items = {k: v for k, v in vars(obj).items() if k not in ("error",) and (scales or k != "scale")}
        if not (obj.frozen or values):
            items.pop("value", None)
            items.pop("_value", None)
        return ("Parameter", _fingerprint(items, memo, values, scales))
    if isinstance(obj, set | frozenset):
        return ("set", tuple(sorted(repr(v) for v in obj)))
    if callable(obj) and not hasattr(obj, "__dict__"):
        return ("callable", id(obj))  # the cache keeps the models (and so this object) alive
    if hasattr(obj, "to_dict") and type(obj).__module__.startswith("bayesdl4.models.priors"):
        return ("prior", repr(obj.to_dict()))
    if type(obj).__module__.startswith("bayesdl4"):
        state = vars(obj) if hasattr(obj, "__dict__") else {}
        values = values or isinstance(obj, SpatialModel)
        return (type(obj).__module__, type(obj).__qualname__, _fingerprint(state, memo, values, scales))
    # foreign objects (SkyCoord, PyMC distributions, ...): their repr, plus identity where the repr
    # cannot be trusted to describe the content
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - any repr failure falls back to identity
        text = ""
    return ("object", type(obj).__module__, type(obj).__qualname__, text, id(obj))


def content_key(datasets, models, free_names, scales=True):
    """Key of everything a compiled joint log density depends on (see module docstring); without the
    parameters' scales for graphs that take them as an input (``scales=False``)."""
    from ..graph.joint import data_fingerprint

    memo = {}
    return (
        tuple(data_fingerprint(d) for d in datasets),
        tuple(_fingerprint(m, memo, scales=scales) for m in models),
        tuple(free_names),
    )


def cache_get(key):
    """Cached compiled object for ``key`` or None."""
    entry = _COMPILED.get(key)
    if entry is None:
        return None
    _COMPILED.move_to_end(key)
    return entry[0]


def cache_put(key, compiled, keep_alive=()):
    """Store ``compiled``; ``keep_alive`` objects stay referenced so ids in keys are not reused."""
    _COMPILED[key] = (compiled, keep_alive)
    while len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    return compiled


def clear_cache():
    """Forget all compiled functions (the next fit or sample compiles again)."""
    _COMPILED.clear()


def single_blas_thread():
    """Context limiting BLAS to one thread: our graphs make many small BLAS calls, for which
    OpenBLAS's thread pool costs more than it gives (a joint-crab fit spent 0.17 s of 0.18 s in
    L-BFGS-B's BLAS calls on a busy two-core machine, 0.01 s with one thread), and nutpie's chains
    already run in parallel threads."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
