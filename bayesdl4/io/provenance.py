"""Where a dataset's data came from: file checksums taken when it is read, and later checks.

Every reader records in ``dataset.meta``:

- ``"filenames"``: the files read (an OGIP spectrum: PHA, BKG, ARF, RMF);
- ``"checksums"``: ``{file: sha256}`` of those files, taken when they were read;
- ``"data_digest"``: a sha256 of the dataset's data arrays as read (`data_digest`).

A result records `data_checksums` (the file checksums, and a mark for each dataset whose arrays
changed in memory after reading); `verify` compares a result's record with the files on disk.
``mask_fit`` is not part of the digest: it is an analysis choice, like the models, not data.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..utils.fileio import file_checksum

__all__ = [
    "record_read",
    "data_digest",
    "changed_since_read",
    "recorded_checksums",
    "data_checksums",
    "verify",
    "CHANGED_IN_MEMORY",
]

log = logging.getLogger(__name__)

# key prefix, in `data_checksums`, of a dataset whose arrays changed after it was read
CHANGED_IN_MEMORY = "changed in memory after reading: "

# the attributes that hold data (as read from files); IRF objects give their arrays below
_DATA_ATTRIBUTES = (
    "counts",
    "counts_off",
    "exposure",
    "background",
    "acceptance",
    "acceptance_off",
    "mask_safe",
    "edisp",
    "psf",
)


def _arrays(value):
    """The numpy arrays that hold ``value``'s data (maps, IRF maps, kernels, quantities)."""
    for attribute in ("pdf_matrix", "edisp_map", "psf_map", "exposure_map"):
        inner = getattr(value, attribute, None)
        if inner is not None:
            yield from _arrays(inner)
    if hasattr(value, "data") and isinstance(value.data, np.ndarray):
        yield value.data
    elif isinstance(value, np.ndarray):
        yield value


def data_digest(dataset) -> str:
    """sha256 of a dataset's data arrays (counts, OFF counts, exposure, background, acceptances,
    safe mask, IRFs) and livetime; equal digests mean equal data."""
    digest = hashlib.sha256()
    for attribute in _DATA_ATTRIBUTES:
        value = getattr(dataset, attribute, None)
        digest.update(attribute.encode())
        if value is None:
            digest.update(b"None")
            continue
        for array in _arrays(value):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    livetime = getattr(dataset, "livetime", None)
    digest.update(str(None if livetime is None else livetime.to_value("s")).encode())
    return digest.hexdigest()


def record_read(dataset, files):
    """Record in ``dataset.meta`` the files it was read from (absolute paths), their sha256 and
    its data digest.

    Called by every reader, after the dataset is built; returns ``dataset``.
    """
    files = [os.path.abspath(f) for f in files if f is not None]  # verify may run elsewhere
    dataset.meta["filenames"] = files
    dataset.meta["checksums"] = {f: file_checksum(f) for f in files}
    dataset.meta["data_digest"] = data_digest(dataset)
    return dataset


def changed_since_read(dataset):
    """True when the dataset's data arrays differ from those read; None when it was not read
    from files (or by a reader that records no digest)."""
    recorded = (getattr(dataset, "meta", None) or {}).get("data_digest")
    if recorded is None:
        return None
    return data_digest(dataset) != recorded


def recorded_checksums(dataset) -> dict:
    """``{file: sha256 at read time}`` of one dataset, plus ``{CHANGED_IN_MEMORY + name: files}``
    when its data changed in memory after reading (empty for a dataset not read from files)."""
    meta = getattr(dataset, "meta", None) or {}
    out = dict(meta.get("checksums") or {})
    if out and changed_since_read(dataset):
        out[CHANGED_IN_MEMORY + dataset.name] = ", ".join(meta.get("filenames", out))
    return out


def data_checksums(datasets) -> dict:
    """The `recorded_checksums` of all ``datasets``, merged (what a result records)."""
    out = {}
    for dataset in datasets:
        out.update(recorded_checksums(dataset))
    return out


def _recorded(result) -> dict:
    if isinstance(result, dict) and "bayesdl4_data_checksums" not in result:
        return result
    attrs = result if isinstance(result, dict) else getattr(result, "attrs", None)
    if attrs is None and hasattr(result, "to_datatree"):
        attrs = result.to_datatree().attrs
    raw = (attrs or {}).get("bayesdl4_data_checksums")
    if raw is None:
        raise ValueError(
            "verify: the result records no data checksums (bayesdl4_data_checksums attribute); "
            "pass a result of fit or sample, or the checksums dict"
        )
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def verify(result) -> list[str]:
    """Compare the data checksums a result recorded with the files on disk.

    Each file that is missing or whose sha256 differs from the one taken when it was read, and
    each dataset changed in memory after reading, is logged as a warning naming it.

    Parameters
    ----------
    result : DataTree, `FitResult`, dict
        A result of ``fit`` or ``sample`` (or one read back from netCDF), its ``attrs``, or the
        ``{file: sha256}`` dict itself.

    Returns
    -------
    problems : list of str
        One message per file or dataset that does not match; empty when all match.

    Examples
    --------
    >>> problems = verify(bayesdl4.inference.read("result.nc"))       # doctest: +SKIP
    """
    problems = []
    for key, value in _recorded(result).items():
        if key.startswith(CHANGED_IN_MEMORY):
            name = key[len(CHANGED_IN_MEMORY) :]
            problems.append(
                f"dataset {name!r} was changed in memory after it was read from {value}: the "
                "files alone do not reproduce this result"
            )
        elif not Path(key).is_file():
            problems.append(f"{key}: the data file this result was computed from is missing")
        elif file_checksum(key) != value:
            problems.append(
                f"{key}: the file changed after it was read for this result (sha256 differs)"
            )
    for message in problems:
        log.warning("%s", message)
    return problems
