"""Per-bin fit statistics (-2 ln L terms), written once on PyTensor tensors.

Every function takes either tensors (and returns a tensor, to be summed into a likelihood
graph) or numpy arrays / scalars (and returns numpy, evaluated through the same graph compiled
once per function and cached). Inputs broadcast against each other like numpy arrays.

Conventions follow gammapy 2.1 (``gammapy.stats.fit_statistics``): each function returns a
statistic ``stat`` per bin such that the log-likelihood is ``-0.5 * stat.sum()`` (``wstat``
includes gammapy's goodness-of-fit terms, which do not depend on the model).

Examples
--------
>>> import numpy as np
>>> cash(np.array([0.0, 3.0]), np.array([2.0, 2.0]))  # doctest: +SKIP
array([4.        , -0.15888308])
"""

import functools

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from ..compiled import compile_function

__all__ = [
    "TRUNCATION_VALUE",
    "cash",
    "chi2",
    "chi2_asymmetric",
    "wstat",
    "wstat_profile_background",
]

#: gammapy's floor on predicted counts in ``cash`` (``get_fit_statistics_compiled()["TRUNCATION_VALUE"]``).
TRUNCATION_VALUE = 1e-25

# Elementwise graphs on a handful of vectors: the C backend compiles them in well under a second,
# Numba (pytensor 3's default) takes several seconds per function on first call.
_NUMPY_MODE = "CVM"

ArrayOrTensor = np.ndarray | float | Variable


def _as_float_tensor(x):
    if isinstance(x, Variable):
        return x if x.dtype.startswith("float") else pt.cast(x, "float64")
    return pt.as_tensor_variable(np.asarray(x, dtype=np.float64))


@functools.lru_cache(maxsize=64)
def _compiled(build, n_args, static):
    inputs = [pt.dvector(f"x{i}") for i in range(n_args)]
    function = compile_function(inputs, [build(*inputs, *static)], mode=_NUMPY_MODE, disk_cache=False,
                                trust_input=False)
    return lambda *args: function(*args)[0]


def _dispatch(build, args, static=()):
    """Build the graph on tensors, or evaluate its cached compiled form on numpy arrays."""
    if any(isinstance(a, Variable) for a in args):
        return build(*(_as_float_tensor(a) for a in args), *static)
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    shape = arrays[0].shape
    out = _compiled(build, len(args), tuple(static))(*(a.ravel() for a in arrays))
    out = np.asarray(out).reshape(shape)
    return out[()] if out.ndim == 0 else out


def _guarded_log(x, coefficient):
    """``log(x)`` where ``coefficient != 0``; ``log(x + 1)`` elsewhere, so that ``coefficient * log``
    is 0 with a finite gradient even where ``x == 0``."""
    return pt.log(x + pt.eq(coefficient, 0))


# --------------------------------------------------------------------------- Cash


def _cash_graph(n_on, mu_on, truncation_value):
    # Both branches are finite, so the gradient is finite everywhere (0 below the floor).
    mu = pt.switch(pt.le(mu_on, truncation_value), truncation_value, mu_on)
    return 2 * (mu - n_on * pt.log(mu))


def cash(
    n_on: ArrayOrTensor, mu_on: ArrayOrTensor, truncation_value: float = TRUNCATION_VALUE
) -> ArrayOrTensor:
    r"""Cash statistic per bin, :math:`2 (\mu - n \ln \mu)`, for Poisson counts.

    Same numbers as gammapy's ``cash``: ``mu_on`` is floored at ``truncation_value`` (so a
    bin with ``mu_on = 0`` and ``n_on > 0`` costs ``-2 n_on ln(1e-25)``, finite), and the
    ``n_on ln mu_on`` term is 0 where ``n_on = 0``. Log-likelihood = ``-0.5 * cash``.

    Parameters
    ----------
    n_on : array or tensor
        Observed counts.
    mu_on : array or tensor
        Predicted counts (signal + background).
    truncation_value : float
        Floor on ``mu_on``; gammapy's default 1e-25.

    Returns
    -------
    stat : array or tensor, broadcast shape of the inputs
    """
    if not truncation_value > 0:
        raise ValueError(f"cash: truncation_value must be positive, got {truncation_value}")
    return _dispatch(_cash_graph, (n_on, mu_on), (float(truncation_value),))


