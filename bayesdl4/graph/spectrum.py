"""Spectrum datasets (`SpectrumDataset`, `SpectrumDatasetOnOff`) -> one batched graph per group.

All spectra of a group (same statistic, same model structure) share one graph whose size does
not depend on how many there are:

* the integrated flux is evaluated once per distinct (true-energy bin, parameter values) pair:
  spectra with the same binning and the same source share it (numpy deduplication at
  preparation), per-run parameters are gathered from ``theta`` with index arrays;
* the energy responses of all spectra are one block-sparse product (`segment_dot`) whose
  nonzeros (``exposure x edisp``) are graph inputs;
* the statistic is one Cash / WStat / ON-OFF Poisson expression over the fitted bins of all
  spectra, summed per dataset by another segment product.

Only what can change the likelihood enters: reco bins outside the mask are dropped, and
true-energy bins with no exposure or no probability of reaching a fitted bin are dropped.

Likelihoods (``dataset.stat_type``):

* ``"cash"`` (`SpectrumDataset`): Poisson counts with a known background, scaled by a
  `FoVBackgroundModel` when the dataset has one;
* ``"wstat"`` (`SpectrumDatasetOnOff`, default): the background profiled per bin (gammapy's
  WStat, goodness-of-fit terms included);
* ``"poisson_onoff"`` (`SpectrumDatasetOnOff`): the OFF mean ``b`` per bin is a parameter,
  ``-2 ln L = cash(n_on, s + alpha b) + cash(n_off, b)`` (flat prior on ``b >= 0``); it
  marginalises the background in the posterior instead of profiling it (docs/concepts.md).
"""

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from astropy import units as u

from ..datasets import SpectrumDataset, SpectrumDatasetOnOff
from ..errors import ModelError
from ..models import FoVBackgroundModel, SkyModel
from ..models.nuisance import EffectiveAreaScaleModel, EnergyScaleModel
from ..stats import cash, wstat, wstat_profile_background
from .flux import integrated_flux, quadrature_nodes
from .protocol import (
    DatasetGraphBuilder,
    GroupGraph,
    GroupPlan,
    LatentSpec,
    PointLayout,
    register_builder,
)
from .segment import segment_dot, segment_structure, segment_sums

__all__ = ["SpectrumBuilder", "EXPOSURE_UNIT"]

EXPOSURE_UNIT = u.Unit("cm2 s")


def _stat_type(dataset):
    """The dataset's likelihood (``dataset.stat_type``), checked against what its type allows."""
    allowed = ("wstat", "poisson_onoff") if isinstance(dataset, SpectrumDatasetOnOff) else ("cash",)
    if dataset.stat_type not in allowed:
        raise ModelError(f"dataset {dataset.name!r}: stat_type {dataset.stat_type!r} is not one of "
                         f"{list(allowed)} for a {type(dataset).__name__}")
    return dataset.stat_type


def _components(dataset):
    """(sources, background model, energy-scale model, area-scale model) of a spectrum dataset."""
    sources, background, escale, area = [], None, None, None
    for model in dataset.models or ():
        if isinstance(model, SkyModel):
            sources.append(model)
        elif isinstance(model, FoVBackgroundModel):
            background = model
        elif isinstance(model, EnergyScaleModel):
            if escale is not None:
                raise ModelError(f"dataset {dataset.name!r}: two energy-scale models act on it "
                                 f"({escale.name!r}, {model.name!r}); keep one")
            escale = model
        elif isinstance(model, EffectiveAreaScaleModel):
            if area is not None:
                raise ModelError(f"dataset {dataset.name!r}: two effective-area models act on it "
                                 f"({area.name!r}, {model.name!r}); keep one")
            area = model
        else:
            raise ModelError(f"dataset {dataset.name!r}: model {getattr(model, 'name', model)!r} of type "
                             f"{type(model).__name__} cannot act on a spectrum dataset")
    return sources, background, escale, area


@dataclass
class _Slot:
    """A parameter slot of a model template: shared (one theta index) or per dataset."""

    parameter: object  # the template's Parameter
    shared: int | None  # theta index when every dataset uses the same parameter


@dataclass
class _SpectrumStatic:
    stat_type: str
    sources: list  # per source slot: (template spectral model, [_Slot], has nodes)
    background: tuple | None  # (template norm model, [_Slot])
    escale: _Slot | None
    area: _Slot | None
    all_bins: bool


