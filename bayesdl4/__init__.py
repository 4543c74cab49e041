"""bayesdl4: Bayesian analysis of reduced gamma-ray data (DL4) on PyTensor graphs and PyMC models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayesdl4")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .errors import (
    BayesDL4Error,
    DataFileNotFoundError,
    DataFormatError,
    DataWriteError,
    GeometryMismatchError,
    InferenceError,
    ModelError,
    UnsupportedError,
)

__all__ = [
    "__version__",
    "BayesDL4Error",
    "DataFileNotFoundError",
    "DataFormatError",
    "DataWriteError",
    "GeometryMismatchError",
    "InferenceError",
    "ModelError",
    "UnsupportedError",
]
