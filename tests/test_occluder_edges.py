"""A kept occluder's edge follows the target's own edges: sharp along a glasses frame, a hand or
a microphone, soft where the segmenter's region ends in plain skin (swap/compose.py,
``occluder_weight(..., guide)``, ``OCCLUDER_GUIDE_*``, ``OCCLUDER_EDGE``; faces/masks.py,
``guided_filter``). A hard edge there showed as a blotch with a wiggly outline: the child's
cheek in fr_obama_and_biden.jpg, a shadow beside df_img59.jpg's nose."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from swaputil import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def _plain_guided_filter(mask, guide, radius, eps):
    """The guided filter written out over the whole image, a 3x3 solve per pixel."""
    image = guide.astype(np.float64) / 255.0
    p = mask.astype(np.float64)

    def box(a):
        return cv2.blur(a, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(image), box(p)
    cov = box(image * p[..., None]) - mean_i * mean_p[..., None]
    outer = np.einsum("hwi,hwj->hwij", image, image).reshape(*p.shape, 9)
    var = box(outer).reshape(*p.shape, 3, 3) - np.einsum("hwi,hwj->hwij", mean_i, mean_i)
    a = np.linalg.solve(var + eps * np.eye(3), cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return np.clip((box(a) * image).sum(-1) + box(b), 0, 1)


def _skin(size=128, seed=0):
    """Flat skin with a little noise (RGB uint8)."""
    rng = np.random.default_rng(seed)
    skin = np.empty((size, size, 3), np.float32)
    skin[:] = (200, 150, 120)
    return np.clip(skin + rng.normal(0, 1.5, skin.shape), 0, 255).astype(np.uint8)


def test_the_guided_filter_equals_its_plain_form_and_leaves_far_pixels_alone():
    from facedancer_torch.faces.masks import guided_filter

    guide = _skin()
    guide[30:90, 40:60] = (40, 30, 30)  # a dark object
    rng = np.random.default_rng(1)
    guide = cv2.GaussianBlur(guide, (0, 0), 1.0)
    mask = np.zeros((128, 128), np.float32)
    mask[28:92, 38:62] = 1.0
    mask[60:70, 62:75] = rng.random((10, 13)).astype(np.float32)
    fast = guided_filter(mask, guide, 4, 1e-3)
    np.testing.assert_allclose(fast, _plain_guided_filter(mask, guide, 4, 1e-3), atol=1e-4)
    # 2 radius + 1 pixels beyond the mask's box nothing is computed: exactly 0.
    assert not fast[:, 90:].any() and not fast[:17, :].any() and not fast[103:, :].any()
    np.testing.assert_array_equal(guided_filter(np.zeros_like(mask), guide, 4, 1e-3), 0)


def test_a_mask_edge_on_an_image_edge_stays_sharp_and_one_in_flat_skin_is_smoothed():
    from facedancer_torch.faces.masks import guided_filter

    guide = _skin()
    guide[:, :64] = (60, 45, 40)  # the left half dark: an edge at column 64
    mask = np.zeros((128, 128), np.float32)
    mask[20:108, 30:64] = 1.0   # right edge on the image edge (column 64)...
    mask[40:88, 80:100] = 1.0   # ...and a square in the flat, light skin
    out = guided_filter(mask, guide, 4, 1e-3)
    # On the image edge: one pixel from fully kept to nothing.
    assert out[64, 62] > 0.9 and out[64, 65] < 0.1
    # In flat skin: the square's edge is spread over the window (no step of over 0.2).
    row = out[64, 70:110]
    assert np.abs(np.diff(row)).max() < 0.2
    assert 0.2 < out[64, 80] < 0.8


def test_a_thin_frame_stays_kept_and_a_region_ending_in_skin_gets_a_soft_edge():
    from facedancer_torch.swap.compose import occluder_weight

    guide = _skin()
    guide[40:43, 10:118] = (30, 25, 25)  # a 3 px glasses frame across the face
    guide = cv2.GaussianBlur(guide, (0, 0), 0.7)
    probability = np.zeros((128, 128), np.float32)
    probability[40:43, 10:118] = 0.95
    probability[70:100, 30:60] = 0.95  # a region the segmenter ends in plain skin
    plain = occluder_weight(probability)
    guided = occluder_weight(probability, guide=guide)
    # The frame: kept along its length as without the guide.
    assert (guided[40:43, 12:116] > 0.9).all() and (plain[40:43, 12:116] > 0.9).all()
    # The skin region: the plain weight falls from 1 to 0 within about 2 pixels; guided, the
    # largest step between neighbours is a third of that.
    steps_plain = np.abs(np.diff(plain[85, 40:80])).max()
    steps_guided = np.abs(np.diff(guided[85, 40:80])).max()
    assert steps_plain > 0.35 and steps_guided < steps_plain / 3, (steps_plain, steps_guided)
    assert guided[85, 45] > 0.9  # its inside still kept


@pytest.fixture(scope="module")
def face_crops(photos_dir):
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.faces.occlusion import load_face_segmenter
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.compose import spared_zone

    out = {}
    detector = get_detector(device="cpu", threads=1)
    for name in ("fr_obama_and_biden.jpg", "df_img24.jpg"):
        image = read_image(photos_dir / name)
        faces = detector.detect(image)
        # fr_obama_and_biden: the child at the right edge, her eyes in her hair's shadow
        face = max(faces, key=lambda f: f.box[0]) if name.startswith("fr_") else \
            max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        crop, _ = align_face(image, face.landmarks, 128)
        _, occluder = load_face_segmenter().predict(crop[None], mirror=True)
        out[name] = crop, occluder[0], spared_zone(get_landmarks68().on_crop(crop), 128)
    return out


def _steps(weight):
    """The largest change of ``weight`` to a right or lower neighbour, per pixel."""
    return np.maximum(np.abs(np.diff(weight, axis=1))[:-1], np.abs(np.diff(weight, axis=0))[:, :-1])


def test_the_childs_kept_shadow_ends_softly_in_her_cheek(face_crops):
    from facedancer_torch.swap import compose

    crop, occluder, spare = face_crops["fr_obama_and_biden.jpg"]
    plain = compose.occluder_weight(occluder, spare)
    guided = compose.occluder_weight(occluder, spare, crop)
    assert (plain > 0.5).sum() > 1000  # the segmenter keeps part of her shadowed face
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edge = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)) / 8
    flat = cv2.GaussianBlur(edge, (0, 0), 1.0)[:-1, :-1] < compose.OCCLUDER_EDGE / 4
    seam = flat & (_steps(plain) > 0.01)  # the kept region's edge where her skin is plain
    assert seam.sum() > 50
    plain_seam = np.percentile(_steps(plain)[seam], 99)
    guided_seam = np.percentile(_steps(guided)[seam], 99)
    assert plain_seam > 0.6 and guided_seam < 0.6 * plain_seam, (plain_seam, guided_seam)
    assert (guided[plain > 0.5] > 0.5).mean() > 0.95  # the region itself still kept


def test_the_glasses_frame_of_df_img24_stays_kept(face_crops):
    from facedancer_torch.swap.compose import occluder_weight

    crop, occluder, spare = face_crops["df_img24.jpg"]
    plain = occluder_weight(occluder, spare) > 0.5
    guided = occluder_weight(occluder, spare, crop) > 0.5
    assert plain.sum() > 500
    assert (guided & plain).sum() >= 0.97 * plain.sum()
