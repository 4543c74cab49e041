import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from numpy.testing import assert_allclose
from pytensor.compile.mode import Mode
from scipy.optimize import minimize_scalar

from bayesdl4.stats import (
    TRUNCATION_VALUE,
    cash,
    chi2,
    chi2_asymmetric,
    wstat,
    wstat_profile_background,
)

# Every combination of the zero-count / zero-alpha / tiny-signal edge cases, as columns.
EDGE = np.array(list(itertools.product([0.0, 3.0], [0.0, 5.0], [0.0, 0.2], [0.0, 1e-30, 2.5]))).T


def random_onoff(seed=1, size=2000):
    rng = np.random.default_rng(seed)
    n_on = rng.poisson(rng.uniform(0, 15, size)).astype(float)
    n_off = rng.poisson(rng.uniform(0, 30, size)).astype(float)
    alpha = rng.uniform(0.02, 1.5, size)
    alpha[::17] = 0.0
    mu_sig = rng.uniform(0, 12, size)
    mu_sig[::13] = 0.0
    return n_on, n_off, alpha, mu_sig


@pytest.fixture(scope="module", params=["CVM", "no_rewrites"])
def wstat_grad(request):
    """Compiled d(sum wstat)/d(mu_sig) (bins are independent, so this is the per-bin derivative).

    Without graph rewrites, ``switch(cond, 0, g) / x`` stays NaN at ``x = 0``: that mode checks the
    log/sqrt/division guards themselves, not pytensor's switch-sinking rewrites.
    """
    mode = Mode(linker="py", optimizer=None) if request.param == "no_rewrites" else request.param
    n_on, n_off, alpha, mu_sig = (pt.dvector(n) for n in ("n_on", "n_off", "alpha", "mu_sig"))
    grad = pytensor.grad(wstat(n_on, n_off, alpha, mu_sig).sum(), mu_sig)
    return pytensor.function([n_on, n_off, alpha, mu_sig], grad, mode=mode)


# --------------------------------------------------------------------------- gammapy oracle


@pytest.mark.oracle
def test_cash_matches_gammapy():
    gstats = pytest.importorskip("gammapy.stats")
    rng = np.random.default_rng(0)
    n_on = rng.poisson(rng.uniform(0, 20, 3000)).astype(float)
    mu_on = rng.uniform(0, 20, 3000)
    edge_n = np.array([0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 3.0])
    edge_mu = np.array([0.0, 1e-30, 2.5, 0.0, 1e-30, 1e-25, 2.5])
    for n, mu in ((n_on, mu_on), (edge_n, edge_mu)):
        assert_allclose(cash(n, mu), gstats.cash(n, mu), rtol=1e-6, atol=1e-12)


@pytest.mark.oracle
@pytest.mark.parametrize("args", [EDGE, random_onoff()], ids=["edge_cases", "random"])
def test_wstat_matches_gammapy(args):
    gstats = pytest.importorskip("gammapy.stats")
    with np.errstate(divide="ignore", invalid="ignore"):
        # gammapy's WStatFitStatistic applies nan_to_num to the per-bin array
        expected = np.nan_to_num(gstats.wstat(*args))
        expected_mu_bkg = gstats.get_wstat_mu_bkg(*args)
    assert_allclose(wstat(*args), expected, rtol=1e-6, atol=1e-12)
    mu_bkg = wstat_profile_background(*args)
    alpha = args[2]
    assert_allclose(mu_bkg[alpha > 0], expected_mu_bkg[alpha > 0], rtol=1e-6, atol=1e-12)
    # gammapy's mu_bkg is NaN at alpha = 0; its npred_background = nan_to_num(alpha * mu_bkg) = 0
    assert np.all(np.isnan(expected_mu_bkg[alpha == 0]))
    assert np.all(mu_bkg[alpha == 0] == 0)


# --------------------------------------------------------------------------- analytic checks


def test_cash_analytic_values():
    # 2 (mu - n ln mu): n = 0 -> 2 mu; floored mu -> 2 (1e-25 - n ln 1e-25)
    stat = cash(np.array([0.0, 3.0, 3.0, 3.0, 0.0]), np.array([2.0, 2.0, 0.0, -1.0, 0.0]))
    expected = [
        4.0,
        2 * (2 - 3 * np.log(2.0)),
        2 * (1e-25 - 3 * np.log(1e-25)),
        2 * (1e-25 - 3 * np.log(1e-25)),
        2e-25,
    ]
    assert_allclose(stat, expected, rtol=1e-14)
    assert_allclose(cash(3, 2.0, truncation_value=0.5), 2 * (2 - 3 * np.log(2.0)), rtol=1e-14)
    assert_allclose(cash(3, 0.1, truncation_value=0.5), 2 * (0.5 - 3 * np.log(0.5)), rtol=1e-14)
    assert TRUNCATION_VALUE == 1e-25
    with pytest.raises(ValueError, match="truncation_value"):
        cash(3, 2.0, truncation_value=0.0)


