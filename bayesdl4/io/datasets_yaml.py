"""Datasets YAML files: gammapy 2.1's ``Datasets.read`` / ``Datasets.write`` layout.

A datasets file lists one entry per dataset; the data live in one FITS file each, named
relative to the YAML file's folder::

    datasets:
    -   name: nHit-5
        type: MapDataset                 # MapDataset, MapDatasetOnOff, SpectrumDataset(OnOff), FluxPointsDataset
        filename: nHit-5.fits.gz
    metadata: {creator: ..., date: ..., origin: ...}
    checksum: <md5 of the text above>    # optional; gammapy warns when it does not match

Models go in a separate models YAML (`bayesdl4.io.models_yaml`).

What gammapy 2.1 does, and what is done here:

- ``Datasets.write(filename)`` names the files as gammapy's ``to_dict``: ``<name>.fits`` (spaces
  replaced by ``_``), ``pha_obs<name>.fits`` for `SpectrumDatasetOnOff`. gammapy writes those in
  its GADF region layout (``SpectrumDatasetOnOff.write``'s default), not OGIP; so does this
  module by default (``spectrum_format="ogip"`` writes PHA + BKG + ARF + RMF instead).
- With ``prefix`` the layout of ``$GAMMAPY_DATA/fermi-3fhl-crab`` is written into a folder:
  ``<prefix>_datasets.yaml``, ``<prefix>_data_<name>.fits``, ``<prefix>_models.yaml``.
- gammapy's ``SpectrumDatasetOnOff.from_dict`` drops ``mask_fit`` when reading (the file holds
  it); here ``mask_fit`` is kept for every dataset type.
- A file name in the YAML is taken relative to the YAML's folder when it exists there, else as
  given (environment variables expanded), as gammapy.
- Writing is all or nothing (`bayesdl4.utils.fileio.atomic_files`): every target is checked
  first, every file is staged beside its target and renamed into place only when all are
  written, and a failed rename puts back the files already replaced; existing files are replaced
  only with ``overwrite=True``.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
from pathlib import Path

import yaml

from .. import __version__
from ..errors import DataFileNotFoundError, DataFormatError
from ..utils.fileio import check_overwrite, write_files
from ._yaml import YAML_FORMAT, load_yaml
from ._yaml import yaml_checksum as _checksum
from .map_dataset import expand_path

__all__ = [
    "read_datasets",
    "write_datasets",
    "datasets_filenames",
    "DATASET_TYPES",
]

log = logging.getLogger(__name__)

DATASET_TYPES = (
    "MapDataset", "MapDatasetOnOff", "SpectrumDataset", "SpectrumDatasetOnOff", "FluxPointsDataset"
)
SPECTRUM_FORMATS = ("gadf", "ogip")


def _registry():
    from ..datasets.flux_points_dataset import FluxPointsDataset
    from ..datasets.map import MapDataset, MapDatasetOnOff
    from ..datasets.spectrum import SpectrumDataset, SpectrumDatasetOnOff

    return {
        "FluxPointsDataset": FluxPointsDataset,
        "MapDataset": MapDataset,
        "MapDatasetOnOff": MapDatasetOnOff,
        "SpectrumDataset": SpectrumDataset,
        "SpectrumDatasetOnOff": SpectrumDatasetOnOff,
    }


def _with_checksum(text: str) -> str:
    """``text`` plus gammapy's ``checksum:`` line (md5 of ``text``), so gammapy reads it silently."""
    return text + yaml.safe_dump({"checksum": _checksum(text)}, **YAML_FORMAT)


# ---------------------------------------------------------------------------------------- reading
def _resolve(entry_filename, folder: Path, yaml_path: Path, name) -> Path:
    """gammapy's rule: relative to the YAML's folder if the file is there, else as given."""
    given = expand_path(entry_filename)
    for candidate in (folder / given, given):
        if candidate.exists():
            return candidate
    raise DataFileNotFoundError(
        f"{yaml_path}: dataset {name!r}: file {entry_filename!r} not found (looked in {folder} "
        "and the working directory)"
    )


