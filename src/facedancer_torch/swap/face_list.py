"""The faces of one picture as a swap sees them, numbered from the left as ``PHOTO@N`` counts
them, each with what a swap leaves alone and why: the ``facedancer faces`` command, and the
captions of the web UI's people picker.

A user naming a face (``--source group.jpg@3``, ``--reference frame.png@2``) has to count faces
the way the command does (box centres, left to right), and may pick one the swap never touches
(under the minimum size, a profile, cut by the edge). This module applies the same rules as the
swap itself (``swap/select.py``) to one picture, so what it says is what a swap does: for a
still, what ``swap`` does to it; for a video frame, what the video rules do once the tracker
has confirmed the face (a face first seen in the frame is swapped from its
``--confirm-frames``-th detection).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..faces import masks
from .options import SwapOptions
from .select import face_extent, min_face_pixels, split_cut, trust_mirrored
from .source import left_to_right


@dataclass(frozen=True)
class ListedFace:
    """One face of a picture.

    Attributes:
        number: its place from the left (box centres), as ``PICTURE@N`` counts.
        box: ``(x0, y0, x1, y1)`` in pixels.
        size: the larger side of the box in pixels (what ``--min-face-size`` measures).
        score: the detector's confidence.
        rotation: the turn (degrees) at which the detector read it.
        left: why a swap leaves it as it is, or None when it would be swapped (given a
            source, and a ``--reference``/``--map`` that selects it).
        option: the ``swap`` option that changes ``left`` (None with it).
        weight: how much of the swap a turned face gets (``faces/masks.pose_weight``: 1 for
            a face turned less than the fade's start, 0 for a profile; 1 without the fade).
        distance: with a ``--reference`` person, this face's identity distance to them
            (:func:`with_reference`), else None.
        chosen: with a ``--reference`` person, whether this is the face ``--reference``
            swaps in this picture (the nearest within the threshold of those a swap takes).
    """

    number: int
    box: tuple[float, float, float, float]
    size: float
    score: float
    rotation: int
    left: str | None = None
    option: str | None = None
    weight: float = 1.0
    distance: float | None = None
    chosen: bool = False
    landmarks: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {"number": self.number, "box": [round(v, 1) for v in self.box],
                "size": round(self.size, 1), "score": round(self.score, 4),
                "rotation": self.rotation, "swapped": self.left is None, "left": self.left,
                "option": self.option, "weight": round(self.weight, 3),
                "distance": None if self.distance is None else round(self.distance, 4),
                "reference": self.chosen}


def list_faces(detector, rgb: np.ndarray, options: SwapOptions | None = None,
               video: bool = False) -> list[ListedFace]:
    """The faces ``detector`` finds in ``rgb`` (``(H, W, 3)`` uint8), left to right, with the
    swap's rules of a still (``video`` False) or of a video frame applied."""
    options = options or SwapOptions()
    detected = left_to_right(detector.detect(np.ascontiguousarray(rgb)))
    smallest = min_face_pixels(rgb.shape, options, video)
    reasons: dict[int, tuple[str, str]] = {}
    weights = {number: float(masks.pose_weight(face.landmarks)) if options.profile_fade
               else 1.0 for number, face in enumerate(detected, 1)}
    large = []
    for number, face in enumerate(detected, 1):
        if face_extent(face.box) < smallest:
            reasons[number] = (f"smaller than the {'video ' if video else ''}minimum face "
                               f"size of {smallest:.0f} px", "--min-face-size")
        else:
            large.append((number, face))
    if large:
        faces = [face for _, face in large]
        if not video:  # a still reads a doubtful cut face again mirrored (swap_image_detailed)
            faces = trust_mirrored(detector, rgb, faces, options)
        _, cut = split_cut(faces, rgb.shape, options)
        cut_ids = {id(face) for face in cut}
        for (number, _), face in zip(large, faces):
            if id(face) in cut_ids:
                reasons[number] = ("cut too deeply by the picture's edge", "--no-cut-fade")
            elif weights[number] <= 0.0:
                reasons[number] = ("turned to a profile", "--no-profile-fade")
    return [ListedFace(number, tuple(float(v) for v in face.box), face_extent(face.box),
                       float(face.score), int(getattr(face, "rotation", 0)) % 360,
                       *reasons.get(number, (None, None)), weight=weights[number],
                       landmarks=np.asarray(face.landmarks, np.float32))
            for number, face in enumerate(detected, 1)]


def with_reference(swapper, rgb: np.ndarray, faces: list[ListedFace], plan
                   ) -> list[ListedFace]:
    """``faces`` (:func:`list_faces` of ``rgb``) with each one's identity distance to the
    ``--reference`` person of ``plan`` (``Swapper.plan``), and the face a swap with that
    reference takes marked ``chosen``: the selection's own rule (``SelectionPlan.choose``)
    among the faces a swap does not leave alone. In a video the decision is a track's (its
    first views averaged), so one frame's distances can differ from it a little."""
    if plan.reference is None or not faces:
        return faces
    swapped = [face for face in faces if face.left is None]
    units = swapper.identify(rgb, [face.landmarks for face in faces])
    # 1 - cos of unit vectors is never below 0; rounding can make the reference's own face
    # -1e-8 apart from itself, which prints as "-0.00".
    distances = np.maximum(1.0 - units @ plan.reference.unit, 0.0)
    chosen = set()
    if swapped:
        picked = plan.choose([1.0] * len(swapped),
                             np.stack([units[face.number - 1] for face in swapped]))
        chosen = {swapped[index].number for index, _ in picked}
    return [dataclasses.replace(face, distance=float(distances[face.number - 1]),
                                chosen=face.number in chosen) for face in faces]


# Box colours of the annotated picture (RGB): a face a swap takes, and one it leaves.
SWAPPED_COLOUR: tuple[int, int, int] = (40, 220, 60)
LEFT_COLOUR: tuple[int, int, int] = (150, 150, 150)


def draw_faces(rgb: np.ndarray, faces: list[ListedFace]) -> np.ndarray:
    """A copy of ``rgb`` with each face's box and number drawn (green: swapped, grey: left as
    it is); line and lettering scale with the picture."""
    out = np.ascontiguousarray(rgb).copy()
    height, width = out.shape[:2]
    thickness = max(1, round(min(height, width) / 400))
    scale = max(0.5, min(height, width) / 900)
    for face in faces:
        colour = SWAPPED_COLOUR if face.left is None else LEFT_COLOUR
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        label = f"@{face.number}"
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y0 - h - base - 2 * thickness
        top = top if top >= 0 else min(y1 + thickness, height - h - base)  # below when no room
        cv2.rectangle(out, (x0, top), (x0 + w + 2 * thickness, top + h + base + thickness),
                      colour, -1)
        cv2.putText(out, label, (x0 + thickness, top + h + thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return out
