"""Killed runs: a real `i2i-unlearn` process is killed with SIGKILL right after a checkpoint, resumed
with --resume, and must end with the weights (and log) of an uninterrupted run, bit for bit.

The killed process runs the command's own entry point (`i2i_unlearn.cli.main`) with one change: right
after checkpoint k (or, with mid_write, halfway through writing checkpoint k+1) it pauses, and the test,
which polls the checkpoints folder, kills it there. The pause changes no number; it only makes the kill
land where the test says even on a loaded machine, where a tiny model's step takes milliseconds.
The uninterrupted and the resumed runs go through the same command in this process.
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from conftest import TINY_DIFFUSION

runner = CliRunner()
pytestmark = pytest.mark.slow   # real processes killed and resumed: more than about 20 s on 2 cores
STEPS = 6

# `python -c PAUSED_CLI args...` is `i2i-unlearn args...` that stops at PAUSE_AT until it is killed
PAUSED_CLI = """
import os, sys, time
import i2i_unlearn.loop as loop
from i2i_unlearn.cli import main

step, mid_write = int(os.environ["PAUSE_AT"]), os.environ["PAUSE_MID_WRITE"] == "1"
real_save_checkpoint, real_save_tensors = loop._save_checkpoint, loop.save_tensors_atomic

def save_checkpoint(run_dir, done, *args, **kwargs):
    folder = real_save_checkpoint(run_dir, done, *args, **kwargs)
    if done == step and not mid_write:
        time.sleep(600)   # checkpoint `step` is complete: killed here
    return folder

def save_tensors(path, *args, **kwargs):
    real_save_tensors(path, *args, **kwargs)
    if mid_write and path.name == "model.safetensors" and path.parent.name == f"step-{step + 1:07d}.tmp":
        time.sleep(600)   # the next checkpoint has its model but not its optimizer state: killed here

loop._save_checkpoint, loop.save_tensors_atomic = save_checkpoint, save_tensors
sys.argv = ["i2i-unlearn", *sys.argv[1:]]
main()
"""


def _kill_step(name: str) -> int:
    """The step after whose checkpoint the run is killed: random, seeded by the scenario's name."""
    return random.Random(name).randint(1, STEPS - 1)


def _checkpoint_names(out: Path) -> list[str]:
    folder = out / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _run_and_kill(args: list[str], out: Path, kill_after: int, mid_write: bool = False) -> list[str]:
    """Start the command in a subprocess, SIGKILL it as soon as checkpoint `kill_after` is complete (or,
    with mid_write, while checkpoint kill_after + 1 is half written); return the checkpoint folder's names."""
    wait_for = (out / "checkpoints" / f"step-{kill_after + 1:07d}.tmp" / "model.safetensors" if mid_write
                else out / "checkpoints" / f"step-{kill_after:07d}")
    _start_and_kill(PAUSED_CLI, args, wait_for, {"PAUSE_AT": str(kill_after), "PAUSE_MID_WRITE": str(int(mid_write))})
    assert not (out / "model.safetensors").exists(), "the run had already saved its final model"
    return _checkpoint_names(out)


def _start_and_kill(code: str, args: list[str], wait_for: Path, env: dict) -> None:
    """Run `python -c code args...`, SIGKILL it once `wait_for` exists, check that SIGKILL ended it."""
    env = {**os.environ, **env, "OMP_NUM_THREADS": str(torch.get_num_threads())}   # the same float sums as here
    env.pop("I2I_UNLEARN_DEBUG", None)
    with tempfile.TemporaryFile() as stderr:   # a file, not a pipe: a full pipe would stall the run
        process = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
        deadline = time.monotonic() + 300
        try:
            while not wait_for.exists():
                if process.poll() is not None:
                    stderr.seek(0)
                    pytest.fail(f"the run ended before it could be killed: {stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no {wait_for} within 300 s")
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == -signal.SIGKILL, "the process was not killed by SIGKILL"


