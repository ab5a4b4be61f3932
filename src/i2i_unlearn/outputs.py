"""Which entries of an output folder i2i-unlearn wrote, so that --overwrite removes exactly those.

Every folder a command claims gets a marker file, `.i2i-unlearn-output`, holding the list of the entries
(files or sub-folders, one level deep) the tool created in it. Every file the tool writes goes through
`checkpoints.atomic_write`, which calls `record_output`, so the list is complete by construction.
`--overwrite` removes the listed entries and nothing else: a file the user put beside them stays, and a
folder without a valid marker (a project with `checkpoints/`, a user's own `run.json`, a marker created by
hand) is refused.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

OUTPUT_MARKER = ".i2i-unlearn-output"
_WRITER = "i2i-unlearn"
_NOTE = "i2i-unlearn wrote the entries listed here; --overwrite removes them and nothing else"


def read_marker(folder: Path) -> list[str] | None:
    """The entries the tool wrote in `folder`, or None when it holds no valid marker (none, an empty file,
    a marker of an older version that listed nothing, or anything else not written by this module)."""
    try:
        record = json.loads((Path(folder) / OUTPUT_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("written_by") != _WRITER:
        return None
    entries = record.get("entries")
    if not isinstance(entries, list) or not all(isinstance(e, str) and _is_plain_name(e) for e in entries):
        return None
    return entries


def write_marker(folder: Path, entries: list[str]) -> None:
    folder = Path(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{OUTPUT_MARKER}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"written_by": _WRITER, "note": _NOTE, "entries": sorted(set(entries))}, f, indent=1)
    os.replace(tmp, folder / OUTPUT_MARKER)


def _is_plain_name(name: str) -> bool:
    """One path component (a planted marker must not reach outside its folder)."""
    return bool(name) and name not in (".", "..", OUTPUT_MARKER) and "/" not in name and "\\" not in name \
        and "\0" not in name


def _owning_folder(path: Path) -> Path | None:
    """The nearest folder above `path` that the tool claimed."""
    for folder in path.parents:
        if (folder / OUTPUT_MARKER).is_file():
            return folder
    return None


def record_output(path: str | Path) -> None:
    """Add the entry holding `path` (a file just written, or a sub-folder just claimed) to the list of the
    nearest claimed folder above it. Paths outside any claimed folder are left alone."""
    path = Path(path).absolute()
    folder = _owning_folder(path)
    if folder is None:
        return
    entries = read_marker(folder)
    if entries is None:   # a marker the tool did not write: never adopt its folder
        return
    entry = path.relative_to(folder).parts[0]
    if entry not in entries and _is_plain_name(entry):
        write_marker(folder, [*entries, entry])


def remove_outputs(folder: Path) -> list[str]:
    """Remove the entries the marker of `folder` lists (the marker stays); returns the names of the entries
    left because the tool did not write them. The caller has checked that the marker is valid."""
    folder = Path(folder)
    for entry in read_marker(folder) or []:
        path = folder / entry
        if path.is_dir() and not path.is_symlink() and read_marker(path) is not None:
            if not remove_outputs(path):   # a claimed sub-folder: its own list says what goes
                shutil.rmtree(path)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    return sorted(p.name for p in folder.iterdir() if p.name != OUTPUT_MARKER)
