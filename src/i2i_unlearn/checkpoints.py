"""Atomic file writes, safetensors weights, hashes and provenance. No pickle anywhere."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from i2i_unlearn.errors import UserError
from i2i_unlearn.outputs import OUTPUT_MARKER, record_output

LIBRARIES = ("i2i-unlearn", "torch", "transformers", "diffusers", "accelerate", "torchmetrics", "safetensors", "numpy")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_json(value) -> str:
    """The sha256 of a value's JSON with sorted keys: the one way a cache or trial key is made from its parts."""
    return sha256_text(json.dumps(value, sort_keys=True, default=str))


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file, then rename; the output folder's marker lists what was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a result file should read like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    record_output(path)


def write_text_atomic(path: str | Path, text: str) -> None:
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def read_json(path: str | Path):
    """The JSON value in `path`, or one clear error naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def write_json_atomic(path: str | Path, value) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def save_tensors_atomic(path: str | Path, tensors: dict[str, torch.Tensor], metadata_: dict[str, str] | None = None):
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata_))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weight file missing: {path}")
    try:
        return load_file(path)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise UserError(f"cannot read weight file {path}: {exc}") from None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# --- optimizer state in safetensors: tensors per parameter, the rest as JSON metadata ---

def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": json.dumps(state["param_groups"]), "scalars": json.dumps(scalars)}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for name, value in json.loads(meta["scalars"]).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = json.loads(meta["param_groups"])
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


# --- a directory of weights: config.json (with the weights' sha256) + model.safetensors ---

WEIGHTS_NAME = "model.safetensors"
CHECKPOINTS = "checkpoints"   # a run's checkpoint folder, inside its output folder
CONFIG_NAME = "config.json"


def save_weights_dir(directory: str | Path, state: dict[str, torch.Tensor], config: dict) -> None:
    """Weights first, then config.json naming their hash: a reader never sees a config without them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors_atomic(directory / WEIGHTS_NAME, state)
    write_json_atomic(directory / CONFIG_NAME, {**config, "weights_sha256": sha256_file(directory / WEIGHTS_NAME)})


def keep_model_dir(made: str | Path, final: str | Path) -> Path:
    """Copy a finished model folder to `final` (e.g. pretrained/<name>), whole or not at all: staged beside it, then
    renamed over any earlier copy; without its checkpoints and output marker, and with its weights' sha256 in a
    file of its own (`sha256sum -c SHA256` checks a download)."""
    final = Path(final)
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(made, staging, ignore=shutil.ignore_patterns(CHECKPOINTS, OUTPUT_MARKER))
    (staging / "SHA256").write_text(f"{sha256_file(staging / WEIGHTS_NAME)}  {WEIGHTS_NAME}\n")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


def read_config_dir(directory: str | Path, what: str = "model") -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{what} directory not found: {directory}")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{directory} is not a {what} directory (no {CONFIG_NAME})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def read_weights_dir(directory: str | Path, config: dict) -> dict[str, torch.Tensor]:
    """The weights of a directory, after checking them against the hash in its config.json."""
    weights = Path(directory) / WEIGHTS_NAME
    if not weights.is_file():
        raise UserError(f"weight file missing: {weights}")
    actual = sha256_file(weights)
    if actual != config.get("weights_sha256"):
        raise UserError(f"{weights} does not match the hash in its config.json (altered or from another model): "
                        f"expected {config.get('weights_sha256')}, got {actual}")
    return load_tensors(weights)
