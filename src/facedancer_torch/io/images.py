"""Still images in and out: robust decoding to RGB uint8, atomic encoding with text metadata.

Conventions: arrays are ``(H, W, 3)`` uint8 in **RGB** order (never BGR), rows top to bottom,
already rotated upright according to the file's EXIF orientation.

Decoding goes through Pillow (EXIF, CMYK, palettes, 16-bit, multi-frame files); files Pillow
cannot identify are retried with OpenCV. Every way a file can be unusable (missing, empty,
truncated, not an image, absurdly large) becomes an :class:`~facedancer_torch.errors.InputError`
whose message names the file, so batch tools can record it and go on.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ..errors import FacedancerError, InputError
from .atomic import atomic_path, atomic_write_bytes
from .media_meta import (png_insert_iccp, png_insert_text, unwrap_metadata_json, webp_is_lossless,
                         wrap_metadata_json)

# Readable image formats: any of them works as a source, a target or an input to align (AVIF
# is decoded by Pillow, HEIC/HEIF, a phone camera's photos, by pillow-heif's opener; outputs
# are written in the formats of _WRITE_FORMATS).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif"})
# GIFs and APNGs are treated as (possibly one-frame) clips: animations are video in all but
# name. A .webp or .png file is a still image or an animation depending on what it holds
# (:func:`is_animated`), and is swapped as one or the other.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif",
     ".apng"})
# Suffixes a still image and an animation share: the file's frame count decides.
ANIMATABLE_EXTENSIONS: frozenset[str] = frozenset({".webp", ".png"})

# Refuse to decode more pixels than this: decompression bombs must become a reported bad file,
# not an out-of-memory kill. 100 Mpx (10000 x 10000, a 100 MP camera) is 300 MB as RGB uint8;
# swapping one peaked at 3.3 GB (docs/failures.md), which a 16 GB machine survives.
MAX_PIXELS: int = 100_000_000


def pillow():
    """``PIL.Image``, with Pillow's own bomb check set to :data:`MAX_PIXELS`.

    Set (to the same value every time), never toggled around a call: toggling raced with other
    threads, which could open a bomb while the check was off. Pillow warns above the limit and
    raises above twice it; its warning is silenced because :func:`read_image` refuses such
    images itself with a one-line error, and reading the metadata of one is harmless.
    """
    if Image.MAX_IMAGE_PIXELS != MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    _register_heif()
    return Image


_HEIF_REGISTERED = False


def _register_heif() -> None:
    """Let Pillow open HEIC/HEIF (iPhones save photos so). pillow-heif turns the picture
    upright as it decodes (and sets the EXIF orientation to 1, so it is not turned twice) and
    gives its colour profile (Display P3) like any other format's."""
    global _HEIF_REGISTERED
    if _HEIF_REGISTERED:
        return
    _HEIF_REGISTERED = True
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # a core dependency; without it HEIC files are "not a readable image"
        return
    register_heif_opener()

# EXIF ImageDescription (0x010E): our metadata as ASCII JSON in JPEG, WebP and TIFF files.
_EXIF_DESCRIPTION = 0x010E

_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                  ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def is_animated(path: str | Path) -> bool:
    """True if ``path`` is an existing image file holding more than one frame (an animated
    WebP or PNG); False for a still, a missing or an unreadable file."""
    Image = pillow()
    try:
        with Image.open(Path(path)) as image:
            return getattr(image, "n_frames", 1) > 1
    except Exception:  # read_image or the video reader says what is wrong with the file
        return False


def is_image_path(path: str | Path) -> bool:
    """True if the suffix of ``path`` is one of :data:`IMAGE_EXTENSIONS` (case-insensitive)
    and, for a suffix an animation shares (``.webp``, ``.png``), the file is not animated."""
    suffix = Path(path).suffix.lower()
    if suffix in ANIMATABLE_EXTENSIONS:
        return not is_animated(path)
    return suffix in IMAGE_EXTENSIONS


