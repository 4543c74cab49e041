"""Priors (`bayesdl4.models.priors`): densities, CDFs and inverse CDFs against scipy, their PyMC
variables (density, transform, draws), gradients, invalid parameters, gammapy 2.1's priors."""

import math

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from astropy import units as u
from numpy.testing import assert_allclose
from scipy import stats

from bayesdl4.errors import ModelError
from bayesdl4.models.prior_yaml import prior_from_dict
from bayesdl4.models.priors import (
    FlatPrior,
    GaussianPrior,
    GeneralizedGaussianPrior,
    HalfNormalPrior,
    LogNormalPrior,
    LogUniformPrior,
    Restricted,
    TruncatedNormalPrior,
    UniformPrior,
    restrict,
)

SQRT2 = math.sqrt(2.0)


class _TruncatedLogNormal:
    """scipy's log-normal cut at ``upper`` and renormalised (reference for a `Restricted` prior)."""

    def __init__(self, s, scale, upper):
        self.base, self.upper = stats.lognorm(s=s, scale=scale), upper
        self.log_mass = self.base.logcdf(upper)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        return np.where(x <= self.upper, self.base.logpdf(x) - self.log_mass, -np.inf)

    def cdf(self, x):
        return self.base.cdf(np.minimum(x, self.upper)) / math.exp(self.log_mass)


# name -> (prior, independent scipy reference, points inside the support, expected support, scale)
CASES = {
    "uniform": (UniformPrior(1.0, 4.0), stats.uniform(1.0, 3.0), [1.2, 2.5, 3.9], (1.0, 4.0), 1.0),
    "loguniform": (
        LogUniformPrior(1e-13, 1e-10),
        stats.loguniform(1e-13, 1e-10),
        [2e-13, 5e-12, 9e-11],
        (1e-13, 1e-10),
        1e-12,
    ),
    "gaussian": (
        GaussianPrior(2.0, 0.3),
        stats.norm(2.0, 0.3),
        [1.1, 2.0, 2.7],
        (-np.inf, np.inf),
        1.0,
    ),
    "generalized-gaussian": (
        GeneralizedGaussianPrior(1.0, 0.5, eta=0.8),
        stats.gennorm(1 / 0.8, loc=1.0, scale=0.5 * SQRT2),
        [-0.3, 0.8, 2.4],
        (-np.inf, np.inf),
        1.0,
    ),
    "generalized-gaussian-laplace": (
        GeneralizedGaussianPrior(-3.0, 2.0, eta=1.0),
        stats.laplace(loc=-3.0, scale=2.0 * SQRT2),
        [-9.0, -2.5, 1.0],
        (-np.inf, np.inf),
        1.0,
    ),
    "halfnormal": (
        HalfNormalPrior(0.2),
        stats.halfnorm(scale=0.2),
        [0.01, 0.2, 0.55],
        (0.0, np.inf),
        0.1,
    ),
    "lognormal": (
        LogNormalPrior(0.1, 0.5),
        stats.lognorm(s=0.5, scale=math.exp(0.1)),
        [0.3, 1.1, 4.0],
        (0.0, np.inf),
        1.0,
    ),
    "truncated-normal": (
        TruncatedNormalPrior(0.0, 1.0, -0.5, np.inf),
        stats.truncnorm(-0.5, np.inf),
        [-0.45, 0.3, 2.5],
        (-0.5, np.inf),
        1.0,
    ),
    "truncated-normal-far-tail": (  # the mirrored mass: ndtr(7) - ndtr(5) loses digits
        TruncatedNormalPrior(10.0, 2.0, 20.0, 24.0),
        stats.truncnorm(5.0, 7.0, loc=10.0, scale=2.0),
        [20.1, 21.0, 23.0],
        (20.0, 24.0),
        10.0,
    ),
    "restricted-uniform": (
        restrict(UniformPrior(0.0, 10.0), 1.0, 5.0),
        stats.uniform(1.0, 4.0),
        [1.5, 3.0, 4.9],
        (1.0, 5.0),
        1.0,
    ),
    "restricted-gaussian": (
        restrict(GaussianPrior(0.0, 1.0), 0.0, 2.0),
        stats.truncnorm(0.0, 2.0),
        [0.1, 1.0, 1.9],
        (0.0, 2.0),
        1.0,
    ),
    "restricted-loguniform": (
        restrict(LogUniformPrior(1e-13, 1e-10), 1e-12, np.nan),
        stats.loguniform(1e-12, 1e-10),
        [2e-12, 3e-11, 9e-11],
        (1e-12, 1e-10),
        1e-11,
    ),
    "restricted-lognormal": (
        restrict(LogNormalPrior(0.0, 1.0), np.nan, 3.0),
        _TruncatedLogNormal(1.0, 1.0, 3.0),
        [0.2, 1.0, 2.9],
        (0.0, 3.0),
        1.0,
    ),
}