def _slots(template_params, per_dataset_params, table):
    """Slots of a template: shared where all datasets use one parameter, else per dataset
    (returns the slots and the (n_datasets, n_varying) theta indices of the varying ones)."""
    index = np.array([[table.index(p) for p in params] for params in per_dataset_params], dtype=np.int64)
    slots, varying = [], []
    for k, par in enumerate(template_params):
        column = index[:, k]
        if np.all(column == column[0]):
            slots.append(_Slot(par, int(column[0])))
        else:
            slots.append(_Slot(par, None))
            varying.append(column)
    return slots, (np.stack(varying, axis=1) if varying else np.zeros((len(index), 0), np.int64))


def _slot_pvals(slots, inputs, prefix, theta):
    """``{template Parameter: tensor}``: theta[i] for shared slots, gathered vectors otherwise."""
    pvals, k = {}, 0
    for slot in slots:
        if slot.shared is not None:
            pvals[slot.parameter] = theta[slot.shared]
        else:
            pvals[slot.parameter] = theta[inputs[f"{prefix}idx{k}"]]
            k += 1
    return pvals


def _dataset_constants(dataset, all_bins):
    if dataset.counts is None or dataset.exposure is None or dataset.edisp is None:
        raise ModelError(f"dataset {dataset.name!r}: counts, exposure and edisp are needed to predict counts")
    n_reco = dataset.energy_axis.nbin
    bins = np.arange(n_reco) if all_bins else np.flatnonzero(dataset.mask_bins)
    exposure = dataset.exposure.quantity.to_value(EXPOSURE_UNIT).reshape(-1)
    pdf = dataset.edisp.pdf_matrix
    rows = np.flatnonzero((pdf[:, bins].sum(axis=1) > 0) & (exposure > 0))
    edges = dataset.energy_axis_true.edges.to_value("TeV")
    reco_edges = dataset.energy_axis.edges.to_value("TeV")
    out = {
        "bins": bins, "rows": rows, "lo": edges[:-1][rows], "hi": edges[1:][rows],
        "exposure": exposure[rows], "pdf": pdf[np.ix_(rows, bins)],
        "counts": dataset.counts.data.reshape(-1)[bins].astype(float),
        "energy": np.sqrt(reco_edges[:-1] * reco_edges[1:])[bins],
    }
    if isinstance(dataset, SpectrumDatasetOnOff):
        out["counts_off"] = dataset.counts_off.data.reshape(-1)[bins].astype(float)
        out["alpha"] = dataset.alpha.data.reshape(-1)[bins].astype(float)
    else:
        bkg = dataset.background
        out["background"] = (np.zeros(bins.size) if bkg is None else bkg.data.reshape(-1)[bins].astype(float))
    return out