def test_wstat_noff_zero_negative_c():
    # n_off = 0 and C = alpha n_on - (1 + alpha) mu_sig < 0: mu_bkg = 0 and WStat is Cash on mu_sig
    n_on, alpha, mu_sig = (
        np.array([3.0, 0.0, 7.0]),
        np.array([0.2, 0.5, 1.0]),
        np.array([2.5, 1.0, 4.0]),
    )
    n_off = np.zeros(3)
    assert np.all(alpha * n_on - (1 + alpha) * mu_sig < 0)
    assert np.all(wstat_profile_background(n_on, n_off, alpha, mu_sig) == 0)
    gof = 2 * np.where(n_on > 0, n_on * (np.log(np.where(n_on > 0, n_on, 1)) - 1), 0)
    expected = 2 * (mu_sig - n_on * np.log(mu_sig)) + gof
    assert_allclose(wstat(n_on, n_off, alpha, mu_sig), expected, rtol=1e-13)


@pytest.mark.parametrize(
    "n_on, n_off, alpha, mu_sig",
    [
        (3.0, 5.0, 0.2, 2.5),  # C < 0
        (12.0, 40.0, 0.2, 1.0),  # C > 0
        (0.0, 5.0, 0.3, 2.0),  # n_on = 0
        (4.0, 0.0, 0.5, 0.5),  # n_off = 0, C > 0: mu_bkg = C / (alpha (alpha + 1))
        (3.0, 5.0, 0.2, 0.0),  # no signal
    ],
)
def test_profiled_background_maximises_likelihood(n_on, n_off, alpha, mu_sig):
    def minus_two_log_l(mu_bkg):
        mu_on = mu_sig + alpha * mu_bkg
        return 2 * (mu_on - n_on * np.log(mu_on) + mu_bkg - n_off * np.log(mu_bkg))

    best = minimize_scalar(
        minus_two_log_l, bounds=(1e-12, 200.0), method="bounded", options={"xatol": 1e-12}
    )
    mu_bkg = wstat_profile_background(n_on, n_off, alpha, mu_sig)
    assert_allclose(mu_bkg, best.x, rtol=1e-6)
    assert minus_two_log_l(mu_bkg) <= best.fun + 1e-12

    # With the goodness-of-fit terms WStat is the Poisson deviance of ON and OFF against the
    # profiled means: 2 sum (mu - n + n ln(n / mu)).
    mu_on = mu_sig + alpha * mu_bkg

    def deviance(n, mu):
        return 2 * (mu - n + (n * np.log(n / mu) if n > 0 else 0.0))

    assert_allclose(
        wstat(n_on, n_off, alpha, mu_sig),
        deviance(n_on, mu_on) + deviance(n_off, mu_bkg),
        rtol=1e-10,
        atol=1e-13,
    )


def test_wstat_alpha_zero_is_zero():
    stat = wstat(
        np.array([0.0, 3.0, 10.0]), np.array([5.0, 0.0, 2.0]), 0.0, np.array([1.0, 0.0, 3.0])
    )
    assert np.all(stat == 0)


# --------------------------------------------------------------------------- gradients


def _finite_difference(f, x, h):
    """Central difference; second-order forward difference where x - h would leave mu >= 0."""
    central = (f(x + h) - f(x - h)) / (2 * h)
    forward = (-3 * f(x) + 4 * f(x + h) - f(x + 2 * h)) / (2 * h)
    return np.where(x > h, central, forward)


def test_wstat_gradient_edge_cases(wstat_grad):
    n_on, n_off, alpha, mu_sig = EDGE
    grad = wstat_grad(*EDGE)
    assert np.all(np.isfinite(grad))

    positive = mu_sig > 0
    h = 1e-6
    fd = _finite_difference(lambda m: wstat(n_on, n_off, alpha, m), mu_sig, h)
    assert_allclose(grad[positive], fd[positive], rtol=1e-5, atol=1e-8)
    # alpha = 0 bins do not depend on mu_sig (gammapy sets them to 0)
    assert np.all(grad[alpha == 0] == 0)


