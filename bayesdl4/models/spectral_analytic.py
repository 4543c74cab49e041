"""Spectral models with gammapy 2.1's formulas, written once with ``pytensor.tensor``.

Power laws (closed-form integrals, smooth through the logarithmic indices), cutoffs, log
parabolas and the Gaussian line. Imported into (and exported by) `bayesdl4.models.spectral`.
"""

import numpy as np
import pytensor.tensor as pt
from astropy import units as u

from .parameter import Parameter
from .spectral import SpectralModel, erf_difference, expm1_ratio, powerlaw_integral

__all__ = [
    "ConstantSpectralModel",
    "PowerLawSpectralModel",
    "PowerLawNormSpectralModel",
    "PowerLaw2SpectralModel",
    "BrokenPowerLawSpectralModel",
    "SmoothBrokenPowerLawSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "ExpCutoffPowerLawNormSpectralModel",
    "ExpCutoffPowerLaw3FGLSpectralModel",
    "SuperExpCutoffPowerLaw3FGLSpectralModel",
    "SuperExpCutoffPowerLaw4FGLSpectralModel",
    "SuperExpCutoffPowerLaw4FGLDR3SpectralModel",
    "LogParabolaSpectralModel",
    "LogParabola2SpectralModel",
    "LogParabolaNormSpectralModel",
    "GaussianSpectralModel",
]


def _amplitude():
    return Parameter("amplitude", 1e-12, "cm-2 s-1 TeV-1")


def _reference(value=1.0):
    return Parameter("reference", value, "TeV", frozen=True)


class ConstantSpectralModel(SpectralModel):
    """``dnde = const``."""

    tag = ("ConstantSpectralModel", "const")
    default_parameters = (Parameter("const", 1e-12, "cm-2 s-1 TeV-1"),)

    @staticmethod
    def evaluate(energy, const):
        return pt.ones_like(energy) * const

    @staticmethod
    def evaluate_integral(energy_min, energy_max, const):
        return const * (energy_max - energy_min)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, const):
        return const * (energy_max**2 - energy_min**2) / 2.0


class PowerLawSpectralModel(SpectralModel):
    r"""``dnde = amplitude (E / reference)^-index``; closed-form integrals, smooth at index 1 and 2."""

    tag = ("PowerLawSpectralModel", "pl")
    default_parameters = (Parameter("index", 2.0), _amplitude(), _reference())

    @staticmethod
    def evaluate(energy, index, amplitude, reference):
        return amplitude * pt.exp(-index * pt.log(energy / reference))

    @staticmethod
    def evaluate_integral(energy_min, energy_max, index, amplitude, reference):
        return powerlaw_integral(amplitude, reference, index, energy_min, energy_max, 0)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, index, amplitude, reference):
        return powerlaw_integral(amplitude, reference, index, energy_min, energy_max, 1)


class PowerLawNormSpectralModel(SpectralModel):
    """``norm (E / reference)^-tilt`` (dimensionless correction)."""

    tag = ("PowerLawNormSpectralModel", "pl-norm")
    dnde_unit = u.dimensionless_unscaled
    default_parameters = (
        Parameter("tilt", 0.0, frozen=True),
        Parameter("norm", 1.0, is_norm=True),
        _reference(),
    )

    @staticmethod
    def evaluate(energy, tilt, norm, reference):
        return norm * pt.exp(-tilt * pt.log(energy / reference))

    @staticmethod
    def evaluate_integral(energy_min, energy_max, tilt, norm, reference):
        return powerlaw_integral(norm, reference, tilt, energy_min, energy_max, 0)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, tilt, norm, reference):
        return powerlaw_integral(norm, reference, tilt, energy_min, energy_max, 1)


class PowerLaw2SpectralModel(SpectralModel):
    """Power law normalised by its integral ``amplitude`` (cm-2 s-1) between ``emin`` and ``emax``."""

    tag = ("PowerLaw2SpectralModel", "pl-2")
    default_parameters = (
        Parameter("amplitude", 1e-12, "cm-2 s-1"),
        Parameter("index", 2.0),
        Parameter("emin", 0.1, "TeV", frozen=True),
        Parameter("emax", 100.0, "TeV", frozen=True),
    )

    @staticmethod
    def _norm_integral(index, emin, emax):
        # int_emin^emax (E / emin)^-index dE / emin, smooth at index = 1
        width = pt.log(emax / emin)
        return width * expm1_ratio((1.0 - index) * width)

    @classmethod
    def evaluate(cls, energy, amplitude, index, emin, emax):
        shape = pt.exp((1.0 - index) * pt.log(energy / emin)) / energy
        return amplitude * shape / cls._norm_integral(index, emin, emax)

    @classmethod
    def evaluate_integral(cls, energy_min, energy_max, amplitude, index, emin, emax):
        top = powerlaw_integral(1.0, emin, index, energy_min, energy_max, 0) / emin
        return amplitude * top / cls._norm_integral(index, emin, emax)

    @classmethod
    def evaluate_energy_flux(cls, energy_min, energy_max, amplitude, index, emin, emax):
        top = powerlaw_integral(1.0, emin, index, energy_min, energy_max, 1) / emin
        return amplitude * top / cls._norm_integral(index, emin, emax)


