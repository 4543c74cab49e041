"""Flux points datasets (`FluxPointsDataset`) in the dataset-graph protocol.

The model prediction of a flux point is the sum of its sources' ``dnde`` at the point's reference
energy (gammapy 2.1 compares every SED type in ``dnde``; spatial models are ignored, the points
being the source's total flux). The per-point ``-2 ln L`` terms (`point_stat`) are gammapy's:

* ``chi2``: ``((dnde - model) / dnde_err)**2`` (``dnde_err``, else the mean of ``dnde_errn`` and
  ``dnde_errp``), upper limits left out;
* ``distrib``: measured points as a split normal (``dnde_errp`` above the point, ``dnde_errn``
  below, ``dnde_err`` where those are missing), upper limits as
  `~bayesdl4.stats.upper_limit_erfc`;
* ``profile``: the interpolated likelihood profile at ``model / dnde_ref``
  (`~bayesdl4.stats.stat_profile`; C1, gammapy's values inside the scan).

`point_arrays` (numpy) and `point_stat` (numpy or tensors) serve both the builder and the numpy
conveniences of the dataset (``stat_array``), so both use one formula. All flux points datasets
of one stat type and model structure form one group: their points are concatenated, the sources'
``dnde`` evaluated once over all of them (per-dataset parameters gathered from ``theta``), and
summed per dataset by a segment product.

Posterior-predictive means are ``{"dnde": model}``; the points are Gaussian, not Poisson, so the
plan declares no observed values (the inference layer draws Poisson counts for those): draw them
with `FluxPointsBuilder.draw_predictive` (a split normal with the points' errors).
"""

import logging
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from ..datasets.flux_points_dataset import FluxPointsDataset
from ..errors import DataFormatError, ModelError
from ..models import SkyModel, TemplateSpatialModel
from ..stats import chi2, chi2_asymmetric, stat_profile, upper_limit_erfc
from ..stats.flux_points import ProfileSpline
from .protocol import DatasetGraphBuilder, GroupGraph, GroupPlan, PointLayout, register_builder
from .segment import segment_dot, segment_sums

log = logging.getLogger(__name__)

__all__ = ["FluxPointsBuilder", "point_arrays", "point_stat", "sources"]

_SPLINE = ("origin", "lo", "hi", "c0", "c1", "c2")
_ARRAYS = {
    "chi2": ("dnde", "err"),
    "distrib": ("dnde", "errn", "errp", "ul", "is_ul"),
    "profile": ("dnde_ref",) + tuple("spline." + s for s in _SPLINE),
}


def sources(dataset):
    """The `SkyModel` s of a flux points dataset; ModelError for anything its likelihood ignores."""
    out = []
    for model in dataset.models or ():
        if not isinstance(model, SkyModel):
            raise ModelError(
                f"dataset {dataset.name!r}: model {getattr(model, 'name', model)!r} of type "
                f"{type(model).__name__} cannot act on flux points (only sources' spectra do); "
                "restrict it with datasets_names"
            )
        if isinstance(model.spatial_model, TemplateSpatialModel):
            raise ModelError(
                f"dataset {dataset.name!r}: model {model.name!r} has a template spatial model; the "
                "flux points would need its spatially integrated spectrum, which is not supported"
            )
        temporal = getattr(model, "temporal_model", None) or getattr(model, "temporal_dict", None)
        if temporal is not None:
            raise ModelError(
                f"dataset {dataset.name!r}: model {model.name!r} has a temporal model, which the flux "
                "points likelihood does not use; remove it"
            )
        out.append(model)
    return out