def is_video_path(path: str | Path) -> bool:
    """True if the suffix of ``path`` is one of :data:`VIDEO_EXTENSIONS` (case-insensitive),
    or ``path`` is an animated WebP or PNG (a sticker, a meme: swapped frame by frame)."""
    suffix = Path(path).suffix.lower()
    if suffix in ANIMATABLE_EXTENSIONS:
        return is_animated(path)
    return suffix in VIDEO_EXTENSIONS


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError("file does not exist", path)
    if not path.is_file():
        raise InputError("not a regular file", path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", path) from exc
    if not data:
        raise InputError("empty file (0 bytes)", path)
    return data


def _to_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    """Any decoded pixel array (gray, gray+alpha, RGB, RGBA; 8/16-bit or float) as ``(H, W, C)``
    uint8 with its channels as they are (straight, not premultiplied, alpha last)."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"unsupported pixel layout {tuple(array.shape)}", path)
    if array.dtype == np.uint8:
        return array
    if array.dtype in (np.uint16, np.int32, np.uint32, np.int64):
        # 16-bit samples keep their high byte, as Pillow does for 16-bit RGB PNGs.
        return (np.clip(array, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(finite.max()) if finite.size else 0.0
        return np.clip(np.rint(finite * (255.0 if peak <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    raise InputError(f"unsupported sample type {array.dtype}", path)


def _to_rgb_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    """Any decoded pixel array (gray, gray+alpha, RGB, RGBA; 8/16-bit or float) to RGB uint8.

    Alpha is composited onto black, the same value the aligner uses outside the image.
    """
    values = _to_uint8(array, path)
    if values.shape[2] in (2, 4) and bool((values[:, :, -1] == 255).all()):
        values = values[:, :, :-1]  # opaque: nothing to composite
    elif values.shape[2] in (2, 4):
        alpha = values[:, :, -1:].astype(np.float32) / 255.0
        values = np.clip(np.rint(values[:, :, :-1].astype(np.float32) * alpha), 0,
                         255).astype(np.uint8)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    values = np.ascontiguousarray(values)
    # Pillow hands out read-only buffers; callers may draw on or blend into the image.
    return values if values.flags.writeable else values.copy()


def _to_rgba_uint8(array: np.ndarray, path: Path) -> np.ndarray | None:
    """The straight RGBA uint8 of a decoded array with an alpha channel that is not opaque
    everywhere, else None (nothing to keep)."""
    values = _to_uint8(array, path)
    if values.shape[2] not in (2, 4) or bool((values[:, :, -1] == 255).all()):
        return None
    colour = values[:, :, :-1]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return np.ascontiguousarray(np.concatenate([colour, values[:, :, -1:]], axis=2))


def _decode_with_pillow(data: bytes, path: Path) -> np.ndarray:
    Image = pillow()
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InputError(f"image too large (more than twice {MAX_PIXELS} pixels)", path) from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError(f"image has no pixels ({width}x{height})", path)
    if width * height > MAX_PIXELS:
        raise InputError(f"image too large ({width}x{height}, more than {MAX_PIXELS} pixels)",
                         path)
    image.load()  # raises on truncated or corrupt data
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("L" if mode == "1" else "RGB")
    elif mode in ("RGBa", "La"):  # premultiplied alpha
        image = image.convert("RGBA" if mode == "RGBa" else "LA")
    return np.asarray(image)


def _decode_with_opencv(data: bytes, path: Path) -> np.ndarray:
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputError("not a readable image (unknown format or corrupt data)", path)
    if array.ndim == 3 and array.shape[2] >= 3:  # OpenCV decodes to BGR(A)
        array = np.concatenate([array[:, :, 2::-1], array[:, :, 3:]], axis=2)
    return array


def _decode(path: Path) -> np.ndarray:
    """The decoded pixel array of an image file (any layout :func:`_to_uint8` takes)."""
    data = _read_bytes(path)
    try:
        array = _decode_with_pillow(data, path)
    except FacedancerError:
        raise
    except UnidentifiedImageError:
        array = None  # maybe a format only OpenCV knows; it raises InputError if not
    except MemoryError as exc:
        raise InputError("not enough memory to decode the image", path) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "truncated" in reason.lower():
            raise InputError(f"truncated image ({reason})", path) from exc
        raise InputError(f"corrupt image ({reason})", path) from exc
    if array is not None:
        return array
    try:
        return _decode_with_opencv(data, path)
    except FacedancerError:
        raise
    except Exception as exc:
        raise InputError(f"not a readable image ({exc})", path) from exc


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB, rotated upright by its EXIF orientation.

    RGBA (alpha composited onto black), grayscale, 16-bit (high byte kept), CMYK and palette
    images are converted. Multi-frame files give their first frame.

    Raises:
        InputError: the file is missing, empty, truncated, not an image, or larger than
            :data:`MAX_PIXELS`; the message names the file.
    """
    path = Path(path)
    return _to_rgb_uint8(_decode(path), path)


def read_image_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`read_image`'s RGB (alpha composited onto black: what is detected and swapped)
    and, for an image with transparency, its straight ``(H, W, 4)`` uint8 RGBA (else None),
    from one decode. A cut-out portrait or a sticker keeps its transparency through
    :func:`straight_colours` and ``write_image(alpha=)``."""
    path = Path(path)
    array = _decode(path)
    return _to_rgb_uint8(array, path), _to_rgba_uint8(array, path)


def split_alpha(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A decoded ``(H, W, 4)`` uint8 RGBA picture (a frame of an animation) as
    :func:`read_image_rgba` gives a file: RGB composited onto black, and the RGBA itself unless
    it is opaque everywhere (then None)."""
    path = Path("(frame)")
    return _to_rgb_uint8(rgba, path), _to_rgba_uint8(rgba, path)


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
    the same format (``"format"`` says which): a colour JPEG's own quantization tables (no
    coarser than quality :data:`JPEG_FLOOR_QUALITY`) and chroma subsampling; a lossless WebP's
    ``lossless``; a TIFF's lossless compression. None for anything else (PNG is lossless
    anyway).

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
            if fmt != "JPEG" or image.mode != "RGB":
                return None
            tables = getattr(image, "quantization", None)
            sampling = JpegImagePlugin.get_sampling(image)
    except Exception:  # read_image says what is wrong with the file
        return None
    if not tables or len(tables) < 2:
        return None
    # Never coarser than JPEG_FLOOR_QUALITY: the watermark must survive our own output (a
    # quality 25 photo's tables lost it: z = 8 against the threshold 10; at 40, z = 130).
    floor = _floor_tables()
    settings: dict = {"format": "JPEG", "qtables": {
        k: [min(int(a), int(b)) for a, b in zip(v, floor[min(k, 1)], strict=True)]
        if len(v) == 64 else list(v) for k, v in tables.items()}}
    if sampling in (0, 1, 2):
        settings["subsampling"] = sampling
    return settings


