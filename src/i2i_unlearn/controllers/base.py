"""What every run controller shares: how often it measures, keeping the best weights so far in the checkpoints
folder and rolling back to them, and reporting from the main process."""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors import safe_open
from tqdm.auto import tqdm

from i2i_unlearn.checkpoints import load_tensors, save_tensors_atomic
from i2i_unlearn.config import UnlearnConfig
from i2i_unlearn.distributed import on_main_process, process_state
from i2i_unlearn.errors import UserError
from i2i_unlearn.models import I2IModel

MIN_MEASUREMENTS = 4


def keep_weights(path: Path, step: int, model: I2IModel) -> None:
    """Keep `model`'s weights as the run's best so far (main process; a monitor's roll-back reads them)."""
    on_main_process(lambda: save_tensors_atomic(path, model.state_dict(), {"step": str(step)}))

def load_kept_weights(path: Path, step: int, module: I2IModel) -> None:
    """Load the weights keep_weights kept at `step` into `module` (on every process)."""
    with safe_open(path, framework="pt") as f:
        saved_step = int(f.metadata()["step"])
    if saved_step != step:
        raise UserError(f"{path} holds step {saved_step}, the run kept step {step}: start the run again with "
                        "--overwrite")
    module.load_state_dict(load_tensors(path))

def main_process_result(work):
    """work() on the main process, its result on every process: every rank sees the same numbers, so every
    rank takes the same alpha."""
    if process_state().num_processes == 1:
        return work()
    result = [None]
    on_main_process(lambda: result.__setitem__(0, work()))
    from accelerate.utils import broadcast_object_list
    return broadcast_object_list(result)[0]

def echo(text: str) -> None:
    if process_state().is_main_process:
        tqdm.write(text, file=sys.stderr)


def measure_often_enough(config: UnlearnConfig, *, steps_given: bool) -> None:
    """A step count the user gave on the command line without --checkpoint-every is measured at least
    MIN_MEASUREMENTS times."""
    if steps_given:
        config.checkpoint_every = min(config.checkpoint_every, max(1, config.steps // MIN_MEASUREMENTS))
