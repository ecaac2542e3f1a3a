"""The web UI (``facedancer ui``): served on loopback, upload limit, and a real browser swap.

The browser test drives Debian's ``chromium`` with playwright (no browser download): it loads
the page with every request off the server's own origin blocked (the page must work offline),
uploads two real photos, presses Swap and checks the image that comes back: a file carrying
the provenance tag and the watermark, whose face region differs from the target's and whose
far background does not. A tiny random generator stands in for a trained model, and the
authors' RetinaFace-Res50 graph with random weights (``../shared/fixtures/keras-authors``,
converted here) for a converted detector chosen in the page.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from swaputil import save_tiny_generator, single_thread

from facedancer_torch.errors import ModelError
from facedancer_torch.testing import shared_path
from facedancer_torch.ui import app as ui_app

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
UPLOAD_LIMIT_MB = 4.0


# -- host and options: no server needed ----------------------------------------------------------

def test_loopback_hosts_and_warning():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.1.1", "[::1]"):
        assert ui_app.is_loopback(host) and ui_app.host_warning(host) is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        assert not ui_app.is_loopback(host)
        assert host in ui_app.host_warning(host)


def test_cli_defaults_bind_loopback(monkeypatch):
    from facedancer_torch.cli import ui as cli_ui

    calls = []
    monkeypatch.setattr(cli_ui, "serve_ui", lambda **kwargs: calls.append(kwargs))
    app = typer.Typer()
    cli_ui.register(app)
    app.command("noop")(lambda: None)  # a group of two, as in the real CLI
    result = CliRunner().invoke(app, ["ui"])
    assert result.exit_code == 0, result.output
    assert calls == [{"host": "127.0.0.1", "port": 7860, "models": [], "max_upload_mb": 50.0,
                      "device": "auto", "backend": "auto", "detectors": []}]
    assert ui_app.DEFAULT_HOST == "127.0.0.1"
    result = CliRunner().invoke(app, ["ui", "--detector", "models/r50", "--detector",
                                      "retinaface-r50"])
    assert result.exit_code == 0, result.output
    assert calls[-1]["detectors"] == ["models/r50", "retinaface-r50"]


class _FakeApp:
    """Records what launch_app passes to gradio's launch()."""

    def __init__(self):
        self.kwargs = None
        self.facedancer_output_dir = Path("/nonexistent/out")

    def queue(self, **kwargs):
        return self

    def launch(self, **kwargs):
        self.kwargs = kwargs
        return None, f"http://{kwargs['server_name']}:{kwargs['server_port']}/", None


def test_launch_options_and_warning(capsys):
    fake = _FakeApp()
    url = ui_app.launch_app(fake, block=False, max_upload_mb=2)
    assert url == "http://127.0.0.1:7860/"
    kwargs = fake.kwargs
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["share"] is False
    assert kwargs["max_file_size"] == 2 * 1024 * 1024
    assert kwargs["allowed_paths"] == ["/nonexistent/out"]
    assert "warning" not in capsys.readouterr().err
    ui_app.launch_app(_FakeApp(), host="0.0.0.0", block=False)
    err = capsys.readouterr().err
    assert err.startswith("warning: the UI listens on 0.0.0.0") and len(err.splitlines()) == 1
    with pytest.raises(Exception, match="max-upload-mb"):
        ui_app.launch_app(_FakeApp(), max_upload_mb=0, block=False)


def test_blink_option_reaches_the_swap_options():
    from facedancer_torch.ui.app import _options

    assert _options("all", 7, 0.0, "local").blinks is True  # the default, as the CLI's
    assert _options("all", 7, 0.0, "local", blinks=False).blinks is False


def test_status_says_which_faces_were_left_and_why():
    """Images and videos alike: faces the profile and cut fades left are counted (a video's
    over its frames); nothing is said when none was left."""
    from facedancer_torch.swap.report import FileReport

    image = ui_app._left(FileReport(path=Path("a.png"), profiles=2, cut=1))
    assert "2 turned to a profile" in image and "1 cut deeply by the picture's edge" in image
    video = ui_app._left(FileReport(path=Path("a.mp4"), kind="video", cut=9), video=True)
    assert "counted over frames" in video and "9 cut deeply" in video and "profile" not in video
    assert ui_app._left(FileReport(path=Path("a.png"))) == ""


