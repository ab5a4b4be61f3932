"""Model families. Importing a family module registers it in MODELS."""
from i2i_unlearn.models.base import MODELS, I2IModel, build_model, load_model, read_model_config, register_model
from i2i_unlearn.models import diffusion, mae, vqgan  # noqa: F401  (register "diffusion", "mae", "vqgan")

__all__ = ["MODELS", "I2IModel", "build_model", "load_model", "read_model_config", "register_model"]