class BrokenPowerLawSpectralModel(SpectralModel):
    """``amplitude (E / ebreak)^-index1`` below ``ebreak``, ``^-index2`` from ``ebreak`` up.

    The integrals are exact (split at the break); they are continuous and differentiable in
    ``ebreak`` because the two pieces meet at ``amplitude``.
    """

    tag = ("BrokenPowerLawSpectralModel", "bpl")
    default_parameters = (
        Parameter("index1", 2.0),
        Parameter("index2", 2.0),
        _amplitude(),
        Parameter("ebreak", 1.0, "TeV"),
    )

    @staticmethod
    def evaluate(energy, index1, index2, amplitude, ebreak):
        log_x = pt.log(energy / ebreak)
        index = pt.switch(energy < ebreak, index1, index2)
        return amplitude * pt.exp(-index * log_x)

    @staticmethod
    def _integral(energy_min, energy_max, index1, index2, amplitude, ebreak, power):
        below = powerlaw_integral(
            amplitude,
            ebreak,
            index1,
            pt.minimum(energy_min, ebreak),
            pt.minimum(energy_max, ebreak),
            power,
        )
        above = powerlaw_integral(
            amplitude,
            ebreak,
            index2,
            pt.maximum(energy_min, ebreak),
            pt.maximum(energy_max, ebreak),
            power,
        )
        return below + above

    @classmethod
    def evaluate_integral(cls, energy_min, energy_max, index1, index2, amplitude, ebreak):
        return cls._integral(energy_min, energy_max, index1, index2, amplitude, ebreak, 0)

    @classmethod
    def evaluate_energy_flux(cls, energy_min, energy_max, index1, index2, amplitude, ebreak):
        return cls._integral(energy_min, energy_max, index1, index2, amplitude, ebreak, 1)


class SmoothBrokenPowerLawSpectralModel(SpectralModel):
    """``amplitude (E/E0)^-index1 (1 + (E/ebreak)^((index2-index1)/beta'))^-beta'``, with
    ``beta' = beta sign(index2 - index1)`` as gammapy (taken as ``+beta`` when the indices are equal).
    """

    tag = ("SmoothBrokenPowerLawSpectralModel", "sbpl")
    default_parameters = (
        Parameter("index1", 2.0),
        Parameter("index2", 2.0),
        _amplitude(),
        Parameter("ebreak", 1.0, "TeV"),
        _reference(),
        Parameter("beta", 1.0, frozen=True),
    )

    @staticmethod
    def evaluate(energy, index1, index2, amplitude, ebreak, reference, beta):
        beta = beta * pt.switch(index2 >= index1, 1.0, -1.0)
        pwl = amplitude * pt.exp(-index1 * pt.log(energy / reference))
        exponent = (index2 - index1) / beta * pt.log(energy / ebreak)
        return pwl * pt.exp(-beta * pt.softplus(exponent))


class ExpCutoffPowerLawSpectralModel(SpectralModel):
    """``amplitude (E/E0)^-index exp(-(lambda_ E)^alpha)``."""

    tag = ("ExpCutoffPowerLawSpectralModel", "ecpl")
    default_parameters = (
        Parameter("index", 1.5),
        _amplitude(),
        _reference(),
        Parameter("lambda_", 0.1, "TeV-1"),
        Parameter("alpha", 1.0, frozen=True),
    )

    @staticmethod
    def evaluate(energy, index, amplitude, reference, lambda_, alpha):
        pwl = amplitude * pt.exp(-index * pt.log(energy / reference))
        return pwl * pt.exp(-pt.power(energy * lambda_, alpha))


