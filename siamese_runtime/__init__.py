"""siamese-runtime: TensorFlow-free Siamese sentence-pair scoring on onnxruntime."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .errors import BadRowError, ModelLoadError, ProviderUnavailableError, SiameseRuntimeError
    from .model_folder import ModelFolder
    from .scorer import Scorer
    from .settings import ScorerSettings

# Each public name and its module, imported when the name is first used: importing the package (as the command
# line's entry does before it handles signals) loads neither numpy nor onnxruntime.
_MODULES = {"BadRowError": "errors", "ModelLoadError": "errors", "ProviderUnavailableError": "errors",
            "SiameseRuntimeError": "errors", "ModelFolder": "model_folder", "Scorer": "scorer",
            "ScorerSettings": "settings"}
__all__ = ["BadRowError", "ModelFolder", "ModelLoadError", "ProviderUnavailableError", "Scorer", "ScorerSettings",
           "SiameseRuntimeError", "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
