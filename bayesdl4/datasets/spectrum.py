"""Spectral datasets: thin containers of counts, exposure, energy dispersion and background."""

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..errors import DataFormatError, GeometryMismatchError
from ..irf import EDispKernel
from ..irf.edisp_map import get_overlap_fraction
from ..maps import RegionGeom, RegionNDMap
from .base import Dataset
from .reduce import to_cash_dataset
from .tables import empty_gti

__all__ = ["SpectrumDataset", "SpectrumDatasetOnOff"]


def _check_map(name, m, geom, dataset_name, allow_negative=False):
    if m is None:
        return None
    if not isinstance(m, RegionNDMap):
        raise DataFormatError(
            f"dataset {dataset_name!r}: {name} must be a RegionNDMap, got {type(m).__name__}"
        )
    if geom is not None and not m.geom.is_allclose(geom):
        raise GeometryMismatchError(
            f"dataset {dataset_name!r}: {name} axes {m.geom.axes} do not match {geom.axes}"
        )
    data = m.data
    if data.dtype != bool:
        if not np.all(np.isfinite(data)):
            bad = np.flatnonzero(~np.isfinite(data.ravel()))
            raise DataFormatError(
                f"dataset {dataset_name!r}: {name} has non-finite values in bins {bad[:10].tolist()}; "
                "fix or mask them before building the dataset"
            )
        if not allow_negative and np.any(data < 0):
            bad = np.flatnonzero(data.ravel() < 0)
            raise DataFormatError(
                f"dataset {dataset_name!r}: {name} has negative values in bins {bad[:10].tolist()}"
            )
    return m


