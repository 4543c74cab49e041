"""Atomic file writes (one file or a set of files, all or nothing) and checksums.

Every writer in the package goes through `atomic_files`: each target is checked before anything
is written, every file is staged under a temporary name beside its target, and the staged files
are renamed onto their targets only when all are written. A file that a rename replaced is kept
(as a hard link, or a copy) until every rename has succeeded, so that a failed rename puts the
old set back.
"""

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import DataFormatError, DataWriteError

__all__ = ["atomic_files", "atomic_path", "write_files", "file_checksum", "check_overwrite"]

log = logging.getLogger(__name__)

# the rename that puts a staged file in place; tests replace it to inject failures
_rename = os.replace


def check_overwrite(path, overwrite):
    """Raise ``FileExistsError`` naming ``path`` if it exists and ``overwrite`` is False.

    A directory at ``path`` raises `DataWriteError` whatever ``overwrite`` says: a file cannot
    replace it.
    """
    path = Path(path)
    if path.is_dir():
        raise DataWriteError(
            f"{path} is a directory, so a file cannot be written there; remove or rename it, "
            "or write to another file name"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")


def _temp_beside(path, tag):
    """A free temporary name in ``path``'s folder (the file itself is not left behind)."""
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{tag}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as astropy refuse to write onto an existing file
    return Path(tmp)


def _keep_copy(path):
    """A hard link (else a copy) of ``path`` beside it, to restore it if the write set fails."""
    backup = _temp_beside(path, "old")
    try:
        os.link(path, backup)
    except OSError:  # file systems without hard links
        shutil.copy2(path, backup)
    return backup


def _rollback(done):
    """Undo the renames in ``done`` (``(target, backup or None)``, in order); returns what failed."""
    failed = []
    for target, backup in reversed(done):
        try:
            if backup is None:
                os.unlink(target)
            else:
                os.replace(backup, target)
        except OSError as exc:
            failed.append(f"{target} ({exc}; the old file is kept as {backup})")
    return failed


def _commit(temps):
    """Rename every staged file onto its target; on a failure put back what was replaced."""
    keep_old = len(temps) > 1  # one rename is atomic by itself
    done = []
    for target, tmp in temps.items():
        backup = None
        try:
            if keep_old and target.exists():
                backup = _keep_copy(target)
            _rename(tmp, target)
        except OSError as exc:
            if backup is not None:  # the failed rename left this target as it was
                backup.unlink()
            failed = _rollback(done)
            state = (
                "the files there before are restored" if not failed else f"restoring failed for {failed}"
            )
            raise DataWriteError(
                f"writing {[str(p) for p in temps]}: putting {target} in place failed ({exc}); "
                f"{state}. Check the folder's permissions and free space, then write again"
            ) from exc
        done.append((target, backup))
    for _, backup in done:
        if backup is not None:
            with contextlib.suppress(OSError):
                backup.unlink()


@contextlib.contextmanager
def atomic_files(paths, overwrite=False):
    """Stage a set of files and put them in place together, or not at all.

    Yields ``{target: temporary path}``; write each file to its temporary path inside the
    ``with`` block. When the block succeeds the files are renamed onto their targets; when it
    raises, or a rename fails, the targets are left as they were (a failed rename puts back
    the files the earlier renames replaced) and no temporary file is left behind.

    Parameters
    ----------
    paths : iterable of str or Path
        Targets; their folders are created.
    overwrite : bool
        Replace existing files. Without it an existing target raises `FileExistsError` naming it
        before anything is written (and again before the renames: a file may appear meanwhile).

    Raises
    ------
    FileExistsError
        A target exists and ``overwrite`` is False.
    DataWriteError
        A target is a directory, its folder cannot be made, or a rename failed (the message says
        whether the old files were restored).
    DataFormatError
        Two targets are the same file.

    Examples
    --------
    >>> with atomic_files(["a.fits", "a_arf.fits"]) as temps:      # doctest: +SKIP
    ...     for target, tmp in temps.items():
    ...         hdulists[target].writeto(tmp)
    """
    targets = [Path(p) for p in paths]
    if len({os.path.abspath(p) for p in targets}) != len(targets):
        raise DataFormatError(f"write: two outputs share one file name: {[str(p) for p in targets]}")
    for path in targets:
        check_overwrite(path, overwrite)
    temps = {}
    try:
        for path in targets:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataWriteError(
                    f"{path}: cannot create its folder {path.parent} ({exc})"
                ) from exc
            temps[path] = _temp_beside(path, "new")
        yield dict(temps)
        missing = [str(p) for p, tmp in temps.items() if not tmp.exists()]
        if missing:
            raise DataWriteError(f"write: nothing was staged for {missing}; no file was written")
        for path in targets:
            check_overwrite(path, overwrite)
        _commit(temps)
    finally:
        for tmp in temps.values():
            if tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path, overwrite=False):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    One file of `atomic_files`: nothing is left behind when the block raises, and an existing
    file is replaced only with ``overwrite=True``.
    """
    with atomic_files([path], overwrite=overwrite) as temps:
        yield next(iter(temps.values()))


def write_files(writers, overwrite=False):
    """Write several files all or nothing (see `atomic_files`).

    Parameters
    ----------
    writers : dict of Path -> callable
        ``writer(tmp_path)`` writes the content of that target to ``tmp_path``.
    overwrite : bool

    Returns
    -------
    paths : list of Path
        The targets, in the order given.
    """
    writers = {Path(p): w for p, w in writers.items()}
    with atomic_files(list(writers), overwrite=overwrite) as temps:
        for target, writer in writers.items():
            writer(temps[target])
    return list(writers)


def file_checksum(path, algorithm="sha256"):
    """Hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
