"""Face tracking (faces/tracking.py): IoU association, One-Euro landmark smoothing on a real
talking-head clip, and refilling faces the detector misses."""

from __future__ import annotations

import numpy as np
import pytest

from facedancer_torch.faces.detect import Face
from facedancer_torch.faces.tracking import (FaceTracker, OneEuroSmoothing, TrackedFace,
                                             box_iou, greedy_match)

FRAMES = 32


def _face(cx: float, cy: float, size: float = 100.0, score: float = 0.99) -> Face:
    box = np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], np.float32)
    offsets = np.array([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.05], [-0.15, 0.25], [0.15, 0.25]])
    landmarks = (np.array([cx, cy]) + offsets * size).astype(np.float32)
    return Face(box=box, score=score, landmarks=landmarks)


def test_box_iou_and_greedy_match():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[1].max() == 0.0
    assert greedy_match(iou, 0.3) == [(0, 0)]
    assert greedy_match(np.array([[0.5, 0.9], [0.8, 0.1]]), 0.3) == [(0, 1), (1, 0)]
    assert greedy_match(np.zeros((0, 2)), 0.3) == []


def test_ids_stay_with_their_faces():
    tracker = FaceTracker()
    ids = []
    for t in range(10):
        # two faces moving right; detector order flips every frame
        faces = [_face(100 + 3 * t, 100), _face(400 + 3 * t, 120)]
        out = tracker.update(faces if t % 2 == 0 else faces[::-1])
        assert all(isinstance(f, TrackedFace) and isinstance(f, Face) for f in out)
        by_x = sorted(out, key=lambda f: f.box[0])
        ids.append([f.track_id for f in by_x])
    assert all(i == [0, 1] for i in ids)
    assert tracker.update([_face(800, 500)])[0].track_id == 2  # a new person


def test_refill_a_missed_face_then_drop_it():
    tracker = FaceTracker(max_missing=3)
    for t in range(5):
        out = tracker.update([_face(200 + t, 200)])
        assert [f.refilled for f in out] == [False]
    last = out[0]
    for missing in range(1, 4):
        out = tracker.update([])
        assert len(out) == 1 and out[0].refilled and out[0].track_id == last.track_id
        assert out[0].raw_landmarks is None
        np.testing.assert_allclose(out[0].landmarks, last.landmarks)  # held in place
    assert tracker.update([]) == []  # max_missing exceeded: the track ends
    assert tracker.update([_face(204, 200)])[0].track_id != last.track_id


def test_back_after_a_miss_keeps_the_track():
    tracker = FaceTracker(max_missing=5)
    for t in range(4):
        tracker.update([_face(200 + 2 * t, 200)])
    tracker.update([])
    out = tracker.update([_face(210, 200)])
    assert len(out) == 1 and out[0].track_id == 0 and not out[0].refilled


def test_one_frame_false_detection_is_not_refilled():
    tracker = FaceTracker(max_missing=5, min_hits=2)
    tracker.update([_face(200, 200)])
    assert tracker.update([]) == []
    with pytest.raises(ValueError):
        FaceTracker(iou_threshold=0)


def test_smoothing_none_passes_landmarks_through():
    tracker = FaceTracker(smoothing=None)
    rng = np.random.default_rng(0)
    for t in range(5):
        face = _face(200 + rng.normal(0, 2), 200 + rng.normal(0, 2))
        out = tracker.update([face])[0]
        np.testing.assert_allclose(out.landmarks, face.landmarks, atol=1e-4)


def test_smoothing_follows_a_fast_move():
    """A head that moves steadily must not lag far behind (the One-Euro speed term)."""
    tracker = FaceTracker(fps=25)
    for t in range(25):
        out = tracker.update([_face(100 + 8 * t, 200)])[0]
    assert abs(float(out.landmarks[:, 0].mean() - (100 + 8 * 24))) < 6.0  # 8 px/frame motion


# ------------------------------------------------------------------------- real video


@pytest.fixture(scope="module")
def detections(videos_dir):
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.video import read_frames

    detector = get_detector(device="cpu")
    return [detector.detect(f.rgb)
            for f in read_frames(videos_dir / "talking_1face_512.mp4", max_frames=FRAMES)]


def _jitter(landmarks: np.ndarray) -> float:
    """Mean absolute second difference over time: noise shows up here, smooth motion not."""
    return float(np.abs(np.diff(landmarks, n=2, axis=0)).mean())


def test_smoothing_reduces_jitter_on_real_video(detections):
    assert all(len(d) == 1 for d in detections), [len(d) for d in detections]
    tracker = FaceTracker(fps=25)
    out = [tracker.update(d) for d in detections]
    assert all(len(o) == 1 and o[0].track_id == 0 for o in out)
    raw = np.stack([o[0].raw_landmarks for o in out])
    smooth = np.stack([o[0].landmarks for o in out])
    eye_distance = float(np.linalg.norm(raw[:, 0] - raw[:, 1], axis=1).mean())
    assert _jitter(smooth) < 0.7 * _jitter(raw), (_jitter(smooth), _jitter(raw))
    # and stays on the face: mean offset from the detections under 5% of the eye distance
    assert float(np.abs(smooth - raw).mean()) < 0.05 * eye_distance


def test_refill_on_real_video(detections):
    dropped = {12, 13}
    tracker = FaceTracker(max_missing=5, fps=25)
    for t, faces in enumerate(detections[:16]):
        out = tracker.update([] if t in dropped else faces)
        assert len(out) == 1 and out[0].track_id == 0
        assert out[0].refilled == (t in dropped)
        if t in dropped:
            truth = detections[t][0].landmarks
            eye_distance = float(np.linalg.norm(truth[0] - truth[1]))
            error = float(np.linalg.norm(out[0].landmarks - truth, axis=1).mean())
            assert error < 0.15 * eye_distance, error


def test_default_settings_are_documented():
    settings = OneEuroSmoothing()
    assert settings.min_cutoff > 0 and settings.beta > 0 and settings.d_cutoff > 0
