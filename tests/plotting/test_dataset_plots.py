"""Dataset quick-look plots write figures with the expected panels and the dataset's numbers."""

import os

import matplotlib
import numpy as np
import pytest

from bayesdl4.datasets.stack import stack
from bayesdl4.models import SkyModel
from tests.datasets.builders import random_map, random_spectrum, source_model

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODEL = source_model()
# set BAYESDL4_PLOT_DIR to keep the PNGs for a look
KEEP = os.environ.get("BAYESDL4_PLOT_DIR")


def _save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    if KEEP:
        fig.savefig(os.path.join(KEEP, f"{name}.png"), dpi=80)
    plt.close(fig)
    assert path.stat().st_size > 2000
    return path


@pytest.mark.parametrize("onoff", [False, True])
def test_spectrum_plots(tmp_path, onoff):
    runs = [random_spectrum(np.random.default_rng(i), f"r{i}", onoff=onoff) for i in range(3)]
    dataset = stack(runs, name="stacked")
    dataset.models = [SkyModel(MODEL.spectral_model, name="src")]
    dataset.fake(random_seed=1)  # counts drawn from the model: residuals scatter around 0
    fit = np.ones(dataset.data_shape, dtype=bool)
    fit[-2:] = False
    dataset.mask_fit = dataset.counts.copy(data=fit)
    ax_spectrum, ax_residuals = dataset.plot_fit()
    # the step drawn is the prediction summed per bin
    steps = [p for p in ax_spectrum.patches if p.get_label() == "npred"]
    assert len(steps) == 1
    np.testing.assert_allclose(steps[0].get_data().values, dataset.npred().data.ravel(), rtol=1e-12)
    _save(ax_spectrum.figure, tmp_path, f"spectrum_fit_{'onoff' if onoff else 'cash'}")
    fig = dataset.peek()
    assert len(fig.axes) >= 4
    _save(fig, tmp_path, f"spectrum_peek_{'onoff' if onoff else 'cash'}")
    fig = plt.figure()
    dataset.plot_masks(ax=fig.gca())
    _save(fig, tmp_path, "spectrum_masks")


@pytest.mark.parametrize("onoff", [False, True])
def test_map_plots(tmp_path, onoff):
    dataset = random_map(
        np.random.default_rng(5), "map", onoff=onoff, npix=25, binsz=0.04, psf_sigma=0.08
    )
    dataset.models = [MODEL]
    dataset.fake(random_seed=2)
    fig = dataset.peek()
    assert len(fig.axes) >= 6
    _save(fig, tmp_path, f"map_peek_{'onoff' if onoff else 'cash'}")
    ax_spatial, ax_spectral = dataset.plot_residuals()
    # the spectral residuals shown are counts - npred summed over the sky, for the fitted bins
    shown = ax_spectral.lines[0].get_ydata() if ax_spectral.lines else None
    counts = (dataset.counts.data * dataset.mask_image).sum(axis=(1, 2))
    npred = (dataset.npred().data * dataset.mask_image).sum(axis=(1, 2))
    fitted = np.any(dataset.mask, axis=(1, 2))
    np.testing.assert_allclose(shown, (counts - npred)[fitted], rtol=1e-10)
    _save(ax_spatial.figure, tmp_path, f"map_residuals_{'onoff' if onoff else 'cash'}")
