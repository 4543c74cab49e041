"""Comparing two models of the same data: Bayes factors from evidences, likelihood-ratio tests
from MAP fits.

LOO / WAIC work on results of `sample` directly: ``arviz.loo(tree, var_name=<dataset>)`` and
``arviz.compare({"pl": tree_pl, "lp": tree_lp}, var_name=<dataset>)`` (one ``log_likelihood``
variable per dataset, one term per fitted bin; with a single dataset ``var_name`` may be left
out). `joint_log_likelihood` puts all datasets into one variable to compare on all of them.
"""

import json
import math
import warnings
from dataclasses import dataclass

from scipy import special, stats

from ..errors import InferenceError
from .evidence import EvidenceResult

__all__ = ["bayes_factor", "BayesFactor", "likelihood_ratio_test", "LikelihoodRatioTest", "joint_log_likelihood"]


@dataclass
class BayesFactor:
    """``ln B = ln Z_a - ln Z_b`` and its 1-sigma error (the two evidences' errors in quadrature).

    ``ln B > 0`` favours model a. On Jeffreys' scale (natural log) 1 is "substantial",
    2.3 "strong", 4.6 "decisive" (B = 100).
    """

    log_bf: float
    log_bf_error: float
    log_z_a: float
    log_z_b: float

    @property
    def log10_bf(self):
        return self.log_bf / math.log(10)

    @property
    def significance(self):
        """``ln B / error``: how many sigma of the estimate's own error ``ln B`` lies from 0."""
        return self.log_bf / self.log_bf_error if self.log_bf_error > 0 else math.inf

    def __repr__(self):
        return (f"BayesFactor(ln B = {self.log_bf:.3f} +- {self.log_bf_error:.3f}, "
                f"log10 B = {self.log10_bf:.3f})")


def _as_evidence(result, method, label):
    if isinstance(result, EvidenceResult):
        return result
    if hasattr(result, "children"):
        return EvidenceResult.from_datatree(result, method=method)
    raise InferenceError(f"bayes_factor: {label} must be an EvidenceResult or a DataTree with an 'evidence' "
                         f"group, got {type(result).__name__}")


def bayes_factor(result_a, result_b, method=None):
    """Log Bayes factor of model a over model b, with its error.

    Parameters
    ----------
    result_a, result_b : `EvidenceResult` or `xarray.DataTree`
        Evidences of the two models on the same data (`evidence`), or results holding them.
    method : {"smc", "nested"}, optional
        Which stored evidence to take from a DataTree holding both.

    Returns
    -------
    `BayesFactor`
    """
    a, b = _as_evidence(result_a, method, "result_a"), _as_evidence(result_b, method, "result_b")
    if a.data_digest and b.data_digest and a.data_digest != b.data_digest:
        raise InferenceError("bayes_factor: the two evidences are of different data (datasets, fit masks or "
                             "counts differ): a Bayes factor compares two models of the same data")
    error = math.hypot(a.log_z_error, b.log_z_error)
    return BayesFactor(log_bf=a.log_z - b.log_z, log_bf_error=error, log_z_a=a.log_z, log_z_b=b.log_z)


@dataclass
class LikelihoodRatioTest:
    """Likelihood-ratio test of a null model nested in an alternative.

    ``ts = total_stat_null - total_stat_alt`` (``-2 ln`` of the likelihood ratio), ``df`` extra
    free parameters, ``p_value = chi2.sf(ts, df)`` (Wilks) and ``significance`` its two-sided
    Gaussian equivalent, ``norm.isf(p_value / 2)`` (gammapy's ``ts_to_sigma``: ``sqrt(ts)`` for
    one degree of freedom).
    """

    ts: float
    df: int
    p_value: float
    significance: float

    def __repr__(self):
        return (f"LikelihoodRatioTest(ts={self.ts:.3f}, df={self.df}, p_value={self.p_value:.3g}, "
                f"significance={self.significance:.2f} sigma)")


def _datasets_of(result):
    raw = (result.attrs or {}).get("bayesdl4_datasets")
    return None if raw is None else json.loads(raw)


