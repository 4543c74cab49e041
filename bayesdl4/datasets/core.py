"""``Datasets``: an ordered collection of datasets with unique names (the factors of one joint model)."""

import numpy as np

from ..errors import ModelError

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

    # I/O (formats live in bayesdl4.io.datasets_yaml) ------------------------------------
    @classmethod
    def read(cls, filename, filename_models=None):
        """Read a datasets YAML and the files it lists (gammapy 2.1's ``Datasets.read``).

        ``filename_models``: models YAML whose models are given to the datasets.
        """
        from ..io.datasets_yaml import read_datasets

        return read_datasets(filename, filename_models=filename_models)

    def write(
        self, path, filename_models=None, overwrite=False, prefix=None, spectrum_format="gadf"
    ):
        """Write a datasets YAML + one FITS file per dataset (+ models YAML), all or nothing.

        ``path`` is the YAML file (gammapy 2.1's layout, files named ``<name>.fits``), or with
        ``prefix`` a folder receiving ``<prefix>_datasets.yaml``, ``<prefix>_data_<name>.fits``
        and ``<prefix>_models.yaml``. See `bayesdl4.io.datasets_yaml.write_datasets`.
        """
        from ..io.datasets_yaml import write_datasets

        return write_datasets(
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
