"""Expression error between a swap and its target (docs/reference.md §8, "Expression").

The paper takes the L2 distance of an expression embedding from a 3D face-reconstruction
network whose weights cannot ship here. The substitute is a geometric embedding built from the
68 dlib landmarks:

1. keep the 42 points that carry expression: brows (17-26), eyes (36-47) and mouth (48-67);
   the jaw line (pose, face shape) and the nose (rigid) are left out;
2. remove the in-plane pose: translate the points' centroid to the origin, rotate so that the
   line between the two eye centres is horizontal, and scale so that the eye centres are one
   unit apart (inter-ocular distance, IOD);
3. the embedding is the flattened (84,) result; the error between two faces is the root mean
   square distance of corresponding points, in **percent of the IOD**.

What it does and does not measure: in-plane rotation, scale and position of the face do not
change it (exactly); mouth opening, smiles, eye closure and brow raises do. Out-of-plane head
rotation foreshortens the points and so also moves it a little (the pose error reports that
separately), and so do differences of face *shape* between people (eye size, mouth width):
a perfect swap that also transfers the source's face shape scores above 0. The evaluation
therefore also reports the same distance between target and source as a baseline.
"""

from __future__ import annotations

import numpy as np

EXPRESSION_POINTS: np.ndarray = np.r_[17:27, 36:68]
_LEFT_EYE = np.r_[36:42]
_RIGHT_EYE = np.r_[42:48]


def expression_embedding(landmarks: np.ndarray) -> np.ndarray:
    """The (84,) pose-normalised expression embedding of 68 landmarks (see module doc)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {landmarks.shape}")
    eye_vector = landmarks[_RIGHT_EYE].mean(axis=0) - landmarks[_LEFT_EYE].mean(axis=0)
    iod = float(np.linalg.norm(eye_vector))
    if iod < 1e-6:
        raise ValueError("degenerate landmarks: both eye centres coincide")
    cos, sin = eye_vector / iod
    # Rotate by minus the eye-line angle: the eye line becomes the +x axis.
    rotation = np.array([[cos, sin], [-sin, cos]])
    points = landmarks[EXPRESSION_POINTS]
    points = (points - points.mean(axis=0)) @ rotation.T / iod
    return points.reshape(-1)


def expression_distance(embedding_a: np.ndarray, embedding_b: np.ndarray) -> float:
    """RMS point distance of two :func:`expression_embedding` vectors, in percent of the IOD."""
    a = np.asarray(embedding_a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(embedding_b, dtype=np.float64).reshape(-1, 2)
    return float(100.0 * np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))


def expression_error(landmarks_a: np.ndarray, landmarks_b: np.ndarray) -> float:
    """Expression error (percent of IOD) between two faces given their 68 landmarks."""
    return expression_distance(expression_embedding(landmarks_a), expression_embedding(landmarks_b))
