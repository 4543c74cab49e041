"""FluxPointsBuilder: gammapy's statistics and best fits on real flux points, exact gradients."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize

import bayesdl4.graph.flux_points  # noqa: F401 - registers the builder
from bayesdl4.datasets.flux_points import FluxPoints
from bayesdl4.datasets.flux_points_dataset import FluxPointsDataset
from bayesdl4.graph.params import ParameterTable
from bayesdl4.graph.protocol import plan_groups
from bayesdl4.models import LogParabolaSpectralModel, Models, SkyModel
from tests.conftest import gammapy_data

HESS = "estimators/crab_hess_fp/crab_hess_fp.fits"
HAWC = "hawc/crab_flux/HAWC19_flux_points.fits"
CASES = [(HESS, "chi2"), (HESS, "distrib"), (HESS, "profile"), (HAWC, "chi2"), (HAWC, "distrib")]
START = dict(amplitude="3.5e-11 cm-2 s-1 TeV-1", alpha=2.5, beta=0.1, reference="1 TeV")


def crab_model(**kwargs):
    return SkyModel(LogParabolaSpectralModel(**{**START, **kwargs}), name="crab")


def dataset(filename, stat_type, model=None, name="fp"):
    return FluxPointsDataset(data=FluxPoints.read(gammapy_data() / filename), stat_type=stat_type,
                             models=model or crab_model(), name=name)


def compile_stat(datasets):
    """(f(free values) -> (total stat, gradient, per-dataset stat), ParameterTable) through the
    builders' graphs."""
    models = Models(list({id(m): m for d in datasets for m in d.models}.values()))
    table = ParameterTable(models)
    free = pt.dvector("free")
    theta = table.theta(free, table.frozen_values())
    stat, per_dataset = 0.0, []
    for plan in plan_groups(datasets, table):
        inputs = {k: pt.as_tensor(v) for k, v in plan.arrays.items()}
        graph = plan.builder.build(plan, inputs, theta, {})
        stat = stat - 2 * graph.loglike_datasets.sum()
        per_dataset.append(-2 * graph.loglike_datasets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pytensor: L_op of SegmentDot
        fn = pytensor.function([free], [stat, pytensor.grad(stat, free), pt.concatenate(per_dataset)],
                               mode="FAST_COMPILE")
    return fn, table


def fit(datasets):
    """Best fit and covariance (inverse of half the Hessian of the stat) in physical units."""
    fn, table = compile_stat(datasets)
    start = np.array([p.value for p in table.free])
    scale = np.abs(start)

    def f(x):
        value, grad, _ = fn(x * scale)
        return float(value), grad * scale

    # bounded, so that a long first step cannot leave the physical range (beta -> -1e3 overflows)
    bounds = [(1e-3, 1e3) if n.endswith("amplitude") else (-10, 10) for n in table.free_names]
    res = minimize(f, np.ones_like(start), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    assert res.success, res.message
    best = res.x * scale
    h = 1e-5 * scale
    hessian = np.array([(fn(best + h[i] * np.eye(len(best))[i])[1] - fn(best - h[i] * np.eye(len(best))[i])[1])
                        / (2 * h[i]) for i in range(len(best))])
    covariance = np.linalg.inv(0.5 * (hessian + hessian.T) / 2)
    return dict(zip(table.free_names, best, strict=True)), covariance, table


# ------------------------------------------------------------------------------- statistic
@pytest.mark.parametrize(("filename", "stat_type"), CASES)
def test_builder_stat_equals_dataset_stat_sum(filename, stat_type):
    ds = dataset(filename, stat_type)
    fn, table = compile_stat([ds])
    total, grad, _ = fn(np.array([p.value for p in table.free]))
    assert total == pytest.approx(ds.stat_sum(), rel=1e-12)
    assert np.all(np.isfinite(grad))


@pytest.mark.oracle
@pytest.mark.parametrize(("filename", "stat_type"), CASES)
def test_stat_sum_equals_gammapy(filename, stat_type):
    pytest.importorskip("gammapy")
    from gammapy.datasets import FluxPointsDataset as GPDataset
    from gammapy.estimators import FluxPoints as GPFluxPoints
    from gammapy.modeling.models import LogParabolaSpectralModel as GPLogParabola
    from gammapy.modeling.models import SkyModel as GPSkyModel

    for values in ({}, {"alpha": 2.3, "beta": 0.15, "amplitude": "4e-11 cm-2 s-1 TeV-1"}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = GPDataset(data=GPFluxPoints.read(gammapy_data() / filename), stat_type=stat_type,
                               models=GPSkyModel(GPLogParabola(**{**START, **values}), name="crab"))
            expected = theirs.stat_sum()
        ours = dataset(filename, stat_type, crab_model(**values))
        assert ours.stat_sum() == pytest.approx(expected, rel=1e-6)
        fn, table = compile_stat([ours])
        assert fn(np.array([p.value for p in table.free]))[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.oracle
@pytest.mark.parametrize(("filename", "stat_type"), CASES)
def test_fit_gives_gammapys_best_fit(filename, stat_type):
    pytest.importorskip("gammapy")
    from gammapy.datasets import FluxPointsDataset as GPDataset
    from gammapy.estimators import FluxPoints as GPFluxPoints
    from gammapy.modeling import Fit
    from gammapy.modeling.models import LogParabolaSpectralModel as GPLogParabola
    from gammapy.modeling.models import SkyModel as GPSkyModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = GPDataset(data=GPFluxPoints.read(gammapy_data() / filename), stat_type=stat_type,
                           models=GPSkyModel(GPLogParabola(**START), name="crab"))
        result = Fit().run([theirs])
    assert result.success
    best, covariance, table = fit([dataset(filename, stat_type)])
    for i, name in enumerate(table.free_names):
        par = result.parameters[name.split(".")[1]]
        sigma = par.error
        assert abs(best[name] - par.value) < 0.05 * sigma, name
        if stat_type == "chi2":  # smooth: the curvature errors agree too (Hesse vs differences)
            assert np.sqrt(covariance[i, i]) == pytest.approx(sigma, rel=0.02), name


# ------------------------------------------------------------------------------- gradients
def gradient_check(datasets, values):
    fn, table = compile_stat(datasets)
    x = np.array([values.get(n, p.value) for n, p in zip(table.free_names, table.free, strict=True)])
    _, grad, _ = fn(x)
    numeric = []
    for i in range(x.size):
        h = 1e-6 * abs(x[i]) if x[i] else 1e-7
        step = np.zeros_like(x)
        step[i] = h
        numeric.append((fn(x + step)[0] - fn(x - step)[0]) / (2 * h))
    assert np.all(np.isfinite(grad))
    assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6 * np.max(np.abs(numeric)))
    return grad


@pytest.mark.parametrize(("filename", "stat_type"), CASES)
@pytest.mark.parametrize("amplitude", [3.5e-11, 0.4e-11, 25e-11])
def test_gradients_match_finite_differences(filename, stat_type, amplitude):
    """Including the HAWC upper limit (distrib) and profiles evaluated below (amplitude / 9: norms
    < 0.2) and above (x 7: norms > 5) their scans."""
    grad = gradient_check([dataset(filename, stat_type)], {"crab.amplitude": amplitude})
    if stat_type == "profile" and amplitude > 1e-10:  # far above every scan: the stat still rises
        assert grad[0] > 0


def test_gradient_at_profile_scan_ends():
    """A model exactly at the first and last scan node of two points (C1 joins there)."""
    ds = dataset(HESS, "profile")
    fp = ds.data
    e_ref = fp.energy_ref.to_value("TeV")
    dnde_ref = fp.dnde_ref.to_value("cm-2 s-1 TeV-1")
    # a power law (beta = 0) through norm 0.2 at point 1 and norm 5 at point 4
    index = -np.log((5 * dnde_ref[4]) / (0.2 * dnde_ref[1])) / np.log(e_ref[4] / e_ref[1])
    amplitude = 0.2 * dnde_ref[1] * e_ref[1] ** index
    gradient_check([dataset(HESS, "profile", crab_model(amplitude=f"{amplitude} cm-2 s-1 TeV-1",
                                                       alpha=index, beta=0.0))], {})
    model = crab_model(amplitude=f"{amplitude} cm-2 s-1 TeV-1", alpha=index, beta=0.0)
    ratio = model.spectral_model(fp.energy_ref).value / dnde_ref
    assert ratio[1] == pytest.approx(0.2, rel=1e-12) and ratio[4] == pytest.approx(5.0, rel=1e-12)


# ------------------------------------------------------------------------------- groups
def test_two_datasets_share_one_group_and_keep_their_totals():
    model = crab_model()
    hess, hawc = dataset(HESS, "distrib", model, "hess"), dataset(HAWC, "distrib", model, "hawc")
    plans = plan_groups([hess, hawc], ParameterTable(Models([model])))
    assert len(plans) == 1 and plans[0].points.dataset.tolist() == [0] * 4 + [1] * 10
    fn, table = compile_stat([hess, hawc])
    total, _, per_dataset = fn(np.array([p.value for p in table.free]))
    assert_allclose(per_dataset, [hess.stat_sum(), hawc.stat_sum()], rtol=1e-12)
    assert total == pytest.approx(hess.stat_sum() + hawc.stat_sum(), rel=1e-12)


def test_per_dataset_parameters_are_gathered():
    """Two datasets with their own models (same structure) in one group: each sees its own values."""
    hess = dataset(HESS, "chi2", crab_model(), "hess")
    hess_b = dataset(HESS, "chi2", SkyModel(LogParabolaSpectralModel(**{**START, "alpha": 2.2}),
                                            name="other"), "hess-b")
    fn, table = compile_stat([hess, hess_b])
    _, _, per_dataset = fn(np.array([p.value for p in table.free]))
    assert_allclose(per_dataset, [hess.stat_sum(), hess_b.stat_sum()], rtol=1e-12)
    assert per_dataset[0] != pytest.approx(per_dataset[1], rel=1e-3)


def test_predictive_draws_have_the_points_errors():
    ds = dataset(HAWC, "distrib")
    plan = plan_groups([ds], ParameterTable(Models(list(ds.models))))[0]
    mean = np.tile(plan.arrays["dnde"], (20000, 1))
    draws = plan.builder.draw_predictive(plan, {"dnde": mean}, np.random.default_rng(3))["dnde"]
    measured = plan.arrays["is_ul"] == 0
    assert np.all(np.isnan(draws[:, ~measured]))
    # HAWC points have symmetric errors: the draws' spread is dnde_err (to 2 % with 20000 draws)
    assert_allclose(np.std(draws[:, measured], axis=0) / plan.arrays["errn"][measured], 1.0, atol=0.02)
