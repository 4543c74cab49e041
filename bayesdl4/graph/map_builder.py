"""Map datasets (`MapDataset`, `MapDatasetOnOff`) in the dataset-graph protocol.

Each map dataset is a group of its own (its sources are cut out of its own geometry); the npred
graph is `bayesdl4.graph.map` (point sources), `bayesdl4.graph.map_extended` (extended ones) and
`bayesdl4.graph.map_onoff` (WStat). The joint density uses the compact form (per-plane
sufficient statistics for background-only bins); the pointwise terms are evaluated bin by bin
and summed to the granularity asked for:

* ``"bin"``: one term per fitted bin (large: 273,600 for the five HAWC maps);
* ``"pixel"``: one per sky pixel, summed over the fitted energy planes;
* ``"plane"``: one per fitted energy plane;
* ``"auto"`` (default): one per pixel inside the sources' box (where the models differ from
  the background; pixels grouped in blocks of b x b when the box holds more than
  `AUTO_MAX_BOX_POINTS` pixels), one per energy plane for all other fitted bins. For the five
  HAWC maps and 4000 draws the ``log_likelihood`` group is ~0.1 GB instead of 35 GB per bin.

Coordinates of the terms: flat cube index (``bin``), ``y * nx + x`` (``pixel``, and the box pixels
or blocks (their lower-left pixel) of ``auto``), the plane index (``plane``), ``ny * nx + plane``
for the plane terms of ``auto``.
"""

import abc
from dataclasses import dataclass, fields, is_dataclass, replace

import numpy as np

from ..compiled import array_digest
from ..datasets.map import MapDataset, MapDatasetOnOff
from ..errors import ModelError
from ..models import FoVBackgroundModel, SkyModel, TemplateSpatialModel
from ..models.nuisance import EffectiveAreaScaleModel, EnergyScaleModel
from ..stats import cash, wstat, wstat_profile_background
from .map import (
    STAT_ARRAYS,
    STAT_FIELDS,
    PointSourcePlan,
    bind_point_inputs,
    map_npred_tensors,
    map_stat_arrays,
    map_stat_tensor,
    point_input_arrays,
    prepare_map,
)
from .map_extended import EXTENDED_MOVABLE, ExtendedSourcePlan
from .map_onoff import ONOFF_ARRAYS, map_onoff_arrays, map_onoff_tensors, prepare_map_onoff
from .protocol import DatasetGraphBuilder, GroupGraph, GroupPlan, PointLayout, register_builder
from .segment import segment_dot, segment_sums

__all__ = ["MapBuilder", "MapOnOffBuilder", "GRANULARITIES"]

GRANULARITIES = ("auto", "bin", "pixel", "plane")
#: "auto": at most about this many pointwise terms per dataset inside the sources' box (pixels are
#: grouped into blocks of b x b where the box is larger)
AUTO_MAX_BOX_POINTS = 1024


@dataclass
class _MapStatic:
    data: object  # MapGraphData or MapOnOffGraphData
    parameters: list  # (Parameter, theta index) of the dataset's models
    escale: int | None
    area: int | None
    all_bins: bool


def _nuisances(dataset):
    escale = area = None
    for model in dataset.models or ():
        if isinstance(model, EnergyScaleModel):
            if escale is not None:
                raise ModelError(f"dataset {dataset.name!r}: two energy-scale models act on it; keep one")
            escale = model
        elif isinstance(model, EffectiveAreaScaleModel):
            if area is not None:
                raise ModelError(f"dataset {dataset.name!r}: two effective-area models act on it; keep one")
            area = model
    return escale, area


def _check_models(dataset):
    for model in dataset.models or ():
        if isinstance(model, SkyModel):
            temporal = getattr(model, "temporal_model", None) or getattr(model, "temporal_dict", None)
            if temporal is not None:
                raise ModelError(f"dataset {dataset.name!r}: model {model.name!r} has a temporal model, which "
                                 "the likelihood does not use; remove it")
            if model.spatial_model is None and getattr(model, "spatial_dict", None) is not None:
                raise ModelError(
                    f"dataset {dataset.name!r}: model {model.name!r} has a spatial model of type "
                    f"{model.spatial_dict.get('type')!r} that bayesdl4 cannot evaluate; replace it")
        elif isinstance(model, FoVBackgroundModel):
            if model.spatial_dict is not None:
                raise ModelError(f"dataset {dataset.name!r}: the spatial part of background model "
                                 f"{model.name!r} is not modelled (only its spectral norm); remove it")
        elif not isinstance(model, EnergyScaleModel | EffectiveAreaScaleModel):
            raise ModelError(f"dataset {dataset.name!r}: model {getattr(model, 'name', model)!r} of type "
                             f"{type(model).__name__} cannot act on a map dataset")
    _nuisances(dataset)


