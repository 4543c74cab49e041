"""Numpy conveniences (``dataset.npred()``, ``stat_array()``) through the same graphs, compiled once."""

import functools
import warnings

import numpy as np
import pytensor

from .joint import build_dataset_graphs, data_fingerprint, parameter_inputs

__all__ = ["evaluate_npred", "evaluate_stat_array"]

# Measured in benchmarks/bench_compile.py: for a one-dataset WStat graph Numba's first call takes
# ~1 s with cold caches against ~15 s for the C backend, and calls are as fast.
CONVENIENCE_MODE = "NUMBA"


@functools.lru_cache(maxsize=64)
def _compiled(key, dataset_ref, params_ref, model_names):
    dataset, parameters = dataset_ref(), params_ref()
    pvals, inputs = parameter_inputs(parameters)
    (graph,) = build_dataset_graphs([dataset], pvals, all_bins=True, model_names=model_names)
    npred_background, _ = graph.npred_background()
    outputs = [graph.npred_signal, npred_background, graph.stat]
    with warnings.catch_warnings():
        # BLAS matters for large products only; these are vector-matrix products of ~100 bins
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        return pytensor.function(inputs, outputs, mode=CONVENIENCE_MODE, on_unused_input="ignore")


class _Ref:
    """Holds an object for the cache without making it part of the key."""

    def __init__(self, obj):
        self.obj = obj

    def __call__(self):
        return self.obj

    def __hash__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, _Ref)


def _evaluate(dataset, model_names=None):
    parameters = list(dataset.models.parameters) if dataset.models else []
    key = (data_fingerprint(dataset), tuple(id(p) for p in parameters))
    names = None if model_names is None else tuple(model_names)
    fn = _compiled(key, _Ref(dataset), _Ref(parameters), names)
    return fn(*[p.value for p in parameters])


def evaluate_npred(dataset, kind="total", model_names=None):
    """Predicted counts on every reco bin (numpy, shape (n_energy,)) at current parameter values.

    ``kind``: ``"signal"``, ``"background"`` or ``"total"``.
    """
    signal, background, _ = _evaluate(dataset, model_names)
    if kind == "signal":
        return np.asarray(signal)
    if kind == "background":
        return np.asarray(background)
    if kind == "total":
        return np.asarray(signal) + np.asarray(background)
    raise ValueError(f"kind must be 'signal', 'background' or 'total', got {kind!r}")


def evaluate_stat_array(dataset):
    """Per-bin statistic on every reco bin (numpy), masked bins included."""
    return np.asarray(_evaluate(dataset)[2])