# --------------------------------------------------------------------------- WStat


def _mu_bkg_graph(n_on, n_off, alpha, mu_sig):
    """Profiled OFF mean for alpha > 0 (alpha is made safe by the caller)."""
    c = alpha * (n_on + n_off) - (1 + alpha) * mu_sig
    d2 = c**2 + 4 * alpha * (alpha + 1) * n_off * mu_sig
    # d = 0 only where c = 0 and n_off * mu_sig = 0: keep sqrt away from 0 so the gradient stays
    # finite there (it takes the one-sided value).
    d_is_zero = pt.eq(d2, 0)
    d = pt.switch(d_is_zero, 0.0, pt.sqrt(pt.switch(d_is_zero, 1.0, d2)))
    # For c < 0, (c + d) cancels; the algebraically equal 4 a (a+1) n_off mu_sig / (d - c) does not.
    c_negative = pt.lt(c, 0)
    mu_bkg_pos = (c + d) / (2 * alpha * (alpha + 1))
    mu_bkg_neg = 2 * n_off * mu_sig / pt.switch(c_negative, d - c, 1.0)
    return pt.switch(c_negative, mu_bkg_neg, mu_bkg_pos)


def _wstat_profile_background_graph(n_on, n_off, alpha, mu_sig):
    alpha_is_zero = pt.eq(alpha, 0)
    alpha_safe = pt.switch(alpha_is_zero, 1.0, alpha)
    mu_bkg = _mu_bkg_graph(n_on, n_off, alpha_safe, mu_sig)
    return pt.switch(alpha_is_zero, 0.0, mu_bkg)


def _wstat_graph(n_on, n_off, alpha, mu_sig):
    alpha_is_zero = pt.eq(alpha, 0)
    alpha_safe = pt.switch(alpha_is_zero, 1.0, alpha)
    mu_bkg = _mu_bkg_graph(n_on, n_off, alpha_safe, mu_sig)

    term1 = mu_sig + (1 + alpha_safe) * mu_bkg
    term2 = -n_on * _guarded_log(mu_sig + alpha_safe * mu_bkg, n_on)
    term3 = -n_off * _guarded_log(mu_bkg, n_off)
    gof_on = -n_on * (1 - _guarded_log(n_on, n_on))
    gof_off = -n_off * (1 - _guarded_log(n_off, n_off))
    stat = 2 * (term1 + term2 + term3) + 2 * (gof_on + gof_off)
    # gammapy's WStatFitStatistic applies nan_to_num: alpha = 0 always gives 0/0 there; other NaNs
    # arise only outside the domain (e.g. mu_sig < 0).
    return pt.switch(alpha_is_zero | pt.isnan(stat), 0.0, stat)


