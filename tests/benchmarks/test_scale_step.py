"""benchmarks/scale_step.py: one setting measured in process, on the tiny shapes (the full ones are the lead's run)."""
import math

import pytest
import scale_step

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


@pytest.mark.parametrize("name, kind", [("mae-base", "unlearn"), ("unet-256", "train")])
def test_a_setting_steps_in_bf16_with_checkpointing_and_reports_time_and_memory(name, kind):
    row = scale_step.measure(scale_step.TINY[name], kind, "bf16", True, images=4, repeats=1)
    assert (row["kind"], row["mixed_precision"], row["gradient_checkpointing"], row["device"]) == (
        kind, "bf16", True, "cpu")
    assert row["seconds_per_step"] > 0 and math.isfinite(row["loss"]) and row["peak_device_mb"] is None
    assert row["peak_rss_mb"] >= row["rss_before_steps_mb"] > 0
    # ours trains the encoder only; a training step every parameter
    assert (row["trained_parameters"] < row["parameters"]) == (kind == "unlearn")


def test_the_full_shapes_are_the_named_checkpoints():
    mae, unet = scale_step.MODELS["mae-base"], scale_step.MODELS["unet-256"]
    assert (mae["image_size"], mae["patch_size"], mae["hidden_size"], mae["num_layers"]) == (224, 16, 768, 12)
    assert (unet["image_size"], unet["block_out_channels"][-1], unet["layers_per_block"]) == (256, 512, 2)
