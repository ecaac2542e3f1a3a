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
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ..errors import FacedancerError, InputError
from .atomic import atomic_path, atomic_write_bytes
from .media_meta import png_insert_iccp, png_insert_text, unwrap_metadata_json, wrap_metadata_json

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


def pillow_has_alpha(image) -> bool:
    """Whether an opened Pillow image carries transparency (an alpha band, or a palette or grey
    image's transparent colour)."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


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
    ``io.fidelity.straight_colours`` and ``write_image(alpha=)``."""
    path = Path(path)
    array = _decode(path)
    return _to_rgb_uint8(array, path), _to_rgba_uint8(array, path)


def split_alpha(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A decoded ``(H, W, 4)`` uint8 RGBA picture (a frame of an animation) as
    :func:`read_image_rgba` gives a file: RGB composited onto black, and the RGBA itself unless
    it is opaque everywhere (then None)."""
    path = Path("(frame)")
    return _to_rgb_uint8(rgba, path), _to_rgba_uint8(rgba, path)


# Pillow modes of a picture with one grey channel (and alpha): bilevel, 8, 16 and 32 bits.
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N"})


def is_greyscale_file(path: str | Path) -> bool:
    """Whether ``path`` is a black-and-white image file: one grey channel (and alpha), which a
    swap writes back as such (``write_image(grey=True)``); False for anything unreadable."""
    try:
        with pillow().open(Path(path)) as image:
            return image.mode in GREY_MODES
    except Exception:  # read_image says what is wrong with the file
        return False


def read_icc_profile(path: str | Path, grey: bool = False) -> bytes | None:
    """The ICC colour profile embedded in an image file, if it describes RGB pixels (what
    :func:`read_image` returns), else None; with ``grey``, a grey profile instead (for an
    output written grey, ``write_image(grey=True)``).

    Photos often carry one (Adobe RGB from cameras, Display P3 from phones): a colour-managed
    viewer converts the pixels through it, so an output written without it is shown as sRGB,
    paler and shifted across the whole picture (measured on shared photos: of the pixels a
    swap did not touch, 4-46 % more than 6 grey levels off; docs/media.md "Images"). A
    profile of another colour space (a CMYK one, or a grey one unless ``grey``) no longer fits
    the RGB pixels and is dropped."""
    Image = pillow()
    try:
        with Image.open(Path(path)) as image:
            profile = image.info.get("icc_profile")
    except Exception:  # read_image says what is wrong with the file
        return None
    space = b"GRAY" if grey else b"RGB "
    if not isinstance(profile, bytes) or len(profile) < 128 or profile[16:20] != space:
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
                like: dict | None = None, grey: bool = False) -> None:
    """Write an ``(H, W, 3)`` uint8 RGB array atomically; the format follows the suffix.

    Supported suffixes: ``.png .jpg .jpeg .webp .bmp .tif .tiff``. ``metadata`` (string keys
    and values) is embedded as text: PNG ``tEXt``/``iTXt`` chunks (one per key), and for
    JPEG, WebP and TIFF a JSON object in the EXIF ``ImageDescription`` field. BMP cannot carry
    text, so asking for metadata there is an error rather than a silent loss (provenance labels
    on synthetic media must not disappear). ``quality`` applies to JPEG and WebP.
    ``icc_profile`` (:func:`read_icc_profile` of the input) is embedded where the format can
    hold one (not BMP), so the pixels are shown in the input's colours. The rest comes from
    :mod:`.fidelity`: ``alpha`` (``(H, W)`` uint8, with ``rgb`` straight colours) is kept in
    PNG, WebP and TIFF (JPEG and BMP hold none, and get the picture composited onto black as
    it was read); ``deep`` (``(H, W, 3)`` uint16, the same picture at 16 bits) is written
    instead of ``rgb`` as a 16-bit PNG or TIFF; ``like`` (``read_save_settings`` of the
    input) compresses an output of the input's format as the input was: a JPEG with its own
    tables and chroma subsampling instead of ``quality``, a lossless WebP lossless, a TIFF
    with its compression. ``grey`` (a black-and-white input, :func:`is_greyscale_file`; the
    pixels grey, R = G = B) writes one grey channel (and alpha) where the format holds one
    (PNG, JPEG, TIFF, BMP; a 16-bit PNG or TIFF without alpha).
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FacedancerError(f"cannot write images with suffix '{path.suffix}' (use one of "
                              f"{', '.join(sorted(_WRITE_FORMATS))})", path)
    if deep is not None and fmt in ("PNG", "TIFF"):
        _write_sixteen_bit(path, fmt, deep, metadata, icc_profile, alpha, grey)
        return
    rgb = _check_rgb(rgb)
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        image = Image.fromarray(np.dstack([rgb, np.asarray(alpha, np.uint8)]), mode="RGBA")
    elif alpha is not None:
        image = Image.fromarray(_to_rgb_uint8(np.dstack([rgb, np.asarray(alpha, np.uint8)]),
                                              path), mode="RGB")
    else:
        image = Image.fromarray(rgb, mode="RGB")
    if grey and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        # ITU-R 601 luma: exactly the value of a grey pixel.
        image = image.convert("LA" if image.mode == "RGBA" else "L")
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
                       icc_profile: bytes | None, alpha: np.ndarray | None,
                       grey: bool = False) -> None:
    """A 16-bit PNG (OpenCV, our text and iCCP chunks inserted) or TIFF (tifffile, the metadata
    JSON in ImageDescription as Pillow's TIFFs hold it): Pillow writes neither at 16 bits.
    ``grey`` without alpha: one grey channel (OpenCV writes no 16-bit grey with alpha)."""
    pixels = np.asarray(deep, np.uint16)
    grey = grey and alpha is None
    if grey:
        pixels = np.ascontiguousarray(pixels[:, :, 0])
    elif alpha is not None:
        pixels = np.dstack([pixels, np.asarray(alpha, np.uint16) * 257])
    if fmt == "PNG":
        ok, encoded = cv2.imencode(".png", pixels if grey else np.ascontiguousarray(
            pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
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
        tifffile.imwrite(tmp, pixels, photometric="minisblack" if grey else "rgb",
                         compression="zlib", metadata=None,
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
