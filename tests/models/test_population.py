"""`PopulationPrior` (definition, YAML form) and `per_dataset` (per-run copies, links)."""

import math

import numpy as np
import pytest

from bayesdl4.errors import ModelError
from bayesdl4.models import (
    EnergyScaleModel,
    FlatPrior,
    GaussianPrior,
    HalfNormalPrior,
    LogNormalPrior,
    Models,
    Parameter,
    PopulationPrior,
    TruncatedNormalPrior,
    UniformPrior,
    per_dataset,
)
from bayesdl4.models.nuisance import NuisanceModel
from tests.helpers import simulated_onoff


def _population(**kwargs):
    defaults = dict(mu=GaussianPrior(1.0, 0.2, weight=2.0), sigma=HalfNormalPrior(0.1))
    return PopulationPrior("bkg", **{**defaults, **kwargs})


@pytest.mark.parametrize(
    "population",
    [
        _population(),
        _population(distribution="lognormal", centered=True, sigma=LogNormalPrior(-2.0, 0.5)),
        _population(mu=FlatPrior(), sigma=FlatPrior(0.0)),
        _population(sigma=TruncatedNormalPrior(0.0, 0.3, 0.0, np.inf)),
    ],
)
def test_yaml_form_round_trips(population):
    data = population.to_dict()
    back = PopulationPrior.from_dict(data)
    assert back.structure_key() == population.structure_key()
    assert back.mu.weight == population.mu.weight


def test_flat_hyperpriors_are_null():
    data = _population(mu=FlatPrior(), sigma=FlatPrior(0.0)).to_dict()
    assert data["mu"] is None and data["sigma"] is None
    with pytest.raises(ModelError, match="PopulationPrior 'bkg': its mu prior .* has no YAML form"):
        _population(mu=FlatPrior(0.0, 2.0)).to_dict()


def test_entries_of_one_name_become_one_object():
    populations = {}
    first = PopulationPrior.from_dict(_population().to_dict(), populations)
    second = PopulationPrior.from_dict(_population().to_dict(), populations)
    assert first is second and populations == {"bkg": first}
    other = _population(mu=GaussianPrior(1.0, 0.3, weight=2.0)).to_dict()
    with pytest.raises(ModelError, match="'bkg' is defined twice with different hyperpriors"):
        PopulationPrior.from_dict(other, populations)


def test_hyperprior_units_follow_the_members():
    data = _population().to_dict()
    data["mu"]["parameters"] = [
        {"name": "mu", "value": 1000.0, "unit": "GeV"},
        {"name": "sigma", "value": 200.0, "unit": "GeV"},
    ]
    population = PopulationPrior.from_dict(data, unit="TeV")
    assert math.isclose(population.mu.mu, 1.0) and math.isclose(population.mu.sigma, 0.2)
    data["distribution"] = "lognormal"  # log space: hyperprior parameters are pure numbers
    with pytest.raises(
        ModelError, match="PopulationPrior 'bkg' mu: GaussianPrior.mu in GeV cannot"
    ):
        PopulationPrior.from_dict(data, unit="TeV", where="m.yaml: parameter 'norm'")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"name": None}, "needs a 'name'"),
        ({"name": 3}, "needs a 'name'"),
        ({"mu": "drop"}, r"entry \['mu'\] missing"),
        ({"sigma": "drop"}, r"entry \['sigma'\] missing"),
        ({"centered": "false"}, "centered must be true or false"),
        ({"distribution": "cauchy"}, "distribution must be one of"),
        ({"mu": {"type": "StudentT", "parameters": []}}, "'bkg' mu: unknown prior type 'StudentT'"),
        ({"sigma": GaussianPrior(0.0, 1.0).to_dict()}, "the prior of sigma must live on positive"),
        (
            {"sigma": {"type": "HalfNormalPrior", "parameters": [{"name": "sigma", "value": -1}]}},
            "'bkg' sigma: HalfNormalPrior needs sigma > 0",
        ),
    ],
)
def test_bad_entries_raise_naming_where(change, match):
    data = _population().to_dict()
    for key, value in change.items():
        if value == "drop":
            del data[key]
        else:
            data[key] = value
    with pytest.raises(ModelError, match=match) as info:
        PopulationPrior.from_dict(data, where="m.yaml: parameter 'norm'")
    assert str(info.value).startswith("m.yaml: parameter 'norm'")


