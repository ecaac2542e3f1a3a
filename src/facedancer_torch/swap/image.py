"""Swap one image file: read, swap the selected faces, watermark, write with the provenance tag.

Only an output in which a face was swapped is synthetic media: it gets the provenance tag
(saying how many faces were swapped) and the invisible watermark. An image in which nothing was
swapped is written unchanged (byte for byte when the format stays the same) and unlabelled, and
the report says so, so that ``facedancer verify`` never calls an untouched photo a swap.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from ..io.fidelity import keep_source, read_image_deep, written_like
from ..io.images import read_image_rgba, write_image
from ..io.watermark import embed_watermark
from .checks import check_image_output, check_output
from .matte import check_matte, write_matte_image
from .options import SwapOptions
from .report import FileReport


def finish_image(rgb: np.ndarray, options: SwapOptions) -> np.ndarray:
    """Add the invisible watermark unless switched off (``--no-watermark``)."""
    if not options.watermark:
        return rgb
    return embed_watermark(rgb)


def write_unchanged(target: Path, output: Path, rgb: np.ndarray,
                    rgba: np.ndarray | None = None) -> None:
    """Write an untouched target: a byte copy when the format is the same, else re-encoded
    without any provenance tag (nothing in it is synthetic), with its colour profile, its
    transparency (``rgba``: :func:`~facedancer_torch.io.images.read_image_rgba`'s) and its 16
    bits where it had them."""
    if target.suffix.lower() == output.suffix.lower():
        with atomic_path(output) as tmp:
            shutil.copyfile(target, tmp)
        return
    colour, alpha = (rgb, None) if rgba is None else (rgba[:, :, :3], rgba[:, :, 3])
    write_image(output, colour, alpha=alpha, deep=read_image_deep(target),
                **written_like(target))


def swap_image_file(swapper, target: str | Path, output: str | Path, source,
                    options: SwapOptions) -> FileReport:
    """Swap ``target`` (an image file) into ``output``; returns what was done.

    Raises :class:`~facedancer_torch.errors.InputError` naming the file for an unreadable
    target or a source without a face; nothing is written then.
    """
    target, output = Path(target), Path(output)
    check_output(output, options.overwrite, target)
    check_image_output(output)
    if options.matte is not None:
        check_matte(options.matte, output, target, "image", options.overwrite)
    if options.span_text():  # one warning per run (the same words for every image)
        warnings.warn("--start/--end apply to videos; images are swapped whole", stacklevel=2)
    with swapper.timer.measure("decode"):
        image, rgba = read_image_rgba(target)  # rgba: a transparent target's own pixels
    plan = swapper.plan(source, options)
    result = swapper.swap_image_detailed(image, plan, options)
    report = FileReport(path=output, kind="image", detected=result.detected,
                        swapped=len(result.faces), too_small=result.too_small,
                        profiles=result.profiles, cut=result.cut,
                        frames_swapped=int(result.changed), nearest=result.nearest,
                        threshold=plan.threshold)
    if options.matte is not None:  # (all black when nothing was swapped: nothing replaced)
        write_matte_image(options.matte, result.coverage, image.shape, output)
    if not result.changed:
        with swapper.timer.measure("encode"):
            write_unchanged(target, output, image, rgba)
        return report
    with swapper.timer.measure("watermark"):
        rgb = finish_image(result.image, options)
    metadata = swapper.provenance(plan, faces_swapped=str(len(result.faces)))
    # A cut-out or a sticker stays transparent where it was, a 16-bit photo keeps its bits
    # where the swap changed nothing.
    deep = read_image_deep(target) if output.suffix.lower() in (".png", ".tif", ".tiff") \
        else None
    rgb, alpha, deep = keep_source(rgb, result.image, image, rgba, deep)
    with swapper.timer.measure("encode"):
        # The target's colour profile goes with its pixels (a viewer shows them through it);
        # compressed as the target was (a JPEG's own tables): the rest of the photo stays. A
        # black-and-white photo stays one grey channel (the swap made its face grey).
        write_image(output, rgb, metadata=metadata, alpha=alpha, deep=deep,
                    **written_like(target))
    return report
