"""The matte of a swap (``--matte``): how much of each output pixel the swapped faces replaced.

An editor who composites, grades or fixes a swap by hand in another program needs to know
where the swap is: white where a pixel is all swapped face, black where it is the input's own,
grey along the feathered edges and where a face fades back to the target (a profile, a face
the frame cuts, an occluder kept). It is the blend weight of the compositor
(``faces.align.paste_back``'s warped masks, several faces merged as ``1 - (1 - a)(1 - b)``),
not a difference of pixels: a pixel the swap replaced with one of the same value is still
swapped.

A still's matte is a grey PNG or TIFF (lossless: a matte is data, not a picture); a clip's is a
clip of the output's frame count, rate, timestamps, timecode and rotation (H.264 in MP4 etc.,
chosen by its suffix as for the output, no sound), or numbered stills (``matte_%04d.png``).
A matte is not synthetic media (it shows no face), so it carries no provenance tag and no
watermark (which would make it wrong); its ``comment`` metadata says what it is and of which
file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FacedancerError
from ..io.images import write_image
from ..io.provenance import TOOL_NAME
from ..io.sequence import SEQUENCE_OUTPUT_SUFFIXES, existing_frames, is_sequence_pattern

# Lossless only: a JPEG or lossy WebP matte would ring along the face's edge.
MATTE_IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff")
MATTE_FRAME_SUFFIXES: tuple[str, ...] = tuple(
    s for s in SEQUENCE_OUTPUT_SUFFIXES if s in MATTE_IMAGE_SUFFIXES)
# A clip's matte as a movie an editor's timeline takes (an animated GIF or WebP is a preview,
# not a matte: palette dither, lossy frames).
MATTE_CLIP_SUFFIXES: tuple[str, ...] = (".mkv", ".m4v", ".mov", ".mp4", ".webm")


def new_coverage(shape: tuple) -> np.ndarray:
    """An ``(H, W)`` float32 coverage of zeros for a frame of ``shape`` (nothing replaced yet),
    for :meth:`Compositor.composite` to fill in."""
    return np.zeros(shape[:2], np.float32)


def matte_frame(coverage: np.ndarray | None, shape: tuple) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 grey frame of a coverage (None: a frame with no face swapped,
    all black), for a writer of RGB frames."""
    if coverage is None:
        return np.zeros((*shape[:2], 3), np.uint8)
    grey = np.rint(np.clip(coverage, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def matte_metadata(output: str | Path) -> dict[str, str]:
    """What a matte file says of itself: which output it belongs to (no provenance tag)."""
    return {"comment": f"Matte of a face swap made with {TOOL_NAME}: how much of each pixel "
                       f"of {Path(output).name} the swapped faces replaced (white: all, black: "
                       "none). Not synthetic media."}


def write_matte_image(path: str | Path, coverage: np.ndarray | None, shape: tuple,
                      output: str | Path) -> None:
    """Write a still's matte (one grey channel, atomically); None: nothing was swapped."""
    write_image(path, matte_frame(coverage, shape), metadata=matte_metadata(output), grey=True)


def mirrored_matte(destination: Path, output: Path, mattes: Path, video: bool) -> Path:
    """Where a folder run writes the matte of the output ``destination`` (under the output
    folder ``output``): the same relative path under the matte folder ``mattes``, as a PNG for
    an image, and for a clip in its movie container, MP4 for an animation."""
    matte = Path(mattes) / Path(destination).relative_to(output)
    if not video:
        return matte.with_suffix(".png")
    return matte if matte.suffix.lower() in MATTE_CLIP_SUFFIXES else matte.with_suffix(".mp4")


def check_matte(matte: str | Path, output: str | Path, target: str | Path, kind: str,
                overwrite: bool) -> None:
    """Refuse, before any work, a matte path that cannot be written for a target of ``kind``
    (``"image"``, ``"video"``, ``"folder"``): a lossy or unknown suffix, the output's or the
    target's own path, or an existing file without ``overwrite``."""
    matte = Path(matte)
    suffix = matte.suffix.lower()
    if kind == "folder":
        if matte.exists() and not matte.is_dir():
            raise FacedancerError("--matte of a folder is a folder (each file's matte "
                                  "in it, as the outputs are laid out)", matte)
    elif is_sequence_pattern(matte):
        if kind != "video":
            raise FacedancerError("numbered matte frames are for a clip; give one .png or "
                                  ".tif for an image", matte)
        if suffix not in MATTE_FRAME_SUFFIXES:
            raise FacedancerError(f"cannot write matte frames as '{matte.suffix}' (use one of "
                                  f"{' '.join(MATTE_FRAME_SUFFIXES)})", matte)
        found = existing_frames(matte)
        if found and not overwrite:
            raise FacedancerError(f"{len(found)} matte frames already exist ({found[0].name}"
                                  "...; pass --overwrite to replace them)", matte)
    elif kind == "image" and suffix not in MATTE_IMAGE_SUFFIXES:
        raise FacedancerError(f"cannot write an image's matte as '{matte.suffix or '(none)'}' "
                              f"(use one of {' '.join(MATTE_IMAGE_SUFFIXES)}: lossless)", matte)
    elif kind == "video" and suffix not in MATTE_CLIP_SUFFIXES:
        raise FacedancerError(f"cannot write a clip's matte as '{matte.suffix or '(none)'}' "
                              f"(use one of {' '.join(MATTE_CLIP_SUFFIXES)}, or numbered "
                              "frames such as matte_%04d.png)", matte)
    for other, what in ((output, "output"), (target, "target")):
        if matte.resolve() == Path(other).resolve():
            raise FacedancerError(f"--matte is the {what} itself; choose another path", matte)
    if kind != "folder" and not is_sequence_pattern(matte) and matte.exists() \
            and not overwrite:
        raise FacedancerError("matte already exists (pass --overwrite to replace it)", matte)
