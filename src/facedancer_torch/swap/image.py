"""Swap one image file: read, swap the selected faces, watermark, write with the provenance tag.

An image without a face to swap is written unchanged apart from the watermark (so a folder
run still gives one output per input, and every output carries the label).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FacedancerError
from .options import SwapOptions

# write_image() can carry the provenance tag in these; BMP cannot carry text, so it is refused.
IMAGE_OUTPUT_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


def check_image_output(output: Path) -> None:
    """Refuse output suffixes that cannot carry the provenance tag."""
    if output.suffix.lower() not in IMAGE_OUTPUT_SUFFIXES:
        raise FacedancerError(f"cannot write a swapped image as '{output.suffix or '(none)'}' "
                              f"(use one of {' '.join(IMAGE_OUTPUT_SUFFIXES)})", output)


def finish_image(rgb: np.ndarray, options: SwapOptions) -> np.ndarray:
    """Add the invisible watermark unless switched off (``--no-watermark``)."""
    if not options.watermark:
        return rgb
    from ..io.watermark import embed_watermark

    return embed_watermark(rgb)


def swap_image_file(swapper, target: str | Path, output: str | Path, source,
                    options: SwapOptions) -> Path:
    """Swap ``target`` (an image file) into ``output``; returns the output path.

    Raises :class:`~facedancer_torch.errors.InputError` naming the file for an unreadable
    target or a source without a face; nothing is written then.
    """
    from ..io.images import read_image, write_image
    from .pipeline import check_output

    target, output = Path(target), Path(output)
    check_output(output, options.overwrite, target)
    check_image_output(output)
    with swapper.timer.measure("decode"):
        image = read_image(target)
    plan = swapper.plan(source, options)
    result = swapper.swap_image_detailed(image, plan, options)
    with swapper.timer.measure("watermark"):
        rgb = finish_image(result.image, options)
    metadata = swapper.provenance(plan, faces_swapped=str(len(result.faces)))
    with swapper.timer.measure("encode"):
        write_image(output, rgb, metadata=metadata)
    return output
