"""Marginal likelihood (evidence) of the one model: SMC on the PyMC model, or nested sampling.

``evidence(datasets_or_model, method=...)`` returns an `EvidenceResult` with ``log_z`` and
``log_z_error`` (natural log). The convention is gammapy's (`Sampler`): the likelihood is
``exp(-0.5 * total_stat)`` with the statistic's goodness-of-fit terms (WStat), the priors are
normalised densities in physical units, so numbers compare with gammapy 2.1's UltraNest runs.

* ``method="smc"``: PyMC's SMC (its IMH kernel, `bayesdl4.inference.smc`) on the model. SMC
  starts from prior draws and tempers the model's observed variables and potentials (the
  ``log_likelihood`` potential, and any a user added: they count as likelihood); each chain
  estimates the evidence, ``log_z`` is the log of their mean (the estimate of ``Z`` is unbiased
  per chain) and ``log_z_error`` the scatter of the chains' ``log Z`` over ``sqrt(chains)``.
* ``method="nested"``: UltraNest (optional extra ``pip install bayesdl4[nested]``) on
  ``logp_function(model).log_likelihood`` and ``.prior_transform``: the same priors and
  likelihood, ``log_z_error`` is UltraNest's ``logzerr``.

Both need proper, normalised priors: a `FlatPrior` (a parameter without prior and without two
bounds), a prior with ``weight != 1``, a population with such a hyperprior, the flat OFF rates of
``stat_type="poisson_onoff"`` and PyMC ``Flat`` / ``HalfFlat`` variables are refused with an
`InferenceError` naming the variable.

In a DataTree the result is the group ``evidence`` (`store_evidence`): one entry per method along
the dimension ``method``. PyMC's own SMC puts per-chain values in ``sample_stats``; a result of
`sample` keeps NUTS's statistics there, whose chains are not SMC's, hence a group of its own
(ArviZ leaves groups it does not know alone, and netCDF keeps them).
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import InferenceError
from ..models.population import PopulationPrior
from .model import as_model

__all__ = ["evidence", "EvidenceResult", "store_evidence", "METHODS", "check_normalised_priors"]

log = logging.getLogger(__name__)

METHODS = ("smc", "nested")
GROUP = "evidence"
CONVENTION = ("log Z, natural log; likelihood exp(-0.5 * total_stat) with goodness-of-fit terms "
              "(gammapy's Sampler), normalised priors in physical units")
_FLAT_OPS = {"FlatRV": "Flat", "HalfFlatRV": "HalfFlat"}  # PyMC's improper distributions


@dataclass
class EvidenceResult:
    """Log evidence of one model and how it was obtained.

    Attributes
    ----------
    log_z, log_z_error : float
        ``ln Z`` and its 1-sigma error.
    method : {"smc", "nested"}
    log_z_runs : ndarray
        SMC: ``ln Z`` of each chain; nested: UltraNest's bootstrap estimates.
    n_likelihood_calls : int
        Likelihood evaluations (SMC: particles x stages x mutation steps).
    wall_time_s : float
        Wall time, compilation included.
    samples : dict
        Posterior draws by variable name in physical units (SMC: final particles, shape
        ``(chains, draws)``; nested: equally weighted samples, shape ``(n,)``).
    settings : dict
        The sampler's settings.
    data_digest : str
        sha256 of the datasets' names and fitted data (two results compare only if equal).
    """

    log_z: float
    log_z_error: float
    method: str
    log_z_runs: np.ndarray
    n_likelihood_calls: int
    wall_time_s: float
    samples: dict = field(default_factory=dict, repr=False)
    settings: dict = field(default_factory=dict)
    data_digest: str = ""

    def __repr__(self):
        return (f"EvidenceResult(method={self.method!r}, log_z={self.log_z:.3f} +- {self.log_z_error:.3f}, "
                f"n_likelihood_calls={self.n_likelihood_calls}, wall_time_s={self.wall_time_s:.1f})")

    def to_dataset(self):
        """The result as an `xarray.Dataset` with one entry along ``method``."""
        runs = np.asarray(self.log_z_runs, dtype=float)
        ds = xr.Dataset(
            {
                "log_z": ("method", [self.log_z]),
                "log_z_error": ("method", [self.log_z_error]),
                "log_z_runs": (("method", "run"), runs[None, :]),
                "n_likelihood_calls": ("method", [int(self.n_likelihood_calls)]),
                "wall_time_s": ("method", [self.wall_time_s]),
                "settings": ("method", [json.dumps(self.settings, default=str)]),
                "data_digest": ("method", [self.data_digest]),
            },
            coords={"method": [self.method], "run": np.arange(runs.size)},
        )
        ds.attrs["convention"] = CONVENTION
        return ds

    def to_datatree(self):
        """A DataTree holding only the ``evidence`` group."""
        tree = xr.DataTree()
        store_evidence(tree, self)
        return tree

    @classmethod
    def from_datatree(cls, tree, method=None):
        """The evidence stored in ``tree`` (its ``evidence`` group); ``method`` picks one when
        both were stored."""
        if GROUP not in tree.children:
            raise InferenceError("this DataTree holds no 'evidence' group: run evidence(..., posterior=tree) first")
        ds = tree[GROUP].to_dataset()
        methods = [str(m) for m in ds["method"].values]
        if method is None:
            if len(methods) > 1:
                raise InferenceError(f"the DataTree holds evidences of several methods {methods}: pass method=")
            method = methods[0]
        if method not in methods:
            raise InferenceError(f"the DataTree holds no evidence by method {method!r} (it has {methods})")
        entry = ds.sel({"method": method})  # not sel(method=...): that is the interpolation keyword
        runs = np.asarray(entry["log_z_runs"].values, dtype=float)
        return cls(log_z=float(entry["log_z"]), log_z_error=float(entry["log_z_error"]), method=method,
                   log_z_runs=runs[np.isfinite(runs)], n_likelihood_calls=int(entry["n_likelihood_calls"]),
                   wall_time_s=float(entry["wall_time_s"]), settings=json.loads(str(entry["settings"].values)),
                   data_digest=str(entry["data_digest"].values))


def store_evidence(tree, result):
    """Add ``result`` to the ``evidence`` group of ``tree`` (in place), replacing an earlier
    entry of the same method; returns ``tree``."""
    new = result.to_dataset()
    if GROUP in tree.children:
        old = tree[GROUP].to_dataset()
        old = old.drop_sel({"method": [m for m in old["method"].values if m == result.method]})
        if old.sizes.get("method", 0):
            # runs are padded with NaN to the longer of the two
            new = xr.concat([old, new], dim="method", join="outer", data_vars="all", fill_value={"log_z_runs": np.nan})
            new.attrs["convention"] = CONVENTION
    tree[GROUP] = xr.DataTree(new)
    return tree


# ------------------------------------------------------------------------------ priors
def check_normalised_priors(model, info, method="evidence"):
    """Raise `InferenceError` naming the first variable whose prior is not a normalised density.

    Looks at every free variable of the model: bayesdl4 priors (``normalised``: proper and
    weight 1), population hyperpriors, ON/OFF background rates, and PyMC variables a user added.
    """
    priors = info.priors
    for rv in model.free_RVs:
        name = rv.name
        if name.endswith("__scaled"):
            physical = name[: -len("__scaled")]
            prior = priors.get(physical)
            if prior is not None and not _normalised(prior):
                raise InferenceError(_improper_message(physical, prior, method))
            continue
        if name.endswith("__raw") and name[: -len("__raw")] in info.latent:
            dataset_names = info.latent[name[: -len("__raw")]][0].dataset_names
            raise InferenceError(
                f"variable {name[: -len('__raw')]!r} (OFF background rates of {dataset_names}, stat_type "
                f"'poisson_onoff') has a flat prior on [0, inf): {method} needs proper priors; use "
                "stat_type 'wstat' (the background profiled) for evidence")
        flat = _FLAT_OPS.get(type(rv.owner.op).__name__)
        if flat is not None:
            raise InferenceError(f"variable {name!r} has an improper {flat} prior: {method} needs proper "
                                 "priors; give it a proper distribution")


def _normalised(prior):
    if isinstance(prior, PopulationPrior):
        return prior.normalised
    return bool(getattr(prior, "normalised", True))


def _improper_message(name, prior, method):
    if not getattr(prior, "proper", True):
        what = f"an improper prior {prior!r}"
        fix = ("give it a proper prior (UniformPrior, LogUniformPrior, GaussianPrior, ...); a parameter without "
               "a prior and without both min and max gets a flat one")
    else:
        what = f"the prior {prior!r} with weight {prior.weight:g}, which is not normalised"
        fix = "use weight 1"
    return f"parameter {name!r} has {what}: {method} needs normalised priors; {fix}"


def _data_digest(info):
    """sha256 over dataset names and the fitted observed arrays, per dataset (order-free)."""
    parts = []
    for plan in info.plans:
        points = plan.points
        for j, name in enumerate(plan.dataset_names):
            mine = points.dataset == j
            h = hashlib.sha256(name.encode())
            for key in sorted(points.observed):
                h.update(key.encode())
                h.update(np.ascontiguousarray(points.observed[key][mine], dtype=float).tobytes())
            parts.append((name, h.hexdigest()))
    return hashlib.sha256(json.dumps(sorted(parts)).encode()).hexdigest()


# ------------------------------------------------------------------------------ the entry point
def evidence(datasets_or_model, method="smc", random_seed=None, posterior=None, progressbar=True, **kwargs):
    """Log marginal likelihood of the model (see the module docstring).

    Parameters
    ----------
    datasets_or_model : `~bayesdl4.datasets.Datasets`, list, or a `pymc.Model` from `build_model`
    method : {"smc", "nested"}
    random_seed : int, optional
        Same seed, same result (SMC chains; UltraNest draws from NumPy's global generator, which
        is seeded for the run and restored after it).
    posterior : `xarray.DataTree`, optional
        A result (e.g. of `sample`) to store the evidence in, as its ``evidence`` group.
    progressbar : bool
    **kwargs
        SMC (`bayesdl4.inference.smc.run_smc`): ``draws`` (particles per chain, default 1000),
        ``chains`` (default 4) and the IMH kernel's ``threshold`` / ``correlation_threshold``.
        Nested: ``live_points`` (default 400), ``frac_remain`` (default 0.01), ``log_dir``, and
        other keywords of UltraNest's ``ReactiveNestedSampler.run`` (``dlogz``, ``min_ess``, ...).

    Returns
    -------
    `EvidenceResult`

    Examples
    --------
    >>> result = evidence(datasets, method="smc", random_seed=1)        # doctest: +SKIP
    >>> tree = sample(datasets); evidence(datasets, posterior=tree)    # doctest: +SKIP
    """
    if method not in METHODS:
        raise InferenceError(f"method must be one of {METHODS}, got {method!r}")
    t0 = time.perf_counter()
    model, info = as_model(datasets_or_model)
    check_normalised_priors(model, info, method=f"evidence ({method})")
    if method == "smc":
        from .smc import run_smc

        result = EvidenceResult(method="smc", wall_time_s=np.nan,
                                **run_smc(model, info, random_seed=random_seed, progressbar=progressbar, **kwargs))
    else:
        result = _nested(model, info, random_seed=random_seed, progressbar=progressbar, **kwargs)
    result.wall_time_s = time.perf_counter() - t0
    result.data_digest = _data_digest(info)
    log.info("evidence: %s", result)
    if posterior is not None:
        store_evidence(posterior, result)
    return result


# ------------------------------------------------------------------------------ nested sampling
def _import_ultranest():
    try:
        import ultranest
    except ImportError as exc:
        raise InferenceError("nested sampling needs UltraNest, an optional extra: pip install 'bayesdl4[nested]' "
                             "(or pip install ultranest), or use method='smc'") from exc
    return ultranest


def _nested(model, info, random_seed=None, progressbar=True, live_points=400, frac_remain=0.01, log_dir=None,
            **run_kwargs):
    from .logp import LogDensity

    extra = [p.name for p in model.potentials if p.name != "log_likelihood"] + [v.name for v in model.observed_RVs]
    if extra:
        raise InferenceError(f"the model holds likelihood terms {extra} besides 'log_likelihood': nested sampling "
                             "runs on logp_function(...).log_likelihood, which leaves them out; use method='smc'")
    ultranest = _import_ultranest()
    density = LogDensity(model)
    density.prior_transform(np.full(density.x0.size, 0.5))  # InferenceError naming a prior it cannot invert
    calls = 0

    def loglike(thetas):
        nonlocal calls
        calls += len(thetas)
        out = np.array([density.log_likelihood(theta) for theta in thetas])
        return np.where(np.isfinite(out), out, -1e300)  # zero likelihood, kept finite for UltraNest

    loggers = [logging.getLogger(name) for name in ("ultranest", "ultranest.integrator")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO if progressbar else logging.WARNING)
    state = np.random.get_state()
    if random_seed is not None:
        np.random.seed(np.random.SeedSequence(random_seed).generate_state(1)[0])
    try:
        sampler = ultranest.ReactiveNestedSampler(list(density.names), loglike, density.prior_transform,
                                                  vectorized=True, log_dir=log_dir,
                                                  resume="overwrite" if log_dir else "subfolder")
        result = sampler.run(min_num_live_points=live_points, frac_remain=frac_remain, show_status=progressbar,
                             viz_callback=False, **run_kwargs)
    finally:
        if random_seed is not None:
            np.random.set_state(state)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    samples = {name: np.asarray(result["samples"][:, i]) for i, name in enumerate(density.names)}
    runs = np.asarray(result.get("logz_bs", [result["logz"]]), dtype=float).ravel()
    settings = {"live_points": live_points, "frac_remain": frac_remain, "sampler": "ultranest",
                "ultranest": getattr(ultranest, "__version__", "?"),
                **{k: v for k, v in run_kwargs.items() if np.isscalar(v)}}
    return EvidenceResult(log_z=float(result["logz"]), log_z_error=float(result["logzerr"]), method="nested",
                          log_z_runs=runs, n_likelihood_calls=int(calls), wall_time_s=np.nan, samples=samples,
                          settings=settings)
