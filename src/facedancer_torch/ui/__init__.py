"""Web UI (gradio): ``facedancer ui``. See :mod:`facedancer_torch.ui.app`.

gradio is an optional dependency (``pip install 'facedancer-torch[ui]'``); importing this package
does not import it.
"""

from __future__ import annotations

__all__ = ["build_app", "launch_app", "available_models", "ModelChoice"]


def __getattr__(name: str):
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
