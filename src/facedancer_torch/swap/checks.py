"""Path checks of a swap job, done before any model loads: what the target is, whether it
decodes, and whether the output may be written there in that format.

Kept apart from the orchestrator (``pipeline.Swapper``) so that the per-format writers
(``image.py``, ``video.py``, ``folder.py``) and the command line can use them without importing
the pipeline (which imports them: that was an import cycle).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FacedancerError, InputError
from ..io.codecs import choose_codec
from ..io.images import is_image_path, is_video_path, read_image
from ..io.sequence import (SEQUENCE_OUTPUT_SUFFIXES, existing_frames, is_sequence_pattern,
                           probe_clip)
from ..io.video import (VIDEO_OUTPUT_SUFFIXES, container_kind,  # noqa: F401 - re-exported
                        probe_video)
from .matte import check_matte
from .options import format_time, starts_after

# write_image() can carry the provenance tag in these; BMP cannot carry text, so it is refused.
IMAGE_OUTPUT_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


def target_kind(target: str | Path) -> str:
    """``"folder"``, ``"video"`` (also a frame pattern, ``shot_%04d.png``: an image sequence is
    a clip) or ``"image"``; :class:`InputError` if missing or unsupported."""
    target = Path(target)
    if is_sequence_pattern(target) and not target.exists():
        return "video"
    if target.is_dir():
        return "folder"
    if not target.exists():
        raise InputError("target does not exist", target)
    if is_video_path(target):
        return "video"
    if is_image_path(target):
        return "image"
    raise InputError(f"unsupported target type '{target.suffix or '(no suffix)'}' (give an "
                     "image, a video or a folder)", target)


def check_target(target: str | Path, kind: str | None = None, start: float | None = None
                 ) -> None:
    """Make sure an image or video target decodes (InputError naming it otherwise), so that a
    bad target fails in a second, before any model is loaded; a video's ``--start`` (seconds)
    must lie inside it (:func:`check_start`)."""
    kind = kind or target_kind(target)
    if kind == "image":
        read_image(target)
    elif kind == "video":
        check_start(target, probe_clip(target).duration, start)


def check_start(target: str | Path, duration: float, start: float | None,
                name: str = "--start") -> None:
    """Refuse a ``--start`` (or another time option, ``name``) at or after the end of a clip
    ``duration`` seconds long: not one frame would be searched, and the output would be an
    unchanged copy whose warning could only say that no face was found (a typo, 99:00 for
    0:09, reads as a detection failure), and a negative one (``--at -1``)."""
    if start is not None and not 0.0 <= start < float("inf"):
        raise InputError(f"{name} is a time in the clip, 0 or later, got {start:g}", target)
    if starts_after(start, duration):
        raise InputError(f"{name} {format_time(start)} is not inside the clip, which is "
                         f"{format_time(duration)} long", target)


def check_output(output: str | Path, overwrite: bool, target: str | Path | None = None) -> Path:
    """Refuse to clobber an existing output (without ``overwrite``) or the target itself."""
    output = Path(output)
    if is_sequence_pattern(output) and not output.exists():
        if target is not None and Path(target).parent.resolve() / Path(target).name == \
                output.parent.resolve() / output.name:
            raise FacedancerError("output frames are the target's own; choose another --output",
                                  output)
        found = existing_frames(output)
        if found and not overwrite:
            raise FacedancerError(f"{len(found)} output frames already exist ({found[0].name}"
                                  f"...; pass --overwrite to replace them)", output)
        return output
    if target is not None and output.exists() and Path(target).exists() \
            and output.resolve() == Path(target).resolve():
        raise FacedancerError("output is the target itself; choose another --output", output)
    if output.exists() and not overwrite:
        raise FacedancerError("output already exists (pass --overwrite to replace it)", output)
    return output


def check_image_output(output: Path) -> None:
    """Refuse output suffixes that cannot carry the provenance tag."""
    if Path(output).suffix.lower() not in IMAGE_OUTPUT_SUFFIXES:
        raise FacedancerError(f"cannot write a swapped image as "
                              f"'{Path(output).suffix or '(none)'}' "
                              f"(use one of {' '.join(IMAGE_OUTPUT_SUFFIXES)})", output)


def check_video_output(output: Path, target: str | Path | None = None,
                       frames: bool = True) -> None:
    """Refuse an output suffix no video (or frame of an image sequence) can be written as
    (before any work is done). ``.png`` is an animated PNG only for an animated PNG
    ``target`` (a clip written as one lossless PNG was more likely meant as frames); live
    recordings (``frames=False``) are one file."""
    suffix = Path(output).suffix.lower()
    if is_sequence_pattern(output):
        if not frames:
            raise FacedancerError("a recording is one video file (.mp4, .mkv...), not "
                                  "numbered frames", output)
        if suffix not in SEQUENCE_OUTPUT_SUFFIXES:
            raise FacedancerError(f"cannot write frames as '{Path(output).suffix}' (use one "
                                  f"of {' '.join(SEQUENCE_OUTPUT_SUFFIXES)})", output)
        return
    if suffix not in VIDEO_OUTPUT_SUFFIXES:
        raise FacedancerError(f"cannot write a swapped video as "
                              f"'{Path(output).suffix or '(none)'}' "
                              f"(use one of {' '.join(VIDEO_OUTPUT_SUFFIXES)})", output)
    if suffix == ".png" and not (target is not None and Path(target).suffix.lower() == ".png"
                                 and is_video_path(target)):
        raise FacedancerError("a video is written as .png only from an animated PNG: give "
                              "out_%04d.png for numbered frames, or .apng, .gif or .webp for "
                              "an animation", output)


def check_job(target: str | Path, output: str | Path, overwrite: bool,
              codec: str = "auto", start: float | None = None,
              matte: str | Path | None = None) -> str:
    """Every check of one ``swap`` job that needs no model; returns the target kind.
    ``start``: ``--start`` in seconds (a video target must be longer); ``matte``: the
    ``--matte`` path (``swap/matte.py``)."""
    kind = target_kind(target)
    if matte is not None:
        check_matte(matte, output, target, kind, overwrite)
    if kind != "folder":
        check_output(output, overwrite, target)
        if kind == "image":
            check_image_output(Path(output))
        else:
            check_video_output(Path(output), target)
        check_target(target, kind, start)
        if kind == "video":  # a codec the output's container cannot hold, in one line
            check_codec(output, codec)
    return kind


def check_frame_job(target: str | Path, output: str | Path, options, at: float) -> str:
    """The checks of a ``swap --at`` job (one frame of a clip as an image, swap/preview.py)
    that need no model: a clip target that lasts past ``at``, an image output, no time range;
    returns the target kind (``"video"``). ``options``: the job's SwapOptions."""
    kind = target_kind(target)
    if kind != "video":
        what = "a folder" if kind == "folder" else "an image"
        raise FacedancerError("--at writes one frame of a clip: give a video or an image "
                              f"sequence as --target, not {what}", target)
    if options.start is not None or options.end is not None:
        raise FacedancerError("--at writes one frame; --start / --end are for a whole clip")
    if Path(output).suffix.lower() not in IMAGE_OUTPUT_SUFFIXES or is_sequence_pattern(output):
        raise FacedancerError("--at writes one frame: give an image as --output (one of "
                              f"{' '.join(IMAGE_OUTPUT_SUFFIXES)})", output)
    check_output(output, options.overwrite, target)
    check_start(target, probe_clip(target, options.fps).duration, at, "--at")
    if options.matte is not None:
        check_matte(options.matte, output, target, "image", options.overwrite)
    return kind


def check_codec(output: str | Path, codec: str) -> None:
    """Refuse a ``--codec`` the output cannot be written with: a container that cannot hold it,
    or any codec but ``auto`` for the frames of an image sequence (their format is the
    suffix's)."""
    if is_sequence_pattern(output):
        if codec != "auto":
            raise FacedancerError(f"--codec {codec} applies to video files; frames are written "
                                  f"as their suffix says ({Path(output).suffix})", output)
        return
    choose_codec(container_kind(output), codec, path=output)
