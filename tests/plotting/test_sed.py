"""SED plot: flux points, posterior band and MAP curve, residuals."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy import units as u  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402

from bayesdl4.datasets.flux_points import FluxPoints  # noqa: E402
from bayesdl4.datasets.flux_points_dataset import FluxPointsDataset  # noqa: E402
from bayesdl4.models import LogParabolaSpectralModel, SkyModel  # noqa: E402
from bayesdl4.plotting.sed import plot_sed, sed_band  # noqa: E402
from tests.conftest import gammapy_data  # noqa: E402

HAWC = "hawc/crab_flux/HAWC19_flux_points.fits"
# a log-parabola close to the HAWC best fit and a Gaussian posterior around it
MAP = {"crab.amplitude": 3.75e-11, "crab.alpha": 2.487, "crab.beta": 0.0628}
SIGMA = {"crab.amplitude": 1.06e-12, "crab.alpha": 0.039, "crab.beta": 0.0113}


def hawc_dataset():
    model = SkyModel(LogParabolaSpectralModel(amplitude="3e-11 cm-2 s-1 TeV-1", alpha=2.5, beta=0.1,
                                              reference="1 TeV"), name="crab")
    return FluxPointsDataset(data=FluxPoints.read(gammapy_data() / HAWC), models=model, name="hawc",
                             stat_type="distrib")


def gaussian_posterior(n=(2, 400), seed=1):
    rng = np.random.default_rng(seed)
    return {k: MAP[k] + SIGMA[k] * rng.standard_normal(n) for k in MAP}


def test_band_quantiles_and_map_curve():
    ds = hawc_dataset()
    energy = [1.0, 10.0, 100.0] * u.TeV
    band = sed_band(ds, energy, posterior=gaussian_posterior(), map_values=MAP, sed_type="dnde",
                    n_draws=800)
    model = LogParabolaSpectralModel(amplitude=f"{MAP['crab.amplitude']} cm-2 s-1 TeV-1",
                                     alpha=MAP["crab.alpha"], beta=MAP["crab.beta"], reference="1 TeV")
    assert_allclose(band["map"], model(energy).to_value("cm-2 s-1 TeV-1"), rtol=1e-12)
    q = band["quantiles"]
    assert np.all(np.diff(q, axis=0) > 0)
    # at 1 TeV (the reference) the band is the amplitude's: 68 % half-width = sigma (to 10 %)
    assert 0.5 * (q[3, 0] - q[1, 0]) == pytest.approx(SIGMA["crab.amplitude"], rel=0.1)
    assert q[2, 0] == pytest.approx(MAP["crab.amplitude"], rel=0.01)
    # the models' own values are left as they were
    assert ds.models["crab"].spectral_model.alpha.value == 2.5


def test_plot_sed_png(tmp_path):
    import matplotlib.pyplot as plt

    ds = hawc_dataset()
    ax, ax_res = plot_sed(ds, posterior=gaussian_posterior(), map_values=MAP)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for label in ("posterior 95 %", "posterior 68 %", "posterior median", "MAP", "flux points",
                  "upper limits"):
        assert label in labels
    # residuals of the measured points relative to the MAP curve
    points = ax_res.containers[0].lines[0].get_ydata()
    fp = ds.data
    model = sed_band(ds, fp.energy_ref, map_values=MAP)["map"]
    measured = ~fp.is_ul
    expected = fp.e2dnde.to_value("erg cm-2 s-1")[measured] / model[measured] - 1
    assert_allclose(points, expected, rtol=1e-10)
    path = tmp_path / "sed.png"
    ax.figure.savefig(path, dpi=80)
    plt.close(ax.figure)
    assert path.stat().st_size > 10_000
