"""What the benchmark scripts share: the repository root, the command that made a record, and (from the package,
re-exported for the scripts) paths written relative to the root and read against it, and the number format of the
pages.

The scripts run as `python benchmarks/<x>.py`, which puts this folder on sys.path, so they import this module
as `_shared`; tests/conftest.py puts it there too.

The path helpers (i2i_unlearn.paths) take the root as an argument rather than reading ROOT themselves: a
script passes its own ROOT, the package's harness whatever root it is given (a test: a scratch folder).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from i2i_unlearn.paths import absolute, relative  # noqa: F401  (re-exported for the scripts)
from i2i_unlearn.text import format_fixed as fmt  # noqa: F401  (a number in a results table; a dash for none)

ROOT = Path(__file__).resolve().parents[1]


def command_line(script: str | Path, argv: list[str] | None = None) -> str:
    """The command that made a record, as typed from the repository root: `python benchmarks/<x>.py ...`.
    `script` is the script's __file__; `argv` its arguments (sys.argv[1:] unless a test passes its own), each
    quoted for the shell so the recorded command runs as written."""
    arguments = sys.argv[1:] if argv is None else argv
    return " ".join(["python", relative(script, ROOT), *(shlex.quote(str(a)) for a in arguments)])
