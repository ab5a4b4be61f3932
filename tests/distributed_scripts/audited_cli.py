"""`i2i-unlearn args...`, run by tests/test_distributed.py in every process of a launch. It logs, per
process (rank-<RANK>.log in AUDIT_DIR), every change the process makes under WATCHED_DIR (Python audit
hooks see each file opened for writing, mkdir, rename, replace, remove and rmtree), the error that
stopped its loop ("stopped: ...", written as the error is raised) and its exit code ("exit N"). With
NAN_AT_STEP, process 1 alone gets a NaN loss at that step (`ours`)."""
import os
import sys
from pathlib import Path

rank = os.environ["RANK"]   # set by the launcher: a process that has it was started as its own process
watched = os.path.realpath(os.environ["WATCHED_DIR"])
log = open(Path(os.environ["AUDIT_DIR"]) / f"rank-{rank}.log", "a", buffering=1)
CHANGES = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.unlink", "shutil.rmtree", "os.chmod",
           "os.truncate", "os.symlink", "os.link"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def audit(event, args):
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
        paths = [path] if writes and not isinstance(path, int) else []
    elif event in CHANGES:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    else:
        return
    for path in paths:
        full = os.path.realpath(os.fsdecode(path))
        if full == watched or full.startswith(watched + os.sep):
            log.write(f"{event} {full}\n")


sys.addaudithook(audit)

import i2i_unlearn.unlearn
from i2i_unlearn.errors import UserError

real_run_loop = i2i_unlearn.unlearn.run_loop


def run_loop(*args, **kwargs):
    try:
        return real_run_loop(*args, **kwargs)
    except UserError as exc:
        log.write(f"stopped: {exc}\n")
        raise
i2i_unlearn.unlearn.run_loop = run_loop

if "NAN_AT_STEP" in os.environ:
    import i2i_unlearn.loop as loop
    from i2i_unlearn.methods.ours import Ours
    nan_at, current = int(os.environ["NAN_AT_STEP"]), {}
    real_step_generator, real_loss = loop.step_generator, Ours.loss

    def step_generator(seed, step, process=0):
        current["step"] = step
        return real_step_generator(seed, step, process)

    def loss(self, *args):
        terms = real_loss(self, *args)
        if rank == "1" and current["step"] == nan_at:
            return {name: value * float("nan") for name, value in terms.items()}
        return terms
    loop.step_generator, Ours.loss = step_generator, loss

from i2i_unlearn.cli import main

sys.argv = ["i2i-unlearn", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    log.write(f"exit {exc.code}\n")
    raise
