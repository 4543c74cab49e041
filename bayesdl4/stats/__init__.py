"""Fit statistics (-2 ln L per bin) on PyTensor tensors or numpy arrays."""

from .fit_statistics import (
    TRUNCATION_VALUE,
    cash,
    chi2,
    chi2_asymmetric,
    wstat,
    wstat_profile_background,
)
from .flux_points import ProfileSpline, interpolate_profile, stat_profile, upper_limit_erfc

__all__ = [
    "TRUNCATION_VALUE",
    "cash",
    "chi2",
    "chi2_asymmetric",
    "wstat",
    "wstat_profile_background",
    "ProfileSpline",
    "interpolate_profile",
    "stat_profile",
    "upper_limit_erfc",
]
