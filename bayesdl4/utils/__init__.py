"""Small helpers shared by several packages (atomic writes, checksums)."""

from .fileio import atomic_path, file_checksum

__all__ = ["atomic_path", "file_checksum"]
