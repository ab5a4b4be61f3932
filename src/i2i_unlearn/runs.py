"""What every run does around its loop: claim an output folder safely, record provenance."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from i2i_unlearn.checkpoints import CHECKPOINTS, git_commit, versions, write_json_atomic
from i2i_unlearn.distributed import on_main_process, process_state
from i2i_unlearn.errors import UserError
from i2i_unlearn.host import host_speed
from i2i_unlearn.outputs import OUTPUT_MARKER, read_marker, record_output, remove_outputs, write_marker

RUN_RECORD = "run.json"
FRONT_RECORD = "front.json"   # a front (front.py): its members and the plot beside them
FRONT_PLOT = "front.png"


def prepare_output_dir(out_dir: str | Path, *, overwrite: bool, resume: bool,
                       protected: list[Path] = (), checkpointed: bool = True) -> Path:
    """Refuse an existing folder unless --overwrite (start again) or --resume (go on; a run that writes
    checkpoints (`checkpointed`) must have one).
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
        if checkpointed and not (out_dir / CHECKPOINTS).is_dir():
            if (out_dir / RUN_RECORD).is_file():
                raise UserError(f"--resume: the run in {out_dir} is complete ({RUN_RECORD} is there), nothing to "
                                "resume; pass --overwrite to run it again")
            raise UserError(f"--resume: the run in {out_dir} was interrupted before its first checkpoint: rerun "
                            "with --overwrite instead of --resume")
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file, not a folder: choose another --out")
    replace = out_dir.exists() and any(out_dir.iterdir())
    if replace:
        check_replaceable(out_dir, overwrite)

    def claim() -> None:
        if replace:
            kept = remove_outputs(out_dir)
            if kept:
                print(f"--overwrite: removed what i2i-unlearn wrote in {out_dir}, kept what it did not: "
                      f"{', '.join(kept[:5])}{' ...' if len(kept) > 5 else ''}", file=sys.stderr, flush=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        record_output(out_dir)   # a claimed sub-folder belongs to the output folder around it
        write_marker(out_dir, [])
    state = process_state()
    if state.num_processes > 1:
        state.wait_for_everyone()   # no process is still looking at the folder the main one replaces
    on_main_process(claim)
    return out_dir


def check_replaceable(out_dir: Path, overwrite: bool) -> None:
    """A non-empty folder may be replaced only with --overwrite, and only if the tool's marker lists what it
    wrote there (outputs.py): never a home folder, a project or a folder that merely holds a `run.json`."""
    entries = read_marker(out_dir)
    if entries is None and not (out_dir / OUTPUT_MARKER).exists():
        raise UserError(f"{out_dir} already exists and holds files i2i-unlearn did not write: choose another --out "
                        "(--overwrite only replaces a folder i2i-unlearn made)")
    if entries is None:
        raise UserError(f"{out_dir} has an {OUTPUT_MARKER} that does not list what i2i-unlearn wrote (made by hand "
                        "or by an older version): nothing was deleted; delete the folder yourself or choose "
                        "another --out")
    if not overwrite:
        if (out_dir / CHECKPOINTS).is_dir():
            raise UserError(f"{out_dir} already exists and holds an unfinished run: pass --resume to continue it "
                            "or --overwrite to start again")
        if entries:
            raise UserError(f"{out_dir} already exists: pass --overwrite to replace it")
        raise UserError(f"{out_dir} holds a run interrupted before its first checkpoint: rerun with --overwrite")


def run_record(kind: str, config: dict, inputs: dict, started: float, earlier_wall_time_s: float = 0.0,
               **extra) -> dict:
    """Everything needed to reproduce a number: config (seed inside), inputs' hashes, versions.
    `wall_time_s` is this invocation's; `wall_time_total_s` adds what earlier invocations of a resumed
    run spent up to the checkpoint it resumed from (`earlier_wall_time_s`, loop.resumed_wall_time).
    `host`: the machine's cores and measured speed at the end of the run, so its wall time can be compared."""
    seconds = time.time() - started
    return {"kind": kind, "config": config, "inputs": inputs, "versions": versions(), "git_commit": git_commit(),
            "wall_time_s": round(seconds, 3), "wall_time_total_s": round(earlier_wall_time_s + seconds, 3),
            "host": host_speed(), **extra}


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


def training_recipe(run: dict) -> tuple | None:
    """(optimizer steps, batch size) of a training or retraining run record, None for any other run: two trainings
    of one recipe take comparable time, which is what the cost targets read one against the other."""
    if run.get("kind") not in ("train", "retrain"):
        return None
    return run.get("steps"), (run.get("config") or {}).get("batch_size")
