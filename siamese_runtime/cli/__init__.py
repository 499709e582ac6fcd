"""The `siamese-runtime` command line: the process guard (entry), the commands and their flags, the progress
bar. It runs on the library and nothing in the library imports it; importing this package imports nothing
else, so that the process guard starts before numpy and onnxruntime."""
