"""Paths in configs and records: read against a root folder, written relative to it.

A config names its models and files relative to a folder (`root`: the folder a bench runs from, the repository
for the scripts in benchmarks/, a model's source folder); a record names them relative to that root, so it reads
the same in any checkout. The root is always passed in: nothing here knows where a repository is."""
from __future__ import annotations

from pathlib import Path


def relative(path: str | Path, root: Path) -> str:
    """`path` as recorded in JSON and pages: relative to `root` if inside it, else absolute."""
    path = Path(path).resolve()
    root = Path(root).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def absolute(value: str | Path, root: Path) -> Path:
    """A path from a config or a record: an absolute one as given, a relative one taken from `root`."""
    return Path(value) if Path(value).is_absolute() else Path(root) / value