class SpectrumDataset(Dataset):
    """Counts in reconstructed energy with the IRFs that predict them (gammapy's ``SpectrumDataset``).

    Parameters
    ----------
    counts : `RegionNDMap`, shape (n_energy, 1, 1)
        Observed counts.
    exposure : `RegionNDMap`, shape (n_energy_true, 1, 1)
        Effective area x livetime [cm2 s or m2 s] on ``energy_true``.
    edisp : `EDispKernel`
        Redistribution matrix, (n_energy_true, n_energy).
    background : `RegionNDMap`, optional
        Expected background counts per reco bin.
    mask_safe, mask_fit : `RegionNDMap` of bool, optional
        Bins used by the likelihood are ``mask_safe & mask_fit``.
    gti : `astropy.table.Table`, optional
    livetime : `~astropy.units.Quantity`, optional
    meta_table : `astropy.table.Table`, optional
    name : str
    models : `bayesdl4.models.Models` or list, optional
    """

    stat_type = "cash"
    tag = "SpectrumDataset"
    map_type = RegionNDMap
    counts_maps = ("counts", "background", "mask_safe", "mask_fit")
    exposure_maps = ("exposure",)
    irf_attributes = ("edisp",)
    table_attributes = ("gti", "meta_table", "meta", "livetime")
    default_format = "ogip"
    _format_kind = "spectrum"

    def __init__(
        self,
        counts=None,
        exposure=None,
        edisp=None,
        background=None,
        mask_safe=None,
        mask_fit=None,
        gti=None,
        livetime=None,
        meta_table=None,
        name="dataset",
        models=None,
        meta=None,
    ):
        self.name = str(name)
        self.counts = _check_map("counts", counts, None, self.name)
        geom = counts.geom if counts is not None else None
        self.exposure = _check_map("exposure", exposure, None, self.name)
        if "background" in self.counts_maps:
            self.background = _check_map("background", background, geom, self.name)
        elif background is not None:
            raise DataFormatError(
                f"dataset {self.name!r}: a {self.tag} takes its background from counts_off; "
                "give counts_off and acceptance_off instead of background"
            )
        self.mask_safe = _check_map("mask_safe", mask_safe, geom, self.name)
        self.mask_fit = _check_map("mask_fit", mask_fit, geom, self.name)
        if edisp is not None and not isinstance(edisp, EDispKernel):
            raise DataFormatError(f"dataset {self.name!r}: edisp must be an EDispKernel")
        self.edisp = edisp
        self.gti = gti
        self.livetime = None if livetime is None else u.Quantity(livetime, "s")
        self.meta_table = meta_table
        self.meta = dict(meta or {})
        self._check_axes()
        self.models = models

    def _check_axes(self):
        if self.counts is not None and self.edisp is not None:
            reco = self.counts.geom.axis("energy")
            if not reco.is_allclose(self.edisp.energy_axis, rtol=1e-5):
                raise GeometryMismatchError(
                    f"dataset {self.name!r}: counts energy axis ({reco.nbin} bins) does not match the "
                    f"edisp reco axis ({self.edisp.energy_axis.nbin} bins)"
                )
        if self.exposure is not None and self.edisp is not None:
            true = self.exposure.geom.axis("energy_true")
            if true.nbin != self.edisp.energy_axis_true.nbin:
                raise GeometryMismatchError(
                    f"dataset {self.name!r}: exposure has {true.nbin} true-energy bins, edisp "
                    f"{self.edisp.energy_axis_true.nbin}"
                )

    # ------------------------------------------------------------------ geometry and masks
    @property
    def geoms(self):
        """Geometries: ``geom`` (counts), ``geom_exposure`` and ``geom_edisp`` (energy, energy_true)."""
        geoms = {"geom": self._geom}
        if self.exposure is not None:
            geoms["geom_exposure"] = self.exposure.geom
        if self.edisp is not None:
            geoms["geom_edisp"] = RegionGeom(
                self._geom.region,
                [self.edisp.energy_axis.copy(), self.edisp.energy_axis_true.copy()],
                self._geom.wcs,
            )
        return geoms

    @property
    def mask_bins(self):
        """Boolean 1D array of the reco bins that enter the likelihood."""
        mask = self.mask
        n = self.energy_axis.nbin
        return np.ones(n, dtype=bool) if mask is None else mask.reshape(n)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_geoms(
        cls,
        geom,
        geom_exposure=None,
        geom_psf=None,
        geom_edisp=None,
        reference_time="2000-01-01",
        name="dataset",
        **kwargs,
    ):
        """Dataset of zeros on the given geometries, as gammapy's ``from_geoms``.

        Counts and background (not for ON/OFF) are zero on ``geom``, the exposure zero [m2 s]
        on ``geom_exposure``, the energy dispersion is the bin-overlap (diagonal) kernel between
        the ``energy_true`` and ``energy`` axes of ``geom_edisp``, ``mask_safe`` is all False and
        the GTI table is empty. A spectrum has no PSF: ``geom_psf`` must be None. ON/OFF
        datasets get zero OFF counts and acceptances.
        """
        if not isinstance(geom, RegionGeom):
            raise GeometryMismatchError(
                f"{cls.__name__}.from_geoms: geom must be a RegionGeom, got {type(geom).__name__}"
            )
        if geom_psf is not None:
            raise GeometryMismatchError(f"{cls.__name__}.from_geoms: a spectrum dataset has no PSF")
        kwargs = dict(kwargs)
        kwargs["name"] = name
        for attribute in cls.counts_maps:
            if attribute.startswith("mask"):
                continue
            kwargs.setdefault(attribute, RegionNDMap(geom, np.zeros(geom.data_shape)))
        kwargs.setdefault("mask_safe", RegionNDMap(geom, np.zeros(geom.data_shape, dtype=bool)))
        if geom_exposure is not None:
            kwargs.setdefault("exposure", RegionNDMap(geom_exposure, unit="m2 s"))
        if geom_edisp is not None:
            energy, energy_true = geom_edisp.axis("energy"), geom_edisp.axis("energy_true")
            kwargs.setdefault(
                "edisp",
                EDispKernel(
                    (energy_true.copy(), energy.copy()), get_overlap_fraction(energy, energy_true)
                ),
            )
        kwargs.setdefault("gti", empty_gti(reference_time))
        return cls(**kwargs)

    @classmethod
    def create(
        cls,
        geom,
        energy_axis_true=None,
        migra_axis=None,
        reference_time="2000-01-01",
        name="dataset",
        meta_table=None,
        **kwargs,
    ):
        """Empty dataset on the region geometry ``geom``, as gammapy's ``SpectrumDataset.create``.

        Parameters
        ----------
        geom : `RegionGeom`
            Counts geometry with one ``energy`` axis.
        energy_axis_true : `MapAxis`, optional
            Default: the counts energy axis renamed ``energy_true``.
        migra_axis : None
            Migration maps are not held by spectrum datasets (refused).
        reference_time : str
            GTI reference time.
        """
        if migra_axis is not None:
            raise GeometryMismatchError(
                f"{cls.__name__}.create: spectrum datasets hold an energy-dispersion kernel, not a "
                "migration map; leave migra_axis None"
            )
        if not isinstance(geom, RegionGeom):
            raise GeometryMismatchError(
                f"{cls.__name__}.create: geom must be a RegionGeom, got {type(geom).__name__}"
            )
        energy = geom.axis("energy")
        if energy_axis_true is None:
            energy_axis_true = energy.copy(name="energy_true")
        elif energy_axis_true.name != "energy_true":
            raise GeometryMismatchError(
                f"{cls.__name__}.create: energy_axis_true must be named 'energy_true', got "
                f"{energy_axis_true.name!r}"
            )
        return cls.from_geoms(
            geom,
            geom_exposure=RegionGeom(geom.region, [energy_axis_true.copy()], geom.wcs),
            geom_edisp=RegionGeom(geom.region, [energy.copy(), energy_axis_true.copy()], geom.wcs),
            reference_time=reference_time,
            name=name,
            meta_table=None if meta_table is None else Table(meta_table),
            **kwargs,
        )

    # ------------------------------------------------------------------ I/O (format registry)
    @classmethod
    def read(cls, filename, name=None, format=None, checksum=False):
        """Read a spectrum dataset (OGIP PHA with its BKG/ARF/RMF, or gammapy's GADF region layout).

        ``format`` None detects it from the file's HDUs. ``checksum=True`` verifies the
        ``CHECKSUM`` / ``DATASUM`` keywords of the files' HDUs (a mismatch raises `DataFormatError`).
        """
        return cls._io(format, "read")(
            filename, name=name, format=format, dataset_class=cls, checksum=checksum
        )

    def write(self, filename, format="ogip", overwrite=False):
        """Write to ``format`` ``"ogip"`` (PHA + BKG + ARF + RMF) or ``"gadf"`` (one FITS file)."""
        return self._io(format, "write")(self, filename, format=format, overwrite=overwrite)

    # ------------------------------------------------------------------ plots (delegations)
    def plot_fit(self, ax_spectrum=None, ax_residuals=None, method="diff"):
        """Counts and prediction with residuals below (`bayesdl4.plotting.datasets.plot_fit`)."""
        from ..plotting.datasets import plot_fit

        return plot_fit(self, ax_spectrum=ax_spectrum, ax_residuals=ax_residuals, method=method)

    # ------------------------------------------------------------------ misc
    def __repr__(self):
        n = self.counts.data.sum() if self.counts is not None else 0
        return f"{type(self).__name__}(name={self.name!r}, counts={n:.0f}, bins={self.energy_axis.nbin})"


