"""`Dataset`: what the four count dataset types share (gammapy's ``Dataset`` base).

A dataset is a container: it checks that its maps fit together and holds models, nothing more.
Its conveniences are thin delegations:

- evaluation (``npred``, ``stat_sum``, ...) to `bayesdl4.graph` through a late import (the graph
  builders read datasets, so they sit above them);
- files to the format registry `bayesdl4.io.registry` (the readers build datasets, so they too
  sit above them);
- stacking, reductions, simulation and summaries to the function modules of this package
  (`stack`, `reduce`, `simulate`, `info`), which work on any dataset through the declared map
  attributes below and never import the dataset classes;
- plots to `bayesdl4.plotting.datasets` (matplotlib is imported only when plotting).

Declared attributes (class level), walked by stacking, slicing and I/O:

``counts_maps``
    Maps on the counts geometry (reconstructed energy), in the order in which the first one set
    defines that geometry (gammapy's ``_geom``).
``exposure_maps``
    Maps on the exposure geometry (true energy).
``irf_attributes``
    Reduced IRFs (energy dispersion, PSF).
``derived_attributes``
    Read-only maps computed from others (an ON/OFF dataset's ``background`` = alpha x counts_off).
``table_attributes``
    Constructor arguments that are not maps (GTI and meta tables, meta, a spectrum's livetime).
"""

from __future__ import annotations

import copy as _copy

import numpy as np

from ..errors import DataFormatError, GeometryMismatchError
from ..io import registry
from . import fake as _fake
from . import info as _info
from . import reduce as _reduce
from . import stack as _stack

__all__ = ["Dataset"]