def test_exposure_option_reaches_the_swap_options():
    from facedancer_torch.ui.app import _options

    assert _options("all", 7, 0.0, "local").exposure is True  # the default, as the CLI's
    assert _options("all", 7, 0.0, "local", exposure=False).exposure is False


def test_detail_follow_option_reaches_the_swap_options():
    from facedancer_torch.ui.app import _options

    assert _options("all", 7, 0.0, "local").detail_follow is False  # the default, as the CLI's
    assert _options("all", 7, 0.0, "local", detail_follow=True).detail_follow is True


def test_identity_strength_reaches_the_swap_options():
    from facedancer_torch.ui.app import _options

    assert _options("all", 7, 0.0, "local").identity_strength is None  # the model's, as the CLI
    assert _options("all", 7, 0.0, "local", identity_strength="model's").identity_strength \
        is None
    assert _options("all", 7, 0.0, "local", identity_strength="0.35").identity_strength == 0.35


def test_the_time_range_reaches_the_swap_options():
    """The video tab's "Swap from" / "Swap until" boxes: seconds or MM:SS, empty = the whole
    clip; a wrong time is one line naming the box."""
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.ui.app import _options

    options = _options("all", 7, 0.0, "local", start=" 1:02.5 ", end="70")
    assert (options.start, options.end) == (62.5, 70.0)
    assert options.span_text() == "from 1:02.5 to 1:10"
    assert _options("all", 7, 0.0, "local", start="", end="").span_text() is None
    with pytest.raises(FacedancerError, match="Swap until is a time"):
        _options("all", 7, 0.0, "local", end="soon")


def test_the_people_picker_shows_a_frames_faces_left_to_right(swapper, videos_dir, tmp_path):
    """The video tab's people picker: the frame as it is (untouched, the --reference photo of
    a pick), its faces left to right, and the ones too small to swap in a video said so."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.video_reader import VideoReader
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.select import face_extent, min_face_pixels
    from facedancer_torch.swap.source import left_to_right

    clip = videos_dir / "crowd_720p.mp4"  # 25 frames/s: frames at 1.00 and 1.04 s
    frame, people = ui_app.frame_people(swapper, clip, 1.03, tmp_path)
    shown = next(iter(VideoReader(clip, from_time=1.0, max_frames=1))).rgb
    assert np.array_equal(read_image(frame), shown)  # on screen at 1.03: the --at frame
    faces = left_to_right(swapper.detect(shown))
    assert [caption.split(":")[0] for _, caption in people] == \
        [f"{n} from the left" for n in range(1, len(faces) + 1)]
    smallest = min_face_pixels(shown.shape, SwapOptions(), video=True)
    small = [face_extent(f.box) < smallest for f in faces]
    assert ["not swapped in a video, smaller than the video minimum face size" in caption
            for _, caption in people] == small
    assert any(small) and not all(small)


def test_the_status_carries_the_sources_notes():
    """A group photo's face chosen by size (swap/source.py) is said in the page, as the CLI
    warns of it."""
    import numpy as np

    from facedancer_torch.swap.select import SelectionPlan
    from facedancer_torch.swap.source import Identity
    from facedancer_torch.ui.app import _notes

    vector = np.ones(4, np.float32)
    plain = SelectionPlan(source=Identity(vector, vector / 2))
    assert _notes(plain) == "" and _notes(SelectionPlan(source=None)) == ""
    noted = SelectionPlan(source=Identity(vector, vector / 2, notes=("a.jpg: 2 faces", "b.jpg: 3")))
    assert _notes(noted) == "\n\nNote: a.jpg: 2 faces.\n\nNote: b.jpg: 3."


def test_password_from_the_environment(capsys):
    fake = _FakeApp()
    ui_app.launch_app(fake, host="0.0.0.0", block=False, password="s3cret")
    assert fake.kwargs["auth"] == ("facedancer", "s3cret")
    assert "warning" not in capsys.readouterr().err  # beyond loopback, but with a login
    fake = _FakeApp()
    ui_app.launch_app(fake, block=False)
    assert fake.kwargs["auth"] is None
    assert ui_app.PASSWORD_ENV in ui_app.host_warning("0.0.0.0")


def test_old_results_expire(tmp_path):
    old, recent, other = tmp_path / "swap-old.png", tmp_path / "swap-new.mp4", tmp_path / "x.txt"
    for path in (old, recent, other):
        path.write_bytes(b"x")
    os.utime(old, (1e9, 1e9))  # 2001
    os.utime(other, (1e9, 1e9))
    fresh = ui_app.new_output(tmp_path, ".png", max_age_s=3600)
    assert fresh.parent == tmp_path and fresh.suffix == ".png" and not fresh.exists()
    assert not old.exists() and recent.exists() and other.exists()  # only our old results go


def test_no_model_is_one_line_error(monkeypatch, tmp_path):
    from facedancer_torch.cli.ui import serve_ui
    from facedancer_torch.models import catalogue

    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "empty-store"))
    monkeypatch.setattr(catalogue.AssetSource, "locate", lambda self: None)
    assert ui_app.available_models() == []
    with pytest.raises(ModelError, match="no model is available for the web UI") as info:
        serve_ui(host="127.0.0.1", port=7860, models=[], max_upload_mb=50)
    assert "\n" not in str(info.value) and "--model" in str(info.value)
    with pytest.raises(ModelError):
        serve_ui(host="127.0.0.1", port=7860, models=[str(tmp_path / "missing")],
                 max_upload_mb=50)


def _authors_r50() -> Path:
    """The authors' RetinaFace-Res50 graph with random weights (skips when it is absent)."""
    folder = shared_path("fixtures", "keras-authors")
    if folder is None:
        pytest.skip("shared fixture 'fixtures/keras-authors' is absent (expected in ../shared "
                    "or $FACEDANCER_SHARED)")
    return folder / "retinaface_r50_small.h5"