class SpectrumDatasetOnOff(SpectrumDataset):
    """ON/OFF spectrum: background estimated from OFF counts, profiled in WStat.

    Extra parameters
    ----------------
    counts_off : `RegionNDMap`
        OFF counts per reco bin.
    acceptance, acceptance_off : `RegionNDMap`
        ON and OFF exposure ratios (OGIP BACKSCAL); ``alpha = acceptance / acceptance_off``.
    """

    stat_type = "wstat"
    tag = "SpectrumDatasetOnOff"
    counts_maps = ("counts", "counts_off", "acceptance", "acceptance_off", "mask_safe", "mask_fit")
    derived_attributes = ("background",)

    def __init__(
        self, counts=None, counts_off=None, acceptance=None, acceptance_off=None, **kwargs
    ):
        super().__init__(counts=counts, **kwargs)
        geom = self.counts.geom if self.counts is not None else None
        self.counts_off = _check_map("counts_off", counts_off, geom, self.name)
        if acceptance is None and geom is not None:
            acceptance = RegionNDMap(geom, np.ones(geom.data_shape))
        self.acceptance = _check_map("acceptance", acceptance, geom, self.name)
        if acceptance_off is None and geom is not None:
            acceptance_off = RegionNDMap(geom, np.ones(geom.data_shape))
        self.acceptance_off = _check_map("acceptance_off", acceptance_off, geom, self.name)

    @property
    def alpha(self):
        """acceptance / acceptance_off per bin (0 where undefined, as gammapy)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = self.acceptance.data / self.acceptance_off.data
        return RegionNDMap(self.counts.geom, np.nan_to_num(alpha, nan=0.0, posinf=0.0))

    @property
    def background(self):
        """alpha x counts_off: the background estimate gammapy shows for OnOff datasets."""
        if getattr(self, "counts_off", None) is None:
            return None
        return RegionNDMap(self.counts.geom, self.alpha.data * self.counts_off.data)

    @classmethod
    def from_spectrum_dataset(cls, dataset, counts_off, acceptance, acceptance_off, name=None):
        """OnOff dataset from a `SpectrumDataset` and OFF measurements."""
        return cls(
            counts=dataset.counts,
            counts_off=counts_off,
            acceptance=acceptance,
            acceptance_off=acceptance_off,
            exposure=dataset.exposure,
            edisp=dataset.edisp,
            mask_safe=dataset.mask_safe,
            mask_fit=dataset.mask_fit,
            gti=dataset.gti,
            livetime=dataset.livetime,
            meta_table=dataset.meta_table,
            name=name or dataset.name,
            meta=dataset.meta,
        )

    def to_dict(self) -> dict:
        """Entry of a datasets YAML as gammapy writes it: the PHA file ``pha_obs<name>.fits``."""
        return {"name": self.name, "type": self.tag, "filename": f"pha_obs{self.name}.fits"}

    def to_spectrum_dataset(self, name=None):
        """`SpectrumDataset` with background alpha x counts_off (gammapy's ``to_spectrum_dataset``)."""
        return to_cash_dataset(self, SpectrumDataset, name=name)

    def to_map_dataset(self, name=None):
        """Same as `to_spectrum_dataset` (gammapy's name for the conversion of all ON/OFF types)."""
        return self.to_spectrum_dataset(name=name)
