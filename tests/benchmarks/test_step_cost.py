"""bench/step_cost.py (run by benchmarks/step_cost.py): the issue's limit step runs the two encoders and nothing
else."""
import copy

import torch

from i2i_unlearn.bench.step_cost import EncoderLimit
from i2i_unlearn.config import DataConfig, TaskConfig, UnlearnConfig
from i2i_unlearn.data import load_split
from i2i_unlearn.loop import step_generator
from i2i_unlearn.methods import UnlearnObjective, get_method
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.models import build_model
from i2i_unlearn.tasks import make_mask
from conftest import TINY_VQGAN


TASK = TaskConfig("center-inpaint", 0.5)


def _batch(teacher, images, step):
    generator = step_generator(0, step)
    forget, retain = images[:4], images[4:8]
    mask = make_mask(TASK, 4, images.shape[-1], teacher.mask_grid, generator)
    return {"generator": generator, "forget_images": forget, "forget_mask": mask, "retain_images": retain,
            "retain_mask": mask, "forget_noise": torch.rand(forget.shape, generator=generator)}


def test_the_limit_step_tokenizes_nothing_once_the_cache_is_filled_while_ours_tokenizes_its_noise():
    teacher = build_model(TINY_VQGAN).eval()
    student = copy.deepcopy(teacher)
    teacher.requires_grad_(False)
    images = load_split(DataConfig()).train.images[:8]
    config = UnlearnConfig(method="ours", forget_classes=["Cat"], tasks=[TASK])
    student.share_caches_with(teacher)
    set_trainable(student, "encoder")
    limit = UnlearnObjective(EncoderLimit(config), student, teacher).train()
    ours = UnlearnObjective(get_method("ours", config), student, teacher).train()
    limit(_batch(teacher, images, 0))                       # fills the cache: whole and degraded images
    calls = []
    tokenize = teacher.tokenizer.tokenize
    teacher.tokenizer.tokenize = student.tokenizer.tokenize = lambda x: calls.append(len(x)) or tokenize(x)
    terms = limit(_batch(teacher, images, 0))
    assert calls == []                                      # the two encoders only
    assert terms["forget"].item() == 0 and terms["retain"].item() == 0   # student == teacher: nothing to learn
    terms["loss"].backward()
    assert all(p.grad is None for p in student.token_decoder.parameters())
    ours(_batch(teacher, images, 0))
    assert calls == [4, 4]                                  # ours: the noise image, whole and degraded


def test_counting_flops_times_nothing_and_ours_costs_what_the_limit_does_on_the_mae(tiny_model_dir):
    """step_cost(flops_only=True) counts each step's FLOPs (forward and backward) and times none: ours on the MAE is
    the limit step exactly (its teacher encodes the noise image, the limit's the batch's own: the same shapes),
    max-loss trains the whole model, so it counts more."""
    from i2i_unlearn.bench.step_cost import FLOP_KEYS, step_cost
    record = step_cost(tiny_model_dir, ("ours", "max-loss"), images=8, repeats=1, echo=lambda _: None,
                       flops_only=True)
    assert set(record) == set(FLOP_KEYS)
    counted = record["unlearning_step_gflop"]
    assert record["training_step_gflop"] > 0 and counted["ours"] == counted["limit"] < counted["max-loss"]
    assert record["gflop_to_training_step"]["ours"] == round(counted["ours"] / record["training_step_gflop"], 3)