def test_available_detectors_offers_converted_r50_only(tmp_path, monkeypatch):
    from facedancer_torch.convert.api import convert_keras_file
    from facedancer_torch.models.store import ModelStore

    h5 = _authors_r50()
    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "store"))
    embedded = ui_app.ModelChoice("retinaface: RetinaFace-MobileNet0.25 (embedded)",
                                  "retinaface")
    assert ui_app.available_detectors() == [embedded]
    store = ModelStore(converter=convert_keras_file)
    # The catalogue's detector downloaded but not converted is not usable: not offered.
    store.downloads.mkdir(parents=True)
    (store.downloads / "RetinaFace-Res50.h5").write_bytes(h5.read_bytes())
    assert ui_app.available_detectors() == [embedded]
    store.add(h5, name="my-r50")  # a custom name: found through the kind its config declares
    generator = save_tiny_generator(tmp_path / "generator")
    assert [c.value for c in ui_app.available_detectors()] == ["retinaface", "my-r50"]
    with pytest.warns(UserWarning, match="registered as the catalogue model 'retinaface-r50'"):
        store.add(store.downloads / "RetinaFace-Res50.h5")
    choices = ui_app.available_detectors([tmp_path / "store" / "models" / "my-r50"])
    assert [c.value for c in choices] == [str(tmp_path / "store" / "models" / "my-r50"),
                                          "retinaface", "retinaface-r50", "my-r50"]
    assert choices[2].label.startswith("retinaface-r50: RetinaFace ResNet-50")
    assert str(generator) not in [c.value for c in ui_app.available_models()]


def test_bad_detector_is_one_line_error_before_serving(tmp_path, monkeypatch):
    from facedancer_torch.cli.ui import serve_ui

    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "store"))
    generator = save_tiny_generator(tmp_path / "generator")
    for value, problem in ((str(tmp_path / "missing"), "not a model directory"),
                           ("retinaface-r50", "is not in the local store"),
                           ("no-such-detector", "neither a model directory nor a known"),
                           (str(generator), "not a face detector model folder (kind: "
                                            "facedancer-generator)")):
        with pytest.raises(ModelError, match="face detector") as info:
            serve_ui(host="127.0.0.1", port=7860, models=[str(generator)], max_upload_mb=50,
                     detectors=[value])
        message = str(info.value)
        assert "\n" not in message and problem in message, message


