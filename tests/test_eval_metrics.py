"""Evaluation metrics with known answers on synthetic numbers (no models, milliseconds)."""

import numpy as np
import pytest

from facedancer_torch.errors import FacedancerError
from facedancer_torch.evaluate.expression import expression_embedding, expression_error
from facedancer_torch.evaluate.fid import frechet_distance, kernel_distance, standard_fid
from facedancer_torch.evaluate.lfw import best_threshold, kfold_accuracy
from facedancer_torch.evaluate.pose import (GENERIC_FACE_3D, euler_angles_deg, geodesic_angle_deg,
                                            head_rotation)
from facedancer_torch.evaluate.retrieval import (identity_centres, rank_identities, rank_of,
                                                 top_k_accuracy)


def _rotation(axis, degrees):
    import cv2

    rvec = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis) * np.radians(degrees)
    return cv2.Rodrigues(rvec)[0]


def test_geodesic_angle_of_known_rotations():
    a = _rotation([0.3, 1.0, -0.2], 25.0)
    for axis, angle in [([1, 0, 0], 10.0), ([0, 1, 0], 37.5), ([1, 1, 1], 90.0), ([0, 0, 1], 179.0)]:
        assert geodesic_angle_deg(a, a @ _rotation(axis, angle)) == pytest.approx(angle, abs=1e-6)
    assert geodesic_angle_deg(a, a) == pytest.approx(0.0, abs=1e-5)


def _project(rotation, size=256, depth=600.0):
    """68 landmarks whose rigid points are the generic face seen by the evaluation's camera."""
    points = np.zeros((68, 2))
    model = np.array([GENERIC_FACE_3D[i] for i in sorted(GENERIC_FACE_3D)])
    camera_points = model @ rotation.T + np.array([0.0, 0.0, depth])
    focal = float(size)
    projected = camera_points[:, :2] / camera_points[:, 2:] * focal + size / 2.0
    points[sorted(GENERIC_FACE_3D)] = projected
    return points


def test_head_rotation_recovers_the_pose_of_a_projected_generic_face():
    for axis, angle in [([0, 1, 0], 30.0), ([1, 0, 0], -15.0), ([0, 0, 1], 20.0),
                        ([1, 2, 0.5], 35.0)]:
        truth = _rotation(axis, angle)
        estimate = head_rotation(_project(truth), (256, 256))
        assert geodesic_angle_deg(truth, estimate) < 0.1
    yaw, pitch, roll = euler_angles_deg(_rotation([0, 1, 0], 30.0))
    assert (yaw, pitch, roll) == pytest.approx((30.0, 0.0, 0.0), abs=1e-6)


def test_expression_embedding_ignores_in_plane_pose_but_not_mouth_opening():
    rng = np.random.default_rng(0)
    face = _project(np.eye(3))
    face[17:68] += rng.normal(0, 5, (51, 2))  # give brows, eyes and mouth distinct positions
    angle = np.radians(23.0)
    similarity = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = face @ similarity.T + np.array([40.0, -12.0])
    assert expression_error(face, moved) == pytest.approx(0.0, abs=1e-9)
    opened = face.copy()
    opened[[56, 57, 58, 65, 66, 67]] += np.array([0.0, 30.0])  # lower lip down
    assert expression_error(face, opened) > 5.0
    assert expression_embedding(face).shape == (84,)


def test_frechet_distance_matches_the_gaussian_closed_form():
    pytest.importorskip("scipy", reason="the eval extra (scipy) is not installed")
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (20000, 4))
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    b = rng.normal(0.0, 2.0, (20000, 4)) + shift
    # ||m||^2 + tr(I + 4I - 2 * sqrt(4I)) = 5.25 + 4 * (1 + 4 - 4)
    assert frechet_distance(a, b) == pytest.approx(5.25 + 4.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # fewer samples than dimensions: still finite (regularised square root)
    assert np.isfinite(frechet_distance(rng.normal(size=(5, 16)), rng.normal(size=(6, 16))))


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same_mean, same_std = kernel_distance(a, b, subsets=20, subset_size=200)
    shifted_mean, _ = kernel_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same_mean) < 0.02
    assert shifted_mean > 10 * max(abs(same_mean), same_std)
    assert kernel_distance(a, b, subsets=5, seed=3) == kernel_distance(a, b, subsets=5, seed=3)


def test_standard_fid_is_refused_clearly():
    with pytest.raises(FacedancerError, match="not supported"):
        standard_fid("pt_inception-2015-12-05.pth")


def test_retrieval_ranks_identity_centres_by_cosine():
    embeddings = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1.0]])
    names, centres = identity_centres(embeddings, ["a", "a", "b", "b", "c"])
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0)
    order, similarities = rank_identities(np.array([[0.1, 1.0, 0.0], [0.0, 0.2, 1.0]]), centres)
    ranks = rank_of(order, names, ["b", "b"])
    assert ranks.tolist() == [1, 2]
    assert top_k_accuracy(ranks, 1) == 0.5 and top_k_accuracy(ranks, 2) == 1.0
    assert similarities.shape == (2, 3)


def test_best_threshold_is_the_exact_maximiser():
    rng = np.random.default_rng(2)
    scores = np.round(rng.normal(size=300), 2)  # ties included
    same = rng.random(300) < 0.5 + 0.3 * np.tanh(scores)
    threshold = best_threshold(scores, same)
    best = max(np.mean((scores > t) == same) for t in np.r_[scores.min() - 1, scores])
    assert np.mean((scores > threshold) == same) == pytest.approx(best)


def test_kfold_accuracy_separable_and_random():
    rng = np.random.default_rng(3)
    folds = np.repeat(np.arange(10), 60)
    same = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    separable = np.where(same, rng.uniform(0.6, 1.0, 600), rng.uniform(-0.2, 0.5, 600))
    assert kfold_accuracy(separable, same, folds)["accuracy"] == 1.0
    noise = kfold_accuracy(rng.normal(size=600), same, folds)
    assert 0.35 < noise["accuracy"] < 0.65
    assert len(noise["thresholds"]) == 10
