import pytest
import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.errors import UserError
from i2i_unlearn.tasks import degrade, make_mask, noise_image


@pytest.mark.parametrize("name, ratio, hidden_fraction", [
    ("center-inpaint", 0.5, 0.25), ("center-inpaint", 0.25, 0.0625), ("center-inpaint", 0.75, 0.5625),
    ("outpaint", 0.5, 0.75), ("outpaint", 0.75, 1 - 0.5625), ("random-patches", 0.75, 0.75),
    ("random-patches", 0.25, 0.25)])
def test_masks_hide_exactly_the_configured_fraction(name, ratio, hidden_fraction):
    mask = make_mask(TaskConfig(name, ratio), 5, 32, 8, torch.Generator().manual_seed(0))
    assert mask.shape == (5, 1, 32, 32)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(mask.mean(dim=(1, 2, 3)), torch.full((5,), hidden_fraction))


def test_center_hole_is_centered_and_snapped_to_the_grid():
    mask = make_mask(TaskConfig("center-inpaint", 0.5), 1, 32, 8)[0, 0]
    assert mask[8:24, 8:24].eq(1).all() and mask.sum() == 16 * 16
    # a ratio between grid lines rounds the hole outward: 0.4 * 8 cells = 3.2 -> 4 cells
    assert make_mask(TaskConfig("center-inpaint", 0.4), 1, 32, 8).sum() == 16 * 16


def test_random_patches_differ_per_sample_and_follow_the_seed():
    task = TaskConfig("random-patches", 0.5)
    a = make_mask(task, 4, 32, 8, torch.Generator().manual_seed(1))
    b = make_mask(task, 4, 32, 8, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_open_unit_interval_is_refused(ratio):
    with pytest.raises(UserError, match=r"ratio must be in \(0, 1\)"):
        make_mask(TaskConfig("center-inpaint", ratio), 1, 32, 8)


def test_unknown_task_is_refused_with_the_list():
    with pytest.raises(UserError, match="available: center-inpaint, outpaint, random-patches"):
        make_mask(TaskConfig("colorize", 0.5), 1, 32, 8)


def test_degrade_fills_only_the_hidden_region():
    x = torch.rand(2, 1, 32, 32)
    mask = make_mask(TaskConfig("center-inpaint", 0.5), 2, 32, 8)
    y = degrade(x, mask, fill=0.5)
    assert torch.equal(y[mask == 0], x[mask == 0]) and torch.all(y[mask == 1] == 0.5)


def test_noise_images():
    x = torch.rand(64, 1, 32, 32) * 0.5
    g = torch.Generator().manual_seed(0)
    batch = noise_image(x, "batch-gaussian", g)
    assert batch.min() >= 0 and batch.max() <= 1
    assert abs(batch.mean() - x.mean()) < 0.02
    standard = noise_image(x, "standard-gaussian", g)
    assert abs((standard * 2 - 1).std() - 1) < 0.02  # N(0, 1) in [-1, 1] space
    uniform = noise_image(x, "uniform", g)
    assert uniform.min() >= 0 and uniform.max() <= 1 and abs(uniform.mean() - 0.5) < 0.02
    with pytest.raises(UserError, match="available"):
        noise_image(x, "pink", g)
