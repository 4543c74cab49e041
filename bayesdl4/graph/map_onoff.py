"""MapDatasetOnOff -> WStat graph: source counts from `bayesdl4.graph.map`, background profiled per bin.

gammapy 2.1's ``MapDatasetOnOff`` predicts only the signal; the background in each bin is the
WStat profile ``alpha * mu_bkg(n_on, n_off, alpha, mu_sig)`` with ``alpha = acceptance /
acceptance_off`` (0 where undefined), and the statistic per bin is `bayesdl4.stats.wstat`
(goodness-of-fit terms included, NaN -> 0), summed over ``mask_safe & mask_fit``.

The signal comes from the plain map graph (`prepare_map` / `map_npred_tensors`, the same sources,
cutouts and IRF order as a `MapDataset`). Masked bins that no source cutout reaches have
``mu_sig = 0``: their WStat terms do not depend on any parameter and enter as one constant.
"""

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from ..errors import ModelError
from ..models import FoVBackgroundModel
from ..stats import wstat, wstat_profile_background
from .map import map_npred_tensors, prepare_map

__all__ = ["MapOnOffGraphData", "prepare_map_onoff", "map_onoff_tensors"]


@dataclass
class MapOnOffGraphData:
    """Numpy constants of one ON/OFF map dataset.

    ``map_data`` is the plain map graph's `MapGraphData` (sources, cutouts, counts, mask);
    ``signal_bins`` are the masked bins a source may reach, as ``(plane, y, x)`` index arrays.
    """

    map_data: object
    counts_off: np.ndarray  # (n_e, ny, nx)
    alpha: np.ndarray  # (n_e, ny, nx), 0 where acceptance_off is 0
    signal_bins: tuple  # (planes, ys, xs) index arrays of masked bins inside the source box
    constant: float  # WStat summed over masked bins with mu_sig = 0

    stat_type = "wstat"

    @property
    def name(self):
        return self.map_data.name

    @property
    def sources(self):
        return self.map_data.sources

    @sources.setter
    def sources(self, value):
        self.map_data.sources = value


def prepare_map_onoff(dataset, all_planes=False):
    """Constants of a `MapDatasetOnOff`: the plain map plan plus OFF counts and alpha.

    Raises
    ------
    ModelError
        A `FoVBackgroundModel` on the dataset (WStat profiles the background, so its parameters
        would not enter the likelihood; gammapy ignores it silently).
    """
    for model in dataset.models or ():
        if isinstance(model, FoVBackgroundModel):
            raise ModelError(
                f"dataset {dataset.name!r} is a MapDatasetOnOff: its background is profiled by WStat "
                f"from counts_off, so background model {model.name!r} would not enter the likelihood; "
                "remove it from the models"
            )
    map_data = prepare_map(dataset, all_planes=all_planes)
    shape = map_data.shape
    counts_off = dataset.counts_off.data.astype(float)
    alpha = np.asarray(dataset.alpha.data, dtype=float)
    mask = map_data.mask
    reach = np.zeros(shape, dtype=bool)
    box = getattr(map_data, "box", None)
    if box is not None:
        planes, ys, xs = box
        reach[np.ix_(planes, np.arange(shape[1])[ys], np.arange(shape[2])[xs])] = True
    elif map_data.sources:  # no box: every bin may hold signal
        reach[...] = True
    signal_bins = np.nonzero(mask & reach)
    rest = mask & ~reach
    constant = float(
        np.sum(
            wstat(map_data.counts[rest], counts_off[rest], alpha[rest], np.zeros(int(rest.sum())))
        )
    )
    return MapOnOffGraphData(
        map_data=map_data,
        counts_off=counts_off,
        alpha=alpha,
        signal_bins=signal_bins,
        constant=constant,
    )


#: names of `map_onoff_arrays`
ONOFF_ARRAYS = ("counts", "counts_off", "alpha", "constant", "signal_index")


def map_onoff_arrays(data):
    """The arrays of `map_onoff_tensors` (not ``all_bins``) that come from the counts and the
    sources' positions (graph inputs, named as `ONOFF_ARRAYS`): ON, OFF counts and alpha on the
    bins a source reaches, the WStat constant of all other fitted bins (shape (1,)), and the flat
    cube index of the bins a source reaches (int64)."""
    bins = data.signal_bins
    return {"counts": data.map_data.counts[bins], "counts_off": data.counts_off[bins], "alpha": data.alpha[bins],
            "constant": np.array([data.constant]),
            "signal_index": np.ravel_multi_index(bins, data.map_data.shape).astype(np.int64)}


def map_onoff_tensors(data, pvals, all_bins=False, arrays=None):
    """WStat graph of an ON/OFF map dataset.

    Returns
    -------
    stat : tensor
        ``all_bins``: per-bin WStat on the whole cube, flattened (masked-out bins included).
        Otherwise the terms of the masked bins a source reaches, then the constant of all others
        (their sum is gammapy's ``stat_sum``).
    signal : tensor
        Predicted source counts: the cube (``all_bins``) or on the bins of ``stat``'s first terms.
    background : tensor or None
        ``all_bins``: profiled background in the ON region, ``alpha * mu_bkg`` per bin (gammapy's
        ``npred_background``); else None.

    ``arrays``: tensors of `map_onoff_arrays` (graph inputs, so that new counts reuse the compiled
    function); None: constants of the graph.
    """
    map_data = data.map_data
    signal_cube, _ = map_npred_tensors(map_data, pvals)
    if all_bins:
        counts, counts_off, alpha = (
            pt.as_tensor(a) for a in (map_data.counts, data.counts_off, data.alpha)
        )
        stat = wstat(counts, counts_off, alpha, signal_cube).reshape((-1,))
        background = alpha * wstat_profile_background(counts, counts_off, alpha, signal_cube)
        return stat, signal_cube, background
    arrays = arrays or {name: pt.as_tensor(array) for name, array in map_onoff_arrays(data).items()}
    signal = signal_cube.reshape((-1,))[arrays["signal_index"]]
    terms = wstat(arrays["counts"], arrays["counts_off"], arrays["alpha"], signal)
    stat = pt.concatenate([terms, arrays["constant"]])
    return stat, signal, None
