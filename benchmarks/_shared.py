"""What the benchmark scripts share: the repository root, the command that made a record, and (from the package,
re-exported for the scripts) paths written relative to the root and read against it, and the number format of the
pages.

The scripts run as `python benchmarks/<x>.py`, which puts this folder on sys.path, so they import this module
as `_shared`; tests/conftest.py puts it there too.

The path helpers (i2i_unlearn.paths) take the root as an argument rather than reading ROOT themselves: a
script passes its own ROOT, the package's harness whatever root it is given (a test: a scratch folder).
"""
from __future__ import annotations

import argparse
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


def config_benchmark(doc: str, run, example: str, argv: list[str] | None = None):
    """The entry point of a benchmark that one config drives (audit, proxy, robust): `--config`, `--work` (its
    cache, default runs/<config name>) and `--results`; `run(config, work, results, command)` does the work and
    returns the record. A UserError ends the process with its one line, no traceback."""
    from i2i_unlearn.errors import UserError
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--config", required=True, help=f"the benchmark's config, e.g. {example}")
    parser.add_argument("--work", default=None, help="folder for its models and scorings (default runs/<name>)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="where <name>.json/.md go")
    args = parser.parse_args(argv)
    config = Path(args.config)
    work = Path(args.work) if args.work else ROOT / "runs" / config.stem
    try:
        return run(config, work, Path(args.results), command_line(sys.argv[0], argv))
    except UserError as error:
        sys.exit(f"error: {error}")
