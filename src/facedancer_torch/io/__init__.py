"""Input and output: images, videos (PyAV), atomic writes, provenance."""
