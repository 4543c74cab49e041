"""Evidence by SMC and nested sampling: closed-form cases, agreement of the two methods, Bayes
factors on simulated spectra, improper priors, storage in the DataTree, gammapy's Sampler."""

import importlib.util
import sys
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy.special import logsumexp

from bayesdl4.errors import InferenceError
from bayesdl4.inference import (
    EvidenceResult,
    bayes_factor,
    build_model,
    evidence,
    fit,
    logp_function,
    read,
    store_evidence,
    write,
)
from bayesdl4.models import (
    FlatPrior,
    HalfNormalPrior,
    Models,
    PopulationPrior,
    PowerLawSpectralModel,
    SkyModel,
    UniformPrior,
    per_dataset,
)
from tests.inference.spectral_cases import UNIT, linear_gaussian, log_parabola, onoff, power_law


@pytest.fixture(scope="module")
def gaussian():
    """Three amplitudes with a Gaussian likelihood, the first with a LogUniform prior."""
    return linear_gaussian(log_uniform_first=True)


def laplace_log_z(datasets):
    """Laplace approximation from a MAP fit: ln L + ln prior (physical units) at the optimum
    + ln sqrt(det(2 pi cov))."""
    result = fit(datasets)
    density = logp_function(datasets)
    theta = np.array([result[name].value for name in density.names])
    covariance = result.covariance[np.ix_(*[[result.names.index(n) for n in density.names]] * 2)]
    return density(theta)[0] + 0.5 * np.linalg.slogdet(2 * np.pi * covariance)[1]


# ------------------------------------------------------------------------- closed form
def test_smc_evidence_of_a_gaussian_likelihood_is_the_closed_form(gaussian):
    datasets, log_z, mean, cov = gaussian
    tree = xr.DataTree()
    result = evidence(datasets, method="smc", random_seed=0, progressbar=False, posterior=tree)
    assert abs(result.log_z - log_z) < 3 * result.log_z_error
    assert 0.01 < result.log_z_error < 0.1
    assert result.log_z_runs.shape == (4,)
    assert result.n_likelihood_calls > 4 * 1000 * 5  # prior draws and several stages of mutations
    # the final particles are the posterior: its mean and spread are the Gaussian's
    for k in range(3):
        draws = result.samples[f"c{k}.amplitude"]
        assert draws.shape == (4, 1000)
        sigma = np.sqrt(cov[k, k])
        assert abs(draws.mean() - mean[k]) < 0.1 * sigma
        assert draws.std() == pytest.approx(sigma, rel=0.1)
    stored = EvidenceResult.from_datatree(tree)
    assert stored.method == "smc" and stored.log_z == result.log_z
    np.testing.assert_array_equal(stored.log_z_runs, result.log_z_runs)


def test_nested_evidence_of_a_gaussian_likelihood_is_the_closed_form(gaussian):
    pytest.importorskip("ultranest")
    datasets, log_z, mean, cov = gaussian
    result = evidence(datasets, method="nested", random_seed=0, progressbar=False)
    assert abs(result.log_z - log_z) < 3 * result.log_z_error
    assert result.log_z_error < 0.4
    draws = result.samples["c1.amplitude"]
    assert abs(draws.mean() - mean[1]) < 0.15 * np.sqrt(cov[1, 1])
    assert result.n_likelihood_calls > 400


def test_an_unused_variable_leaves_the_evidence_unchanged_and_a_constant_potential_shifts_it(gaussian):
    """A normalised prior on a variable the likelihood ignores integrates to 1; a constant
    potential counts as likelihood in SMC: ln Z moves by exactly that constant."""
    datasets, log_z, _, _ = gaussian
    model = build_model(datasets)
    settings = {"method": "smc", "random_seed": 1, "progressbar": False, "draws": 500}
    base = evidence(model, **settings)
    with model:
        pm.Normal("unused", 0.0, 1.0)
    with_unused = evidence(model, **settings)
    assert abs(with_unused.log_z - log_z) < 3 * with_unused.log_z_error
    assert with_unused.samples["c0.amplitude"].shape == (4, 500)
    with model:
        pm.Potential("offset", pt.constant(-1.5))
    shifted = evidence(model, **settings)
    assert shifted.log_z - with_unused.log_z == pytest.approx(-1.5, abs=1e-9)
    assert abs(base.log_z - with_unused.log_z) < 3 * np.hypot(base.log_z_error, with_unused.log_z_error)
    with pytest.raises(InferenceError, match="offset.*method='smc'"):
        evidence(model, method="nested", progressbar=False)


