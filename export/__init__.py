"""Export a training run to the runtime's model folder: tf2onnx, native LSTMs, parity, manifest."""
