"""The joint log density as a plain callable: values, gradients, priors, nested-sampling transform."""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayesdl4.errors import InferenceError, ModelError
from bayesdl4.inference import build_model, logp_function
from bayesdl4.models import GaussianPrior, LogUniformPrior, UniformPrior
from tests.helpers import simulated_onoff


@pytest.fixture(scope="module")
def datasets():
    return simulated_onoff(n=2, seed=7)


def test_value_is_loglike_plus_normalised_log_prior(datasets):
    logp = logp_function(datasets)
    theta = logp.x0
    value, _ = logp(theta)
    # UniformPrior(1, 4) on index, UniformPrior(1e-13, 1e-9) on amplitude
    log_prior = -np.log(3.0) - np.log(1e-9 - 1e-13)
    np.testing.assert_allclose(value, -0.5 * datasets.stat_sum() + log_prior, rtol=1e-12)
    np.testing.assert_allclose(logp.log_likelihood(theta), -0.5 * datasets.stat_sum(), rtol=1e-12)
    assert logp.names == ["src.index", "src.amplitude"]


def test_gradient_matches_finite_differences(datasets):
    logp = logp_function(datasets)
    theta = np.array([2.4, 2.5e-11])
    _, grad = logp(theta)
    for i in range(theta.size):
        h = 1e-6 * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
        np.testing.assert_allclose(grad[i], numeric, rtol=1e-5)


def test_outside_bounds_is_minus_infinity_and_wrong_shape_errors(datasets):
    logp = logp_function(datasets)
    assert logp(np.array([5.0, 3e-11]))[0] == -np.inf
    with pytest.raises(InferenceError, match="expected 2 values"):
        logp(np.array([2.0]))


def test_log_uniform_and_gaussian_priors_enter_the_density():
    datasets = simulated_onoff(n=1, seed=8)
    model = datasets.models["src"].spectral_model
    model.index.prior = GaussianPrior(2.5, 0.2)
    model.amplitude.prior = LogUniformPrior(1e-13, 1e-9)
    logp = logp_function(datasets)
    theta = np.array([2.3, 2e-11])
    expected = (logp.log_likelihood(theta) + stats.norm(2.5, 0.2).logpdf(2.3)
                + stats.loguniform(1e-13, 1e-9).logpdf(2e-11))
    np.testing.assert_allclose(logp(theta)[0], expected, rtol=1e-12)
    cube = np.array([0.5, 0.5])
    np.testing.assert_allclose(logp.prior_transform(cube), [2.5, np.sqrt(1e-13 * 1e-9)], rtol=1e-12)


def test_pymc_distribution_as_prior():
    datasets = simulated_onoff(n=1, seed=9)
    model = datasets.models["src"].spectral_model
    model.index.prior = pm.Normal.dist(mu=2.5, sigma=0.3)
    logp = logp_function(datasets)
    theta = np.array([2.2, 3e-11])
    expected = logp.log_likelihood(theta) + stats.norm(2.5, 0.3).logpdf(2.2) - np.log(1e-9 - 1e-13)
    np.testing.assert_allclose(logp(theta)[0], expected, rtol=1e-10)
    # the PyMC model takes the same distribution as the variable's prior
    assert "src.index" in build_model(datasets).named_vars
    with pytest.raises(InferenceError, match="src.index.*nested sampling needs proper priors"):
        logp.prior_transform(np.array([0.5, 0.5]))


def test_starting_value_outside_prior_support_is_a_clear_error():
    datasets = simulated_onoff(n=1, seed=10)
    model = datasets.models["src"].spectral_model
    model.index.prior = UniformPrior(3, 4)
    with pytest.raises(ModelError, match="src.index.*outside its prior support"):
        build_model(datasets)


def test_non_finite_parameters_give_minus_infinity_and_a_zero_gradient(datasets):
    """Issue 12, item 2: NaN, inf and overflowing parameters never reward the density."""
    logp = logp_function(datasets)
    for theta in ([2.5, np.nan], [2.5, np.inf], [np.nan, 3e-11], [2.5, 1e300]):
        value, grad = logp(np.array(theta))
        assert value == -np.inf
        np.testing.assert_array_equal(grad, 0.0)
        assert logp.log_likelihood(np.array(theta)) == -np.inf
    with pytest.raises(InferenceError, match="expected 2 values"):
        logp.log_likelihood(np.array([2.5]))


def test_compiled_density_is_shared_by_models_of_one_structure(datasets):
    """Data enter the compiled function as inputs: a second model of the same structure (new
    datasets, new model objects) reuses it, other data give other values."""
    from bayesdl4.compiled import stats

    first = logp_function(datasets)
    other = simulated_onoff(n=2, seed=77)
    before = stats()["compiled"]
    second = logp_function(other)
    assert stats()["compiled"] == before
    assert second._fn.function is first._fn.function
    theta = np.array([2.4, 2.5e-11])
    model = other.models["src"].spectral_model
    model.index.value, model.amplitude.value = theta
    np.testing.assert_allclose(second.log_likelihood(theta), -0.5 * other.stat_sum(), rtol=1e-12)
    assert second.log_likelihood(theta) != first.log_likelihood(theta)
