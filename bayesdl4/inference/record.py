"""What a result records about how it was made: versions, data file checksums, the models."""

import functools
import json
import os

from ..utils import file_checksum

__all__ = ["provenance_attrs", "package_versions"]


@functools.cache
def _package_versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("bayesdl4", "numpy", "scipy", "astropy", "pytensor", "pymc", "arviz", "nutpie", "xarray"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def package_versions():
    """Versions of bayesdl4 and the packages its numbers depend on (read once per process)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=256)
def _checksum(filename, size, mtime_ns):
    return file_checksum(filename)


def data_checksums(datasets):
    """sha256 of every file each dataset was read from, taken when it was read, and a mark for
    each dataset changed in memory since (`bayesdl4.io.provenance.recorded_checksums`).

    Files listed in ``dataset.meta['filenames']`` by a reader that records no checksum are
    hashed now.
    """
    from ..io.provenance import recorded_checksums

    out = {}
    for dataset in datasets:
        out.update(recorded_checksums(dataset))
        for filename in dataset.meta.get("filenames", ()):
            if str(filename) not in out and os.path.exists(filename):
                stat = os.stat(filename)  # recomputed whenever the file's size or mtime changes
                out[str(filename)] = _checksum(str(filename), stat.st_size, stat.st_mtime_ns)
    return out


def provenance_attrs(datasets, models):
    """Root attributes of a result DataTree (JSON strings, netCDF-safe)."""
    return {
        "bayesdl4_versions": json.dumps(package_versions()),
        "bayesdl4_data_checksums": json.dumps(data_checksums(datasets)),
        "bayesdl4_datasets": json.dumps([d.name for d in datasets]),
        "bayesdl4_models_yaml": models.to_yaml(),
    }