def test_available_models_lists_given_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "store"))
    model = tmp_path / "my-model"
    model.mkdir()
    choices = ui_app.available_models([model])
    assert choices[0] == ui_app.ModelChoice(f"my-model ({model})", str(model))


# -- a running server ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app with a tiny generator, on 127.0.0.1 (the default host) and a free port."""
    pytest.importorskip("gradio", reason="the web UI needs gradio: pip install "
                        "'facedancer-torch[ui]'")
    from facedancer_torch.swap.pipeline import Swapper

    model = save_tiny_generator(tmp_path_factory.mktemp("tiny_generator"))
    swappers = []

    def factory(value: str, detector: str) -> Swapper:
        swapper = Swapper(value, device="cpu", backend="fused", detector=detector)
        swappers.append(swapper)
        return swapper

    # The detector picker: the embedded detector first (the default), the authors' converted
    # RetinaFace-Res50 when the shared fixture is there, and a folder removed after the start.
    detectors = [ui_app.ModelChoice("retinaface", "retinaface")]
    authors = shared_path("fixtures", "keras-authors")
    if authors is not None:
        from facedancer_torch.convert.keras_retinaface import convert_retinaface

        r50 = convert_retinaface(authors / "retinaface_r50_small.h5",
                                 tmp_path_factory.mktemp("detectors") / "r50")
        detectors.append(ui_app.ModelChoice("authors' RetinaFace-Res50", str(r50)))
    removed = tmp_path_factory.mktemp("removed_detector")
    detectors.append(ui_app.ModelChoice("removed detector", str(removed)))
    app = ui_app.build_app(factory, [ui_app.ModelChoice("tiny random generator", str(model))],
                           output_dir=tmp_path_factory.mktemp("ui_outputs"),
                           detectors=detectors)
    with single_thread():
        url = ui_app.launch_app(app, port=_free_port(), max_upload_mb=UPLOAD_LIMIT_MB,
                                block=False, quiet=True)
        try:
            yield app, url.rstrip("/"), swappers
        finally:
            app.close()


def test_server_binds_loopback_by_default(server):
    app, url, _ = server
    assert app.server_name == "127.0.0.1"
    assert url.startswith("http://127.0.0.1:")


