"""The opened encoder checked against its model folder at start-up, so a mismatched part fails at load."""

from __future__ import annotations

import onnxruntime as ort

from .errors import ModelLoadError
from .model_folder import ModelFolder
from .tokenizer import PAD_ID


def check_encoder(session: ort.InferenceSession, model: ModelFolder, precision: str) -> None:
    """Raise ModelLoadError naming the encoder file unless the session takes one int [batch, length] input
    (named as the manifest lists it) and encodes a probe holding the vocabulary's largest id to [1, encoding_dim]."""
    path = model.encoder_path(precision)
    listed = model.encoder_inputs(precision)
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if len(inputs) != 1 or (listed is not None and names != listed):
        raise ModelLoadError(
            f"{path}: takes inputs {', '.join(names)}; an encoder takes one: {', '.join(listed or ['token ids'])}"
        )
    last_id = model.tokenizer.vocab_size - 1
    probe = model.tokenizer.pad([[last_id, PAD_ID]])  # what Scorer feeds: the same dtype, post-padded
    fed = f"tensor({probe.dtype})"
    if inputs[0].type != fed or len(inputs[0].shape) != 2:
        raise ModelLoadError(
            f"{path}: input {names[0]} is {inputs[0].type} of shape {inputs[0].shape}; the runtime feeds {fed} "
            "[batch, length]"
        )
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failure becomes the ModelLoadError below; onnxruntime need not log it too
    try:
        encoding = session.run(None, {names[0]: probe}, quiet)[0]
    except Exception as error:  # onnxruntime raises several unrelated types; Gather's out-of-range id is one
        raise ModelLoadError(
            f"{path}: fails on token id {last_id}, the largest of {model.vocab_file}: {error}"
        ) from None
    if list(encoding.shape) != [1, model.encoding_dim]:
        raise ModelLoadError(
            f"{path}: encodes a sentence to shape {list(encoding.shape)}, the manifest's encoding_dim is "
            f"{model.encoding_dim}"
        )