def read_datasets(filename, filename_models=None):
    """Read a datasets YAML file and the FITS files it lists (gammapy 2.1's ``Datasets.read``).

    Parameters
    ----------
    filename : str or Path
        Datasets YAML; may contain environment variables (``$GAMMAPY_DATA/...``).
    filename_models : str or Path, optional
        Models YAML; its models are given to the datasets (``datasets_names`` respected).

    Returns
    -------
    `~bayesdl4.datasets.Datasets`

    Raises
    ------
    DataFormatError
        Not a datasets file, an entry without ``name`` / ``type`` / ``filename``, an unknown type,
        or a dataset file that cannot be read (the message names it).
    DataFileNotFoundError
        The YAML or a listed file does not exist.
    """
    from ..datasets.core import Datasets
    from ..io.map_dataset import read_map_dataset
    from ..io.spectrum import read_spectrum_dataset

    path = expand_path(filename)
    data = load_yaml(path, "datasets file")
    entries = data.get("datasets")
    if not isinstance(entries, list):
        hint = (
            "; this looks like a models file: pass it as filename_models"
            if "components" in data
            else ""
        )
        raise DataFormatError(
            f"{path}: a datasets file needs a top-level 'datasets' list; found keys {sorted(data)}{hint}"
        )
    registry = _registry()
    datasets = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"name", "type", "filename"} <= set(entry):
            raise DataFormatError(
                f"{path}: datasets entry {index} needs 'name', 'type' and 'filename', got {entry!r}"
            )
        name, kind = str(entry["name"]), entry["type"]
        if kind not in registry:
            raise DataFormatError(
                f"{path}: dataset {name!r} has type {kind!r}; supported types: {list(DATASET_TYPES)}"
            )
        file = _resolve(entry["filename"], path.parent, path, name)
        cls = registry[kind]
        if kind == "FluxPointsDataset":
            from .flux_points import read_flux_points_dataset

            dataset = read_flux_points_dataset(file, name=name, dataset_class=cls)
        elif kind.startswith("Map"):
            dataset = read_map_dataset(file, name=name, dataset_class=cls)
        else:
            dataset = read_spectrum_dataset(file, name=name, dataset_class=cls)
        datasets.append(dataset)
    datasets = Datasets(datasets)
    if filename_models is not None:
        from .models_yaml import read_models

        datasets.models = read_models(expand_path(filename_models))
    return datasets


# ---------------------------------------------------------------------------------------- writing
def datasets_filenames(datasets, prefix=None) -> list[str]:
    """File name of each dataset: gammapy's ``to_dict`` names, or ``<prefix>_data_<name>.fits``."""
    names = []
    for dataset in datasets:
        safe = dataset.name.replace(" ", "_")
        if prefix is not None:
            names.append(f"{prefix}_data_{safe}.fits")
        elif dataset.tag == "SpectrumDatasetOnOff":
            names.append(f"pha_obs{dataset.name}.fits")
        else:
            names.append(f"{safe}.fits")
    for name in names:
        if "/" in name or os.sep in name:
            raise DataFormatError(
                f"dataset file name {name!r} contains a path separator; rename the dataset"
            )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataFormatError(f"datasets would share the files {dupes}; give them distinct names")
    return names


def _datasets_yaml(datasets, filenames) -> str:
    data = {
        "datasets": [
            {"name": d.name, "type": d.tag, "filename": f}
            for d, f in zip(datasets, filenames, strict=True)
        ],
        "metadata": {
            "creator": f"bayesdl4 {__version__}",
            "date": datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(),
            "origin": None,
        },
    }
    return _with_checksum(yaml.safe_dump(data, **YAML_FORMAT))


def _dataset_hdulists(dataset, path: Path, spectrum_format) -> dict:
    """``{target: HDUList}`` of one dataset's files (OGIP spectra have three companions)."""
    if dataset.tag == "FluxPointsDataset":
        from .flux_points import flux_points_dataset_to_hdulist

        return {path: flux_points_dataset_to_hdulist(dataset)}
    if dataset.tag.startswith("Map"):
        from .map_dataset import map_dataset_to_hdulist

        return {path: map_dataset_to_hdulist(dataset)}
    if spectrum_format == "ogip":
        from .ogip import ogip_hdulists

        return ogip_hdulists(dataset, path)
    from .gadf_region import spectrum_dataset_to_gadf_hdulist

    return {path: spectrum_dataset_to_gadf_hdulist(dataset)}


