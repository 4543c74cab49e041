"""``Datasets``: an ordered collection of datasets with unique names (the factors of one joint model)."""

import numpy as np

from ..errors import GeometryMismatchError, ModelError
from ..io import registry
from . import info as _info
from . import stack as _stack

__all__ = ["Datasets"]


class Datasets:
    """Datasets with unique names, indexed by name or position.

    Assigning ``datasets.models = models`` gives each dataset the models whose
    ``datasets_names`` include it (or that have none).
    """

    def __init__(self, datasets=()):
        if isinstance(datasets, Datasets):
            datasets = list(datasets)
        elif not isinstance(datasets, (list, tuple)):
            datasets = [datasets]
        self._datasets = []
        for dataset in datasets:
            self.append(dataset)

    def append(self, dataset):
        if dataset.name in self.names:
            raise ModelError(f"Datasets: name {dataset.name!r} is used twice; names must be unique")
        self._datasets.append(dataset)

    @property
    def names(self):
        return [d.name for d in self._datasets]

    def __len__(self):
        return len(self._datasets)

    def __iter__(self):
        return iter(self._datasets)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._datasets[key]
        if isinstance(key, slice):
            return Datasets(self._datasets[key])
        for dataset in self._datasets:
            if dataset.name == key:
                return dataset
        raise KeyError(f"no dataset named {key!r}; have {self.names}")

    @property
    def models(self):
        """All distinct models of the datasets, in order of first appearance."""
        from ..models import Models

        seen, out = set(), []
        for dataset in self._datasets:
            for model in dataset.models or ():
                if id(model) not in seen:
                    seen.add(id(model))
                    out.append(model)
        return Models(out)

    @models.setter
    def models(self, models):
        from ..models import Models

        models = Models(models)
        for model in models:
            unknown = set(model.datasets_names or ()) - set(self.names)
            if unknown:
                raise ModelError(
                    f"model {model.name!r}: datasets_names {sorted(unknown)} are not in these datasets {self.names}"
                )
        for dataset in self._datasets:
            dataset.models = models

    @property
    def parameters(self):
        return self.models.parameters

    def stat_sum(self):
        """Sum of the datasets' fit statistics (-2 log-likelihood, gammapy's convention)."""
        return float(sum(d.stat_sum() for d in self._datasets))

    def copy(self):
        return Datasets([d.copy() for d in self._datasets])

    # stacking ----------------------------------------------------------------------------
    @property
    def is_all_same_type(self) -> bool:
        """True when every dataset has the same type (needed to stack them)."""
        return len({type(d) for d in self._datasets}) <= 1

    def stack_reduce(self, name=None, nan_to_num=True):
        """One dataset: the first masked by its safe mask, the others stacked onto it
        (gammapy's ``stack_reduce``; see `bayesdl4.datasets.stack`)."""
        if not self._datasets:
            raise GeometryMismatchError("stack_reduce: there are no datasets to stack")
        return _stack.stack(self._datasets, name=name, nan_to_num=nan_to_num)

    def stack_by(self, key, nan_to_num=True):
        """Stack the runs that share a value of ``key``; returns the stacks as `Datasets`.

        Parameters
        ----------
        key : str or callable
            A column of the datasets' meta tables (first row, e.g. ``"TELESCOP"``), a key of
            ``dataset.meta``, or a function ``dataset -> value`` (e.g. a zenith band).

        Returns
        -------
        Datasets
            One stack per value, in order of first appearance, named ``"<key>=<value>"`` (or
            ``"<value>"`` for a function), ready for a joint fit.
        """
        groups = {}
        for dataset in self._datasets:
            groups.setdefault(_group_value(dataset, key), []).append(dataset)
        label = "" if callable(key) else f"{key}="
        return Datasets(
            [
                _stack.stack(members, name=f"{label}{value}", nan_to_num=nan_to_num)
                for value, members in groups.items()
            ]
        )

    # summaries ---------------------------------------------------------------------------
    def info_table(self, cumulative=False):
        """`astropy.table.Table` of the datasets' ``info_dict`` rows (gammapy's ``info_table``)."""
        return _info.info_table(self._datasets, cumulative=cumulative)

    @property
    def gti(self):
        """GTI table with one interval per dataset (its first start to its last stop), or None."""
        return _info.datasets_gti(self._datasets)

    @property
    def meta_table(self):
        """The datasets' meta tables stacked, with ``NAME`` and ``TYPE`` columns first."""
        return _info.datasets_meta_table(self._datasets)

    @property
    def energy_ranges(self):
        """(energy_min, energy_max): each dataset's reco-energy axis bounds, as Quantities."""
        return _info.energy_ranges(self._datasets)

    # I/O (format registry; the YAML format lives in bayesdl4.io.datasets_yaml) -----------
    @classmethod
    def read(cls, filename, filename_models=None):
        """Read a datasets YAML and the files it lists (gammapy 2.1's ``Datasets.read``).

        ``filename_models``: models YAML whose models are given to the datasets.
        """
        return registry.lookup(cls, "yaml", "read")(filename, filename_models=filename_models)

    def write(
        self, path, filename_models=None, overwrite=False, prefix=None, spectrum_format="gadf"
    ):
        """Write a datasets YAML + one FITS file per dataset (+ models YAML), all or nothing.

        ``path`` is the YAML file (gammapy 2.1's layout, files named ``<name>.fits``), or with
        ``prefix`` a folder receiving ``<prefix>_datasets.yaml``, ``<prefix>_data_<name>.fits``
        and ``<prefix>_models.yaml``. See `bayesdl4.io.datasets_yaml.write_datasets`.
        """
        return registry.lookup(type(self), "yaml", "write")(
            self,
            path,
            filename_models=filename_models,
            overwrite=overwrite,
            prefix=prefix,
            spectrum_format=spectrum_format,
        )

    def __repr__(self):
        lines = [f"Datasets ({len(self)})"] + [f"  {d!r}" for d in self._datasets]
        return "\n".join(lines)


def _group_value(dataset, key):
    """The value of ``key`` for ``dataset`` (see `Datasets.stack_by`)."""
    if callable(key):
        return key(dataset)
    table = dataset.meta_table
    if table is not None and key in table.colnames and len(table):
        value = table[key][0]
        return value.item() if hasattr(value, "item") else value
    if key in dataset.meta:
        return dataset.meta[key]
    raise ModelError(
        f"stack_by: dataset {dataset.name!r} has no {key!r} in its meta table "
        f"({[] if table is None else table.colnames}) or meta ({sorted(dataset.meta)}); give a "
        "key they all have, or a function dataset -> value"
    )
