"""Gold standard: the same model trained from scratch on the retain data only, with the
original model's recorded training recipe. Not a loss: `unlearn` hands it to `train`."""
from i2i_unlearn.methods.base import Method, register_method


@register_method
class Retrain(Method):
    name = "retrain"
    summary = "from scratch on the retain data with the original training recipe (the reference to approach)"
    trains = "whole"
