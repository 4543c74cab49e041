"""Spectral models: closed forms vs quadrature, gammapy 2.1's numbers, units, composition, caching."""

import warnings

import numpy as np
import pytensor.tensor as pt
import pytest
from astropy import units as u
from scipy.integrate import quad

import bayesdl4.models as bm
from bayesdl4.errors import ModelError
from bayesdl4.models import spectral
from bayesdl4.models.core import _COMPILED

EDGES = np.geomspace(0.01, 100.0, 81)  # joint-crab-like: 20 bins per decade
LO, HI = EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV
QUAD_BINS = np.arange(1, 80, 6)  # every 6th bin, across the whole range (scipy quad is slow)
QUADRATURE_ONLY = [
    "TemplateSpectralModel",
    "PiecewiseNormSpectralModel",
    "EBLAbsorptionNormSpectralModel",
    "compound-mul-ebl",
    "compound-mul-template",
    "compound-mul-piecewise",
]


def _rel(a, b):
    """Largest relative difference; entries where the reference underflows to 0 must be 0 too."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    zero = b == 0
    assert np.all(np.abs(a[zero]) < 1e-300)
    return np.max(np.abs(a[~zero] / b[~zero] - 1))


# ---------------------------------------------------------------------------------------------
# integration
# ---------------------------------------------------------------------------------------------


def test_closed_form_integrals_match_quadrature(analytic_case, cases):
    """Closed forms vs scipy quad, and vs our Gauss-Legendre (forced by a unit norm factor)."""
    model = cases["make_model"](analytic_case)
    via_quadrature = model * bm.PowerLawNormSpectralModel()
    assert isinstance(via_quadrature, bm.CompoundSpectralModel)
    fn, values = model._compiled_kind("dnde")
    breaks = [model.ebreak.value] if analytic_case == "BrokenPowerLawSpectralModel" else []
    for name, power in (("integral", 0), ("energy_flux", 1)):
        exact = getattr(model, name)(LO, HI).value
        keep = exact > 1e-12 * exact.max()  # Gaussian far tails: relative error is meaningless
        reference = np.array(
            [
                quad(
                    lambda e, p=power: e**p * fn(np.array([e]), values)[0],
                    lo,
                    hi,
                    points=[b for b in breaks if lo < b < hi] or None,
                    epsrel=1e-12,
                    epsabs=0,
                )[0]
                for lo, hi in zip(EDGES[:-1][QUAD_BINS], EDGES[1:][QUAD_BINS], strict=True)
            ]
        )
        sub = keep[QUAD_BINS]
        assert _rel(exact[QUAD_BINS][sub], reference[sub]) < 1e-9, name
        numeric = getattr(via_quadrature, name)(LO, HI).value
        if breaks:
            # a kink at a parameter-dependent energy: Gauss-Legendre is ~1e-3 off in that bin only
            kink = (EDGES[:-1] < breaks[0]) & (EDGES[1:] > breaks[0])
            assert _rel(numeric[kink], exact[kink]) < 1e-3
            keep &= ~kink
        assert _rel(numeric[keep], exact[keep]) < 1e-6, name


@pytest.mark.parametrize("case", ["quadrature", "tables"])
def test_quadrature_matches_scipy_quad(case, cases):
    """Default Gauss-Legendre nodes: relative error far below 1e-4 on 20 bins per decade."""
    names = list(cases["quadrature"]) if case == "quadrature" else QUADRATURE_ONLY
    for name in names:
        model = cases["make_model"](name)
        fn, values = model._compiled_kind("dnde")
        breaks = np.unique(model._breakpoints())
        numeric = model.integral(LO[QUAD_BINS], HI[QUAD_BINS]).value
        exact = np.empty_like(numeric)
        for i, (lo, hi) in enumerate(zip(EDGES[:-1][QUAD_BINS], EDGES[1:][QUAD_BINS], strict=True)):
            points = breaks[(breaks > lo) & (breaks < hi)]
            exact[i] = quad(
                lambda e, f=fn, v=values: f(np.array([e]), v)[0],
                lo,
                hi,
                points=points if points.size else None,
                epsrel=1e-11,
                epsabs=0,
                limit=200,
            )[0]
        keep = exact > 1e-30 * exact.max()
        assert _rel(numeric[keep], exact[keep]) < 1e-6, name


def test_fewer_nodes_are_less_accurate():
    """``n_integration_nodes`` is what the quadrature uses (2 nodes: visibly worse)."""
    model = bm.ExpCutoffPowerLawSpectralModel(lambda_="0.5 TeV-1", alpha=1.5)
    coarse = model.copy()
    coarse.n_integration_nodes = 2
    fine = model.copy()
    fine.n_integration_nodes = 24
    lo, hi = LO[40:60], HI[40:60]  # 1 to 10 TeV, through the cutoff
    exact = fine.integral(lo, hi).value
    assert _rel(model.integral(lo, hi).value, exact) < 1e-9
    assert _rel(coarse.integral(lo, hi).value, exact) > 1e-6


def test_wide_bins_are_split_into_segments():
    model = bm.LogParabolaSpectralModel(alpha=2.3, beta=0.2, reference="1 TeV")
    total = model.integral(0.01 * u.TeV, 100 * u.TeV)
    assert total.unit == u.Unit("cm-2 s-1")
    assert total.value == pytest.approx(model.integral(LO, HI).value.sum(), rel=1e-9)


def test_tensor_edges_give_the_numpy_result():
    """Edges as tensors (one segment per bin) agree with numpy edges on narrow bins."""
    model = bm.LogParabolaSpectralModel(alpha=2.3, beta=0.2, reference="1 TeV")
    lo, hi = pt.dvector("lo"), pt.dvector("hi")
    flux = model.integral_tensor(lo, hi).eval({lo: EDGES[:-1], hi: EDGES[1:]}, mode="FAST_COMPILE")
    np.testing.assert_allclose(flux, model.integral(LO, HI).value, rtol=1e-12)


@pytest.mark.parametrize("index", [1.0, 2.0])
def test_powerlaw_logarithmic_cases(index):
    model = bm.PowerLawSpectralModel(index=index, amplitude="2e-12 cm-2 s-1 TeV-1")
    lo, hi = 0.3 * u.TeV, 7.0 * u.TeV
    log_ratio = np.log(7.0 / 0.3)
    integral = model.integral(lo, hi).value
    energy_flux = model.energy_flux(lo, hi).value
    if index == 1.0:
        assert integral == pytest.approx(2e-12 * log_ratio, rel=1e-13)
    else:
        assert energy_flux == pytest.approx(2e-12 * log_ratio, rel=1e-13)
        assert integral == pytest.approx(2e-12 * (1 / 0.3 - 1 / 7.0), rel=1e-13)


def test_powerlaw2_integral_is_amplitude_over_its_range():
    model = bm.PowerLaw2SpectralModel(amplitude="3e-11 cm-2 s-1", index=2.7, emin="0.2 TeV")
    assert model.integral(0.2 * u.TeV, 100 * u.TeV).value == pytest.approx(3e-11, rel=1e-13)
    at_one = bm.PowerLaw2SpectralModel(amplitude="3e-11 cm-2 s-1", index=1.0)
    assert at_one.integral(0.1 * u.TeV, 100 * u.TeV).value == pytest.approx(3e-11, rel=1e-13)
    assert np.isfinite(at_one(1 * u.TeV).value)


# ---------------------------------------------------------------------------------------------
# gammapy 2.1 as the oracle
# ---------------------------------------------------------------------------------------------


def _gammapy_integral(model, name, lo, hi):
    closed = "evaluate_integral" if name == "integral" else "evaluate_energy_flux"
    if hasattr(model, closed) or type(model).__name__ == "GaussianSpectralModel":
        return getattr(model, name)(lo, hi)
    # gammapy's default (log-log trapezoids, 100 per decade) is only ~1e-5 accurate
    return getattr(model, name)(lo, hi, ndecade=20000)


@pytest.mark.oracle
def test_values_match_gammapy(simple_case, cases):
    gm = pytest.importorskip("gammapy.modeling.models")
    kwargs = cases["simple"][simple_case]
    ours = getattr(bm, simple_case)(**kwargs)
    theirs = getattr(gm, simple_case)(**kwargs)
    energy = np.geomspace(0.0123, 98.7, 41) * u.TeV
    assert _rel(ours(energy).value, theirs(energy).to_value(ours.dnde_unit)) < 1e-6
    for name, power in (("integral", 1), ("energy_flux", 2)):
        expected = _gammapy_integral(theirs, name, LO, HI).to_value(ours.dnde_unit * u.TeV**power)
        keep = expected > 1e-8 * expected.max()  # gammapy's Gaussian tails cancel to 0
        assert _rel(getattr(ours, name)(LO, HI).value[keep], expected[keep]) < 1e-6, name


@pytest.mark.oracle
def test_tags_and_defaults_match_gammapy():
    gm = pytest.importorskip("gammapy.modeling.models")
    seen = set()
    for cls in spectral.SPECTRAL_MODEL_REGISTRY.values():
        if cls in seen or cls is bm.CompoundSpectralModel:
            continue
        seen.add(cls)
        theirs = getattr(gm, cls.__name__)
        assert list(cls.tag) == list(theirs.tag), cls.__name__
        if cls in (bm.PiecewiseNormSpectralModel, bm.TemplateSpectralModel):
            continue
        defaults = theirs.default_parameters
        assert [p.name for p in cls.default_parameters] == defaults.names, cls.__name__
        for ours, par in zip(cls.default_parameters, defaults, strict=True):
            assert ours.value == par.value, (cls.__name__, par.name)
            assert ours.unit == par.unit, (cls.__name__, par.name)
            assert ours.frozen == par.frozen, (cls.__name__, par.name)


@pytest.mark.oracle
def test_table_models_match_gammapy(cases):
    gm = pytest.importorskip("gammapy.modeling.models")
    energy = np.geomspace(0.0123, 98.7, 41) * u.TeV
    tpl_energy, tpl_values = cases["template"]
    pairs = [
        (
            bm.TemplateSpectralModel(tpl_energy, tpl_values),
            gm.TemplateSpectralModel(tpl_energy, tpl_values),
        ),
    ]
    pw_energy, norms = cases["piecewise"]
    for interp in ("log", "lin"):
        pairs.append(
            (
                bm.PiecewiseNormSpectralModel(pw_energy, norms, interp=interp),
                gm.PiecewiseNormSpectralModel(pw_energy, norms, interp=interp),
            )
        )
    for ours, theirs in pairs:
        assert _rel(ours(energy).value, theirs(energy).to_value(ours.dnde_unit)) < 1e-12
        expected = theirs.integral(LO, HI, ndecade=20000).to_value(ours.dnde_unit * u.TeV)
        assert _rel(ours.integral(LO, HI).value, expected) < 1e-6


@pytest.mark.oracle
@pytest.mark.realdata
@pytest.mark.parametrize("reference", ["dominguez", "franceschini", "finke"])
def test_ebl_tables_match_gammapy(reference, gammapy_data):
    gm = pytest.importorskip("gammapy.modeling.models")
    energy = np.geomspace(0.0123, 98.7, 41) * u.TeV
    for redshift in (0.137, 1.03):
        ours = bm.EBLAbsorptionNormSpectralModel.read_builtin(
            reference, redshift=redshift, alpha_norm=1.2
        )
        theirs = gm.EBLAbsorptionNormSpectralModel.read_builtin(
            reference, redshift=redshift, alpha_norm=1.2
        )
        assert _rel(ours(energy).value, theirs(energy).value) < 1e-9
        ours_pl = bm.PowerLawSpectralModel(index=2.1) * ours
        theirs_pl = gm.PowerLawSpectralModel(index=2.1) * theirs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = theirs_pl.integral(LO, HI, ndecade=20000).value
        # bins with exp(-tau) < 1e-8 hold ~nothing; there steep piecewise power laws limit both
        keep = theirs(np.sqrt(LO * HI)).value > 1e-8
        # below the table the extrapolated absorption is capped at 1: a kink whose energy
        # depends on the redshift, integrated to ~3e-6 only
        inside = LO >= ours.energy.min()
        values = ours_pl.integral(LO, HI).value
        assert _rel(values[keep & inside], expected[keep & inside]) < 1e-6
        assert _rel(values[keep], expected[keep]) < 1e-5


# ---------------------------------------------------------------------------------------------
# units, composition, copies, caching
# ---------------------------------------------------------------------------------------------


def test_units_of_parameters_and_energies_do_not_change_numbers():
    reference = bm.ExpCutoffPowerLawSpectralModel(
        index=2.1, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV", lambda_="0.1 TeV-1"
    )
    other = bm.ExpCutoffPowerLawSpectralModel(
        index=2.1,
        amplitude=3e-12 * 1e4 * 1e-3 * u.Unit("m-2 s-1 GeV-1"),
        reference=1000 * u.GeV,
        lambda_=1e-4 * u.Unit("GeV-1"),
    )
    assert other.amplitude.unit == u.Unit("m-2 s-1 GeV-1")
    energy_gev = np.geomspace(10, 1e5, 17) * u.GeV
    np.testing.assert_allclose(
        other(energy_gev).value, reference(energy_gev.to("TeV")).value, rtol=1e-12
    )
    np.testing.assert_allclose(
        other.integral(LO.to("GeV"), HI.to("MeV")).value,
        reference.integral(LO, HI).value,
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        other.energy_flux(LO, HI).to_value("erg cm-2 s-1"),
        reference.energy_flux(LO, HI).to_value("erg cm-2 s-1"),
        rtol=1e-12,
    )
    with pytest.raises(ModelError, match="amplitude"):
        bm.PowerLawSpectralModel(amplitude=bm.Parameter("amplitude", 1.0, "cm-2 s-1"))
    with pytest.raises(ModelError, match="energy"):
        reference(3 * u.s)


def test_compound_sum_and_product():
    pl = bm.PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1")
    lp = bm.LogParabolaSpectralModel(alpha=2.2, beta=0.1, reference="1 TeV")
    total = pl + lp
    energy = [0.1, 1.0, 10.0] * u.TeV
    np.testing.assert_allclose(total(energy).value, pl(energy).value + lp(energy).value, rtol=1e-14)
    np.testing.assert_allclose(
        total.integral(LO, HI).value,
        pl.integral(LO, HI).value + lp.integral(LO, HI).value,
        rtol=1e-12,
    )
    assert list(total.parameters) == list(pl.parameters) + list(lp.parameters)
    # PL(2) x PLNorm(tilt 0.3, norm 2) is PL(2.3) with twice the amplitude (quadrature vs closed form)
    product = pl * bm.PowerLawNormSpectralModel(tilt=0.3, norm=2.0)
    expected = bm.PowerLawSpectralModel(index=2.3, amplitude="2e-12 cm-2 s-1 TeV-1")
    assert product.dnde_unit == u.Unit("cm-2 s-1 TeV-1")
    np.testing.assert_allclose(
        product.integral(LO, HI).value, expected.integral(LO, HI).value, rtol=1e-9
    )
    # pvals are keyed by the sub-model's Parameter objects
    pvals = {pl.index: pt.as_tensor_variable(2.3), product.model2.tilt: pt.as_tensor_variable(0.0)}
    value = product.dnde_tensor(np.array([4.0]), pvals).eval()
    assert value[0] == pytest.approx(2e-12 * 4.0**-2.3, rel=1e-12)
    with pytest.raises(TypeError):
        pl * 3.0
    with pytest.raises(ModelError, match="units differ"):
        pl + bm.PowerLawNormSpectralModel()
    shifted = pl + 1e-13 * u.Unit("cm-2 s-1 TeV-1")
    assert shifted(1 * u.TeV).value == pytest.approx(1.1e-12, rel=1e-12)


def test_copy_is_independent_and_keeps_links():
    shared = bm.Parameter("index", 2.4)
    model = bm.PowerLawSpectralModel(index=shared) * bm.PowerLawNormSpectralModel()
    model.model1.amplitude.value = 5e-12
    copy = model.copy()
    copy.model1.amplitude.value = 1e-11
    copy.model2.norm.value = 3.0
    assert model.model1.amplitude.value == 5e-12 and model.model2.norm.value == 1.0
    assert copy.model1.index is not shared
    linked = bm.PowerLawSpectralModel(index=shared) + bm.PowerLawSpectralModel()
    linked.model2.index = shared
    copied = linked.copy()
    assert copied.model1.index is copied.model2.index
    assert copied.model1.index is not shared
    ebl = bm.TemplateSpectralModel([1, 2, 3] * u.TeV, [1, 2, 3] * u.Unit("cm-2 s-1 TeV-1")).copy()
    assert ebl(2 * u.TeV).value == pytest.approx(2.0)


def test_numpy_conveniences_compile_once_per_structure():
    model = bm.LogParabolaSpectralModel(alpha=2.0, beta=0.1)
    energy = [1.0, 2.0] * u.TeV
    first = model(energy)
    model.alpha.value = 2.5
    n_compiled = len(_COMPILED)
    second = model(energy)
    other = bm.LogParabolaSpectralModel(alpha=3.0, beta=0.2, amplitude="1e-11 cm-2 s-1 TeV-1")
    third = other(energy)
    assert len(_COMPILED) == n_compiled  # new values and a new instance: no recompilation
    np.testing.assert_allclose(
        second.value / first.value, (energy.value / 10.0) ** -0.5, rtol=1e-12
    )
    assert third[0].value == pytest.approx(1e-11 * 0.1 ** (-3.0 - 0.2 * np.log(0.1)), rel=1e-12)
    model.amplitude.unit = u.Unit("m-2 s-1 TeV-1")  # a different graph (unit conversion factor)
    model(energy)
    assert len(_COMPILED) == n_compiled + 1
    assert model(5 * u.TeV).shape == ()


def test_logparabola_from_log10():
    """beta_log10 = beta_ln * ln(10): both forms give the same spectrum."""
    beta10 = 0.23
    model = bm.LogParabolaSpectralModel.from_log10(
        amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.4, beta=beta10
    )
    assert model.beta.value == pytest.approx(beta10 / np.log(10), rel=1e-15)
    energy = np.array([0.2, 5.0, 40.0])
    expected = 3e-12 * energy ** (-2.4 - beta10 * np.log10(energy))
    np.testing.assert_allclose(model(energy * u.TeV).value, expected, rtol=1e-13)


def test_norm_models_are_dimensionless():
    for cls in (
        bm.PowerLawNormSpectralModel,
        bm.LogParabolaNormSpectralModel,
        bm.ExpCutoffPowerLawNormSpectralModel,
    ):
        model = cls()
        assert model.is_norm_spectral_model
        assert model.integral(1 * u.TeV, 2 * u.TeV).unit == u.TeV
    assert not bm.PowerLawSpectralModel().is_norm_spectral_model


def test_smooth_broken_powerlaw_equal_indices_is_finite():
    model = (
        bm.SmoothBrokenPowerLawSpectralModel()
    )  # gammapy's defaults: index1 == index2 (NaN there)
    assert np.isclose(model(1 * u.TeV).value, 1e-12 * 2.0**-1.0)
    assert np.all(np.isfinite(model.integral(LO, HI).value))


def test_template_and_piecewise_values_at_nodes(cases):
    tpl_energy, tpl_values = cases["template"]
    model = bm.TemplateSpectralModel(tpl_energy, tpl_values)
    np.testing.assert_allclose(model(tpl_energy).value, tpl_values.value, rtol=1e-12)
    mid = np.sqrt(tpl_energy[3] * tpl_energy[4])
    assert model(mid).value == pytest.approx(
        np.sqrt(tpl_values[3].value * tpl_values[4].value), rel=1e-12
    )
    pw_energy, norms = cases["piecewise"]
    piecewise = bm.PiecewiseNormSpectralModel(pw_energy, norms)
    np.testing.assert_allclose(piecewise(pw_energy).value, norms, rtol=1e-12)
    assert piecewise(1000 * u.TeV).value == pytest.approx(norms[-1])  # held constant outside
    assert [p.name for p in piecewise.parameters] == ["norm_0", "norm_1", "norm_2", "norm_3"]


def test_ebl_errors(monkeypatch, tmp_path):
    with pytest.raises(ModelError, match="known"):
        bm.EBLAbsorptionNormSpectralModel.read_builtin("nonexistent")
    monkeypatch.delenv("GAMMAPY_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="GAMMAPY_DATA"):
        bm.EBLAbsorptionNormSpectralModel.read_builtin("dominguez")
    with pytest.raises(FileNotFoundError, match="not found"):
        bm.EBLAbsorptionNormSpectralModel.read(tmp_path / "missing.fits.gz")


@pytest.mark.realdata
def test_ebl_read_keeps_unexpanded_filename(gammapy_data):
    model = bm.EBLAbsorptionNormSpectralModel.read_builtin("dominguez", redshift=0.3)
    assert model.filename == "$GAMMAPY_DATA/ebl/ebl_dominguez11.fits.gz"
    assert model.redshift.frozen and model.alpha_norm.frozen
    assert model.data.shape == (399, 500)
    # absorption is 1 at low energy and falls with energy and redshift
    low, high = model([0.01, 10.0] * u.TeV).value
    assert low == pytest.approx(1.0, abs=1e-3) and high < 1e-2