@pytest.fixture(params=list(CASES))
def case(request):
    return CASES[request.param]


def _compiled_logpdf(prior):
    x = pt.dvector("x")
    return pytensor.function([x], prior.logpdf_tensor(x))


def test_restrict_makes_the_restricted_cases():
    restricted = [v[0] for k, v in CASES.items() if k.startswith("restricted")]
    assert all(isinstance(p, Restricted) for p in restricted)


def test_logpdf_tensor_and_numpy_equal_scipy(case):
    prior, reference, points, _, _ = case
    expected = reference.logpdf(np.array(points))
    assert_allclose(_compiled_logpdf(prior)(np.array(points)), expected, rtol=1e-12)
    assert_allclose(prior.logpdf(points), expected, rtol=1e-12)


def test_cdf_equals_scipy_and_ppf_inverts_it(case):
    prior, reference, points, _, _ = case
    points = np.array(points)
    assert_allclose(prior.cdf(points), reference.cdf(points), rtol=1e-10, atol=1e-14)
    assert_allclose(prior.ppf(prior.cdf(points)), points, rtol=1e-9)
    q = np.array([0.01, 0.5, 0.99])
    assert_allclose(prior.cdf(prior.ppf(q)), q, rtol=1e-9)


def test_support_and_density_outside_it(case):
    prior, _, _, support, _ = case
    assert prior.support == support
    lo, hi = support
    outside = [
        x for x in (lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)) if np.isfinite(x)
    ]
    if outside:
        assert np.all(prior.logpdf(outside) == -np.inf)
    assert_allclose(prior.ppf([0.0, 1.0]), support)


def test_restricted_density_integrates_to_one():
    """The renormalisation: the density of the restricted prior integrates to 1 on its support."""
    prior = restrict(GeneralizedGaussianPrior(1.0, 0.5, eta=0.8), -0.5, 1.5)
    x = np.linspace(-0.5, 1.5, 200001)
    assert_allclose(np.trapezoid(np.exp(prior.logpdf(x)), x), 1.0, rtol=1e-8)


def test_gradient_equals_finite_differences(case):
    prior, reference, points, _, _ = case
    x = pt.dvector("x")
    grad = pytensor.function([x], pytensor.grad(prior.logpdf_tensor(x).sum(), x))
    points = np.array(points)
    step = 1e-6 * np.abs(points)
    numeric = (reference.logpdf(points + step) - reference.logpdf(points - step)) / (2 * step)
    assert_allclose(grad(points), numeric, rtol=1e-6, atol=1e-6 / np.abs(points).max())


def _variable_model(prior, scale, initval=None):
    with pm.Model() as model:
        prior.variable("x", scale=scale, initval=initval)
    return model


def _point(model, physical, scale):
    """The model's point (unconstrained value) where the variable's physical value is ``physical``."""
    rv = model["x__scaled"]
    transform = model.rvs_to_transforms[rv]
    raw = np.asarray(physical / scale)
    return {
        model.rvs_to_values[rv].name: transform.forward(raw).eval()
        if transform is not None
        else raw
    }


def _physical_start(model, scale):
    rv = model["x__scaled"]
    transform = model.rvs_to_transforms[rv]
    value = model.initial_point()[model.rvs_to_values[rv].name]
    return float(transform.backward(value).eval() if transform is not None else value) * scale


def test_variable_density_is_the_prior_of_the_physical_value_plus_log_scale(case):
    prior, _, points, _, scale = case
    model = _variable_model(prior, scale)
    logp = model.compile_logp(jacobian=False)
    for x in points:
        assert_allclose(
            logp(_point(model, x, scale)), prior.logpdf(x) + math.log(scale), rtol=1e-10
        )


def test_variable_transform_maps_the_real_line_onto_the_support(case):
    prior, _, _, (lo, hi), scale = case
    model = _variable_model(prior, scale)
    assert all(np.isfinite(v).all() for v in model.initial_point().values())
    transform = model.rvs_to_transforms[model["x__scaled"]]
    if np.isfinite(lo) or np.isfinite(hi):
        assert transform is not None
        physical = transform.backward(np.array([-15.0, -1.0, 0.0, 1.0, 15.0])).eval() * scale
        assert np.all((physical >= lo) & (physical <= hi)) and np.all(np.diff(physical) > 0)
    else:
        assert transform is None
    # without an initval the start is the median, inside the support
    assert_allclose(_physical_start(model, scale), prior.ppf(0.5), rtol=1e-9)