def test_constructor_refuses_non_priors():
    with pytest.raises(ModelError, match="mu must be a prior"):
        PopulationPrior("x", mu=1.0, sigma=HalfNormalPrior(1.0))
    with pytest.raises(ModelError, match="sigma must live on positive values"):
        PopulationPrior("x", mu=GaussianPrior(), sigma=UniformPrior(-1, 1))


def test_per_dataset_copies_the_listed_parameters_and_links_the_rest():
    datasets = simulated_onoff(3)
    source = datasets.models["src"].spectral_model
    population = PopulationPrior(
        "flux", mu=GaussianPrior(1e-11, 1e-11), sigma=HalfNormalPrior(1e-11)
    )
    source.amplitude.prior = population
    models = per_dataset(datasets.models, datasets, ["src.amplitude"])
    assert models.names == ["src-run0", "src-run1", "src-run2"]
    assert [m.datasets_names for m in models] == [["run0"], ["run1"], ["run2"]]
    spectra = [m.spectral_model for m in models]
    assert all(s.index is source.index and s.reference is source.reference for s in spectra)
    amplitudes = [s.amplitude for s in spectra]
    assert len({id(a) for a in amplitudes}) == 3 and source.amplitude not in amplitudes
    assert all(a.prior is population for a in amplitudes)
    assert len(models.parameters) == 2 + 3  # index, reference shared; three amplitudes


def test_per_dataset_groups_by_meta():
    datasets = simulated_onoff(3)
    for dataset, instrument in zip(datasets, ["hess", "magic", "hess"], strict=True):
        dataset.meta["instrument"] = instrument
    models = per_dataset(datasets.models, datasets, ["index"], by="instrument")
    assert models.names == ["src-hess", "src-magic"]
    assert models["src-hess"].datasets_names == ["run0", "run2"]
    hess, magic = (models[n].spectral_model for n in models.names)
    assert hess.index is not magic.index and hess.amplitude is magic.amplitude
    with pytest.raises(ModelError, match="dataset 'run0' has no meta entry 'zenith'"):
        per_dataset(datasets.models, datasets, ["index"], by="zenith")
    with pytest.raises(ModelError, match="no model has a parameter 'src.beta'"):
        per_dataset(datasets.models, datasets, ["src.beta"])


def test_per_dataset_on_a_nuisance_model():
    datasets = simulated_onoff(3)
    scale = EnergyScaleModel([d.name for d in datasets], name="all-energy-scale")
    scale.z.prior = GaussianPrior(0.0, 0.1)
    source = datasets.models["src"]
    models = per_dataset(Models([source, scale]), datasets, ["all-energy-scale.z"])
    assert models.names == ["src"] + [f"all-energy-scale-run{i}" for i in range(3)]
    assert models["src"] is source
    copies = [models[f"all-energy-scale-run{i}"] for i in range(3)]
    assert [c.datasets_names for c in copies] == [["run0"], ["run1"], ["run2"]]
    assert len({id(c.z) for c in copies} | {id(scale.z)}) == 4
    assert all(c.z.prior == scale.z.prior for c in copies)


class _TwoParameterNuisance(NuisanceModel):
    tag = ("TwoParameterNuisance",)
    _suffix = "two"
    default_parameters = (Parameter("a", 1.0), Parameter("b", 2.0))

    def __init__(self, datasets_names, a=1.0, b=2.0, name=None):
        super().__init__(datasets_names, name=name, a=a, b=b)


def test_per_dataset_links_the_unlisted_parameters_of_a_nuisance_model():
    datasets = simulated_onoff(2)
    nuisance = _TwoParameterNuisance([d.name for d in datasets], name="two")
    models = per_dataset(Models([nuisance]), datasets, ["two.a"])
    first, second = models
    assert first.b is second.b is nuisance.b
    assert first.a is not second.a and nuisance.a not in (first.a, second.a)
