"""Which encoder precision runs on which execution provider, and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .model_folder import ModelFolder
from .providers import provider as provider_record
from .settings import AUTO

log = logging.getLogger(__name__)

# fp16 LSTMs run natively (cuDNN) on GPU providers (providers.Provider.gpu); onnxruntime's CPU provider has no
# fp16 LSTM kernel and wraps it in casts, so on CPU fp16 only costs time. Every other provider is CPU-class for
# `auto` and gets fp32: OpenVINOExecutionProvider among them (the runtime runs it at OpenVINO's FP32 inference
# precision, see its record; its distribution ships no fp16 encoder).
# auto picks int8 on CPU-class providers only where export recorded both that it loses at most this many
# accuracy points against fp32 on every file it evaluated, and that its scores do not change with batching.
# onnxruntime's int8 is dynamic quantization: each batch's activations get their own scale, so a pair's score
# depends on the sentences batched with it (up to 0.08 on LCQMC test, 22 of 3,000 labels flipped between
# batch sizes 256 and 7), which would break resume's identical bytes and every "scores do not depend on
# batching" promise; `precision="int8"` is there for those who accept that.
AUTO_INT8_MAX_DROP_POINTS = 0.2


@dataclass(frozen=True)
class PrecisionChoice:
    """The encoder precision to run and why, as `info` and a job's summary show it."""

    precision: str
    reason: str


def choose_precision(requested: str, provider: str, model: ModelFolder) -> PrecisionChoice:
    """`auto`: fp16 on GPU providers when the model has it; on others int8 where export recorded it costs
    nothing (see AUTO_INT8_MAX_DROP_POINTS), else fp32. Explicit choices are kept (fp16 off a GPU provider with
    a warning) and must exist in the model folder."""
    if requested != AUTO:
        model.encoder_path(requested)  # raises ModelLoadError naming the manifest and the precisions it has
        if requested == "fp16" and not provider_record(provider).gpu:
            log.warning("fp16 on %s runs through casts and is slower than fp32; use fp32 or int8 there", provider)
        return PrecisionChoice(requested, "requested")
    if not provider_record(provider).gpu:
        return _cpu_class_choice(provider, model)
    if "fp16" in model.precisions():
        return PrecisionChoice("fp16", f"auto: fp16 runs natively on {provider}")
    return PrecisionChoice("fp32", "auto: the model has no fp16 encoder")


def _cpu_class_choice(provider: str, model: ModelFolder) -> PrecisionChoice:
    """int8 when the manifest's record of it passes both tests, else fp32 naming every test it failed."""
    record = model.variant_record("int8") if "int8" in model.precisions() else None
    if record is None:
        return PrecisionChoice("fp32", f"auto: fp32 on {provider}; export recorded no int8 encoder and its accuracy")
    drop, change = record.get("max_drop_points"), record.get("max_score_change_by_batching")
    failed = []
    if drop is None or drop > AUTO_INT8_MAX_DROP_POINTS:
        failed.append("its accuracy was not recorded" if drop is None else
                      f"it loses {drop:.2f} accuracy points (at most {AUTO_INT8_MAX_DROP_POINTS} allowed)")
    if change is None or change > 0:
        failed.append("its scores were not checked against batching" if change is None else
                      f"its scores change with batching (by up to {change:.2g})")
    if failed:
        return PrecisionChoice("fp32", f"auto: fp32 on {provider}; not int8: {' and '.join(failed)}")
    return PrecisionChoice("int8", f"auto: int8 on {provider}; it loses {drop:.2f} accuracy points at most and its "
                                   "scores do not depend on batching")
