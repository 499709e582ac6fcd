"""Keras 3 training of the notebook's Siamese model: pair files in, a run directory out."""
