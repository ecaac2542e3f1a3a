"""Live swapping (``facedancer live``, swap/live.py, the web UI's Live tab) on real clips.

A video file stands in for the camera (``--input``), and for the browser test a y4m made from a
shared talking clip is Chromium's fake webcam. A tiny random generator stands in for a trained
model: it changes the face region, which is what these tests check (where pixels change, what
the outputs carry), not a likeness. No timing is asserted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from swaputil import run_cli, single_thread

from facedancer_torch.swap import live as live_mod
from facedancer_torch.swap.threads import apply_thread_budget, plan_threads


def _frames(path: Path, count: int | None = None) -> list[np.ndarray]:
    from facedancer_torch.io.video import read_frames

    return [f.rgb for f in read_frames(path, max_frames=count)]


def _face_region(shape, box, grow: float = 0.6) -> np.ndarray:
    """Boolean mask of ``box`` grown by ``grow`` of its size on each side (where a swap may
    change pixels: the aligned crop reaches well beyond the detector's box)."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    w, h = x2 - x1, y2 - y1
    region = np.zeros(shape[:2], bool)
    region[max(0, int(y1 - grow * h)):int(y2 + grow * h),
           max(0, int(x1 - grow * w)):int(x2 + grow * w)] = True
    return region


def _label_region(shape) -> np.ndarray:
    region = np.zeros(shape[:2], bool)
    region[int(shape[0] * 0.9):, :int(shape[1] * 0.75)] = True
    return region


# -- pieces -----------------------------------------------------------------------------------

def test_roi_matrix_centres_and_scales_the_box():
    from facedancer_torch.faces.roi import roi_matrix

    box = np.array([100.0, 50.0, 180.0, 170.0])  # 80 x 120, centre (140, 110)
    m = roi_matrix(box, 160, 2.0)
    centre = m @ np.array([140.0, 110.0, 1.0])
    assert np.allclose(centre, [80, 80])
    assert np.isclose(m[0, 0], 160 / 240) and m[0, 1] == 0 and m[1, 0] == 0


def test_thread_budget_plan():
    assert plan_threads(1).generator == 1 and plan_threads(2).generator == 1
    budget = plan_threads(8)
    assert (budget.generator, budget.detector, budget.opencv, budget.cores) == (6, 1, 1, 8)


def test_thread_budget_applies_and_restores(swapper, photos_dir):
    import cv2
    import torch

    from facedancer_torch.io.images import read_image

    image = read_image(photos_dir / "fr_two_people.jpg")
    before = swapper.detector.detect(image)
    torch_threads, detector = torch.get_num_threads(), swapper.detector
    with apply_thread_budget(swapper, plan_threads(4)) as budget:
        assert budget.generator == 2
        assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 1
        assert swapper.detector is not detector
        # ... with the embedded detector's cheaper refinement kept (levels, crops, first pass)
        for name in ("refine_by_level", "refine_max_crop", "first_pass"):
            assert getattr(swapper.detector, name) == getattr(detector, name), name
        during = swapper.detector.detect(image)
    assert swapper.detector is detector and torch.get_num_threads() == torch_threads
    # the same detector with fewer threads finds the same faces
    assert len(during) == len(before) == 2
    for a, b in zip(before, during):
        assert np.allclose(a.landmarks, b.landmarks, atol=0.05)


def test_roi_tracker_follows_the_face(swapper, videos_dir):
    """Between full-frame detections the ROI tracker keeps real landmarks close to what
    full-frame detection gives on every frame (talking clip, 24 frames)."""
    frames = _frames(videos_dir / "talking_c.mp4", 24)
    tracker = live_mod.RoiTracker(swapper.detector, live_mod.LiveSettings(
        detect_every=8, background=False))
    errors = []
    for rgb in frames:
        faces = tracker.update(rgb)
        reference = swapper.detector.detect(rgb)
        assert len(reference) == 1 and len(faces) == 1
        assert not faces[0].refilled
        eyes = np.linalg.norm(reference[0].landmarks[0] - reference[0].landmarks[1])
        errors.append(np.linalg.norm(faces[0].raw_landmarks - reference[0].landmarks,
                                     axis=1).mean() / eyes)
    tracker.close()
    assert tracker.full_detections == 3  # frames 0, 8, 16: the rest were ROI detections
    assert np.mean(errors) < 0.10 and max(errors) < 0.2


def test_roi_tracker_reads_a_face_on_its_side_at_its_turn(swapper, videos_dir):
    """A camera held sideways: the full-frame detection searches the other turns where a face
    looks read sideways, and the crops that follow the face read it at its turn."""
    frames = [np.ascontiguousarray(np.rot90(f, -1))  # clockwise: upright again at 90
              for f in _frames(videos_dir / "talking_1face_512.mp4", 12)]
    tracker = live_mod.RoiTracker(swapper.detector, live_mod.LiveSettings(
        detect_every=8, background=False))
    errors = []
    for rgb in frames:
        faces = tracker.update(rgb)
        right = swapper.detector.detect_batch([rgb], rotate="90")[0][0]
        assert len(faces) == 1 and faces[0].rotation == 90
        eyes = np.linalg.norm(right.landmarks[0] - right.landmarks[1])
        errors.append(np.linalg.norm(faces[0].raw_landmarks - right.landmarks,
                                     axis=1).mean() / eyes)
    tracker.close()
    assert tracker.full_detections == 2 and max(errors) < 0.1, errors


def test_live_swapper_changes_only_the_face(swapper, videos_dir, photos_dir):
    frames = _frames(videos_dir / "talking_c.mp4", 6)
    live = live_mod.LiveSwapper(swapper, photos_dir / "fr_obama.jpg", live_mod.live_options(),
                                live_mod.LiveSettings(detect_every=3, background=False))
    try:
        with single_thread():
            out = [live.swap(rgb) for rgb in frames]
    finally:
        live.close()
    # One memory for the one tracked face (the compositor eases its eye gate there).
    assert len(live._memories) == 1
    for rgb, frame in zip(frames, out):
        assert frame.faces == 1 and frame.rgb.shape == rgb.shape
        box = swapper.detector.detect(rgb)[0].box
        diff = np.abs(frame.rgb.astype(np.float32) - rgb).mean(axis=2)
        face, label = _face_region(rgb.shape, box, 0.3), _label_region(rgb.shape)
        x1, y1, x2, y2 = np.asarray(box).astype(int)
        assert diff[y1:y2, x1:x2].mean() > 10
        assert (diff[~face & ~label] == 0).all()  # no watermark here: untouched, bit for bit
        assert diff[label].mean() > 10  # the visible label


# -- the command --------------------------------------------------------------------------------

def _check_recording(path: Path, target: Path) -> int:
    """A finished live recording: provenance tag, watermark, faces changed, background kept."""
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.watermark import detect_watermark

    tag = read_provenance(path)
    assert tag is not None and tag["content"] == "synthetic media" and tag["mode"] == "live"
    frames = _frames(path)
    assert frames and detect_watermark(frames[len(frames) // 2]).found
    return len(frames)


def test_live_command_records_a_file(tiny_model, photos_dir, videos_dir, tmp_path):
    from facedancer_torch.faces.detect import get_detector

    clip, output = videos_dir / "talking_c.mp4", tmp_path / "live.mp4"
    result = run_cli("live", "-s", photos_dir / "fr_obama.jpg", "-i", clip, "-o", output,
                     "--model", tiny_model, "--backend", "fused", "--every-frame",
                     "--max-frames", 10, "--detect-every", 4, "--crf", 0, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output)
    assert "10 frames" in result.stderr and "stopped by end of input" in result.stderr
    assert _check_recording(output, clip) == 10
    # every frame in order (--every-frame: detection inline), each changed in the face region
    # and nowhere else but the label
    detector = get_detector(device="cpu")
    swapped = 0
    for original, recorded in zip(_frames(clip, 10), _frames(output)):
        box = detector.detect(original)[0].box
        diff = np.abs(recorded.astype(np.float32) - original).mean(axis=2)
        outside = ~_face_region(original.shape, box) & ~_label_region(original.shape)
        assert diff[outside].mean() < 3.0  # H.264 yuv420p + watermark only
        x1, y1, x2, y2 = np.asarray(box).astype(int)
        swapped += diff[y1:y2, x1:x2].mean() > 10
    assert swapped == 10
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_finalises_the_recording(signum, tiny_model, photos_dir, videos_dir, tmp_path):
    clip, output = videos_dir / "talking_1face_512.mp4", tmp_path / "live.mp4"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "facedancer_torch", "live", "-s", str(photos_dir / "fr_obama.jpg"),
         "-i", str(clip), "-o", str(output), "--model", str(tiny_model), "--backend", "fused",
         "-q"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        started = process.stderr.readline()  # printed once the loop starts
        assert started.startswith("live: talking_1face_512.mp4"), started
        time.sleep(3)  # the clip plays for 8 s: stop it in the middle
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert out.strip() == str(output)
    frames = _check_recording(output, clip)
    assert 0 < frames < 200
    assert not list(tmp_path.glob(".*part*"))


def _one_line_error(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_user_errors_are_one_line(photos_dir, videos_dir, tmp_path):
    photo, clip = photos_dir / "fr_obama.jpg", videos_dir / "talking_c.mp4"
    _one_line_error(run_cli("live", "-s", photo, "-o", tmp_path / "a.mp4"), "--camera")
    _one_line_error(run_cli("live", "-s", photo, "-i", clip), "--window", "--output")
    _one_line_error(run_cli("live", "-s", photo, "-i", tmp_path / "missing.mp4", "-o",
                            tmp_path / "a.mp4"), "missing.mp4", "does not exist")
    _one_line_error(run_cli("live", "-s", photo, "-i", clip, "-o", tmp_path / "a.bmp"),
                    "a.bmp")
    _one_line_error(run_cli("live", "-s", photo, "--camera", 57, "-o", tmp_path / "a.mp4"),
                    "camera 57")
    assert not list(tmp_path.iterdir())


def test_window_without_display_is_one_line(photos_dir, videos_dir, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run_cli("live", "-s", photos_dir / "fr_obama.jpg", "-i",
                     videos_dir / "talking_c.mp4", "--window")
    _one_line_error(result, "--window needs a display")


def test_virtual_camera_without_device_is_one_line(photos_dir, videos_dir):
    # pyvirtualcam is optional; without it, or without a virtual camera device (this test
    # machine has neither v4l2loopback nor OBS), the command says so in one line
    result = run_cli("live", "-s", photos_dir / "fr_obama.jpg", "-i",
                     videos_dir / "talking_c.mp4", "--virtual-camera")
    _one_line_error(result, "virtual camera")


# -- the web UI's Live tab -----------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def _write_y4m(frames: list[np.ndarray], path: Path, fps: int = 25) -> list[np.ndarray]:
    """Write frames as a y4m (Chromium's fake-webcam format); returns them as decoded back
    (yuv420p changes the colours slightly)."""
    import av

    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_browser_live_tab(tiny_model, photos_dir, videos_dir, tmp_path):
    pytest.importorskip("gradio", reason="the web UI needs gradio")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs "
                                   "playwright for Python (pip install playwright)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("the browser test needs Debian's chromium (apt-get install chromium)")
    import cv2

    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.watermark import detect_watermark
    from facedancer_torch.swap.pipeline import Swapper
    from facedancer_torch.ui import app as ui_app

    frames = [cv2.resize(rgb, (480, 480), interpolation=cv2.INTER_AREA)
              for rgb in _frames(videos_dir / "talking_c.mp4", 30)]
    camera = tmp_path / "camera.y4m"
    frames = _write_y4m(frames, camera)
    app = ui_app.build_app(lambda value, detector: Swapper(value, detector=detector,
                                                           device="cpu", backend="fused"),
                           [ui_app.ModelChoice("tiny random generator", str(tiny_model))],
                           output_dir=tmp_path / "out")
    with single_thread():
        url = ui_app.launch_app(app, port=_free_port(), block=False, quiet=True).rstrip("/")
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=executable,
                    args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={camera}"])
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    page.goto(url)
                    page.get_by_role("tab", name="Live").click()
                    note = page.locator("#live-note").inner_text(timeout=30_000)
                    page.locator("#live-sources input[type=file]").set_input_files(
                        str(photos_dir / "fr_obama.jpg"))
                    page.locator('#live-sources [aria-label="fr_obama.jpg"]').wait_for(
                        timeout=30_000)
                    page.locator('#live-webcam [title="grant webcam access"] button').click()
                    page.locator('#live-webcam [title="start recording"]').click(
                        timeout=30_000)
                    page.wait_for_selector("#live-result img", timeout=120_000)
                    page.get_by_text("face(s) swapped").wait_for(timeout=120_000)
                    status = page.locator("#live-status").inner_text()
                    response = page.request.get(
                        page.locator("#live-result img").get_attribute("src"))
                    assert response.ok
                    served = tmp_path / "frame.png"
                    served.write_bytes(response.body())
                finally:
                    browser.close()
        finally:
            app.close()
    assert "synthetic media" in note.lower() and "synthetic media" in status
    assert "1 face(s) swapped" in status
    result = cv2.cvtColor(cv2.imread(str(served)), cv2.COLOR_BGR2RGB)
    assert result.shape == frames[0].shape
    assert detect_watermark(result).found  # a PNG: the watermark survives the trip
    if os.environ.get("FACEDANCER_UI_SCREENSHOT"):
        shutil.copy(served, os.environ["FACEDANCER_UI_SCREENSHOT"])
    # The camera frame it came from: the one closest to it on most pixels (the face is a
    # minority of the picture; the median ignores it). Gradio's webcam mirrors, as selfie
    # views do, and sends the mirrored picture.
    frames = [np.ascontiguousarray(f[:, ::-1]) for f in frames]
    detector = get_detector(device="cpu")
    keep = ~_label_region(result.shape)
    distance = [np.median(np.abs(result.astype(np.float32) - f)[keep]) for f in frames]
    original = frames[int(np.argmin(distance))]
    assert min(distance) <= 2.0  # the background came back as it was sent
    box = detector.detect(original)[0].box
    x1, y1, x2, y2 = np.asarray(box).astype(int)
    diff = np.abs(result.astype(np.float32) - original).mean(axis=2)
    assert diff[y1:y2, x1:x2].mean() > 10  # the face did not
    assert diff[_label_region(result.shape)].mean() > 10  # and the label is drawn
