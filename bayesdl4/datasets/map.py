"""Map datasets: thin containers of counts cubes, exposure, background and the reduced IRF maps.

`MapDataset` holds what gammapy 2.1's ``MapDataset`` holds (counts and background on
``(energy, lat, lon)``, exposure on ``(energy_true, lat, lon)``, a `PSFMap`, an `EDispKernelMap`
or `EDispMap` on a coarse sky grid, safe and fit masks, GTI and a meta table) and checks that the
pieces fit together. What all dataset types share (models, npred / stat delegations, stacking,
reductions, I/O through the format registry) lives in `bayesdl4.datasets.base.Dataset`; the
map-only transformations (``cutout``, ``pad``, ``to_spectrum_dataset``, ...) are functions in
`bayesdl4.datasets.reduce` and `bayesdl4.datasets.convert`.
"""

from __future__ import annotations

import logging

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..errors import DataFormatError, GeometryMismatchError
from ..irf import EDispKernelMap, EDispMap, PSFMap
from ..maps import WcsNDMap
from . import convert as _convert
from . import reduce as _reduce
from .base import Dataset
from .geoms import (
    BINSZ_IRF_DEFAULT,
    create_map_dataset_geoms,
    describe_geom_mismatch,
    edisp_from_geom,
    psf_from_geom,
)
from .tables import empty_gti

__all__ = ["MapDataset", "MapDatasetOnOff", "BINSZ_IRF_DEFAULT", "describe_geom_mismatch"]

log = logging.getLogger(__name__)

# predictions may be (slightly) negative: HAWC's background planes hold -8e-18, which gammapy accepts
_NEGATIVE_ALLOWED = ("background",)


def _error(cls, attribute, message):
    """An exception that remembers which dataset attribute it is about (readers name the HDU)."""
    exc = cls(message)
    exc.attribute = attribute
    return exc


def _check_values(attribute, m, dataset_name, allow_negative=False):
    data = m.data
    bad = ~np.isfinite(data)
    if np.any(bad):
        planes = np.flatnonzero(np.any(bad, axis=(-2, -1)).ravel()) if data.ndim > 2 else []
        raise _error(
            DataFormatError,
            attribute,
            f"dataset {dataset_name!r}: {attribute} has {int(bad.sum())} non-finite values "
            f"(energy planes {list(planes)[:10]}); fix or mask them before building the dataset",
        )
    if not allow_negative and np.any(data < 0):
        raise _error(
            DataFormatError,
            attribute,
            f"dataset {dataset_name!r}: {attribute} has {int((data < 0).sum())} negative values "
            f"(min {data.min():.4g})",
        )


def _as_mask(attribute, m, dataset_name):
    """Boolean copy of a mask map; integer / float maps of 0 and 1 are accepted (as written to FITS)."""
    if m.data.dtype == bool:
        return m
    values = np.unique(m.data)
    if not np.all(np.isin(values, (0, 1))):
        raise _error(
            DataFormatError,
            attribute,
            f"dataset {dataset_name!r}: {attribute} must be boolean (or 0/1), got values "
            f"{values[:5].tolist()}",
        )
    return m.copy(data=m.data.astype(bool))


def _check_map(attribute, m, dataset_name):
    if m is None:
        return None
    if not isinstance(m, WcsNDMap):
        raise _error(
            DataFormatError,
            attribute,
            f"dataset {dataset_name!r}: {attribute} must be a WcsNDMap, got {type(m).__name__}",
        )
    return m


def _check_axes(attribute, m, names, dataset_name):
    got = [ax.name for ax in m.geom.axes]
    if got != list(names):
        raise _error(
            GeometryMismatchError,
            attribute,
            f"dataset {dataset_name!r}: {attribute} must have the non-spatial axes {list(names)}, "
            f"got {got}",
        )