def read_icc_profile(path: str | Path) -> bytes | None:
    """The ICC colour profile embedded in an image file, if it describes RGB pixels (what
    :func:`read_image` returns), else None.

    Photos often carry one (Adobe RGB from cameras, Display P3 from phones): a colour-managed
    viewer converts the pixels through it, so an output written without it is shown as sRGB,
    paler and shifted across the whole picture (measured on shared photos: of the pixels a
    swap did not touch, 4-46 % more than 6 grey levels off; docs/media.md "Images"). A profile of another colour
    space (a CMYK or grey one) no longer fits the RGB pixels and is dropped."""
    Image = pillow()
    try:
        with Image.open(Path(path)) as image:
            profile = image.info.get("icc_profile")
    except Exception:  # read_image says what is wrong with the file
        return None
    if not isinstance(profile, bytes) or len(profile) < 128 or profile[16:20] != b"RGB ":
        return None
    return profile


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def write_image(path: str | Path, rgb: np.ndarray, metadata: dict[str, str] | None = None,
                quality: int = 95, icc_profile: bytes | None = None,
                alpha: np.ndarray | None = None, deep: np.ndarray | None = None,
                like: dict | None = None) -> None:
    """Write an ``(H, W, 3)`` uint8 RGB array atomically; the format follows the suffix.

    Supported suffixes: ``.png .jpg .jpeg .webp .bmp .tif .tiff``. ``metadata`` (string keys
    and values) is embedded as text: PNG ``tEXt``/``iTXt`` chunks (one per key), and for
    JPEG, WebP and TIFF a JSON object in the EXIF ``ImageDescription`` field. BMP cannot carry
    text, so asking for metadata there is an error rather than a silent loss (provenance labels
    on synthetic media must not disappear). ``quality`` applies to JPEG and WebP.
    ``icc_profile`` (:func:`read_icc_profile` of the input) is embedded where the format can
    hold one (not BMP), so the pixels are shown in the input's colours. ``alpha`` (``(H, W)``
    uint8, with ``rgb`` straight colours: :func:`straight_colours`) is kept in PNG, WebP and
    TIFF; JPEG and BMP hold none, and get the picture composited onto black as it was read.
    ``deep`` (``(H, W, 3)`` uint16, the same picture at 16 bits: :func:`deep_with_change`) is
    written instead of ``rgb`` as a 16-bit PNG or TIFF; other formats take ``rgb``. ``like``
    (:func:`read_save_settings` of the input) compresses an output of the input's format as
    the input was: a JPEG with its own tables and chroma subsampling instead of ``quality``, a
    lossless WebP lossless, a TIFF with its compression.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FacedancerError(f"cannot write images with suffix '{path.suffix}' (use one of "
                              f"{', '.join(sorted(_WRITE_FORMATS))})", path)
    if deep is not None and fmt in ("PNG", "TIFF"):
        _write_sixteen_bit(path, fmt, deep, metadata, icc_profile, alpha)
        return
    rgb = _check_rgb(rgb)
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        image = Image.fromarray(np.dstack([rgb, np.asarray(alpha, np.uint8)]), mode="RGBA")
    elif alpha is not None:
        image = Image.fromarray(_to_rgb_uint8(np.dstack([rgb, np.asarray(alpha, np.uint8)]),
                                              path), mode="RGB")
    else:
        image = Image.fromarray(rgb, mode="RGB")
    options: dict = {}
    if fmt == "PNG":
        options["compress_level"] = 3  # ~3x faster than Pillow's default 6, ~5% larger files
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if like and like.get("format") == fmt:  # compressed as the input was, not a fixed way
        if fmt == "JPEG":
            del options["quality"]  # its own tables instead
        options.update({k: v for k, v in like.items() if k != "format"})
    if icc_profile and fmt != "BMP":
        options["icc_profile"] = icc_profile
    if metadata:
        if fmt == "PNG":
            info = PngInfo()
            for key, value in metadata.items():
                info.add_itxt(str(key), str(value)) if not str(value).isascii() \
                    else info.add_text(str(key), str(value))
            options["pnginfo"] = info
        elif fmt == "BMP":
            raise FacedancerError("BMP files cannot carry metadata; write .png, .jpg, .webp or "
                                  ".tif instead", path)
        else:
            exif = Image.Exif()
            exif[_EXIF_DESCRIPTION] = wrap_metadata_json(metadata)
            options["exif"] = exif.tobytes()
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **options)


def _write_sixteen_bit(path: Path, fmt: str, deep: np.ndarray, metadata: dict[str, str] | None,
                       icc_profile: bytes | None, alpha: np.ndarray | None) -> None:
    """A 16-bit PNG (OpenCV, our text and iCCP chunks inserted) or TIFF (tifffile, the metadata
    JSON in ImageDescription as Pillow's TIFFs hold it): Pillow writes neither at 16 bits."""
    pixels = np.asarray(deep, np.uint16)
    if alpha is not None:
        pixels = np.dstack([pixels, np.asarray(alpha, np.uint16) * 257])
    if fmt == "PNG":
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, [2, 1, 0, 3][
            :pixels.shape[2]]]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise FacedancerError("could not encode the 16-bit PNG", path)
        data = encoded.tobytes()
        if icc_profile:
            data = png_insert_iccp(data, icc_profile)
        if metadata:
            data = png_insert_text(data, {str(k): str(v) for k, v in metadata.items()})
        atomic_write_bytes(path, data)
        return
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, pixels, photometric="rgb", compression="zlib", metadata=None,
                         extrasamples=("unassalpha",) if alpha is not None else None,
                         description=wrap_metadata_json(metadata) if metadata else None,
                         iccprofile=icc_profile)


def read_image_metadata(path: str | Path) -> dict[str, str]:
    """The text metadata :func:`write_image` embedded (PNG: every text chunk), else ``{}``."""
    Image = pillow()
    path = Path(path)
    _read_bytes(path)
    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.load()  # text chunks after the image data are read only on load
                return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
            description = image.getexif().get(_EXIF_DESCRIPTION)
    except Exception as exc:
        raise InputError(f"cannot read metadata ({exc})", path) from exc
    if isinstance(description, bytes):
        description = description.decode("utf-8", "replace")
    if not isinstance(description, str):
        return {}
    return unwrap_metadata_json(description.strip("\x00"))