def _points(mask, box, granularity):
    """Point id of each fitted bin (flat cube order), the points' coordinates and count."""
    n_e, ny, nx = mask.shape
    planes, ys, xs = np.nonzero(mask)
    if granularity == "bin":
        coord = np.ravel_multi_index((planes, ys, xs), mask.shape)
        return np.arange(coord.size), coord
    if granularity == "plane":
        coord, point = np.unique(planes, return_inverse=True)
        return point, coord
    pixel = ys * nx + xs
    if granularity == "pixel":
        coord, point = np.unique(pixel, return_inverse=True)
        return point, coord
    in_box = np.zeros(planes.size, dtype=bool)
    block_label = pixel
    if box is not None:
        _, bys, bxs = box
        in_box = (ys >= bys.start) & (ys < bys.stop) & (xs >= bxs.start) & (xs < bxs.stop)
        n_box = (bys.stop - bys.start) * (bxs.stop - bxs.start)
        block = max(1, int(np.ceil(np.sqrt(n_box / AUTO_MAX_BOX_POINTS))))
        # blocks of block x block pixels, labelled by their lower-left pixel
        block_label = (bys.start + (ys - bys.start) // block * block) * nx + bxs.start + (xs - bxs.start) // block * block
    label = np.where(in_box, block_label, ny * nx + planes)
    coord, point = np.unique(label, return_inverse=True)
    return point, coord


class _Unkeyed(Exception):
    """A part of a map plan without a key valid across processes."""


def _plan_key(obj, skip=()):
    """Hashable description of a map plan's constants (arrays by digest) for `static_key`; the
    dataclass fields named in ``skip`` (data the graph takes as inputs) are left out."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return array_digest(obj)
    if isinstance(obj, slice):
        return ("slice", obj.start, obj.stop, obj.step)
    if isinstance(obj, list | tuple):
        return tuple(_plan_key(v) for v in obj)
    if isinstance(obj, SkyModel):
        spatial = obj.spatial_model
        if isinstance(spatial, TemplateSpatialModel):
            raise _Unkeyed  # its table is known by identity only
        return ("SkyModel", obj.spectral_model._structure_key(),
                None if spatial is None else (spatial._structure_key(), spatial.frame,
                                              getattr(spatial, "placement", None)))
    if isinstance(obj, FoVBackgroundModel):
        return ("FoVBackgroundModel", obj.spectral_model._structure_key())
    if hasattr(obj, "wcs") and hasattr(obj, "npix"):  # a sky geometry
        return ("geom", obj.wcs.to_header_string(), _plan_key(np.asarray(obj.npix)),
                tuple((ax.name, array_digest(np.asarray(ax.edges.value))) for ax in obj.axes))
    if is_dataclass(obj):
        return (type(obj).__name__,) + tuple((f.name, _plan_key(getattr(obj, f.name))) for f in fields(obj)
                                             if f.name not in ("energy_scale", "area_scale", *skip))
    raise _Unkeyed


class _MapBuilderBase(DatasetGraphBuilder):
    def _density_arrays(self, data):
        """Arrays of the density graph that enter as inputs, beside the pointwise ones."""
        return {}

    def check(self, dataset):
        _check_models(dataset)

    def _data_key(self, data):
        """`static_key` part of the plan's data (`_plan_key`; raises `_Unkeyed`)."""
        return _plan_key(data)

    def static_key(self, plan):
        st = plan.static
        try:
            data = self._data_key(st.data)
        except _Unkeyed:
            return None
        return (data, tuple(i for _, i in st.parameters), st.escale, st.area, st.all_bins)

    def group_key(self, dataset, table):
        return (dataset.name,)  # one group per map: its sources are cut out of its own geometry

    @abc.abstractmethod
    def _prepare_data(self, dataset, all_bins):
        """Numpy constants of the dataset's graph (`prepare_map` / `prepare_map_onoff`)."""

    def prepare(self, datasets, table, name, all_bins=False, granularity=None):
        (dataset,) = datasets
        granularity = granularity or "auto"
        if granularity not in GRANULARITIES:
            raise ModelError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        data = self._prepare_data(dataset, all_bins)
        map_data = getattr(data, "map_data", data)
        escale, area = _nuisances(dataset)
        parameters = [(p, table.index(p)) for m in dataset.models or () for p in m.parameters]
        static = _MapStatic(data, parameters, None if escale is None else table.index(escale.z),
                            None if area is None else table.index(area.norm), all_bins)
        mask = map_data.mask
        point, coord = _points(mask, map_data.box, granularity)
        # fitted bins in the order of their points: each point's bins are contiguous, so the
        # banded sums over them hold one weight per bin (in cube order a pixel block's bins
        # spread over the whole mask: ~40 M band weights for HAWC's nHit-5)
        order = np.argsort(point, kind="stable")
        point = point[order]
        mask_index = np.flatnonzero(mask)[order].astype(np.int64)
        counts = map_data.counts.reshape(-1)[mask_index]
        # full cubes enter as data: as constants they would make the compiled functions that need
        # them (pointwise terms, npred maps) slow to compile and too large for Numba's cache
        arrays = {"mask_index": mask_index, "counts": counts, "background_cube": map_data.background}
        arrays.update(self._density_arrays(data))
        if all_bins:
            arrays["counts_cube"] = map_data.counts
            if hasattr(data, "counts_off"):
                arrays["counts_off_cube"], arrays["alpha_cube"] = data.counts_off, data.alpha
        arrays.update(segment_sums(point, coord.size).arrays("points."))
        observed = {"counts": np.bincount(point, weights=counts, minlength=coord.size)}
        if hasattr(data, "counts_off"):
            arrays["counts_off"] = data.counts_off.reshape(-1)[mask_index]
            arrays["alpha"] = data.alpha.reshape(-1)[mask_index]
            observed["counts_off"] = np.bincount(point, weights=arrays["counts_off"], minlength=coord.size)
        points = PointLayout(dataset=np.zeros(coord.size, dtype=np.int64), coord=coord,
                             dim_suffix=granularity, observed=observed)
        return GroupPlan(builder=self, name=name, datasets=[dataset], arrays=arrays, static=static,
                         points=points, static_shape=frozenset(point_input_arrays(map_data)) & arrays.keys())

    def _pvals(self, static, theta):
        map_data = getattr(static.data, "map_data", static.data)
        map_data.energy_scale = None if static.escale is None else 1.0 + theta[static.escale]
        map_data.area_scale = None if static.area is None else theta[static.area]
        return {p: theta[i] for p, i in static.parameters}


#: fields of a point source's plan left out of `MapBuilder.static_key`: its position (the cutout's
#: place in the map) and what depends on it, which enter the graph as inputs
_POINT_MOVABLE = ("ys", "xs", "origin", "base", "start", "exposure", "deposit_exposure", "kernel", "edisp",
                  "kernel_table", "pixel_lonlat")


def _source_key(plan):
    """`static_key` part of one source's plan: its position-dependent arrays are inputs."""
    if isinstance(plan, PointSourcePlan):
        return _plan_key(plan, skip=_POINT_MOVABLE)
    if isinstance(plan, ExtendedSourcePlan):
        moved = EXTENDED_MOVABLE if plan.model.spatial_model.tag[0] != "TemplateSpatialModel" else \
            tuple(n for n in EXTENDED_MOVABLE if n not in ("lon", "lat"))
        cutout = (plan.ys.stop - plan.ys.start, plan.xs.stop - plan.xs.start)
        return (_plan_key(plan, skip=moved), cutout, plan.exposure_factors is None, plan.kernel_coeff is None)
    return _plan_key(plan)


def _map_data_key(data):
    """`static_key` part of a `MapGraphData` whose counts, background and sources' positions are
    inputs (their arrays' shapes are in the model's structure key, `GroupPlan.static_shape`): the
    box's shape and the sources' places in it, not the box's place in the map."""
    box = None
    if data.box is not None:
        planes, ys, xs = data.box
        box = (array_digest(planes), ys.stop - ys.start, xs.stop - xs.start,
               tuple((p.ys.start - ys.start, p.xs.start - xs.start) for p in data.sources))
    sources = tuple(_source_key(p) for p in data.sources)
    return (_plan_key(data, skip=(*STAT_FIELDS, "box", "sources")), box, bool(data.explicit.any()), sources)


@register_builder
class MapBuilder(_MapBuilderBase):
    """Graph builder of `MapDataset` (Cash, background scaled by a `FoVBackgroundModel`).

    The counts, the background and everything that depends on a point source's position (its
    cutout's place, exposure, PSF kernel and edisp there) enter the graph as inputs: a simulated
    repetition, a new background or a point source at another position (whose cutout is clipped
    by the map's edge the same way) reuse the compiled functions.
    """

    dataset_types = (MapDataset,)

    def _prepare_data(self, dataset, all_bins):
        return prepare_map(dataset, all_planes=all_bins)

    def _density_arrays(self, data):
        arrays = {f"stat.{name}": array for name, array in map_stat_arrays(data).items()}
        return arrays | point_input_arrays(data)

    def _data_key(self, data):
        return _map_data_key(data)

    def build(self, plan, inputs, theta, latent):
        static = plan.static
        pvals = self._pvals(static, theta)
        data = bind_point_inputs(static.data, inputs)
        stat_arrays = {name: inputs[f"stat.{name}"] for name in STAT_ARRAYS}
        terms, _ = map_stat_tensor(data, pvals, stat_arrays)
        total = -0.5 * terms.sum()
        signal, background = map_npred_tensors(replace(data, background=inputs["background_cube"]), pvals)
        mu = (signal + background).reshape((-1,))
        mu_fit = mu[inputs["mask_index"]]
        loglike_bins = -0.5 * cash(inputs["counts"], mu_fit)
        graph = GroupGraph(
            loglike_points=segment_dot(loglike_bins, inputs, "points."),
            loglike_datasets=total.reshape((1,)),
            predictive={"counts": segment_dot(mu_fit, inputs, "points.")},
        )
        if static.all_bins:
            graph.npred_signal, graph.npred_background = signal, background
            graph.stat_bins = cash(inputs["counts_cube"], signal + background)
        return graph


@register_builder
class MapOnOffBuilder(_MapBuilderBase):
    """Graph builder of `MapDatasetOnOff` (WStat, background profiled per bin). The ON and OFF
    counts, alpha and the point sources' position-dependent arrays enter the graph as inputs: new
    counts or a point source at another position reuse the compiled functions."""

    dataset_types = (MapDatasetOnOff,)

    def _prepare_data(self, dataset, all_bins):
        return prepare_map_onoff(dataset, all_planes=all_bins)

    def _density_arrays(self, data):
        arrays = {f"onoff.{name}": array for name, array in map_onoff_arrays(data).items()}
        return arrays | point_input_arrays(data.map_data)

    def _data_key(self, data):
        """The ON/OFF counts, alpha, the bins the sources reach and the point sources' positions
        are inputs (as for `MapBuilder`)."""
        return (_map_data_key(data.map_data),
                _plan_key(data, skip=("map_data", "counts_off", "alpha", "constant", "signal_bins")))

    def build(self, plan, inputs, theta, latent):
        static = plan.static
        pvals = self._pvals(static, theta)
        data = replace(static.data, map_data=bind_point_inputs(static.data.map_data, inputs))
        arrays = {name: inputs[f"onoff.{name}"] for name in ONOFF_ARRAYS}
        terms, _, _ = map_onoff_tensors(data, pvals, all_bins=False, arrays=arrays)
        signal, _ = map_npred_tensors(replace(data.map_data, background=inputs["background_cube"]), pvals)
        signal_fit = signal.reshape((-1,))[inputs["mask_index"]]
        counts, counts_off, alpha = inputs["counts"], inputs["counts_off"], inputs["alpha"]
        loglike_bins = -0.5 * wstat(counts, counts_off, alpha, signal_fit)
        mu_off = wstat_profile_background(counts, counts_off, alpha, signal_fit)
        graph = GroupGraph(
            loglike_points=segment_dot(loglike_bins, inputs, "points."),
            loglike_datasets=(-0.5 * terms.sum()).reshape((1,)),
            predictive={"counts": segment_dot(signal_fit + alpha * mu_off, inputs, "points."),
                        "counts_off": segment_dot(mu_off, inputs, "points.")},
        )
        if static.all_bins:
            counts, counts_off, alpha = inputs["counts_cube"], inputs["counts_off_cube"], inputs["alpha_cube"]
            graph.npred_signal = signal
            graph.npred_background = alpha * wstat_profile_background(counts, counts_off, alpha, signal)
            graph.stat_bins = wstat(counts, counts_off, alpha, signal)
        return graph
