"""MAP fit: gradient optimiser on the joint log density, errors from its Hessian."""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from ..compiled import single_blas_thread
from ..errors import InferenceError
from ..utils.gcpause import paused_gc
from .density import model_functions
from .model import as_model
from .record import provenance_attrs

__all__ = ["fit", "FitResult", "FitParameter"]

log = logging.getLogger(__name__)


@dataclass
class FitParameter:
    """Best-fit value and 1-sigma error of one free parameter (physical ``unit``)."""

    name: str
    value: float
    error: float
    unit: str

    def __repr__(self):
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} = {self.value:.6g} +- {self.error:.3g}{unit}"


@dataclass
class FitResult:
    """Outcome of `fit`: optimiser status, statistic at the optimum, parameters and covariance."""

    success: bool
    message: str
    total_stat: float
    log_posterior: float
    parameters: dict
    covariance: np.ndarray
    names: list
    nfev: int
    time: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def __getitem__(self, name):
        return self.parameters[name]

    @property
    def correlation(self):
        err = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(err, err)

    def to_datatree(self):
        """The result as an `xarray.DataTree` with a ``fit`` group (values, errors, covariance)."""
        import xarray as xr

        names = list(self.names)
        units = [self.parameters[n].unit for n in names]
        ds = xr.Dataset(
            {
                "value": ("parameter", [self.parameters[n].value for n in names]),
                "error": ("parameter", [self.parameters[n].error for n in names]),
                "covariance": (("parameter", "parameter_2"), self.covariance),
                "unit": ("parameter", units),
            },
            coords={"parameter": names, "parameter_2": names},
            attrs={"success": int(self.success), "message": self.message, "total_stat": self.total_stat,
                   "log_posterior": self.log_posterior, "nfev": self.nfev},
        )
        tree = xr.DataTree.from_dict({"fit": ds})
        tree.attrs.update(self.attrs)
        return tree

    @classmethod
    def from_datatree(cls, tree):
        """Inverse of `to_datatree` (e.g. on what `bayesdl4.inference.read` returns)."""
        ds = tree["fit"].to_dataset()
        names = [str(n) for n in ds["parameter"].values]
        parameters = {
            n: FitParameter(n, float(v), float(e), str(unit))
            for n, v, e, unit in zip(names, ds["value"].values, ds["error"].values, ds["unit"].values,
                                     strict=True)
        }
        return cls(success=bool(ds.attrs["success"]), message=str(ds.attrs["message"]),
                   total_stat=float(ds.attrs["total_stat"]), log_posterior=float(ds.attrs["log_posterior"]),
                   parameters=parameters, covariance=np.asarray(ds["covariance"].values), names=names,
                   nfev=int(ds.attrs["nfev"]), attrs=dict(tree.attrs))

    def __repr__(self):
        lines = [
            f"FitResult(success={self.success}, total_stat={self.total_stat:.4f}, nfev={self.nfev})",
            f"  message: {self.message}",
        ]
        lines += [f"  {p!r}" for p in self.parameters.values()]
        return "\n".join(lines)


def fit(datasets, mode=None, maxiter=2000):
    """Maximum a posteriori fit of the model's free variables.

    The density is the one PyMC model of `build_model` without Jacobian terms (as PyMC's own MAP),
    optimised in the model's unconstrained space (L-BFGS-B with exact gradients, preconditioned by
    the curvature at the start, then Newton steps). Priors enter as densities in physical units,
    so with uniform or default priors the optimum is gammapy's maximum-likelihood fit. Errors
    come from the Hessian at the optimum, taken with steps set by the optimum's own curvature
    and propagated to physical units; best-fit values and errors are written back to the
    models' parameters.

    Parameters
    ----------
    datasets : `~bayesdl4.datasets.Datasets`, list of datasets, or a `pymc.Model` from `build_model`
    mode : str, optional
        PyTensor compilation mode (default: `bayesdl4.inference.density.DEFAULT_MODE`).
    maxiter : int
        Iteration limit of the optimiser.

    Returns
    -------
    `FitResult`
    """
    timings = {}
    t0 = time.perf_counter()
    with paused_gc():  # building and loading allocate many objects that full collections walk
        model, info = as_model(datasets)
        functions = model_functions(model)
        fn = functions.density(jacobian=False, mode=mode)
        x0 = functions.x0.copy()
        start = fn(x0)  # Numba compiles (or loads from its cache) on the first call: counted as compilation
    timings["compile"] = time.perf_counter() - t0
    if not np.isfinite(start[0]) or not np.all(np.isfinite(start[1])):
        raise InferenceError(_bad_start_message(functions, info))
    with single_blas_thread():
        return _run_fit(functions, info, fn, x0, maxiter, timings)


