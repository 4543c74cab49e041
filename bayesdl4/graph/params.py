"""The parameter vector ``theta`` that every dataset graph reads its parameters from.

All distinct `Parameter` objects of the models (free and frozen; linked parameters once) get a
position in one float64 vector ``theta`` of physical values in each parameter's own unit,
followed by the constants 0 and 1 (what a dataset without an energy-scale or effective-area
nuisance reads). Graph builders gather from ``theta`` with integer index arrays, so a graph over
many datasets holds one gather per model parameter slot, not one node per dataset, and frozen
values are data, not constants of the graph.

Order: free parameters first (see `ParameterTable.free`), then frozen ones, then 0 and 1.
"""

import os

import numpy as np
import pytensor.tensor as pt

__all__ = ["ParameterTable", "unique_names"]


def unique_names(models):
    """``[(name, parameter, model)]`` for every distinct parameter of ``models``, named
    ``"<model>.<parameter>"`` (``_2``, ``_3``, ... appended where a name repeats).

    A parameter shared by several models (linked, e.g. by `per_dataset`) is named after the common
    start of their names when there is one (``crab-run1``, ``crab-run2`` -> ``crab.beta``).
    """
    owners, order = {}, []
    for model in models:
        for par in model.parameters:
            if id(par) not in owners:
                owners[id(par)] = (par, [])
                order.append(id(par))
            if model not in owners[id(par)][1]:
                owners[id(par)][1].append(model)
    out, names = [], set()
    for key in order:
        par, models_of = owners[key]
        base = models_of[0].name
        if len(models_of) > 1:
            common = os.path.commonprefix([m.name for m in models_of]).rstrip("-_. ")
            base = common or base
        name = f"{base}.{par.name}"
        k = 2
        while name in names:
            name = f"{base}.{par.name}_{k}"
            k += 1
        names.add(name)
        out.append((name, par, models_of[0]))
    return out


class ParameterTable:
    """Positions of all parameters of ``models`` in ``theta``.

    Attributes
    ----------
    names : list of str
        Unique names in theta order (without the two constants).
    parameters : list of Parameter
    model_names : list of str
        Name of the (first) model each parameter belongs to.
    n_free : int
        The first ``n_free`` entries are the free parameters.
    zero, one : int
        Positions of the constants 0 and 1.
    """

    def __init__(self, models, free_order=None):
        entries = unique_names(models)
        free = [e for e in entries if not e[1].frozen]
        frozen = [e for e in entries if e[1].frozen]
        if free_order is not None:  # the inference layer may order free parameters in blocks
            rank = {id(p): i for i, p in enumerate(free_order)}
            free.sort(key=lambda e: rank[id(e[1])])
        ordered = free + frozen
        self.names = [e[0] for e in ordered]
        self.parameters = [e[1] for e in ordered]
        self.model_names = [e[2].name for e in ordered]
        self.n_free = len(free)
        self._index = {id(p): i for i, p in enumerate(self.parameters)}
        self.zero = len(ordered)
        self.one = len(ordered) + 1

    def __len__(self):
        return len(self.parameters)

    def index(self, parameter):
        """Position of ``parameter`` in theta."""
        try:
            return self._index[id(parameter)]
        except KeyError:
            raise KeyError(f"parameter {parameter!r} is not one of this table's models") from None

    @property
    def free(self):
        return self.parameters[: self.n_free]

    @property
    def free_names(self):
        return self.names[: self.n_free]

    def frozen_values(self):
        """Frozen values followed by the constants 0 and 1 (the tail of theta), float64."""
        values = [p.value for p in self.parameters[self.n_free:]]
        return np.array([*values, 0.0, 1.0], dtype="float64")

    def values(self):
        """Current theta (free and frozen values, then 0 and 1)."""
        return np.array([*(p.value for p in self.parameters), 0.0, 1.0], dtype="float64")

    def theta(self, free_values, frozen_values):
        """theta tensor from a free-value tensor (n_free,) and the frozen tail (tensor or array)."""
        return pt.concatenate([pt.as_tensor(free_values).reshape((-1,)), pt.as_tensor(frozen_values)])

    def scalar_pvals(self, theta, parameters):
        """``{Parameter: theta[i]}`` for ``parameters`` (the form the model formulas read)."""
        return {p: theta[self.index(p)] for p in parameters}
