"""Compiled log densities kept on disk, so that a new process skips PyTensor's graph rewriting.

Building, rewriting and linking a map likelihood takes seconds (the HAWC 5-dataset joint model:
~11 s, nearly all of it PyTensor's rewrites); Numba's own cache only skips the last step. A
rewritten, linked `pytensor.compile.Function` pickles, and loading it costs ~2 s for that model.
Entries are keyed by `bayesdl4.compiled.keys.graph_key` (the graph itself: its ops, constants and
input types; data arrays are inputs, so they are not in the key) plus the versions of Python,
numpy, PyTensor, Numba and bayesdl4's own source, so any change to the graph or the code misses.
Keys of graphs holding objects known only by identity are never written.

The folder is ``$BAYESDL4_CACHE_DIR`` or ``~/.cache/bayesdl4/compiled``; ``BAYESDL4_CACHE_DIR=off``
turns the disk cache off. Writes are atomic (temporary file + rename); a file that cannot be read
(truncated, written by another version) is removed and the function compiled again. The folder keeps
the `MAX_FILES` most recently used entries and at most `MAX_BYTES`.
"""

import functools
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "stable_digest", "load", "save", "MAX_FILES", "MAX_BYTES"]

log = logging.getLogger(__name__)

MAX_FILES = 64
MAX_BYTES = 4 * 1024**3
SUFFIX = ".pkl"


def cache_dir():
    """The disk cache folder, or None when ``BAYESDL4_CACHE_DIR`` is ``off`` (or empty)."""
    value = os.environ.get("BAYESDL4_CACHE_DIR")
    if value is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "bayesdl4" / "compiled"
    if value.strip().lower() in ("", "off", "0", "false", "none"):
        return None
    return Path(value).expanduser()


@functools.cache
def _environment():
    """Versions the pickled graphs depend on, and a digest of bayesdl4's source files."""
    from importlib.metadata import version

    source = hashlib.blake2b(digest_size=16)
    package = Path(__file__).resolve().parents[1]
    # sorted by string: sorting Path objects normalises each one per comparison (~0.2 s here)
    for relative, path in sorted((str(p.relative_to(package)), p) for p in package.rglob("*.py")):
        source.update(relative.encode())
        source.update(path.read_bytes())
    versions = tuple((name, version(name)) for name in ("numpy", "pytensor", "numba", "scipy"))
    return (sys.version, versions, source.hexdigest())


def stable_digest(key):
    """Hex digest of ``key`` (a string) and the environment, valid across processes."""
    return hashlib.blake2b(repr((_environment(), key)).encode(), digest_size=20).hexdigest()


def _path(digest):
    folder = cache_dir()
    return None if folder is None or digest is None else folder / f"{digest}{SUFFIX}"


def load(digest):
    """The object stored under ``digest``, or None (no entry, cache off, unreadable entry removed)."""
    path = _path(digest)
    if path is None or not path.is_file():
        return None
    try:
        with open(path, "rb") as stream:
            obj = pickle.load(stream)
    except Exception as error:  # noqa: BLE001 - any unreadable entry is dropped and recompiled
        log.info("dropping unreadable compiled-function cache entry %s: %s", path, error)
        path.unlink(missing_ok=True)
        return None
    os.utime(path)  # most recently used
    return obj


def save(digest, obj):
    """Store ``obj`` under ``digest`` (atomic); returns the path, or None if not written."""
    path = _path(digest)
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(handle, "wb") as stream:
                pickle.dump(obj, stream, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except Exception as error:  # noqa: BLE001 - a cache that cannot be written only costs time
        log.warning("could not write the compiled-function cache entry %s: %s", path, error)
        return None
    _evict(path.parent)
    return path


def _evict(folder):
    """Keep the `MAX_FILES` most recently used entries, within `MAX_BYTES`."""
    entries = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed by another process meanwhile
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    entries.sort(reverse=True)
    total = 0
    for rank, (_, size, path) in enumerate(entries):
        total += size
        if rank >= MAX_FILES or (rank > 0 and total > MAX_BYTES):
            path.unlink(missing_ok=True)