class ExpCutoffPowerLawNormSpectralModel(SpectralModel):
    """``norm (E/E0)^-index exp(-(lambda_ E)^alpha)`` (dimensionless correction)."""

    tag = ("ExpCutoffPowerLawNormSpectralModel", "ecpl-norm")
    dnde_unit = u.dimensionless_unscaled
    default_parameters = (
        Parameter("index", 0.0),
        Parameter("norm", 1.0, is_norm=True),
        _reference(),
        Parameter("lambda_", 0.1, "TeV-1"),
        Parameter("alpha", 1.0, frozen=True),
    )

    @staticmethod
    def evaluate(energy, index, norm, reference, lambda_, alpha):
        pwl = norm * pt.exp(-index * pt.log(energy / reference))
        return pwl * pt.exp(-pt.power(energy * lambda_, alpha))


class ExpCutoffPowerLaw3FGLSpectralModel(SpectralModel):
    """``amplitude (E/E0)^-index exp((E0 - E) / ecut)``."""

    tag = ("ExpCutoffPowerLaw3FGLSpectralModel", "ecpl-3fgl")
    default_parameters = (
        Parameter("index", 1.5),
        _amplitude(),
        _reference(),
        Parameter("ecut", 10.0, "TeV"),
    )

    @staticmethod
    def evaluate(energy, index, amplitude, reference, ecut):
        pwl = amplitude * pt.exp(-index * pt.log(energy / reference))
        return pwl * pt.exp((reference - energy) / ecut)


class SuperExpCutoffPowerLaw3FGLSpectralModel(SpectralModel):
    """``amplitude (E/E0)^-index_1 exp((E0/ecut)^index_2 - (E/ecut)^index_2)``."""

    tag = ("SuperExpCutoffPowerLaw3FGLSpectralModel", "secpl-3fgl")
    default_parameters = (
        _amplitude(),
        _reference(),
        Parameter("ecut", 10.0, "TeV"),
        Parameter("index_1", 1.5),
        Parameter("index_2", 2.0),
    )

    @staticmethod
    def evaluate(energy, amplitude, reference, ecut, index_1, index_2):
        pwl = amplitude * pt.exp(-index_1 * pt.log(energy / reference))
        return pwl * pt.exp((reference / ecut) ** index_2 - (energy / ecut) ** index_2)


class SuperExpCutoffPowerLaw4FGLSpectralModel(SpectralModel):
    """4FGL-DR1: ``amplitude (E/E0)^-index_1 exp(expfactor (E0^index_2 - E^index_2))``, energies in MeV
    inside the exponential (``expfactor`` in MeV^-index_2, as gammapy)."""

    tag = ("SuperExpCutoffPowerLaw4FGLSpectralModel", "secpl-4fgl")
    default_parameters = (
        _amplitude(),
        _reference(),
        Parameter("expfactor", 1e-14),
        Parameter("index_1", 1.5),
        Parameter("index_2", 2.0),
    )

    @staticmethod
    def evaluate(energy, amplitude, reference, expfactor, index_1, index_2):
        pwl = amplitude * pt.exp(-index_1 * pt.log(energy / reference))
        mev = 1e6  # TeV -> MeV
        return pwl * pt.exp(expfactor * ((mev * reference) ** index_2 - (mev * energy) ** index_2))


class SuperExpCutoffPowerLaw4FGLDR3SpectralModel(SpectralModel):
    r"""4FGL-DR3 (PLSuperExpCutoff4): with ``L = ln(E/E0)``,
    ``dnde = amplitude exp(-index_1 L) exp(-expfactor L^2 q(index_2 L))``,
    ``q(y) = (exp(y) - 1 - y) / y^2``; gammapy's series ``1/2 + y/6 + y^2/24`` for ``|y| < 0.01``.
    """

    tag = ("SuperExpCutoffPowerLaw4FGLDR3SpectralModel", "secpl-4fgl-dr3")
    default_parameters = (
        _amplitude(),
        _reference(),
        Parameter("expfactor", 1e-2),
        Parameter("index_1", 1.5),
        Parameter("index_2", 2.0),
    )

    @staticmethod
    def evaluate(energy, amplitude, reference, expfactor, index_1, index_2):
        log_x = pt.log(energy / reference)
        y = index_2 * log_x
        small = pt.abs(y) < 1e-2
        y_safe = pt.switch(small, 1.0, y)
        q = pt.switch(small, 0.5 + y / 6.0 + y**2 / 24.0, (pt.expm1(y_safe) - y_safe) / y_safe**2)
        return amplitude * pt.exp(-index_1 * log_x - expfactor * log_x**2 * q)


