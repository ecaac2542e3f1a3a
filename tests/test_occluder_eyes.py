"""Occluders found inside an eye alone (lid creases, eyeliner, a dark iris behind a lens), a
brow alone or the mouth alone (teeth, a nostril's shadow, a smile line) are not kept from the
target; what covers them and reaches beyond is (swap/compose.py, ``occluder_weight(...,
spare)``, ``spared_zone``; ``faces/masks.eye_zone``, ``brow_zone``, ``mouth_zone``)."""

from __future__ import annotations

import numpy as np
import pytest

from swaputil import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def _eye_landmarks(size: int = 128) -> np.ndarray:
    """68 points with the two eyes (36-41, 42-47) as 20 x 8 px hexagons at y = 50."""
    points = np.full((68, 2), size / 2, np.float32)
    for start, cx in ((36, 42.0), (42, 86.0)):
        points[start:start + 6] = [(cx - 10, 50), (cx - 5, 46), (cx + 5, 46), (cx + 10, 50),
                                   (cx + 5, 54), (cx - 5, 54)]
    return points


def test_an_occluder_inside_an_eye_alone_is_not_kept():
    from facedancer_torch.faces.masks import eye_zone
    from facedancer_torch.swap.compose import occluder_weight

    spare = eye_zone(_eye_landmarks(), 128)
    assert spare[50, 42] and spare[50, 86] and not spare[90, 64] and not spare[50, 64]
    probability = np.zeros((128, 128), np.float32)
    probability[46:49, 34:50] = 0.95   # eyeliner along the left eye's upper lid
    probability[40:60, 80:92] = 0.95   # a finger over the right eye, reaching down the cheek
    probability[60:100, 80:92] = 0.95
    plain = occluder_weight(probability)
    spared = occluder_weight(probability, spare)
    assert plain[47, 42] > 0.5 and spared[47, 42] < 0.05
    assert spared[50, 86] > 0.5 and spared[90, 86] > 0.5
    np.testing.assert_array_equal(spared[:, 70:], plain[:, 70:])


def test_the_iris_behind_a_lens_is_swapped_and_the_frame_kept(photos_dir):
    """df_img24: the segmenter calls the image-left iris behind the lens an occluder (its
    region lies inside the eye); the glasses frame reaches far beyond the eyes and stays."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.faces.masks import eye_zone
    from facedancer_torch.faces.occlusion import load_face_segmenter
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.compose import occluder_weight

    image = read_image(photos_dir / "df_img24.jpg")
    face = largest_face(get_detector(device="cpu", threads=1).detect(image))
    crop, _ = align_face(image, face.landmarks, 128)
    spare = eye_zone(get_landmarks68().on_crop(crop), 128)
    _, occluder = load_face_segmenter().predict(crop[None], mirror=True)
    plain = occluder_weight(occluder[0]) > 0.5
    spared = occluder_weight(occluder[0], spare) > 0.5
    assert plain[spare].sum() >= 20, int(plain[spare].sum())  # the iris is called an occluder
    assert spared[spare].sum() <= 0.8 * plain[spare].sum(), (int(plain[spare].sum()),
                                                             int(spared[spare].sum()))
    # The frame: hundreds of kept pixels outside the eyes, all of them still kept.
    outside = plain & ~spare
    assert outside.sum() > 500 and (spared & outside).sum() >= 0.98 * outside.sum()


def _brow_landmarks(size: int = 128) -> np.ndarray:
    """:func:`_eye_landmarks` with the two brows (17-21, 22-26) as arcs 14 px above the eyes."""
    points = _eye_landmarks(size)
    for start, cx in ((17, 42.0), (22, 86.0)):
        points[start:start + 5] = [(cx - 12, 38), (cx - 6, 35), (cx, 34), (cx + 6, 35),
                                   (cx + 12, 38)]
    return points


def test_an_occluder_inside_a_brow_alone_is_not_kept_and_a_fringe_over_it_is():
    from facedancer_torch.swap.compose import occluder_weight, spared_zone

    points = _brow_landmarks()
    spare = spared_zone(points, 128)
    assert spare[34, 42] and spare[35, 86] and spare[50, 42] and not spare[20, 42]
    probability = np.zeros((128, 128), np.float32)
    probability[33:37, 32:52] = 0.95   # the left brow, called an occluder
    probability[5:37, 78:94] = 0.95    # a fringe from the hairline down over the right brow
    plain = occluder_weight(probability)
    spared = occluder_weight(probability, spare)
    assert plain[35, 42] > 0.5 and spared[35, 42] < 0.05
    assert spared[35, 86] > 0.5 and spared[10, 86] > 0.5
    np.testing.assert_array_equal(spared[:, 70:], plain[:, 70:])


@pytest.mark.parametrize("name", ["df_img20.jpg", "df_img46.jpg"])
def test_a_brow_the_segmenter_calls_an_occluder_is_swapped(photos_dir, name):
    """The segmenter calls one of these two dark, sharply drawn brows an occluder; kept, that
    brow stayed the target's beside the swap's other one."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.faces.masks import brow_zone, eye_zone
    from facedancer_torch.faces.occlusion import load_face_segmenter
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.compose import occluder_weight, spared_zone

    image = read_image(photos_dir / name)
    face = largest_face(get_detector(device="cpu", threads=1).detect(image))
    crop, _ = align_face(image, face.landmarks, 128)
    points = get_landmarks68().on_crop(crop)
    brows = brow_zone(points, 128) > 0.5
    _, occluder = load_face_segmenter().predict(crop[None], mirror=True)
    eyes_only = occluder_weight(occluder[0], eye_zone(points, 128)) > 0.5
    spared = occluder_weight(occluder[0], spared_zone(points, 128)) > 0.5
    assert eyes_only[brows].sum() >= 20, int(eyes_only[brows].sum())
    assert spared[brows].sum() == 0, int(spared[brows].sum())


