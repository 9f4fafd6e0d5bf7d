"""Moving models in and out of rnnkit: PyTorch weights (more formats to come)."""
from .pytorch import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
