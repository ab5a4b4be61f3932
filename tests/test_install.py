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


@pytest.mark.slow
def test_the_installed_package_runs_from_another_folder(tiny_model_dir, tiny_evaluator_dir, tmp_path):
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
    where = _run(["-c", "import i2i_unlearn; print(i2i_unlearn.__file__)"], elsewhere, env).strip()
    assert Path(where).is_relative_to(site), where        # the installed copy, not the checkout's src/

    listed = _run(["-m", "i2i_unlearn", "list", "models"], elsewhere, env).splitlines()
    assert [line.split()[0] for line in listed] == ["diffusion", "mae", "vqgan"]
    _run(["-m", "i2i_unlearn", "unlearn", "--model", str(tiny_model_dir), "--forget-classes", "Cat", "--alpha", "0.1",
          "--steps", "2", "--out", "no-cat"], elsewhere, env)
    assert (elsewhere / "no-cat" / "model.safetensors").is_file()
    _run(["-m", "i2i_unlearn", "evaluate", "--model", f"original={tiny_model_dir}", "--model", "unlearned=no-cat",
          "--evaluator", str(tiny_evaluator_dir), "--out", "eval"], elsewhere, env)
    results = json.loads((elsewhere / "eval" / "results.json").read_text())
    assert set(results["metrics"]) >= {"original", "unlearned"}
    assert results["metrics"]["unlearned"]["retain"]["fid"] is not None
