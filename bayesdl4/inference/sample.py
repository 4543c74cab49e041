"""NUTS sampling of the one model into an ArviZ DataTree with pointwise log-likelihood."""

import logging
import time

import numpy as np
import xarray as xr

from ..compiled import NOGIL_NUMBA, single_blas_thread
from ..errors import InferenceError
from ..utils.gcpause import paused_gc
from .density import model_functions
from .model import as_model
from .record import provenance_attrs

__all__ = ["sample", "NUTS_SAMPLERS", "posterior_groups"]

log = logging.getLogger(__name__)

NUTS_SAMPLERS = ("nutpie", "pymc")


def sample(datasets, draws=1000, tune=1000, chains=4, random_seed=None, nuts_sampler="nutpie",
           progressbar=True, cores=None, posterior_predictive=True, granularity=None, **sampler_kwargs):
    """Sample the posterior of every free variable of the model with NUTS.

    Parameters
    ----------
    datasets : `~bayesdl4.datasets.Datasets`, list, or a `pymc.Model` from `build_model`
        Datasets with models assigned, or the model itself (with what a user added to it).
    draws, tune, chains : int
        Kept draws, tuning steps and chains.
    random_seed : int, optional
        Same seed, same draws (sampler and posterior-predictive draws).
    nuts_sampler : {"nutpie", "pymc"}
        nutpie (default; runs the model's compiled log density, `bayesdl4.inference.nutpie_pyfunc`)
        or PyMC's own NUTS.
    progressbar : bool
    cores : int, optional
        Chains run in parallel on this many cores.
    posterior_predictive : bool
        Add a ``posterior_predictive`` group (Poisson counts, and OFF counts for ON/OFF datasets).
    granularity : str, optional
        What a pointwise term of a map dataset is (`bayesdl4.graph.map_builder`); with datasets only.
    **sampler_kwargs
        Passed on to ``nutpie.sample`` or ``pymc.sample``. For nutpie the default mass-matrix
        adaptation is ``adaptation="low_rank"`` (on the joint-crab log-parabola it halves the leapfrog
        steps per draw and quadruples ESS_bulk against ``"diag"``, benchmarks/README.md).

    Returns
    -------
    `xarray.DataTree`
        ``posterior``: every free model parameter by name in physical units (``unit`` and ``model``
        in its attrs), population hyperparameters, ON/OFF background rates per dataset
        (``<dataset>.mu_off``) and every variable a user added to the model; ``sample_stats``;
        ``log_likelihood`` (one variable per dataset, one value per point, so
        ``arviz.loo(result, var_name=<dataset>)`` works); ``posterior_predictive`` and
        ``observed_data`` (counts, and ``<dataset>.counts_off``). The root's attrs record package
        versions, data checksums and the models YAML.
    """
    if nuts_sampler not in NUTS_SAMPLERS:
        raise InferenceError(f"nuts_sampler must be one of {NUTS_SAMPLERS}, got {nuts_sampler!r}")
    t0 = time.perf_counter()
    with paused_gc():  # building and loading allocate many objects that full collections walk
        model, info = as_model(datasets, granularity=granularity)
        functions = model_functions(model)
        # the start check compiles the function the sampler will use (nutpie: the GIL-free mode)
        mode = NOGIL_NUMBA if nuts_sampler == "nutpie" else None
        start = functions.density(jacobian=True, mode=mode)(functions.x0)
    if not np.isfinite(start[0]):
        raise InferenceError("the log density is not finite at the starting values; check that each start "
                             "value lies inside its prior and that the models predict positive counts")
    if nuts_sampler == "nutpie":
        import nutpie

        from .nutpie_pyfunc import compiled_model

        compiled = compiled_model(functions)
        t_compiled = time.perf_counter()
        sampler_kwargs.setdefault("adaptation", "low_rank")
        seed = None if random_seed is None else int(np.random.SeedSequence(random_seed).generate_state(1)[0])
        with single_blas_thread():  # chains run in parallel threads already
            idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                                  progress_bar=progressbar, save_warmup=False, **sampler_kwargs)
        xs = np.asarray(idata["posterior"]["x"].values)
    else:
        import pymc as pm

        t_compiled = time.perf_counter()
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=random_seed, model=model,
                          nuts_sampler="pymc",
                          progressbar=progressbar, compute_convergence_checks=False,
                          idata_kwargs={"include_transformed": True}, **sampler_kwargs)
        posterior = idata["posterior"]
        xs = np.concatenate([np.asarray(posterior[name].values).reshape(
            posterior.sizes["chain"], posterior.sizes["draw"], -1) for name in functions.value_names], axis=-1)
    t_sample = time.perf_counter()
    tree = posterior_groups(functions, xs, random_seed=random_seed, posterior_predictive=posterior_predictive,
                            progressbar=progressbar)
    if "sample_stats" in idata.children:
        tree["sample_stats"] = xr.DataTree(idata["sample_stats"].to_dataset())
    tree.attrs.update(provenance_attrs(info.datasets, info.models))
    tree.attrs["sampler"] = nuts_sampler
    tree.attrs["wall_time_s"] = t_sample - t0
    tree.attrs["compile_time_s"] = t_compiled - t0
    tree.attrs["postprocess_time_s"] = time.perf_counter() - t_sample
    return tree


