"""Spectral datasets: thin containers of counts, exposure, energy dispersion and background."""

import numpy as np
from astropy import units as u

from ..errors import DataFormatError, GeometryMismatchError
from ..irf import EDispKernel
from ..maps import RegionNDMap

__all__ = ["SpectrumDataset", "SpectrumDatasetOnOff"]


def _check_map(name, m, geom, dataset_name, allow_negative=False):
    if m is None:
        return None
    if not isinstance(m, RegionNDMap):
        raise DataFormatError(f"dataset {dataset_name!r}: {name} must be a RegionNDMap, got {type(m).__name__}")
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
            raise DataFormatError(f"dataset {dataset_name!r}: {name} has negative values in bins {bad[:10].tolist()}")
    return m


class SpectrumDataset:
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

    def __init__(self, counts=None, exposure=None, edisp=None, background=None, mask_safe=None,
                 mask_fit=None, gti=None, livetime=None, meta_table=None, name="dataset", models=None,
                 meta=None):
        self.name = str(name)
        self.counts = _check_map("counts", counts, None, self.name)
        geom = counts.geom if counts is not None else None
        self.exposure = _check_map("exposure", exposure, None, self.name)
        self.background = _check_map("background", background, geom, self.name)
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
        return {"geom": self.counts.geom, "geom_exposure": self.exposure.geom}

    @property
    def energy_axis(self):
        return self.counts.geom.axis("energy")

    @property
    def energy_axis_true(self):
        return self.exposure.geom.axis("energy_true")

    @property
    def mask(self):
        """Combined mask ``mask_safe & mask_fit`` as a boolean array of ``counts`` shape (None if neither)."""
        masks = [m.data.astype(bool) for m in (self.mask_safe, self.mask_fit) if m is not None]
        if not masks:
            return None
        return np.logical_and.reduce(masks)

    @property
    def mask_bins(self):
        """Boolean 1D array of the reco bins that enter the likelihood."""
        mask = self.mask
        n = self.energy_axis.nbin
        return np.ones(n, dtype=bool) if mask is None else mask.reshape(n)

    # ------------------------------------------------------------------ models
    @property
    def models(self):
        return self._models

    @models.setter
    def models(self, models):
        if models is None:  # no import: reading and writing files must not need the models package
            self._models = None
            return
        from ..models import Models

        self._models = Models(models).select(self.name)

    # ------------------------------------------------------------------ evaluation (delegations)
    def npred_signal(self, model_names=None):
        """Predicted source counts per reco bin as a `RegionNDMap` (current parameter values)."""
        from ..graph import evaluate_npred

        return self._as_map(evaluate_npred(self, kind="signal", model_names=model_names))

    def npred_background(self):
        """Predicted background counts per reco bin (zeros where there is none)."""
        from ..graph import evaluate_npred

        return self._as_map(evaluate_npred(self, kind="background"))

    def npred(self):
        """Predicted counts per reco bin: background + signal."""
        from ..graph import evaluate_npred

        return self._as_map(evaluate_npred(self, kind="total"))

    def stat_array(self):
        """Per-bin fit statistic (-2 log-likelihood convention of gammapy), unmasked."""
        from ..graph import evaluate_stat_array

        return evaluate_stat_array(self)

    def stat_sum(self):
        """Fit statistic summed over the bins in ``mask`` (as gammapy's ``stat_sum``)."""
        return float(np.sum(self.stat_array()[self.mask_bins]))

    def residuals(self, method="diff"):
        """counts - npred (``"diff"``), divided by npred (``"diff/model"``) or sqrt(npred) (``"diff/sqrt(model)"``)."""
        npred = self.npred().data
        diff = self.counts.data - npred
        if method == "diff":
            out = diff
        elif method == "diff/model":
            out = diff / npred
        elif method == "diff/sqrt(model)":
            out = diff / np.sqrt(npred)
        else:
            raise ValueError(f"unknown residual method {method!r}")
        return self._as_map(out)

    def _as_map(self, values):
        return RegionNDMap(self.counts.geom, np.asarray(values).reshape(self.counts.geom.data_shape))

    # ------------------------------------------------------------------ I/O (delegations)
    @classmethod
    def read(cls, filename, name=None, format=None, checksum=False):
        """Read a spectrum dataset (OGIP PHA with its BKG/ARF/RMF, or gammapy's GADF region layout)."""
        from ..io.spectrum import read_spectrum_dataset

        return read_spectrum_dataset(filename, name=name, format=format, dataset_class=cls)

    def write(self, filename, format="ogip", overwrite=False):
        """Write to ``format`` ``"ogip"`` (PHA + BKG + ARF + RMF) or ``"gadf"`` (one FITS file)."""
        from ..io.spectrum import write_spectrum_dataset

        return write_spectrum_dataset(self, filename, format=format, overwrite=overwrite)

    # ------------------------------------------------------------------ misc
    def copy(self, name=None):
        import copy

        new = copy.deepcopy(self)
        if name is not None:
            new.name = name
        return new

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

    def __init__(self, counts=None, counts_off=None, acceptance=None, acceptance_off=None, **kwargs):
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

    @background.setter
    def background(self, value):
        # OnOff datasets derive their background from counts_off; a given one is ignored
        pass

    @classmethod
    def from_spectrum_dataset(cls, dataset, counts_off, acceptance, acceptance_off, name=None):
        """OnOff dataset from a `SpectrumDataset` and OFF measurements."""
        return cls(
            counts=dataset.counts, counts_off=counts_off, acceptance=acceptance,
            acceptance_off=acceptance_off, exposure=dataset.exposure, edisp=dataset.edisp,
            mask_safe=dataset.mask_safe, mask_fit=dataset.mask_fit, gti=dataset.gti,
            livetime=dataset.livetime, meta_table=dataset.meta_table, name=name or dataset.name,
        )
