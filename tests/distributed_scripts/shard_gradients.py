"""Run by tests/test_distributed.py in every process of a 2-process launch: for each family and each
objective (every unlearning method, `train`, `train-tokenizer`), one step's gradient computed on this
process's share of a global batch, averaged over the processes as DDP averages it, must be the
gradient one process computes on the whole batch. Prints one JSON line per case (process 0)."""
import copy
import json
import sys

import torch

torch.set_num_threads(1)

from i2i_unlearn.config import TaskConfig, TokenizerTrainConfig, UnlearnConfig, from_dict
from i2i_unlearn.distributed import WHOLE, Shard, process_state
from i2i_unlearn.methods import UnlearnObjective, get_method
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.models import build_model
from i2i_unlearn.models.vqgan import VQTokenizer, VQTokenizerConfig
from i2i_unlearn.tasks import make_mask, noise_image, pick
from i2i_unlearn.train import TrainObjective
from i2i_unlearn.train_tokenizer import TokenizerObjective

MODELS, TOKENIZER, METHODS = (json.loads(arg) for arg in sys.argv[1:4])
BATCH = 4
TASKS = [TaskConfig("center-inpaint", 0.5), TaskConfig("random-patches", 0.5)]
state = process_state()
shard = Shard(state.process_index, state.num_processes)
assert shard.count == 2, f"{shard.count} processes"


def images(generator):
    return torch.rand(BATCH, 1, 32, 32, generator=generator)


def unlearn_batch(model):
    def make(generator):
        task = pick(TASKS, generator)
        batch = {"generator": generator}
        for side in ("forget", "retain"):
            x = images(generator)
            batch[f"{side}_images"], batch[f"{side}_mask"] = x, make_mask(task, BATCH, 32, model.mask_grid, generator)
        batch["forget_noise"] = noise_image(batch["forget_images"], "batch-gaussian", generator)
        return batch
    return make


def train_batch(model):
    def make(generator):
        x = images(generator)
        return {"images": x, "mask": make_mask(pick(TASKS, generator), BATCH, 32, model.mask_grid, generator),
                "generator": generator}
    return make


def step(build, make_batch, part):
    """(loss, gradients, parameters after the step's in-place changes) of a fresh objective on one step."""
    objective = build()
    params = [p for p in objective.parameters() if p.requires_grad]
    terms = objective({**make_batch(torch.Generator().manual_seed(7)), "shard": part})
    terms["loss"].backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    # DDP's average over the processes (the whole batch's gradient is the same on every process)
    grads = [part.sum(g) / part.count for g in grads]
    loss = part.sum(terms["loss"].detach()) / part.count
    return loss, grads, [p.detach().clone() for p in objective.parameters()]


def compare(case, build, make_batch):
    start = [p.detach().clone() for p in build().parameters()]
    whole_loss, whole_grads, whole_params = step(build, make_batch, WHOLE)
    loss, grads, params = step(build, make_batch, shard)
    result = {"case": case, "loss": float(whole_loss), "loss_diff": abs(float(loss - whole_loss)),
              "grad_scale": max(float(g.abs().max()) for g in whole_grads),
              "grad_diff": max(float((a - b).abs().max()) for a, b in zip(grads, whole_grads)),
              # parameters a step changes in place (the tokenizer's dead-code restarts), and how far
              "param_diff": max(float((a - b).abs().max()) for a, b in zip(params, whole_params)),
              "param_moved": max(float((a - b).abs().max()) for a, b in zip(whole_params, start))}
    if state.is_main_process:
        print(json.dumps(result), flush=True)


def unlearn_objective(family, method, feature_norm):
    def build():
        torch.manual_seed(0)
        teacher = build_model(MODELS[family])
        student = copy.deepcopy(teacher)
        teacher.requires_grad_(False).eval()
        with torch.no_grad():   # away from the teacher, so every term has a gradient
            for p in student.parameters():
                p.add_(0.05 * torch.randn(p.shape))
        config = UnlearnConfig(method=method, forget_classes=["Cat"], alpha=0.5, feature_norm=feature_norm)
        method_ = get_method(method, config)
        set_trainable(student, method_.trains)
        return UnlearnObjective(method_, student, teacher)
    return build


for family in MODELS:
    model = build_model(MODELS[family])
    for method in METHODS:
        if get_method(method, UnlearnConfig(method=method)).supports(model):
            compare(f"{family} {method}", unlearn_objective(family, method, "none"), unlearn_batch(model))
    compare(f"{family} ours teacher-variance", unlearn_objective(family, "ours", "teacher-variance"),
            unlearn_batch(model))

    def train_objective(family=family):
        torch.manual_seed(0)
        return TrainObjective(build_model(MODELS[family]))
    compare(f"{family} train", train_objective, train_batch(model))


def tokenizer_objective():
    torch.manual_seed(0)
    # every code starts dead, so the step restarts all of them from the batch's encoder outputs
    config = TokenizerTrainConfig(tokenizer=TOKENIZER, adversarial_start=0, dead_code_threshold=2.0)
    return TokenizerObjective(VQTokenizer(from_dict(VQTokenizerConfig, TOKENIZER, " tokenizer")), config)


compare("tokenizer train", tokenizer_objective,
        lambda generator: {"images": images(generator), "step": 0, "generator": generator})