def _dataset_of(values, points, k):
    return values[..., points.dataset == k]


def posterior_groups(functions, xs, random_seed=None, posterior_predictive=True, progressbar=False):
    """DataTree groups (posterior, log_likelihood, posterior_predictive, observed_data) from draws
    ``xs`` of the flat unconstrained point, shape (chain, draw, n_x)."""
    info = functions.info
    n_chain, n_draw = xs.shape[:2]
    draws_fn = functions.draws(pointwise=True)
    flat = xs.reshape(n_chain * n_draw, -1)
    first = [np.asarray(v) for v in draws_fn(flat[0])]
    stores = [np.empty((flat.shape[0], *v.shape)) for v in first]
    iterator = range(flat.shape[0])
    if progressbar and flat.shape[0] > 2000:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="pointwise terms", leave=False)
    with single_blas_thread():
        for i in iterator:
            for store, value in zip(stores, first if i == 0 else draws_fn(flat[i]), strict=True):
                store[i] = value
    stores = [s.reshape(n_chain, n_draw, *s.shape[1:]) for s in stores]
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    posterior = {}
    k = 0
    for name, _, dims, _, kind in functions.outputs:
        values = stores[k]
        k += 1
        if kind == "parameters":
            table = info.table
            for j, (pname, par, model_name) in enumerate(zip(table.free_names, table.free,
                                                              table.model_names[: table.n_free], strict=True)):
                posterior[pname] = xr.DataArray(values[..., j], dims=("chain", "draw"),
                                                attrs={"unit": str(par.unit), "model": model_name})
        elif kind == "latent":
            plan = info.latent[name][0]
            for j, dataset in enumerate(plan.dataset_names):
                dim = f"{dataset}_{plan.points.dim_suffix}"
                posterior[f"{dataset}.mu_off"] = xr.DataArray(
                    _dataset_of(values, plan.points, j), dims=("chain", "draw", dim),
                    coords={dim: plan.points.coord[plan.points.dataset == j]}, attrs={"unit": "counts"})
        else:
            extra = tuple(dims) if dims else tuple(f"{name}_dim_{i}" for i in range(values.ndim - 2))
            posterior[name] = xr.DataArray(values, dims=("chain", "draw", *extra))
    loglike, predictive, observed = {}, {}, {}
    rng = np.random.default_rng(random_seed)
    for plan, graph in zip(info.plans, info.graphs, strict=True):
        points = plan.points
        terms = stores[k]
        means = dict(zip(sorted(graph.predictive), stores[k + 1 : k + 1 + len(graph.predictive)], strict=True))
        k += 1 + len(graph.predictive)
        draws = plan.builder.draw_predictive(plan, means, rng) if posterior_predictive else {}
        for j, dataset in enumerate(plan.dataset_names):
            dim = f"{dataset}_{points.dim_suffix}"
            mine = points.dataset == j
            coord = {dim: points.coord[mine]}
            loglike[dataset] = xr.DataArray(terms[..., mine], dims=("chain", "draw", dim), coords=coord)
            for key, values in points.observed.items():
                name = dataset if key == "counts" else f"{dataset}.{key}"
                observed[name] = xr.DataArray(values[mine], dims=(dim,), coords=coord)
            for key, values in draws.items():
                name = dataset if key == "counts" else f"{dataset}.{key}"
                values = values[..., mine]
                if values.dtype.kind == "i":  # Poisson counts: half the memory of int64
                    values = values.astype(np.int32)
                predictive[name] = xr.DataArray(values, dims=("chain", "draw", dim), coords=coord)
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(xr.Dataset(posterior).assign_coords(coords))
    tree["log_likelihood"] = xr.DataTree(xr.Dataset(loglike).assign_coords(coords))
    if posterior_predictive:
        tree["posterior_predictive"] = xr.DataTree(xr.Dataset(predictive).assign_coords(coords))
    tree["observed_data"] = xr.DataTree(xr.Dataset(observed))
    return tree
