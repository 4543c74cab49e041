"""Graph builders: datasets + models -> PyTensor npred and per-bin likelihood graphs."""

from .evaluate import evaluate_npred, evaluate_stat_array
from .joint import DatasetGraph, build_dataset_graphs, parameter_inputs, total_stat

__all__ = [
    "DatasetGraph",
    "build_dataset_graphs",
    "parameter_inputs",
    "total_stat",
    "evaluate_npred",
    "evaluate_stat_array",
]
