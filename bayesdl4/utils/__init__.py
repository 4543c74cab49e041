"""Small helpers shared by several packages (atomic writes, checksums)."""

from .fileio import atomic_files, atomic_path, file_checksum, write_files

__all__ = ["atomic_files", "atomic_path", "file_checksum", "write_files"]
