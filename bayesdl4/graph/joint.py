"""Datasets + parameter tensors -> per-dataset graphs (npred, per-bin statistic)."""

import hashlib
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from ..errors import ModelError
from ..stats import cash, wstat
from .map import MapGraphData, map_npred_tensors, map_stat_tensor, prepare_map
from .map_onoff import MapOnOffGraphData, map_onoff_tensors, prepare_map_onoff
from .spectrum import (
    FluxCache,
    SpectrumGraphData,
    npred_background_tensor,
    npred_signal_tensor,
    prepare_spectrum,
    stat_tensor,
)

__all__ = ["DatasetGraph", "build_dataset_graphs", "parameter_inputs"]


@dataclass
class DatasetGraph:
    """Graph pieces of one dataset: its constants and tensors on the fitted bins."""

    data: object
    npred_signal: object
    stat_terms: object  # per-bin -2 ln L terms, or a callable building them on first use

    @property
    def stat(self):
        """Per-bin ``-2 ln L`` terms (spectra build them only when asked: `total_stat` pools them)."""
        if callable(self.stat_terms):
            self.stat_terms = self.stat_terms()
        return self.stat_terms

    @property
    def name(self):
        return self.data.name

    @property
    def loglike(self):
        """Per-bin log-likelihood, gammapy's convention ``-0.5 * stat``."""
        return -0.5 * self.stat

    npred_background_map: object = None

    def npred_background(self):
        if self.npred_background_map is not None:
            return self.npred_background_map, None
        return npred_background_tensor(self.data, self.npred_signal)


def _prepare(dataset, all_bins):
    from ..datasets import SpectrumDataset
    from ..datasets.map import MapDataset, MapDatasetOnOff

    if isinstance(dataset, SpectrumDataset):
        return prepare_spectrum(dataset, all_bins=all_bins)
    if type(dataset) is MapDatasetOnOff:
        return prepare_map_onoff(dataset, all_planes=all_bins)
    if isinstance(dataset, MapDataset) and type(dataset).__name__ == "MapDataset":
        return prepare_map(dataset, all_planes=all_bins)
    raise ModelError(f"dataset {dataset.name!r}: no graph builder for {type(dataset).__name__}")


def build_dataset_graphs(datasets, pvals, all_bins=False, model_names=None):
    """One `DatasetGraph` per dataset, sharing flux integrals where binning and models agree.

    Parameters
    ----------
    datasets : iterable of datasets
    pvals : dict
        ``Parameter -> tensor`` (parameter's own unit); parameters not in it are constants.
    all_bins : bool
        Keep every reco bin (for npred maps and plots) instead of the masked ones.
    model_names : list of str, optional
        Restrict the signal to these models.
    """
    prepared = [_prepare(d, all_bins) for d in datasets]
    cache = FluxCache(pvals)
    for data in prepared:
        if not isinstance(data, MapGraphData | MapOnOffGraphData):
            cache.register(data, model_names)
    graphs = []
    for data in prepared:
        if isinstance(data, MapGraphData | MapOnOffGraphData):
            graphs.append(_map_graph(data, pvals, all_bins, model_names))
            continue
        signal = npred_signal_tensor(data, cache, model_names)
        graphs.append(DatasetGraph(data=data, npred_signal=signal,
                                   stat_terms=lambda data=data, signal=signal: stat_tensor(data, signal)))
    return graphs


def _map_graph(data, pvals, all_bins, model_names):
    if model_names is not None:
        data.sources = [p for p in data.sources if p.model.name in model_names]
    if isinstance(data, MapOnOffGraphData):  # WStat: background profiled per bin
        stat, signal, background = map_onoff_tensors(data, pvals, all_bins=all_bins)
        return DatasetGraph(data=data, npred_signal=signal, stat_terms=stat, npred_background_map=background)
    if all_bins:
        signal, background = map_npred_tensors(data, pvals)
        stat = cash(pt.as_tensor(data.counts), signal + background).reshape((-1,))
        return DatasetGraph(data=data, npred_signal=signal, stat_terms=stat, npred_background_map=background)
    stat, signal = map_stat_tensor(data, pvals)
    return DatasetGraph(data=data, npred_signal=signal, stat_terms=stat)


