"""What an output keeps of its source image: transparency, 16 bits, the way it was compressed.

:mod:`.images` reads every picture as 8-bit RGB (transparency composited onto black), which
is what detection and the swap work on; these functions put back what that reading dropped,
for the pixels the swap did not change: the file's own straight colours beside its alpha
(:func:`straight_colours`), its 16-bit samples (:func:`read_image_deep`,
:func:`deep_with_change`, also for 10-bit video frames), and its compression
(:func:`read_save_settings`: a JPEG's own tables, a lossless WebP, a TIFF's compression).
``write_image(alpha=, deep=, like=)`` writes them.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin

from .images import is_greyscale_file, pillow, read_icc_profile, read_image
from .media_meta import webp_is_lossless


def straight_colours(rgb: np.ndarray, rgba: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The straight RGB to write beside ``rgba``'s alpha after ``rgb`` (the composited picture
    :func:`read_image_rgba` gave, changed) was edited.

    Opaque pixels take ``rgb``; transparent ones keep the file's own colour (invisible, kept
    as it was); half-transparent ones keep it too unless ``changed`` (``(H, W)`` bool: the
    edit touched them), where ``rgb`` is divided by their opacity again (the composite was
    multiplied by it)."""
    alpha = rgba[:, :, 3]
    out = rgba[:, :, :3].copy()
    opaque = alpha == 255
    out[opaque] = rgb[opaque]
    partial = changed & (alpha > 0) & ~opaque
    if partial.any():
        scale = 255.0 / alpha[partial].astype(np.float32)[:, None]
        out[partial] = np.clip(np.rint(rgb[partial].astype(np.float32) * scale), 0,
                               255).astype(np.uint8)
    return out


# Pillow's EXIF orientation transposes, as numpy: Pillow reads 16-bit RGB as 8-bit, so the
# 16-bit pixels come from OpenCV.
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a.transpose(1, 0, 2), 2), 8: lambda a: np.rot90(a, 1)}


def read_image_deep(path: str | Path) -> np.ndarray | None:
    """The straight ``(H, W, 3)`` uint16 RGB of a 16-bit PNG or TIFF (what a photographer's
    editor exports), upright like :func:`read_image`; None for any other image. Pillow hands
    such files out at 8 bits; a swap keeps the other bits where it changes nothing
    (:func:`deep_with_change`, ``write_image(deep=)``)."""
    path = Path(path)
    Image = pillow()
    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                with path.open("rb") as handle:
                    head = handle.read(26)
                sixteen = head[12:16] == b"IHDR" and head[24] == 16
            elif image.format == "TIFF":
                bits = image.tag_v2.get(258, (8,))
                sixteen = max(bits if isinstance(bits, tuple) else (bits,)) == 16
            else:
                return None
            orientation = int(image.getexif().get(0x0112, 1) or 1)
    except Exception:
        return None  # read_image says what is wrong with the file
    if not sixteen:
        return None
    array = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        return None
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 2:  # grey + alpha
        array = np.repeat(array[:, :, :1], 3, axis=2)
    else:
        array = array[:, :, 2::-1]  # BGR(A) -> RGB
    if orientation not in _ORIENT:
        return np.ascontiguousarray(array)
    # OpenCV turns some formats by their orientation itself (TIFF, whatever the flags say):
    # of the picture as decoded and turned, keep the one that is Pillow's upright picture.
    upright = read_image(path).astype(np.int32)
    best = None
    for candidate in (array, _ORIENT[orientation](array)):
        if candidate.shape == upright.shape:
            error = float(np.abs((candidate >> 8).astype(np.int32) - upright).mean())
            if best is None or error < best[0]:
                best = (error, candidate)
    return None if best is None else np.ascontiguousarray(best[1])


