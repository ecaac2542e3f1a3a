"""Web UI (gradio)."""