def _mouth_landmarks(size: int = 128) -> np.ndarray:
    """:func:`_brow_landmarks` with a mouth (48-59) 32 px wide at y = 96."""
    points = _brow_landmarks(size)
    outer = [(48, 96), (53, 92), (59, 91), (64, 92), (69, 91), (75, 92), (80, 96), (75, 101),
             (69, 103), (64, 104), (59, 103), (53, 101)]
    points[48:60] = outer
    return points


def test_an_occluder_inside_the_mouth_alone_is_not_kept_and_a_microphone_over_it_is():
    from facedancer_torch.swap.compose import SPARE_MOUTH_GROW, occluder_weight, spared_zone

    points = _mouth_landmarks()
    spare = spared_zone(points, 128)
    assert SPARE_MOUTH_GROW > 0 and spare[96, 64] and spare[88, 64] and not spare[120, 64]
    probability = np.zeros((128, 128), np.float32)
    probability[94:99, 52:62] = 0.95   # teeth, called an occluder
    probability[96:128, 66:76] = 0.95  # a microphone from the lips down past the chin
    plain = occluder_weight(probability)
    spared = occluder_weight(probability, spare)
    assert plain[96, 56] > 0.5 and spared[96, 56] < 0.05
    assert spared[97, 70] > 0.5 and spared[125, 70] > 0.5


def _kept(photos_dir, name, monkeypatch):
    """``(kept with the eyes and brows spared, kept with the mouth spared too, the mouth's
    zone)``: the occluder pixels kept on the 128 px crop of the largest face of ``name``."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.faces.masks import mouth_zone
    from facedancer_torch.faces.occlusion import load_face_segmenter
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose

    image = read_image(photos_dir / name)
    face = largest_face(get_detector(device="cpu", threads=1).detect(image))
    crop, _ = align_face(image, face.landmarks, 128, antialias=True)  # as Swapper.align
    points = get_landmarks68().on_crop(crop)
    _, occluder = load_face_segmenter().predict(crop[None], mirror=True)
    mouth = mouth_zone(points, 128, compose.SPARE_MOUTH_GROW)
    with_mouth = compose.occluder_weight(occluder[0], compose.spared_zone(points, 128)) > 0.5
    monkeypatch.setattr(compose, "SPARE_MOUTH_GROW", 0.0)
    without = compose.occluder_weight(occluder[0], compose.spared_zone(points, 128)) > 0.5
    return without, with_mouth, mouth


def test_a_dark_spot_by_the_lips_is_swapped_and_a_hair_strand_kept(photos_dir, monkeypatch):
    """df_img3.jpg: the segmenter calls a spot beside the lips an occluder (kept, it stayed
    the target's on the swapped face); the hair strand down her cheek, which reaches into the
    mouth's zone and far beyond it, stays."""
    without, with_mouth, mouth = _kept(photos_dir, "df_img3.jpg", monkeypatch)
    gone = int(without[mouth].sum() - with_mouth[mouth].sum())
    assert gone >= 100, gone  # the spot (its 8-connected region lies inside the zone)
    # The hair strand down the cheek reaches into the zone too, and stays: it reaches beyond.
    assert (with_mouth & ~mouth).sum() >= 0.95 * (without & ~mouth).sum() > 300