@register_builder
class SpectrumBuilder(DatasetGraphBuilder):
    """Graph builder of `SpectrumDataset` and `SpectrumDatasetOnOff` (see the module docstring)."""

    dataset_types = (SpectrumDataset, SpectrumDatasetOnOff)

    def check(self, dataset):
        stat = _stat_type(dataset)
        sources, background, _, _ = _components(dataset)
        for model in sources:
            if model.spatial_model is not None or getattr(model, "spatial_dict", None) is not None:
                raise ModelError(
                    f"dataset {dataset.name!r}: model {model.name!r} has a spatial model, which a spectrum "
                    "dataset does not use (the source is taken as contained in the ON region); remove it "
                    "(SkyModel(spectral_model, name=...)) or fit a map dataset")
            temporal = getattr(model, "temporal_model", None) or getattr(model, "temporal_dict", None)
            if temporal is not None:
                raise ModelError(f"dataset {dataset.name!r}: model {model.name!r} has a temporal model, which "
                                 "the likelihood does not use; remove it")
        if background is not None:
            if stat != "cash":
                raise ModelError(
                    f"dataset {dataset.name!r} ({stat}): its background comes from counts_off, so background "
                    f"model {background.name!r} would not enter the likelihood; remove it")
            if background.spatial_dict is not None:
                raise ModelError(f"dataset {dataset.name!r}: the spatial part of background model "
                                 f"{background.name!r} does not apply to a spectrum; remove it")

    def group_key(self, dataset, table):
        sources, background, escale, area = _components(dataset)
        return (
            _stat_type(dataset),
            tuple(m.spectral_model._structure_key() for m in sources),
            None if background is None else background.spectral_model._structure_key(),
            escale is not None,
            area is not None,
        )

    # ------------------------------------------------------------------ preparation (numpy)
    def prepare(self, datasets, table, name, all_bins=False, granularity=None):
        stat = _stat_type(datasets[0])
        consts = [_dataset_constants(d, all_bins) for d in datasets]
        comps = [_components(d) for d in datasets]
        n_rows = np.array([c["rows"].size for c in consts])
        n_bins = np.array([c["bins"].size for c in consts])
        row_offset = np.concatenate([[0], np.cumsum(n_rows)])
        bin_offset = np.concatenate([[0], np.cumsum(n_bins)])
        row_dataset = np.repeat(np.arange(len(datasets)), n_rows)
        bin_dataset = np.repeat(np.arange(len(datasets)), n_bins)
        lo = np.concatenate([c["lo"] for c in consts])
        hi = np.concatenate([c["hi"] for c in consts])
        arrays = {}

        escale = area = None
        escale_rows = None
        if comps[0][2] is not None:
            (escale,), index = _slots([comps[0][2].z], [[c[2].z] for c in comps], table)
            escale_rows = index[row_dataset, 0] if escale.shared is None else None
        if comps[0][3] is not None:
            (area,), index = _slots([comps[0][3].norm], [[c[3].norm] for c in comps], table)
            if area.shared is None:
                arrays["area.idx0"] = index[row_dataset, 0]

        sources = []
        for s, template in enumerate(m.spectral_model for m in comps[0][0]):
            params = [list(c[0][s].spectral_model.parameters) for c in comps]
            slots, varying = _slots(params[0], params, table)
            columns = [lo, hi] + [varying[row_dataset, k] for k in range(varying.shape[1])]
            if escale_rows is not None:
                columns.append(escale_rows)
            keys = np.column_stack(columns)
            unique, inverse = np.unique(keys, axis=0, return_inverse=True)
            prefix = f"src{s}."
            arrays[prefix + "lo"], arrays[prefix + "hi"] = unique[:, 0], unique[:, 1]
            for k in range(varying.shape[1]):
                arrays[f"{prefix}idx{k}"] = unique[:, 2 + k].astype(np.int64)
            if escale_rows is not None:
                arrays[prefix + "z"] = unique[:, -1].astype(np.int64)
            arrays[prefix + "inverse"] = inverse.reshape(-1).astype(np.int64)
            nodes = quadrature_nodes(template, unique[:, 0], unique[:, 1])
            if nodes is not None:
                arrays[prefix + "nodes_energy"], arrays[prefix + "nodes_weight"] = nodes
            sources.append((template, slots, nodes is not None))

        background = None
        if stat == "cash" and comps[0][1] is not None:
            template = comps[0][1].spectral_model
            params = [list(c[1].spectral_model.parameters) for c in comps]
            slots, varying = _slots(params[0], params, table)
            for k in range(varying.shape[1]):
                arrays[f"bkg.idx{k}"] = varying[bin_dataset, k]
            background = (template, slots)

        # block-sparse response: (fitted bin, kept row) -> exposure x edisp
        out_index, in_index, weights = [], [], []
        for j, c in enumerate(consts):
            r, b = np.nonzero(c["pdf"])
            out_index.append(bin_offset[j] + b)
            in_index.append(row_offset[j] + r)
            weights.append(c["exposure"][r] * c["pdf"][r, b])
        response = segment_structure(np.concatenate(out_index), np.concatenate(in_index),
                                     np.concatenate(weights), int(bin_offset[-1]), int(row_offset[-1]))
        arrays.update(response.arrays("response."))
        arrays.update(segment_sums(bin_dataset, len(datasets)).arrays("per_dataset."))
        arrays["counts"] = np.concatenate([c["counts"] for c in consts])
        arrays["energy"] = np.concatenate([c["energy"] for c in consts])
        observed = {"counts": arrays["counts"]}
        latent = {}
        if stat == "cash":
            arrays["background"] = np.concatenate([c["background"] for c in consts])
        else:
            arrays["counts_off"] = np.concatenate([c["counts_off"] for c in consts])
            arrays["alpha"] = np.concatenate([c["alpha"] for c in consts])
            observed["counts_off"] = arrays["counts_off"]
        if stat == "poisson_onoff":
            n_on, n_off, alpha = arrays["counts"], arrays["counts_off"], arrays["alpha"]
            start = np.maximum((n_on + n_off) / (1 + alpha), 0.5)
            latent["background"] = LatentSpec(initval=start, scale=np.maximum(start, 1.0), dims="bin")
        points = PointLayout(dataset=bin_dataset, coord=np.concatenate([c["bins"] for c in consts]),
                             dim_suffix="bin", observed=observed)
        static = _SpectrumStatic(stat, sources, background, escale, area, all_bins)
        return GroupPlan(builder=self, name=name, datasets=list(datasets), arrays=arrays, static=static,
                         points=points, latent=latent)

    def static_key(self, plan):
        st = plan.static

        def slots(slots):
            return tuple(slot.shared for slot in slots)

        return (
            st.stat_type, st.all_bins,
            tuple((template._structure_key(), slots(s), has_nodes) for template, s, has_nodes in st.sources),
            None if st.background is None else (st.background[0]._structure_key(), slots(st.background[1])),
            None if st.escale is None else ("escale", st.escale.shared),
            None if st.area is None else ("area", st.area.shared),
        )

    # ------------------------------------------------------------------ graph
    def build(self, plan, inputs, theta, latent):
        st = plan.static
        flux = None
        scale = None
        if st.escale is not None:
            scale = 1.0 + theta[st.escale.shared] if st.escale.shared is not None else None
        for s, (template, slots, has_nodes) in enumerate(st.sources):
            prefix = f"src{s}."
            pvals = _slot_pvals(slots, inputs, prefix, theta)
            row_scale = scale
            if st.escale is not None and st.escale.shared is None:
                row_scale = 1.0 + theta[inputs[prefix + "z"]]
            nodes = (inputs[prefix + "nodes_energy"], inputs[prefix + "nodes_weight"]) if has_nodes else None
            unique = integrated_flux(template, inputs[prefix + "lo"], inputs[prefix + "hi"], pvals,
                                     energy_scale=row_scale, nodes=nodes)
            term = unique[inputs[prefix + "inverse"]]
            flux = term if flux is None else flux + term
        if flux is None:
            npred_signal = pt.zeros_like(inputs["counts"])
        else:
            if st.area is not None:
                flux = flux * (theta[st.area.shared] if st.area.shared is not None else theta[inputs["area.idx0"]])
            npred_signal = segment_dot(flux, inputs, "response.")
        counts = inputs["counts"]
        predictive = {}
        if st.stat_type == "cash":
            background = inputs["background"]
            if st.background is not None:
                template, slots = st.background
                pvals = _slot_pvals(slots, inputs, "bkg.", theta)
                background = background * template.dnde_tensor(inputs["energy"], pvals)
            mu = npred_signal + background
            stat = cash(counts, mu)
            predictive["counts"] = mu
            npred_background = background
        elif st.stat_type == "wstat":
            counts_off, alpha = inputs["counts_off"], inputs["alpha"]
            stat = wstat(counts, counts_off, alpha, npred_signal)
            mu_off = wstat_profile_background(counts, counts_off, alpha, npred_signal)
            npred_background = alpha * mu_off
            predictive["counts"] = npred_signal + npred_background
            predictive["counts_off"] = mu_off
        else:  # poisson_onoff: the OFF mean per bin is a parameter
            counts_off, alpha = inputs["counts_off"], inputs["alpha"]
            mu_off = latent.get("background")
            if mu_off is None:  # numpy conveniences: the background profiled, as WStat does
                mu_off = wstat_profile_background(counts, counts_off, alpha, npred_signal)
            npred_background = alpha * mu_off
            stat = cash(counts, npred_signal + npred_background) + cash(counts_off, mu_off)
            predictive["counts"] = npred_signal + npred_background
            predictive["counts_off"] = mu_off
        loglike = -0.5 * stat
        return GroupGraph(
            loglike_points=loglike,
            loglike_datasets=segment_dot(loglike, inputs, "per_dataset."),
            predictive=predictive,
            npred_signal=npred_signal,
            npred_background=npred_background,
            stat_bins=stat,
        )