def test_wstat_gradient_random_and_kinks(wstat_grad):
    args = random_onoff(seed=2, size=300)
    n_on, n_off, alpha, mu_sig = args
    grad = wstat_grad(*args)
    assert np.all(np.isfinite(grad))
    fd = _finite_difference(lambda m: wstat(n_on, n_off, alpha, m), mu_sig, 1e-6)
    # away from the n_off = 0 kink at C = 0, where the derivative jumps
    c = alpha * (n_on + n_off) - (1 + alpha) * mu_sig
    smooth = (mu_sig > 0) & ((n_off > 0) | (np.abs(c) > 1e-3))
    assert_allclose(grad[smooth], fd[smooth], rtol=1e-5, atol=1e-8)

    # exactly on the kink (n_off = 0, C = 0) and at mu_sig = 0 the gradient is still finite
    n_on, alpha = np.array([3.0, 0.0, 0.0]), np.array([0.2, 0.2, 0.5])
    n_off, mu_sig = np.zeros(3), np.array([0.5, 0.0, 0.0])
    assert np.all(np.isfinite(wstat_grad(n_on, n_off, alpha, mu_sig)))


def test_cash_sum_gradient():
    n_on_t, mu_t = pt.dvector("n_on"), pt.dvector("mu_on")
    total = cash(n_on_t, mu_t).sum()
    grad_fn = pytensor.function([n_on_t, mu_t], pytensor.grad(total, mu_t), mode="CVM")
    rng = np.random.default_rng(3)
    n_on = rng.poisson(4.0, 200).astype(float)
    mu = rng.uniform(0.05, 10.0, 200)
    h = 1e-6
    fd = np.array(
        [
            (cash(n_on, mu + h * e).sum() - cash(n_on, mu - h * e).sum()) / (2 * h)
            for e in np.eye(mu.size)[:20]
        ]
    )
    grad = grad_fn(n_on, mu)
    assert_allclose(grad[:20], fd, rtol=1e-5)
    assert_allclose(grad, 2 * (1 - n_on / mu), rtol=1e-12)
    # finite at and below the floor (flat there), finite just above it
    grad_edge = grad_fn(np.array([3.0, 3.0, 0.0, 3.0]), np.array([0.0, -1.0, 0.0, 1e-20]))
    assert np.all(np.isfinite(grad_edge))
    assert_allclose(grad_edge[:3], 0.0)


# --------------------------------------------------------------------------- chi2


def test_chi2_values():
    data, model, error = (
        np.array([1.0, 2.0, 3.0]),
        np.array([1.5, 2.0, 1.0]),
        np.array([0.5, 1.0, 4.0]),
    )
    assert_allclose(chi2(data, model, error), [1.0, 0.0, 0.25], rtol=1e-14)


def test_chi2_asymmetric_picks_side():
    data = np.array([1.0, 1.0, 1.0])
    model = np.array([0.5, 2.0, 1.0])  # below, above, equal
    errn, errp = np.array([0.25, 0.25, 0.25]), np.array([2.0, 2.0, 2.0])
    # model below data -> errn; model above data -> errp (gammapy: errp where model >= data)
    assert_allclose(chi2_asymmetric(data, model, errn, errp), [4.0, 0.25, 0.0], rtol=1e-14)


# --------------------------------------------------------------------------- dispatch


def test_tensor_and_numpy_inputs():
    mu = pt.dvector("mu")
    out = wstat(np.array([3, 0]), np.array([5, 2]), 0.2, mu)  # int counts, scalar alpha
    assert isinstance(out, pt.TensorVariable)
    fn = pytensor.function([mu], out, mode="CVM")
    assert_allclose(fn(np.array([2.5, 1.0])), wstat([3, 0], [5, 2], 0.2, [2.5, 1.0]), rtol=1e-14)

    counts = pt.as_tensor(np.array([3, 0], dtype="int64"))
    assert counts.dtype == "int64"
    cash_fn = pytensor.function([], cash(counts, pt.as_tensor(np.array([2.0, 2.0]))), mode="CVM")
    assert_allclose(cash_fn(), cash([3, 0], [2.0, 2.0]), rtol=1e-14)

    grid = wstat(np.full((2, 3), 3.0), 5.0, 0.2, np.linspace(0.5, 3, 6).reshape(2, 3))
    assert isinstance(grid, np.ndarray) and grid.shape == (2, 3)
    assert_allclose(grid.ravel(), wstat(3.0, 5.0, 0.2, np.linspace(0.5, 3, 6)), rtol=1e-14)
    assert isinstance(cash(3, 2.0), float)
    assert cash(np.array([]), np.array([])).shape == (0,)
