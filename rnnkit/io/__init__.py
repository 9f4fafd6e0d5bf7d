"""Moving models in and out of rnnkit: PyTorch weights and whole models, Keras 3
files (.keras, .weights.h5) and ONNX export.  h5py (Keras) and onnx are imported
only when used."""

from .keras import from_keras, to_keras
from .onnx import to_onnx
from .pytorch import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras", "to_onnx"]
