"""The joint log density as a plain callable: values, gradients, priors, nested-sampling transform."""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayesdl4.errors import InferenceError, ModelError
from bayesdl4.inference import logp_function
from bayesdl4.inference.model import JointModel
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
    with JointModel(datasets).pymc_model() as pymc_model:
        assert "src.index" in pymc_model.named_vars
    with pytest.raises(InferenceError, match="prior_transform"):
        logp.prior_transform(np.array([0.5, 0.5]))


def test_starting_value_outside_prior_support_is_a_clear_error():
    datasets = simulated_onoff(n=1, seed=10)
    model = datasets.models["src"].spectral_model
    model.index.prior = UniformPrior(3, 4)
    with pytest.raises(ModelError, match="src.index.*outside its prior support"):
        JointModel(datasets).pymc_model()


def test_compiled_density_is_reused_until_the_graph_changes(datasets):
    first = JointModel(datasets).log_density_function().core
    assert JointModel(datasets).log_density_function().core is first
    model = datasets.models["src"].spectral_model
    model.reference.value = 2.0  # a frozen parameter is a constant of the graph
    try:
        assert JointModel(datasets).log_density_function().core is not first
    finally:
        model.reference.value = 1.0
