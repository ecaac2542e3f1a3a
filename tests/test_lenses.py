"""A target's dark sunglasses stay: the lens pass (swap/compose.py ``LENS``, faces/lenses.py)
keeps the target over lenses the face segmenter calls face, and leaves open eyes alone."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after  # noqa: E402
from test_compose import SOURCE, _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces import lenses, masks  # noqa: E402
from facedancer_torch.faces.color import to_lab  # noqa: E402


def _read(path: Path) -> np.ndarray:
    from facedancer_torch.io.images import read_image

    return read_image(path)


@pytest.fixture(scope="module")
def face_and_points(photos_dir):
    """df_img1.jpg's face aligned at 256 px and dlib's 68 points on it."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.landmarks68 import get_landmarks68

    image = _read(photos_dir / "df_img1.jpg")
    face = largest_face(get_detector(device="cpu").detect(image))
    crop, _ = align_face(image, face.landmarks, 256)
    return crop, get_landmarks68().on_crop(crop)


def _with_lenses(crop: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``crop`` with a black oval lens over each eye (1.6 eye widths across, one tall), and
    the lenses' mask."""
    painted = crop.copy()
    lens = np.zeros(crop.shape[:2], np.uint8)
    for outline in (points[36:42], points[42:48]):
        width = float(np.ptp(outline[:, 0]))
        centre = tuple(int(round(v)) for v in outline.mean(axis=0))
        cv2.ellipse(lens, centre, (int(0.8 * width), int(0.5 * width)), 0, 0, 360, 1, -1)
    painted[lens > 0] = (12, 12, 14)
    return painted, lens > 0


def test_lens_gaps_tell_a_dark_lens_from_an_open_eye(face_and_points):
    """An open eye shows its white and has lit skin under it: both gaps far under the gate;
    a black lens over each eye: both far over it. The zone holds the lenses and stops short
    of the cheeks and the forehead."""
    from facedancer_torch.swap import compose

    crop, points = face_and_points
    open_gaps = lenses.lens_gaps(crop, points, compose.LENS_UNDER)
    assert np.all(open_gaps < compose.LENS_GATE[0] - 5.0), open_gaps
    painted, lens = _with_lenses(crop, points)
    gaps = lenses.lens_gaps(painted, points, compose.LENS_UNDER)
    assert np.all(gaps > compose.LENS_GATE[1] + 10.0), gaps
    zone = lenses.lens_zone(painted, points, compose.LENS_REACH, compose.LENS_DARK)
    assert float(zone[lens].mean()) > 0.95, float(zone[lens].mean())
    far = ~masks.eye_zone(points, 256, grow=compose.LENS_REACH + 0.2)
    assert float(zone[far].max()) < 0.05, float(zone[far].max())


def test_dark_sunglasses_stay(demo, lfw_dir, monkeypatch):
    """LFW's Janice Goldfinger and Fernando Vargas (black lenses) with the astronaut, looked at
    in session 45: the segmenter calls their lenses face and the generator painted an eye
    inside a grey, see-through lens (the eyes' zone 16.9 and 11.9 L* lighter than the photo's
    without the pass). With it the lenses are the photo's (within 0.1 L*), and the face below
    the nose, whose colour fit the black lenses had pulled 3.7 and 2.8 L* darker than the
    photo, lies within 0.2 of it."""
    for stem, face in (("Janice_Goldfinger_0001", None), ("Fernando_Vargas_0003", 1)):
        path = lfw_dir / "images" / stem.rsplit("_", 1)[0] / f"{stem}.jpg"
        run = _before_and_after(demo, _read(path), SOURCE, monkeypatch, {"LENS": 0.0},
                                face=face)
        monkeypatch.undo()
        light = {key: to_lab(crop)[..., 0] for key, crop in run["crops"].items()}
        eyes = masks.eye_zone(run["points"], WORK, grow=0.5)
        gap = {key: float(np.mean(light[key][eyes] - light["target"][eyes]))
               for key in ("before", "after")}
        assert gap["before"] > 8.0, (stem, gap)  # 16.9, 11.9
        assert abs(gap["after"]) < 2.0, (stem, gap)  # 0.0, 0.05
        # Below the nose the colour fit moves the face, its statistics now without the black
        # lenses (which had pulled the swap's lightness down): there it lies closer to the
        # photo's lightness than before.
        below = np.zeros((WORK, WORK), bool)
        below[int(run["points"][33, 1]) + 4:] = True
        below &= masks.hull_mask(run["points"], WORK) > 0.5
        off = {key: float(np.mean(light[key][below] - light["target"][below]))
               for key in ("before", "after")}
        assert abs(off["after"]) < abs(off["before"]), (stem, off)


def test_open_eyes_are_left_alone(demo, photos_dir, monkeypatch):
    """Faces without sunglasses (df_img1.jpg, fr_obama.jpg with the astronaut): the gate stays
    shut and the output is the same to the bit."""
    for name in ("df_img1.jpg", "fr_obama.jpg"):
        run = _before_and_after(demo, _read(photos_dir / name), SOURCE, monkeypatch,
                                {"LENS": 0.0})
        monkeypatch.undo()
        assert np.array_equal(run["crops"]["after"], run["crops"]["before"]), name
