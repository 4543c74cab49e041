"""Differences between sky geometries, in words, for error messages."""

import numpy as np

__all__ = ["wcs_difference"]


def wcs_difference(geom, other, rtol=1e-6) -> str:
    """What differs between the sky grids (WCS) of two geometries, for messages.

    Names each differing part: frame, projection, pixel size (``CDELT``), reference value
    (``CRVAL``), reference pixel (``CRPIX``), rotation (``PC``), number of pixels; empty
    when the sky grids agree.
    """
    a, b = geom.wcs.wcs, other.wcs.wcs
    parts = []
    if geom.frame != other.frame:
        parts.append(
            f"frame {geom.frame!r} ({', '.join(a.ctype)}) vs {other.frame!r} ({', '.join(b.ctype)})"
        )
    elif list(a.ctype) != list(b.ctype):
        parts.append(f"projection {geom.projection!r} vs {other.projection!r}")

    def differ(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        return x.shape != y.shape or not np.allclose(x, y, rtol=rtol, atol=rtol)

    scale_a, scale_b = geom.pixel_scales.deg, other.pixel_scales.deg
    if differ(a.get_cdelt(), b.get_cdelt()) or differ(scale_a, scale_b):
        parts.append(
            f"pixel size (CDELT) {np.round(a.get_cdelt(), 10).tolist()} vs "
            f"{np.round(b.get_cdelt(), 10).tolist()} deg"
        )
    for name, x, y in (
        ("reference value (CRVAL)", a.crval, b.crval),
        ("reference pixel (CRPIX)", a.crpix, b.crpix),
        ("rotation (PC)", a.get_pc(), b.get_pc()),
    ):
        if differ(x, y):
            parts.append(f"{name} {np.asarray(x).tolist()} vs {np.asarray(y).tolist()}")
    if geom.npix != other.npix:
        parts.append(f"npix (nx, ny) {geom.npix} vs {other.npix}")
    if not parts and not a.compare(b, cmp=1, tolerance=rtol):
        parts.append("other WCS keywords (e.g. LONPOLE, LATPOLE) differ")
    return "; ".join(parts)
