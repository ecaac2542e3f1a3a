"""``facedancer demo``: one swap of the shipped example photos, written as a labelled grid.

The README's first command. It swaps the identity of a public-domain source photo onto a
public-domain target photo (``assets/examples``, see ATTRIBUTION.md there) with the default
model and writes ``source | target | swap`` side by side with captions, so a reader sees in one
picture what the model keeps (pose, expression, lighting of the target) and what it changes
(the identity). The grid goes through the same output path as every swap: invisible watermark
(``io/watermark.py``) and the provenance tag in the file metadata (``io/provenance.py``).

:func:`compose_grid` is also what a results figure with several rows is made with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError, ModelError
from .io.images import read_image, write_image
from .models.catalogue import find_entry
from .models.store import ModelStore
from .swap.image import check_image_output, finish_image
from .swap.options import SwapOptions
from .swap.pipeline import DEMO_MODEL, Swapper, check_output

EXAMPLES_DIR: Path = Path(__file__).resolve().parent / "assets" / "examples"
# Grace Hopper (US Navy) gives her identity to Eileen Collins (NASA): both public domain. The
# other way round, the demo model's swap kept so much of Grace Hopper's glasses, wrinkles and
# face that it read as the target (identity cosine to the source 0.43, to the target 0.81);
# this way it reads as the source (0.67 / 0.55).
DEFAULT_SOURCE: Path = EXAMPLES_DIR / "grace_hopper.jpg"
DEFAULT_TARGET: Path = EXAMPLES_DIR / "astronaut.jpg"
CAPTIONS: tuple[str, str, str] = ("source (identity)", "target (pose, expression)",
                                  "swap (synthetic)")

_PANEL_HEIGHT = 384
_GAP = 8
_CAPTION_HEIGHT = 30
_FOOTER_HEIGHT = 26
_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)
_FAINT = (90, 90, 90)


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote and measured.

    ``similarity_to_source`` / ``similarity_to_target``: cosine similarity between the identity
    embedding of the swapped face and that of the source photo / of the original target face
    (the model's own identity encoder, same landmarks); ``source_target_similarity`` is the
    baseline between the two people. A model that transfers identity moves the first up and
    the second down; a random model does neither.
    """

    output: Path
    model: str
    faces_swapped: int
    similarity_to_source: float
    similarity_to_target: float
    source_target_similarity: float


