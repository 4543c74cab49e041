"""Results on disk: ArviZ DataTrees as netCDF (h5netcdf), written atomically."""

import json

import xarray as xr

from ..errors import DataFormatError
from ..utils.fileio import atomic_path

__all__ = ["write", "read", "provenance"]


def _netcdf_safe(tree):
    """Copy of ``tree`` where object-dtype variables (sampler messages) become strings."""
    tree = tree.copy()
    for node in tree.subtree:
        ds = node.to_dataset()
        changed = False
        for name, var in ds.data_vars.items():
            if var.dtype == object:
                ds[name] = var.astype(str)
                changed = True
        if changed:
            node.dataset = ds
    return tree


def write(result, path, overwrite=False):
    """Write a result to netCDF at ``path`` (atomic; ``overwrite=True`` to replace).

    ``result`` is a DataTree from `sample` or a `FitResult` (stored as its ``fit`` group; get it back
    with ``FitResult.from_datatree(read(path))``).
    """
    if hasattr(result, "to_datatree"):
        result = result.to_datatree()
    if not isinstance(result, xr.DataTree):
        raise TypeError(
            f"write expects a DataTree (from sample) or a FitResult (from fit), got {type(result).__name__}"
        )
    with atomic_path(path, overwrite=overwrite) as tmp:
        _netcdf_safe(result).to_netcdf(tmp, engine="h5netcdf")
    return path


def read(path, verify=False):
    """Read a result written by `write` (all groups loaded into memory).

    ``verify=True`` compares the data checksums the result recorded with the files on disk now
    and warns, naming each file that changed or is missing (`bayesdl4.io.provenance.verify`).
    """
    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable netCDF result ({exc})") from exc
    tree = tree.load()
    tree.close()
    if verify:
        from ..io.provenance import verify as verify_checksums

        verify_checksums(tree)
    return tree


def provenance(result):
    """Versions, data checksums, dataset names and models YAML recorded in a result."""
    attrs = result.attrs
    out = {}
    for key in ("versions", "data_checksums", "datasets"):
        raw = attrs.get(f"bayesdl4_{key}")
        out[key] = None if raw is None else json.loads(raw)
    out["models_yaml"] = attrs.get("bayesdl4_models_yaml")
    return out
