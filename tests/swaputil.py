"""Helpers for the swap tests: a randomly initialised tiny generator saved to a directory, and
a compositing pass compared on and off on one face.

Until a trained model ships, the swap pipeline is tested with a tiny random generator: it does
not produce a likeness, but it changes every pixel of the crops it is given, which is what the
tests check (where pixels change, what is kept, what the files look like).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

TINY_SIZE = 64  # generator crop side: small so that tests stay fast


def save_tiny_generator(directory: Path, identity_encoder: str = "facenet", seed: int = 0) -> Path:
    """Build a tiny random generator (64 px crops, 512-d identities), save it to ``directory``."""
    import torch

    from facedancer_torch.models.generator import build_generator

    torch.manual_seed(seed)
    generator = build_generator(image_size=TINY_SIZE, encoder_widths=(4, 8, 8, 8, 8, 8, 8),
                                mapping_depth=1, mapping_width=16, z_dim=512,
                                identity_encoder=identity_encoder)
    generator.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread, restoring the setting after.

    Tests check results, not speed; on a shared, busy 2-core machine OpenMP threads spinning
    against each other make tiny models 10-50x slower than one thread.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m facedancer_torch ARGS`` in a subprocess (text output captured); it inherits
    the run's ONNX cache in tmp (conftest ``_session_cache``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see single_thread()
    return subprocess.run([sys.executable, "-m", "facedancer_torch", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def warped_masks_union(shape: tuple[int, int], faces, mask: np.ndarray) -> np.ndarray:
    """Where pasting ``faces`` (``SwappedFace`` with ``.matrix``) may change pixels.

    ``(H, W)`` bool: the crop-space ``mask`` warped into the frame by each face's inverse
    transform, bilinear, any weight above 0, grown by one pixel for bilinear reach.
    """
    import cv2

    from facedancer_torch.faces.align import invert_affine

    union = np.zeros(shape, dtype=bool)
    for face in faces:
        warped = cv2.warpAffine(mask.astype(np.float32), invert_affine(face.matrix),
                                (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        union |= warped > 0
    return cv2.dilate(union.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def with_and_without(swapper, image: np.ndarray, source, turn_off, crop: int) -> dict:
    """``image``'s largest face swapped to ``source`` once and composited twice from the same
    generated crop: as configured ("after") and once ``turn_off()`` has switched a pass off
    ("before"). Returns the two frames (``"frames"``: before, after), the target's and the
    two outputs' crops at ``crop`` px (``"crops"``: target, before, after) and the target's
    68 points on them (``"points"``)."""
    import cv2

    from facedancer_torch.swap.compose import scale_affine
    from facedancer_torch.swap.options import SwapOptions

    plan = swapper.plan([source])
    jobs = swapper.jobs_for(image, swapper.detect(image), plan)
    job = max(jobs, key=lambda j: (j.box[2] - j.box[0]) * (j.box[3] - j.box[1]))
    swapped = swapper.swap_jobs([(image, [job])], SwapOptions())
    after = swapper.compositor.composite(image, [job], swapped, SwapOptions())
    turn_off()
    before = swapper.compositor.composite(image, [job], swapped, SwapOptions())
    size = job.crop.shape[0]
    matrix = scale_affine(job.matrix, crop / size)
    crops = {name: cv2.warpAffine(picture, matrix, (crop, crop), flags=cv2.INTER_AREA)
             for name, picture in (("target", image), ("before", before), ("after", after))}
    points = (swapper.compositor.landmarks68().on_crop(job.crop) + 0.5) * (crop / size) - 0.5
    return {"frames": (before, after), "crops": crops, "points": points, "size": size}
