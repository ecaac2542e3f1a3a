"""``facedancer live``: swap faces in a camera or a stream as it plays (swap/live.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from ..errors import FacedancerError
from .swap import _one_line_warnings

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

EXAMPLES = """Examples:

facedancer live -s me.jpg --camera 0 --window

facedancer live -s me.jpg --camera 0 --virtual-camera

facedancer live -s me.jpg --input clip.mp4 --output live.mp4

facedancer live -s me.jpg --input rtsp://192.168.1.20/stream --window --output rec.mp4
"""


def register(app: typer.Typer) -> None:
    @app.command("live", help="Swap faces live: a camera, video file or stream in; a window, "
                 "a file or a virtual camera out.\n\n"
                 "Shows frames/s and the latency from capture to output; Ctrl-C or SIGTERM "
                 "stops and finalises the output file. Every frame carries a visible "
                 "'synthetic media' label (--no-label removes it), files and virtual cameras "
                 "also the invisible watermark, and a file the provenance tag. Only swap faces "
                 "of people who consented, and tell the people you show it to.\n\n" + EXAMPLES)
    def live(
        source: list[Path] = typer.Option(
            ..., "--source", "-s", help="Photo of the face to put in (repeat for several "
            "photos of one person)."),
        camera: int = typer.Option(None, "--camera", "-c", help="Camera index (0 = the first "
                                   "webcam)."),
        input_: str = typer.Option(None, "--input", "-i", help="A video file (played at its "
                                   "frame rate, like a camera) or a stream URL instead of a "
                                   "camera."),
        output: Path = typer.Option(None, "--output", "-o", help="Record the swapped stream "
                                    "into this video file (.mp4/.mkv/.mov/.webm)."),
        window: bool = typer.Option(False, "--window", "-w", help="Show the swapped stream "
                                    "in a window (q or Esc stops)."),
        virtual_camera: bool = typer.Option(False, "--virtual-camera", help="Send the "
                                            "swapped stream to a virtual camera (needs "
                                            "pyvirtualcam and a virtual camera device)."),
        virtual_device: str = typer.Option(None, "--virtual-device", help="Virtual camera "
                                           "device (e.g. /dev/video10; default: the first)."),
        model: str = typer.Option(None, "--model", "-m", help="Model directory or catalogue "
                                  "name (default: the embedded demo model)."),
        faces: str = typer.Option("all", "--faces", help="'all' or 'largest' face per frame."),
        detect_every: int = typer.Option(10, "--detect-every", help="Look for new faces in "
                                         "the whole frame every N frames; known faces are "
                                         "followed in a small crop every frame (1 = whole "
                                         "frame every frame: slowest)."),
        width: int = typer.Option(640, "--width", help="Camera capture width."),
        height: int = typer.Option(480, "--height", help="Camera capture height."),
        every_frame: bool = typer.Option(False, "--every-frame", help="With --input FILE: "
                                         "swap every frame as fast as possible instead of "
                                         "playing in real time and dropping late frames."),
        max_frames: int = typer.Option(None, "--max-frames", help="Stop after this many "
                                       "input frames."),
        mask: str = typer.Option("box", "--mask", help="Blend mask parts as in `facedancer "
                                 "swap --mask` (default: the soft box only, the cheapest)."),
        color_match: str = typer.Option("none", "--color-match", help="Colour matching as "
                                        "in `facedancer swap` (default: none, the cheapest)."),
        mask_blur: float = typer.Option(None, "--mask-blur", help="Mask blur sigma in pixels "
                                        "of a 256 crop (default 7)."),
        no_exposure_gain: bool = typer.Option(False, "--no-exposure-gain", help="Give the "
                                              "model dark faces and faces under coloured "
                                              "light as they are (by default such a face is "
                                              "brightened or white-balanced for the model and "
                                              "its swap given the light back)."),
        threads: int = typer.Option(None, "--threads", help="CPU cores to plan threads for "
                                    "(default: all this process may use)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        backend: str = typer.Option("auto", "--backend", help="Generator runtime: auto (CUDA "
                                    "fp16; CPU: ONNX Runtime, the fastest for one face at a "
                                    "time), fused, bf16, eager, onnxruntime, fp16."),
        crf: int = typer.Option(20, "--crf", help="H.264 quality of --output."),
        preset: str = typer.Option("veryfast", "--preset", help="H.264 speed preset of "
                                   "--output (a slow one costs frames/s)."),
        no_label: bool = typer.Option(False, "--no-label", help="No visible label in the "
                                      "frames (the watermark and file tag stay)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing "
                                       "--output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No status line."),
    ) -> None:
        if (camera is None) == (input_ is None):
            raise FacedancerError("give one input: --camera N or --input FILE|URL")
        if not (output or window or virtual_camera):
            raise FacedancerError("give at least one output: --window, --output FILE or "
                                  "--virtual-camera")
        run_live_command(
            sources=list(source), camera=camera, input_=input_, output=output, window=window,
            virtual_camera=virtual_camera, virtual_device=virtual_device, model=model,
            faces=faces, detect_every=detect_every, width=width, height=height,
            every_frame=every_frame, max_frames=max_frames, mask=mask,
            color_match=color_match, mask_blur=mask_blur, exposure=not no_exposure_gain,
            threads=threads, device=device, backend=backend, crf=crf, preset=preset,
            label=not no_label, overwrite=overwrite, quiet=quiet)


def run_live_command(*, sources: list[Path], camera: int | None, input_: str | None,
                     output: Path | None, window: bool, virtual_camera: bool,
                     virtual_device: str | None, model: str | None, faces: str,
                     detect_every: int, width: int, height: int, every_frame: bool,
                     max_frames: int | None, mask: str, color_match: str,
                     mask_blur: float | None, threads: int | None,
                     exposure: bool = True,
                     device: str, backend: str, crf: int, preset: str, label: bool,
                     overwrite: bool, quiet: bool) -> None:
    """Open the input and outputs (cheap checks first), load the model, run the loop."""
    from ..swap import live as live_mod
    from ..swap.pipeline import Swapper, check_output
    from ..swap.threads import apply_thread_budget, plan_threads
    from ..swap.video import check_video_output

    options = live_mod.live_options(faces=faces, mask=mask, color_match=color_match,
                                    mask_blur=mask_blur, crf=crf, preset=preset,
                                    overwrite=overwrite, exposure=exposure)
    # --every-frame: nothing is dropped, so nothing is gained by detecting in the background;
    # inline, every frame is swapped from the first one on (and the result is reproducible)
    settings = live_mod.LiveSettings(detect_every=detect_every,
                                     background=camera is not None or not every_frame)
    if output is not None:  # before anything slow
        check_output(output, overwrite)
        check_video_output(output, frames=False)
    window_out = live_mod.WindowOutput() if window else None
    outputs: list = []
    source = None
    status = None
    try:
        if camera is not None:
            source = live_mod.open_camera(camera, width, height, max_frames=max_frames)
        else:
            source = live_mod.open_input(input_, realtime=not every_frame,
                                         max_frames=max_frames)
        if virtual_camera:  # a missing device fails before the model loads
            outputs.append(live_mod.VirtualCameraOutput(source.width, source.height,
                                                        source.fps, virtual_device))
        if backend == "auto":
            backend = _live_backend(device)
        with _one_line_warnings():
            swapper = Swapper(model, device=device, backend=backend)
        plan = swapper.plan(list(sources), options)
        with apply_thread_budget(swapper, plan_threads(threads)) as budget:
            if output is not None:
                outputs.append(live_mod.FileOutput(
                    output, source.fps, swapper.provenance(plan, mode="live"), crf=crf,
                    preset=preset, overwrite=overwrite))
            live = live_mod.LiveSwapper(swapper, plan, options, settings, fps=source.fps,
                                        label=label)
            targets = [o.name for o in outputs] + (["window"] if window_out else [])
            typer.echo(f"live: {source.name} ({source.width}x{source.height}) -> "
                       f"{', '.join(targets)}; generator {swapper.runner.backend}, "
                       f"{budget.describe()}; Ctrl-C to stop", err=True)
            status = None if quiet else _status_printer()
            stats = live_mod.run_live(live, source, outputs, window=window_out, status=status)
    except BaseException:
        if source is not None:
            source.close()
        for out in outputs:  # the loop did not start or failed: nothing half-written stays
            out.abort()
        if window_out is not None:
            window_out.close()
        raise
    if status is not None and sys.stderr.isatty():
        typer.echo("", err=True)
    typer.echo(f"live: {stats.summary()}", err=True)
    if output is not None:
        typer.echo(str(output))


def _live_backend(device: str) -> str:
    """``auto`` for live: ONNX Runtime on a CPU (one face per call, one thread: measured
    1.4-3.2x faster than bf16 and 2x faster than fused for the demo model, docs/live.md), the
    runtime's own choice elsewhere."""
    from ..device import resolve_device
    from ..models.runtime import onnx_available

    if resolve_device(device).type != "cpu" or not onnx_available():
        return "auto"
    return "onnxruntime"


def _status_printer():
    """One status line, rewritten in place on a terminal, else printed every 10 s."""
    tty = sys.stderr.isatty()
    last = [0.0]

    def status(text: str) -> None:
        if tty:
            sys.stderr.write(f"\rlive: {text}   ")
            sys.stderr.flush()
        elif time.perf_counter() - last[0] >= 10:
            last[0] = time.perf_counter()
            print(f"live: {text}", file=sys.stderr, flush=True)

    return status
