"""The dataset-graph protocol: one builder per dataset type, registered by dataset class.

A builder owns everything the likelihood needs from its dataset type:

* ``check(dataset)``: raise `ModelError` for any model component the likelihood would ignore;
* ``group_key(dataset, table)``: datasets with equal keys are batched into one graph (a group);
* ``prepare(datasets, table, ...)`` -> `GroupPlan`: numpy preparation of a whole group; the
  arrays that change between runs of one shape (counts, counts_off, exposure, responses, index
  arrays) are ``plan.arrays`` and enter graphs as inputs, never as constants;
* ``build(plan, inputs, theta, latent)`` -> `GroupGraph`: the tensors: per-point log-likelihood
  terms (what LOO sees), per-dataset totals (the factors of the joint density), the means of the
  posterior-predictive draws, and npred.

Parameters reach a builder as one vector ``theta`` (`bayesdl4.graph.params.ParameterTable`);
``latent`` holds tensors of per-bin parameters a builder asked for in ``plan.latent`` (the ON/OFF
background rates of the explicit-background likelihood). Adding a dataset type is one new
builder class registered with `register_builder`; nothing else dispatches on types.

The log-likelihood convention is gammapy's: ``-0.5 * stat`` (Cash, WStat with its
goodness-of-fit terms, chi2).
"""

import abc
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError

__all__ = [
    "DatasetGraphBuilder",
    "GroupPlan",
    "GroupGraph",
    "LatentSpec",
    "register_builder",
    "builder_for",
    "plan_groups",
]

_BUILDERS = {}


def register_builder(cls):
    """Class decorator: register a builder for each class in its ``dataset_types``."""
    builder = cls()
    for dataset_type in cls.dataset_types:
        _BUILDERS[dataset_type] = builder
    return cls


def builder_for(dataset):
    """The builder registered for ``type(dataset)`` (or its nearest registered base class)."""
    for klass in type(dataset).__mro__:
        builder = _BUILDERS.get(klass)
        if builder is not None:
            return builder
    known = sorted(k.__name__ for k in _BUILDERS)
    raise ModelError(
        f"dataset {getattr(dataset, 'name', '?')!r}: no likelihood graph for {type(dataset).__name__} "
        f"(known dataset types: {known})"
    )


@dataclass
class LatentSpec:
    """A vector of positive parameters a builder needs besides the models' (flat prior on
    ``[0, inf)``, sampled as ``log(value / scale)``): ``initval`` and ``scale`` have its shape."""

    initval: np.ndarray
    scale: np.ndarray
    dims: str


@dataclass
class PointLayout:
    """What each pointwise log-likelihood term is: ``dataset`` (position in the group) and a
    coordinate per term, and the observed values per term (for ``observed_data``)."""

    dataset: np.ndarray
    coord: np.ndarray
    dim_suffix: str
    observed: dict = field(default_factory=dict)


@dataclass
class GroupPlan:
    """A group of datasets of one builder, prepared for one batched graph."""

    builder: object
    name: str
    datasets: list
    arrays: dict
    static: object
    points: PointLayout | None = None
    latent: dict = field(default_factory=dict)
    #: names of ``arrays`` whose shapes are part of `static_key`: graph inputs with static shapes
    static_shape: frozenset = frozenset()

    @property
    def dataset_names(self):
        return [d.name for d in self.datasets]


@dataclass
class GroupGraph:
    """Tensors of a group.

    ``loglike_points`` (n_points,): per-point log-likelihood (``plan.points`` says what a point
    is); ``loglike_datasets`` (n_datasets,): each dataset's total log-likelihood, what the joint
    density sums; ``predictive``: ``{name: mean}`` Poisson means per point (``counts``, and
    ``counts_off`` for ON/OFF data); ``npred_signal`` / ``npred_background``: per reco bin of the
    prepared bins (only with ``all_bins``, for the numpy conveniences).
    """

    loglike_points: object
    loglike_datasets: object
    predictive: dict = field(default_factory=dict)
    npred_signal: object = None
    npred_background: object = None
    stat_bins: object = None


class DatasetGraphBuilder(abc.ABC):
    """Base class of the builders (see the module docstring)."""

    dataset_types = ()

    def check(self, dataset):  # noqa: B027 - optional hook: most builders check in `group_key`
        """Raise `ModelError` naming any model component the likelihood would ignore."""

    @abc.abstractmethod
    def group_key(self, dataset, table):
        """Hashable key: datasets with equal keys share one batched graph."""

    @abc.abstractmethod
    def prepare(self, datasets, table, name, all_bins=False, granularity=None):
        """`GroupPlan` of ``datasets`` (numpy only)."""

    @abc.abstractmethod
    def build(self, plan, inputs, theta, latent):
        """`GroupGraph` of a plan; ``inputs`` maps ``plan.arrays`` names to tensors."""

    def draw_predictive(self, plan, means, rng):
        """Posterior-predictive draws per point, ``{key: draws}`` from the means of `build`'s
        ``predictive`` (arrays (..., n_points)). Default: Poisson counts for the keys of
        ``plan.points.observed``."""
        return {key: rng.poisson(np.clip(means[key], 0.0, None)) for key in plan.points.observed}

    def static_key(self, plan):
        """Hashable description of everything `build` puts into the graph besides ``plan.arrays``
        (which enter as inputs), or None when there is no cheap one. Two plans with equal keys and
        arrays of the same names, dtypes and ranks (shapes for those in ``static_shape``) give the
        same graph: compiled functions are reused without building it again."""
        return None


def plan_groups(datasets, table, all_bins=False, granularity=None):
    """Group ``datasets`` by builder and ``group_key`` (first-appearance order) and prepare each.

    ``granularity`` (map datasets): what a pointwise term is, ``"bin"``, ``"pixel"`` or
    ``"plane"`` (None: the builder's default).
    """
    groups = {}
    for dataset in datasets:
        builder = builder_for(dataset)
        builder.check(dataset)
        key = (type(builder).__name__, builder.group_key(dataset, table))
        groups.setdefault(key, (builder, []))[1].append(dataset)
    plans = []
    for i, (builder, members) in enumerate(groups.values()):
        name = f"g{i}"
        plans.append(builder.prepare(members, table, name, all_bins=all_bins, granularity=granularity))
    return plans


def group_ranges(values):
    """Start/stop of runs of equal values in a sorted int array (helper for layouts)."""
    values = np.asarray(values)
    if not values.size:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    change = np.flatnonzero(np.diff(values)) + 1
    return np.concatenate([[0], change]), np.concatenate([change, [values.size]])