def wstat(
    n_on: ArrayOrTensor, n_off: ArrayOrTensor, alpha: ArrayOrTensor, mu_sig: ArrayOrTensor
) -> ArrayOrTensor:
    r"""WStat per bin: Poisson ON and OFF counts with the background mean profiled out.

    Same numbers as gammapy 2.1's ``WStatFitStatistic.stat_array_dataset``, i.e.
    ``nan_to_num(wstat(n_on, n_off, alpha, mu_sig))`` with the goodness-of-fit terms
    :math:`2 [n_{on} (\ln n_{on} - 1) + n_{off} (\ln n_{off} - 1)]` included:

    .. math::
        W = 2 [\mu_{sig} + (1 + \alpha) \mu_{bkg} - n_{on} \ln(\mu_{sig} + \alpha \mu_{bkg})
            - n_{off} \ln \mu_{bkg}] + \mathrm{gof}

    with :math:`\mu_{bkg}` from `wstat_profile_background`. Terms with a zero count are 0;
    bins with ``alpha = 0`` give 0. Log-likelihood = ``-0.5 * wstat``.

    The gradient w.r.t. ``mu_sig`` is finite for every ``mu_sig >= 0`` with non-negative counts
    (at the kink ``alpha n_on = (1 + alpha) mu_sig`` with ``n_off = 0`` it is one-sided).

    Parameters
    ----------
    n_on : array or tensor
        Counts in the ON region.
    n_off : array or tensor
        Counts in the OFF region.
    alpha : array or tensor
        ON/OFF exposure ratio (acceptance_on / acceptance_off).
    mu_sig : array or tensor
        Predicted signal counts in the ON region.

    Returns
    -------
    stat : array or tensor, broadcast shape of the inputs
    """
    return _dispatch(_wstat_graph, (n_on, n_off, alpha, mu_sig))


def wstat_profile_background(
    n_on: ArrayOrTensor, n_off: ArrayOrTensor, alpha: ArrayOrTensor, mu_sig: ArrayOrTensor
) -> ArrayOrTensor:
    r"""Profiled (maximum-likelihood) mean OFF counts :math:`\mu_{bkg}` given ``mu_sig``.

    gammapy's ``get_wstat_mu_bkg``: with :math:`C = \alpha (n_{on} + n_{off}) - (1 + \alpha)
    \mu_{sig}` and :math:`D = \sqrt{C^2 + 4 \alpha (\alpha + 1) n_{off} \mu_{sig}}`,
    :math:`\mu_{bkg} = (C + D) / (2 \alpha (\alpha + 1))`, evaluated as
    :math:`2 n_{off} \mu_{sig} / (D - C)` where :math:`C < 0` (same value, no cancellation).
    The predicted background in the ON region is ``alpha * mu_bkg``.

    Where ``alpha = 0`` gammapy returns NaN (0/0); this returns 0, so that ``alpha * mu_bkg``
    equals gammapy's ``npred_background`` (which applies ``nan_to_num``).

    Parameters
    ----------
    n_on, n_off, alpha, mu_sig : array or tensor
        As in `wstat`.

    Returns
    -------
    mu_bkg : array or tensor, broadcast shape of the inputs
        Expected counts in the OFF region.
    """
    return _dispatch(_wstat_profile_background_graph, (n_on, n_off, alpha, mu_sig))


# --------------------------------------------------------------------------- chi2


def _chi2_graph(data, model, error):
    return ((data - model) / error) ** 2


def _chi2_asymmetric_graph(data, model, errn, errp):
    return ((data - model) / pt.switch(pt.lt(model, data), errn, errp)) ** 2


def chi2(data: ArrayOrTensor, model: ArrayOrTensor, error: ArrayOrTensor) -> ArrayOrTensor:
    r"""Chi-square per point, :math:`((d - m) / \sigma)^2` (gammapy's ``Chi2FitStatistic``).

    Log-likelihood = ``-0.5 * chi2`` (up to the model-independent normalisation). Points with a
    NaN value or error must be masked by the caller.
    """
    return _dispatch(_chi2_graph, (data, model, error))


def chi2_asymmetric(
    data: ArrayOrTensor, model: ArrayOrTensor, errn: ArrayOrTensor, errp: ArrayOrTensor
) -> ArrayOrTensor:
    r"""Chi-square per point with asymmetric errors (gammapy's ``Chi2AsymmetricErrorFitStatistic``).

    The scale is ``errn`` where the model lies below the data (``model < data``) and ``errp``
    otherwise; ``((data - model) / scale) ** 2``. Upper limits and NaN points are not handled
    here: mask them (or treat them separately) before calling. Log-likelihood = ``-0.5 * stat``.
    """
    return _dispatch(_chi2_asymmetric_graph, (data, model, errn, errp))
