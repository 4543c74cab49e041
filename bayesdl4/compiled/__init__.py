"""Compilation in one place: PyTensor modes, graph keys, and the memory and disk caches.

`compile_function(inputs, outputs, mode)` is the one way bayesdl4 turns a graph into a callable:
the graph's key (`keys.graph_key`: ops, constants, input types; data enter as inputs and are not
in it) finds an already compiled function in memory, then on disk (`disk`), before PyTensor
rewrites and links the graph. `stats()` counts compilations (what studies that must compile once
are tested with).

Modes, measured on these graphs (benchmarks/README.md): ``"NUMBA"`` (PyTensor 3's default) for
log densities called many times; `NOGIL_NUMBA` for nutpie's parallel chains; ``"FAST_COMPILE"``
(numpy perform methods, no compilation) for functions called once on many draws.
"""

import logging
import warnings
from collections import OrderedDict

import pytensor

from . import disk
from .keys import array_digest, graph_key
from .modes import NOGIL_NUMBA, single_blas_thread

__all__ = [
    "compile_function",
    "compile_function_keyed",
    "cached_function",
    "mode_name",
    "graph_key",
    "array_digest",
    "clear_cache",
    "stats",
    "NOGIL_NUMBA",
    "single_blas_thread",
    "disk",
]

log = logging.getLogger(__name__)

_MEMORY = OrderedDict()
_MEMORY_MAX = 64
_STATS = {"compiled": 0, "memory_hits": 0, "disk_hits": 0}


def mode_name(mode):
    """The name a mode is cached under (a named mode's string, `NOGIL_NUMBA`'s name), or None."""
    if isinstance(mode, str):
        return mode
    return getattr(mode, "bayesdl4_name", None)


def compile_function(inputs, outputs, mode="NUMBA", disk_cache=True, trust_input=True):
    """Compiled PyTensor function ``inputs -> outputs``, from the caches when the same graph was
    compiled before (in this process, or on disk in another one).

    Parameters
    ----------
    inputs, outputs : lists of variables
        Every root of ``outputs`` that is not a constant must be in ``inputs`` (no shared
        variables: pass data as inputs).
    mode : str or `pytensor.compile.Mode`
        A named mode, or `NOGIL_NUMBA`.
    disk_cache : bool
        Also look on (and write to) the disk cache.
    trust_input : bool
        Callers pass arrays of exactly the inputs' types (no checks or conversions per call).
    """
    return compile_function_keyed(inputs, outputs, mode, disk_cache, trust_input)[0]


def compile_function_keyed(inputs, outputs, mode="NUMBA", disk_cache=True, trust_input=True):
    """`compile_function` and the function's cache key (for `cached_function`; the key is None
    when the function is not kept on disk)."""
    digest, stable = graph_key(inputs, outputs)
    name = mode_name(mode)
    key = (digest, name if name is not None else id(mode), trust_input)
    on_disk = disk_cache and stable and name is not None
    function = cached_function(key, disk_cache=on_disk)
    if function is None:
        with pytensor.config.change_flags(traceback__limit=0), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            function = pytensor.function(list(inputs), list(outputs), mode=mode, trust_input=trust_input,
                                         on_unused_input="ignore")
        _STATS["compiled"] += 1
        log.debug("compiled a function (%d outputs, mode %s)", len(outputs), name)
        if on_disk:
            disk.save(disk.stable_digest(key), function)
        _remember(key, function)
    return function, key if on_disk else None


def cached_function(key, disk_cache=True):
    """The function compiled under ``key`` (from `compile_function_keyed`), from memory or the
    disk cache, or None."""
    function = _MEMORY.get(key)
    if function is not None:
        _MEMORY.move_to_end(key)
        _STATS["memory_hits"] += 1
        return function
    function = disk.load(disk.stable_digest(key)) if disk_cache else None
    if function is not None:
        _STATS["disk_hits"] += 1
        _remember(key, function)
    return function


def _remember(key, function):
    _MEMORY[key] = function
    while len(_MEMORY) > _MEMORY_MAX:
        _MEMORY.popitem(last=False)


def clear_cache():
    """Forget the compiled functions held in memory (the disk cache stays)."""
    _MEMORY.clear()


def stats():
    """Counts since the process started: ``compiled`` (graphs PyTensor compiled), ``memory_hits``,
    ``disk_hits``."""
    return dict(_STATS)
