"""Priors, populations and nuisance models in the models YAML: round trips, gammapy 2.1's files,
links, and bad input naming file, model and parameter."""

import numpy as np
import pytest
import yaml
from astropy import units as u

import bayesdl4.models as bm
from bayesdl4.errors import ModelError
from bayesdl4.io.models_yaml import models_from_dict, models_to_dict, read_models, write_models
from bayesdl4.models.priors import restrict
from tests.helpers import simulated_onoff

ALL_PRIORS = [
    bm.UniformPrior(1.0, 4.0, weight=2.0),
    bm.LogUniformPrior(1e-13, 1e-10, weight=0.5),
    bm.GaussianPrior(2.0, 0.3, weight=3.0),
    bm.GeneralizedGaussianPrior(2.0, 0.3, eta=0.7, weight=1.5),
    bm.HalfNormalPrior(0.2, weight=1.2),
    bm.LogNormalPrior(-0.5, 0.4, weight=0.8),
    bm.TruncatedNormalPrior(1.0, 0.5, 0.0, np.inf, weight=2.2),
    bm.TruncatedNormalPrior(1.0, 0.5, -np.inf, 3.0),
]


def _round_trip(models, tmp_path, name="m.yaml"):
    path = tmp_path / name
    write_models(models, path)
    return read_models(path), path


def _source(name, **kwargs):
    return bm.SkyModel(bm.PowerLawSpectralModel(**kwargs), name=name)


def test_every_prior_type_round_trips_with_its_weight(tmp_path):
    models = bm.Models([_source(f"s{i}") for i in range(len(ALL_PRIORS))])
    for model, prior in zip(models, ALL_PRIORS, strict=True):
        model.spectral_model.index.prior = prior
    models[0].spectral_model.amplitude.prior = bm.LogUniformPrior(1e-14, 1e-9)
    back, _ = _round_trip(models, tmp_path)
    for model, prior in zip(back, ALL_PRIORS, strict=True):
        read = model.spectral_model.index.prior
        assert type(read) is type(prior) and read == prior and read.weight == prior.weight
    assert back[0].spectral_model.amplitude.prior == bm.LogUniformPrior(1e-14, 1e-9)


def test_prior_parameters_in_another_unit_are_converted(tmp_path):
    text = """components:
-   name: crab
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: reference
            value: 800.0
            unit: GeV
            prior:
                type: GaussianPrior
                parameters:
                -   {name: mu, value: 1.0, unit: TeV}
                -   {name: sigma, value: 0.1, unit: TeV}
                weight: 1
        -   name: amplitude
            value: 1.0e-8
            unit: m-2 s-1 TeV-1
            prior:
                type: LogUniformPrior
                parameters:
                -   {name: min, value: 1.0e-13, unit: cm-2 s-1 TeV-1}
                -   {name: max, value: 1.0e-7, unit: ''}
                weight: 1
"""
    path = tmp_path / "units.yaml"
    path.write_text(text)
    spectral = read_models(path)["crab"].spectral_model
    assert spectral.reference.prior == bm.GaussianPrior(1000.0, 100.0)
    np.testing.assert_allclose(
        [spectral.amplitude.prior.min, spectral.amplitude.prior.max], [1e-9, 1e-7], rtol=1e-12
    )


def test_flat_prior_is_never_written(tmp_path):
    models = bm.Models([_source("a")])
    index = models[0].spectral_model.index
    index.prior = bm.FlatPrior(1.0, np.inf)
    amplitude = models[0].spectral_model.amplitude
    amplitude.prior = restrict(bm.GaussianPrior(1e-12, 1e-12), 0.0, np.nan)
    entries = models_to_dict(models)["components"][0]["spectral"]["parameters"]
    assert "prior" not in entries[0] and entries[0]["min"] == 1.0
    assert entries[1]["prior"]["type"] == "GaussianPrior" and entries[1]["min"] == 0.0
    back, _ = _round_trip(models, tmp_path)
    for ours, theirs in zip(models.parameters, back.parameters, strict=True):
        a, b = (
            restrict(ours.prior, ours.min, ours.max),
            restrict(theirs.prior, theirs.min, theirs.max),
        )
        assert a.support == b.support and a.structure_key() == b.structure_key(), ours.name


