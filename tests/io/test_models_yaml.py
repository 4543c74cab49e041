"""Models YAML in gammapy 2.1's schema: round trips, gammapy's files, gammapy as the reader/writer."""

import logging
import os

import numpy as np
import pytest
import yaml
from astropy import units as u

import bayesdl4.models as bm
from bayesdl4.errors import DataFormatError, ModelError
from bayesdl4.io.models_yaml import (
    FoVBackgroundModel,
    models_to_yaml,
    read_models,
    write_models,
)
from bayesdl4.models import spectral


def _all_spectral_models():
    """One instance of every registered spectral model (tables built in memory)."""
    models = []
    seen = set()
    for cls in spectral.SPECTRAL_MODEL_REGISTRY.values():
        if cls in seen:
            continue
        seen.add(cls)
        if cls is bm.CompoundSpectralModel:
            models.append(bm.PowerLawSpectralModel() * bm.PowerLawNormSpectralModel(tilt=0.1))
        elif cls is bm.TemplateSpectralModel:
            models.append(cls([1, 2, 4] * u.TeV, [3e-12, 1e-12, 2e-13] * u.Unit("cm-2 s-1 TeV-1")))
        elif cls is bm.PiecewiseNormSpectralModel:
            models.append(cls([0.1, 1, 10] * u.TeV, [1.1, 0.9, 1.2], interp="lin"))
        elif cls is bm.EBLAbsorptionNormSpectralModel:
            energy = np.geomspace(0.01, 100, 5) * u.TeV
            param = np.array([0.0, 0.5, 1.0])
            models.append(
                cls(energy, param, np.exp(-param[:, None] * energy.value**0.5), redshift=0.3)
            )
        else:
            models.append(cls())
    return models


def _modified(model, seed, values_only=False):
    """Change every parameter's value and some of its attributes, so defaults cannot hide bugs."""
    rng = np.random.default_rng(seed)
    for i, par in enumerate(model.parameters):
        par.value = par.value * (1 + 0.1 * rng.uniform()) + (0.05 if par.value == 0 else 0)
        if values_only:
            continue
        if i % 2 == 0:
            par.frozen = not par.frozen
        if i % 3 == 0:
            par.error = 0.01 * abs(par.value) + 1e-3
            par.min = par.value - 1.0
        if i % 3 == 1:
            par.max = abs(par.value) * 10 + 1
    return model


def _assert_same_parameters(ours, other):
    assert [p.name for p in ours] == [p.name for p in other]
    for a, b in zip(ours, other, strict=True):
        assert a.value == b.value and a.unit == b.unit and a.frozen == b.frozen, a.name
        assert a.error == b.error, a.name
        for key in ("min", "max"):
            x, y = getattr(a, key), getattr(b, key)
            assert (np.isnan(x) and np.isnan(y)) or x == y, (a.name, key)
        assert type(a.prior) is type(b.prior), a.name
        if a.prior is not None:
            assert a.prior.to_dict() == b.prior.to_dict()


def test_round_trip_every_spectral_model(tmp_path):
    models = bm.Models(
        [bm.SkyModel(_modified(m, i), name=f"m{i}") for i, m in enumerate(_all_spectral_models())]
    )
    models[0].datasets_names = ["a", "b"]
    path = tmp_path / "models.yaml"
    write_models(models, path)
    back = read_models(path)
    assert back.names == models.names and back[0].datasets_names == ["a", "b"]
    _assert_same_parameters(models.parameters, back.parameters)
    energy = np.geomspace(0.2, 20, 7) * u.TeV
    for ours, theirs in zip(models, back, strict=True):
        assert type(ours.spectral_model) is type(theirs.spectral_model)
        np.testing.assert_allclose(
            ours.spectral_model(energy).value, theirs.spectral_model(energy).value, rtol=1e-14
        )


