"""The package apart from its repository (issue 31): built as a wheel, installed into a folder of its own and
run from another folder, it lists, unlearns and evaluates a model folder given by path; nothing it needs lies in
the checkout."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, cwd, env):
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# `python -m i2i_unlearn COMMAND...` for each command in turn, in one interpreter (runpy runs the package's __main__
# as -m does): the start of a process that imports the package (torch, transformers, diffusers: seconds) is paid
# once. Prints where the package came from, then each command's output after a line naming it; a command that
# exits with an error code stops it with that code.
COMMANDS = """
import json, runpy, sys
import i2i_unlearn
print(i2i_unlearn.__file__)
for command in json.loads(sys.argv[1]):
    print("--- " + " ".join(command), flush=True)
    sys.argv = ["i2i-unlearn", *command]
    try:
        runpy.run_module("i2i_unlearn", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code not in (None, 0):
            raise
"""


@pytest.mark.slow
def test_the_installed_package_runs_from_another_folder(few_held_out_model_dir, tiny_evaluator_dir, tmp_path):
    model = few_held_out_model_dir   # 50 held-out images: what evaluate scores and the retain check reads
    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # built from a copy: setuptools leaves build/ and egg-info beside the sources it builds
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run(["-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels),
          str(source)], tmp_path, os.environ)
    (wheel,) = wheels.glob("i2i_unlearn-*.whl")
    _run(["-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)], tmp_path, os.environ)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    commands = [["list", "models"],
                ["unlearn", "--model", str(model), "--forget-classes", "Cat", "--alpha", "0.1", "--steps", "2",
                 "--out", "no-cat"],
                ["evaluate", "--model", f"original={model}", "--model", "unlearned=no-cat",
                 "--evaluator", str(tiny_evaluator_dir), "--out", "eval"]]
    where, *outputs = _run(["-c", COMMANDS, json.dumps(commands)], elsewhere, env).split("\n--- ")
    assert Path(where.strip()).is_relative_to(site), where   # the installed copy, not the checkout's src/
    assert [output.splitlines()[0] for output in outputs] == [" ".join(command) for command in commands]

    listed = outputs[0].splitlines()[1:]
    assert [line.split()[0] for line in listed] == ["diffusion", "mae", "vqgan"]
    assert (elsewhere / "no-cat" / "model.safetensors").is_file()
    results = json.loads((elsewhere / "eval" / "results.json").read_text())
    assert set(results["metrics"]) >= {"original", "unlearned"}
    assert results["metrics"]["unlearned"]["retain"]["fid"] is not None
