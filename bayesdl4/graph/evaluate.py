"""Numpy conveniences (``dataset.npred()``, ``stat_array()``) through the same builders and graphs.

The dataset is prepared with every reco bin kept, its arrays enter as inputs, and the compiled
function comes from `bayesdl4.compiled` (keyed by the graph, so every dataset of one type and
model structure shares it). The last evaluation is kept: a dataset evaluated again with the same
models, maps and IRFs (compared by value), whose sources keep their plans (point sources their
positions, extended sources moving within their margin), only calls the function again. A dataset
whose likelihood has per-bin parameters (the explicit ON/OFF background) is evaluated with the
background profiled, as WStat does.
"""

import weakref

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..compiled import compile_function
from ..models import SkyModel
from .params import ParameterTable
from .protocol import builder_for

__all__ = ["evaluate_npred", "evaluate_stat_array", "graph_inputs"]

# Measured in benchmarks/bench_compile.py: for a one-dataset WStat graph Numba's first call takes
# ~1 s with cold caches against ~15 s for the C backend, and calls are as fast.
CONVENIENCE_MODE = "NUMBA"


def graph_inputs(arrays, static_shape=()):
    """A fresh input variable for each array of a plan (``{name: variable}``); those named in
    ``static_shape`` (`GroupPlan.static_shape`) have the array's shape as static shape."""
    return {name: pt.tensor(name=name, dtype=np.asarray(a).dtype,
                            shape=np.shape(a) if name in static_shape else (None,) * np.ndim(a))
            for name, a in arrays.items()}


def _as_input(array):
    array = np.asarray(array)
    dtype = np.float64 if array.dtype.kind in "fb" else np.int64
    return np.ascontiguousarray(array, dtype=dtype)


#: the last evaluation (one dataset, so that the copies of its maps bound the memory): its plan,
#: inputs and compiled function (`_unchanged`)
_LAST = {}


def _sources_key(dataset, models):
    """What a dataset's plan depends on besides its maps and IRFs: the models and their parameters'
    layout, point sources' positions and extended sources' current plans (kept while they move
    within their margin, `recent_extended_plan`)."""
    from .map_extended import recent_extended_plan

    parts = []
    for model in models:
        parts.append((id(model), tuple((id(p), p.frozen) for p in model.parameters)))
        spatial = getattr(model, "spatial_model", None)
        if spatial is None or not hasattr(dataset, "psf"):
            continue
        if spatial.tag[0] == "PointSpatialModel":
            parts.append((spatial.lon_0.value, spatial.lat_0.value))
        else:
            parts.append(id(recent_extended_plan(dataset, model, all_planes=True)))
    return tuple(parts)


def _arrays(obj):
    """The arrays an IRF holds (its own, and those of the maps it holds)."""
    out = []
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        data = value if isinstance(value, np.ndarray) else getattr(value, "data", None)
        if isinstance(data, np.ndarray):
            out.append(data)
    return out


def _maps(dataset):
    """``{name: (object, arrays)}`` of the dataset's maps and IRFs."""
    out = {name: (m, [] if m is None else [m.data]) for name in dataset.map_attributes()
           for m in [getattr(dataset, name, None)]}
    for name in ("psf", "edisp"):
        irf = getattr(dataset, name, None)
        out[name] = (irf, _arrays(irf))
    return out


def _same_maps(maps, stored):
    """The dataset's maps and IRFs are the stored objects with the stored values (changes in place
    count)."""
    for name, (obj, arrays) in maps.items():
        stored_obj, stored_arrays = stored[name]
        if obj is not stored_obj or len(arrays) != len(stored_arrays) or \
                not all(np.array_equal(a, b) for a, b in zip(arrays, stored_arrays, strict=True)):
            return False
    return True


def _unchanged(dataset):
    """The last evaluation if it was of ``dataset`` and its maps and IRFs are unchanged, else None;
    a change forgets the extended sources' kept plans too (their IRFs or exposure may have changed)."""
    from .map_extended import forget_recent_plans

    last = _LAST.get("entry")
    if last is not None and last["dataset"]() is dataset and _same_maps(_maps(dataset), last["maps"]):
        return last
    forget_recent_plans(dataset)
    return None


def _evaluate(dataset, model_names=None):
    # model_names restricts the sources; background and nuisance models always apply
    models = [m for m in dataset.models or ()
              if model_names is None or m.name in model_names or not isinstance(m, SkyModel)]
    table = ParameterTable(models)
    key = last = None
    if hasattr(dataset, "map_attributes"):
        last = _unchanged(dataset)
        key = _sources_key(dataset, models)
        last = last if last is not None and last["key"] == key else None
    if last is not None:  # same plan: only the parameter values changed
        plan, fn, arrays, names = last["plan"], last["fn"], last["arrays"], last["names"]
        signal, background, stat = fn(table.values(), *(arrays[n] for n in names))
        return plan, np.asarray(signal), np.asarray(background), np.asarray(stat)
    saved = dataset.models
    # no Python traceback per graph node: a third of the time of a small graph's construction
    with pytensor.config.change_flags(traceback__limit=0):
        try:
            dataset.models = models if models else None
            builder = builder_for(dataset)
            builder.check(dataset)
            plan = builder.prepare([dataset], table, "g0", all_bins=True)
        finally:
            dataset.models = saved
        arrays = {k: _as_input(v) for k, v in plan.arrays.items()}
        inputs = graph_inputs(arrays, plan.static_shape)
        theta = pt.dvector("theta")
        graph = builder.build(plan, inputs, theta, latent={})
    outputs = [graph.npred_signal, graph.npred_background, graph.stat_bins]
    names = list(inputs)
    fn = compile_function([theta, *(inputs[n] for n in names)], outputs, mode=CONVENIENCE_MODE)
    signal, background, stat = fn(table.values(), *(arrays[n] for n in names))
    if key is not None:
        maps = {name: (obj, [np.array(a) for a in arrays]) for name, (obj, arrays) in _maps(dataset).items()}
        _LAST["entry"] = {"dataset": weakref.ref(dataset), "key": key, "maps": maps, "plan": plan, "fn": fn,
                          "arrays": arrays, "names": names}
    return plan, np.asarray(signal), np.asarray(background), np.asarray(stat)


def _full(plan, values, dataset):
    """Per-bin values of the prepared bins on the dataset's full counts shape."""
    shape = dataset.counts.data.shape
    values = np.asarray(values)
    if values.size == int(np.prod(shape)):
        return values.reshape(shape)
    out = np.zeros(int(np.prod(shape)))
    out[plan.points.coord] = values
    return out.reshape(shape)


def evaluate_npred(dataset, kind="total", model_names=None):
    """Predicted counts on every reco bin (numpy, the counts' shape) at current parameter values.

    ``kind``: ``"signal"``, ``"background"`` or ``"total"``; ``model_names`` restricts the signal
    to those sources.
    """
    if kind not in ("signal", "background", "total"):
        raise ValueError(f"kind must be 'signal', 'background' or 'total', got {kind!r}")
    plan, signal, background, _ = _evaluate(dataset, model_names)
    signal, background = _full(plan, signal, dataset), _full(plan, background, dataset)
    return {"signal": signal, "background": background, "total": signal + background}[kind]


def evaluate_stat_array(dataset):
    """Per-bin statistic (gammapy's ``-2 ln L`` terms) on every reco bin, masked bins included."""
    plan, _, _, stat = _evaluate(dataset)
    return _full(plan, stat, dataset)
