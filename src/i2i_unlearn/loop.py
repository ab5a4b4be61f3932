"""The one optimisation loop, for training and for unlearning.

It knows nothing about models or methods: it steps an `objective` (an nn.Module whose forward
takes a batch and returns a dict with a "loss") over batches from `make_batch(step, generator)`.
All randomness of a step comes from a generator seeded by (seed, step), so a run resumed from a
checkpoint takes exactly the steps an uninterrupted run takes.
Runs on accelerate: one process, or `accelerate launch --multi_gpu --num_processes N` (N GPUs, or N
CPU processes without a GPU; docs/distributed.md). `make_batch` draws the step's global batch, the
same on every process; the loop tells the objective its share (`batch["shard"]`), the objective keeps
those rows, DDP averages the gradients, and the logged terms are averaged over the processes.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from safetensors import safe_open
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from i2i_unlearn.checkpoints import (
    CHECKPOINTS,
    load_tensors,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_tensors_atomic,
    write_json_atomic,
)
from i2i_unlearn.config import OptimConfig
from i2i_unlearn.distributed import Shard, on_main_process, process_state, use_cpu
from i2i_unlearn.errors import UserError


MIXED_PRECISION = ("no", "bf16")


def make_accelerator(mixed_precision: str | None = None) -> Accelerator:
    """The run's accelerator: GPUs when present, else CPU processes (gloo) under a multi-process launch.
    accelerate's default (cpu=False) leaves CPU-only processes started by torchrun each alone.
    `mixed_precision` is the run config's (None: "no"); run_loop applies it (`autocast`), so the config is the one
    place a run's precision is set and recorded: accelerate is told "no", and a launch that asks for another
    precision (`accelerate launch --mixed_precision bf16`, or its config file) is refused rather than ignored."""
    if mixed_precision not in (None, *MIXED_PRECISION):
        raise UserError(f"unknown mixed_precision {mixed_precision!r}; available: {', '.join(MIXED_PRECISION)}")
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")   # what a launch asked for ("no": nothing)
    if launched not in ("no", mixed_precision):
        raise UserError(f"accelerate launch asks for mixed precision {launched}, the run for "
                        f"{mixed_precision or 'no'}: set it in the run (--mixed-precision, one of "
                        f"{', '.join(MIXED_PRECISION)}; the run config records it) and launch without it")
    process_state()
    # find_unused_parameters: some methods leave trainable parameters without a gradient on a step
    return Accelerator(cpu=use_cpu(), mixed_precision="no",
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def autocast(device: torch.device, mixed_precision: str | None):
    """bf16: a step's forward passes (student and teacher) in bfloat16 where torch's autocast deems it safe (matrix
    products, convolutions); weights, gradients and the optimiser stay float32, and checkpoint measurements run in
    float32. What accelerate's mixed_precision="bf16" does, on CPU and GPU alike."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed_precision == "bf16")


