"""Keras .h5 -> safetensors converters (h5py only, no TensorFlow)."""