def _population_models():
    population = bm.PopulationPrior(
        "flux",
        mu=bm.GaussianPrior(1e-11, 5e-12),
        sigma=bm.HalfNormalPrior(3e-12),
        distribution="normal",
    )
    norms = bm.PopulationPrior(
        "bkg",
        mu=bm.GaussianPrior(0.0, 0.2),
        sigma=bm.HalfNormalPrior(0.1),
        distribution="lognormal",
    )
    models = [_source(f"s{i}") for i in range(3)]
    for model in models:
        model.spectral_model.amplitude.prior = population
    backgrounds = [bm.FoVBackgroundModel(f"run{i}") for i in range(2)]
    for model in backgrounds:
        model.spectral_model.norm.prior = norms
    return bm.Models(models + backgrounds), population, norms


def test_population_prior_is_written_per_member_and_read_as_one_object(tmp_path):
    models, population, norms = _population_models()
    back, path = _round_trip(models, tmp_path)
    data = yaml.safe_load(path.read_text())
    entries = [c["spectral"]["parameters"][1]["prior"] for c in data["components"][:3]]
    assert all(e == population.to_dict() for e in entries)
    amplitude_priors = [back[f"s{i}"].spectral_model.amplitude.prior for i in range(3)]
    assert all(p is amplitude_priors[0] for p in amplitude_priors)
    assert amplitude_priors[0].structure_key() == population.structure_key()
    norm_priors = [back[f"run{i}-bkg"].spectral_model.norm.prior for i in range(2)]
    assert norm_priors[0] is norm_priors[1] and norm_priors[0] is not amplitude_priors[0]
    assert norm_priors[0].structure_key() == norms.structure_key()
    # each file read is its own set of populations
    again = read_models(path)
    assert again["s0"].spectral_model.amplitude.prior is not amplitude_priors[0]


def test_population_defined_twice_differently_raises(tmp_path):
    models, _, _ = _population_models()
    data = models_to_dict(models)
    data["components"][2]["spectral"]["parameters"][1]["prior"]["mu"]["parameters"][1]["value"] = (
        1e-12
    )
    with pytest.raises(ModelError) as info:
        models_from_dict(data, filename="pop.yaml")
    message = str(info.value)
    assert message.startswith("pop.yaml: PopulationPrior 'flux' is defined differently")
    assert (
        "model 's0' parameter 'amplitude'" in message
        and "model 's2' parameter 'amplitude'" in message
    )


def test_nuisance_models_round_trip_next_to_sky_and_background_models(tmp_path):
    shared = bm.Parameter("z", 0.02, "", min=-0.99, prior=bm.GaussianPrior(0.0, 0.15))
    models = bm.Models(
        [
            _source("crab", index=2.4),
            bm.FoVBackgroundModel("run1"),
            bm.EnergyScaleModel(["run1", "run2"], z=0.01, name="hess-energy-scale"),
            bm.EnergyScaleModel(["run3"], z=shared),
            bm.EnergyScaleModel(["run4"], z=shared),
            bm.EffectiveAreaScaleModel(["run1"], norm=1.05),
        ]
    )
    models["hess-energy-scale"].z.prior = bm.GaussianPrior(0.0, 0.05, weight=2.0)
    models["run1-area-scale"].norm.prior = bm.LogNormalPrior(0.0, 0.1)
    back, path = _round_trip(models, tmp_path)
    assert back.names == models.names
    assert [type(m) for m in back] == [type(m) for m in models]
    for ours, theirs in zip(models, back, strict=True):
        assert theirs.datasets_names == ours.datasets_names
        for a, b in zip(ours.parameters, theirs.parameters, strict=True):
            assert (a.name, a.value, a.prior) == (b.name, b.value, b.prior)
            assert np.array_equal([a.min, a.max], [b.min, b.max], equal_nan=True)
    # the shared z is written with a link label and read back as one parameter
    components = yaml.safe_load(path.read_text())["components"]
    labels = [components[i]["parameters"][0].get("link") for i in (2, 3, 4)]
    assert labels[0] is None and labels[1] is not None and labels[1] == labels[2]
    assert back["run3-energy-scale"].z is back["run4-energy-scale"].z
    assert back["hess-energy-scale"].z is not back["run3-energy-scale"].z
    assert components[2] == {
        "name": "hess-energy-scale",
        "type": "EnergyScaleModel",
        "datasets_names": ["run1", "run2"],
        "parameters": [components[2]["parameters"][0]],
    }