def test_priors_units_and_links_round_trip(tmp_path):
    pl = bm.PowerLawSpectralModel(amplitude="1e-11 m-2 s-1 TeV-1", reference="500 GeV")
    pl.index.prior = bm.UniformPrior(min=1, max=4)
    pl.amplitude.prior = bm.LogUniformPrior(min=1e-14, max=1e-10)
    lp = bm.LogParabolaSpectralModel()
    lp.alpha.prior = bm.GaussianPrior(mu=2, sigma=0.3)
    other = bm.LogParabolaSpectralModel()
    other.alpha = lp.alpha  # one parameter shared by two sources
    models = bm.Models([bm.SkyModel(pl * lp, name="a"), bm.SkyModel(other, name="b")])
    text = models_to_yaml(models)
    data = yaml.safe_load(text)
    entries = data["components"][0]["spectral"]["model1"]["parameters"]
    assert entries[1]["unit"] == "TeV-1 s-1 m-2"
    assert entries[0]["prior"] == {
        "type": "UniformPrior",
        "parameters": [
            {"name": "min", "value": 1.0, "unit": ""},
            {"name": "max", "value": 4.0, "unit": ""},
        ],
        "weight": 1,
    }
    path = tmp_path / "m.yaml"
    path.write_text(text)
    back = read_models(path)
    _assert_same_parameters(models.parameters, back.parameters)
    assert back["a"].spectral_model.model2.alpha is back["b"].spectral_model.alpha
    assert len(back.parameters) == len(models.parameters) == 10  # 11 slots, one shared


def test_write_refuses_overwrite_and_is_atomic(tmp_path):
    models = bm.Models([bm.SkyModel(bm.PowerLawSpectralModel(), name="src")])
    path = tmp_path / "m.yaml"
    models.write(path)
    with pytest.raises(FileExistsError, match="overwrite"):
        models.write(path)
    models[0].spectral_model.index.value = 3.1
    models.write(path, overwrite=True)
    assert bm.Models.read(path)[0].spectral_model.index.value == 3.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]  # no temporary file left


def test_unknown_types_name_file_component_and_type(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "components:\n- name: crab\n  type: SkyModel\n  spectral:\n    type: NoSuchSpectralModel\n    parameters: []\n"
    )
    with pytest.raises(ModelError) as info:
        read_models(path)
    message = str(info.value)
    for part in (str(path), "crab", "NoSuchSpectralModel", "PowerLawSpectralModel"):
        assert part in message
    path.write_text("components:\n- name: n\n  type: TemplateNPredModel\n")
    with pytest.raises(ModelError, match="not supported yet"):
        read_models(path)
    path.write_text("components:\n- type: FoVBackgroundModel\n  datasets_names: [a, b]\n")
    with pytest.raises(ModelError, match="exactly one"):
        read_models(path)
    path.write_text("something: else\n")
    with pytest.raises(DataFormatError, match="components"):
        read_models(path)
    with pytest.raises(FileNotFoundError):
        read_models(tmp_path / "missing.yaml")


