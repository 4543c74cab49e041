"""MAP fit: gradient optimiser on the joint log density, errors from its Hessian."""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from .compiled import single_blas_thread
from .model import JointModel
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
    """Maximum a posteriori fit of the free parameters of ``datasets``' models.

    The optimiser (L-BFGS-B with exact gradients, then Newton steps with the exact Hessian) works on
    ``value / scale``; priors enter as densities in physical space (no Jacobian terms), so with
    uniform or default priors the optimum is gammapy's maximum-likelihood fit. Best-fit values and
    errors are written back to the models' parameters.

    Parameters
    ----------
    datasets : `~bayesdl4.datasets.Datasets` or list of datasets
    mode : str, optional
        PyTensor compilation mode (default: `bayesdl4.inference.model.DEFAULT_MODE`).
    maxiter : int
        Iteration limit of the optimiser.

    Returns
    -------
    `FitResult`
    """
    timings = {}
    t0 = time.perf_counter()
    joint = JointModel(datasets)
    fn = joint.log_density_function(mode=mode)
    scales = joint.scales
    bounds_x = joint.bounds() / scales[:, None]
    x0 = joint.values / scales
    lo, hi = bounds_x.T
    x0 = np.clip(x0, np.where(np.isfinite(lo), lo, -np.inf), np.where(np.isfinite(hi), hi, np.inf))
    fn(x0)  # Numba compiles (or loads from its cache) on the first call: count it as compilation
    timings["compile"] = time.perf_counter() - t0
    with single_blas_thread():
        return _run_fit(joint, fn, x0, lo, hi, bounds_x, maxiter, timings)


def _run_fit(joint, fn, x0, lo, hi, bounds_x, maxiter, timings):
    scales = joint.scales
    nfev = 0

    t1 = time.perf_counter()
    # L-BFGS-B works on z = x / s with s from the curvature at the start: parameters whose errors
    # differ by orders of magnitude in x (a position in deg next to a norm) become comparable
    s = _preconditioner(joint, fn, x0)

    def objective(z):
        nonlocal nfev
        nfev += 1
        logp, grad, _ = fn(np.asarray(z, dtype=float) * s)
        if not np.isfinite(logp):
            return np.inf, np.zeros_like(z)
        return -float(logp), -np.asarray(grad) * s

    bounds_z = bounds_x / s[:, None]
    scipy_bounds = [(a if np.isfinite(a) else None, b if np.isfinite(b) else None) for a, b in bounds_z]
    res = optimize.minimize(objective, x0 / s, jac=True, method="L-BFGS-B", bounds=scipy_bounds,
                            options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-8})
    x = _newton_polish(joint, fn, res.x * s, lo, hi)
    logp, grad, total_stat = fn(x)
    hess = joint.hessian(fn, x)
    nfev += 1
    timings["optimize"] = time.perf_counter() - t1

    covariance_x, ok_cov = _covariance(hess)
    covariance = covariance_x * np.outer(scales, scales)
    errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    values = x * scales
    joint.set_values(values)
    parameters = {}
    for free, value, error in zip(joint.free, values, errors, strict=True):
        free.parameter.error = float(error)
        parameters[free.name] = FitParameter(free.name, float(value), float(error), str(free.parameter.unit))
    success = bool(res.success or np.max(np.abs(grad)) < 1e-3) and bool(np.isfinite(logp)) and ok_cov
    message = res.message if isinstance(res.message, str) else str(res.message)
    if not ok_cov:
        message += "; Hessian not negative definite at the optimum (a parameter at a bound?)"
    result = FitResult(success=success, message=message, total_stat=float(total_stat),
                       log_posterior=float(logp), parameters=parameters, covariance=covariance,
                       names=list(joint.names), nfev=nfev, time=timings,
                       attrs=provenance_attrs(joint.datasets, joint.models))
    log.info("fit: %s", result)
    return result


def _preconditioner(joint, fn, x0):
    """Per-parameter step scale ``1 / sqrt(|d2 logp / dx2|)`` at the start (ones where the curvature
    is zero or not finite)."""
    curvature = np.abs(np.diag(joint.hessian(fn, x0)))
    ok = np.isfinite(curvature) & (curvature > 0)
    return np.where(ok, 1.0 / np.sqrt(np.where(ok, curvature, 1.0)), 1.0)


def _newton_polish(joint, fn, x, lo, hi, steps=3):
    """A few Newton steps on the log density; keeps the L-BFGS-B point if they do not help."""
    logp, grad, _ = fn(x)
    hess = joint.hessian(fn, x)
    for _ in range(steps):
        try:
            step = np.linalg.solve(hess, -grad)
        except np.linalg.LinAlgError:
            break
        trial = x + step
        inside = np.all((trial >= np.nan_to_num(lo, nan=-np.inf)) & (trial <= np.nan_to_num(hi, nan=np.inf)))
        if not inside:
            break
        new_logp, new_grad, _ = fn(trial)
        if not np.isfinite(new_logp) or new_logp < logp - 1e-12:
            break
        x, logp, grad = trial, new_logp, new_grad
        hess = joint.hessian(fn, x)
        if np.max(np.abs(step)) < 1e-12:
            break
    return x


def _covariance(hess):
    """Inverse of the negative Hessian; flags a Hessian that is not negative definite."""
    precision = -np.asarray(hess)
    try:
        np.linalg.cholesky(precision)
        ok = True
    except np.linalg.LinAlgError:
        ok = False
    covariance = np.linalg.pinv(precision)
    return covariance, ok