def test_per_dataset_models_round_trip_with_their_links(tmp_path):
    datasets = simulated_onoff(3)
    source = datasets.models["src"].spectral_model
    source.amplitude.prior = bm.PopulationPrior(
        "flux", mu=bm.LogUniformPrior(1e-12, 1e-10), sigma=bm.HalfNormalPrior(1e-11)
    )
    models = bm.per_dataset(datasets.models, datasets, ["src.amplitude"])
    models = bm.Models(
        [*models, bm.EnergyScaleModel([d.name for d in datasets], name="all-energy-scale")]
    )
    back, path = _round_trip(models, tmp_path)
    assert back.names == models.names
    assert [m.datasets_names for m in back] == [m.datasets_names for m in models]
    spectra = [back[f"src-run{i}"].spectral_model for i in range(3)]
    assert spectra[0].index is spectra[1].index is spectra[2].index
    assert spectra[0].index.prior == bm.UniformPrior(1, 4)
    assert len({id(s.amplitude) for s in spectra}) == 3
    assert spectra[0].amplitude.prior is spectra[2].amplitude.prior
    assert len(back.parameters) == len(models.parameters) == 2 + 3 + 1
    # and again: what we read writes the same file (but its date)
    again = models_to_dict(back)
    first = yaml.safe_load(path.read_text())
    assert again["components"] == first["components"]


def _models_text(prior):
    text = yaml.safe_dump(
        {
            "components": [
                {
                    "name": "crab",
                    "type": "SkyModel",
                    "spectral": {
                        "type": "PowerLawSpectralModel",
                        "parameters": [{"name": "index", "value": 2.0, "prior": prior}],
                    },
                }
            ]
        }
    )
    return text


@pytest.mark.parametrize(
    ("prior", "match"),
    [
        (
            {
                "type": "PopulationPrior",
                "mu": bm.GaussianPrior().to_dict(),
                "sigma": bm.HalfNormalPrior().to_dict(),
            },
            "a PopulationPrior entry needs a 'name'",
        ),
        (
            {"type": "PopulationPrior", "name": "p", "sigma": bm.HalfNormalPrior().to_dict()},
            r"PopulationPrior 'p': entry \['mu'\] missing",
        ),
        (
            {"type": "PopulationPrior", "name": "p", "mu": bm.GaussianPrior().to_dict()},
            r"PopulationPrior 'p': entry \['sigma'\] missing",
        ),
        ({"type": "CauchyPrior", "parameters": []}, "unknown prior type 'CauchyPrior'"),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "eta", "value": 1.0}]},
            r"GaussianPrior takes the parameters \['mu', 'sigma'\]",
        ),
        (
            {
                "type": "UniformPrior",
                "parameters": [{"name": "min", "value": 2.0}, {"name": "max", "value": 1.0}],
            },
            "UniformPrior needs min < max",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "sigma", "value": "wide"}]},
            "GaussianPrior.sigma must be a number",
        ),
        (
            {"type": "GaussianPrior", "parameters": [{"name": "mu", "value": 1.0, "unit": "TeV"}]},
            "GaussianPrior.mu in TeV cannot be expressed in the parameter's unit",
        ),
    ],
)
def test_bad_priors_name_file_model_and_parameter(tmp_path, prior, match):
    path = tmp_path / "bad.yaml"
    path.write_text(_models_text(prior))
    with pytest.raises(ModelError, match=match) as info:
        read_models(path)
    message = str(info.value)
    assert message.startswith(
        f"{path}: component 0 ('crab'): PowerLawSpectralModel: parameter 'index': prior"
    )


