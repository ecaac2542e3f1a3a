"""Thread budgets per pipeline stage, instead of every library taking every core.

A swap runs several stages at once (decode, detect, generate, watermark, encode), each in a
library with its own thread pool: torch/oneDNN, two ONNX Runtime sessions, OpenCV, FFmpeg. Left
alone, each sizes its pool to every core, so on a small CPU five pools of N threads fight over N
cores and the generator, the one stage that matters, runs several times slower than alone
(issue 18: 3x slower inside the video pipeline on 2 cores; a 2-thread generator call measured
20x slower than a 1-thread one while other jobs ran).

The rule here: every helper stage (face detection, OpenCV warps and colour conversions, video
decoding) gets one thread, since each runs in its own Python thread concurrently with the
generator; the generator gets the cores the helpers leave, at least one. On 2 cores that is one
thread everywhere; on 8, six for the generator.

    budget = plan_threads()                 # from the cores this process may use
    with apply_thread_budget(swapper, budget):
        ...                                 # torch, OpenCV, the detector, the generator limited

``apply_thread_budget`` rebuilds the detector's and (for ONNX Runtime) the generator's sessions,
since ONNX Runtime fixes a session's thread count when it is created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

# Stages besides the generator that run concurrently with it, each in its own Python thread
# with one library thread: the face detector, and decode + watermark/encode (FFmpeg releases
# the GIL, so they share a core well).
HELPER_STAGES: int = 2


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadBudget:
    """Intra-op threads per stage.

    Attributes:
        generator: torch threads (``fused``/``bf16``/``eager``) or ONNX Runtime intra-op
            threads (``onnxruntime``) of the generator.
        detector: ONNX Runtime intra-op threads of the face detector.
        opencv: ``cv2.setNumThreads`` (alignment warps, paste-back, resizes).
        decode: FFmpeg decoder threads (``VideoReader(threads=...)``; 0 = FFmpeg's choice).
        cores: the cores the budget was planned for.
    """

    generator: int
    detector: int = 1
    opencv: int = 1
    decode: int = 1
    cores: int = 0

    def describe(self) -> str:
        return (f"{self.cores} cores: generator {self.generator}, detector {self.detector}, "
                f"opencv {self.opencv}, decode {self.decode} thread(s)")


def plan_threads(cores: int | None = None) -> ThreadBudget:
    """The budget for ``cores`` (default: :func:`available_cores`): one thread per helper stage,
    the rest for the generator (at least one)."""
    cores = max(1, int(cores or available_cores()))
    return ThreadBudget(generator=max(1, cores - HELPER_STAGES), detector=1, opencv=1,
                        decode=1, cores=cores)


@contextlib.contextmanager
def apply_thread_budget(swapper, budget: ThreadBudget) -> Iterator[ThreadBudget]:
    """Limit torch, OpenCV, ``swapper``'s detector and generator to ``budget``; restore the
    torch and OpenCV settings (and the original sessions) on exit.

    ``swapper`` is a :class:`~facedancer_torch.swap.pipeline.Swapper`; its ``detector`` and
    ``runner`` are replaced for the duration (same model, same backend, fewer threads).
    """
    import cv2
    import torch

    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    detector_before, runner_before = swapper.detector, swapper.runner
    try:
        torch.set_num_threads(budget.generator)
        cv2.setNumThreads(budget.opencv)
        swapper.detector = limited_detector(swapper.detector, budget.detector)
        swapper.runner = limited_runner(swapper.runner, budget.generator)
        yield budget
    finally:
        swapper.detector, swapper.runner = detector_before, runner_before
        torch.set_num_threads(torch_before)
        cv2.setNumThreads(cv2_before)


def limited_detector(detector, threads: int):
    """The same RetinaFace detector (model, thresholds, device) with ``threads`` intra-op
    threads; other detectors are returned unchanged."""
    from ..faces.detect import RetinaFaceDetector

    if not isinstance(detector, RetinaFaceDetector):
        return detector
    # onnxruntime keeps what a session was built from (the embedded weights' bytes, or a path)
    session = detector.session
    model = getattr(session, "_model_bytes", None) or getattr(session, "_model_path", None)
    if model is None:
        return detector
    device = "cpu" if detector.providers == ["CPUExecutionProvider"] else "auto"
    settings = {name: getattr(detector, name) for name in (
        "config", "score_threshold", "nms_iou", "min_face_size", "max_side", "pre_nms_top_k",
        "refine_max_side", "rotate", "refine_by_level") if hasattr(detector, name)}
    limited = RetinaFaceDetector(model, name=detector.name, device=device, threads=threads,
                                 **settings)
    # What the embedded detector's refinement does cheaper (faces/detect.py), as set on this
    # one: without these the copy refined through the whole network from a 640 px first pass.
    for name in ("refine_max_crop", "first_pass"):
        if hasattr(detector, name):
            setattr(limited, name, getattr(detector, name))
    return limited


def limited_runner(runner, threads: int):
    """The same generator runner with ``threads`` intra-op threads: a new ONNX Runtime session
    for ``onnxruntime`` (the exported graph is cached, so this takes a second); torch backends
    share torch's global setting, already set by :func:`apply_thread_budget`."""
    if getattr(runner, "backend", None) != "onnxruntime":
        return runner
    from ..models.runtime import GeneratorRunner

    return GeneratorRunner(runner.model, backend="onnxruntime", device=runner.device,
                           threads=threads)
