"""Many processes (docs/distributed.md): `accelerate launch --multi_gpu --num_processes 2` really starts two
CPU processes here (no GPU), they share each step's global batch, and they end where one process ends.

Each launch runs real processes of the command (tests/distributed_scripts/audited_cli.py is
`i2i-unlearn` that logs what each process changes in the output folder), one torch thread each.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.distributed import _RANK_VARIABLES, Shard, _check_launch
from i2i_unlearn.errors import UserError
from i2i_unlearn.loop import check_global_batch
from i2i_unlearn.methods import METHODS
from builders import make_mae, write_photos
from conftest import TINY_MODELS, TINY_TOKENIZER

pytestmark = pytest.mark.slow   # real processes or a whole benchmark: more than about 20 s on 2 cores

SCRIPTS = Path(__file__).parent / "distributed_scripts"
BIN = Path(sys.executable).parent
# --main_process_port 0: a free port, so two launches on one machine do not meet
LAUNCH = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
TIMEOUT = 900   # generous for a loaded machine; a hang (a process waiting for one that stopped) ends here


def _launch(command: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    # HF_HOME: no accelerate config of the user's changes the launch; CUDA_VISIBLE_DEVICES: CPU processes anywhere
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf"), "CUDA_VISIBLE_DEVICES": "", **env}
    env.pop("I2I_UNLEARN_DEBUG", None)
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    print(f"{' '.join(Path(c).name for c in command[:2])} ...: {time.monotonic() - started:.1f} s")
    return result


def _unlearn_yaml(tmp_path: Path, **optim) -> Path:
    path = tmp_path / "unlearn.yaml"
    path.write_text(yaml.safe_dump({
        "steps": 6, "batch_size": 8, "log_every": 1, "checkpoint_every": 2, "alpha": 1.0,
        "tasks": [{"name": "center-inpaint", "ratio": 0.5}, {"name": "random-patches", "ratio": 0.5}],
        "optim": {"lr": 1e-3, "warmup_steps": 0, **optim}}))
    return path


def _audited_unlearn(tiny_model_dir, tmp_path, out: Path, forget: str = "Cat", options: tuple = (),
                     optim: dict | None = None, **env) -> tuple[subprocess.CompletedProcess, dict, dict]:
    """Two processes of `i2i-unlearn unlearn`; returns the result, what each process changed in `out`, and
    how each ended (the error that stopped its loop, its exit code; nothing if the launcher stopped it)."""
    audit = tmp_path / f"audit-{out.name}"
    audit.mkdir()
    result = _launch([*LAUNCH, str(SCRIPTS / "audited_cli.py"), "unlearn", "--model", str(tiny_model_dir),
                      "--out", str(out), "--forget-classes", forget, "--config",
                      str(_unlearn_yaml(tmp_path, **(optim or {}))), *options], tmp_path, WATCHED_DIR=str(out), AUDIT_DIR=str(audit), **env)
    changes, ends = {}, {}
    for path in audit.glob("rank-*.log"):
        lines = path.read_text().splitlines()
        ends[path.stem] = [line for line in lines if line.startswith(("stopped: ", "exit "))]
        changes[path.stem] = [line for line in lines if line not in ends[path.stem]]
    return result, changes, ends


def _check_two_processes_ran(result, changes) -> None:
    """Two processes, each of which knew it was one of two, and only the main one wrote."""
    assert sorted(changes) == ["rank-0", "rank-1"], changes.keys()
    for rank in (0, 1):
        assert re.search(rf"unlearn ours: process {rank} of 2 \(MULTI_CPU, cpu", result.stderr), result.stderr[-3000:]
    assert changes["rank-0"], "the main process wrote nothing"
    assert changes["rank-1"] == [], f"process 1 changed the output folder: {changes['rank-1'][:5]}"


def _unlearn_in_one_process(model_dir: Path, out: Path, forget: str, tmp_path: Path, options: tuple = (),
                            optim: dict | None = None) -> None:
    started = time.monotonic()
    invoked = CliRunner().invoke(app, ["unlearn", "--model", str(model_dir), "--out", str(out), "--forget-classes",
                                       forget, "--config", str(_unlearn_yaml(tmp_path, **(optim or {}))), *options])
    assert invoked.exit_code == 0, f"{invoked.output}\n{invoked.exception!r}"
    print(f"one process: {time.monotonic() - started:.1f} s")


def _check_equal_runs(one: Path, two: Path, original_dir: Path) -> None:
    """Two processes ended where one ended: the weights (the encoder moved, the decoder untouched) and the log."""
    a, b, original = (load_file(d / "model.safetensors") for d in (one, two, original_dir))
    assert a.keys() == b.keys()
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    moved = max(float((a[k] - original[k]).abs().max()) for k in a)
    print(f"1 vs 2 processes: max abs weight difference {diff:.2e} (the run moved the weights by up to {moved:.2e})")
    assert moved > 1e-3 and diff < 1e-5
    decoder = [k for k in b if k.startswith("net.decoder.")]
    assert decoder and all(torch.equal(b[k], original[k]) for k in decoder)   # encoder-only: untouched
    logs = [[json.loads(line) for line in (d / "unlearn_log.jsonl").read_text().splitlines()] for d in (one, two)]
    assert [e["step"] for e in logs[1]] == [1, 2, 3, 4, 5, 6]
    for x, y in zip(*logs):
        assert x.keys() == y.keys() and all(x[k] == pytest.approx(y[k], abs=1e-5) for k in x)
    assert json.loads((two / "run.json").read_text())["world_size"] == 2
    assert json.loads((one / "run.json").read_text())["world_size"] == 1


def test_two_cpu_processes_end_where_one_process_ends(tiny_model_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _unlearn_in_one_process(tiny_model_dir, one, "Cat", tmp_path)
    result, changes, ends = _audited_unlearn(tiny_model_dir, tmp_path, two)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_two_processes_ran(result, changes)
    assert ends == {"rank-0": ["exit 0"], "rank-1": ["exit 0"]}, ends
    assert any(line.endswith("two/model.safetensors") for line in changes["rank-0"])
    assert result.stdout.count("saved ") == 1, result.stdout   # said once, by the process that saved
    _check_equal_runs(one, two, tiny_model_dir)


def test_two_processes_with_sharpness_aware_steps_end_where_one_process_ends(tiny_model_dir, tmp_path):
    """Issue 33's SAM option under DDP: each step's second forward and backward (at the moved weights) is averaged
    over the processes as the first is, so two processes still end where one ends."""
    one, two = tmp_path / "one", tmp_path / "two"
    sam = {"sam_rho": 0.05}
    _unlearn_in_one_process(tiny_model_dir, one, "Cat", tmp_path, optim=sam)
    result, changes, ends = _audited_unlearn(tiny_model_dir, tmp_path, two, optim=sam)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_two_processes_ran(result, changes)
    assert ends == {"rank-0": ["exit 0"], "rank-1": ["exit 0"]}, ends
    for run in (one, two):
        assert json.loads((run / "run.json").read_text())["config"]["optim"]["sam_rho"] == 0.05
    _check_equal_runs(one, two, tiny_model_dir)
    plain = tmp_path / "plain"   # the same run without SAM ends elsewhere: the option acted in both runs
    _unlearn_in_one_process(tiny_model_dir, plain, "Cat", tmp_path)
    a, b = (load_file(d / "model.safetensors") for d in (plain, two))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-4


def test_two_processes_on_a_streamed_image_folder_with_data_workers_end_where_one_process_ends(tmp_path):
    """Issue 34: a save_pretrained ViTMAE imported over a folder of RGB photos (a hashed split, read from disk batch
    by batch); each of the two processes reads its steps' images through a data worker."""
    photos = write_photos(tmp_path / "photos", per_class=16)
    make_mae(tmp_path / "hf-mae", num_channels=3)
    model = tmp_path / "my-mae"
    (tmp_path / "data.yaml").write_text("split: hashed\ntest_fraction: 0.2\nval_fraction: 0.2\n")
    invoked = CliRunner().invoke(app, ["import", "--family", "mae", "--from-pretrained", str(tmp_path / "hf-mae"),
                                       "--out", str(model), "--dataset", "image-folder", "--data-root", str(photos),
                                       "--data-config", str(tmp_path / "data.yaml")])
    assert invoked.exit_code == 0, f"{invoked.output}\n{invoked.exception!r}"
    assert json.loads((model / "run.json").read_text())["inputs"]["train_images_hash"] == "files"   # streamed
    one, two = tmp_path / "one", tmp_path / "two"
    _unlearn_in_one_process(model, one, "cat", tmp_path)
    result, changes, ends = _audited_unlearn(model, tmp_path, two, forget="cat", options=("--data-workers", "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    _check_two_processes_ran(result, changes)
    assert ends == {"rank-0": ["exit 0"], "rank-1": ["exit 0"]}, ends
    record = json.loads((two / "run.json").read_text())
    assert record["config"]["data_workers"] == 1 and record["inputs"]["forget_classes"] == ["cat"]
    _check_equal_runs(one, two, model)


def test_a_nan_on_one_process_stops_both_and_only_the_main_process_writes(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    result, changes, ends = _audited_unlearn(tiny_model_dir, tmp_path, out, NAN_AT_STEP="3")
    assert result.returncode != 0
    _check_two_processes_ran(result, changes)
    # both loops stop at step 3 with the command's error, process 0 too, whose own loss was finite
    stopped = "the loss became nan at step 3: stopped; the last good checkpoint (step 2) is kept"
    for rank, lines in ends.items():
        assert lines and lines[0].startswith(f"stopped: {stopped}"), (rank, lines)
        # exit code 2; unless the launcher, which stops the others once one process has ended with an
        # error, stopped this one between its loop's error and its exit
        assert lines[1:] in (["exit 2"], []), (rank, lines)
    assert f"error: {stopped}" in result.stderr
    codes = re.findall(r"exitcode +: (-?\d+) ", result.stderr)   # the launcher's summary
    assert "2" in codes and set(codes) <= {"2", "-15"}, result.stderr[-3000:]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000002"]
    assert not (out / "model.safetensors").exists()


def test_each_share_of_a_global_batch_gives_the_one_process_gradient(tmp_path):
    """Every family and every objective (each unlearning method, `train`, `train-tokenizer` with dead-code
    restarts): one step's gradient averaged over two processes' shares is the whole batch's gradient."""
    methods = [name for name in METHODS if name != "retrain"]
    result = _launch([*LAUNCH, str(SCRIPTS / "shard_gradients.py"), json.dumps(TINY_MODELS),
                      json.dumps(TINY_TOKENIZER), json.dumps(methods)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    cases = {case["case"]: case for case in map(json.loads, result.stdout.splitlines())}
    unsupported = 1   # ours-decoder on diffusion (it compares restorations; the family predicts noise)
    assert len(cases) == len(TINY_MODELS) * (len(methods) + 2) + 1 - unsupported, sorted(cases)
    for name, case in cases.items():
        assert case["grad_scale"] > 1e-3, name   # a gradient to compare
        assert case["grad_diff"] <= 1e-5 * max(1.0, case["grad_scale"]), case
        assert case["loss_diff"] <= 1e-5 * max(1.0, abs(case["loss"])), case
        assert case["param_diff"] == 0, case
    assert cases["tokenizer train"]["param_moved"] > 0   # the codes were restarted, identically
    print(f"largest gradient difference: {max(c['grad_diff'] for c in cases.values()):.1e}")


def test_the_cpu_launch_that_starts_one_process_is_refused(tiny_model_dir, tmp_path):
    """`accelerate launch --cpu --num_processes 2` starts one process (it was the tests' form): refused,
    naming the launch that works, before anything is written."""
    out = tmp_path / "out"
    result = _launch([str(BIN / "accelerate"), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                      "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "i2i_unlearn.cli", "unlearn",
                      "--model", str(tiny_model_dir), "--out", str(out), "--forget-classes", "Cat", "--steps", "1",
                      "--alpha", "0.25"],
                     tmp_path)
    assert result.returncode != 0
    assert "error: `accelerate launch --num_processes N` without --multi_gpu started a single process" in result.stderr
    assert "accelerate launch --multi_gpu --num_processes N" in result.stderr
    assert "Traceback" not in result.stderr.split("error:")[0]
    assert not out.exists()


@pytest.mark.parametrize("use_cpu", ["True", "False"])
def test_accelerates_single_process_launcher_asked_for_many_is_recognised(monkeypatch, use_cpu):
    """What accelerate's single-process launcher leaves in the environment when asked for 2 processes, with
    --cpu ("True") or without a GPU and without --multi_gpu ("False", the README's old form)."""
    for name in _RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", use_cpu)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(UserError, match="without --multi_gpu started a single process"):
        _check_launch()
    monkeypatch.setenv("WORLD_SIZE", "2")   # a process torchrun started
    _check_launch()


def test_a_global_batch_splits_into_equal_shares():
    assert [Shard(i, 2).rows(8) for i in range(2)] == [slice(0, 4), slice(4, 8)]
    ctx = {"eps": torch.arange(8.0), "shared": torch.tensor(1.0), "maps": [torch.arange(16.0).view(8, 2)], "n": 3}
    mine = Shard(1, 2).take(ctx, 8)
    assert mine["eps"].tolist() == [4, 5, 6, 7] and mine["shared"] == 1 and mine["n"] == 3
    assert mine["maps"][0].shape == (4, 2)
    assert Shard().take(ctx, 8) is ctx
    with pytest.raises(UserError, match="does not split into 3 equal shares"):
        Shard(0, 3).rows(8)
    two = SimpleNamespace(num_processes=2)
    check_global_batch(two, batch_size=8, retain_batch_size=None)
    with pytest.raises(UserError, match="retain_batch_size 5 does not split into 2 equal shares"):
        check_global_batch(two, batch_size=8, retain_batch_size=5)