def step_generator(seed: int, step: int, process: int = 0) -> torch.Generator:
    """The step's randomness. Every process draws the same (process 0's): they share one global batch."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + process)


class _StepBatches(Dataset):
    """Item i is step start+i's batch, drawn by make_batch with the step's own generator: what a DataLoader worker
    computes ahead of the step. The generator goes back as its state (the objective draws on from it)."""

    def __init__(self, make_batch: Callable[[int, torch.Generator], dict], seed: int, start: int, steps: int):
        self.make_batch, self.seed, self.start, self.steps = make_batch, seed, start, steps

    def __len__(self) -> int:
        return self.steps - self.start

    def __getitem__(self, i: int) -> dict:
        generator = step_generator(self.seed, self.start + i)
        try:
            batch = self.make_batch(self.start + i, generator)
        except UserError as exc:   # a DataLoader would wrap it in a worker traceback
            return {"error": str(exc)}
        if "generator" in batch:
            batch = {**batch, "generator": generator.get_state()}
        return batch


def step_batches(make_batch: Callable[[int, torch.Generator], dict], seed: int, start: int, steps: int,
                 workers: int = 0):
    """The batches of steps start..steps-1, in order. With `workers` > 0, that many DataLoader worker processes
    draw and read the coming steps' batches (two each ahead) while this process computes: every batch is a pure
    function of (seed, step), so the batches are bit-identical with any number of workers. Workers are forked
    (they share the loaded sets without copying; make_batch is a closure, which a spawned worker cannot take)."""
    if workers < 0:
        raise UserError(f"data_workers must be >= 0, got {workers}")
    if workers == 0:
        for step in range(start, steps):
            yield make_batch(step, step_generator(seed, step))
        return
    if "fork" not in multiprocessing.get_all_start_methods():
        raise UserError("data_workers > 0 needs forked worker processes, which this platform does not offer: "
                        "set data_workers to 0")
    loader = DataLoader(_StepBatches(make_batch, seed, start, steps), batch_size=None, num_workers=workers,
                        multiprocessing_context="fork")
    for batch in loader:
        if "error" in batch:
            raise UserError(batch["error"])
        if "generator" in batch:
            generator = torch.Generator()
            generator.set_state(batch["generator"])
            batch["generator"] = generator
        yield batch


def check_global_batch(accelerator: Accelerator, **sizes: int | None) -> None:
    """Refuse, before anything is written, a global batch that does not split evenly over the processes."""
    for name, size in sizes.items():
        if size and size % accelerator.num_processes:
            raise UserError(f"{name} {size} does not split into {accelerator.num_processes} equal shares, one per "
                            f"process: choose a multiple of {accelerator.num_processes} (it is the global batch)")


def make_optimizer(parameters, config: OptimConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    raise UserError(f"unknown optimizer {config.optimizer!r}; available: adamw, adam")


def lr_factor(step: int, total: int, config: OptimConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "cosine":
        progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    raise UserError(f"unknown schedule {config.schedule!r}; available: cosine, constant")


def _latest_checkpoint(run_dir: Path) -> Path | None:
    folder = run_dir / CHECKPOINTS
    done = sorted(folder.glob("step-*[0-9]")) if folder.is_dir() else []
    return done[-1] if done else None


def make_ema(parameters, decay: float):
    """diffusers' EMAModel with its warm-up (the average follows fast early on, then slows to `decay`)."""
    from diffusers.training_utils import EMAModel
    return EMAModel(parameters, decay=decay, use_ema_warmup=True, power=2 / 3)


def _ema_to_tensors(ema) -> tuple[dict, dict]:
    state = ema.state_dict()
    tensors = {str(i): p.detach().clone() for i, p in enumerate(state.pop("shadow_params"))}
    return tensors, state


def _save_checkpoint(run_dir: Path, step: int, module: torch.nn.Module, optimizer, log: list[dict],
                     ema=None, config: dict | None = None, unlogged: dict | None = None,
                     wall_time_s: float = 0.0, monitor_state: dict | None = None) -> Path:
    """Write step-N.tmp/ then rename it: a killed run leaves either a whole checkpoint or none.
    `unlogged`: the loss sums of the steps since the last log entry, so a resumed run logs the same means.
    `wall_time_s`: the run's wall time so far, over every invocation (resumed_wall_time reads it back).
    `monitor_state`: the run's monitor (a budgeted run's controller) as of this step."""
    folder = run_dir / CHECKPOINTS
    final = folder / f"step-{step:07d}"
    tmp = folder / f"step-{step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_tensors_atomic(tmp / "model.safetensors", module.state_dict())
    tensors, meta = optimizer_to_tensors(optimizer)
    save_tensors_atomic(tmp / "optimizer.safetensors", tensors, meta)
    state = {"step": step, "log": log, "unlogged": unlogged or {"steps": 0, "sums": {}}, "config": config,
             "wall_time_s": round(wall_time_s, 3)}
    if ema is not None:
        tensors, state["ema"] = _ema_to_tensors(ema)
        save_tensors_atomic(tmp / "ema.safetensors", tensors)
    if monitor_state is not None:
        state["monitor"] = monitor_state
    write_json_atomic(tmp / "state.json", state)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in folder.glob("step-*[0-9]"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def resumed_wall_time(run_dir: Path) -> float:
    """The wall time a resumed run had spent up to its latest checkpoint (0 without one, or for a
    checkpoint from before it was recorded): run.json's wall_time_total_s adds it."""
    checkpoint = _latest_checkpoint(Path(run_dir))
    if checkpoint is None:
        return 0.0
    return float(json.loads((checkpoint / "state.json").read_text()).get("wall_time_s", 0.0))


def _flatten(values, prefix: str = "") -> dict:
    if isinstance(values, dict):
        return {k: v for key, value in values.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): values}


RESUMABLE_CHANGES = {"steps", "data_workers"}   # the length, and how batches are read (they are the same either way)


def check_resume_config(recorded: dict | None, config: dict | None, folder: Path) -> None:
    """A resumed run must be the run that was started: only its length (and its data workers) may change."""
    if recorded is None or config is None:   # checkpoints from before configs were recorded
        return
    old, new = _flatten(recorded), _flatten(config)
    changed = sorted(k for k in old.keys() | new.keys() if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
    if changed:
        details = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in changed)
        raise UserError(f"--resume: the config differs from the one {folder} was started with: {details}. "
                        "Resume with the same config, or start again with --overwrite")


