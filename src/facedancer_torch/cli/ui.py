"""``facedancer ui``: the web UI (gradio) for image and video swaps, on localhost by default."""

from __future__ import annotations

import os

import typer

from ..errors import FacedancerError

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

EXAMPLES = """Examples:

facedancer ui

facedancer ui --model models/my-run --port 8080

facedancer ui -m facedancer-c-hq -m models/my-run --max-upload-mb 200

facedancer ui -m facedancer-c-hq --detector models/retinaface_r50
"""


def register(app: typer.Typer) -> None:
    @app.command("ui", help="Start the web UI: swap faces in images and videos in a browser.\n\n"
                 "Listens on 127.0.0.1 (this machine only) unless --host says otherwise. With "
                 "FACEDANCER_UI_PASSWORD set, the page asks for user 'facedancer' and that "
                 "password; a non-loopback --host without it prints a warning. Results are "
                 "deleted an hour after they are made. Needs the 'ui' extra "
                 "(pip install 'facedancer-torch[ui]'). Every result carries the provenance tag "
                 "and the invisible watermark.\n\n" + EXAMPLES)
    def ui(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on "
                                 "(0.0.0.0 = every interface: anyone on the network can use it)."),
        port: int = typer.Option(7860, "--port", help="Port to listen on."),
        model: list[str] = typer.Option(
            None, "--model", "-m", help="Model directory or catalogue name to offer (repeat "
            "for several; default: every installed generator, the embedded demo model first)."),
        detector: list[str] = typer.Option(
            None, "--detector", help="Converted RetinaFace-Res50 folder or catalogue name to "
            "offer as face detector, selected at start (repeat for several; always offered: "
            "'retinaface', the embedded detector, and every converted detector in the store)."),
        max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", help="Largest upload "
                                            "accepted, in MB (larger ones are refused)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        backend: str = typer.Option("auto", "--backend", help="Generator runtime: auto "
                                    "(CUDA fp16; CPU bf16 where native, else ONNX Runtime "
                                    "or fused), fused, bf16, eager, onnxruntime, fp16."),
    ) -> None:
        serve_ui(host=host, port=port, models=list(model or []), max_upload_mb=max_upload_mb,
                 device=device, backend=backend, detectors=list(detector or []))


def serve_ui(host: str, port: int, models: list[str], max_upload_mb: float,
             device: str = "auto", backend: str = "auto",
             detectors: list[str] | None = None) -> None:
    """Build and serve the app (blocks until Ctrl-C); user errors are FacedancerError."""
    try:
        from ..ui.app import available_detectors, available_models, build_app, launch_app
    except ImportError as exc:
        raise FacedancerError(f"the web UI needs gradio ({exc.name or exc} is missing): "
                              "pip install 'facedancer-torch[ui]'") from exc
    from ..device import resolve_device
    from ..models.store import resolve_model
    from ..swap.pipeline import Swapper, detector_location

    resolved = resolve_device(device)  # fail before the server starts
    for model in models:
        resolve_model(model)  # a wrong --model is a one-line error now, not at the first swap
    detectors = list(detectors or [])
    for detector in detectors:
        detector_location(detector)  # likewise a --detector that is missing or no detector

    def factory(model: str, detector: str) -> Swapper:
        return Swapper(model, device=resolved, backend=backend, detector=detector)

    choices = available_models(models) if models else available_models()
    app = build_app(factory, choices, detectors=available_detectors(detectors))

    from ..ui.app import PASSWORD_ENV

    launch_app(app, host=host, port=port, max_upload_mb=max_upload_mb, block=True,
               password=os.environ.get(PASSWORD_ENV) or None)