def test_upload_limit(server):
    import httpx

    _, url, _ = server
    too_big = b"\0" * int((UPLOAD_LIMIT_MB + 1) * 1024 * 1024)
    response = httpx.post(f"{url}/gradio_api/upload",
                          files={"files": ("big.jpg", too_big, "image/jpeg")}, timeout=60)
    assert response.status_code == 413
    small = httpx.post(f"{url}/gradio_api/upload",
                       files={"files": ("small.jpg", b"\0" * 1024, "image/jpeg")}, timeout=60)
    assert small.status_code == 200


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs "
                                   "playwright for Python (pip install playwright)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("the browser test needs Debian's chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_browser_image_swap(server, browser, photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.watermark import detect_watermark

    app, url, swappers = server
    source, target = photos_dir / "df_img1.jpg", photos_dir / "fr_obama.jpg"
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    outside: list[str] = []

    def only_this_server(route):  # networking closed: the page must not need anything else
        request_url = route.request.url
        if request_url.startswith(url) or request_url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(request_url)
            route.abort()

    page.route("**/*", only_this_server)
    try:
        page.goto(url)
        page.wait_for_selector("#swap-button", timeout=30_000)
        assert "synthetic media" in page.locator("#provenance-note").inner_text()

        page.locator("#sources input[type=file]").set_input_files([str(source)])
        page.locator("#target input[type=file]").set_input_files(str(target))
        page.wait_for_selector("#target img", timeout=30_000)
        page.locator('#sources [aria-label="df_img1.jpg"]').wait_for(timeout=30_000)
        page.locator("#matte input[type=checkbox]").check()  # the matte to download too
        page.click("#swap-button")
        page.wait_for_selector("#result img", timeout=60_000)
        page.get_by_text("Swapped 1 of 1 face(s).").wait_for(timeout=30_000)
        page.wait_for_function("document.querySelectorAll('#download a').length >= 2",
                               timeout=30_000)
        links = [a.get_attribute("href") for a in page.locator("#download a").all()]
        matte_link = next(h for h in links if "-matte.png" in h)
        served_matte = tmp_path / "matte.png"
        served_matte.write_bytes(page.request.get(matte_link).body())
        assert "synthetic media" in page.locator("#status").inner_text()
        if os.environ.get("FACEDANCER_UI_SCREENSHOT"):
            page.screenshot(path=os.environ["FACEDANCER_UI_SCREENSHOT"], full_page=True)
        response = page.request.get(page.locator("#result img").get_attribute("src"))
        assert response.ok
        served = tmp_path / "served.png"
        served.write_bytes(response.body())

        page.get_by_role("tab", name="Compare").click()  # target | result slider
        page.wait_for_function("document.querySelectorAll('#compare img').length >= 2",
                               timeout=30_000)
        if os.environ.get("FACEDANCER_UI_SCREENSHOT"):
            compare = Path(os.environ["FACEDANCER_UI_SCREENSHOT"])
            page.screenshot(path=str(compare.with_name(compare.stem + "-compare.png")))

        page.reload()  # nothing uploaded: a readable error in the page, no crash
        page.wait_for_selector("#swap-button", timeout=30_000)
        page.click("#swap-button")
        page.get_by_text("Upload at least one photo of the source face.").first.wait_for(
            timeout=30_000)
    finally:
        page.close()
    assert outside == []

    # The browser got the file facedancer wrote: tagged, watermarked, the face swapped.
    tag = read_provenance(served)
    assert tag is not None and tag["content"] == "synthetic media"
    assert tag["faces_swapped"] == "1"
    result, original = read_image(served), read_image(target)
    assert result.shape == original.shape
    assert detect_watermark(result).found
    faces = swappers[0].detect(original)
    assert len(faces) == 1
    x1, y1, x2, y2 = np.asarray(faces[0].box).round().astype(int)
    diff = np.abs(result.astype(np.float32) - original.astype(np.float32))
    assert diff[y1:y2, x1:x2].mean() > 10.0
    assert diff[:64, :64].mean() < 3.0  # far from the face only the watermark's +-1.5
    # The matte: white over the face, black far from it, no synthetic-media tag.
    matte = read_image(served_matte)[:, :, 0]
    assert matte.shape == original.shape[:2]
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    assert matte[cy - 5:cy + 5, cx - 5:cx + 5].min() >= 250 and matte[:64, :64].max() == 0
    assert read_provenance(served_matte) is None


def _image_tab(page, url: str, source: Path, target: Path) -> None:
    """Open the page (its image tab) with ``source`` and the photo ``target`` uploaded."""
    page.goto(url)
    page.wait_for_selector("#swap-button", timeout=30_000)
    page.locator("#sources input[type=file]").set_input_files([str(source)])
    page.locator("#target input[type=file]").set_input_files(str(target))


def _video_tab(page, url: str, source: Path, target: Path) -> None:
    """Open the page's video tab with ``source`` and the video ``target`` uploaded."""
    page.goto(url)
    page.wait_for_selector("#swap-button", timeout=30_000)
    page.get_by_role("tab", name="Video swap").click()
    page.locator("#video-sources input[type=file]").set_input_files(str(source))
    page.locator("#video-target input[type=file]").set_input_files(str(target))
    page.wait_for_selector("#video-target video", timeout=30_000)


