"""The project's exception types. Messages name the file / HDU / parameter and say what to do."""

__all__ = [
    "BayesDL4Error",
    "DataFormatError",
    "GeometryMismatchError",
    "DataFileNotFoundError",
    "ModelError",
    "InferenceError",
    "DataWriteError",
]


class BayesDL4Error(Exception):
    """Base class of every error raised by bayesdl4."""


class DataFormatError(BayesDL4Error, ValueError):
    """A file or array does not have the expected format or content (names the file, HDU, column)."""


class DataFileNotFoundError(DataFormatError, FileNotFoundError):
    """A file to read (or one it references, e.g. an OGIP ANCRFILE) does not exist."""


class DataWriteError(BayesDL4Error, OSError):
    """Files could not be written; the message says which and whether the old files are back in place."""


class GeometryMismatchError(BayesDL4Error, ValueError):
    """Axes or geometries of arrays that must agree do not agree."""


class ModelError(BayesDL4Error, ValueError):
    """A model, parameter or prior is invalid or unknown."""


class InferenceError(BayesDL4Error, RuntimeError):
    """Fitting or sampling could not be done as asked."""


class UnsupportedError(BayesDL4Error, NotImplementedError):
    """An operation gammapy does not define either for this kind of dataset or model (the message
    says what to do instead)."""
