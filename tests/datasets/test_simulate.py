"""Simulation: ``fake`` on every dataset type and the many-run helper ``simulate_spectrum_runs``.

Laws: draws are Poisson with the prediction as mean (sample means within a few standard
errors over many draws), the same seed gives the same draws, OFF counts have mean b / alpha.
"""

import time

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.simulate import offset_effective_area, simulate_spectrum_runs
from bayesdl4.errors import DataFormatError, ModelError
from bayesdl4.models import PowerLawSpectralModel, SkyModel
from tests.datasets.builders import npred_spectrum, random_map, random_spectrum, source_model

SPECTRAL = SkyModel(PowerLawSpectralModel(index=2.4, amplitude="4e-11 cm-2 s-1 TeV-1"), name="src")


@pytest.mark.parametrize("onoff", [False, True])
def test_fake_spectrum_draws_poisson_around_npred(onoff):
    dataset = random_spectrum(np.random.default_rng(51), "s", onoff=onoff)
    dataset.models = [SPECTRAL]
    background = dataset.background.data.ravel().copy()
    mean = npred_spectrum(dataset, SPECTRAL) + background
    alpha = dataset.alpha.data.ravel() if onoff else None
    draws, draws_off = [], []
    rng = np.random.default_rng(1)
    for _ in range(100):
        if onoff:
            dataset.fake(random_seed=rng, npred_background=background.reshape(-1, 1, 1))
            draws_off.append(dataset.counts_off.data.ravel().copy())
        else:
            dataset.fake(random_seed=rng)
        draws.append(dataset.counts.data.ravel().copy())
    draws = np.array(draws)
    error = np.sqrt(mean / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= 5 * error)
    assert np.all(draws == np.round(draws))
    if onoff:
        mean_off = background / alpha
        # (alpha = 0 bins get no OFF counts)
        assert np.all(
            np.abs(np.mean(draws_off, axis=0) - mean_off) <= 5 * np.sqrt(mean_off / len(draws))
        )
    # same seed, same counts
    one, two = dataset.copy(), dataset.copy()
    one.fake(random_seed=3)
    two.fake(random_seed=3)
    np.testing.assert_array_equal(one.counts.data, two.counts.data)


@pytest.mark.parametrize("onoff", [False, True])
def test_fake_map_uses_the_prediction(onoff):
    dataset = random_map(
        np.random.default_rng(52), "m", onoff=onoff, npix=25, binsz=0.04, psf_sigma=0.08
    )
    dataset.models = [source_model()]
    expected = dataset.npred_signal().data + dataset.background.data
    total = np.zeros_like(expected)
    n = 1
    background = dataset.background.data.copy()
    for seed in range(n):
        dataset.fake(random_seed=seed, **({"npred_background": background} if onoff else {}))
        total += dataset.counts.data
    # the draws summed over all bins: Poisson with mean sum(expected) (~2000 counts here)
    assert abs(total.sum() - n * expected.sum()) < 5 * np.sqrt(n * expected.sum())


def test_fake_without_models_draws_the_background_and_refuses_bad_input():
    dataset = random_spectrum(np.random.default_rng(53), "s")
    dataset.fake(random_seed=1)
    assert dataset.counts.data.sum() == pytest.approx(
        dataset.background.data.sum(), abs=5 * np.sqrt(dataset.background.data.sum())
    )
    onoff = random_spectrum(np.random.default_rng(54), "o", onoff=True)
    onoff.counts_off = None
    with pytest.raises(DataFormatError, match="no counts_off"):
        onoff.fake(random_seed=1)


def test_simulated_runs_vary_and_are_deterministic():
    runs = simulate_spectrum_runs(SPECTRAL, 40, random_seed=7)
    again = simulate_spectrum_runs(SPECTRAL, 40, random_seed=7)
    assert isinstance(runs, Datasets) and len(runs) == 40 and runs.names[0] == "run00"
    for a, b in zip(runs, again, strict=True):
        np.testing.assert_array_equal(a.counts.data, b.counts.data)
        np.testing.assert_array_equal(a.counts_off.data, b.counts_off.data)
    livetimes = np.array([r.livetime.to_value("h") for r in runs])
    offsets = np.array([r.meta_table["OFFSET"][0] for r in runs])
    thresholds = np.array([r.mask_safe.data.ravel().argmax() for r in runs])
    assert livetimes.min() >= 0.25 and livetimes.max() <= 2 and livetimes.std() > 0.2
    assert 0.3 <= offsets.min() and offsets.max() <= 2.0
    # the safe threshold rises with the offset (higher threshold, lower area far off-axis)
    assert len(set(thresholds)) > 1
    assert np.corrcoef(offsets, thresholds)[0, 1] > 0.5
    # exposure: the offset-dependent area times the livetime
    first = runs[0]
    area = offset_effective_area(
        first.energy_axis_true.center.to_value("TeV"), offsets[0], threshold_tev=0.5
    )[0]
    np.testing.assert_allclose(
        first.exposure.quantity.to_value("cm2 s").ravel(),
        area * 1e4 * first.livetime.to_value("s"),
        rtol=1e-12,
    )
    assert runs.models.names == ["src"]


def test_simulated_counts_follow_the_truth():
    """Summed over 200 runs, ON - alpha OFF matches the predicted signal within Poisson errors."""
    runs = simulate_spectrum_runs(SPECTRAL, 200, random_seed=3, offset=0.5, livetime="1 h")
    signal = sum(npred_spectrum(r, SPECTRAL) for r in runs)
    excess = sum((r.counts.data - r.alpha.data * r.counts_off.data).ravel() for r in runs)
    variance = sum((r.counts.data + r.alpha.data**2 * r.counts_off.data).ravel() for r in runs)
    pull = (excess - signal) / np.sqrt(np.maximum(variance, 1))
    assert np.abs(pull).max() < 5 and abs(pull.mean()) < 1


def test_thousand_runs_are_fast_and_cash_runs_carry_their_background():
    start = time.perf_counter()
    runs = simulate_spectrum_runs(SPECTRAL, 1000, random_seed=1, onoff=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"1000 runs took {elapsed:.1f} s"
    assert runs[0].tag == "SpectrumDataset" and runs[0].background.data.sum() > 0
    with pytest.raises(ModelError, match="n_runs"):
        simulate_spectrum_runs(SPECTRAL, 0)
    given = simulate_spectrum_runs(SPECTRAL, 3, livetime=[1, 2, 3] * u.h, offset=[0.5, 1.0, 1.5])
    assert [r.livetime.to_value("h") for r in given] == pytest.approx([1, 2, 3])