# ------------------------------------------------------------------------- simulated spectra
def quadrature_log_z(datasets, n=81, width=8.0, source="src"):
    """ln Z of a power law (amplitude LogUniform(1e-12, 1e-9), index Uniform(1, 5)) by the
    trapezoid rule on an n x n grid in (ln amplitude, index), +-width sigma around the MAP."""
    result = fit(datasets)
    density = logp_function(datasets)
    i_amp, i_index = density.names.index(f"{source}.amplitude"), density.names.index(f"{source}.index")
    amp, index = result[f"{source}.amplitude"], result[f"{source}.index"]
    log_amp = np.log(amp.value) + np.linspace(-width, width, n) * amp.error / amp.value
    indices = index.value + np.linspace(-width, width, n) * index.error
    theta = density.x0.copy()
    loglike = np.empty((n, n))
    for i, a in enumerate(log_amp):
        for j, g in enumerate(indices):
            theta[i_amp], theta[i_index] = np.exp(a), g
            loglike[i, j] = density.log_likelihood(theta)
    weights = np.ones((n, n))
    weights[[0, -1], :] *= 0.5
    weights[:, [0, -1]] *= 0.5
    cell = (log_amp[1] - log_amp[0]) * (indices[1] - indices[0])
    # prior density in (ln amplitude, index): 1 / ln(1e3) x 1 / 4
    return float(logsumexp(loglike + np.log(weights)) + np.log(cell) - np.log(np.log(1e3)) - np.log(4.0))


def test_evidence_of_a_power_law_onoff_spectrum_is_the_quadrature():
    """Two parameters: the evidence integral on a grid is exact to 1e-6; SMC and nested agree with it."""
    datasets = onoff("power_law", n=1, seed=0)
    datasets.models = power_law()
    expected = quadrature_log_z(datasets)
    assert quadrature_log_z(datasets, n=41, width=10.0) == pytest.approx(expected, abs=1e-3)
    smc = evidence(datasets, method="smc", random_seed=4, progressbar=False)
    assert abs(smc.log_z - expected) < 3 * smc.log_z_error and smc.log_z_error < 0.1
    if importlib.util.find_spec("ultranest") is not None:
        nested = evidence(datasets, method="nested", random_seed=4, progressbar=False)
        assert abs(nested.log_z - expected) < 3 * nested.log_z_error


@pytest.fixture(scope="module")
def lp_data():
    return onoff("log_parabola", n=1, seed=0)


@pytest.fixture(scope="module")
def lp_data_evidences(lp_data):
    out = {}
    for name, models in (("lp", log_parabola), ("pl", power_law)):
        lp_data.models = models()
        out[name] = evidence(lp_data, method="smc", random_seed=2, progressbar=False)
        out[name, "laplace"] = laplace_log_z(lp_data)
    return out


def test_smc_and_nested_agree_on_a_three_parameter_onoff_spectrum(lp_data, lp_data_evidences):
    """Done when (issue 11): SMC and nested evidences agree within their combined errors on a
    3-parameter spectral case; both are near the Laplace approximation of the near-Gaussian posterior."""
    pytest.importorskip("ultranest")
    lp_data.models = log_parabola()
    smc = lp_data_evidences["lp"]
    nested = evidence(lp_data, method="nested", random_seed=2, progressbar=False)
    combined = np.hypot(smc.log_z_error, nested.log_z_error)
    assert abs(smc.log_z - nested.log_z) < 2 * combined
    assert combined < 0.4
    assert smc.log_z == pytest.approx(lp_data_evidences["lp", "laplace"], abs=0.3)