def test_missing_entries_take_class_defaults(tmp_path, caplog):
    """gammapy writes only what differs from the defaults (e.g. no 'frozen' for reference)."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "components:\n- name: s\n  type: SkyModel\n  spectral:\n    type: ecpl\n    parameters:\n"
        "    - {name: index, value: 2.5}\n    - {name: lambda_, value: 0.5, unit: GeV-1}\n"
    )
    with caplog.at_level(logging.WARNING):
        model = read_models(path)["s"].spectral_model
    assert isinstance(model, bm.ExpCutoffPowerLawSpectralModel)
    assert model.reference.frozen and model.alpha.frozen and not model.index.frozen
    assert model.amplitude.value == 1e-12 and model.amplitude.unit == u.Unit("cm-2 s-1 TeV-1")
    assert model.lambda_.quantity == 0.5 * u.Unit("GeV-1")
    assert "amplitude" in caplog.text
    path.write_text(
        "components:\n- name: s\n  spectral:\n    type: pl\n    parameters:\n"
        "    - {name: amplitude, value: 1, unit: TeV}\n"
    )
    with pytest.raises(ModelError, match="amplitude"):
        read_models(path)


@pytest.mark.realdata
def test_read_gammapy_simulation_files(gammapy_data, caplog):
    folder = gammapy_data / "datasets" / "simulations"
    files = sorted(folder.glob("*_model.yaml"))
    assert len(files) == 3
    with caplog.at_level(logging.WARNING):
        read = {f.name: read_models(f) for f in files}
    ecpl = read["simulated_spectrum_dataset_ECPL_model.yaml"]["source"].spectral_model
    assert isinstance(ecpl, bm.ExpCutoffPowerLawSpectralModel)
    assert ecpl.lambda_.quantity == 1 * u.Unit("TeV-1") and ecpl.index.value == 1.5
    assert ecpl.reference.frozen and ecpl.alpha.frozen
    pl = read["simulated_spectrum_dataset_PL_model.yaml"]["source"].spectral_model
    assert pl.amplitude.quantity == 1e-12 * u.Unit("cm-2 s-1 TeV-1") and pl.index.value == 2.0
    mapped = read["simulated_map_dataset_model.yaml"]
    bkg = mapped[0]
    assert isinstance(bkg, FoVBackgroundModel) and bkg.name == "E4h3eiR--bkg"
    assert isinstance(bkg.spectral_model, bm.PowerLawNormSpectralModel)
    source = mapped["source"]
    original = yaml.safe_load((folder / "simulated_map_dataset_model.yaml").read_text())
    again = yaml.safe_load(models_to_yaml(mapped))
    spatial, spatial_again = original["components"][1]["spatial"], again["components"][1]["spatial"]
    if source.spatial_model is None:  # no spatial models in this build: kept as a raw dict
        assert source.spatial_dict["type"] == "GaussianSpatialModel"
        assert "GaussianSpatialModel" in caplog.text
        assert spatial_again == spatial
    else:
        assert type(source.spatial_model).__name__ == "GaussianSpatialModel"
        assert source.spatial_model.sigma.quantity == 0.4 * u.deg
        assert (spatial_again["type"], spatial_again["frame"]) == (
            spatial["type"],
            spatial["frame"],
        )
        written = {p["name"]: (p["value"], p.get("unit", "")) for p in spatial_again["parameters"]}
        assert written == {
            p["name"]: (p["value"], p.get("unit", "")) for p in spatial["parameters"]
        }
    assert again["components"][0]["datasets_names"] == ["E4h3eiR-"]


@pytest.mark.realdata
def test_ebl_filename_kept_unexpanded(gammapy_data, tmp_path):
    ebl = bm.EBLAbsorptionNormSpectralModel.read_builtin("dominguez", redshift=0.2)
    models = bm.Models([bm.SkyModel(bm.PowerLawSpectralModel() * ebl, name="blazar")])
    data = yaml.safe_load(models_to_yaml(models))
    assert (
        data["components"][0]["spectral"]["model2"]["filename"]
        == "$GAMMAPY_DATA/ebl/ebl_dominguez11.fits.gz"
    )
    write_models(models, tmp_path / "m.yaml")
    back = read_models(tmp_path / "m.yaml")["blazar"].spectral_model
    energy = [0.1, 1, 5] * u.TeV
    np.testing.assert_allclose(
        back(energy).value, models[0].spectral_model(energy).value, rtol=1e-14
    )


# ---------------------------------------------------------------------------------------------
# gammapy 2.1 as the other end
# ---------------------------------------------------------------------------------------------


def _assert_same_as_gammapy(ours, theirs):
    """Our Parameters vs gammapy's (values, units, frozen, bounds, errors, priors)."""
    assert [p.name for p in ours] == list(theirs.names)
    for a, b in zip(ours, theirs, strict=True):
        assert a.value == b.value and a.unit == b.unit and a.frozen == b.frozen, a.name
        assert a.error == b.error, a.name
        for key in ("min", "max"):
            x, y = getattr(a, key), getattr(b, key)
            assert (np.isnan(x) and np.isnan(y)) or x == y, (a.name, key)
        if a.prior is None:
            assert b.prior is None, a.name
        else:
            assert type(a.prior).__name__ == type(b.prior).__name__
            for item in a.prior.to_dict()["parameters"]:
                assert getattr(b.prior, item["name"]).value == item["value"]