class MapDataset(Dataset):
    """Counts cube with the exposure, background and IRF maps that predict it (gammapy's ``MapDataset``).

    Parameters
    ----------
    counts : `WcsNDMap`, shape (n_energy, ny, nx)
        Observed counts; axis ``energy``.
    exposure : `WcsNDMap`, shape (n_energy_true, ny, nx)
        Effective area x livetime [cm2 s, m2 s] on the same sky grid; axis ``energy_true``.
        Its ``meta["livetime"]`` is the livetime (as gammapy keeps it).
    background : `WcsNDMap`, shape (n_energy, ny, nx), optional
        Predicted background counts (the template a FoV background model scales).
    psf : `PSFMap`, optional
        PSF on a coarse sky grid, in true energy (or reconstructed energy, as HAWC's files).
    edisp : `EDispKernelMap` or `EDispMap`, optional
        Energy dispersion on a coarse sky grid; a kernel map's axes must be the counts energy
        axis and the exposure true-energy axis. Without one, gammapy uses a diagonal response.
    mask_safe, mask_fit : `WcsNDMap` of bool, shape of ``counts``, optional
        The likelihood runs over ``mask_safe & mask_fit``.
    gti : `astropy.table.Table`, optional
        Good time intervals (``START``, ``STOP`` [s] with the ``MJDREF*`` / ``TIMESYS`` keys in meta).
    meta_table : `astropy.table.Table`, optional
        One row per observation that went into the dataset.
    name : str
    models : `bayesdl4.models.Models` or list, optional
        Kept are those whose ``datasets_names`` include ``name`` (or have none).
    meta : dict, optional
        Free metadata (extra primary-header keywords of a file).

    Raises
    ------
    GeometryMismatchError
        Maps whose grids or axes do not fit (the message names both and the difference).
    DataFormatError
        Wrong types, non-finite counts / exposure / background, negative counts or exposure.

    Examples
    --------
    >>> dataset = MapDataset.read("$GAMMAPY_DATA/hawc/DL4/nHit-5.fits.gz")   # doctest: +SKIP
    >>> dataset.counts.data.shape, dataset.exposure.data.shape                 # doctest: +SKIP
    ((10, 120, 120), (50, 120, 120))
    """

    stat_type = "cash"
    tag = "MapDataset"
    map_type = WcsNDMap
    # maps on the counts geometry; the first one set defines it (as gammapy's ``_geom``)
    counts_maps = ("counts", "background", "mask_safe", "mask_fit")
    exposure_maps = ("exposure",)
    irf_attributes = ("psf", "edisp")
    default_format = "gadf"
    _format_kind = "map dataset"

    def __init__(
        self,
        counts=None,
        exposure=None,
        background=None,
        psf=None,
        edisp=None,
        mask_safe=None,
        mask_fit=None,
        gti=None,
        meta_table=None,
        name="dataset",
        models=None,
        meta=None,
    ):
        self.name = str(name)
        self.counts = _check_map("counts", counts, self.name)
        self.exposure = _check_map("exposure", exposure, self.name)
        if "background" in self.counts_maps:
            self.background = _check_map("background", background, self.name)
        elif background is not None:
            raise _error(
                DataFormatError,
                "background",
                f"dataset {self.name!r}: a {self.tag} takes its background from counts_off; give "
                "counts_off and acceptance_off instead of background",
            )
        self.mask_safe = _check_map("mask_safe", mask_safe, self.name)
        self.mask_fit = _check_map("mask_fit", mask_fit, self.name)
        if psf is not None and not isinstance(psf, PSFMap):
            raise _error(
                DataFormatError,
                "psf",
                f"dataset {self.name!r}: psf must be a PSFMap, got {type(psf).__name__}",
            )
        if edisp is not None and not isinstance(edisp, EDispKernelMap | EDispMap):
            raise _error(
                DataFormatError,
                "edisp",
                f"dataset {self.name!r}: edisp must be an EDispKernelMap or EDispMap, "
                f"got {type(edisp).__name__}",
            )
        self.psf = psf
        self.edisp = edisp
        self.gti = None if gti is None else Table(gti)
        self.meta_table = None if meta_table is None else Table(meta_table)
        self.meta = dict(meta or {})
        self._validate()
        self._validated = True
        self.models = models

    # masks are checked (and cast to bool) also when assigned later: ``dataset.mask_fit = ...``
    @property
    def mask_safe(self) -> WcsNDMap | None:
        """Bins with trustworthy IRFs (boolean `WcsNDMap` on the counts geometry, or None)."""
        return self._mask_safe

    @mask_safe.setter
    def mask_safe(self, value):
        self._set_checked("mask_safe", value)

    @property
    def mask_fit(self) -> WcsNDMap | None:
        """Bins chosen for the fit (boolean `WcsNDMap` on the counts geometry, or None)."""
        return self._mask_fit

    @mask_fit.setter
    def mask_fit(self, value):
        self._set_checked("mask_fit", value)

    def _set_checked(self, attribute, value):
        old = getattr(self, f"_{attribute}", None)
        setattr(self, f"_{attribute}", _check_map(attribute, value, self.name))
        if getattr(self, "_validated", False):
            try:
                self._validate()
            except (DataFormatError, GeometryMismatchError):
                setattr(self, f"_{attribute}", old)
                raise

    # ------------------------------------------------------------------ validation
    def _validate(self):
        name = self.name
        ref_attr, ref = self._reference()
        if ref is not None:
            _check_axes(ref_attr, ref, ["energy"], name)
        for attribute in self.counts_maps:
            m = getattr(self, attribute, None)
            if m is None:
                continue
            if not m.geom.is_allclose(ref.geom, rtol_axes=1e-5):
                raise _error(
                    GeometryMismatchError,
                    attribute,
                    f"dataset {name!r}: {attribute} geometry does not match {ref_attr}: "
                    f"{describe_geom_mismatch(m.geom, ref.geom)}",
                )
            if attribute.startswith("mask"):
                setattr(self, f"_{attribute}", _as_mask(attribute, m, name))
            else:
                _check_values(attribute, m, name, allow_negative=attribute in _NEGATIVE_ALLOWED)

        if self.exposure is not None:
            _check_axes("exposure", self.exposure, ["energy_true"], name)
            _check_values("exposure", self.exposure, name)
            try:
                self.exposure.unit.to("m2 s")
            except u.UnitConversionError as exc:
                raise _error(
                    DataFormatError,
                    "exposure",
                    f"dataset {name!r}: exposure unit {self.exposure.unit} is not area x time "
                    "(cm2 s, m2 s)",
                ) from exc
            if ref is not None and not self.exposure.geom.to_image().is_allclose(
                ref.geom.to_image()
            ):
                raise _error(
                    GeometryMismatchError,
                    "exposure",
                    f"dataset {name!r}: exposure sky grid does not match {ref_attr}: "
                    f"{describe_geom_mismatch(self.exposure.geom.to_image(), ref.geom.to_image())}",
                )

        if isinstance(self.edisp, EDispKernelMap) and ref is not None:
            reco = ref.geom.axis("energy")
            if not self.edisp.energy_axis.is_allclose(reco, rtol=1e-5):
                raise _error(
                    GeometryMismatchError,
                    "edisp",
                    f"dataset {name!r}: edisp reco energy axis ({self.edisp.energy_axis.nbin} bins) "
                    f"does not match the {ref_attr} energy axis ({reco.nbin} bins)",
                )
        if self.edisp is not None and self.exposure is not None:
            true, etrue = self.edisp.energy_axis_true, self.exposure.geom.axis("energy_true")
            if not true.is_allclose(etrue, rtol=1e-5):
                raise _error(
                    GeometryMismatchError,
                    "edisp",
                    f"dataset {name!r}: edisp true-energy axis ({true.nbin} bins "
                    f"[{true.edges[0]:.6g}, {true.edges[-1]:.6g}]) does not match the exposure's "
                    f"({etrue.nbin} bins [{etrue.edges[0]:.6g}, {etrue.edges[-1]:.6g}])",
                )

    # ------------------------------------------------------------------ geometry
    @property
    def geoms(self) -> dict:
        """Geometries of the maps, as gammapy: ``geom``, ``geom_exposure``, ``geom_psf``, ``geom_edisp``."""
        geoms = {"geom": self._geom}
        if self.exposure is not None:
            geoms["geom_exposure"] = self.exposure.geom
        if self.psf is not None:
            geoms["geom_psf"] = self.psf.psf_map.geom
        if self.edisp is not None:
            geoms["geom_edisp"] = self.edisp.edisp_map.geom
        return geoms

    @property
    def livetime(self) -> u.Quantity | None:
        """Livetime from ``exposure.meta["livetime"]`` (where gammapy keeps it), or None."""
        if self.exposure is None or "livetime" not in self.exposure.meta:
            return None
        try:
            return u.Quantity(self.exposure.meta["livetime"]).to("s")
        except (TypeError, ValueError, u.UnitsError) as exc:
            raise DataFormatError(
                f"dataset {self.name!r}: exposure meta livetime "
                f"{self.exposure.meta['livetime']!r} is not a time"
            ) from exc

    @livetime.setter
    def livetime(self, value):
        if self.exposure is None:
            raise DataFormatError(f"dataset {self.name!r}: no exposure to hold the livetime")
        if value is None:
            self.exposure.meta.pop("livetime", None)
        else:
            self.exposure.meta["livetime"] = f"{float(u.Quantity(value, 's').to_value('s'))!r} s"

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

        Counts and background (ON/OFF: OFF counts and acceptances) are zero on ``geom``, the
        exposure zero [m2 s] on ``geom_exposure``, the PSF zero with a zero exposure on
        ``geom_psf``, the energy dispersion diagonal (bin-overlap kernel, or a migration map for a
        ``migra`` axis) with a zero exposure on ``geom_edisp``, ``mask_safe`` all False, and the
        GTI table empty (referenced to ``reference_time``).
        """
        kwargs = dict(kwargs)
        kwargs["name"] = name
        for attribute in cls.counts_maps:
            if not attribute.startswith("mask"):
                kwargs.setdefault(attribute, WcsNDMap(geom))
        kwargs.setdefault("mask_safe", WcsNDMap(geom, dtype=bool))
        if geom_exposure is not None:
            kwargs.setdefault("exposure", WcsNDMap(geom_exposure, unit="m2 s"))
        if geom_psf is not None:
            kwargs.setdefault("psf", psf_from_geom(geom_psf))
        if geom_edisp is not None:
            kwargs.setdefault("edisp", edisp_from_geom(geom_edisp))
        kwargs.setdefault("gti", empty_gti(reference_time))
        return cls(**kwargs)

    @classmethod
    def create(
        cls,
        geom,
        energy_axis_true=None,
        migra_axis=None,
        rad_axis=None,
        binsz_irf=BINSZ_IRF_DEFAULT,
        reference_time="2000-01-01",
        name="dataset",
        meta_table=None,
        reco_psf=False,
    ):
        """Empty dataset on ``geom``, as gammapy's ``MapDataset.create``.

        Counts and background are zero on ``geom``; the exposure is zero [m2 s] on the same sky
        grid with ``energy_axis_true``; PSF (zero, ``rad_axis``) and energy dispersion (diagonal:
        bin-overlap kernel, or with ``migra_axis`` a migration map) lie on a coarse grid of
        ``binsz_irf`` deg with the same centre and width; ``mask_safe`` is all False and the GTI
        table is empty. See `bayesdl4.datasets.geoms.create_map_dataset_geoms`.
        """
        geoms = create_map_dataset_geoms(
            geom,
            energy_axis_true=energy_axis_true,
            migra_axis=migra_axis,
            rad_axis=rad_axis,
            binsz_irf=binsz_irf,
            reco_psf=reco_psf,
        )
        return cls.from_geoms(
            **geoms, reference_time=reference_time, name=name, meta_table=meta_table
        )

    # ------------------------------------------------------------------ derived datasets
    def cutout(self, position, width, mode="trim", name=None):
        """Dataset cut out around ``position`` (`bayesdl4.datasets.reduce.cutout`)."""
        return _reduce.cutout(self, position, width, mode=mode, name=name)

    def pad(self, pad_width, mode="constant", name=None):
        """Sky axes padded by ``pad_width`` pixels (`bayesdl4.datasets.reduce.pad`)."""
        return _reduce.pad(self, pad_width, mode=mode, name=name)

    def to_spectrum_dataset(self, on_region, containment_correction=False, name=None):
        """Spectrum in ``on_region`` (`bayesdl4.datasets.convert.to_spectrum_dataset`)."""
        return _convert.to_spectrum_dataset(
            self, on_region, containment_correction=containment_correction, name=name
        )

    def to_region_map_dataset(self, region, name=None):
        """Integrated in ``region``, without containment correction
        (`bayesdl4.datasets.convert.to_region_map_dataset`: a spectrum dataset)."""
        return _convert.to_region_map_dataset(self, region, name=name)

    # ------------------------------------------------------------------ I/O (format registry)
    @classmethod
    def read(cls, filename, name=None):
        """Read a dataset file in gammapy 2.1's GADF layout (``MapDataset.write``'s files).

        ``name`` defaults to the file's ``NAME`` keyword (else the file name without suffixes).
        """
        return cls._io("gadf", "read")(filename, name=name, dataset_class=cls)

    def write(self, filename, overwrite=False):
        """Write in gammapy 2.1's layout, atomically; refuses to replace a file unless ``overwrite``."""
        return self._io("gadf", "write")(self, filename, overwrite=overwrite)

    def to_hdulist(self):
        """HDU list in gammapy 2.1's layout."""
        return self._io("gadf", "to_hdulist")(self)

    @classmethod
    def from_hdulist(cls, hdulist, name=None):
        """Dataset from an open HDU list in gammapy 2.1's layout."""
        return cls._io("gadf", "from_hdulist")(hdulist, name=name, dataset_class=cls)

    # ------------------------------------------------------------------ misc
    def __repr__(self):
        counts = "None" if self.counts is None else f"{float(self.counts.data.sum()):.0f}"
        shape = None
        try:
            shape = self.data_shape
        except GeometryMismatchError:
            pass
        return (
            f"{type(self).__name__}(name={self.name!r}, counts={counts}, shape={shape}, "
            f"psf={type(self.psf).__name__ if self.psf else None}, "
            f"edisp={type(self.edisp).__name__ if self.edisp else None})"
        )


