"""The one YAML loader of the package (datasets and models files), with errors naming the file.

gammapy 2.1 appends ``checksum: <md5>`` to the YAML files it writes: the md5 of the text above
it, dumped in `YAML_FORMAT`. A checksum that does not match is a warning (the file was edited),
as in gammapy.
"""

import hashlib
import logging
import os
from pathlib import Path

import yaml

from ..errors import DataFileNotFoundError, DataFormatError

__all__ = ["YAML_FORMAT", "yaml_checksum", "load_yaml"]

log = logging.getLogger(__name__)

# gammapy's YAML_FORMAT (gammapy.utils.scripts): the checksum is the md5 of text in this format
YAML_FORMAT = dict(sort_keys=False, indent=4, width=80, default_flow_style=False)


def yaml_checksum(text: str) -> str:
    """gammapy's checksum of a YAML text: its md5 hex digest."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def load_yaml(filename, role="YAML file") -> dict:
    """A YAML file's top-level mapping, without gammapy's ``checksum`` entry.

    Parameters
    ----------
    filename : str or Path
        May contain environment variables (``$GAMMAPY_DATA/...``) and ``~``.
    role : str
        What the file is, for messages (``"models file"``, ``"datasets file"``).

    Raises
    ------
    DataFileNotFoundError
        The file does not exist.
    DataFormatError
        A directory, an unreadable or binary (not UTF-8) file, invalid YAML, or a top level that
        is not a mapping.
    """
    path = Path(os.path.expandvars(str(filename))).expanduser()
    if path.is_dir():
        raise DataFormatError(f"{path}: {role} is a directory, not a YAML file; give the file's path")
    if not path.exists():
        raise DataFileNotFoundError(f"{path}: {role} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path}: {role} is not a text (UTF-8) file, byte {exc.start} cannot be decoded; is it "
            "a FITS or other binary file given in place of the YAML?"
        ) from exc
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read the {role} ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataFormatError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: a {role} must be a YAML mapping, got {type(data).__name__}")
    checksum = data.pop("checksum", None)
    if checksum is not None and yaml_checksum(yaml.safe_dump(data, **YAML_FORMAT)) != checksum:
        log.warning("%s: checksum does not match the content (edited by hand?)", path)
    return data
