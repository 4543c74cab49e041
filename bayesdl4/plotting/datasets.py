"""Quick-look plots of datasets (gammapy's ``peek``, ``plot_fit``, ``plot_residuals``,
``plot_masks``). Matplotlib is imported only here, when a plot is made; the numbers come from
the datasets (counts, masks, IRFs) and their ``npred`` conveniences.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "peek",
    "plot_fit",
    "plot_residuals",
    "plot_residuals_spectral",
    "plot_residuals_spatial",
    "plot_masks",
    "plot_counts",
]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _is_map(dataset) -> bool:
    return hasattr(dataset._geom, "npix") and dataset._geom.npix != (1, 1)


def _edges_tev(axis):
    return axis.edges.to_value("TeV")


def _spectrum(dataset, values, mask_image=True):
    """Values of counts shape summed over the sky pixels of the mask image, shape (n_energy,)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 3 and mask_image:
        return (values * dataset.mask_image[None]).sum(axis=(1, 2))
    return values.reshape(values.shape[0], -1).sum(axis=1)


def _has_models(dataset) -> bool:
    return bool(dataset.models)


def _npred(dataset):
    """Predicted counts, or the background when there are no models (None without either)."""
    if _has_models(dataset) or dataset.is_onoff:
        return dataset.npred().data
    return None if dataset.background is None else dataset.background.data


def _shade_mask(ax, axis, mask, **kwargs):
    """Shade the energy ranges where ``mask`` (n_energy,) is True on an energy x axis."""
    edges = _edges_tev(axis)
    mask = np.asarray(mask, dtype=bool)
    start = None
    for i, value in enumerate(np.append(mask, False)):
        if value and start is None:
            start = i
        elif not value and start is not None:
            ax.axvspan(edges[start], edges[i], **kwargs)
            kwargs.pop("label", None)
            start = None


