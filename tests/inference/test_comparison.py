"""Model comparison: Bayes factors, likelihood-ratio tests of nested MAP fits, LOO on two results."""

import math
import warnings

import arviz as az
import numpy as np
import pytest
from scipy import stats

from bayesdl4.errors import InferenceError
from bayesdl4.inference import (
    EvidenceResult,
    bayes_factor,
    fit,
    joint_log_likelihood,
    likelihood_ratio_test,
    sample,
)
from tests.inference.spectral_cases import log_parabola, onoff, power_law


def _evidence(log_z, error, digest="d1"):
    return EvidenceResult(log_z=log_z, log_z_error=error, method="smc", log_z_runs=np.array([log_z, log_z]),
                          n_likelihood_calls=1, wall_time_s=0.0, data_digest=digest)


def test_bayes_factor_is_the_difference_of_log_evidences_with_errors_in_quadrature():
    bf = bayes_factor(_evidence(-10.0, 0.3), _evidence(-14.6, 0.4))
    assert bf.log_bf == pytest.approx(4.6)
    assert bf.log_bf_error == pytest.approx(0.5)
    assert bf.log10_bf == pytest.approx(4.6 / math.log(10))
    assert bf.significance == pytest.approx(9.2)
    with pytest.raises(InferenceError, match="different data"):
        bayes_factor(_evidence(-10.0, 0.3), _evidence(-14.6, 0.4, digest="d2"))
    with pytest.raises(InferenceError, match="EvidenceResult or a DataTree"):
        bayes_factor(-10.0, _evidence(-14.6, 0.4))


@pytest.fixture(scope="module")
def lp_runs():
    """Two On/Off spectra simulated from a log-parabola (beta = 0.2)."""
    return onoff("log_parabola", n=2, seed=10)


@pytest.fixture(scope="module")
def fits(lp_runs):
    out = {}
    for name, models in (("pl", power_law), ("lp", log_parabola)):
        lp_runs.models = models()
        out[name] = fit(lp_runs)
    return out


def test_likelihood_ratio_test_of_nested_fits_follows_wilks(fits):
    test = likelihood_ratio_test(fits["pl"], fits["lp"])
    assert test.df == 1
    assert test.ts == pytest.approx(fits["pl"].total_stat - fits["lp"].total_stat, rel=1e-12)
    assert test.ts > 25  # beta = 0.2 is detected
    assert test.significance == pytest.approx(math.sqrt(test.ts), rel=1e-9)  # one dof: sqrt(TS)
    assert test.p_value == pytest.approx(stats.chi2.sf(test.ts, 1), rel=1e-9)
    two = likelihood_ratio_test(fits["pl"], fits["lp"], df=2)
    assert two.p_value == pytest.approx(math.exp(-two.ts / 2), rel=1e-9)  # chi2 with 2 dof: exp(-TS/2)
    assert two.significance == pytest.approx(stats.norm.isf(two.p_value / 2), rel=1e-9)


def test_likelihood_ratio_test_refuses_what_it_cannot_compare(fits):
    with pytest.raises(InferenceError, match="pass df="):
        likelihood_ratio_test(fits["lp"], fits["pl"])
    with pytest.raises(InferenceError, match="must be a FitResult"):
        likelihood_ratio_test(fits["pl"], 3.0)
    other = onoff("log_parabola", n=1, seed=99)
    other.models = log_parabola()
    with pytest.raises(InferenceError, match="different datasets"):
        likelihood_ratio_test(fits["pl"], fit(other))
    with warnings.catch_warnings(record=True) as caught:  # the alternative fits worse: ts clipped to 0
        warnings.simplefilter("always")
        test = likelihood_ratio_test(fits["lp"], fits["pl"], df=1)
    assert test.ts == 0.0 and test.p_value == 1.0
    assert any("fits worse" in str(w.message) for w in caught)


def test_significance_stays_finite_where_the_p_value_underflows(fits):
    from dataclasses import replace

    far = replace(fits["pl"], total_stat=fits["lp"].total_stat + 2000.0)
    test = likelihood_ratio_test(far, fits["lp"])
    assert test.p_value == 0.0
    assert test.significance == pytest.approx(math.sqrt(2000.0), rel=1e-4)


@pytest.fixture(scope="module")
def posteriors(lp_runs):
    out = {}
    for name, models in (("pl", power_law), ("lp", log_parabola)):
        lp_runs.models = models()
        out[name] = sample(lp_runs, draws=300, tune=300, chains=2, random_seed=4, progressbar=False)
    return out


def test_arviz_loo_and_compare_prefer_the_log_parabola(posteriors):
    """LOO on two results of sample works directly, per spectrum and on all spectra together."""
    loo = az.loo(posteriors["lp"], var_name="run0")
    assert np.all(np.asarray(loo.pareto_k) < 0.7)
    assert loo.n_data_points == posteriors["lp"]["log_likelihood"]["run0"].sizes["run0_bin"]
    for var_name in ("run0", "run1"):
        table = az.compare(posteriors, var_name=var_name, round_to="none")
        assert table.index[0] == "lp"
    joint = {name: joint_log_likelihood(tree) for name, tree in posteriors.items()}
    table = az.compare(joint, round_to="none")
    assert table.index[0] == "lp"
    assert table.loc["pl", "elpd_diff"] < -1.5 * table.loc["pl", "dse"]  # elpd_diff < 0: pl predicts worse
    assert table.loc["lp", "weight"] > 0.9
    # the joint variable holds every spectrum's terms: its elpd is the sum of theirs
    per_run = sum(az.loo(posteriors["lp"], var_name=v).elpd for v in ("run0", "run1"))
    assert az.loo(joint["lp"]).elpd == pytest.approx(per_run, rel=1e-10)
    assert joint["lp"]["posterior"]["src.alpha"].equals(posteriors["lp"]["posterior"]["src.alpha"])