def _font(size: int):
    try:  # Pillow >= 10.1 ships a scalable default font (needs FreeType)
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _fit_height(rgb: np.ndarray, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    width = max(1, round(w * height / h))
    interpolation = cv2.INTER_AREA if height < h else cv2.INTER_CUBIC
    return cv2.resize(rgb, (width, height), interpolation=interpolation)


def compose_grid(rows: Sequence[Sequence[np.ndarray]], captions: Sequence[str] = CAPTIONS,
                 footer: str | None = None, panel_height: int = _PANEL_HEIGHT) -> np.ndarray:
    """Lay images out in a captioned grid; ``(H, W, 3)`` uint8 RGB.

    Args:
        rows: rows of ``(h, w, 3)`` uint8 RGB images (each row as long as ``captions``); each
            image is scaled to ``panel_height`` keeping its aspect ratio and centred in its
            column (a column is as wide as its widest image).
        captions: one caption per column, drawn above the first row.
        footer: a line of small text under the grid (the synthetic-media note).
    """
    if not rows or any(len(row) != len(captions) for row in rows):
        raise ValueError("every row needs one image per caption")
    scaled = [[_fit_height(np.asarray(image, dtype=np.uint8), panel_height) for image in row]
              for row in rows]
    widths = [max(row[c].shape[1] for row in scaled) for c in range(len(captions))]
    width = sum(widths) + _GAP * (len(widths) + 1)
    height = (_CAPTION_HEIGHT + len(rows) * (panel_height + _GAP) + _GAP
              + (_FOOTER_HEIGHT if footer else 0))
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    caption_font, footer_font = _font(18), _font(13)
    x = _GAP
    for column, caption in enumerate(captions):
        draw.text((x + widths[column] / 2, _CAPTION_HEIGHT / 2 + 2), caption, fill=_INK,
                  font=caption_font, anchor="mm")
        y = _CAPTION_HEIGHT
        for row in scaled:
            panel = row[column]
            offset = (widths[column] - panel.shape[1]) // 2
            canvas.paste(Image.fromarray(panel), (x + offset, y))
            y += panel_height + _GAP
        x += widths[column] + _GAP
    if footer:
        draw.text((_GAP, height - _FOOTER_HEIGHT / 2), footer, fill=_FAINT, font=footer_font,
                  anchor="lm")
    return np.asarray(canvas)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def run_demo(output: str | Path, model: str | Path | None = None,
             source: str | Path | None = None, target: str | Path | None = None, *,
             device: str = "auto", backend: str = "auto", overwrite: bool = False,
             watermark: bool = True, swapper=None) -> DemoResult:
    """Swap ``source``'s identity onto the largest face of ``target`` and write the grid.

    Args:
        output: the grid image (``.png``, ``.jpg``, ``.webp``, ``.tif``): written atomically,
            watermarked (unless ``watermark=False``) and tagged with the provenance metadata.
        model: model directory or catalogue name; None = the embedded demo model (a one-line
            :class:`~facedancer_torch.errors.ModelError` when it is not installed).
        source, target: photos; None = the shipped public-domain examples.
        device, backend: where and how the generator runs (as ``facedancer swap``).
        swapper: an already loaded :class:`~facedancer_torch.swap.pipeline.Swapper` (then
            ``model``, ``device`` and ``backend`` are ignored).

    Raises:
        FacedancerError: a missing model, an unreadable photo, no face in one of them, an
            existing output without ``overwrite``.
    """
    output = Path(output)
    source = Path(source) if source is not None else DEFAULT_SOURCE
    target = Path(target) if target is not None else DEFAULT_TARGET
    check_output(output, overwrite, target)
    check_image_output(output)
    for photo, role in ((source, "source"), (target, "target")):
        if not photo.is_file():
            raise InputError(f"{role} photo does not exist", photo)
    if swapper is None:
        swapper = Swapper(_default_model(model), device=device, backend=backend)
    options = SwapOptions(faces="largest", watermark=watermark, overwrite=overwrite)
    plan = swapper.plan(source, options)
    source_rgb, target_rgb = read_image(source), read_image(target)
    result = swapper.swap_image_detailed(target_rgb, plan, options)
    if not result.faces:
        raise InputError("no face found in the target image", target)
    landmarks = [face.landmarks for face in result.faces]
    swapped_units = swapper.identify(result.image, landmarks)
    target_units = swapper.identify(target_rgb, landmarks)
    model_name = Path(str(swapper.model_name)).name
    footer = (f"Synthetic media: the right image is a face swap made with facedancer-torch "
              f"(model {model_name}). Photos: public domain (see ATTRIBUTION.md).")
    if source != DEFAULT_SOURCE or target != DEFAULT_TARGET:
        footer = (f"Synthetic media: the right image is a face swap made with facedancer-torch "
                  f"(model {model_name}).")
    grid = compose_grid([[source_rgb, target_rgb, result.image]], CAPTIONS, footer)
    grid = finish_image(grid, options)
    metadata = swapper.provenance(plan, faces_swapped=str(len(result.faces)),
                                  layout="source | target | swap")
    write_image(output, grid, metadata=metadata)
    return DemoResult(
        output=output, model=str(swapper.model_name), faces_swapped=len(result.faces),
        similarity_to_source=_cosine(swapped_units[0], plan.source.unit),
        similarity_to_target=_cosine(swapped_units[0], target_units[0]),
        source_target_similarity=_cosine(plan.source.unit, target_units[0]))


def _default_model(model: str | Path | None) -> str | Path | None:
    """``model`` as given; without one, the embedded demo model or a one-line error."""
    if model is not None and str(model).strip():
        return model

    entry = find_entry(DEMO_MODEL)
    if entry is None or not ModelStore().status(entry).present:
        raise ModelError(
            f"no default model is installed (the embedded '{DEMO_MODEL}' is not shipped in "
            "this version); pass --model DIR (a trained, converted or exported model folder) "
            "or --model NAME (see `facedancer models list`)")
    return None
