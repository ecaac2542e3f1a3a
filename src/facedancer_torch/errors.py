"""Errors a user can cause and fix: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from pathlib import Path


class FacedancerError(Exception):
    """A user-facing error (bad input file, missing model, bad option).

    The message is one line that names the file (when there is one) and the problem.
    The CLI prints ``error: <message>`` and exits with code 2; no traceback.
    """

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        text = " ".join(str(message).split())  # one line, always
        super().__init__(f"{self.path}: {text}" if self.path is not None else text)


class InputError(FacedancerError):
    """An input file cannot be read, decoded or used (unreadable, truncated, no face...)."""


class ModelError(FacedancerError):
    """A model directory or weight file is missing, incomplete or does not match its config."""
