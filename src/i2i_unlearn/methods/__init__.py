"""Unlearning methods. Importing a method module registers it in METHODS."""
from i2i_unlearn.methods.base import METHODS, Batch, Method, UnlearnObjective, get_method, register_method
from i2i_unlearn.methods import ours, max_loss, noisy_label, retain_label, random_encoder, retrain  # noqa: F401
from i2i_unlearn.methods import ours_substitute, ours_decoder, undo  # noqa: F401

__all__ = ["METHODS", "Batch", "Method", "UnlearnObjective", "get_method", "register_method"]