def point_arrays(dataset, all_points=False):
    """Numpy arrays of the fitted points of ``dataset`` (``all_points``: every valid point).

    Returns ``(index, arrays)``: the point indices and a dict with ``energy`` (TeV) and the
    arrays of ``dataset.stat_type`` (`_ARRAYS`; dnde in cm-2 s-1 TeV-1). Placeholders keep the
    branch a point does not use finite (for gradients): measured-point errors 1 at upper limits,
    upper limit 1 at measured points.
    """
    fp = dataset.data
    mask = dataset.mask_valid if all_points else dataset.mask
    mask = mask & ~dataset.mask_zero
    index = np.flatnonzero(mask)
    stat_type = dataset.stat_type
    arrays = {"energy": fp.energy_ref.to_value("TeV")[index]}
    dnde = fp.dnde.to_value("cm-2 s-1 TeV-1")[index]
    if stat_type == "chi2":
        if "norm_err" in fp.available_quantities:
            err, column = fp.dnde_err, "dnde_err"
        else:
            err, column = (fp.dnde_errn + fp.dnde_errp) / 2, "dnde_errn, dnde_errp"
        err = err.to_value("cm-2 s-1 TeV-1")[index]
        bad = index[~(np.isfinite(err) & (err > 0))]
        if bad.size:
            raise DataFormatError(
                f"{fp.source}: chi2 needs a positive finite error ({column}) for every fitted point; "
                f"points {bad[:10].tolist()} have none: mask them with mask_safe or use "
                "stat_type='distrib'"
            )
        arrays.update(dnde=dnde, err=err)
    elif stat_type == "distrib":
        is_ul = fp.is_ul[index]
        err = _optional(fp, "dnde_err", index)
        errn = np.where(np.isfinite(_optional(fp, "dnde_errn", index)),
                        _optional(fp, "dnde_errn", index), err)
        errp = np.where(np.isfinite(_optional(fp, "dnde_errp", index)),
                        _optional(fp, "dnde_errp", index), err)
        # gammapy sets NaN terms to 0: an infinite scale gives 0 with a zero gradient
        errn = np.where(np.isfinite(errn), errn, np.inf)
        errp = np.where(np.isfinite(errp), errp, np.inf)
        ul = _optional(fp, "dnde_ul", index)
        arrays.update(
            dnde=np.where(is_ul, 0.0, dnde), errn=np.where(is_ul, 1.0, errn),
            errp=np.where(is_ul, 1.0, errp), ul=np.where(is_ul, ul, 1.0),
            is_ul=is_ul.astype(float),
        )
    else:
        arrays["dnde_ref"] = fp.dnde_ref.to_value("cm-2 s-1 TeV-1")[index]
        spline = dataset.profile_spline[index]
        for name, values in zip(_SPLINE, spline.arrays, strict=True):
            arrays["spline." + name] = values
    return index, arrays


def _optional(fp, name, index):
    try:
        return fp.get(name).to_value("cm-2 s-1 TeV-1")[index]
    except AttributeError:
        return np.full(index.size, np.nan)


def _where(mask, a, b):
    if any(isinstance(x, Variable) for x in (mask, a, b)):
        return pt.switch(mask, a, b)
    return np.where(mask, a, b)


def point_stat(stat_type, arrays, model):
    """Per-point ``-2 ln L`` of ``stat_type`` given the model dnde (numpy or tensors, see
    `point_arrays` for ``arrays``)."""
    if stat_type == "chi2":
        return chi2(arrays["dnde"], model, arrays["err"])
    if stat_type == "distrib":
        measured = chi2_asymmetric(arrays["dnde"], model, arrays["errn"], arrays["errp"])
        limit = upper_limit_erfc(model, arrays["ul"])
        return _where(arrays["is_ul"] > 0, limit, measured)
    if stat_type == "profile":
        spline = ProfileSpline(*(arrays["spline." + s] for s in _SPLINE))
        return stat_profile(model / arrays["dnde_ref"], spline)
    raise ModelError(f"unknown flux points stat_type {stat_type!r}; use one of {list(_ARRAYS)}")


# ---------------------------------------------------------------------------------------- builder
@dataclass
class _Source:
    spectral_model: object  # the first dataset's (template) spectral model
    shared: list  # per parameter: theta index if every dataset uses one parameter, else None


@dataclass
class _Static:
    stat_type: str
    sources: list


