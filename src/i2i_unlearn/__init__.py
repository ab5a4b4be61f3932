"""i2i-unlearn: make image-to-image generative models forget (Li et al., ICLR 2024)."""

__version__ = "0.1.0"

from i2i_unlearn.errors import UserError
from i2i_unlearn.models import load_model, MODELS
from i2i_unlearn.methods import METHODS
from i2i_unlearn.data import DATASETS, load_dataset

__all__ = ["UserError", "load_model", "MODELS", "METHODS", "DATASETS", "load_dataset", "__version__"]
