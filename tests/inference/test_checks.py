"""Posterior-predictive p-values of each dataset's total statistic."""

import numpy as np
import pytest

from bayesdl4.errors import InferenceError
from bayesdl4.inference import ppc_pvalues, sample
from tests.inference.spectral_cases import log_parabola, onoff, power_law


@pytest.fixture(scope="module")
def runs():
    """Two On/Off spectra simulated from a log-parabola (beta = 0.2)."""
    return onoff("log_parabola", n=2, seed=20)


@pytest.fixture(scope="module")
def checked(runs):
    out = {}
    for name, models in (("lp", log_parabola), ("pl", power_law)):
        runs.models = models()
        tree = sample(runs, draws=300, tune=300, chains=2, random_seed=5, progressbar=False)
        out[name] = (tree, ppc_pvalues(tree, runs))
    runs.models = log_parabola()
    return out


def test_statistic_of_the_data_is_minus_twice_the_pointwise_log_likelihood(checked):
    tree, pvalues = checked["lp"]
    for dataset in ("run0", "run1"):
        expected = -2 * tree["log_likelihood"][dataset].sum(f"{dataset}_bin").values
        np.testing.assert_allclose(pvalues["stat_observed"].sel(dataset=dataset).values, expected, rtol=1e-10)


def test_statistic_of_a_replica_is_gammapys_wstat_of_the_replicated_counts(checked, runs):
    """At a few draws: gammapy's WStat of the replicated ON / OFF counts, with the signal the
    models predict at the draw's parameters."""
    pytest.importorskip("gammapy")
    from gammapy.stats import wstat

    tree, pvalues = checked["lp"]
    spectral = runs.models["src"].spectral_model
    saved = {name: getattr(spectral, name).value for name in ("amplitude", "alpha", "beta")}
    try:
        for chain, draw in ((0, 0), (1, 123), (0, 299)):
            for name in saved:
                getattr(spectral, name).value = float(tree["posterior"][f"src.{name}"][chain, draw])
            for dataset in runs:
                bins = tree["observed_data"][dataset.name][f"{dataset.name}_bin"].values
                n_on = tree["posterior_predictive"][dataset.name].values[chain, draw]
                n_off = tree["posterior_predictive"][f"{dataset.name}.counts_off"].values[chain, draw]
                mu_sig = dataset.npred_signal().data.ravel()[bins]
                alpha = dataset.alpha.data.ravel()[bins]
                expected = wstat(n_on=n_on, n_off=n_off, alpha=alpha, mu_sig=mu_sig).sum()
                got = pvalues["stat_replicated"].sel(dataset=dataset.name).values[chain, draw]
                assert got == pytest.approx(expected, rel=1e-8)
    finally:
        for name, value in saved.items():
            getattr(spectral, name).value = value


def test_p_values_pass_the_true_model_and_flag_the_wrong_one(checked):
    _, lp = checked["lp"]
    _, pl = checked["pl"]
    assert np.all((lp["p_value"].values > 0.05) & (lp["p_value"].values < 0.95))
    assert 0.05 < float(lp["p_value_total"]) < 0.95
    assert float(pl["p_value_total"]) < 0.01  # a power law cannot bend with the data
    assert lp["stat_replicated"].shape == (2, 300, 2)


def test_a_result_of_other_data_or_without_replicas_is_refused(checked, runs):
    tree, _ = checked["lp"]
    other = onoff("log_parabola", n=2, seed=21)
    other.models = log_parabola()
    with pytest.raises(InferenceError, match="observed counts differ"):
        ppc_pvalues(tree, other)
    bare = tree.copy()
    del bare["posterior_predictive"]
    with pytest.raises(InferenceError, match="no 'posterior_predictive' group"):
        ppc_pvalues(bare, runs)
