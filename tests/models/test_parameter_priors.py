"""Priors on parameters (`bayesdl4.models.parameter`): the YAML entry a prior gets, units of prior
parameters read from YAML, and the bounds a flat or restricted prior carries into min / max."""

import logging

import numpy as np
import pytest
from numpy.testing import assert_allclose

from bayesdl4.errors import ModelError
from bayesdl4.models import (
    FlatPrior,
    GaussianPrior,
    HalfNormalPrior,
    LogUniformPrior,
    Parameter,
    PopulationPrior,
    PowerLawSpectralModel,
)
from bayesdl4.models.parameter import parameter_from_dict, parameter_to_dict, parameters_from_dict
from bayesdl4.models.priors import Restricted, restrict

DEFAULT = Parameter("reference", 1.0, "TeV")


def _entry(par):
    return parameter_to_dict(par, DEFAULT)


def test_prior_dict_in_another_unit_is_converted_to_the_parameters_unit():
    prior = {
        "type": "GaussianPrior",
        "parameters": [
            {"name": "mu", "value": 1.0, "unit": "TeV"},
            {"name": "sigma", "value": 50.0, "unit": "GeV"},
        ],
    }
    par = Parameter("reference", 900.0, "GeV", prior=prior)
    assert par.prior == GaussianPrior(1000.0, 50.0)
    # gammapy's empty unit: the parameter's own
    prior["parameters"][0]["unit"] = ""
    assert Parameter("reference", 900.0, "GeV", prior=prior).prior == GaussianPrior(1.0, 50.0)


def test_prior_errors_name_model_and_parameter():
    data = {
        "type": "PowerLawSpectralModel",
        "parameters": [
            {
                "name": "index",
                "value": 2.0,
                "prior": {
                    "type": "UniformPrior",
                    "parameters": [{"name": "min", "value": 3.0}, {"name": "max", "value": 1.0}],
                },
            },
        ],
    }
    with pytest.raises(ModelError) as info:
        parameters_from_dict(
            data, PowerLawSpectralModel.default_parameters, "PowerLawSpectralModel"
        )
    assert str(info.value) == (
        "PowerLawSpectralModel: parameter 'index': prior: UniformPrior needs min < max, got 3.0, 1.0"
    )
    data["parameters"][0]["prior"] = {
        "type": "GaussianPrior",
        "parameters": [{"name": "mu", "value": 1.0, "unit": "TeV"}],
    }
    with pytest.raises(
        ModelError,
        match=r"PowerLawSpectralModel: parameter 'index': prior: "
        r"GaussianPrior.mu in TeV cannot be expressed",
    ):
        parameters_from_dict(
            data, PowerLawSpectralModel.default_parameters, "PowerLawSpectralModel"
        )


def test_prior_entry_has_gammapys_form():
    par = Parameter("reference", 1.0, "TeV", prior=GaussianPrior(1.0, 0.2, weight=3.0))
    assert _entry(par)["prior"] == {
        "type": "GaussianPrior",
        "parameters": [
            {"name": "mu", "value": 1.0, "unit": ""},
            {"name": "sigma", "value": 0.2, "unit": ""},
        ],
        "weight": 3.0,
    }


def test_flat_prior_is_not_written_and_its_bounds_become_min_max(caplog):
    par = Parameter("reference", 1.0, "TeV", max=5.0, prior=FlatPrior(0.5, 10.0))
    with caplog.at_level(logging.WARNING):
        entry = _entry(par)
    assert "prior" not in entry and caplog.text == ""
    assert (entry["min"], entry["max"]) == (0.5, 5.0)
    back = parameter_from_dict(entry, DEFAULT)
    # the same effective prior after reading: uniform on [0.5, 5]
    assert restrict(back.prior, back.min, back.max) == restrict(par.prior, par.min, par.max)
    assert restrict(back.prior, back.min, back.max) == restrict(None, 0.5, 5.0)
    unbounded = _entry(Parameter("reference", 1.0, "TeV", prior=FlatPrior()))
    assert "prior" not in unbounded and "min" not in unbounded and "max" not in unbounded


def test_restricted_prior_writes_its_prior_and_bounds():
    prior = Restricted(GaussianPrior(1.0, 0.5), 0.2, np.inf)
    par = Parameter("reference", 1.0, "TeV", min=0.0, prior=prior)
    entry = _entry(par)
    assert entry["min"] == 0.2 and "max" not in entry
    back = parameter_from_dict(entry, DEFAULT)
    assert back.prior == GaussianPrior(1.0, 0.5)
    effective = restrict(back.prior, back.min, back.max)
    assert_allclose(effective.logpdf([0.3, 1.4]), prior.logpdf([0.3, 1.4]), rtol=1e-14)


def test_population_prior_entry_round_trips():
    population = PopulationPrior("runs", mu=GaussianPrior(1.0, 0.2), sigma=HalfNormalPrior(0.1))
    par = Parameter("reference", 1.0, "TeV", prior=population)
    entry = _entry(par)
    assert entry["prior"]["type"] == "PopulationPrior" and entry["prior"]["name"] == "runs"
    back = parameter_from_dict(entry, DEFAULT)
    assert back.prior.structure_key() == population.structure_key()


def test_prior_without_yaml_form_warns(caplog):
    par = Parameter("reference", 1.0, "TeV", prior=lambda name: None)
    with caplog.at_level(logging.WARNING):
        entry = _entry(par)
    assert "prior" not in entry and "has no YAML form and is not written" in caplog.text


def test_copy_keeps_prior_and_population_identity():
    population = PopulationPrior("runs", mu=GaussianPrior(1.0, 0.2), sigma=HalfNormalPrior(0.1))
    par = Parameter("reference", 1.0, "TeV", prior=population)
    assert par.copy().prior is population
    plain = Parameter("reference", 1.0, "TeV", prior=LogUniformPrior(0.1, 10.0))
    copied = plain.copy().prior
    assert copied == plain.prior and copied is not plain.prior
