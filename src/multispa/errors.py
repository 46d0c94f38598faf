"""The project's exception tree.

```
MultispaError                  base of every error multispa raises on purpose
├── ConfigError                bad option or configuration value
├── DatasetError               an input file is missing or malformed (names the file)
│   ├── MissingFileError       a required file does not exist
│   └── FormatError            a file exists but its content is not what the format says
├── OutputError                an output path cannot be written (a file in the way, no
│   │                          permission, disk full...; names the path)
│   └── LockError              the output folder is in use by another running command
├── CacheError                 a per-scene cache is missing, stale or corrupt
└── ShapeError                 an array has the wrong shape (also a ValueError)
```

Messages say what failed, where (file, scene or clip, frame) and what was expected, so that the
CLI can print them on one line.
"""

from __future__ import annotations

from pathlib import Path


class MultispaError(Exception):
    """Base class of all multispa errors."""


class ConfigError(MultispaError):
    """An option or configuration value is invalid."""


class DatasetError(MultispaError):
    """An input dataset file is missing or malformed.

    Args:
        path: the offending file (or folder).
        problem: what is wrong, in words, with expected versus found values.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingFileError(DatasetError):
    """A required input file does not exist."""

    def __init__(self, path: str | Path, problem: str = "file not found") -> None:
        super().__init__(path, problem)


class FormatError(DatasetError):
    """A file exists but does not follow its format (truncated, wrong version, bad keys...)."""


class OutputError(MultispaError):
    """An output file or folder cannot be written.

    Args:
        path: the output path (or the part of it in the way).
        problem: what is wrong, in words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class LockError(OutputError):
    """Another running process holds the output folder's lock (the problem names it)."""


class CacheError(MultispaError):
    """A per-scene cache is missing, stale or corrupt."""


class ShapeError(MultispaError, ValueError):
    """An array argument has the wrong shape."""