def _invoke(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_same_run(straight: Path, resumed: Path, log_name: str) -> None:
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{len(different)} tensors differ after the resume, e.g. {different[:3]}"
    assert _sha256(straight / "model.safetensors") == _sha256(resumed / "model.safetensors")
    assert (straight / log_name).read_text() == (resumed / log_name).read_text()
    assert not (resumed / "checkpoints").exists()


def _unlearn_yaml(folder: Path, method: str) -> Path:
    # log_every 2 with a checkpoint every step: a checkpoint falls between two log entries
    path = folder / "unlearn.yaml"
    path.write_text(yaml.safe_dump({"method": method, "steps": STEPS, "batch_size": 8, "checkpoint_every": 1,
                                    "log_every": 2, "tasks": [{"name": "center-inpaint", "ratio": 0.5}],
                                    "optim": {"lr": 1e-3, "warmup_steps": 2}}))
    return path


@pytest.mark.parametrize("family, method, mid_write", [
    ("mae", "ours", False), ("diffusion", "ours", False), ("vqgan", "ours", False),
    ("mae", "max-loss", True),   # a whole-model method, killed while the next checkpoint is half written
])
def test_killed_unlearning_resumes_bit_identical(tiny_model_dirs, tmp_path, family, method, mid_write):
    config = _unlearn_yaml(tmp_path, method)
    base = ["unlearn", "--model", str(tiny_model_dirs[family]), "--forget-classes", "Cat", "--config", str(config)]
    _invoke([*base, "--out", str(tmp_path / "straight")])

    kill_after = _kill_step(f"unlearn-{family}-{method}-{mid_write}")
    resumed = tmp_path / "resumed"
    left = _run_and_kill([*base, "--out", str(resumed)], resumed, kill_after, mid_write)
    # the newest whole checkpoint is k's (k-1's may be left if the kill came before its deletion)
    assert max(name for name in left if not name.endswith(".tmp")) == f"step-{kill_after:07d}", left
    if mid_write:
        assert f"step-{kill_after + 1:07d}.tmp" in left
    print(f"unlearn {family} {method}: killed after step {kill_after} of {STEPS}, left {left}")

    _invoke([*base, "--out", str(resumed), "--resume"])
    _assert_same_run(tmp_path / "straight", resumed, "unlearn_log.jsonl")


def test_killed_training_resumes_bit_identical(tmp_path):
    """`train`, for one family: training goes through the same loop for every family, and diffusion with
    an EMA of the weights has the most state to restore."""
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"model": TINY_DIFFUSION, "classes": ["Cat", "Dog"], "steps": STEPS,
                                      "batch_size": 8, "checkpoint_every": 1, "log_every": 2, "ema_decay": 0.99,
                                      "tasks": [{"name": "center-inpaint", "ratio": 0.5}],
                                      "optim": {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine"}}))
    _invoke(["train", "--config", str(config), "--out", str(tmp_path / "straight")])

    kill_after = _kill_step("train-diffusion")
    resumed = tmp_path / "resumed"
    left = _run_and_kill(["train", "--config", str(config), "--out", str(resumed)], resumed, kill_after)
    assert max(left) == f"step-{kill_after:07d}", left
    print(f"train diffusion (EMA): killed after step {kill_after} of {STEPS}, left {left}")

    _invoke(["train", "--config", str(config), "--out", str(resumed), "--resume"])
    _assert_same_run(tmp_path / "straight", resumed, "train_log.jsonl")
    straight_config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert straight_config == json.loads((resumed / "config.json").read_text())


# `evaluate` that stops when results.json is written in full under its temporary name, before the rename
PAUSED_EVALUATE = """
import os, sys, time
from pathlib import Path
from i2i_unlearn.cli import main
real_replace = os.replace

def replace(source, target, *args, **kwargs):
    if Path(target).name == "results.json":
        Path(os.environ["PAUSED_MARKER"]).touch()
        time.sleep(600)   # killed here
    return real_replace(source, target, *args, **kwargs)

os.replace = replace
sys.argv = ["i2i-unlearn", *sys.argv[1:]]
main()
"""


def test_a_killed_evaluation_leaves_no_results_file(few_held_out_model_dir, tiny_evaluator_dir, tmp_path):
    """results.json is the last file evaluate writes, and atomically: killed at the last moment (every
    grid and plot written, results.json written in full under a temporary name), the folder holds no
    results.json, and `report` and a new `evaluate` say so instead of reading it as complete."""
    out = tmp_path / "evaluation"   # (the model's 50 validation images are scored, not 500)
    args = ["evaluate", "--model", f"original={few_held_out_model_dir}", "--evaluator", str(tiny_evaluator_dir),
            "--forget-classes", "Cat", "--split", "val", "--out", str(out)]
    marker = tmp_path / "paused"   # outside the output folder
    _start_and_kill(PAUSED_EVALUATE, args, marker, {"PAUSED_MARKER": str(marker)})
    left = sorted(p.name for p in out.iterdir())
    assert {"grid_forget.png", "grid_retain.png", "tsne.png"} <= set(left), left   # it was killed late
    assert any(name.startswith(".results.json.") for name in left), left   # inside the write of results.json
    assert "results.json" not in left and "report.html" not in left
    result = runner.invoke(app, ["report", "--results", str(out / "results.json")])
    assert "results file not found" in str(result.exception)
    result = runner.invoke(app, args)   # nor is the half-done folder taken for a finished evaluation
    assert "already exists" in str(result.exception)