class Dataset:
    """Base of `SpectrumDataset`, `SpectrumDatasetOnOff`, `MapDataset` and `MapDatasetOnOff`.

    Subclasses set ``tag``, ``stat_type`` (``"cash"`` or ``"wstat"``), ``map_type`` (the map
    class of their counts: `RegionNDMap` or `WcsNDMap`) and the declared attribute lists.
    """

    tag = "Dataset"
    stat_type = "cash"
    map_type: type | None = None
    counts_maps: tuple[str, ...] = ("counts", "background", "mask_safe", "mask_fit")
    exposure_maps: tuple[str, ...] = ("exposure",)
    irf_attributes: tuple[str, ...] = ("edisp", "psf")
    derived_attributes: tuple[str, ...] = ()
    # constructor arguments that are not maps (copied by reductions, combined by stacking)
    table_attributes: tuple[str, ...] = ("gti", "meta_table", "meta")
    # file format ``write`` uses by default and the kind of file named in format errors
    default_format = "gadf"
    _format_kind = ""

    # ------------------------------------------------------------------ declared attributes
    @classmethod
    def map_attributes(cls) -> tuple[str, ...]:
        """All stored map attributes: ``counts_maps`` then ``exposure_maps``."""
        return cls.counts_maps + cls.exposure_maps

    @property
    def is_onoff(self) -> bool:
        """True for datasets whose background comes from OFF counts (WStat)."""
        return self.stat_type == "wstat"

    # ------------------------------------------------------------------ geometry and masks
    def _reference(self):
        """(attribute, map) defining the counts geometry, or (None, None)."""
        for attribute in self.counts_maps:
            m = getattr(self, attribute, None)
            if m is not None:
                return attribute, m
        return None, None

    @property
    def _geom(self):
        """Geometry of the counts (the first map of ``counts_maps`` that is set)."""
        _, ref = self._reference()
        if ref is None:
            raise GeometryMismatchError(
                f"dataset {self.name!r}: none of {list(self.counts_maps)} is set, so the dataset "
                "has no counts geometry"
            )
        return ref.geom

    @property
    def data_shape(self) -> tuple:
        """Shape of the counts: (n_energy, ny, nx), (n_energy, 1, 1) for spectra."""
        return self._geom.data_shape

    @property
    def energy_axis(self):
        """Reconstructed-energy axis of the counts."""
        return self._geom.axis("energy")

    @property
    def energy_axis_true(self):
        """True-energy axis of the exposure (None without exposure)."""
        return None if self.exposure is None else self.exposure.geom.axis("energy_true")

    @property
    def mask(self):
        """``mask_safe & mask_fit`` as a boolean array of counts shape (None if neither is set)."""
        masks = [m.data.astype(bool) for m in (self.mask_safe, self.mask_fit) if m is not None]
        if not masks:
            return None
        return np.logical_and.reduce(masks)

    @property
    def mask_safe_image(self) -> np.ndarray:
        """Pixels (ny, nx) with at least one safe energy bin (all True without a safe mask)."""
        if self.mask_safe is None:
            return np.ones(self.data_shape[-2:], dtype=bool)
        return np.any(self.mask_safe.data.astype(bool), axis=0)

    @property
    def mask_image(self) -> np.ndarray:
        """Pixels (ny, nx) with at least one energy bin in ``mask`` (all True without masks)."""
        mask = self.mask
        if mask is None:
            return np.ones(self.data_shape[-2:], dtype=bool)
        return np.any(mask, axis=0)

    def _as_map(self, values):
        """Values of counts shape as a map on the counts geometry."""
        return self.map_type(self._geom, np.asarray(values).reshape(self.data_shape))

    # ------------------------------------------------------------------ models
    @property
    def models(self):
        """Models that apply to this dataset (those whose ``datasets_names`` include its name)."""
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
        """Predicted source counts per bin at the current parameter values (a map of counts shape)."""
        from ..graph import evaluate_npred

        return self._as_map(evaluate_npred(self, kind="signal", model_names=model_names))

    def npred_background(self):
        """Predicted background counts per bin (ON/OFF: alpha x the profiled OFF mean)."""
        from ..graph import evaluate_npred

        return self._as_map(evaluate_npred(self, kind="background"))

    def npred(self):
        """Predicted counts per bin: background + signal."""
        from ..graph import evaluate_npred

        return self._as_map(evaluate_npred(self, kind="total"))

    def stat_array(self) -> np.ndarray:
        """Per-bin fit statistic (-2 log-likelihood, gammapy's convention), unmasked, counts shape."""
        from ..graph import evaluate_stat_array

        return np.asarray(evaluate_stat_array(self)).reshape(self.data_shape)

    def stat_sum(self) -> float:
        """Fit statistic summed over the bins in ``mask`` (gammapy's ``stat_sum``)."""
        stat = self.stat_array()
        mask = self.mask
        return float(np.sum(stat if mask is None else stat[mask]))

    def residuals(self, method="diff"):
        """counts - npred (``"diff"``), divided by npred (``"diff/model"``) or its square root
        (``"diff/sqrt(model)"``), as a map of counts shape."""
        methods = ("diff", "diff/model", "diff/sqrt(model)")
        if method not in methods:
            raise ValueError(f"unknown residual method {method!r}; use one of {methods}")
        npred = self.npred().data
        diff = self.counts.data - npred
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == "diff/model":
                diff = diff / npred
            elif method == "diff/sqrt(model)":
                diff = diff / np.sqrt(npred)
        return self._as_map(diff)

    # ------------------------------------------------------------------ stacking and reductions
    def stack(self, other, nan_to_num=True):
        """Stack ``other`` into this dataset in place (see `bayesdl4.datasets.stack.stack_into`).

        Left unchanged when it fails.
        """
        _stack.stack_into(self, other, nan_to_num=nan_to_num)

    def to_masked(self, name=None, nan_to_num=True):
        """Dataset with the safe mask applied (`bayesdl4.datasets.stack.to_masked`)."""
        return _stack.to_masked(self, name=name, nan_to_num=nan_to_num)

    def slice_by_idx(self, slices: dict, name=None):
        """Sub-dataset of axis bins, e.g. ``{"energy": slice(2, 5)}`` (`reduce.slice_by_idx`)."""
        return _reduce.slice_by_idx(self, slices, name=name)

    def slice_by_energy(self, energy_min=None, energy_max=None, name=None):
        """Reco-energy bins inside [energy_min, energy_max] (`reduce.slice_by_energy`)."""
        return _reduce.slice_by_energy(self, energy_min, energy_max, name=name)

    def resample_energy_axis(self, energy_axis, name=None):
        """Reco-energy bins merged onto ``energy_axis`` (`reduce.resample_energy_axis`)."""
        return _reduce.resample_energy_axis(self, energy_axis, name=name)

    def to_image(self, name=None):
        """One reco-energy bin spanning the axis (`reduce.to_image`)."""
        return _reduce.to_image(self, name=name)

    def downsample(self, factor, axis_name=None, name=None):
        """Bins merged by ``factor`` along the sky axes or ``axis_name`` (`reduce.downsample`)."""
        return _reduce.downsample(self, factor, axis_name=axis_name, name=name)

    # ------------------------------------------------------------------ simulation and summaries
    def fake(self, random_seed=None, npred_background=None):
        """Replace the counts (and OFF counts) by Poisson draws of the prediction, in place
        (`bayesdl4.datasets.fake.fake`; ``npred_background``: ON/OFF only, the expected
        background in the ON region, default alpha x counts_off)."""
        _fake.fake(self, random_seed=random_seed, npred_background=npred_background)

    def info_dict(self, in_safe_data_range=True) -> dict:
        """Summary numbers, as gammapy's ``info_dict`` (`bayesdl4.datasets.info.info_dict`)."""
        return _info.info_dict(self, in_safe_data_range=in_safe_data_range)

    # ------------------------------------------------------------------ plots (delegations)
    def plot_residuals(self, **kwargs):
        """Spectral (and for maps spatial) residuals (`bayesdl4.plotting.datasets.plot_residuals`)."""
        from ..plotting.datasets import plot_residuals

        return plot_residuals(self, **kwargs)

    def plot_masks(self, ax=None, **kwargs):
        """Safe and fit masks (`bayesdl4.plotting.datasets.plot_masks`)."""
        from ..plotting.datasets import plot_masks

        return plot_masks(self, ax=ax, **kwargs)

    def peek(self, figsize=None):
        """Quick-look figure of the dataset (`bayesdl4.plotting.datasets.peek`)."""
        from ..plotting.datasets import peek

        return peek(self, figsize=figsize)

    # ------------------------------------------------------------------ I/O (format registry)
    @classmethod
    def _io(cls, format, operation):
        return registry.lookup(cls, format, operation, what=cls._format_kind)

    def to_dict(self) -> dict:
        """Entry of a datasets YAML: ``{"name", "type", "filename"}`` (gammapy's ``to_dict``)."""
        name = self.name.replace(" ", "_")
        return {"name": self.name, "type": self.tag, "filename": f"{name}.fits"}

    @classmethod
    def from_dict(cls, data: dict):
        """Dataset read from the file of a datasets-YAML entry (gammapy's ``from_dict``).

        ``data`` needs ``filename`` (environment variables expanded) and may give ``name`` and,
        for spectra, ``format``.
        """
        if "filename" not in data:
            raise DataFormatError(
                f"{cls.__name__}.from_dict: the entry {data!r} has no 'filename'; give the file "
                "the dataset is stored in"
            )
        kwargs = {"name": data.get("name")}
        if "format" in data:
            kwargs["format"] = data["format"]
        return cls.read(data["filename"], **kwargs)

    # ------------------------------------------------------------------ misc
    def copy(self, name=None):
        """Deep copy (models included), optionally renamed."""
        new = _copy.deepcopy(self)
        if name is not None:
            new.name = str(name)
        return new