@register_builder
class FluxPointsBuilder(DatasetGraphBuilder):
    """Graph builder of `FluxPointsDataset` (see the module docstring)."""

    dataset_types = (FluxPointsDataset,)

    def check(self, dataset):
        sources(dataset)

    def group_key(self, dataset, table):
        return (dataset.stat_type,
                tuple(m.spectral_model._structure_key() for m in sources(dataset)))

    def prepare(self, datasets, table, name, all_bins=False, granularity=None):
        stat_type = datasets[0].stat_type
        prepared = [point_arrays(d, all_points=all_bins) for d in datasets]
        sizes = np.array([index.size for index, _ in prepared])
        point_dataset = np.repeat(np.arange(len(datasets)), sizes)
        arrays = {}
        for key in ("energy",) + _ARRAYS[stat_type]:
            parts = [a[key] for _, a in prepared]
            if key.startswith("spline."):  # pad to the group's number of pieces (empty pieces)
                width = max((p.shape[1] for p in parts), default=0)
                parts = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts]
                arrays[key] = np.concatenate(parts, axis=0) if parts else np.zeros((0, width))
            else:
                arrays[key] = np.concatenate(parts)
        model_lists = [sources(d) for d in datasets]
        static_sources = []
        for s, template in enumerate(m.spectral_model for m in model_lists[0]):
            index = np.array([[table.index(p) for p in models[s].spectral_model.parameters]
                              for models in model_lists], dtype=np.int64).reshape(len(datasets), -1)
            shared = []
            for k in range(index.shape[1]):
                column = index[:, k]
                if np.all(column == column[0]):
                    shared.append(int(column[0]))
                else:
                    shared.append(None)
                    arrays[f"src{s}.idx{k}"] = column[point_dataset]
            static_sources.append(_Source(template, shared))
        arrays.update(segment_sums(point_dataset, len(datasets)).arrays("per_dataset."))
        # no observed values: the inference layer draws Poisson counts for those (draw_predictive)
        points = PointLayout(dataset=point_dataset,
                             coord=np.concatenate([index for index, _ in prepared]),
                             dim_suffix="point")
        return GroupPlan(builder=self, name=name, datasets=list(datasets), arrays=arrays,
                         static=_Static(stat_type, static_sources), points=points)

    def static_key(self, plan):
        st = plan.static
        return (st.stat_type, tuple((s.spectral_model._structure_key(), tuple(s.shared))
                                    for s in st.sources))

    def build(self, plan, inputs, theta, latent):
        st = plan.static
        energy = inputs["energy"]
        model = pt.zeros_like(energy)
        for s, source in enumerate(st.sources):
            pvals = {}
            for k, (par, shared) in enumerate(zip(source.spectral_model.parameters, source.shared,
                                                  strict=True)):
                pvals[par] = theta[shared] if shared is not None else theta[inputs[f"src{s}.idx{k}"]]
            model = model + source.spectral_model.dnde_tensor(energy, pvals)
        stat = point_stat(st.stat_type, inputs, model)
        loglike = -0.5 * stat
        return GroupGraph(
            loglike_points=loglike,
            loglike_datasets=segment_dot(loglike, inputs, "per_dataset."),
            predictive={"dnde": model},
            npred_signal=model,
            stat_bins=stat,
        )

    def draw_predictive(self, plan, means, rng):
        """``{"dnde": draws}``: posterior-predictive dnde of the measured points (`split_normal_draws`);
        none for likelihood profiles, which do not say how the data scatter."""
        if plan.static.stat_type not in ("chi2", "distrib"):
            log.info("flux points %s (stat_type %r): no posterior-predictive draws", plan.dataset_names,
                     plan.static.stat_type)
            return {}
        return {"dnde": split_normal_draws(plan, means["dnde"], rng)}


def split_normal_draws(plan, mean, rng):
    """Posterior-predictive dnde draws of the measured points, shape of ``mean`` (..., n):
    split normal (``errn`` above ``mean``, ``errp`` below: the likelihood of `point_stat`'s
    ``distrib`` as a density of the data; upper limits are NaN);
    ``chi2`` points use their symmetric error. Other stat types raise `ModelError`."""
    arrays = plan.arrays
    if plan.static.stat_type == "chi2":
        return mean + arrays["err"] * rng.standard_normal(np.shape(mean))
    if plan.static.stat_type != "distrib":
        raise ModelError("predictive draws need Gaussian errors: stat_type 'chi2' or 'distrib'")
    errn, errp = arrays["errn"], arrays["errp"]
    # the normalised split normal: above the mean with probability errn / (errn + errp)
    above = rng.uniform(size=np.shape(mean)) < errn / (errn + errp)
    size = np.abs(rng.standard_normal(np.shape(mean)))
    draws = np.where(above, mean + size * errn, mean - size * errp)
    return np.where(arrays["is_ul"] > 0, np.nan, draws)
