"""Format registry: which function reads or writes a class of object in a file format.

Objects of the lower layers (maps, IRF maps, models, datasets) keep gammapy's conveniences
(``MapDataset.read``, ``WcsNDMap.write``, ``Models.to_yaml``) without importing ``io``: their
methods ask this registry for the function registered for their class and the format. The
registrations themselves live in `bayesdl4.io.formats`, which this module imports on the first
lookup (it imports the readers, and they import the classes they build). This module imports
nothing of bayesdl4 but its errors, so the package graph stays
maps -> irf/models -> datasets -> io -> ...

Examples
--------
>>> from bayesdl4.io import registry
>>> reader = registry.lookup(MapDataset, "gadf", "read")       # doctest: +SKIP
>>> registry.formats(SpectrumDataset, "read")                  # doctest: +SKIP
[None, 'gadf', 'ogip']
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from ..errors import DataFormatError

__all__ = ["register", "lookup", "formats"]

# modules whose import registers the formats (one today; plugins may add theirs)
PROVIDERS = ["bayesdl4.io.formats"]

_TABLE: dict[tuple[type, object, str], Callable] = {}
_loaded: set[str] = set()
_lock = threading.Lock()


def register(cls: type, format, **functions: Callable) -> None:
    """Register ``functions`` (``read=...``, ``write=...``, ``to_hdulist=...``) for ``cls`` in ``format``.

    Subclasses of ``cls`` use them too unless they register their own. ``format`` is a string
    (``"gadf"``, ``"ogip"``, ``"yaml"``) or None for "detect it from the file".
    """
    for operation, function in functions.items():
        if not callable(function):
            raise TypeError(f"register: {operation} for {cls.__name__} must be callable")
        _TABLE[(cls, format, operation)] = function


def _load() -> None:
    if len(_loaded) == len(PROVIDERS):
        return
    with _lock:
        for module in PROVIDERS:
            if module not in _loaded:
                importlib.import_module(module)
                _loaded.add(module)


def formats(cls: type, operation: str) -> list:
    """Formats in which ``operation`` is registered for ``cls`` (or a base class of it)."""
    _load()
    found = {fmt for (klass, fmt, op) in _TABLE if op == operation and issubclass(cls, klass)}
    return sorted(found, key=lambda f: (f is not None, str(f)))


def lookup(cls: type, format, operation: str, what: str = "") -> Callable:
    """The function registered for ``operation`` of ``cls`` (nearest base class first) in ``format``.

    ``what`` names the kind of file in the error message (``"spectrum"``, ``"IRF map"``).

    Raises
    ------
    DataFormatError
        Nothing is registered; the message lists the formats that are.
    """
    _load()
    for klass in cls.__mro__:
        function = _TABLE.get((klass, format, operation))
        if function is not None:
            return function
    known = formats(cls, operation)
    kind = f"{what} format" if what else "format"
    raise DataFormatError(
        f"unknown {kind} {format!r}: {cls.__name__}.{operation} supports the formats "
        f"{known or 'none'}"
    )
