"""What every run does around its loop: claim an output folder safely, record provenance."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from i2i_unlearn.checkpoints import git_commit, versions, write_json_atomic
from i2i_unlearn.distributed import on_main_process, process_state
from i2i_unlearn.errors import UserError

RUN_RECORD = "run.json"
# What marks a folder as one this tool wrote, so that --overwrite may delete it: the marker every
# claimed output folder gets, or (folders from before it) a file only this tool's outputs hold.
OUTPUT_MARKER = ".i2i-unlearn-output"
OUTPUT_FILES = (OUTPUT_MARKER, RUN_RECORD, "results.json", "audit.json", "checkpoints")


def prepare_output_dir(out_dir: str | Path, *, overwrite: bool, resume: bool,
                       protected: list[Path] = ()) -> Path:
    """Refuse an existing folder unless --overwrite (start again) or --resume (go on).
    Under many processes every one checks (the same verdict everywhere), then only the main process
    replaces or creates the folder, once every process has looked, and the others wait for it."""
    out_dir = Path(out_dir)
    target = out_dir.resolve()
    for path in protected:
        path = Path(path).resolve()
        if target == path or path.is_relative_to(target) or target.is_relative_to(path):
            relation = "is" if target == path else "contains" if path.is_relative_to(target) else "lies inside"
            raise UserError(f"refusing to write into {out_dir}: it {relation} the input {path} "
                            "(choose another --out)")
    if resume:
        if not out_dir.is_dir():
            raise UserError(f"--resume: {out_dir} does not exist")
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file, not a folder: choose another --out")
    replace = out_dir.exists() and any(out_dir.iterdir())
    if replace and not overwrite:
        raise UserError(f"{out_dir} already exists: pass --overwrite to replace it or --resume to continue")
    if replace and not any((out_dir / name).exists() for name in OUTPUT_FILES):
        # --overwrite deletes the folder: never one this tool did not write (a home folder, a dataset, code)
        raise UserError(f"{out_dir} holds files i2i-unlearn did not write (no {RUN_RECORD}, results.json or "
                        f"{OUTPUT_MARKER}): refusing to delete it; choose another --out")

    def claim() -> None:
        if replace:
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / OUTPUT_MARKER).write_text("written by i2i-unlearn; --overwrite may replace this folder\n")
    state = process_state()
    if state.num_processes > 1:
        state.wait_for_everyone()   # no process is still looking at the folder the main one replaces
    on_main_process(claim)
    return out_dir


def run_record(kind: str, config: dict, inputs: dict, started: float, earlier_wall_time_s: float = 0.0,
               **extra) -> dict:
    """Everything needed to reproduce a number: config (seed inside), inputs' hashes, versions.
    `wall_time_s` is this invocation's; `wall_time_total_s` adds what earlier invocations of a resumed
    run spent up to the checkpoint it resumed from (`earlier_wall_time_s`, loop.resumed_wall_time)."""
    seconds = time.time() - started
    return {"kind": kind, "config": config, "inputs": inputs, "versions": versions(), "git_commit": git_commit(),
            "wall_time_s": round(seconds, 1), "wall_time_total_s": round(earlier_wall_time_s + seconds, 1), **extra}


def total_wall_time(record: dict) -> float:
    """A run's whole wall time across resumes (records from before resumes were counted: wall_time_s)."""
    return record.get("wall_time_total_s", record["wall_time_s"])


def write_run_record(out_dir: Path, record: dict) -> None:
    write_json_atomic(Path(out_dir) / RUN_RECORD, record)


def unlearning_history(info: dict) -> list[dict]:
    """The unlearning requests a model folder's config.json records, oldest first. Folders from
    before the chain was kept record only their last request."""
    if info.get("unlearning_history"):
        return list(info["unlearning_history"])
    return [info["unlearning"]] if info.get("unlearning") else []


def forgotten_classes(info: dict) -> list[str]:
    """Classes that requests in the history forgot whole (a file-list request forgets images, not
    the classes they belong to)."""
    names: list[str] = []
    for step in unlearning_history(info):
        if not step.get("config", {}).get("forget_files"):
            names += [name for name in step.get("forget_classes", []) if name not in names]
    return names