def test_bayes_factor_prefers_the_true_model(lp_data_evidences):
    """Done when (issue 11): on log-parabola data ln B(LP / PL) is large; on power-law data the
    log-parabola pays its Occam factor (its beta prior is 2 wide, the data constrain beta to
    ~0.1), close to the Laplace estimate."""
    on_lp = bayes_factor(lp_data_evidences["lp"], lp_data_evidences["pl"])
    assert on_lp.log_bf > 10 and on_lp.significance > 20
    laplace = lp_data_evidences["lp", "laplace"] - lp_data_evidences["pl", "laplace"]
    assert on_lp.log_bf == pytest.approx(laplace, abs=0.5)

    pl_data = onoff("power_law", n=1, seed=0)
    results, laplace = {}, {}
    for name, models in (("lp", log_parabola), ("pl", power_law)):
        pl_data.models = models()
        results[name] = evidence(pl_data, method="smc", random_seed=3, progressbar=False)
        laplace[name] = laplace_log_z(pl_data)
    on_pl = bayes_factor(results["lp"], results["pl"])
    assert -5 < on_pl.log_bf < -1 and on_pl.log_bf + 5 * on_pl.log_bf_error < 0
    assert on_pl.log_bf == pytest.approx(laplace["lp"] - laplace["pl"], abs=0.5)


# ------------------------------------------------------------------------- refused priors
def _pl_datasets(index_prior="uniform", stat_type="wstat"):
    datasets = onoff("power_law", n=2, seed=5)
    for dataset in datasets:
        dataset.stat_type = stat_type
    models = power_law()
    spectral = models["src"].spectral_model
    if index_prior is None:
        spectral.index.prior = None
        spectral.index.min = spectral.index.max = np.nan
    elif index_prior == "weighted":
        spectral.index.prior = UniformPrior(1, 5, weight=2.0)
    datasets.models = models
    return datasets


def _population_datasets():
    datasets = onoff("power_law", n=2, seed=5)
    start = PowerLawSpectralModel(index=2.3, amplitude=3e-11 * UNIT, reference="1 TeV")
    start.index.prior = UniformPrior(1, 5)
    models = per_dataset(Models([SkyModel(start, name="src")]), datasets, ["src.amplitude"])
    population = PopulationPrior("flux", mu=FlatPrior(), sigma=HalfNormalPrior(1e-11))
    for model in models:
        model.spectral_model.amplitude.prior = population
    datasets.models = models
    return datasets


@pytest.mark.parametrize("method", ["smc", "nested"])
@pytest.mark.parametrize("case, match", [
    ("flat", r"parameter 'src.index' has an improper prior FlatPrior"),
    ("weighted", r"parameter 'src.index' has the prior UniformPrior.*weight 2.*not normalised"),
    ("population", r"parameter 'flux.mu' has an improper prior FlatPrior"),
    ("poisson_onoff", r"variable 'mu_off_g0'.*poisson_onoff.*flat prior"),
    ("user_flat", r"variable 'free' has an improper Flat prior"),
])
def test_improper_priors_are_refused_naming_the_variable(method, case, match):
    if case == "flat":
        model = _pl_datasets(index_prior=None)
    elif case == "weighted":
        model = _pl_datasets(index_prior="weighted")
    elif case == "population":
        model = _population_datasets()
    elif case == "poisson_onoff":
        model = _pl_datasets(stat_type="poisson_onoff")
    else:
        model = build_model(_pl_datasets())
        with model:
            pm.Flat("free")
    with pytest.raises(InferenceError, match=match):
        evidence(model, method=method, progressbar=False)


def test_a_centred_population_has_the_evidence_of_the_non_centred_one():
    """A centred normal population is sampled in units of its members' scale (values ~1e-11 as
    raw variables left PyMC's IMH proposal stuck, 12 nats off): both parametrisations of one model
    have one evidence."""
    results = {}
    for centered in (False, True):
        datasets = _population_datasets()
        population = PopulationPrior("flux", mu=UniformPrior(1e-11, 1e-10), sigma=HalfNormalPrior(1e-11),
                                     centered=centered)
        for model in datasets.models:
            model.spectral_model.amplitude.prior = population
        results[centered] = evidence(datasets, method="smc", random_seed=1, progressbar=False)
    a, b = results[False], results[True]
    assert abs(a.log_z - b.log_z) < 3 * np.hypot(a.log_z_error, b.log_z_error) + 0.05, (a, b)


def test_nested_without_ultranest_is_a_clear_error(gaussian, monkeypatch):
    monkeypatch.setitem(sys.modules, "ultranest", None)  # import ultranest raises ImportError
    with pytest.raises(InferenceError, match=r"pip install 'bayesdl4\[nested\]'.*method='smc'"):
        evidence(gaussian[0], method="nested", progressbar=False)


