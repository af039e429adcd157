"""Errors raised by every dataset loader: they name what is missing and where to get it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


class DatasetError(Exception):
    """Base class of the data layer's errors."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset is not on disk where it was expected."""

    def __init__(self, name: str, root: str | Path, expected: Iterable[str], source: str):
        self.name, self.root, self.expected, self.source = name, Path(root), list(expected), source
        self.missing = [item for item in self.expected if not (self.root / item).exists()]
        listed = "\n".join(f"  - {self.root / item}" + ("   <- missing" if item in self.missing else "")
                           for item in self.expected)
        super().__init__(
            f"{name} was not found under {self.root}.\n"
            f"Expected these files:\n{listed}\n"
            f"Get them from: {source}"
        )


class DatasetFormatError(DatasetError, ValueError):
    """A dataset file exists but does not have the expected layout."""

    def __init__(self, path: str | Path, problem: str, source: str | None = None):
        self.path, self.problem = Path(path), problem
        hint = f"\nA correct copy is available from: {source}" if source else ""
        super().__init__(f"{self.path}: {problem}{hint}")


def require_files(name: str, root: Path, expected: Iterable[str], source: str) -> None:
    """Raise :class:`DatasetNotFoundError` unless every ``root / item`` of ``expected`` exists.

    Parameters
    ----------
    name : dataset name used in the message.
    root : folder the expected paths are relative to.
    expected : relative paths (files or folders) that must exist.
    source : where to get the data (URL or instruction), quoted in the message.
    """
    expected = list(expected)
    if not all((root / item).exists() for item in expected):
        raise DatasetNotFoundError(name, root, expected, source)
