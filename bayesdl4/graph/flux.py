"""Integrated source flux per true-energy bin, with the energy-scale nuisance applied."""

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = ["integrated_flux", "quadrature_nodes", "source_flux"]


def quadrature_nodes(spectral_model, energy_min, energy_max):
    """Numpy (energy, weight) quadrature nodes of ``spectral_model`` on bins [min, max] (TeV),
    or None where the model has a closed-form integral."""
    if not spectral_model._needs_quadrature(0):
        return None
    return spectral_model._quadrature_nodes(np.asarray(energy_min, float), np.asarray(energy_max, float), 0)


def integrated_flux(spectral_model, energy_min, energy_max, pvals, energy_scale=None, nodes=None):
    """``int dnde_s(E) dE`` over each bin, with ``dnde_s(E) = dnde(E / s) / s`` (``s = 1 + z``).

    Parameters
    ----------
    spectral_model : `SpectralModel`
    energy_min, energy_max : array or tensor, (n,)
        Bin edges in TeV.
    pvals : dict
        ``Parameter -> tensor`` (scalars, or vectors of length n: one value per bin).
    energy_scale : tensor, optional
        ``1 + z``, scalar or (n,).
    nodes : (energy, weight) arrays or tensors (n, n_seg, n_nodes), optional
        Quadrature nodes on the unscaled bins (default: computed from numpy edges, see
        `quadrature_nodes`).

    Returns
    -------
    tensor (n,) in the model's ``dnde_unit * TeV`` (cm-2 s-1 for sources)
    """
    numeric = not (isinstance(energy_min, Variable) or isinstance(energy_max, Variable))
    if nodes is None and numeric:
        nodes = quadrature_nodes(spectral_model, energy_min, energy_max)
    lo, hi = pt.as_tensor(energy_min), pt.as_tensor(energy_max)
    if nodes is not None:
        nodes = tuple(pt.as_tensor(n) for n in nodes)
    if energy_scale is not None:
        lo, hi = lo / energy_scale, hi / energy_scale
        if nodes is not None:
            per_node = energy_scale[..., None, None] if energy_scale.type.ndim else energy_scale
            nodes = (nodes[0] / per_node, nodes[1] / per_node)
    return spectral_model._integrate_with(lo, hi, nodes, pvals, 0)


def source_flux(spectral_model, edges_true, pvals, energy_scale=None, area_scale=None):
    """Integrated flux (cm-2 s-1) on true-energy ``edges_true`` (TeV, numpy) with the energy-scale
    (``1 + z``) and effective-area (``norm``) nuisances of the dataset applied (None: absent)."""
    flux = integrated_flux(spectral_model, edges_true[:-1], edges_true[1:], pvals, energy_scale=energy_scale)
    return flux if area_scale is None else flux * area_scale
