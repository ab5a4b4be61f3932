"""Many processes: the launch that really starts them, and how they share a step (docs/distributed.md).

`accelerate launch --multi_gpu --num_processes N -m i2i_unlearn.cli ...` (torchrun underneath) starts
N processes: one per GPU, or N CPU processes (gloo) on a machine without a GPU. `--cpu` is not that
launch: accelerate's `--cpu` launcher (and its plain one, on fewer than two GPUs) starts a single
process unless mpirun starts the others, so `accelerate launch --cpu --num_processes 2` ran one
process; it is refused with the working command.

`batch_size` is the global batch. Every process draws the same global batch (and every random choice
of the step) from the same generator, and keeps its `Shard`: an equal, contiguous share of the rows.
Each process's loss is the mean over its rows, so DDP's gradient average is the gradient of the mean
over the global batch: N processes end within float tolerance of one process with the same config.
Statistics over the batch (the noise image's mean and std) are taken on the global batch, which
every process holds; statistics of model outputs go through `Shard.sum` / `Shard.gather`.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
from accelerate import PartialState

from i2i_unlearn.errors import UserError

T = TypeVar("T")
LAUNCH = "accelerate launch --multi_gpu --num_processes N -m i2i_unlearn.cli ..."
_RANK_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def use_cpu() -> bool:
    """CPU processes unless a GPU (or another torch accelerator) is present, or `accelerate launch --cpu`
    asks for the CPU. accelerate only sets up CPU processes (MULTI_CPU, gloo) when told `cpu=True`: with
    the default it reports one process of one under torchrun on a machine without a GPU."""
    asked = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return asked or not torch.accelerator.is_available()


def _check_launch() -> None:
    """`accelerate launch [--cpu] --num_processes N` (N > 1) without --multi_gpu, on a machine with fewer
    than two GPUs, starts one process: say so instead of running one process that believes it is the
    whole job. (accelerate's single-process launcher sets ACCELERATE_USE_CPU, and MASTER_ADDR when asked
    for more than one process; the processes torchrun or mpirun start carry their rank.)"""
    if ("ACCELERATE_USE_CPU" in os.environ and "MASTER_ADDR" in os.environ
            and not any(name in os.environ for name in _RANK_VARIABLES)):
        raise UserError("`accelerate launch --num_processes N` without --multi_gpu started a single process here "
                        "(with --cpu, or with fewer than two GPUs, accelerate leaves the others to mpirun). For N "
                        f"processes use `{LAUNCH}` (CPU processes when no GPU is present; see docs/distributed.md)")


def process_state() -> PartialState:
    """The processes of this run (rank, world size, device), set up for CPU processes when there is no GPU.
    Everything that asks which process it is goes through here, so the first ask decides correctly."""
    first = not PartialState._shared_state
    if first:
        _check_launch()
    state = PartialState(cpu=use_cpu())
    if first and state.num_processes > 1:
        atexit.register(_close_process_group)
    return state


def _close_process_group() -> None:
    """Tear the process group down before the interpreter does: left to interpreter exit, a process
    that stops (an error, exit code 2) could abort in gloo's teardown instead of exiting with its code."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def on_main_process(work: Callable[[], T]) -> T | None:
    """Run `work` on the main process only (writing the output folder) while the others wait; an error
    there stops every process with that error instead of leaving them waiting. None on the others."""
    state = process_state()
    if state.num_processes == 1:
        return work()
    result, error = None, None
    if state.is_main_process:
        try:
            result = work()
        except Exception as exc:   # re-raised below, after the others have heard of it
            error = exc
    from accelerate.utils import broadcast_object_list
    outcome = broadcast_object_list([None if error is None else (isinstance(error, UserError), str(error))])[0]
    if error is not None:
        raise error
    if outcome is not None:
        user_error, message = outcome
        raise UserError(message if user_error else f"the main process failed: {message}")
    return result


@dataclass(frozen=True)
class Shard:
    """This process's rows of a step's global batch: share `index` of `count` equal, contiguous shares."""
    index: int = 0
    count: int = 1

    def rows(self, n: int) -> slice:
        if n % self.count:
            raise UserError(f"a global batch of {n} images does not split into {self.count} equal shares, one "
                            f"per process: choose a batch size that is a multiple of {self.count}")
        size = n // self.count
        return slice(self.index * size, (self.index + 1) * size)

    def take(self, value: Any, n: int) -> Any:
        """This process's rows of every tensor in `value` (dicts, lists and tuples walked) whose first
        dimension is the global batch size `n`; anything else is shared and kept whole."""
        if self.count == 1:
            return value
        part = self.rows(n)
        if isinstance(value, torch.Tensor):
            return value[part] if value.dim() > 0 and value.shape[0] == n else value
        if isinstance(value, dict):
            return {key: self.take(item, n) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.take(item, n) for item in value)
        return value

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over every process of a (gradient-free) tensor: a count or a statistic's sums."""
        if self.count == 1:
            return tensor
        total = tensor.detach().clone()
        torch.distributed.all_reduce(total)
        return total

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's rows of a (gradient-free) tensor, concatenated in process order: the global batch's."""
        if self.count == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.count)]
        torch.distributed.all_gather(parts, tensor.detach().contiguous())
        return torch.cat(parts)

    def mean_std(self, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (unbiased) std of every element of the global batch's `tensor`."""
        if self.count == 1:
            return tensor.mean(), tensor.std()
        mean, var = self._moments(tensor)
        return mean.to(tensor.dtype), var.sqrt().to(tensor.dtype)

    def var(self, tensor: torch.Tensor) -> torch.Tensor:
        """(Unbiased) variance of every element of the global batch's `tensor`."""
        if self.count == 1:
            return tensor.var()
        return self._moments(tensor)[1].to(tensor.dtype)

    def _moments(self, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = tensor.detach().double()
        count, total = self.sum(torch.stack([torch.tensor(values.numel(), dtype=torch.float64,
                                                          device=values.device), values.sum()]))
        mean = total / count
        squares = self.sum(((values - mean) ** 2).sum())
        return mean, squares / (count - 1)


WHOLE = Shard()
