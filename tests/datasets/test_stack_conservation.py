"""npred is conserved by stacking (property-based): the stack predicts, bin by bin, the sum of
what the datasets predict within their safe masks.

Law: npred_stack_k = sum_j epsilon_jk npred_jk, for random sets of datasets with different safe
thresholds, exposures and energy dispersions (1e-6 relative; it holds to rounding). For maps
with different PSFs the stack holds the exposure-weighted PSF K_st and the law becomes the
identity

    npred_stack_k(x) - sum_j epsilon_jk npred_jk(x)
        = sum_l F_l sum_j e_jl epsilon_jk edisp_jlk (K_st,l(x) - K_jl(x))

(F: flux per true bin, e: exposure): per-energy totals stay conserved (normalised kernels) and
each pixel is off by at most sum_j npred_jk x max |K_st - K_j|, which the test checks.

The many random cases use numpy predictions written on the arrays (`tests.datasets.builders`);
fixed cases check the same law with the datasets' own ``npred_signal`` (the likelihood graphs).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import fftconvolve

from bayesdl4.datasets.stack import stack
from bayesdl4.models import SkyModel
from tests.datasets.builders import (
    CENTER,
    flux_true,
    npred_map,
    npred_spectrum,
    random_map,
    random_spectrum,
    source_model,
)

MODEL = source_model()
SPECTRAL = SkyModel(MODEL.spectral_model, name="src")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _runs(draw, builder, onoff, n_max=5, sigmas=None, **kwargs):
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(2, n_max))
    thresholds = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    if sigmas is not None:  # one PSF width per run
        kwargs["psf_sigma"] = None
        widths = draw(st.lists(sigmas, min_size=n, max_size=n))
    rng = np.random.default_rng(seed)
    runs = []
    for i, t in enumerate(thresholds):
        if sigmas is not None:
            kwargs["psf_sigma"] = widths[i]
        runs.append(builder(rng, f"r{i}", onoff=onoff, threshold_bin=t, **kwargs))
    return runs


@st.composite
def spectrum_runs(draw, onoff):
    return _runs(draw, random_spectrum, onoff)


@st.composite
def map_runs(draw, onoff, psf_sigma=None):
    """Maps of 1 x 1 deg; different PSFs (psf_sigma None) narrow enough to stay inside them."""
    sigmas = None if psf_sigma is not None else st.floats(0.04, 0.1)
    kwargs = {} if psf_sigma is None else {"psf_sigma": psf_sigma}
    return _runs(draw, random_map, onoff, n_max=4, sigmas=sigmas, npix=25, binsz=0.04, **kwargs)


def _safe(dataset):
    return dataset.mask_safe.data.astype(bool)


@SETTINGS
@given(runs=st.one_of(spectrum_runs(onoff=False), spectrum_runs(onoff=True)))
def test_spectrum_npred_conserved(runs):
    stacked = stack(runs)
    expected = sum(npred_spectrum(d, SPECTRAL) * _safe(d).ravel() for d in runs)
    np.testing.assert_allclose(npred_spectrum(stacked, SPECTRAL), expected, rtol=1e-6, atol=1e-12)
    # and the background: Cash maps sum it, ON/OFF conserve alpha x n_off
    background = sum(d.background.data * _safe(d) for d in runs)
    np.testing.assert_allclose(stacked.background.data, background, rtol=1e-9, atol=1e-12)


MAP_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MAP_SETTINGS
@given(runs=st.one_of(map_runs(onoff=False, psf_sigma=0.08), map_runs(onoff=True, psf_sigma=0.08)))
def test_map_npred_conserved_with_equal_psfs(runs):
    stacked = stack(runs)
    expected = sum(npred_map(d, MODEL) * _safe(d) for d in runs)
    np.testing.assert_allclose(
        npred_map(stacked, MODEL), expected, rtol=1e-6, atol=1e-9 * expected.max()
    )
    background = sum(d.background.data * _safe(d) for d in runs)
    np.testing.assert_allclose(stacked.background.data, background, rtol=1e-9, atol=1e-12)


def _kernels(dataset):
    return dataset.psf.get_psf_kernel(dataset.exposure.geom, position=CENTER).data


def _placed(kernel, shape):
    """Kernel planes (odd size) centred on the source pixel of maps of ``shape`` (ny, nx)."""
    delta = np.zeros(shape)
    delta[shape[0] // 2, shape[1] // 2] = 1.0
    return np.stack([fftconvolve(delta, k, mode="same") for k in kernel])


@MAP_SETTINGS
@given(runs=map_runs(onoff=False))
def test_map_npred_with_different_psfs_within_the_psf_spread(runs):
    stacked = stack(runs)
    got = npred_map(stacked, MODEL)
    individual = [npred_map(d, MODEL) * _safe(d) for d in runs]
    diff = got - sum(individual)
    shape = got.shape[-2:]
    flux = flux_true(MODEL, stacked.energy_axis_true)
    k_st = _placed(_kernels(stacked), shape)
    identity = np.zeros_like(diff)
    bound = np.zeros(diff.shape[0])
    for dataset, npred in zip(runs, individual, strict=True):
        exposure = dataset.exposure.quantity.to_value("cm2 s")[:, shape[0] // 2, shape[1] // 2]
        pdf = dataset.edisp.get_edisp_kernel(position=CENTER).pdf_matrix
        eps = _safe(dataset)[:, 0, 0]
        spread = k_st - _placed(_kernels(dataset), shape)
        identity += np.einsum("l,lk,k,lyx->kyx", flux * exposure, pdf, eps, spread)
        bound += npred.sum(axis=(1, 2)) * np.abs(spread).max()
    scale = np.abs(got).max()
    np.testing.assert_allclose(diff, identity, rtol=0, atol=1e-9 * scale)
    assert np.all(np.abs(diff).max(axis=(1, 2)) <= bound + 1e-12 * scale)
    # normalised kernels inside the map: the totals per energy bin are conserved
    np.testing.assert_allclose(got.sum(axis=(1, 2)), sum(individual).sum(axis=(1, 2)), rtol=1e-6)


# ------------------------------------------------------------------------------------ the graphs
@pytest.mark.parametrize("onoff", [False, True])
def test_spectrum_npred_from_the_graph_is_conserved(onoff):
    rng = np.random.default_rng(21)
    runs = [
        random_spectrum(rng, f"r{i}", onoff=onoff, threshold_bin=t) for i, t in enumerate((0, 2, 3))
    ]
    for run in runs:
        run.models = [SPECTRAL]
    expected = sum(d.npred_signal().data * _safe(d) for d in runs)
    stacked = stack(runs)
    stacked.models = [SPECTRAL]
    got = stacked.npred_signal().data
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # the numpy reference is the graph's prediction
    np.testing.assert_allclose(got.ravel(), npred_spectrum(stacked, SPECTRAL), rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("onoff", [False, True])
def test_map_npred_from_the_graph_is_conserved(onoff):
    """Equal PSFs: bin by bin; different PSFs: per-energy totals (normalised kernels)."""
    rng = np.random.default_rng(22)
    for sigmas in ((0.08, 0.08, 0.08), (0.04, 0.055, 0.07)):
        runs = [
            random_map(rng, f"r{i}", onoff=onoff, threshold_bin=t, psf_sigma=s, npix=25, binsz=0.04)
            for i, (t, s) in enumerate(zip((0, 1, 2), sigmas, strict=True))
        ]
        for run in runs:
            run.models = [MODEL]
        expected = sum(d.npred_signal().data * _safe(d) for d in runs)
        stacked = stack(runs)
        stacked.models = [MODEL]
        got = stacked.npred_signal().data
        if len(set(sigmas)) == 1:
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * expected.max())
        np.testing.assert_allclose(got.sum(axis=(1, 2)), expected.sum(axis=(1, 2)), rtol=1e-6)
