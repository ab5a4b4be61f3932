"""Paths in the benchmark scripts: the repository root, paths written relative to it, and paths read against it.

The scripts run as `python benchmarks/<x>.py`, which puts this folder on sys.path, so they import this module
as `_paths`; tests/conftest.py puts it there for the tests that load a script by its file.

Both helpers take the root as an argument rather than reading ROOT themselves: a script passes its own ROOT,
so a test that points a script's ROOT at a scratch folder (tests/test_tune.py) moves its paths with it.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def relative(path: str | Path, root: Path) -> str:
    """`path` as recorded in JSON and pages: relative to `root` if inside it (so the record reads the same in
    any checkout), else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def absolute(value: str | Path, root: Path) -> Path:
    """A path from a config or a record: an absolute one as given, a relative one taken from `root`."""
    return Path(value) if Path(value).is_absolute() else root / value
