"""What the benchmark scripts share: the repository root, paths written relative to it and read against it, the
command that made a record, and the number format of the pages.

The scripts run as `python benchmarks/<x>.py`, which puts this folder on sys.path, so they import this module
as `_shared`; tests/conftest.py puts it there for the tests that load a script by its file.

The path helpers take the root as an argument rather than reading ROOT themselves: a script passes its own ROOT,
so a test that points a script's ROOT at a scratch folder (tests/benchmarks/test_tune.py) moves its paths with it.
"""
from __future__ import annotations

import shlex
import sys
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


def command_line(script: str | Path, argv: list[str] | None = None) -> str:
    """The command that made a record, as typed from the repository root: `python benchmarks/<x>.py ...`.
    `script` is the script's __file__; `argv` its arguments (sys.argv[1:] unless a test passes its own), each
    quoted for the shell so the recorded command runs as written."""
    arguments = sys.argv[1:] if argv is None else argv
    return " ".join(["python", relative(script, ROOT), *(shlex.quote(str(a)) for a in arguments)])


def fmt(value: float | None, digits: int = 3) -> str:
    """A number in a results table; a dash where there is none."""
    return "–" if value is None else f"{value:.{digits}f}"
