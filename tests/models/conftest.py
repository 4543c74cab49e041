"""Shared cases for the spectral-model tests: every model with non-default parameter values."""

import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u

import bayesdl4.models as bm

# joint-crab-like binning: 20 bins per decade from 0.01 to 100 TeV
JOINT_CRAB_EDGES = np.geomspace(0.01, 100.0, 81)

# gammapy class name -> constructor keywords (values away from the defaults, all valid in gammapy)
ANALYTIC_CASES = {
    "ConstantSpectralModel": dict(const="2e-12 cm-2 s-1 TeV-1"),
    "PowerLawSpectralModel": dict(index=2.3, amplitude="3e-12 cm-2 s-1 TeV-1", reference="2 TeV"),
    "PowerLawNormSpectralModel": dict(tilt=0.3, norm=1.2),
    "PowerLaw2SpectralModel": dict(
        amplitude="2e-11 cm-2 s-1", index=2.2, emin="0.2 TeV", emax="50 TeV"
    ),
    "BrokenPowerLawSpectralModel": dict(
        index1=1.8, index2=2.9, amplitude="3e-12 cm-2 s-1 TeV-1", ebreak="3.3 TeV"
    ),
    "GaussianSpectralModel": dict(amplitude="2e-12 cm-2 s-1", mean="3 TeV", sigma="1.5 TeV"),
}
QUADRATURE_CASES = {
    "SmoothBrokenPowerLawSpectralModel": dict(
        index1=1.8, index2=2.9, amplitude="3e-12 cm-2 s-1 TeV-1", ebreak="3.3 TeV", beta=2.0
    ),
    "ExpCutoffPowerLawSpectralModel": dict(
        index=1.8, amplitude="3e-12 cm-2 s-1 TeV-1", lambda_="0.08 TeV-1", alpha=1.3
    ),
    "ExpCutoffPowerLawNormSpectralModel": dict(
        index=0.3, norm=1.2, lambda_="0.08 TeV-1", alpha=0.9
    ),
    "ExpCutoffPowerLaw3FGLSpectralModel": dict(
        index=1.8, amplitude="3e-12 cm-2 s-1 TeV-1", ecut="7 TeV"
    ),
    "SuperExpCutoffPowerLaw3FGLSpectralModel": dict(
        index_1=1.8, index_2=0.7, amplitude="3e-12 cm-2 s-1 TeV-1", ecut="7 TeV"
    ),
    "SuperExpCutoffPowerLaw4FGLSpectralModel": dict(
        index_1=1.8, index_2=0.6, amplitude="3e-12 cm-2 s-1 TeV-1", expfactor=1e-3
    ),
    "SuperExpCutoffPowerLaw4FGLDR3SpectralModel": dict(
        index_1=1.8, index_2=0.6, amplitude="3e-12 cm-2 s-1 TeV-1", expfactor=0.3
    ),
    "LogParabolaSpectralModel": dict(
        amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.4, beta=0.12
    ),
    "LogParabola2SpectralModel": dict(
        amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.4, beta=0.12, escale="2 TeV"
    ),
    "LogParabolaNormSpectralModel": dict(norm=1.2, alpha=0.2, beta=0.05),
}
SIMPLE_CASES = {**ANALYTIC_CASES, **QUADRATURE_CASES}

TEMPLATE_ENERGY = np.geomspace(0.1, 50, 30) * u.TeV
TEMPLATE_VALUES = (
    1e-12 * TEMPLATE_ENERGY.value**-2.5 * np.exp(-TEMPLATE_ENERGY.value / 20)
) * u.Unit("cm-2 s-1 TeV-1")
PIECEWISE_ENERGY = [0.1, 1.0, 10.0, 100.0] * u.TeV
PIECEWISE_NORMS = [1.1, 0.9, 1.3, 0.5]


def synthetic_ebl(redshift=0.137, alpha_norm=1.1):
    """A small EBL table, exp(-tau) with tau = 3 z (E / 1 TeV)^0.9 (no data files needed)."""
    param = np.linspace(0.0, 1.0, 11)
    energy = np.geomspace(0.01, 100.0, 41) * u.TeV
    tau = 3.0 * param[:, None] * (energy.value[None, :]) ** 0.9
    return bm.EBLAbsorptionNormSpectralModel(
        energy, param, np.exp(-tau), redshift=redshift, alpha_norm=alpha_norm
    )


def make_model(name):
    """bayesdl4 model ``name`` (a class name or one of the composite cases below)."""
    if name in SIMPLE_CASES:
        return getattr(bm, name)(**SIMPLE_CASES[name])
    if name == "TemplateSpectralModel":
        return bm.TemplateSpectralModel(TEMPLATE_ENERGY, TEMPLATE_VALUES)
    if name == "PiecewiseNormSpectralModel":
        return bm.PiecewiseNormSpectralModel(PIECEWISE_ENERGY, norms=PIECEWISE_NORMS)
    if name == "EBLAbsorptionNormSpectralModel":
        return synthetic_ebl()
    if name == "compound-add":
        return make_model("PowerLawSpectralModel") + make_model("LogParabolaSpectralModel")
    if name == "compound-mul-ebl":
        return bm.PowerLawSpectralModel(index=2.1) * synthetic_ebl()
    if name == "compound-mul-template":
        return make_model("TemplateSpectralModel") * make_model("PowerLawNormSpectralModel")
    if name == "compound-mul-piecewise":
        return make_model("LogParabolaSpectralModel") * make_model("PiecewiseNormSpectralModel")
    raise KeyError(name)


ALL_MODEL_CASES = [
    *SIMPLE_CASES,
    "TemplateSpectralModel",
    "PiecewiseNormSpectralModel",
    "EBLAbsorptionNormSpectralModel",
    "compound-add",
    "compound-mul-ebl",
    "compound-mul-template",
    "compound-mul-piecewise",
]


@pytest.fixture(scope="session")
def gammapy_data():
    """``$GAMMAPY_DATA`` as a Path; skips the test when it is unset."""
    value = os.environ.get("GAMMAPY_DATA")
    if not value:
        pytest.skip("GAMMAPY_DATA not set")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"GAMMAPY_DATA={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def cases():
    """The case tables and helpers of this module, for the tests."""
    return {
        "edges": JOINT_CRAB_EDGES,
        "simple": SIMPLE_CASES,
        "analytic": ANALYTIC_CASES,
        "quadrature": QUADRATURE_CASES,
        "make_model": make_model,
        "synthetic_ebl": synthetic_ebl,
        "template": (TEMPLATE_ENERGY, TEMPLATE_VALUES),
        "piecewise": (PIECEWISE_ENERGY, PIECEWISE_NORMS),
    }


def pytest_generate_tests(metafunc):
    """Parametrise ``model_case`` / ``simple_case`` / ``analytic_case`` / ``quadrature_case``."""
    table = {
        "model_case": ALL_MODEL_CASES,
        "simple_case": list(SIMPLE_CASES),
        "analytic_case": list(ANALYTIC_CASES),
        "quadrature_case": list(QUADRATURE_CASES),
    }
    for name, values in table.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values)
