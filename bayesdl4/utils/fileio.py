"""Atomic file writes and checksums."""

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "file_checksum", "check_overwrite"]


def check_overwrite(path, overwrite):
    """Raise ``FileExistsError`` naming ``path`` if it exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")


@contextlib.contextmanager
def atomic_path(path, overwrite=False):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Nothing is left behind when the block raises, and an existing file is replaced only
    with ``overwrite=True``.
    """
    path = Path(path)
    check_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as astropy refuse to write onto an existing file
    try:
        yield Path(tmp)
        if not overwrite and path.exists():
            raise FileExistsError(f"{path} appeared while writing; pass overwrite=True to replace it")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def file_checksum(path, algorithm="sha256"):
    """Hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
