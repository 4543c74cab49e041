"""Per-point statistics of flux points (-2 ln L terms), written once on PyTensor tensors.

gammapy 2.1's ``FluxPointsDataset`` stat types, point by point:

- ``chi2``: `~bayesdl4.stats.chi2` on ``dnde`` with ``dnde_err`` (or the mean of ``dnde_errn``
  and ``dnde_errp``); upper limits are left out.
- ``distrib``: measured points as `~bayesdl4.stats.chi2_asymmetric`, upper limits as
  `upper_limit_erfc` (gammapy's ``Chi2AsymmetricErrorFitStatistic``).
- ``profile``: the likelihood profile of each point (``stat_scan`` over ``norm_scan``),
  interpolated by `interpolate_profile` and evaluated by `stat_profile`.

The functions take tensors (and return a tensor, for a likelihood graph) or numpy arrays (and
return numpy, through the same graph compiled once and cached), as `bayesdl4.stats.cash`.

Profile interpolation
---------------------
Inside the scan, `stat_profile` is gammapy's interpolation exactly: ``scipy.interpolate.interp1d``
with ``kind="quadratic"`` (its default ``interp_scale="sqrt"``) is the quadratic interpolating
B-spline of ``|stat_scan - stat|``, which is C1 (continuous value and slope; the curvature jumps
at the knots, half-way between scan nodes). It is stored as piecewise polynomials and evaluated on
tensors, so NUTS sees the same smooth function.

Beyond the scan gammapy extends the first / last polynomial piece. That is kept wherever the end
piece is convex (every point of the real files in ``$GAMMAPY_DATA``: there the statistic equals
gammapy's at every norm). Where an end piece is concave, gammapy's extension turns over and runs to
minus infinity, an improper likelihood; here the lower end continues linearly (value and slope
kept, bounded on the physical range ``[0, norm_scan[0]]``) and the upper end continues as a parabola
with the same value and slope and the smallest positive curvature of the spline (C1 at the ends in
both cases). ``interp_scale="lin"`` (gammapy's piecewise linear option) is available but not C1.
"""

import functools
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from scipy.interpolate import PPoly, make_interp_spline

from ..compiled import compile_function
from ..errors import DataFormatError
from .fit_statistics import _NUMPY_MODE, ArrayOrTensor, _as_float_tensor, _dispatch

__all__ = ["ProfileSpline", "interpolate_profile", "stat_profile", "upper_limit_erfc"]

_ERFC_ONE = 0.15729920705028513  # erfc(1)
_SPLINE_DEGREE = {"sqrt": 2, "lin": 1}


# --------------------------------------------------------------------------- upper limits


def _log_erfc(x):
    """``log(erfc(x))``, through ``erfcx`` for x > 0 so that it keeps precision far in the tail."""
    positive = pt.gt(x, 0)
    x_pos = pt.switch(positive, x, 1.0)  # keep the unused branch finite for the gradient
    return pt.switch(positive, pt.log(pt.erfcx(x_pos)) - x_pos**2, pt.log(pt.erfc(x)))


def _upper_limit_graph(model, upper_limit):
    x = (upper_limit - model) / upper_limit
    return 2 * (_log_erfc(x) - np.log(_ERFC_ONE))


def upper_limit_erfc(model: ArrayOrTensor, upper_limit: ArrayOrTensor) -> ArrayOrTensor:
    r"""gammapy's ``distrib`` term of an upper limit: :math:`2 \ln[\mathrm{erfc}((u - m) / u) /
    \mathrm{erfc}(1)]`.

    ``u`` is the upper limit (it is also the width of the Gaussian, as in gammapy, eq. C7 of
    Mohanty et al. 2013), ``m`` the model (same unit). The term is 0 at ``m = 0``, grows with
    ``m`` and saturates at :math:`2 \ln(2 / \mathrm{erfc}(1)) = 5.09` for ``m >> u``; finite with a
    finite gradient for every ``m`` (including ``m < 0``). Log-likelihood = ``-0.5 * term``.
    """
    return _dispatch(_upper_limit_graph, (model, upper_limit))


# --------------------------------------------------------------------------- likelihood profiles


@dataclass(frozen=True)
class ProfileSpline:
    """Piecewise quadratic profiles of ``n`` points, ``m`` pieces each (arrays ``(n, m)``).

    On ``lo <= norm < hi`` the statistic is ``c0 + c1 t + c2 t**2`` with ``t = norm - origin``. The
    first and last pieces are the extensions below and above the scan (``lo = -inf`` / ``hi =
    inf``); unused pieces are empty (``lo = hi``).
    """

    origin: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    c2: np.ndarray

    @property
    def arrays(self):
        return (self.origin, self.lo, self.hi, self.c0, self.c1, self.c2)

    def __len__(self):
        return self.origin.shape[0]

    def __getitem__(self, index):
        """The profiles of a subset of points (``index``: integer array or boolean mask)."""
        return ProfileSpline(*(a[index] for a in self.arrays))