def test_bad_nuisance_component_names_file_and_model(tmp_path):
    data = models_to_dict(bm.Models([bm.EnergyScaleModel(["a"])]))
    data["components"][0]["parameters"][0]["prior"] = {
        "type": "HalfNormalPrior",
        "parameters": [{"name": "sigma", "value": 0.0}],
    }
    with pytest.raises(ModelError) as info:
        models_from_dict(data, filename="n.yaml")
    assert str(info.value).startswith(
        "n.yaml: component 0 ('a-energy-scale'): EnergyScaleModel 'a-energy-scale': parameter 'z': prior: "
        "HalfNormalPrior needs sigma > 0"
    )
    data["components"][0]["type"] = "PointingOffsetModel"
    with pytest.raises(
        ModelError,
        match="'PointingOffsetModel' is not supported yet; supported: .*'EnergyScaleModel'",
    ):
        models_from_dict(data, filename="n.yaml")


# ---- gammapy 2.1 as the oracle -------------------------------------------------------------


def _gammapy_models(gm):
    pl = gm.PowerLawSpectralModel(index=2.4)
    pl.index.prior = gm.GeneralizedGaussianPrior(mu=2.0, sigma=0.3, eta=0.7, weight=2.5)
    pl.amplitude.prior = gm.LogUniformPrior(min=1e-13, max=1e-9, weight=0.5)
    lp = gm.LogParabolaSpectralModel(alpha=2.1, beta=0.2)
    lp.alpha.prior = gm.GaussianPrior(mu=2, sigma=0.3, weight=3)
    lp.beta.prior = gm.UniformPrior(min=0, max=1)
    other = gm.LogParabolaSpectralModel()
    other.alpha = lp.alpha
    return gm.Models(
        [gm.SkyModel(pl, name="a"), gm.SkyModel(lp, name="b"), gm.SkyModel(other, name="c")]
    )


def _same_priors(ours, theirs):
    assert ours.names == theirs.names
    pairs = [
        pair
        for o, t in zip(ours, theirs, strict=True)
        for pair in zip(o.parameters, t.parameters, strict=True)
    ]
    for a, b in pairs:
        assert a.name == b.name and a.value == b.value
        for key in ("min", "max"):
            x, y = getattr(a, key), getattr(b, key)
            assert (np.isnan(x) and np.isnan(y)) or x == y, (a.name, key)
        if b.prior is None:
            assert a.prior is None, a.name
            continue
        assert type(a.prior).__name__ == type(b.prior).__name__, a.name
        assert a.prior.weight == b.prior.weight, a.name
        for par in b.prior.parameters:
            assert getattr(a.prior, par.name) == par.value, (a.name, par.name)
        for x in (0.5 * a.value, a.value, 1.5 * a.value):  # gammapy's term: -2 weight logpdf
            assert np.isclose(
                -2 * a.prior.weight * a.prior.logpdf(x), b.prior(x * u.one), rtol=1e-12
            )


@pytest.mark.oracle
def test_we_read_the_priors_gammapy_writes(tmp_path):
    gm = pytest.importorskip("gammapy.modeling.models")
    theirs = _gammapy_models(gm)
    for full_output in (False, True):
        path = tmp_path / f"gammapy-{full_output}.yaml"
        theirs.write(path, full_output=full_output)
        ours = read_models(path)
        _same_priors(ours, theirs)
        assert ours["b"].spectral_model.alpha is ours["c"].spectral_model.alpha


@pytest.mark.oracle
def test_gammapy_reads_the_priors_we_write(tmp_path):
    gm = pytest.importorskip("gammapy.modeling.models")
    ours = read_models(_write_gammapy(gm, tmp_path))
    path = tmp_path / "ours.yaml"
    write_models(ours, path)
    _same_priors(ours, gm.Models.read(path))


def _write_gammapy(gm, tmp_path):
    path = tmp_path / "gammapy.yaml"
    _gammapy_models(gm).write(path)
    return path
