"""Head-pose error between a swap and its target (docs/reference.md §8, "Pose").

The paper compares HopeNet yaw/pitch/roll of swap and target (L2 of the angles). HopeNet's
weights cannot ship here, so the head rotation is recovered geometrically instead: the 68 dlib
landmarks of 11 rigid points (eye corners, nose, mouth corners) are fitted with
``cv2.solvePnP`` to a generic 3D face (:data:`GENERIC_FACE_3D`), and two rotations are
compared by their **geodesic angle** ``arccos((trace(R1^T R2) - 1) / 2)`` in degrees: the
angle of the single rotation that takes one head pose to the other. Unlike a difference of
Euler angles it has no gimbal lock and no 180-degree wrap-around (raw Euler angles from
``decomposeProjectionMatrix`` flip sign on some faces of the project photos).

The camera is a pinhole with focal length = image width, principal point at the centre, no
distortion; the solver starts from a frontal pose in front of the camera, which keeps it out
of the mirrored solution behind the camera. Absolute angles from a generic model are only
approximate; the error of a swap is a *difference* of two poses measured the same way, so
most of the model's bias cancels.
"""

from __future__ import annotations

import cv2
import numpy as np

# A generic adult face in millimetres, in the camera's axes for a frontal face: x to the
# image right, y down, z away from the camera (so the nose tip is nearest, z = 0). Own
# rounding of average adult anthropometry (Farkas): outer eye corners 90 mm apart, inner
# 32 mm, mouth 50 mm wide, nose tip 33 mm below the eye line and 25-40 mm in front of the eye
# corners. Points that move with expression (jaw, chin, brows, lips) are left out so that an
# open mouth does not read as a head tilt. Keys are iBUG-68 indices.
GENERIC_FACE_3D: dict[int, tuple[float, float, float]] = {
    27: (0.0, -6.0, 18.0),     # nasion (top of the nose bridge)
    30: (0.0, 33.0, 0.0),      # nose tip (pronasale)
    31: (-14.0, 41.0, 16.0),   # image-left nostril wing
    33: (0.0, 44.0, 14.0),     # subnasale
    35: (14.0, 41.0, 16.0),    # image-right nostril wing
    36: (-45.0, 0.0, 40.0),    # outer corner, image-left eye
    39: (-16.0, 0.0, 25.0),    # inner corner, image-left eye
    42: (16.0, 0.0, 25.0),     # inner corner, image-right eye
    45: (45.0, 0.0, 40.0),     # outer corner, image-right eye
    48: (-25.0, 66.0, 35.0),   # image-left mouth corner
    54: (25.0, 66.0, 35.0),    # image-right mouth corner
}
_INDICES = np.array(sorted(GENERIC_FACE_3D), dtype=np.int64)
_MODEL = np.array([GENERIC_FACE_3D[i] for i in _INDICES], dtype=np.float64)
_OUTER_EYE_MM = 90.0


def head_rotation(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Head rotation (3, 3) from 68 landmarks in an image of ``(height, width)`` pixels.

    The matrix maps the generic face's axes (:data:`GENERIC_FACE_3D`) to camera axes (x right,
    y down, z forward); the identity is a frontal face looking into the camera.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {landmarks.shape}")
    height, width = image_size
    focal = float(width)
    camera = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    points = landmarks[_INDICES]
    # Start frontal, at the distance where the outer eye corners are as far apart as observed.
    eye_px = max(float(np.linalg.norm(landmarks[45] - landmarks[36])), 1.0)
    centre = points.mean(axis=0)
    depth = focal * _OUTER_EYE_MM / eye_px
    tvec = np.array([[(centre[0] - width / 2.0) * depth / focal],
                     [(centre[1] - height / 2.0) * depth / focal], [depth]])
    tvec -= _MODEL.mean(axis=0)[:, None]
    rvec = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(_MODEL, points, camera, None, rvec=rvec, tvec=tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:  # pragma: no cover - the iterative solver with a guess does not fail on 11 points
        raise RuntimeError("solvePnP failed")
    rotation, _ = cv2.Rodrigues(rvec)
    return rotation


def geodesic_angle_deg(rotation_a: np.ndarray, rotation_b: np.ndarray) -> float:
    """Angle in degrees of the rotation taking ``rotation_a`` to ``rotation_b`` (0..180)."""
    relative = np.asarray(rotation_a, dtype=np.float64).T @ np.asarray(rotation_b, np.float64)
    cosine = (np.trace(relative) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def pose_error_deg(landmarks_a: np.ndarray, landmarks_b: np.ndarray,
                   image_size: tuple[int, int]) -> float:
    """Geodesic head-pose difference (degrees) of two faces in images of the same size."""
    return geodesic_angle_deg(head_rotation(landmarks_a, image_size),
                              head_rotation(landmarks_b, image_size))


def euler_angles_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a :func:`head_rotation`, for display only.

    yaw turns about the camera's y axis (positive: the face turns towards the image right),
    pitch about x (positive: chin down), roll about z (positive: clockwise in the image).
    Comparisons use :func:`geodesic_angle_deg`, never differences of these.
    """
    r = np.asarray(rotation, dtype=np.float64)
    # R = Ry(yaw) @ Rx(pitch) @ Rz(roll): a common convention for head pose with y down.
    pitch = np.degrees(np.arcsin(np.clip(-r[1, 2], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(r[0, 2], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[1, 1]))
    return float(yaw), float(pitch), float(roll)