def plot_counts(dataset, ax=None):
    """Counts (points with sqrt(N) errors) and the prediction (step) per reco-energy bin."""
    ax = ax or _plt().gca()
    axis = dataset.energy_axis
    edges = _edges_tev(axis)
    centre = axis.center.to_value("TeV")
    counts = _spectrum(dataset, dataset.counts.data)
    ax.errorbar(
        centre,
        counts,
        xerr=[centre - edges[:-1], edges[1:] - centre],
        yerr=np.sqrt(counts),
        fmt="o",
        color="k",
        ms=3,
        label="counts",
    )
    npred = _npred(dataset)
    if npred is not None:
        ax.stairs(
            _spectrum(dataset, npred),
            edges,
            color="C0",
            label="npred" if _has_models(dataset) else "background",
        )
    if dataset.background is not None and _has_models(dataset):
        ax.stairs(
            _spectrum(dataset, dataset.background.data),
            edges,
            color="C1",
            ls="--",
            label="background",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("Counts")
    ax.set_xlabel("Energy [TeV]")
    ax.legend(fontsize="small")
    return ax


def plot_residuals_spectral(dataset, ax=None, method="diff"):
    """counts - npred per reco-energy bin (summed over the sky for maps), with sqrt(N) errors;
    ``method`` ``"diff/sqrt(model)"`` divides by the square root of the summed prediction."""
    ax = ax or _plt().gca()
    axis = dataset.energy_axis
    edges, centre = _edges_tev(axis), axis.center.to_value("TeV")
    counts = _spectrum(dataset, dataset.counts.data)
    npred = _spectrum(dataset, _npred(dataset))
    residual, error = counts - npred, np.sqrt(counts)
    if method == "diff/sqrt(model)":
        with np.errstate(divide="ignore", invalid="ignore"):
            residual, error = residual / np.sqrt(npred), error / np.sqrt(npred)
    elif method == "diff/model":
        with np.errstate(divide="ignore", invalid="ignore"):
            residual, error = residual / npred, error / npred
    elif method != "diff":
        raise ValueError(f"unknown residual method {method!r}")
    mask = dataset.mask
    fitted = (
        np.ones(axis.nbin, bool) if mask is None else np.any(mask.reshape(axis.nbin, -1), axis=1)
    )
    ax.errorbar(
        centre[fitted],
        residual[fitted],
        yerr=error[fitted],
        xerr=[(centre - edges[:-1])[fitted], (edges[1:] - centre)[fitted]],
        fmt="o",
        color="k",
        ms=3,
    )
    ax.axhline(0, color="C0", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel(
        {
            "diff": "Counts - npred",
            "diff/model": "(Counts - npred) / npred",
            "diff/sqrt(model)": "(Counts - npred) / sqrt(npred)",
        }[method]
    )
    return ax


def plot_residuals_spatial(dataset, ax=None, method="diff/sqrt(model)", **kwargs):
    """Sky image of the residuals summed over the energy bins in the mask (maps only)."""
    plt = _plt()
    image = dataset._geom.to_image()
    if ax is None:
        ax = plt.gcf().add_subplot(projection=image.wcs)
    mask = dataset.mask
    weights = np.ones(dataset.data_shape) if mask is None else mask
    counts = (dataset.counts.data * weights).sum(axis=0)
    npred = (_npred(dataset) * weights).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {
            "diff": counts - npred,
            "diff/model": (counts - npred) / npred,
            "diff/sqrt(model)": (counts - npred) / np.sqrt(npred),
        }[method]
    vmax = np.nanmax(np.abs(values)) or 1.0
    kwargs.setdefault("cmap", "coolwarm")
    shown = ax.imshow(
        np.where(dataset.mask_image, values, np.nan),
        origin="lower",
        vmin=-vmax,
        vmax=vmax,
        **kwargs,
    )
    plt.colorbar(
        shown, ax=ax, label=method.replace("diff", "counts - npred").replace("model", "npred")
    )
    ax.set_title("Residuals")
    return ax


def plot_residuals(dataset, ax_spatial=None, ax_spectral=None, method="diff"):
    """Spectral residuals, and for maps also the residual sky image (a new figure by default)."""
    plt = _plt()
    if not _is_map(dataset):
        return plot_residuals_spectral(dataset, ax=ax_spectral, method=method)
    if ax_spatial is None or ax_spectral is None:
        fig = plt.figure(figsize=(12, 4))
        ax_spatial = fig.add_subplot(1, 2, 1, projection=dataset._geom.to_image().wcs)
        ax_spectral = fig.add_subplot(1, 2, 2)
    plot_residuals_spatial(dataset, ax=ax_spatial, method="diff/sqrt(model)")
    plot_residuals_spectral(dataset, ax=ax_spectral, method=method)
    return ax_spatial, ax_spectral


def plot_fit(dataset, ax_spectrum=None, ax_residuals=None, method="diff"):
    """Counts and prediction above, residuals below, on a shared energy axis (spectra)."""
    plt = _plt()
    if ax_spectrum is None or ax_residuals is None:
        fig, (ax_spectrum, ax_residuals) = plt.subplots(
            2, 1, sharex=True, figsize=(7, 6), gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
        )
    plot_counts(dataset, ax=ax_spectrum)
    mask = dataset.mask
    if mask is not None:
        _shade_mask(
            ax_spectrum,
            dataset.energy_axis,
            ~np.any(mask.reshape(mask.shape[0], -1), axis=1),
            color="0.85",
            label="outside the fit",
        )
        ax_spectrum.legend(fontsize="small")
    ax_spectrum.set_xlabel("")
    plot_residuals_spectral(dataset, ax=ax_residuals, method=method)
    ax_spectrum.set_title(dataset.name)
    return ax_spectrum, ax_residuals


def plot_masks(dataset, ax=None, kwargs_safe=None, kwargs_fit=None):
    """Safe and fit masks: shaded energy ranges for spectra, sky images for maps."""
    plt = _plt()
    kwargs_safe = {"color": "C2", "alpha": 0.3, "label": "mask_safe", **(kwargs_safe or {})}
    kwargs_fit = {"color": "C1", "alpha": 0.3, "label": "mask_fit", **(kwargs_fit or {})}
    if _is_map(dataset):
        image = dataset._geom.to_image()
        ax = ax or plt.gcf().add_subplot(projection=image.wcs)
        if dataset.mask_safe is not None:
            ax.imshow(
                dataset.mask_safe_image, origin="lower", cmap="Greens", alpha=0.5, vmin=0, vmax=1
            )
        if dataset.mask_fit is not None:
            ax.contour(
                np.any(dataset.mask_fit.data, axis=0), levels=[0.5], colors=kwargs_fit["color"]
            )
        ax.set_title("mask_safe (shaded), mask_fit (contour)")
        return ax
    ax = ax or plt.gca()
    axis = dataset.energy_axis
    # one band each: mask_safe below, mask_fit above
    for (mask, kwargs), (ymin, ymax) in zip(
        ((dataset.mask_safe, kwargs_safe), (dataset.mask_fit, kwargs_fit)),
        ((0, 0.5), (0.5, 1)),
        strict=True,
    ):
        if mask is not None:
            _shade_mask(ax, axis, mask.data.ravel(), ymin=ymin, ymax=ymax, **kwargs)
    ax.set_xscale("log")
    ax.set_xlim(*_edges_tev(axis)[[0, -1]])
    ax.set_yticks([])
    ax.set_xlabel("Energy [TeV]")
    ax.legend(fontsize="small")
    return ax


def _plot_edisp(ax, pdf, axis_true, axis):
    plt = _plt()
    true, reco = _edges_tev(axis_true), _edges_tev(axis)
    shown = ax.pcolormesh(true, reco, pdf.T, shading="flat")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("True energy [TeV]")
    ax.set_ylabel("Energy [TeV]")
    ax.set_title("Energy dispersion")
    plt.colorbar(shown, ax=ax, label="probability")


def _kernel(dataset):
    edisp = dataset.edisp
    if edisp is None:
        return None
    if hasattr(edisp, "pdf_matrix"):
        return edisp.pdf_matrix
    position = dataset._geom.center_skydir
    if hasattr(edisp, "migra_axis"):
        return edisp.get_edisp_kernel(dataset.energy_axis, position=position).pdf_matrix
    return edisp.get_edisp_kernel(position=position).pdf_matrix


def peek(dataset, figsize=None):
    """Quick-look figure: counts and prediction, exposure, energy dispersion, masks (spectra);
    counts, background and exposure images, PSF containment and energy dispersion (maps)."""
    plt = _plt()
    if not _is_map(dataset):
        fig, axes = plt.subplots(1, 4, figsize=figsize or (18, 4))
        plot_counts(dataset, ax=axes[0])
        axes[0].set_title(f"{dataset.name}: counts")
        axis_true = dataset.energy_axis_true
        if dataset.exposure is not None:
            axes[1].stairs(
                dataset.exposure.quantity.to_value("m2 s").ravel(), _edges_tev(axis_true), color="k"
            )
            axes[1].set_xscale("log")
            axes[1].set_yscale("log")
            axes[1].set_xlabel("True energy [TeV]")
            axes[1].set_ylabel("Exposure [m2 s]")
            axes[1].set_title("Exposure")
        if dataset.edisp is not None:
            _plot_edisp(axes[2], _kernel(dataset), axis_true, dataset.energy_axis)
        plot_masks(dataset, ax=axes[3])
        axes[3].set_title("Masks")
        fig.tight_layout()
        return fig
    fig = plt.figure(figsize=figsize or (16, 8))
    image = dataset._geom.to_image()
    panels = [
        (
            "Counts (safe bins)",
            dataset.counts.data * (1 if dataset.mask_safe is None else dataset.mask_safe.data),
        ),
        (
            "Background (safe bins)",
            None
            if dataset.background is None
            else dataset.background.data
            * (1 if dataset.mask_safe is None else dataset.mask_safe.data),
        ),
        (
            "Exposure (sum over true energy)",
            None if dataset.exposure is None else dataset.exposure.data,
        ),
    ]
    for i, (title, values) in enumerate(panels):
        ax = fig.add_subplot(2, 3, i + 1, projection=image.wcs)
        if values is not None:
            shown = ax.imshow(np.sum(values, axis=0), origin="lower", cmap="viridis")
            plt.colorbar(shown, ax=ax)
        ax.set_title(title)
    ax = fig.add_subplot(2, 3, 4)
    if dataset.psf is not None:
        energy = dataset.psf.energy_axis
        radius = dataset.psf.containment_radius(0.68, energy.center, position=image.center_skydir)
        ax.plot(energy.center.to_value("TeV"), np.asarray(getattr(radius, "deg", radius)), "o-")
        ax.set_xscale("log")
        ax.set_xlabel(f"{'Reco' if dataset.psf.is_reco else 'True'} energy [TeV]")
        ax.set_ylabel("68% containment radius [deg]")
    ax.set_title("PSF")
    ax = fig.add_subplot(2, 3, 5)
    pdf = _kernel(dataset)
    if pdf is not None:
        _plot_edisp(ax, pdf, dataset.energy_axis_true, dataset.energy_axis)
    ax = fig.add_subplot(2, 3, 6, projection=image.wcs)
    plot_masks(dataset, ax=ax)
    fig.suptitle(dataset.name)
    fig.tight_layout()
    return fig