def test_browser_video_swap(server, browser, photos_dir, videos_dir, tmp_path):
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.video import probe_video

    _, url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        _video_tab(page, url, photos_dir / "fr_obama.jpg", videos_dir / "talking_c.mp4")
        page.locator("#preview-at textarea").fill("0.5")  # one frame first, as editors do
        page.click("#preview-button")
        page.wait_for_selector("#preview-result img", timeout=120_000)
        page.get_by_text("Preview of the frame at").wait_for(timeout=30_000)
        assert "frame 13 of" in page.locator("#video-status").inner_text()  # 25 frames/s
        page.locator("#max-frames input").fill("6")
        page.locator("#matte input[type=checkbox]").check()  # the options shared by the tabs
        page.click("#video-swap-button")
        page.wait_for_selector("#video-result video", timeout=120_000)
        assert "synthetic media" in page.locator("#video-status").inner_text()
        page.wait_for_function(
            "document.querySelectorAll('#video-download a').length >= 2", timeout=30_000)
        links = [a.get_attribute("href") for a in page.locator("#video-download a").all()]
        served_matte = tmp_path / "matte.mp4"
        served_matte.write_bytes(page.request.get(
            next(h for h in links if "-matte.mp4" in h)).body())
        response = page.request.get(page.locator("#video-result video").get_attribute("src"))
        assert response.ok
        served = tmp_path / "served.mp4"
        served.write_bytes(response.body())
    finally:
        page.close()
    info = probe_video(served)
    assert info.frame_count == 6 and (info.width, info.height) == (524, 524)
    tag = read_provenance(served)
    assert tag is not None and tag["content"] == "synthetic media"
    matte = probe_video(served_matte)  # a clip of the output's frames, no tag
    assert matte.frame_count == 6 and (matte.width, matte.height) == (524, 524)
    assert read_provenance(served_matte) is None


def test_browser_only_this_person(server, browser, photos_dir):
    """"Only swap this person": a photo of one of a group's people, and only their face is
    swapped (the command line's --reference)."""
    _, url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        _image_tab(page, url, photos_dir / "df_img1.jpg", photos_dir / "fr_obama_and_biden.jpg")
        page.locator("#reference input[type=file]").set_input_files(
            [str(photos_dir / "fr_obama.jpg")])
        page.wait_for_selector("#target img", timeout=30_000)
        page.locator('#reference [aria-label="fr_obama.jpg"]').wait_for(timeout=30_000)
        page.click("#swap-button")
        page.get_by_text("Swapped 1 of 3 face(s).").wait_for(timeout=120_000)
    finally:
        page.close()


def test_browser_pick_a_person_in_a_previewed_frame(server, browser, photos_dir, videos_dir,
                                                    tmp_path):
    """The video tab's people picker: the faces of the previewed frame, left to right; a
    click on one and only that person is swapped (the frame as a --reference photo, @N);
    "Swap everyone again" undoes it."""
    import cv2

    from facedancer_torch.io.video import VideoWriter, read_frames

    left = [f.rgb for f in read_frames(videos_dir / "talking_a.mp4", max_frames=8)]
    right = [f.rgb for f in read_frames(videos_dir / "talking_c.mp4", max_frames=8)]
    pair = tmp_path / "pair.mp4"  # two people side by side
    with VideoWriter(pair, 25, crf=18, preset="ultrafast") as writer:
        for a, b in zip(left, right, strict=True):
            writer.write(np.ascontiguousarray(np.hstack([a, cv2.resize(b, a.shape[1::-1])])))
    _, url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        _video_tab(page, url, photos_dir / "df_img1.jpg", pair)
        page.locator("#preview-at textarea").fill("0.1")
        page.click("#preview-button")
        page.get_by_text("swapped 2 of 2 face(s)").wait_for(timeout=120_000)
        # the person on the right
        _pick_second_then_undo(page, "", 2, "#preview-button", "swapped 1 of 2 face(s)",
                               "swapped 2 of 2 face(s)")
    finally:
        page.close()


def _pick_second_then_undo(page, prefix: str, faces: int, run: str, one: str,
                           everyone: str) -> None:
    """In the people picker ``#{prefix}people`` (once it shows ``faces`` faces): pick the
    second face from the left, run (``run``: the button), expect the status ``one``; then
    "Swap everyone again", run, expect ``everyone``."""
    page.wait_for_function(f"document.querySelectorAll('#{prefix}people img').length == "
                           f"{faces}", timeout=60_000)
    page.locator(f"#{prefix}people img").nth(1).click()
    page.get_by_text("face 2 from the left").wait_for(timeout=30_000)
    page.click(run)
    page.get_by_text(one).wait_for(timeout=120_000)
    page.click(f"#{prefix}unpick")
    page.click(run)
    page.get_by_text(everyone).wait_for(timeout=120_000)


