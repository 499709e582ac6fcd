"""Which encoder precision runs on which execution provider."""

from __future__ import annotations

import logging

from .model_folder import ModelFolder
from .session import CPU

log = logging.getLogger(__name__)

AUTO = "auto"
# fp16 LSTMs run natively (cuDNN) on GPU providers; onnxruntime's CPU provider has no fp16 LSTM kernel
# and wraps it in casts, so on CPU fp16 only costs time.
FP16_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider", "DmlExecutionProvider"})


def choose_precision(requested: str, provider: str, model: ModelFolder) -> str:
    """`auto`: fp16 where the provider runs it well and the model has it, else fp32; explicit choices
    are kept (fp16 on CPU with a warning) and must exist in the model folder."""
    if requested == AUTO:
        return "fp16" if provider in FP16_PROVIDERS and "fp16" in model.precisions() else "fp32"
    model.encoder_path(requested)  # raises ModelLoadError naming the manifest and the precisions it has
    if requested == "fp16" and provider == CPU:
        log.warning("fp16 on the CPU provider runs through casts and is slower than fp32; use fp32 or int8 on CPU")
    return requested