def deep_with_change(deep: np.ndarray, base: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The 16-bit picture to write: the source's own ``deep`` pixels plus the change made to
    their 8-bit version ``base`` (``changed - base``: a swap, the watermark), so that a pixel
    nothing changed keeps every bit of the source and a changed one keeps its fraction below
    8 bits (no banding where the watermark touched a smooth gradient)."""
    change = changed.astype(np.int32) - base.astype(np.int32)
    return np.clip(deep.astype(np.int32) + change * 257, 0, 65535).astype(np.uint16)


def keep_source(result: np.ndarray, edited: np.ndarray, decoded: np.ndarray,
                rgba: np.ndarray | None = None, deep: np.ndarray | None = None,
                keep_alpha: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(rgb, alpha, deep)`` to write for a picture ``decoded`` (8-bit, transparency
    composited onto black) that an edit turned into ``edited`` and that, watermarked, is
    ``result``: for a transparent source (``rgba``) with ``keep_alpha``, straight colours and
    its alpha (:func:`straight_colours`); for a 16-bit source (``deep``), the 16-bit picture
    with the change (:func:`deep_with_change`; None where the output gets the composite of a
    transparent source, which ``deep``'s straight colours are not). A still and a video frame
    go through this alike."""
    alpha, base = None, decoded
    if rgba is not None and keep_alpha:
        result = straight_colours(result, rgba, np.any(edited != decoded, axis=2))
        alpha, base = rgba[:, :, 3], rgba[:, :, :3]
    elif rgba is not None:
        deep = None
    if deep is not None:
        deep = deep_with_change(deep, base, result)
    return result, alpha, deep


def written_like(path: str | Path) -> dict:
    """``write_image`` keyword arguments that write a picture as the image file ``path`` was
    written: its colour profile (a grey one for a black-and-white file), its compression
    (:func:`read_save_settings`) and its single grey channel where it had one."""
    grey = is_greyscale_file(path)
    return {"icc_profile": read_icc_profile(path, grey), "like": read_save_settings(path),
            "grey": grey}


# The coarsest JPEG a swap writes with a JPEG target's own tables (see read_save_settings).
JPEG_FLOOR_QUALITY: int = 50
_FLOOR_TABLES: dict | None = None


def _floor_tables() -> dict:
    """libjpeg's tables at :data:`JPEG_FLOOR_QUALITY` (luma 0, chroma 1), as Pillow writes
    and reads them back (the same order as a file's ``quantization``)."""
    global _FLOOR_TABLES
    if _FLOOR_TABLES is None:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "JPEG", quality=JPEG_FLOOR_QUALITY)
        with Image.open(buffer) as image:
            _FLOOR_TABLES = {k: list(v) for k, v in image.quantization.items()}
    return _FLOOR_TABLES


# TIFF compressions a swap keeps (lossless ones; a JPEG-in-TIFF is written as Pillow's default)
_TIFF_COMPRESSIONS = frozenset({"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate",
                                "packbits"})


def read_save_settings(path: str | Path) -> dict | None:
    """How an image file was compressed, as ``write_image(like=)`` options for an output of
    the same format (``"format"`` says which): a JPEG's own quantization tables (no
    coarser than quality :data:`JPEG_FLOOR_QUALITY`) and a colour one's chroma subsampling (a
    black-and-white one has a single table, written grey: ``write_image(grey=True)``); a
    lossless WebP's ``lossless``; a TIFF's lossless compression. None for anything else (PNG
    is lossless anyway).

    Written again with its own tables, a JPEG's pixels come back nearly as decoded (on 40
    shared photos 0.05 grey levels mean, 0.05 % of pixels more than 4 off); written at a fixed
    quality 95 with 4:2:0 chroma they moved 0.48 levels on average and up to 14 % of a
    high-quality 4:4:4 photo's pixels more than 4 levels, and such a photo shrank to a third
    of its size: the whole photo lost quality where the swap touched only the face. A lossless
    WebP (a screenshot, a graphic) was written lossy."""
    Image = pillow()
    try:
        with Image.open(Path(path)) as image:
            fmt = image.format
            if fmt == "WEBP":
                lossless = webp_is_lossless(Path(path).read_bytes())
                return {"format": "WEBP", "lossless": True} if lossless else None
            if fmt == "TIFF":
                compression = image.info.get("compression")
                return {"format": "TIFF", "compression": compression} \
                    if compression in _TIFF_COMPRESSIONS else None
            if fmt != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            grey = image.mode == "L"
            tables = getattr(image, "quantization", None)
            sampling = JpegImagePlugin.get_sampling(image)
    except Exception:  # read_image says what is wrong with the file
        return None
    if not tables or len(tables) < (1 if grey else 2):
        return None
    # Never coarser than JPEG_FLOOR_QUALITY: the watermark must survive our own output (a
    # quality 25 photo's tables lost it: z = 8 against the threshold 10; at 40, z = 130).
    floor = _floor_tables()
    settings: dict = {"format": "JPEG", "qtables": {
        k: [min(int(a), int(b)) for a, b in zip(v, floor[min(k, 1)], strict=True)]
        if len(v) == 64 else list(v) for k, v in tables.items()}}
    if sampling in (0, 1, 2) and not grey:
        settings["subsampling"] = sampling
    return settings
