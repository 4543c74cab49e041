"""Per-point flux point statistics: gammapy's formulas, smoothness of the profile interpolation."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from numpy.testing import assert_allclose
from scipy.interpolate import interp1d
from scipy.special import erfc

from bayesdl4.errors import DataFormatError
from bayesdl4.stats import interpolate_profile, stat_profile, upper_limit_erfc

# a likelihood profile as the HESS Crab file holds them: 11 log-spaced norms from 0.2 to 5
NORM_SCAN = np.geomspace(0.2, 5.0, 11)


def parabola_profile(best=1.1, sigma=0.2):
    return ((NORM_SCAN - best) / sigma) ** 2


def compiled_grad(fn):
    x = pt.dvector("x")
    out = fn(x).sum()
    return pytensor.function([x], [out, pytensor.grad(out, x)], mode="FAST_COMPILE")


def central_difference(f, x, h):
    return np.array([(f(np.array([v + h])) - f(np.array([v - h]))) / (2 * h) for v in x])


# ------------------------------------------------------------------------------- upper limits
def test_upper_limit_erfc_is_gammapys_formula():
    model = np.array([0.0, 0.3, 1.0, 2.0, 10.0, 1e3])
    ul = np.array([1.0, 1.0, 1.0, 2.0, 3.0, 1.0])
    expected = 2 * np.log(erfc((ul - model) / ul) / erfc(1.0))
    assert_allclose(upper_limit_erfc(model, ul), expected, rtol=1e-12, atol=1e-14)
    # saturates at 2 ln(2 / erfc(1)) far above the limit
    assert upper_limit_erfc(1e6, 1.0) == pytest.approx(2 * np.log(2 / erfc(1.0)), rel=1e-12)


def test_upper_limit_erfc_gradient_matches_finite_differences():
    # m < 0 puts (u - m) / u deep in erfc's tail (erfcx branch); large m saturates
    ul = 2.0
    fn = compiled_grad(lambda m: upper_limit_erfc(m, ul))
    model = np.array([-40.0, -5.0, -0.1, 0.0, 0.7, 2.0, 4.0, 30.0])
    _, grad = fn(model)
    numeric = central_difference(lambda m: fn(m)[0], model, 1e-6)
    assert np.all(np.isfinite(grad))
    assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    # analytic: d/dm 2 ln erfc((u - m) / u) = 4 exp(-x^2) / (sqrt(pi) u erfc(x))
    x = (ul - 0.7) / ul
    assert grad[4] == pytest.approx(4 * np.exp(-(x**2)) / (np.sqrt(np.pi) * ul * erfc(x)), rel=1e-12)


# ------------------------------------------------------------------------------- profiles
def test_profile_equals_gammapy_interpolation_for_convex_ends():
    """Convex end pieces: scipy's interp1d(kind="quadratic", extrapolate), what gammapy uses, everywhere."""
    stat = parabola_profile()
    spline = interpolate_profile(NORM_SCAN, stat[None])
    reference = interp1d(NORM_SCAN, stat, kind="quadratic", bounds_error=False, fill_value="extrapolate")
    norm = np.concatenate([np.linspace(-0.5, 9.0, 400), NORM_SCAN])
    got = [stat_profile(np.array([v]), spline)[0] for v in norm]
    assert_allclose(got, reference(norm), rtol=1e-12, atol=1e-10)


def test_profile_concave_upper_end_keeps_rising():
    """A profile whose last piece is concave: gammapy's extension turns over, this one rises."""
    stat = (np.log(NORM_SCAN) / 0.3) ** 2  # concave above e
    spline = interpolate_profile(NORM_SCAN, stat[None])
    reference = interp1d(NORM_SCAN, stat, kind="quadratic", bounds_error=False, fill_value="extrapolate")
    inside = np.linspace(NORM_SCAN[0], NORM_SCAN[-1], 300)
    assert_allclose([stat_profile(np.array([v]), spline)[0] for v in inside], reference(inside),
                    rtol=1e-12, atol=1e-10)
    far = np.array([20.0, 40.0])
    ours = np.array([stat_profile(np.array([v]), spline)[0] for v in far])
    assert ours[1] > ours[0] > reference(NORM_SCAN[-1])
    assert reference(40.0) < reference(20.0)  # gammapy's extrapolation turns over