def test_prior_draws_follow_the_cdf(case):
    prior, _, _, (lo, hi), scale = case
    with _variable_model(prior, scale):
        draws = pm.sample_prior_predictive(draws=2000, random_seed=11, var_names=["x"])
    values = np.asarray(draws.prior["x"]).ravel()
    assert values.size == 2000
    assert np.all((values >= lo) & (values <= hi))
    assert stats.kstest(values, prior.cdf).pvalue > 1e-3
    # and they are not something else: a shifted CDF is refused
    width = prior.ppf(0.75) - prior.ppf(0.25)
    assert stats.kstest(values + 0.3 * width, prior.cdf).pvalue < 1e-6


def test_weight_multiplies_the_variable_density_not_the_scaling():
    """``weight * logpdf + log(scale)``: subtracting log(scale) leaves gammapy's weighted prior."""
    prior = GaussianPrior(2.0, 0.3, weight=2.5)
    model = _variable_model(prior, 0.1, initval=2.0)
    logp = model.compile_logp(jacobian=False)
    assert_allclose(
        logp({"x__scaled": 24.0}), 2.5 * stats.norm(2, 0.3).logpdf(2.4) + math.log(0.1), rtol=1e-12
    )
    assert not prior.normalised and GaussianPrior(2.0, 0.3).normalised


def test_initval_is_used():
    model = _variable_model(HalfNormalPrior(0.2), 0.1, initval=0.35)
    assert_allclose(_physical_start(model, 0.1), 0.35, rtol=1e-12)


def test_flat_prior():
    prior = FlatPrior(0.0, np.inf)
    assert prior.support == (0.0, np.inf) and not prior.proper and not prior.normalised
    assert_allclose(prior.logpdf([0.0, 3.0, -1.0]), [0.0, 0.0, -np.inf])
    with pytest.raises(ModelError, match="no inverse CDF"):
        prior.ppf(0.5)
    with pytest.raises(ModelError, match="no YAML form"):
        prior.to_dict()
    model = _variable_model(prior, 1.0)
    assert_allclose(model.compile_logp(jacobian=False)({"x__scaled_interval__": np.log(2.0)}), 0.0)
    assert np.isfinite(model.initial_point()["x__scaled_interval__"])


def test_restrict():
    wide = GaussianPrior(0.0, 1.0)
    assert restrict(wide, np.nan, np.nan) is wide
    assert restrict(None, 1.0, 3.0) == UniformPrior(1.0, 3.0)
    assert restrict(None, 1.0, np.nan) == FlatPrior(1.0, np.inf)
    # a FlatPrior is no prior: two finite bounds make it a (proper) uniform one
    assert restrict(FlatPrior(0.0, np.inf), -1.0, 3.0) == UniformPrior(0.0, 3.0)
    assert restrict(FlatPrior(), 2.0, np.nan) == FlatPrior(2.0, np.inf)
    with pytest.raises(ModelError, match="parameter 'index'.*do not overlap"):
        restrict(UniformPrior(1, 2), 3, 4, name="parameter 'index'")
    with pytest.raises(ModelError, match="no probability mass"):
        Restricted(GaussianPrior(0.0, 1e-3), 10.0, 11.0)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: UniformPrior(2.0, 1.0), "min < max"),
        (lambda: UniformPrior(1.0, 1.0), "min < max"),
        (lambda: LogUniformPrior(0.0, 1.0), "0 < min < max"),
        (lambda: LogUniformPrior(2.0, 1.0), "0 < min < max"),
        (lambda: GaussianPrior(0.0, 0.0), "sigma > 0"),
        (lambda: GaussianPrior(0.0, -1.0), "sigma > 0"),
        (lambda: GeneralizedGaussianPrior(0.0, 1.0, eta=0.0), "eta > 0"),
        (lambda: GeneralizedGaussianPrior(0.0, -1.0), "sigma > 0"),
        (lambda: HalfNormalPrior(0.0), "sigma > 0"),
        (lambda: LogNormalPrior(0.0, -0.1), "sigma > 0"),
        (lambda: TruncatedNormalPrior(0.0, 1.0, 2.0, 1.0), "min < max"),
        (lambda: TruncatedNormalPrior(0.0, 0.0), "sigma > 0"),
        (lambda: FlatPrior(1.0, 0.0), "min < max"),
        (lambda: GaussianPrior(0.0, 1.0, weight=0.0), "weight must be a positive number"),
        (lambda: GaussianPrior(0.0, 1.0, weight=-2.0), "weight must be a positive number"),
        (lambda: GaussianPrior(0.0, 1.0, weight="heavy"), "weight must be a positive number"),
        (lambda: GaussianPrior(0.0, 1.0, weight=np.inf), "weight must be a positive number"),
        (lambda: GaussianPrior("zero", 1.0), "mu must be a number"),
        (lambda: GaussianPrior(None, 1.0), "mu must be a number"),
        (lambda: UniformPrior([1], 2.0), "min must be a number"),
        (lambda: GaussianPrior(np.nan, 1.0), "mu must be finite"),
        (lambda: UniformPrior(0.0, np.inf), "max must be finite"),
    ],
)
def test_invalid_parameters_raise(make, match):
    with pytest.raises(ModelError, match=match):
        make()