def likelihood_ratio_test(fit_null, fit_alt, df=None):
    """Test statistic, p-value and significance of ``fit_alt`` against the nested ``fit_null``.

    Wilks' theorem holds for nested models whose extra parameters are not at a bound of their
    range under the null, with flat priors (a MAP fit with informative priors is not the maximum
    likelihood, and its ``total_stat`` is not the profile likelihood).

    Parameters
    ----------
    fit_null, fit_alt : `FitResult`
        MAP fits of the two models on the same datasets (`fit`).
    df : int, optional
        Extra free parameters of the alternative (default: the difference of the fits' numbers
        of free parameters).

    Returns
    -------
    `LikelihoodRatioTest`
    """
    for label, result in (("fit_null", fit_null), ("fit_alt", fit_alt)):
        if not hasattr(result, "total_stat"):
            raise InferenceError(f"likelihood_ratio_test: {label} must be a FitResult, got {type(result).__name__}")
        if not result.success:
            warnings.warn(f"likelihood_ratio_test: {label} did not converge ({result.message}); the test "
                          "statistic may be wrong", stacklevel=2)
    names_null, names_alt = _datasets_of(fit_null), _datasets_of(fit_alt)
    if names_null is not None and names_alt is not None and sorted(names_null) != sorted(names_alt):
        raise InferenceError(f"likelihood_ratio_test: the fits are of different datasets ({names_null} vs "
                             f"{names_alt}); a likelihood ratio compares two models of the same data")
    if df is None:
        df = len(fit_alt.names) - len(fit_null.names)
        if df <= 0:
            raise InferenceError(f"likelihood_ratio_test: the alternative has {len(fit_alt.names)} free parameters "
                                 f"and the null {len(fit_null.names)}; pass df= (the alternative must have more)")
    df = int(df)
    if df <= 0:
        raise InferenceError(f"likelihood_ratio_test: df must be a positive integer, got {df}")
    ts = float(fit_null.total_stat - fit_alt.total_stat)
    if ts < -1e-3:
        warnings.warn(f"likelihood_ratio_test: the alternative fits worse than the nested null (ts = {ts:.4g}): "
                      "a fit did not reach its optimum, or the models are not nested; ts set to 0", stacklevel=2)
    ts = max(ts, 0.0)
    log_p = float(stats.chi2.logsf(ts, df))
    if not math.isfinite(log_p):  # underflow: leading term of the upper incomplete gamma function
        x, a = 0.5 * ts, 0.5 * df
        log_p = (a - 1) * math.log(x) - x - math.lgamma(a)
    significance = float(-special.ndtri_exp(log_p - math.log(2.0)))  # exact where p underflows
    return LikelihoodRatioTest(ts=ts, df=df, p_value=math.exp(log_p), significance=max(significance, 0.0))


def joint_log_likelihood(tree, name="joint"):
    """A view of ``tree`` whose ``log_likelihood`` group holds one variable: every dataset's
    pointwise terms side by side along the dimension ``point`` (coordinate ``"<dataset>:<coord>"``).

    ``arviz.loo`` / ``arviz.compare`` need one variable; a result of `sample` holds one per
    dataset (``var_name=<dataset>`` compares on that dataset alone). Use this to compare on all
    datasets at once: ``arviz.compare({"pl": joint_log_likelihood(a), "lp": joint_log_likelihood(b)})``.
    """
    import xarray as xr

    if "log_likelihood" not in tree.children:
        raise InferenceError("the result has no 'log_likelihood' group: use a result of sample()")
    group = tree["log_likelihood"].to_dataset()
    pieces = []
    for var, values in group.data_vars.items():
        (dim,) = [d for d in values.dims if d not in ("chain", "draw")] or [None]
        if dim is None:
            values = values.expand_dims(point=[f"{var}"])
        else:
            labels = [f"{var}:{c}" for c in values[dim].values]
            values = values.rename({dim: "point"}).drop_vars("point", errors="ignore").assign_coords(point=labels)
        pieces.append(values)
    joint = xr.concat(pieces, dim="point").transpose("chain", "draw", "point")
    out = tree.copy()
    out["log_likelihood"] = xr.DataTree(xr.Dataset({name: joint}))
    return out
