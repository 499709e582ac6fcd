"""Which encoder precision runs on which execution provider, and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .model_folder import ModelFolder

log = logging.getLogger(__name__)

AUTO = "auto"
# fp16 LSTMs run natively (cuDNN) on GPU providers; onnxruntime's CPU provider has no fp16 LSTM kernel
# and wraps it in casts, so on CPU fp16 only costs time. Every other provider is CPU-class for `auto` and
# gets fp32: OpenVINOExecutionProvider among them (the runtime runs it at OpenVINO's FP32 inference precision,
# see session.DEFAULT_OPTIONS; its distribution ships no fp16 encoder).
FP16_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider", "DmlExecutionProvider"})
# int8 is dynamic quantization: each batch's activations get their own scale, so a pair's score depends on
# the sentences batched with it (up to 0.08 on LCQMC test, 22 of 3,000 labels flipped between batch sizes
# 256 and 7), which would break resume's identical bytes and every "scores do not depend on batching"
# promise. auto never picks it; `precision="int8"` is there for those who accept that.
@dataclass(frozen=True)
class PrecisionChoice:
    """The encoder precision to run and why, as `info` and a job's summary show it."""

    precision: str
    reason: str


def choose_precision(requested: str, provider: str, model: ModelFolder) -> PrecisionChoice:
    """`auto`: fp16 on GPU providers when the model has it, else fp32. Explicit choices are kept (fp16 off a
    GPU provider with a warning) and must exist in the model folder."""
    if requested != AUTO:
        model.encoder_path(requested)  # raises ModelLoadError naming the manifest and the precisions it has
        if requested == "fp16" and provider not in FP16_PROVIDERS:
            log.warning("fp16 on %s runs through casts and is slower than fp32; use fp32 or int8 there", provider)
        return PrecisionChoice(requested, "requested")
    if provider not in FP16_PROVIDERS:
        return PrecisionChoice("fp32", f"auto: fp32 on {provider}; int8 scores would depend on batching")
    if "fp16" in model.precisions():
        return PrecisionChoice("fp16", f"auto: fp16 runs natively on {provider}")
    return PrecisionChoice("fp32", "auto: the model has no fp16 encoder")