def parameter_inputs(parameters):
    """A float64 scalar input per parameter, as a ``pvals`` dict plus the ordered input list."""
    inputs = [pt.dscalar(f"p{i}_{p.name}") for i, p in enumerate(parameters)]
    return dict(zip(parameters, inputs, strict=True)), inputs


def total_stat(graphs):
    """Sum of all datasets' statistics, spectra pooled into one Cash and one WStat expression.

    One expression over the concatenated bins of all spectra is the same sum as one per dataset,
    but a far smaller graph: compiling the ten joint-crab spectra drops from ~13 s to ~3 s.
    """
    terms = []
    pooled = {"wstat": [], "cash": []}
    for graph in graphs:
        data = graph.data
        if isinstance(data, SpectrumGraphData):
            if data.bins.size:
                pooled[data.stat_type].append(graph)
        else:
            terms.append(graph.stat.sum())
    if pooled["wstat"]:
        group = pooled["wstat"]
        terms.append(wstat(
            pt.as_tensor(np.concatenate([g.data.counts for g in group])),
            pt.as_tensor(np.concatenate([g.data.counts_off for g in group])),
            pt.as_tensor(np.concatenate([g.data.alpha for g in group])),
            pt.concatenate([g.npred_signal for g in group]),
        ).sum())
    if pooled["cash"]:
        group = pooled["cash"]
        background = [g.data.background if g.data.background is not None else np.zeros(g.data.bins.size)
                      for g in group]
        terms.append(cash(
            pt.as_tensor(np.concatenate([g.data.counts for g in group])),
            pt.concatenate([g.npred_signal for g in group]) + np.concatenate(background),
        ).sum())
    if not terms:
        return pt.constant(0.0)
    return pt.add(*terms) if len(terms) > 1 else terms[0]


def data_fingerprint(dataset):
    """Cheap key of the arrays and geometries that enter a dataset's graph (for caches of compiled
    functions): two datasets with equal arrays on other pixels or energy bins differ."""
    parts = [dataset.name, type(dataset).__name__]
    for attr in ("counts", "counts_off", "background", "exposure", "mask_safe", "mask_fit", "acceptance",
                 "acceptance_off"):
        m = getattr(dataset, attr, None)
        parts.append(None if m is None else (_digest(m.data), _geom_key(m)))
    for irf in (getattr(dataset, "edisp", None), getattr(dataset, "psf", None)):
        array = None
        for attr in ("pdf_matrix", "edisp_map", "psf_map"):
            array = getattr(irf, attr, None) if irf is not None else None
            if array is not None:
                break
        key = _geom_key(array)
        array = getattr(array, "data", array)
        parts.append(None if array is None else (_digest(array), key))
    parts.append(tuple(m.name for m in dataset.models or ()))
    return tuple(parts)


def _digest(array):
    """Digest of an array's dtype, shape and bytes, the same in every process (``hash()`` is salted)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(array.view(np.uint8).reshape(-1) if array.size else b"", digest_size=16)
    return array.dtype.str, array.shape, digest.hexdigest()


def _geom_key(m):
    """Sky geometry (WCS header or region) and axes (names, units, edges) of a map, or None."""
    geom = getattr(m, "geom", None)
    if geom is None:
        return None
    axes = tuple((ax.name, ax.interp, str(ax.unit), np.asarray(ax.edges.value).tobytes())
                 for ax in getattr(geom, "axes", ()))
    wcs = getattr(geom, "wcs", None)
    spatial = wcs.to_header_string() if wcs is not None else repr(getattr(geom, "region", None))
    return type(geom).__name__, spatial, str(getattr(geom, "npix", None)), axes
