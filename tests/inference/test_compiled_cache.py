"""The cache of compiled joint log densities is keyed by content: hits for the same structure with
other free values, misses for anything the graph depends on."""

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.inference import fit
from bayesdl4.inference.compiled import content_key
from bayesdl4.inference.model import JointModel
from bayesdl4.models import (
    GaussianPrior,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
    UniformPrior,
)
from tests.helpers import simulated_onoff


def _models(index=2.0, amplitude=1e-11, prior=True):
    model = PowerLawSpectralModel(index=index, amplitude=amplitude * u.Unit("cm-2 s-1 TeV-1"))
    if prior:
        model.index.prior = UniformPrior(1, 4)
        model.amplitude.prior = UniformPrior(1e-13, 1e-9)
    return Models([SkyModel(model, name="src")])


@pytest.fixture(scope="module")
def datasets():
    return simulated_onoff(n=2, seed=11)


def _key(datasets, models):
    datasets.models = models
    return JointModel(datasets).structure_key()


def test_fresh_models_with_other_free_values_share_the_key(datasets):
    assert _key(datasets, _models()) == _key(datasets, _models(index=2.7, amplitude=3e-11))


@pytest.mark.parametrize("change", ["frozen value", "freeze", "scale", "bounds", "prior", "link", "name"])
def test_anything_the_graph_depends_on_changes_the_key(datasets, change):
    base = _key(datasets, _models())
    models = _models()
    spectral = models["src"].spectral_model
    if change == "frozen value":
        spectral.reference.value = 2.0
    elif change == "freeze":
        spectral.index.frozen = True
    elif change == "scale":  # only for graphs with the scales inside (the PyMC model for nutpie)
        spectral.amplitude.scale = 1e-12
        datasets.models = models
        changed = JointModel(datasets).structure_key(scales=False)
        datasets.models = _models()
        assert changed == JointModel(datasets).structure_key(scales=False)
    elif change == "bounds":
        spectral.index.min = 1.5
    elif change == "prior":
        spectral.index.prior = GaussianPrior(2.5, 0.3)
    elif change == "link":
        other = PowerLawSpectralModel(index=spectral.index)  # shares the Parameter object
        models = Models([models["src"], SkyModel(other, name="src2")])
        unlinked = Models([_models()["src"], SkyModel(PowerLawSpectralModel(), name="src2")])
        assert _key(datasets, models) != _key(datasets, unlinked)
    elif change == "name":
        models = Models([SkyModel(spectral, name="other")])
    assert _key(datasets, models) != base


def test_data_and_spatial_values_change_the_key():
    models = _models()
    key = content_key(simulated_onoff(n=2, seed=11), models, ["a"])
    changed = simulated_onoff(n=2, seed=11)
    assert content_key(changed, models, ["a"]) == key
    changed[0].counts.data[0] += 1
    assert content_key(changed, models, ["a"]) != key
    # a point source's free position enters the key (map graphs place their cutouts there)
    point = SkyModel(PowerLawSpectralModel(), PointSpatialModel(lon_0="1 deg", lat_0="2 deg"), name="p")
    moved = SkyModel(PowerLawSpectralModel(), PointSpatialModel(lon_0="1.5 deg", lat_0="2 deg"), name="p")
    assert content_key([], [point], []) != content_key([], [moved], [])
    brighter = SkyModel(PowerLawSpectralModel(index=3), PointSpatialModel(lon_0="1 deg", lat_0="2 deg"), name="p")
    assert content_key([], [point], []) == content_key([], [brighter], [])


def test_refit_on_fresh_models_reuses_the_compiled_function_and_gives_the_same_fit(datasets):
    datasets.models = _models()
    first = fit(datasets)
    fn = JointModel(datasets).log_density_function()
    datasets.models = _models(index=3.1, amplitude=5e-12)  # another scale for the amplitude, too
    assert JointModel(datasets).log_density_function().core is fn.core
    again = fit(datasets)
    assert again.success
    for name in first.names:
        assert again[name].value == pytest.approx(first[name].value, rel=1e-5)
        assert again[name].error == pytest.approx(first[name].error, rel=1e-3)
    # the cached function evaluates the new objects' values, not the old ones
    joint = JointModel(datasets)
    x = np.array([2.2, 2e-11]) / joint.scales
    joint.set_values(x * joint.scales)
    np.testing.assert_allclose(datasets.stat_sum(), joint.log_density_function()(x)[2], rtol=1e-10)


def test_nutpie_model_from_the_cache_starts_at_the_new_values(datasets):
    datasets.models = _models(index=2.2, amplitude=2e-11)
    compiled = JointModel(datasets).nutpie_model()
    datasets.models = _models(index=3.5, amplitude=7e-11)
    joint = JointModel(datasets)
    again = joint.nutpie_model()
    assert again._make_logp_func is compiled._make_logp_func  # compiled once
    expand = again._make_expand_func(0, 0, 0)
    start = expand(again._make_initial_points(3))
    assert start["src.index"] == pytest.approx(3.5, rel=1e-2)
    assert start["src.amplitude"] == pytest.approx(7e-11, rel=1e-2)


def test_equal_arrays_on_other_pixels_or_energies_change_the_key():
    from bayesdl4.datasets import MapDataset
    from bayesdl4.maps import MapAxis, WcsGeom

    energy = MapAxis.from_energy_bounds(1 * u.TeV, 10 * u.TeV, 2, name="energy")

    def empty(lon=0.0, emax=20.0):
        geom = WcsGeom.create(skydir=(lon, 0), binsz=0.1, npix=(5, 5), frame="galactic", axes=[energy])
        true = MapAxis.from_energy_bounds(0.5 * u.TeV, emax * u.TeV, 3, name="energy_true")
        return MapDataset.create(geom, energy_axis_true=true, name="d")

    key = content_key([empty()], [], [])
    assert content_key([empty()], [], []) == key
    assert content_key([empty(lon=1.0)], [], []) != key  # same (zero) arrays, other sky pixels
    assert content_key([empty(emax=30.0)], [], []) != key  # other true-energy bins
