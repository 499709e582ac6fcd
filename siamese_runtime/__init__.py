"""siamese-runtime: TensorFlow-free Siamese sentence-pair scoring on onnxruntime."""

__version__ = "0.1.0"

from .errors import BadRowError, ModelLoadError, ProviderUnavailableError, SiameseRuntimeError
from .model_folder import ModelFolder
from .scorer import Scorer

__all__ = [
    "BadRowError",
    "ModelFolder",
    "ModelLoadError",
    "ProviderUnavailableError",
    "Scorer",
    "SiameseRuntimeError",
    "__version__",
]