def _load_checkpoint(folder: Path, module: torch.nn.Module, optimizer, ema=None,
                     config: dict | None = None) -> tuple[int, list[dict], dict, dict | None]:
    state = json.loads((folder / "state.json").read_text())
    check_resume_config(state.get("config"), config, folder)
    module.load_state_dict(load_tensors(folder / "model.safetensors"))
    with safe_open(folder / "optimizer.safetensors", framework="pt") as f:
        meta = f.metadata()
    optimizer.load_state_dict(optimizer_from_tensors(load_tensors(folder / "optimizer.safetensors"), meta))
    if ema is not None:
        if "ema" not in state:
            raise UserError(f"--resume: {folder} holds no EMA weights, but the config asks for them (ema_decay)")
        shadow = load_tensors(folder / "ema.safetensors")
        ema.load_state_dict({**state["ema"], "shadow_params": [shadow[str(i)] for i in range(len(shadow))]})
    # checkpoints from before `unlogged` was kept: their runs checkpointed at log steps only
    return state["step"], state["log"], state.get("unlogged", {"steps": 0, "sums": {}}), state.get("monitor")


def _mean_over_processes(accelerator: Accelerator, terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """The step's loss terms averaged over the processes: each is the mean over a process's equal share,
    so the average is the global batch's. One process: the terms as they are."""
    if accelerator.num_processes == 1:
        return {name: float(value.detach()) for name, value in terms.items()}
    stacked = torch.stack([value.detach().reshape(()).double() for value in terms.values()])
    return dict(zip(terms, accelerator.reduce(stacked, "mean").tolist()))


class Monitor:
    """What run_loop's `monitor` is (controllers.budget.BudgetController, controllers.membership.MembershipStop): its `state` dict,
    holding `stopped_at` (None while the run goes on), is kept in every checkpoint and restored on resume."""
    state: dict

    @property
    def stopped(self) -> bool:
        return self.state["stopped_at"] is not None

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state = dict(state)

    def measure(self, step: int, module: torch.nn.Module) -> bool:
        """Measure `module` at checkpoint `step`; True stops the run there."""
        raise NotImplementedError


def _sharpness_aware_gradient(objective, batch: dict, trainable: list, rho: float, optimizer, accelerator,
                              mixed_precision: str | None, drawn_from: torch.Tensor | None) -> None:
    """SAM: replace the step's gradient g (of the global batch: DDP has averaged it) by the gradient at the weights
    moved rho * g / ||g||, the same batch and the same random draws (the generator goes back to where the step's
    objective started), then put the weights back. The optimiser then steps from the original weights."""
    grads = [p.grad for p in trainable if p.grad is not None]
    if not grads:
        return
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if not torch.isfinite(norm) or norm == 0:
        return
    kept = []   # the weights as they were, restored exactly (not by subtracting the move again)
    with torch.no_grad():
        for p in trainable:
            if p.grad is not None:
                kept.append((p, p.detach().clone()))
                p.add_(p.grad, alpha=float(rho / norm))
    if drawn_from is not None:
        batch["generator"].set_state(drawn_from)
    optimizer.zero_grad(set_to_none=True)
    with autocast(accelerator.device, mixed_precision):
        loss = objective(batch)["loss"]
    accelerator.backward(loss)
    with torch.no_grad():
        for p, weights in kept:
            p.copy_(weights)


def run_loop(*, objective: torch.nn.Module, module: torch.nn.Module, optim: OptimConfig, steps: int, seed: int,
             make_batch: Callable[[int, torch.Generator], dict], run_dir: Path, checkpoint_every: int,
             log_every: int, resume: bool, description: str,
             accelerator: Accelerator | None = None, ema_decay: float = 0.0,
             config: dict | None = None, started: float | None = None, monitor=None,
             mixed_precision: str | None = None, data_workers: int = 0) -> list[dict]:
    """Optimise the trainable parameters of `module` (the part of `objective` that is saved).

    With `ema_decay` > 0 an exponential moving average of those parameters is kept (and
    checkpointed), and at the end it replaces them: the EMA weights are what is saved.
    `config` (the run's whole config) is kept in every checkpoint; a resume with another is refused.
    `started`: when this invocation began (time.time(); default now), for the wall time checkpoints record.
    `monitor` (a Monitor: a budgeted run's controller, or a file request's membership stop): at every checkpoint,
    before it is written and on every process, `monitor.measure(step, module)` may change the objective's weights
    for the next steps and returns True to stop the run there; its `state_dict()` goes into the checkpoint and
    `load_state_dict` restores it on resume; `monitor.stopped` says a resumed run had already stopped.
    `mixed_precision` "bf16": each step's forward in bfloat16 autocast (`autocast`).
    `data_workers`: DataLoader worker processes reading the coming steps' batches (`step_batches`; 0: read here).
    Returns the log (one dict of mean loss terms per `log_every` steps).
    """
    accelerator = accelerator or make_accelerator(mixed_precision)
    run_dir = Path(run_dir)
    started = time.time() if started is None else started
    earlier_wall_time = resumed_wall_time(run_dir) if resume else 0.0
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable:
        raise UserError("nothing to train: every parameter is frozen")
    optimizer = make_optimizer(trainable, optim)
    ema = make_ema(trainable, ema_decay) if ema_decay > 0 else None
    start, log = 0, []
    unlogged = {"steps": 0, "sums": {}}   # loss sums of the steps since the last log entry
    if resume:
        checkpoint = _latest_checkpoint(run_dir)
        if checkpoint is None:
            raise UserError(f"--resume: no checkpoint in {run_dir / CHECKPOINTS}")
        start, log, unlogged, monitor_state = _load_checkpoint(checkpoint, module, optimizer, ema, config)
        if monitor is not None:
            monitor.load_state_dict(monitor_state)
        accelerator.print(f"resuming from {checkpoint} (step {start} of {steps})")
    objective, optimizer = accelerator.prepare(objective, optimizer)
    objective.train()
    sums, summed = dict(unlogged["sums"]), unlogged["steps"]
    last_good = start
    progress = tqdm(range(start, steps), initial=start, total=steps, desc=description,
                    disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    shard = Shard(accelerator.process_index, accelerator.num_processes)
    if shard.count > 1:   # one line per process: the launch really started them (docs/distributed.md)
        print(f"{description}: process {shard.index} of {shard.count} ({accelerator.distributed_type.value}, "
              f"{accelerator.device})", file=sys.stderr, flush=True)
    batches = step_batches(make_batch, seed, start, steps, data_workers)
    try:
        for step, batch in zip(progress, batches):
            if monitor is not None and monitor.stopped:   # resumed after the run had stopped early
                break
            generator = batch.get("generator")
            drawn_from = generator.get_state() if generator is not None and optim.sam_rho else None
            with autocast(accelerator.device, mixed_precision):
                terms = objective({**batch, "shard": shard})
            loss = terms["loss"]
            values = _mean_over_processes(accelerator, terms)
            # every process sees the mean, so a NaN on any one stops them all at the same step (none waits)
            if not math.isfinite(values["loss"]):
                where = (f"the last good checkpoint (step {last_good}) is kept in {run_dir / CHECKPOINTS}"
                         if last_good else "no checkpoint was written yet")
                raise UserError(f"the loss became {values['loss']} at step {step}: stopped; {where}. "
                                "Lower the learning rate or alpha.")
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if optim.sam_rho:
                _sharpness_aware_gradient(objective, {**batch, "shard": shard}, trainable, optim.sam_rho, optimizer,
                                          accelerator, mixed_precision, drawn_from)
            if optim.grad_clip > 0:
                accelerator.clip_grad_norm_(trainable, optim.grad_clip)
            # the learning rate is a pure function of the step, so a resumed run needs no scheduler state
            for group in optimizer.param_groups:
                group["lr"] = optim.lr * lr_factor(step, steps, optim)
            optimizer.step()
            if ema is not None:
                ema.step(trainable)
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value
            summed += 1
            done = step + 1
            checkpoint = done % checkpoint_every == 0 or done == steps
            stop = False
            if checkpoint and monitor is not None:
                stop = monitor.measure(done, module)
                objective.train()   # measuring generates in eval mode
            if done % log_every == 0 or done == steps or stop:
                entry = {"step": done, "lr": optimizer.param_groups[0]["lr"],
                         **{k: round(v / summed, 6) for k, v in sums.items()}}
                log.append(entry)
                sums, summed = {}, 0
                progress.set_postfix({k: f"{v:.4g}" for k, v in entry.items() if k not in ("step", "lr")})
            if checkpoint:
                inner = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
                monitor_state = monitor.state_dict() if monitor is not None else None
                on_main_process(lambda: _save_checkpoint(run_dir, done, module, inner, log, ema, config,
                                                         {"steps": summed, "sums": sums},
                                                         earlier_wall_time + time.time() - started, monitor_state))
                last_good = done
            if stop:
                break
    finally:
        batches.close()   # stops the workers of a run that ended early
    progress.close()
    if ema is not None:
        ema.copy_to(trainable)
    return log