def test_smc_needs_two_chains_and_methods_are_checked(gaussian):
    with pytest.raises(InferenceError, match="chains >= 2"):
        evidence(gaussian[0], method="smc", chains=1, progressbar=False)
    with pytest.raises(InferenceError, match="method must be one of"):
        evidence(gaussian[0], method="laplace")


# ------------------------------------------------------------------------- DataTree storage
def _result(method, log_z, runs):
    return EvidenceResult(log_z=log_z, log_z_error=0.1, method=method, log_z_runs=np.asarray(runs),
                          n_likelihood_calls=1234, wall_time_s=2.5, settings={"draws": 10}, data_digest="abc")


def test_evidences_are_stored_per_method_and_read_back_from_netcdf(tmp_path):
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 3)))}))
    store_evidence(tree, _result("smc", -10.0, [-10.1, -9.9, -10.0, -10.0]))
    store_evidence(tree, _result("nested", -10.3, np.linspace(-10.5, -10.1, 30)))
    store_evidence(tree, _result("smc", -10.05, [-10.1, -10.0]))  # replaces the first SMC entry
    assert list(tree["evidence"]["method"].values) == ["nested", "smc"]
    write(tree, tmp_path / "result.nc")
    back = read(tmp_path / "result.nc")
    smc = EvidenceResult.from_datatree(back, method="smc")
    nested = EvidenceResult.from_datatree(back, method="nested")
    assert smc.log_z == -10.05 and smc.log_z_runs.tolist() == [-10.1, -10.0]
    assert nested.log_z_runs.size == 30 and nested.settings == {"draws": 10} and nested.data_digest == "abc"
    assert back["posterior"]["a"].shape == (2, 3)
    with pytest.raises(InferenceError, match="several methods"):
        EvidenceResult.from_datatree(back)
    bf = bayes_factor(back, _result("smc", -12.0, [-12.0, -12.0]), method="smc")
    assert bf.log_bf == pytest.approx(1.95) and bf.log_bf_error == pytest.approx(np.hypot(0.1, 0.1))


@pytest.mark.realdata
def test_joint_crab_power_law_evidence_is_the_quadrature():
    """On the ten joint-crab spectra (gammapy's Sampler: -295.1 +- 0.5, benchmarks/README.md)."""
    from tests.inference.joint_crab_evidence import joint_crab_datasets

    datasets = joint_crab_datasets("power_law")
    expected = quadrature_log_z(datasets, n=61, source="crab")
    assert expected == pytest.approx(-294.79, abs=0.01)
    smc = evidence(datasets, method="smc", random_seed=1, progressbar=False)
    assert abs(smc.log_z - expected) < 3 * smc.log_z_error and smc.log_z_error < 0.1


# ------------------------------------------------------------------------- gammapy's Sampler
@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.realdata
def test_joint_crab_bayes_factor_matches_gammapys_sampler():
    """Done when (issue 11): on the 10 joint-crab spectra with amplitude LogUniform(1e-12, 1e-9),
    alpha / index Uniform(1, 5), beta Uniform(0, 1), ln B(LP / PL) agrees with gammapy 2.1's
    `Sampler` (UltraNest, defaults) within the combined errors."""
    pytest.importorskip("gammapy")
    pytest.importorskip("ultranest")
    from tests.inference.joint_crab_evidence import gammapy_log_z, ours

    theirs = {kind: gammapy_log_z(kind, seed=1) for kind in ("log_parabola", "power_law")}
    mine = {kind: ours(kind, seed=1) for kind in ("log_parabola", "power_law")}
    log_bf = bayes_factor(mine["log_parabola"], mine["power_law"])
    their_bf = theirs["log_parabola"][0] - theirs["power_law"][0]
    their_error = np.hypot(theirs["log_parabola"][1], theirs["power_law"][1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(f"ours ln B = {log_bf}, gammapy ln B = {their_bf:.3f} +- {their_error:.3f}")
    assert abs(log_bf.log_bf - their_bf) < 2 * np.hypot(log_bf.log_bf_error, their_error)
    assert log_bf.log_bf_error < their_error
    for kind in theirs:  # each evidence as well
        assert abs(mine[kind].log_z - theirs[kind][0]) < 2 * np.hypot(mine[kind].log_z_error, theirs[kind][1])