def test_variable_refuses_a_bad_scale():
    with (
        pm.Model(),
        pytest.raises(ModelError, match="variable 'x': the sampling scale must be a positive"),
    ):
        GaussianPrior().variable("x", scale=0.0)


def test_yaml_form_round_trips_every_prior():
    for prior, *_ in CASES.values():
        inner = prior.prior if isinstance(prior, Restricted) else prior
        weighted = type(inner)(weight=3.0, **{n: getattr(inner, n) for n in inner._names})
        for p in (inner, weighted):
            back = prior_from_dict(p.to_dict())
            assert back == p and back.weight == p.weight


@pytest.mark.parametrize(
    ("entry", "unit", "expected"),
    [
        (
            {
                "type": "GaussianPrior",
                "parameters": [
                    {"name": "mu", "value": 1000, "unit": "GeV"},
                    {"name": "sigma", "value": 100, "unit": "GeV"},
                ],
            },
            "TeV",
            GaussianPrior(1.0, 0.1),
        ),
        (
            {
                "type": "UniformPrior",
                "parameters": [
                    {"name": "min", "value": 1e-12, "unit": "cm-2 s-1 TeV-1"},
                    {"name": "max", "value": 1e-6, "unit": ""},
                ],
            },
            "m-2 s-1 TeV-1",
            UniformPrior(1e-8, 1e-6),
        ),
        # log space: median exp(mu) GeV is exp(mu) / 1000 TeV
        (
            {
                "type": "LogNormalPrior",
                "parameters": [
                    {"name": "mu", "value": 2.0, "unit": "GeV"},
                    {"name": "sigma", "value": 0.5},
                ],
            },
            "TeV",
            LogNormalPrior(2.0 - math.log(1000.0), 0.5),
        ),
        (
            {
                "type": "GeneralizedGaussianPrior",
                "parameters": [
                    {"name": "mu", "value": "2.5e-1"},
                    {"name": "eta", "value": 0.7, "unit": ""},
                ],
                "weight": 0.5,
            },
            "deg",
            GeneralizedGaussianPrior(0.25, 1.0, 0.7, weight=0.5),
        ),
    ],
)
def test_prior_from_dict_converts_units(entry, unit, expected):
    prior = prior_from_dict(entry, unit=unit, where="parameter 'x'")
    assert type(prior) is type(expected) and prior.weight == expected.weight
    for name in prior._names:
        assert_allclose(getattr(prior, name), getattr(expected, name), rtol=1e-12)