def test_profile_is_c1_at_knots_and_scan_ends():
    stat = (np.log(NORM_SCAN) / 0.3) ** 2  # concave upper end: the modified extension
    spline = interpolate_profile(NORM_SCAN, stat[None])
    x = pt.dvector("x")
    value = stat_profile(x, spline)
    fn = pytensor.function([x], [value, pytensor.grad(value.sum(), x)], mode="FAST_COMPILE")
    knots = np.unique(np.concatenate([spline.lo[0], spline.hi[0]]))
    knots = knots[np.isfinite(knots)]
    eps = 1e-7
    for knot in knots:
        (left, right), (g_left, g_right) = fn(np.array([knot - eps, knot + eps]))
        assert right == pytest.approx(left, abs=1e-4)
        assert g_right == pytest.approx(g_left, rel=1e-4, abs=1e-4)
    # gradient = central differences inside, at both scan ends and beyond
    norm = np.array([0.05, NORM_SCAN[0], 0.33, 1.0, 2.0, NORM_SCAN[-1], 7.0])
    _, grad = fn(norm)
    numeric = np.array([(fn(np.array([v + 1e-6]))[0][0] - fn(np.array([v - 1e-6]))[0][0]) / 2e-6
                        for v in norm])
    assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


def test_profile_linear_extension_below_a_concave_first_piece():
    stat = 5 - (NORM_SCAN - 1.0) ** 2  # concave everywhere
    spline = interpolate_profile(NORM_SCAN, stat[None])
    below = np.array([stat_profile(np.array([v]), spline)[0] for v in (-0.2, 0.0, 0.1)])
    slope = np.diff(below) / np.diff([-0.2, 0.0, 0.1])
    assert slope[0] == pytest.approx(slope[1], rel=1e-10)  # linear below the scan


def test_profile_vectorised_per_point_scans():
    """Points with different scans in one call give each point its own profile."""
    scans = np.stack([NORM_SCAN, NORM_SCAN * 2])
    stats = np.stack([parabola_profile(1.0, 0.2), parabola_profile(3.0, 0.5)])
    spline = interpolate_profile(scans, stats)
    got = stat_profile(np.array([1.0, 3.0]), spline)
    for i in range(2):
        ref = interp1d(scans[i], stats[i], kind="quadratic")
        assert got[i] == pytest.approx(float(ref([1.0, 3.0][i])), abs=1e-12)
    # the subset of a spline is the profile of that point
    assert stat_profile(np.array([3.0]), spline[[1]])[0] == pytest.approx(got[1], abs=1e-14)


def test_profile_linear_interp_scale():
    stat = parabola_profile()
    spline = interpolate_profile(NORM_SCAN, stat[None], interp_scale="lin")
    mid = 0.5 * (NORM_SCAN[4] + NORM_SCAN[5])
    assert stat_profile(np.array([mid]), spline)[0] == pytest.approx(0.5 * (stat[4] + stat[5]), rel=1e-12)


def test_profile_bad_input():
    with pytest.raises(DataFormatError, match="interp_scale"):
        interpolate_profile(NORM_SCAN, parabola_profile()[None], interp_scale="cubic")
    with pytest.raises(DataFormatError, match="increasing"):
        interpolate_profile(NORM_SCAN[::-1], parabola_profile()[None])
    bad = parabola_profile()
    bad[3] = np.nan
    with pytest.raises(DataFormatError, match="not finite"):
        interpolate_profile(NORM_SCAN, bad[None])