class LogParabolaSpectralModel(SpectralModel):
    r"""``amplitude (E/E0)^(-alpha - beta ln(E/E0))`` (natural log, as gammapy).

    With the log10 convention ``(E/E0)^(-alpha - beta10 log10(E/E0))``:
    ``beta10 = beta * ln(10)``; use `from_log10` to convert.
    """

    tag = ("LogParabolaSpectralModel", "lp")
    default_parameters = (
        _amplitude(),
        _reference(10.0),
        Parameter("alpha", 2.0),
        Parameter("beta", 1.0),
    )

    @classmethod
    def from_log10(cls, amplitude, reference, alpha, beta):
        """Model from the log10 parametrisation: ``beta`` here is beta10, stored as beta10 / ln(10)."""
        return cls(amplitude=amplitude, reference=reference, alpha=alpha, beta=beta / np.log(10))

    @staticmethod
    def evaluate(energy, amplitude, reference, alpha, beta):
        log_x = pt.log(energy / reference)
        return amplitude * pt.exp(-(alpha + beta * log_x) * log_x)


class LogParabola2SpectralModel(SpectralModel):
    r"""``amplitude (E/E0)^(-alpha - beta ln(E/escale))``."""

    tag = ("LogParabola2SpectralModel", "lp2")
    default_parameters = (
        _amplitude(),
        _reference(10.0),
        Parameter("alpha", 2.0),
        Parameter("beta", 1.0),
        Parameter("escale", 1.0, "TeV", frozen=True),
    )

    @classmethod
    def from_log10(cls, amplitude, reference, alpha, beta, escale):
        """Model from the log10 parametrisation (``beta`` is beta10, stored as beta10 / ln(10))."""
        return cls(
            amplitude=amplitude,
            reference=reference,
            alpha=alpha,
            beta=beta / np.log(10),
            escale=escale,
        )

    @staticmethod
    def evaluate(energy, amplitude, reference, alpha, beta, escale):
        log_x = pt.log(energy / reference)
        return amplitude * pt.exp(-(alpha + beta * pt.log(energy / escale)) * log_x)


class LogParabolaNormSpectralModel(SpectralModel):
    """``norm (E/E0)^(-alpha - beta ln(E/E0))`` (dimensionless correction)."""

    tag = ("LogParabolaNormSpectralModel", "lp-norm")
    dnde_unit = u.dimensionless_unscaled
    default_parameters = (
        Parameter("norm", 1.0, is_norm=True),
        _reference(10.0),
        Parameter("alpha", 0.0),
        Parameter("beta", 0.0),
    )

    @classmethod
    def from_log10(cls, norm, reference, alpha, beta):
        """Model from the log10 parametrisation (``beta`` is beta10, stored as beta10 / ln(10))."""
        return cls(norm=norm, reference=reference, alpha=alpha, beta=beta / np.log(10))

    @staticmethod
    def evaluate(energy, norm, reference, alpha, beta):
        log_x = pt.log(energy / reference)
        return norm * pt.exp(-(alpha + beta * log_x) * log_x)


class GaussianSpectralModel(SpectralModel):
    """``amplitude / (sigma sqrt(2 pi)) exp(-(E - mean)^2 / (2 sigma^2))``; ``amplitude`` in cm-2 s-1."""

    tag = ("GaussianSpectralModel", "gauss")
    default_parameters = (
        Parameter("amplitude", 1e-12, "cm-2 s-1"),
        Parameter("mean", 1.0, "TeV"),
        Parameter("sigma", 2.0, "TeV"),
    )

    @staticmethod
    def evaluate(energy, amplitude, mean, sigma):
        return (
            amplitude
            / (sigma * np.sqrt(2 * np.pi))
            * pt.exp(-((energy - mean) ** 2) / (2 * sigma**2))
        )

    @staticmethod
    def evaluate_integral(energy_min, energy_max, amplitude, mean, sigma):
        u_min = (energy_min - mean) / (np.sqrt(2) * sigma)
        u_max = (energy_max - mean) / (np.sqrt(2) * sigma)
        return amplitude / 2 * erf_difference(u_min, u_max)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, amplitude, mean, sigma):
        u_min = (energy_min - mean) / (np.sqrt(2) * sigma)
        u_max = (energy_max - mean) / (np.sqrt(2) * sigma)
        a = amplitude * sigma / np.sqrt(2 * np.pi)
        b = amplitude * mean / 2
        return a * (pt.exp(-(u_min**2)) - pt.exp(-(u_max**2))) + b * erf_difference(u_min, u_max)