def _choose(page, elem_id: str, label: str) -> None:
    """Pick ``label`` in the gradio dropdown ``#elem_id``."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=label).click()


def test_browser_detector_choice(server, browser, photos_dir, tmp_path):
    """The detector picked in the page detects the faces of the swap; a choice that has gone
    bad since the start is one readable line in the page."""
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.images import read_image, write_image
    from facedancer_torch.io.provenance import read_provenance

    _authors_r50()
    _, url, swappers = server
    # Small crops, at half size: the random-weight detector "finds" dozens of faces in any
    # photo (224 in the full-size crop), each one searched and refined (half: 51, a third of
    # the time).
    photo = read_image(photos_dir / "fr_two_people.jpg")
    source, target = tmp_path / "source.png", tmp_path / "target.png"
    for path, part in ((source, photo[100:260, 300:492]), (target, photo[60:300, 260:520])):
        write_image(path, cv2.resize(part, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    r50 = next(c.value for c in server[0].facedancer_detectors if c.label.startswith("authors"))
    with single_thread():
        expected = len(get_detector(r50, device="cpu").detect(read_image(target)))
        embedded = len(get_detector(device="cpu").detect(read_image(target)))
    assert expected > 1 and embedded == 1  # the count in the status says which one ran
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(url)
        page.wait_for_selector("#swap-button", timeout=30_000)
        _choose(page, "detector", "authors' RetinaFace-Res50")
        page.get_by_label("largest", exact=True).check()
        page.locator("#sources input[type=file]").set_input_files([str(source)])
        page.locator("#target input[type=file]").set_input_files(str(target))
        page.wait_for_selector("#target img", timeout=30_000)
        page.locator('#sources [aria-label="source.png"]').wait_for(timeout=30_000)
        page.click("#swap-button")
        page.get_by_text(f"Swapped 1 of {expected} face(s).").wait_for(timeout=120_000)
        response = page.request.get(page.locator("#result img").get_attribute("src"))
        served = tmp_path / "served.png"
        served.write_bytes(response.body())

        removed = next(c.value for c in server[0].facedancer_detectors
                       if c.label == "removed detector")
        Path(removed).rmdir()
        _choose(page, "detector", "removed detector")
        page.click("#swap-button")
        error = page.get_by_text(f"face detector '{removed}' is not available").first
        error.wait_for(timeout=30_000)
        message = error.inner_text()
    finally:
        page.close()
    assert swappers[-1].detector.name == "retinaface-r50"
    assert read_provenance(served)["faces_swapped"] == "1"
    assert "\n" not in message.strip() and "not a model directory" in message


def test_browser_pick_a_person_in_the_target_photo(server, browser, photos_dir):
    """The image tab's people picker: the target photo's faces appear on upload, left to
    right; a click on one and only that person is swapped (TARGET@N as --reference);
    "Swap everyone again" undoes it."""
    _, url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        _image_tab(page, url, photos_dir / "df_img1.jpg", photos_dir / "fr_obama_and_biden.jpg")
        _pick_second_then_undo(page, "photo-", 3, "#swap-button", "Swapped 1 of 3 face(s).",
                               "Swapped 3 of 3 face(s).")
    finally:
        page.close()


def test_the_photo_people_picker_lists_the_targets_faces(swapper, photos_dir):
    gallery = ui_app.image_people(swapper, photos_dir / "df_selfie-many-people.jpg")
    assert [caption for _, caption in gallery] == [
        "1 from the left", "2 from the left", "3 from the left", "4 from the left",
        "5 from the left: not swapped, cut too deeply by the picture's edge",
        "6 from the left"]
    assert all(crop.ndim == 3 and min(crop.shape[:2]) > 40 for crop, _ in gallery)


def test_a_picked_person_is_swapped_whoever_is_largest():
    """A pick in a people picker is the --reference photo, and overrides "Faces: largest"
    (with it, a pick of anyone but the largest face swapped no one)."""
    from facedancer_torch.swap.options import SwapOptions

    largest = SwapOptions(faces="largest")
    picked = ui_app._picking(largest, ["a.jpg"], "/tmp/target.png@2")
    assert (picked.faces, [str(p) for p in picked.reference]) == ("all", ["/tmp/target.png@2"])
    plain = ui_app._picking(largest, ["a.jpg"], None)
    assert (plain.faces, [str(p) for p in plain.reference]) == ("largest", ["a.jpg"])
