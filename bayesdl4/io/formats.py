"""The formats bayesdl4 reads and writes, registered by class (see `bayesdl4.io.registry`).

Imported by the registry on its first lookup; importing it by hand is harmless.
"""

from ..datasets.core import Datasets
from ..datasets.map import MapDataset
from ..datasets.spectrum import SpectrumDataset
from ..irf.core import IRFMap
from ..maps import WcsGeom, WcsNDMap
from ..models import Models
from . import datasets_yaml, gadf_irf, gadf_maps, map_dataset, models_yaml, spectrum
from .registry import register

__all__: list[str] = []

# sky maps and their axes (GADF: image HDU + <HDU>_BANDS table)
register(
    WcsNDMap,
    "gadf",
    read=gadf_maps.read_map,
    write=gadf_maps.write_map,
    to_hdulist=gadf_maps.map_to_hdulist,
)
register(WcsGeom, "gadf", read_axes=gadf_maps.axes_from_bands_hdu)

# reduced IRF maps (PSF, energy dispersion); Fermi-LAT gtpsf tables for PSFs
for _format in ("gadf", "gtpsf"):
    register(
        IRFMap,
        _format,
        read=gadf_irf.read_irf_map,
        from_hdulist=gadf_irf.irf_map_from_hdulist,
        to_hdulist=gadf_irf.irf_map_to_hdulist,
        write=gadf_irf.write_irf_map,
    )

# models (gammapy's YAML)
register(
    Models,
    "yaml",
    read=models_yaml.read_models,
    write=models_yaml.write_models,
    to_string=models_yaml.models_to_yaml,
)

# datasets: one YAML listing one file per dataset
register(Datasets, "yaml", read=datasets_yaml.read_datasets, write=datasets_yaml.write_datasets)

# spectrum datasets (OGIP PHA + BKG/ARF/RMF, or gammapy's GADF region layout); None: detect
for _format in (None, *spectrum.FORMATS):
    register(
        SpectrumDataset,
        _format,
        read=spectrum.read_spectrum_dataset,
        write=spectrum.write_spectrum_dataset,
    )

# map datasets (gammapy 2.1's GADF layout)
register(
    MapDataset,
    "gadf",
    read=map_dataset.read_map_dataset,
    write=map_dataset.write_map_dataset,
    to_hdulist=map_dataset.map_dataset_to_hdulist,
    from_hdulist=map_dataset.map_dataset_from_hdulist,
)
