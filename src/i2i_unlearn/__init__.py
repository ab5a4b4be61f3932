"""i2i-unlearn: make image-to-image generative models forget (Li et al., ICLR 2024)."""

__version__ = "0.1.0"

from i2i_unlearn.errors import UserError

# The rest loads on first use (PEP 562), so `import i2i_unlearn` and the CLI's --help need no torch.
_LAZY = {"load_model": "i2i_unlearn.models", "MODELS": "i2i_unlearn.models", "METHODS": "i2i_unlearn.methods",
         "DATASETS": "i2i_unlearn.data", "load_dataset": "i2i_unlearn.data"}

__all__ = ["UserError", *_LAZY, "__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'i2i_unlearn' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