def _bad_start_message(functions, info):
    values = {name: p.value for name, p in zip(info.table.free_names, info.table.free, strict=True)}
    return ("the log density is not finite at the starting values "
            f"{ {k: float(f'{v:.6g}') for k, v in values.items()} }: check that each start value lies "
            "inside its prior and that the models predict positive counts where the data have counts")


def _run_fit(functions, info, fn, x0, maxiter, timings):
    nfev = 0
    t1 = time.perf_counter()
    # L-BFGS-B works on z = x / s with s from the curvature at the start: variables whose errors
    # differ by orders of magnitude (a position in deg next to a norm) become comparable
    s = _preconditioner(fn, x0)

    def objective(z):
        nonlocal nfev
        nfev += 1
        logp, grad, _ = fn(np.asarray(z, dtype=float) * s)
        if not np.isfinite(logp) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(z)
        return -float(logp), -np.asarray(grad) * s

    res = optimize.minimize(objective, x0 / s, jac=True, method="L-BFGS-B",
                            options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-8})
    x = _newton_polish(fn, res.x * s)
    logp, grad, total_stat = fn(x)
    covariance_x, reason = _covariance_at_optimum(fn, x)
    nfev += 1
    timings["optimize"] = time.perf_counter() - t1

    with paused_gc():
        draws = functions.draws(pointwise=False)
        outputs = _flat_outputs(functions, draws(x))
    names = list(outputs)
    values = np.array([outputs[n] for n in names])
    jacobian = _output_jacobian(functions, draws, x, covariance_x)
    covariance = jacobian @ covariance_x @ jacobian.T
    errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    units = _units(functions, info)
    parameters = {n: FitParameter(n, float(v), float(e), units.get(n, "")) for n, v, e in
                  zip(names, values, errors, strict=True)}
    for name, par in zip(info.table.free_names, info.table.free, strict=True):
        par.value, par.error = parameters[name].value, parameters[name].error
    converged = bool(res.success or np.max(np.abs(grad * s), initial=0.0) < 1e-3)
    message = res.message if isinstance(res.message, str) else str(res.message)
    if reason:
        message += f"; {reason}"
    success = converged and bool(np.isfinite(logp)) and not reason
    # the model's density is of value / scale: the physical log posterior density drops sum log(scale)
    log_posterior = float(logp) - functions.log_scale()
    result = FitResult(success=success, message=message, total_stat=float(total_stat), log_posterior=log_posterior,
                       parameters=parameters, covariance=covariance, names=names, nfev=nfev, time=timings,
                       attrs=provenance_attrs(info.datasets, info.models))
    log.info("fit: %s", result)
    return result


def _flat_outputs(functions, values):
    """``{name: value}`` of the scalar outputs of a draw (vectors as ``name[i]``, latent rates left out)."""
    out = {}
    for (name, _, _, _, kind), value in zip(functions.outputs, values, strict=False):
        value = np.asarray(value, dtype=float)
        if kind == "parameters":
            out.update(zip(functions.info.table.free_names, value.ravel(), strict=True))
        elif kind == "latent":
            continue
        elif value.ndim == 0:
            out[name] = float(value)
        else:
            out.update({f"{name}[{i}]": v for i, v in enumerate(value.ravel())})
    return out


