"""Poisson fakes of any dataset: counts drawn from the prediction (gammapy's ``fake``).

``dataset.fake(random_seed=...)`` delegates here. The prediction comes from the dataset's
``npred_signal`` (the same graph as the likelihood); many-run simulations that must not evaluate
a graph per run use `bayesdl4.datasets.simulate` instead.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataFormatError

__all__ = ["fake", "as_rng"]


def as_rng(random_seed) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator (returned as it is) or None (fresh entropy)."""
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    return np.random.default_rng(random_seed)


def _mean(values, what, name) -> np.ndarray:
    values = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    if np.any(values < 0):
        raise DataFormatError(
            f"fake: dataset {name!r}: the {what} has negative values (min {values.min():.3g}); "
            "Poisson means must be >= 0"
        )
    return values


def fake(dataset, random_seed=None, npred_background=None):
    """Replace the counts by Poisson draws of the prediction, in place; returns the dataset.

    Cash datasets: ``counts ~ Poisson(npred)`` (signal of the dataset's models + background).
    ON/OFF datasets: ``counts ~ Poisson(npred_signal + b)`` and ``counts_off ~ Poisson(b / alpha)``
    with ``b`` the expected background in the ON region: ``npred_background`` if given (array or
    map of counts shape), else the current estimate alpha x counts_off. Bins with alpha = 0 get
    no OFF counts.

    Parameters
    ----------
    random_seed : int, `numpy.random.Generator` or None
        Same seed, same draws.
    npred_background : array or map, optional
        ON/OFF only: expected background counts in the ON region.
    """
    rng = as_rng(random_seed)
    if dataset.counts is None:
        raise DataFormatError(f"fake: dataset {dataset.name!r} has no counts geometry to fill")
    shape = dataset.data_shape
    if not dataset.is_onoff:
        if npred_background is not None:
            raise DataFormatError(
                f"fake: dataset {dataset.name!r} is a {dataset.tag}: its background is "
                "dataset.background; npred_background is for ON/OFF datasets"
            )
        if dataset.models:  # signal + background (scaled by any FoV background model)
            mean = dataset.npred().data
        else:
            mean = np.zeros(shape) if dataset.background is None else dataset.background.data
        mean = _mean(mean, "predicted counts", dataset.name)
        dataset.counts = dataset._as_map(rng.poisson(mean).astype(float))
        return dataset
    signal = np.zeros(shape)
    if dataset.models:
        signal = _mean(dataset.npred_signal().data, "predicted signal", dataset.name)
    if npred_background is None:
        if dataset.counts_off is None:
            raise DataFormatError(
                f"fake: ON/OFF dataset {dataset.name!r} has no counts_off to estimate the "
                "background from; pass npred_background="
            )
        npred_background = dataset.background.data
    background = _mean(
        getattr(npred_background, "data", npred_background), "background", dataset.name
    )
    background = np.broadcast_to(background, shape)
    alpha = dataset.alpha.data
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_off = np.where(alpha > 0, background / alpha, 0.0)
    counts = rng.poisson(signal) + rng.poisson(background)
    dataset.counts = dataset._as_map(counts.astype(float))
    dataset.counts_off = dataset._as_map(rng.poisson(mean_off).astype(float))
    return dataset