def write_datasets(
    datasets, path, filename_models=None, overwrite=False, prefix=None, spectrum_format="gadf"
) -> dict:
    """Write datasets YAML + one FITS file per dataset (+ models YAML) that gammapy 2.1 reads.

    Parameters
    ----------
    datasets : `~bayesdl4.datasets.Datasets`
    path : str or Path
        Without ``prefix``: the datasets YAML file (gammapy 2.1's ``Datasets.write(filename)``),
        the dataset files go beside it. With ``prefix``: a folder receiving
        ``<prefix>_datasets.yaml``, ``<prefix>_data_<name>.fits`` and, when the datasets have
        models, ``<prefix>_models.yaml``.
    filename_models : str or Path, optional
        Models YAML to write (overrides the prefix name).
    overwrite : bool
        Replace existing files; otherwise an existing target raises `FileExistsError` (naming
        it) before anything is written.
    prefix : str, optional
    spectrum_format : {"gadf", "ogip"}
        Files of spectrum datasets: gammapy's GADF region layout (what gammapy's
        ``Datasets.write`` produces) or OGIP PHA + BKG + ARF + RMF.

    Returns
    -------
    dict
        ``{"datasets": yaml path, "data": [files], "models": models path or None}``.
    """
    if spectrum_format not in SPECTRUM_FORMATS:
        raise DataFormatError(
            f"spectrum_format must be one of {SPECTRUM_FORMATS}, got {spectrum_format!r}"
        )
    datasets = list(datasets)
    if prefix is not None:
        folder = expand_path(path)
        yaml_path = folder / f"{prefix}_datasets.yaml"
    else:
        yaml_path = expand_path(path)
        folder = yaml_path.parent
    filenames = datasets_filenames(datasets, prefix=prefix)

    models = _collect_models(datasets)
    models_path = None
    if filename_models is not None:
        models_path = expand_path(filename_models)
    elif prefix is not None and models:
        models_path = folder / f"{prefix}_models.yaml"

    texts = {yaml_path: _datasets_yaml(datasets, filenames)}
    if models_path is not None:
        from .models_yaml import models_to_yaml

        texts[models_path] = _with_checksum(models_to_yaml(models))

    # refuse before writing anything (and again before the renames: a file may appear meanwhile)
    for target in _targets(datasets, filenames, folder, spectrum_format) + list(texts):
        check_overwrite(target, overwrite)

    writers = {}
    for dataset, name in zip(datasets, filenames, strict=True):
        for target, hdulist in _dataset_hdulists(dataset, folder / name, spectrum_format).items():
            writers[target] = hdulist.writeto
    for target, text in texts.items():
        if target in writers:
            raise DataFormatError(f"{target}: a dataset file and a YAML file share this name")
        writers[target] = functools.partial(_write_text, text=text)
    staged = write_files(writers, overwrite=overwrite)
    data_files = [p for p in staged if p not in texts]
    return {"datasets": yaml_path, "data": data_files, "models": models_path}


def _write_text(path, text):
    Path(path).write_text(text)


def _targets(datasets, filenames, folder, spectrum_format) -> list[Path]:
    """Every data file the writers will produce (OGIP spectra have three companions)."""
    from .spectrum import ogip_filenames

    out = []
    for dataset, name in zip(datasets, filenames, strict=True):
        if spectrum_format == "ogip" and dataset.tag.startswith("Spectrum"):
            out += list(ogip_filenames(folder / name).values())
        else:
            out.append(folder / name)
    return out


def _collect_models(datasets):
    """Distinct models of the datasets in order of first appearance (None when there are none)."""
    seen, out = set(), []
    for dataset in datasets:
        for model in dataset.models or ():
            if id(model) not in seen:
                seen.add(id(model))
                out.append(model)
    if not out:
        return None
    from ..models import Models

    return Models(out)
