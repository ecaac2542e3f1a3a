"""``facedancer demo``: the result grid of the shipped example photos, its labels and errors.

No demo model ships yet, so the swap is made with a tiny random generator (``--model``): it
gives no likeness, but it changes the target's face and nothing far from it, which is what is
checked here, together with the layout, the provenance tag and the watermark of the grid.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from swaputil import run_cli, single_thread

from facedancer_torch import demo
from facedancer_torch.errors import InputError, ModelError


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    """The model store stays in tmp (ONNX exports go to the run's cache: conftest)."""
    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "home"))


def _panel_boxes(grid_rows: list[list[np.ndarray]], panel_height: int = demo._PANEL_HEIGHT):
    """(x, y, w, h) of every panel as compose_grid places them (narrower ones centred)."""
    widths = [max(round(row[c].shape[1] * panel_height / row[c].shape[0]) for row in grid_rows)
              for c in range(len(grid_rows[0]))]
    boxes = []
    for r, row in enumerate(grid_rows):
        x = demo._GAP
        boxes.append([])
        for c, image in enumerate(row):
            w = round(image.shape[1] * panel_height / image.shape[0])
            y = demo._CAPTION_HEIGHT + r * (panel_height + demo._GAP)
            boxes[-1].append((x + (widths[c] - w) // 2, y, w, panel_height))
            x += widths[c] + demo._GAP
    return boxes


def test_compose_grid_places_every_panel():
    red = np.full((100, 50, 3), (255, 0, 0), np.uint8)
    green = np.full((60, 60, 3), (0, 255, 0), np.uint8)
    blue = np.full((30, 90, 3), (0, 0, 255), np.uint8)
    rows = [[red, green, blue], [blue, red, green]]
    grid = demo.compose_grid(rows, ("a", "b", "c"), footer="synthetic", panel_height=40)
    assert grid.dtype == np.uint8 and grid.ndim == 3
    for row, boxes in zip(rows, _panel_boxes(rows, 40)):
        for image, (x, y, w, h) in zip(row, boxes):
            inner = grid[y + 2:y + h - 2, x + 2:x + w - 2].reshape(-1, 3)
            assert np.abs(inner.astype(int) - image[0, 0]).max() <= 1
    # captions and footer are drawn: dark pixels above the first row and under the last
    assert grid[:demo._CAPTION_HEIGHT].min() < 128
    assert grid[-demo._FOOTER_HEIGHT:].min() < 200
    with pytest.raises(ValueError):
        demo.compose_grid([[red, green]], ("a", "b", "c"))


def test_demo_cli_writes_labelled_grid(tiny_model, tmp_path):
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.watermark import detect_watermark

    output = tmp_path / "result.png"
    result = run_cli("demo", "--output", output, "--model", tiny_model, "--backend", "fused",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "identity cosine of the swap" in result.stdout
    tag = read_provenance(output)
    assert tag is not None and tag["content"] == "synthetic media"
    assert tag["layout"] == "source | target | swap" and tag["faces_swapped"] == "1"
    # the source photo's hash is recorded, as for every swap
    from facedancer_torch.io.provenance import sha256_file

    assert tag["source_sha256"] == sha256_file(demo.DEFAULT_SOURCE)
    grid = read_image(output)
    assert detect_watermark(grid).found

    source, target = read_image(demo.DEFAULT_SOURCE), read_image(demo.DEFAULT_TARGET)
    rows = [[source, target, target]]
    (sx, sy, sw, sh), (tx, ty, tw, th), (wx, wy, ww, wh) = _panel_boxes(rows)[0]
    assert grid.shape[1] == wx + ww + demo._GAP
    import cv2

    def panel(x, y, w, h):
        return grid[y:y + h, x:x + w].astype(np.float32)

    expected_source = cv2.resize(source, (sw, sh), interpolation=cv2.INTER_AREA)
    expected_target = cv2.resize(target, (tw, th), interpolation=cv2.INTER_AREA)
    # the input panels are the photos (the watermark moves pixels by ~1.5 grey levels)
    assert np.abs(panel(sx, sy, sw, sh) - expected_source).mean() < 3.0
    assert np.abs(panel(tx, ty, tw, th) - expected_target).mean() < 3.0
    # the swap panel: the target's face changed, the background around it did not
    face = largest_face(get_detector("retinaface").detect(target))
    scale = th / target.shape[0]
    x1, y1, x2, y2 = (np.asarray(face.box) * scale).round().astype(int)
    swap_panel, target_panel = panel(wx, wy, ww, wh), panel(tx, ty, tw, th)
    inside = np.abs(swap_panel[y1:y2, x1:x2] - target_panel[y1:y2, x1:x2]).mean()
    corner = np.abs(swap_panel[:40, :40] - target_panel[:40, :40]).mean()
    assert inside > 10.0, inside
    assert corner < 3.0, corner


def test_demo_without_default_model_is_one_line_error(tmp_path):
    """As long as no demo model is installed, `facedancer demo` says how to pass --model.

    The embedded model is hidden in the subprocess, so this keeps testing the message once
    the model ships.
    """
    output = tmp_path / "result.png"
    script = (
        "import sys\n"
        "from facedancer_torch.models import catalogue\n"
        "catalogue.AssetSource.locate = lambda self: None\n"
        "from facedancer_torch.cli import main\n"
        f"sys.argv = ['facedancer', 'demo', '--output', {str(output)!r}]\n"
        "main()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no default model is installed")
    assert "--model" in lines[0] and "Traceback" not in result.stderr
    assert not output.exists()


def test_default_model_error_in_process(monkeypatch):
    from facedancer_torch.models import catalogue

    monkeypatch.setattr(catalogue.AssetSource, "locate", lambda self: None)
    with pytest.raises(ModelError, match="no default model is installed"):
        demo._default_model(None)
    assert demo._default_model("some/dir") == "some/dir"


def test_demo_with_own_photos(swapper, photos_dir, tmp_path):
    result = demo.run_demo(tmp_path / "mine.jpg", source=photos_dir / "df_img1.jpg",
                           target=photos_dir / "fr_obama.jpg", swapper=swapper)
    assert result.output.is_file() and result.faces_swapped == 1
    for value in (result.similarity_to_source, result.similarity_to_target,
                  result.source_target_similarity):
        assert -1.0 <= value <= 1.0
    # a random generator erases the target's identity without giving the source's
    assert result.similarity_to_target < 0.9


def test_demo_errors_name_the_file(swapper, tmp_path):
    from facedancer_torch.io.images import write_image

    blank = tmp_path / "blank.png"
    write_image(blank, np.full((128, 128, 3), 127, np.uint8))
    with pytest.raises(InputError, match="no face found in the target") as info:
        demo.run_demo(tmp_path / "a.png", target=blank, swapper=swapper)
    assert str(blank) in str(info.value)
    with pytest.raises(InputError, match="source photo does not exist"):
        demo.run_demo(tmp_path / "b.png", source=tmp_path / "missing.jpg", swapper=swapper)
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep")
    with pytest.raises(Exception, match="already exists"):
        demo.run_demo(existing, swapper=swapper)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(Exception, match="cannot write"):
        demo.run_demo(tmp_path / "grid.bmp", swapper=swapper)
    assert not (tmp_path / "a.png").exists()