class MapDatasetOnOff(MapDataset):
    """ON/OFF map dataset: the background is estimated from OFF counts (profiled in WStat).

    Extra parameters
    ----------------
    counts_off : `WcsNDMap`
        OFF counts on the counts geometry.
    acceptance, acceptance_off : `WcsNDMap`
        ON and OFF exposure ratios; ``alpha = acceptance / acceptance_off``. Default ones.
    """

    stat_type = "wstat"
    tag = "MapDatasetOnOff"
    counts_maps = (
        "counts",
        "counts_off",
        "mask_safe",
        "mask_fit",
        "acceptance",
        "acceptance_off",
    )
    derived_attributes = ("background",)

    def __init__(
        self, counts=None, counts_off=None, acceptance=None, acceptance_off=None, **kwargs
    ):
        name = str(kwargs.get("name", "dataset"))
        self.counts_off = _check_map("counts_off", counts_off, name)
        self.acceptance = _check_map("acceptance", acceptance, name)
        self.acceptance_off = _check_map("acceptance_off", acceptance_off, name)
        super().__init__(counts=counts, **kwargs)
        geom = self._geom if self._reference()[1] is not None else None
        if geom is not None:
            for attribute in ("acceptance", "acceptance_off"):
                if getattr(self, attribute) is None:
                    setattr(self, attribute, WcsNDMap(geom, np.ones(geom.data_shape)))

    @property
    def alpha(self) -> WcsNDMap:
        """acceptance / acceptance_off per bin (0 where undefined, as gammapy)."""
        acceptance = 1.0 if self.acceptance is None else self.acceptance.data
        acceptance_off = 1.0 if self.acceptance_off is None else self.acceptance_off.data
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = acceptance / acceptance_off * np.ones(self.data_shape)
        return WcsNDMap(self._geom, np.nan_to_num(alpha, nan=0.0, posinf=0.0))

    @property
    def background(self):
        """alpha x counts_off: the background estimate gammapy shows for OnOff datasets."""
        if getattr(self, "counts_off", None) is None:
            return None
        return WcsNDMap(self._geom, self.alpha.data * self.counts_off.data)

    @classmethod
    def from_map_dataset(cls, dataset, counts_off, acceptance=None, acceptance_off=None, name=None):
        """OnOff dataset from a `MapDataset` and OFF measurements."""
        return cls(
            counts=dataset.counts,
            counts_off=counts_off,
            acceptance=acceptance,
            acceptance_off=acceptance_off,
            exposure=dataset.exposure,
            psf=dataset.psf,
            edisp=dataset.edisp,
            mask_safe=dataset.mask_safe,
            mask_fit=dataset.mask_fit,
            gti=dataset.gti,
            meta_table=dataset.meta_table,
            name=name or dataset.name,
            meta=dataset.meta,
        )

    def to_map_dataset(self, name=None) -> MapDataset:
        """`MapDataset` with background alpha x counts_off (gammapy's ``to_map_dataset``)."""
        return _reduce.to_cash_dataset(self, MapDataset, name=name)