@pytest.mark.oracle
@pytest.mark.realdata
def test_gammapy_reads_what_we_write(tmp_path, gammapy_data):
    gm = pytest.importorskip("gammapy.modeling.models")
    components = []
    for i, model in enumerate(_all_spectral_models()):
        # gammapy's EBL reader takes only the values of redshift and alpha_norm
        model = _modified(
            model, i, values_only=isinstance(model, bm.EBLAbsorptionNormSpectralModel)
        )
        if model.is_norm_spectral_model:  # gammapy's SkyModel wants a flux
            model = bm.PowerLawSpectralModel() * model
        components.append(bm.SkyModel(model, name=f"m{i}"))
    source = next(c for c in components if type(c.spectral_model) is bm.PowerLawSpectralModel)
    shared = source.spectral_model.index
    shared.prior = bm.GaussianPrior(mu=2.0, sigma=0.5)
    components.append(bm.SkyModel(bm.PowerLawSpectralModel(index=shared), name="linked"))
    components.append(
        bm.SkyModel(
            bm.PowerLawSpectralModel()
            * bm.EBLAbsorptionNormSpectralModel.read_builtin("franceschini"),
            name="ebl",
            datasets_names=["d1"],
        )
    )
    models = bm.Models(components)
    path = tmp_path / "ours.yaml"
    write_models(models, path)
    theirs = gm.Models.read(path)
    assert theirs.names == models.names
    energy = np.geomspace(0.2, 20, 7) * u.TeV
    for ours_model, their_model in zip(models, theirs, strict=True):
        _assert_same_as_gammapy(ours_model.parameters, their_model.parameters)
        expected = their_model.spectral_model(energy)
        np.testing.assert_allclose(
            ours_model.spectral_model(energy).value,
            expected.to_value(ours_model.spectral_model.dnde_unit),
            rtol=1e-12,
        )
    # the link survives: one gammapy Parameter object in both sources
    assert theirs["linked"].spectral_model.index is theirs[source.name].spectral_model.index
    assert theirs["ebl"].datasets_names == ["d1"]


@pytest.mark.oracle
@pytest.mark.realdata
def test_we_read_what_gammapy_writes(tmp_path, gammapy_data):
    gm = pytest.importorskip("gammapy.modeling.models")
    pl = gm.PowerLawSpectralModel(amplitude="1e-11 m-2 s-1 TeV-1", index=2.4)
    pl.index.prior = gm.UniformPrior(min=1, max=4)
    pl.amplitude.error = 1e-13
    lp = gm.LogParabolaSpectralModel(alpha=2.1, beta=0.2)
    lp.alpha.prior = gm.GaussianPrior(mu=2, sigma=0.3)
    lp.beta.frozen = True
    lp2 = gm.LogParabolaSpectralModel()
    lp2.alpha = lp.alpha
    ebl = gm.EBLAbsorptionNormSpectralModel.read_builtin("dominguez", redshift=0.2)
    template = gm.TemplateSpectralModel(
        [1, 2, 3] * u.TeV, [1e-12, 2e-13, 3e-14] * u.Unit("cm-2 s-1 TeV-1")
    )
    theirs = gm.Models(
        [
            gm.SkyModel(pl * ebl, name="a"),
            gm.SkyModel(
                lp * gm.PowerLawNormSpectralModel(tilt=0.1), name="b", datasets_names=["x"]
            ),
            gm.SkyModel(lp2, name="c"),
            gm.SkyModel(template, name="d"),
            gm.SkyModel(gm.SuperExpCutoffPowerLaw4FGLDR3SpectralModel(index_2=0.6), name="e"),
        ]
    )
    for full_output in (False, True):
        path = tmp_path / f"gammapy-{full_output}.yaml"
        theirs.write(path, full_output=full_output)
        ours = read_models(path)
        assert ours.names == theirs.names
        for ours_model, their_model in zip(ours, theirs, strict=True):
            _assert_same_as_gammapy(ours_model.parameters, their_model.parameters)
        assert ours["b"].spectral_model.model1.alpha is ours["c"].spectral_model.alpha
        assert ours["b"].datasets_names == ["x"]
        energy = np.geomspace(0.2, 20, 7) * u.TeV
        np.testing.assert_allclose(
            ours["a"].spectral_model(energy).value,
            theirs["a"].spectral_model(energy).to_value("cm-2 s-1 TeV-1"),
            rtol=1e-9,
        )


