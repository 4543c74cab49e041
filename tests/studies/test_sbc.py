"""Simulation-based calibration: uniform ranks and nominal coverage for the right likelihood, flagged
for a mis-specified one; files and plots."""

import time

import matplotlib
import numpy as np
import pytest
import xarray as xr

from bayesdl4.errors import InferenceError
from bayesdl4.studies import SBCResult, misspecify_background, simulation_based_calibration
from bayesdl4.studies.sbc import repetition_seeds

matplotlib.use("Agg")


@pytest.mark.slow
def test_sbc_is_calibrated_and_flags_a_misspecified_background(sbc_sim, tmp_path):
    """Done when: SBC with 200 repetitions on a 3-parameter spectral model (log-parabola, Cash,
    ~250 background counts): each parameter's rank chi-square test (10 bins of the 100 rank values)
    gives p > 0.01 and the 68 / 95 % coverages pass an exact binomial test at p > 0.01 (within ~2.6
    binomial sigma); with the background scaled by 1.2 in the fit only, the same test fails."""
    t0 = time.perf_counter()
    good = simulation_based_calibration(sbc_sim, 200, draws=100, tune=200, chains=2, random_seed=2,
                                        progressbar=False)
    t_good = time.perf_counter() - t0
    print(good.summary(), f"\nwall time {t_good:.0f} s")
    assert int(good.data["failed"].sum()) == 0
    assert good.data.sizes == {"repetition": 200, "parameter": 3, "level": 2}
    for name, (_, p) in good.rank_test().items():
        assert p > 0.01, (name, p)
    for (name, level), (fraction, sigma, p) in good.coverage().items():
        assert p > 0.01 and abs(fraction - level) < 3 * sigma, (name, level, fraction)
    assert good.passed()
    # NUTS worked: no divergences; with 2 x 100 draws r_hat < 1.1 in 95 % of the repetitions
    assert int(good.data["n_divergent"].sum()) == 0
    assert float(good.data["r_hat"].quantile(0.95)) < 1.1 and float(good.data["r_hat"].max()) < 1.3

    t0 = time.perf_counter()
    bad = simulation_based_calibration(sbc_sim, 200, draws=100, tune=200, chains=2, random_seed=2,
                                       background_scale_fit=1.2, progressbar=False)
    print(bad.summary(), f"\nwall time {time.perf_counter() - t0:.0f} s")
    chi2, p = bad.rank_test()["src.amplitude"]
    assert p < 1e-6  # the amplitude absorbs the 20 % background deficit: truths sit above the posteriors
    ranks = bad.data["rank"].sel(parameter="src.amplitude").values
    assert np.mean(ranks > 89) > 0.3  # piled up in the top bin (10 % if uniform)
    assert not bad.passed()
    # same seeds, same truths: only the fit changed
    np.testing.assert_array_equal(bad.data["truth"].values, good.data["truth"].values)

    path = good.write(tmp_path / "sbc.nc")
    back = SBCResult.read(path)
    xr.testing.assert_identical(back.data, good.data)
    assert back.rank_test() == good.rank_test()


def test_small_sbc_records_ranks_coverage_and_writes(sbc_sim, tmp_path):
    result = simulation_based_calibration(sbc_sim, 3, draws=50, tune=100, chains=2, n_ranks=49, random_seed=5,
                                          progressbar=False)
    data = result.data
    assert data["rank"].dims == ("repetition", "parameter")
    assert data["rank"].min() >= 0 and data["rank"].max() <= 49
    assert result.n_ranks == 49 and result.parameters == ["src.amplitude", "src.alpha", "src.beta"]
    truth = data["truth"].sel(parameter="src.alpha").values
    assert np.all((truth > 2) & (truth < 3))
    # the truth of repetition i depends on (seed, i) alone
    assert truth[1] == pytest.approx(sbc_sim.draw_parameters(repetition_seeds(5, 1)[0])["src.alpha"])
    # the posterior mean sits within a few posterior sd of the truth, and MAP values near it
    z = (data["posterior_mean"] - data["truth"]) / data["posterior_sd"]
    assert float(np.abs(z).max()) < 4
    # MAP values near the posterior means where the optimum is inside the priors (repetition 0's
    # beta truth 0.45 puts its MAP on the prior's edge 0.5: no trustworthy error, fit_success False)
    ok = data["fit_success"].values
    assert ok.sum() == 2 and data["map_value"].sel(parameter="src.beta").values[0] == pytest.approx(0.5)
    offset = (data["map_value"] - data["posterior_mean"]) / data["posterior_sd"]
    assert float(np.abs(offset.values[ok]).max()) < 2
    assert result.run["compilations"].values[1:].sum() == 0
    written = result.write(tmp_path / "small.nc")
    with pytest.raises(FileExistsError):
        result.write(written)
    back = SBCResult.read(written)
    xr.testing.assert_identical(back.data, data)
    assert back.run["seconds"].shape == (3,)

    from bayesdl4.plotting.sbc import plot_rank_ecdf, plot_rank_histogram

    axes = plot_rank_histogram(back, n_bins=5)
    assert len(axes) == 3
    assert axes[0].patches[0].get_data().values.sum() == 3  # the stairs hold every repetition's rank
    axes = plot_rank_ecdf(back)
    lines = axes[0].get_lines()
    assert lines and lines[0].get_ydata()[-1] == pytest.approx(0.0)  # the ECDF ends at 1: offset 0


def test_misspecify_background_scales_what_the_fit_sees(sbc_sim, onoff_sim):
    datasets = sbc_sim.simulate(sbc_sim.start_values(), 1)
    expected = datasets[0].background.data * 1.2
    misspecify_background(datasets, 1.2)
    np.testing.assert_allclose(datasets[0].background.data, expected)
    assert sbc_sim.template[0].background.data.sum() == pytest.approx(expected.sum() / 1.2)  # template intact
    onoff = onoff_sim.simulate(onoff_sim.start_values(), 1)
    alpha = onoff[0].alpha.data.copy()
    misspecify_background(onoff, 1.2)
    np.testing.assert_allclose(onoff[0].alpha.data, 1.2 * alpha)
    np.testing.assert_allclose(onoff_sim.template[0].alpha.data, alpha)


def test_more_ranks_than_draws_is_refused(sbc_sim):
    with pytest.raises(InferenceError, match="cannot keep 150 draws"):
        simulation_based_calibration(sbc_sim, 2, draws=50, chains=2, n_ranks=150, progressbar=False)