def _pieces(x, y, degree):
    """(origin, lo, hi, c0, c1, c2) of the interpolating spline of one profile, with extensions."""
    spline = PPoly.from_spline(make_interp_spline(x, y, k=degree))
    coef = np.zeros((3, spline.c.shape[1]))
    coef[3 - spline.c.shape[0] :] = spline.c  # highest power first, padded to quadratic
    keep = np.flatnonzero(np.diff(spline.x) > 0)
    lo, hi = spline.x[keep], spline.x[keep + 1]
    c2, c1, c0 = coef[:, keep]
    # below the scan: gammapy's extension of the first piece where it is convex, else linear
    first = (x[0], -np.inf, x[0], c0[0], c1[0], max(c2[0], 0.0))
    # above the scan: the last piece re-expanded about x[-1]
    t = x[-1] - lo[-1]
    value, slope = c0[-1] + t * (c1[-1] + t * c2[-1]), c1[-1] + 2 * t * c2[-1]
    curvature = c2[-1]
    if curvature <= 0:
        positive = c2[c2 > 0]
        curvature = positive.min() if positive.size else 1.0 / (x[-1] - x[0]) ** 2
    last = (x[-1], x[-1], np.inf, value, slope, curvature)
    inner = np.array([lo, lo, hi, c0, c1, c2])
    return np.column_stack([first, inner, last])


def interpolate_profile(norm_scan, stat_scan, interp_scale: str = "sqrt") -> ProfileSpline:
    """Smooth interpolation of likelihood profiles, as gammapy 2.1 inside the scan (module docstring).

    Parameters
    ----------
    norm_scan : array, shape ``(n_scan,)`` or ``(n_points, n_scan)``
        Norm values of the scan (strictly increasing), shared or per point.
    stat_scan : array, shape ``(n_points, n_scan)``
        Statistic profile per point, relative to its minimum (gammapy uses
        ``|stat_scan - stat|``); every value finite.
    interp_scale : {"sqrt", "lin"}
        gammapy's name: ``"sqrt"`` a quadratic spline (C1), ``"lin"`` piecewise linear.

    Returns
    -------
    `ProfileSpline`
    """
    if interp_scale not in _SPLINE_DEGREE:
        raise DataFormatError(
            f"interp_scale must be one of {list(_SPLINE_DEGREE)}, got {interp_scale!r}"
        )
    stat_scan = np.atleast_2d(np.asarray(stat_scan, dtype=float))
    norm_scan = np.broadcast_to(np.asarray(norm_scan, dtype=float), stat_scan.shape)
    degree = _SPLINE_DEGREE[interp_scale]
    rows = []
    for i, (x, y) in enumerate(zip(norm_scan, stat_scan, strict=True)):
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise DataFormatError(f"likelihood profile of point {i}: norm_scan / stat_scan not finite")
        if x.size <= degree or np.any(np.diff(x) <= 0):
            raise DataFormatError(
                f"likelihood profile of point {i}: norm_scan must hold more than {degree} strictly "
                f"increasing values, got {x.tolist()}"
            )
        rows.append(_pieces(x, y, degree))
    n_pieces = max(r.shape[1] for r in rows) if rows else 2
    arrays = np.zeros((6, len(rows), n_pieces))  # empty padding pieces: lo = hi = 0
    for i, r in enumerate(rows):
        arrays[:, i, : r.shape[1]] = r
    return ProfileSpline(*arrays)


def _profile_graph(norm, origin, lo, hi, c0, c1, c2):
    x = norm[:, None]
    t = x - origin
    inside = pt.ge(x, lo) & pt.lt(x, hi)
    return pt.switch(inside, c0 + t * (c1 + t * c2), 0.0).sum(axis=1)


@functools.lru_cache(maxsize=8)
def _profile_compiled():
    norm = pt.dvector("norm")
    arrays = [pt.dmatrix(n) for n in ("origin", "lo", "hi", "c0", "c1", "c2")]
    function = compile_function([norm, *arrays], [_profile_graph(norm, *arrays)], mode=_NUMPY_MODE,
                                disk_cache=False, trust_input=False)
    return lambda *args: function(*args)[0]


def stat_profile(norm: ArrayOrTensor, profile: ProfileSpline) -> ArrayOrTensor:
    """Interpolated likelihood profile of each point at ``norm`` (shape ``(n_points,)``).

    ``norm`` is the model over the reference flux of each point (``dnde_model / dnde_ref``).
    Log-likelihood = ``-0.5 * stat``. Continuous with a continuous gradient everywhere for
    ``interp_scale="sqrt"`` profiles.
    """
    if isinstance(norm, Variable):
        return _profile_graph(_as_float_tensor(norm), *(pt.as_tensor(a) for a in profile.arrays))
    norm = np.broadcast_to(np.asarray(norm, dtype=float), (len(profile),))
    return np.asarray(_profile_compiled()(np.ascontiguousarray(norm), *profile.arrays))