@pytest.mark.oracle
@pytest.mark.realdata
def test_gammapy_reads_our_map_dataset_models(tmp_path, gammapy_data):
    gm = pytest.importorskip("gammapy.modeling.models")
    source = gammapy_data / "datasets" / "simulations" / "simulated_map_dataset_model.yaml"
    ours = read_models(source)
    path = tmp_path / "map_models.yaml"
    write_models(ours, path)
    theirs = gm.Models.read(path)
    original = gm.Models.read(source)
    assert theirs.names == original.names
    for a, b in zip(theirs.parameters, original.parameters, strict=True):
        assert (a.name, a.value, a.unit, a.frozen) == (b.name, b.value, b.unit, b.frozen)
    assert os.path.exists(path)


def test_shared_spatial_parameter_round_trips(tmp_path):
    spatial = pytest.importorskip("bayesdl4.models.spatial")
    first = spatial.GaussianSpatialModel(
        lon_0="0.2 deg", lat_0="0.1 deg", sigma="0.3 deg", frame="galactic"
    )
    second = spatial.GaussianSpatialModel(
        lon_0="0.5 deg", lat_0="0.1 deg", sigma="0.1 deg", frame="galactic"
    )
    second.lat_0 = first.lat_0
    models = bm.Models(
        [
            bm.SkyModel(bm.PowerLawSpectralModel(), first, name="a"),
            bm.SkyModel(bm.PowerLawSpectralModel(), second, name="b"),
        ]
    )
    write_models(models, tmp_path / "m.yaml")
    back = read_models(tmp_path / "m.yaml")
    assert back["a"].spatial_model.lat_0 is back["b"].spatial_model.lat_0
    assert back["b"].spatial_model.lon_0.quantity == 0.5 * u.deg
    assert back["a"].spatial_model.frame == "galactic"


def test_constant_spatial_model_writes_like_gammapy(tmp_path):
    from bayesdl4.models import ConstantSpatialModel, Models, PowerLawSpectralModel, SkyModel

    models = Models([SkyModel(PowerLawSpectralModel(), ConstantSpatialModel(), name="diffuse")])
    path = tmp_path / "models.yaml"
    models.write(path)
    back = Models.read(path)
    assert back[0].spatial_model.tag[0] == "ConstantSpatialModel"
    assert back[0].spectral_model.index.value == 2.0


@pytest.mark.oracle
@pytest.mark.parametrize("placement", ["exact", "gammapy"])
def test_point_source_placement_round_trip_and_gammapy_reads_it(tmp_path, placement):
    """``placement`` survives our round trip; gammapy 2.1 reads the file (ignoring the key); a gammapy
    file (no key) gives the default placement, "exact"."""
    gp_models = pytest.importorskip("gammapy.modeling.models")
    spatial = bm.PointSpatialModel(lon_0="83.63 deg", lat_0="22.01 deg", frame="icrs", placement=placement)
    models = bm.Models([bm.SkyModel(bm.PowerLawSpectralModel(), spatial, name="src")])
    path = tmp_path / "models.yaml"
    path.write_text(models_to_yaml(models))
    assert read_models(path)["src"].spatial_model.placement == placement
    theirs = gp_models.Models.read(path)
    assert theirs["src"].spatial_model.lon_0.value == pytest.approx(83.63)
    theirs.write(tmp_path / "gammapy.yaml")
    assert "placement" not in (tmp_path / "gammapy.yaml").read_text()
    assert read_models(tmp_path / "gammapy.yaml")["src"].spatial_model.placement == "exact"
