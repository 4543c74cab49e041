"""Gradients of spectral-model graphs against central finite differences, for every parameter."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

import bayesdl4.models as bm

# compile in milliseconds (no graph rewrites): the graphs themselves must be gradient-safe;
# one test below repeats a check with FAST_COMPILE rewrites
NO_REWRITES = Mode(linker="py", optimizer=None)
# 2 bins per decade from 0.05 to 50 TeV: several bins on either side of every break and node
EDGES = np.geomspace(0.05, 50.0, 7)


def _objective(model, edges=EDGES, mode=NO_REWRITES):
    """Compiled ``f(x) -> (value, grad)`` with f = sum log integral + sum log energy flux.

    ``x`` are all (unique) parameters, frozen ones included, in their own units.
    """
    params = list(model.parameters.unique())
    x = pt.dvector("x")
    pvals = {p: x[i] for i, p in enumerate(params)}
    lo, hi = edges[:-1], edges[1:]
    value = pt.log(model.integral_tensor(lo, hi, pvals)).sum()
    value = value + pt.log(model.energy_flux_tensor(lo, hi, pvals)).sum()
    fn = pytensor.function([x], [value, pt.grad(value, x)], mode=mode)
    return params, fn


def _step(par, value):
    """Relative step for dimensional parameters (amplitudes ~1e-12), absolute floor otherwise."""
    if par.unit.physical_type == "dimensionless":
        return 1e-5 * max(abs(value), 1e-2)
    return 1e-5 * (abs(value) if value != 0 else 1.0)


def _check_gradient(model, edges=EDGES, rtol=2e-5, mode=NO_REWRITES):
    params, fn = _objective(model, edges, mode)
    x0 = np.array([p.value for p in params])
    value, grad = fn(x0)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad)), dict(zip([p.name for p in params], grad, strict=True))
    for i, par in enumerate(params):
        step = _step(par, x0[i])
        up, down = x0.copy(), x0.copy()
        up[i] += step
        down[i] -= step
        numeric = (fn(up)[0] - fn(down)[0]) / (2 * step)
        scale = max(abs(numeric), abs(grad[i]), 1e-3 / step)
        assert abs(grad[i] - numeric) <= rtol * scale, (par.name, grad[i], numeric)
    return params


def test_gradients_every_parameter(model_case, cases):
    model = cases["make_model"](model_case)
    if len(model.parameters) == 0:  # the template: nothing to differentiate (see below)
        assert model_case == "TemplateSpectralModel"
        return
    params = _check_gradient(model)
    assert len(params) == len(model.parameters.unique())


def test_template_has_no_parameters_but_a_finite_graph(cases):
    model = cases["make_model"]("TemplateSpectralModel")
    assert len(model.parameters) == 0
    value = model.integral_tensor(EDGES[:-1], EDGES[1:]).eval(mode=NO_REWRITES)
    assert np.all(np.isfinite(value)) and np.all(value > 0)


@pytest.mark.parametrize(
    "model",
    [
        bm.PowerLawSpectralModel(index=1.0),
        bm.PowerLawSpectralModel(index=2.0 + 1e-9),
        bm.PowerLaw2SpectralModel(index=1.0),
        bm.PowerLawNormSpectralModel(tilt=1.0),
    ],
    ids=["pl-1", "pl-2", "pl2-1", "plnorm-1"],
)
def test_powerlaw_gradient_at_logarithmic_indices(model):
    """index 1 (integral) and 2 (energy flux) are the logarithmic cases: value and gradient smooth."""
    _check_gradient(model)


def test_gradient_with_rewrites():
    """FAST_COMPILE rewrites keep the index = 1 power law finite and exact."""
    _check_gradient(bm.PowerLawSpectralModel(index=1.0), mode="FAST_COMPILE")


def test_broken_powerlaw_gradient_with_break_inside_a_bin():
    """The break moves inside a bin: the exact integral is smooth in ``ebreak``."""
    model = bm.BrokenPowerLawSpectralModel(index1=1.5, index2=3.1, ebreak="1.3 TeV")
    params = _check_gradient(model)
    assert "ebreak" in [p.name for p in params]


def test_ebl_gradient_in_redshift_matches_cell_slope(cases):
    """Within a table cell, d(log absorption)/dz is the cell's finite difference times alpha_norm."""
    ebl = cases["synthetic_ebl"](redshift=0.137, alpha_norm=1.0)
    z = pt.dscalar("z")
    energy = np.array([0.5, 2.0, 8.0])
    log_abs = pt.log(ebl.dnde_tensor(energy, {ebl.redshift: z}))
    grads = [pt.grad(log_abs[i], z) for i in range(energy.size)]
    grad = pytensor.function([z], grads, mode=NO_REWRITES)(0.137)
    # tau = 3 z E^0.9 is linear in z, so the interpolation in z is exact; in energy the
    # table's log-log interpolation of E^0.9 is good to ~1e-3
    np.testing.assert_allclose(grad, -3.0 * energy**0.9, rtol=3e-3)


def test_gradient_through_linked_parameter():
    """One Parameter object in two sub-models: its gradient is the sum of both uses."""
    shared = bm.Parameter("index", 2.2)
    model = bm.PowerLawSpectralModel(index=shared) + bm.PowerLawSpectralModel(
        index=shared, amplitude="2e-12 cm-2 s-1 TeV-1", reference="3 TeV"
    )
    params = _check_gradient(model)
    assert sum(p is shared for p in params) == 1
