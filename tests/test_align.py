"""5-point alignment (docs/reference.md §1): template, similarity estimate, crops, paste-back,
and the differentiable torch warp against OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facedancer_torch.faces.align import (
    ARCFACE_TEMPLATE,
    align_face,
    alignment_matrix,
    estimate_similarity,
    invert_affine,
    paste_back,
    rescale_affine,
    template_points,
    transform_points,
    warp_affine_torch,
    warp_crop,
)
from facedancer_torch.faces.detect import get_detector
from facedancer_torch.io.images import read_image


@pytest.fixture(scope="module")
def detector():
    return get_detector(device="cpu")


def reference_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Independent reference: a similarity is linear in (a, b, tx, ty) with
    u = a x - b y + tx, v = b x + a y + ty, so ordinary least squares gives the same optimum
    as Umeyama's closed form (scikit-image SimilarityTransform / insightface norm_crop)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows, float), np.array(rhs, float), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def test_template_points():
    assert np.allclose(template_points(112), ARCFACE_TEMPLATE)
    assert np.allclose(template_points(256), ARCFACE_TEMPLATE * 256 / 112)
    shrunk = template_points(256, 0.75)
    assert np.allclose(shrunk, (ARCFACE_TEMPLATE * 0.75 + 0.25 * 56) * 256 / 112)
    # Shrinking pulls the points towards the centre: the eyes get closer together.
    assert (shrunk[1, 0] - shrunk[0, 0]) == pytest.approx(
        0.75 * (template_points(256)[1, 0] - template_points(256)[0, 0]))


def test_similarity_matches_independent_least_squares():
    rng = np.random.default_rng(0)
    for _ in range(20):
        src = rng.uniform(0, 500, size=(5, 2))
        dst = template_points(256) + rng.normal(0, 3, size=(5, 2))
        assert np.abs(estimate_similarity(src, dst) - reference_similarity(src, dst)).max() < 1e-6


def test_similarity_recovers_an_exact_transform_and_never_reflects():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -40.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE * 2 + 100
    dst = src @ (scale * rotation).T + shift
    M = estimate_similarity(src, dst)
    assert np.allclose(M[:, :2], scale * rotation) and np.allclose(M[:, 2], shift)
    mirrored = src * [-1, 1]  # the best proper similarity to a mirror image is not a mirror
    assert np.linalg.det(estimate_similarity(mirrored, src)[:, :2]) > 0
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.ones((5, 2)), ARCFACE_TEMPLATE)


def test_align_real_faces(detector, photos_dir):
    image = read_image(photos_dir / "if_t1.jpg")
    faces = detector.detect(image)
    assert len(faces) == 6
    for face in faces:
        for size, shrink in ((256, 1.0), (112, 1.0), (256, 0.75)):
            crop, M = align_face(image, face.landmarks, size, shrink)
            assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
            assert M.shape == (2, 3)
            # insightface norm_crop convention, to 1e-3 (docs/reference.md §1).
            expected = reference_similarity(face.landmarks.astype(float),
                                            template_points(size, shrink))
            assert np.abs(M - expected).max() < 1e-3
            assert np.array_equal(crop, cv2.warpAffine(image, expected.astype(np.float64),
                                                       (size, size), borderValue=0))
            # The landmarks land near the template (turned heads leave a residual).
            residual = transform_points(face.landmarks, M) - template_points(size, shrink)
            assert np.linalg.norm(residual, axis=1).mean() < 0.1 * size
        assert crop.std() > 20  # a real face, not an empty warp
    crop112 = align_face(image, faces[0].landmarks, 112)[1]
    assert np.allclose(rescale_affine(align_face(image, faces[0].landmarks, 256)[1], 112 / 256),
                       crop112)


def _normalised_correlation(a: np.ndarray, b: np.ndarray) -> float:
    def prep(x):
        gray = cv2.GaussianBlur(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2)
        return (gray - gray.mean()) / gray.std()
    return float((prep(a) * prep(b)).mean())


def test_crops_agree_across_resolutions(detector, photos_dir):
    """The same frame at 240p and at 1080p (detected on a downscaled copy) crops alike."""
    low = read_image(photos_dir / "fr_obama-240p.jpg")
    high = read_image(photos_dir / "fr_obama-1080p.jpg")
    (face_low,), (face_high,) = detector.detect(low), detector.detect(high)
    crop_low, M_low = align_face(low, face_low.landmarks, 112)
    crop_high, M_high = align_face(high, face_high.landmarks, 112)
    # Both matrices, applied to the same points (240p pixels), agree to a few crop pixels.
    scale = high.shape[1] / low.shape[1]
    M_high_in_low = M_high.copy()
    M_high_in_low[:, :2] *= scale
    points = face_low.landmarks
    gap = np.abs(transform_points(points, M_low) - transform_points(points, M_high_in_low))
    assert gap.max() < 6.0, gap
    # The crops show the same face in the same place (the files differ in colour grading).
    same = _normalised_correlation(crop_low, crop_high)
    other = read_image(photos_dir / "fr_biden.jpg")
    crop_other = align_face(other, detector.detect(other)[0].landmarks, 112)[0]
    assert same > 0.7
    assert same > _normalised_correlation(crop_low, crop_other) + 0.3


@pytest.mark.parametrize("name", ["df_img1.jpg", "fr_obama.jpg"])
def test_antialiased_crops_average_what_they_cover(detector, photos_dir, name):
    """A face several times larger than its crop (df_img1: 6.6x, fr_obama: 2.7x): the
    antialiased crop is within a grey level of a 16x supersampled one, plain bilinear
    sampling is several levels off (aliased hair, pores, stubble); a crop that does not shrink
    is the plain one, bit for bit."""
    image = read_image(photos_dir / name)
    face = detector.detect(image)[0]
    matrix = alignment_matrix(face.landmarks, 128)
    dense = matrix * 16
    dense[:, 2] += 7.5  # pixel u of the crop is the mean of dense pixels 16 u .. 16 u + 15
    reference = cv2.resize(cv2.warpAffine(image, dense, (2048, 2048), flags=cv2.INTER_LINEAR),
                           (128, 128), interpolation=cv2.INTER_AREA).astype(np.float64)
    plain, _ = align_face(image, face.landmarks, 128)
    smooth, same = align_face(image, face.landmarks, 128, antialias=True)
    np.testing.assert_array_equal(same, matrix)
    assert np.abs(smooth - reference).mean() < 1.0
    assert np.abs(plain - reference).mean() > 2.0
    large = alignment_matrix(face.landmarks, 1024)
    np.testing.assert_array_equal(warp_crop(image, large, 1024, antialias=True),
                                  warp_crop(image, large, 1024))


def test_invert_affine():
    M = alignment_matrix(ARCFACE_TEMPLATE * 3 + 50, 256)
    inverse = invert_affine(M)
    points = np.array([[0.0, 0.0], [255.0, 0.0], [128.0, 200.0]])
    assert np.allclose(transform_points(transform_points(points, inverse), M), points)
    assert np.allclose(inverse, cv2.invertAffineTransform(M))


def test_paste_back_of_an_unmodified_crop(detector, photos_dir):
    image = read_image(photos_dir / "if_t1.jpg")
    face = detector.detect(image)[0]
    crop, M = align_face(image, face.landmarks, 256)
    mask = np.zeros((256, 256), np.float32)
    mask[32:-32, 32:-32] = 1.0
    out = paste_back(image, crop, M, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    x1, y1, x2, y2 = face.box.astype(int)
    w, h = x2 - x1, y2 - y1
    inner = (slice(y1 + h // 5, y2 - h // 5), slice(x1 + w // 5, x2 - w // 5))
    diff = np.abs(out.astype(int) - image.astype(int))
    # Face region unchanged up to the blur of resampling twice.
    assert diff[inner].mean() < 1.5 and np.percentile(diff[inner], 99) <= 8
    # Where the warped mask is 0, the frame is bit-identical.
    weight = cv2.warpAffine(mask, invert_affine(M), (image.shape[1], image.shape[0]))
    assert np.array_equal(out[weight == 0], image[weight == 0])
    assert (weight == 0).mean() > 0.9
    # A zero mask changes nothing; a modified crop does change the face.
    assert np.array_equal(paste_back(image, crop, M, np.zeros_like(mask)), image)
    white = paste_back(image, np.full_like(crop, 255), M, mask)
    assert white[inner].mean() > 250 and np.array_equal(white[weight == 0], image[weight == 0])
    # Pasted as a change, a zero change keeps every pixel (no resampling blur), and a constant
    # change moves the face by exactly that much where the mask is 1.
    zero = np.zeros(crop.shape, np.float32)
    assert np.array_equal(paste_back(image, zero, M, mask, change=True), image)
    brighter = paste_back(image, zero + 10.0, M, mask, change=True)
    moved = brighter[inner].astype(int) - image[inner].astype(int)
    assert np.mean(moved[image[inner] < 245] == 10) > 0.99


def test_paste_back_outside_the_frame_is_a_no_op():
    frame = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    M = np.array([[1.0, 0.0, 500.0], [0.0, 1.0, 500.0]])  # crop far from the frame
    out = paste_back(frame, np.zeros((32, 32, 3), np.uint8), M, np.ones((32, 32), np.float32))
    assert np.array_equal(out, frame)


def _random_similarity(rng) -> np.ndarray:
    angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.4, 2.5)
    return np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-30, 30)],
                     [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-30, 30)]])


def test_warp_affine_torch_matches_opencv():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(3, 3, 70, 90)).astype(np.float32)
    mats = np.stack([_random_similarity(rng) for _ in range(3)])
    mats[2, 0, 1] += 0.2  # a general affine, not only similarities
    out = warp_affine_torch(torch.from_numpy(images), torch.from_numpy(mats), (64, 80)).numpy()
    assert out.shape == (3, 3, 64, 80)
    for b in range(3):
        expected = cv2.warpAffine(images[b].transpose(1, 2, 0), mats[b], (80, 64),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=0)
        assert np.abs(out[b].transpose(1, 2, 0) - expected).max() < 0.05
    # One (2, 3) matrix broadcasts; a square int size works.
    single = warp_affine_torch(torch.from_numpy(images[:1]), torch.from_numpy(mats[0]), 32)
    assert single.shape == (1, 3, 32, 32)
    assert torch.allclose(single, torch.from_numpy(out[:1, :, :32, :32]), atol=1e-4)


def test_warp_affine_torch_on_a_real_face(detector, photos_dir):
    image = read_image(photos_dir / "fr_two_people.jpg")
    faces = detector.detect(image)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float().expand(2, -1, -1, -1)
    crops, mats = [], []
    for face in faces:
        crop, M = align_face(image, face.landmarks, 112)
        crops.append(crop)
        mats.append(M)
    out = warp_affine_torch(tensor, torch.tensor(np.stack(mats)), 112)
    for b in range(2):
        ours = out[b].permute(1, 2, 0).numpy()
        # OpenCV uint8 warps round to integers: within half a level, plus its fixed-point
        # interpolation weights.
        assert np.abs(ours - crops[b]).mean() < 0.6 and np.abs(ours - crops[b]).max() <= 2.0


def test_warp_affine_torch_is_differentiable():
    rng = np.random.default_rng(1)
    images = torch.tensor(rng.uniform(size=(2, 2, 9, 11)), requires_grad=True)
    mats = torch.tensor(np.stack([_random_similarity(rng) * [[0.3, 0.3, 0.1]] * 3
                                  for _ in range(2)]), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, m: warp_affine_torch(x, m, (7, 8)),
                                    (images, mats), eps=1e-6, atol=1e-4)
    loss = warp_affine_torch(images.float(), mats.float(), 8).square().sum()
    loss.backward()
    assert mats.grad is not None and mats.grad.abs().sum() > 0