@pytest.mark.parametrize(
    ("entry", "unit", "match"),
    [
        ({"type": "CauchyPrior", "parameters": []}, None, "unknown prior type 'CauchyPrior'"),
        ("GaussianPrior", None, "a prior must be a mapping"),
        ({"type": "GaussianPrior", "parameters": {"mu": 1}}, None, "'parameters' must be a list"),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "mu"}]},
            None,
            "need a 'name' and a 'value'",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "mu", "value": "one"}]},
            None,
            r"GaussianPrior.mu must be a number, got 'one'",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "mu", "value": True}]},
            None,
            "mu must be a number",
        ),
        (
            {
                "type": "GaussianPrior",
                "parameters": [{"name": "mu", "value": 1}, {"name": "mu", "value": 2}],
            },
            None,
            "listed twice",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "min", "value": 1}]},
            None,
            r"takes the parameters \['mu', 'sigma'\]",
        ),
        (
            {"type": "UniformPrior", "parameters": [{"name": "min", "value": 1}]},
            None,
            r"UniformPrior takes the parameters \['min', 'max'\]",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "sigma", "value": -1}]},
            None,
            "GaussianPrior needs sigma > 0",
        ),
        (
            {"type": "GaussianPrior", "parameters": [], "weight": "x"},
            None,
            "weight must be a positive",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "mu", "value": 1, "unit": "TeV"}]},
            "cm",
            r"GaussianPrior.mu in TeV cannot be expressed in the parameter's unit cm",
        ),
        (
            {
                "type": "GaussianPrior",
                "parameters": [{"name": "mu", "value": 1, "unit": "furlongs"}],
            },
            "cm",
            "is not a unit",
        ),
        (
            {
                "type": "GeneralizedGaussianPrior",
                "parameters": [{"name": "eta", "value": 1, "unit": "TeV"}],
            },
            "TeV",
            "eta is a pure number",
        ),
        (
            {
                "type": "LogNormalPrior",
                "parameters": [{"name": "sigma", "value": 1, "unit": "TeV"}],
            },
            "TeV",
            "sigma is a pure number",
        ),
    ],
)
def test_prior_from_dict_errors_name_where(entry, unit, match):
    with pytest.raises(ModelError, match=match) as info:
        prior_from_dict(entry, unit=unit, where="crab.yaml: parameter 'index'")
    assert str(info.value).startswith("crab.yaml: parameter 'index'")


# ---- gammapy 2.1 as the oracle -------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("weight", [1.0, 0.3, 4.0])
@pytest.mark.parametrize(
    ("ours", "theirs_kwargs"),
    [
        (GeneralizedGaussianPrior(1.0, 0.5, eta=0.8), {"mu": 1.0, "sigma": 0.5, "eta": 0.8}),
        (GeneralizedGaussianPrior(-2.0, 3.0, eta=0.5), {"mu": -2.0, "sigma": 3.0, "eta": 0.5}),
        (GeneralizedGaussianPrior(0.0, 0.2, eta=2.0), {"mu": 0.0, "sigma": 0.2, "eta": 2.0}),
        (GaussianPrior(2.0, 0.3), {"mu": 2.0, "sigma": 0.3}),
        (UniformPrior(1.0, 4.0), {"min": 1.0, "max": 4.0}),
        (LogUniformPrior(1e-13, 1e-10), {"min": 1e-13, "max": 1e-10}),
    ],
)
def test_gammapy_prior_is_minus_two_weight_times_logpdf(ours, theirs_kwargs, weight):
    gm = pytest.importorskip("gammapy.modeling.models")
    theirs = getattr(gm, type(ours).__name__)(**theirs_kwargs, weight=weight)
    ours = type(ours)(weight=weight, **{n: getattr(ours, n) for n in ours._names})
    points = ours.ppf(np.array([0.02, 0.3, 0.5, 0.77, 0.98]))
    expected = np.array([float(theirs(x * u.one)) for x in points])
    assert_allclose(-2.0 * ours.weight * ours.logpdf(points), expected, rtol=1e-12)
    assert_allclose(-2.0 * ours.weight * _compiled_logpdf(ours)(points), expected, rtol=1e-12)
    q = np.array([0.1, 0.5, 0.9])
    assert_allclose(ours.ppf(q), theirs._inverse_cdf(q), rtol=1e-12)
    # the density of the PyMC variable carries the weight as gammapy's fit statistic does
    model = _variable_model(ours, 1.0, initval=points[2])
    logp = model.compile_logp(jacobian=False)
    assert_allclose(-2.0 * logp(_point(model, points[1], 1.0)), expected[1], rtol=1e-10)


@pytest.mark.oracle
def test_gammapy_prior_yaml_reads_with_weight():
    gm = pytest.importorskip("gammapy.modeling.models")
    theirs = gm.GeneralizedGaussianPrior(mu=2.0, sigma=0.3, eta=0.7, weight=2.5)
    expected = GeneralizedGaussianPrior(2.0, 0.3, eta=0.7, weight=2.5)
    for full_output in (False, True):
        wrapped = theirs.to_dict(full_output=full_output)  # {prior: {type, parameters, weight}}
        assert prior_from_dict(wrapped, unit="") == expected
        assert prior_from_dict(wrapped["prior"], unit="") == expected
    back = gm.GeneralizedGaussianPrior.from_dict(expected.to_dict())
    values = (back.mu.value, back.sigma.value, back.eta.value, back.weight)
    assert values == (2.0, 0.3, 0.7, 2.5)
