"""What a result records about how it was made: versions, data file checksums, the models."""

import json
import os

from ..utils import file_checksum

__all__ = ["provenance_attrs", "package_versions"]


def package_versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("bayesdl4", "numpy", "scipy", "astropy", "pytensor", "pymc", "arviz", "nutpie", "xarray"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_checksums(datasets):
    """sha256 of every file each dataset was read from (``dataset.meta['filenames']``)."""
    out = {}
    for dataset in datasets:
        for filename in dataset.meta.get("filenames", ()):
            if os.path.exists(filename):
                out[str(filename)] = file_checksum(filename)
    return out


def provenance_attrs(datasets, models):
    """Root attributes of a result DataTree (JSON strings, netCDF-safe)."""
    return {
        "bayesdl4_versions": json.dumps(package_versions()),
        "bayesdl4_data_checksums": json.dumps(data_checksums(datasets)),
        "bayesdl4_datasets": json.dumps([d.name for d in datasets]),
        "bayesdl4_models_yaml": models.to_yaml(),
    }