def _units(functions, info):
    units = dict(info.units)
    for population, members in info.populations:
        unit = info.units[members[0]]
        units[f"{population.name}.mu"] = units[f"{population.name}.sigma"] = \
            ("" if population.distribution == "lognormal" else unit)
    return units


def _output_jacobian(functions, draws, x, covariance_x):
    """d(reported outputs) / dx at the optimum by central differences with steps of 1e-4 of each
    variable's error (a scale set by the optimum, not by the start)."""
    sigma = np.sqrt(np.clip(np.diag(covariance_x), 0, None))
    steps = np.where(np.isfinite(sigma) & (sigma > 0), 1e-4 * sigma, 1e-6 * np.maximum(1.0, np.abs(x)))
    columns = []
    for i in range(x.size):
        dx = np.zeros_like(x)
        dx[i] = steps[i]
        hi = np.array(list(_flat_outputs(functions, draws(x + dx)).values()))
        lo = np.array(list(_flat_outputs(functions, draws(x - dx)).values()))
        columns.append((hi - lo) / (2 * steps[i]))
    n_out = len(_flat_outputs(functions, draws(x)))
    return np.stack(columns, axis=1) if columns else np.zeros((n_out, 0))


def hessian(fn, x, steps):
    """Hessian of the log density at ``x`` by central differences of the exact gradient."""
    n = x.size
    hess = np.empty((n, n))
    for i in range(n):
        dx = np.zeros(n)
        dx[i] = steps[i]
        hess[i] = (np.asarray(fn(x + dx)[1]) - np.asarray(fn(x - dx)[1])) / (2 * steps[i])
    return 0.5 * (hess + hess.T)


def _relative_steps(x, step=1e-5):
    return step * np.maximum(1.0, np.abs(x))


def _preconditioner(fn, x0):
    """Per-variable step scale ``1 / sqrt(|d2 logp / dx2|)`` at the start (ones where the curvature
    is zero or not finite)."""
    curvature = np.abs(np.diag(hessian(fn, x0, _relative_steps(x0))))
    ok = np.isfinite(curvature) & (curvature > 0)
    return np.where(ok, 1.0 / np.sqrt(np.where(ok, curvature, 1.0)), 1.0)


def _newton_polish(fn, x, steps=3):
    """A few Newton steps on the log density; keeps the L-BFGS-B point if they do not help."""
    logp, grad, _ = fn(x)
    for _ in range(steps):
        hess = hessian(fn, x, _relative_steps(x))
        try:
            step = np.linalg.solve(hess, -np.asarray(grad))
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        trial = x + step
        new_logp, new_grad, _ = fn(trial)
        if not np.isfinite(new_logp) or new_logp < logp - 1e-12:
            break
        x, logp, grad = trial, new_logp, new_grad
        if np.max(np.abs(step), initial=0.0) < 1e-12:
            break
    return x


def _covariance_at_optimum(fn, x):
    """Covariance of x from the Hessian at the optimum: a first Hessian with relative steps gives
    each variable's error, a second one is taken with steps of 1e-3 of those errors. Returns the
    covariance and a reason why it cannot be trusted ("" when it can)."""
    hess = hessian(fn, x, _relative_steps(x))
    covariance, reason = _covariance(hess)
    sigma = np.sqrt(np.abs(np.diag(covariance)))
    if not reason and np.all(np.isfinite(sigma) & (sigma > 0)):
        hess = hessian(fn, x, 1e-3 * sigma)
        covariance, reason = _covariance(hess)
    if not reason and not np.all(np.isfinite(covariance)):
        reason = "the covariance is not finite"
    return covariance, reason


def _covariance(hess):
    """Inverse of the negative Hessian, and why it cannot be trusted ("" when it can)."""
    precision = -np.asarray(hess)
    if not np.all(np.isfinite(precision)):
        return np.full_like(precision, np.nan), "the Hessian at the optimum is not finite"
    try:
        np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(precision), ("the Hessian is not negative definite at the optimum (a parameter at "
                                           "a bound, or one the data do not constrain?): errors not trustworthy")
    return np.linalg.inv(precision), ""
