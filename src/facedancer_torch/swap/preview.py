"""One frame of a clip, swapped as the clip's swap shows it (``facedancer swap --at T``).

Before a render of minutes or hours an editor checks the settings on a frame or two: this
writes the frame shown at ``T`` as a still, swapped through the video pipeline itself (tracking,
the confirmation of new faces, smoothing, the minimum face size of videos), not as a lone
photo would be. The frames of :data:`PREVIEW_LEAD` seconds before ``T`` go through the tracker
first and as many after it as the pipeline looks ahead, so the frame is decided as it is in
the whole clip (up to what a track remembers from further back: see :data:`PREVIEW_LEAD`), on
the frames where the clip's own run searches the whole frame (``--detect-every``). The reader
seeks to the keyframe before that (``io.video_reader.VideoReader(from_time=)``), so a frame an hour
into a clip costs about what one near its start does.

The still is labelled as a swapped image is (the provenance tag, saying which frame of which
clip, and the watermark) only when a face was swapped in it; ``--matte`` gives its matte.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.images import write_image
from ..io.sequence import (SequenceReader, first_frame_number, is_sequence_pattern,
                           probe_clip)
from ..io.timecode import frame_timecode
from ..io.video_reader import VideoReader
from .checks import check_image_output, check_output, check_start
from .image import finish_image
from .matte import check_matte, write_matte_image
from .options import SwapOptions, format_time
from .report import FileReport
from .video import BRIDGE_FRAMES, VideoStats, swap_stream

# Seconds of the clip run through the pipeline before the frame. What differs from the clip's
# own run is what a track remembers from before (smoothed landmarks, eased gates, the target
# identity averaged over a track's first detections): measured on talking_1face_512 (demo
# model, the frame at 1.5 / 2.5 s), inside the matte off by 0.55 / 0.99 grey levels on
# average with 1 s, 0.00 / 0.46 with 2 s, for a change of 8-10 grey levels by the swap.
PREVIEW_LEAD: float = 2.0


def shown_by(time: float, at: float) -> bool:
    """Whether a frame shown from ``time`` seconds is on screen by ``at``: the frame at ``at``
    is the last of those (the first frame when none is)."""
    return time <= at + 1e-6


def frame_shown_at(target: str | Path, at: float, fps: float | None = None):
    """The untouched frame (``DecodedFrame``) of the clip ``target`` shown at ``at`` seconds:
    the frame :func:`swap_clip_frame` swaps (the web UI's people picker shows its faces)."""
    info = probe_clip(target, fps)
    begin = max(0.0, at - 2.0 / float(info.fps))  # the frame before `at`, and the next
    if is_sequence_pattern(target):
        reader = SequenceReader(target, info.fps, start=int(begin * float(info.fps)),
                                max_frames=4)
    else:
        reader = VideoReader(target, from_time=begin, max_frames=4)
    chosen = None
    for decoded in reader:
        if chosen is not None and not shown_by(decoded.time, at):
            break
        chosen = decoded
    if chosen is None:
        raise InputError(f"no frame at {format_time(at)}", target)
    return chosen


def swap_clip_frame(swapper, target: str | Path, output: str | Path, source,
                    options: SwapOptions, at: float) -> FileReport:  # (Swapper.swap_clip_frame)
    """Write the frame of the clip ``target`` shown at ``at`` seconds, swapped, as the image
    ``output`` (``options.matte``: its matte too); returns what was done, ``span`` naming the
    frame. ``options.start`` / ``end`` / ``max_frames`` do not apply."""
    target, output = Path(target), Path(output)
    check_output(output, options.overwrite, target)
    check_image_output(output)
    if options.matte is not None:
        check_matte(options.matte, output, target, "image", options.overwrite)
    info = probe_clip(target, options.fps)
    check_start(target, info.duration, at, "--at")
    plan = swapper.plan(source, options)
    fps = float(info.fps)
    # On a frame whose number is a multiple of --detect-every: the whole frame is searched on
    # the same frames as in the clip's own run (swap/video.py _FaceFinder counts from the
    # stream's first frame), so the faces between are followed from the same detections.
    step = max(1, options.detect_every)
    begin = math.floor(max(0.0, at - PREVIEW_LEAD) * fps / step + 1e-6) * step / fps
    # The frames from begin up to the one at `at`, and the pipeline's look-ahead after it.
    count = math.ceil((at - begin) * fps) + 2 + max(options.confirm_frames - 1, BRIDGE_FRAMES)
    if is_sequence_pattern(target):
        reader = SequenceReader(target, info.fps, start=round(begin * fps),
                                max_frames=count)
    else:
        reader = VideoReader(target, from_time=begin, max_frames=count)
    stats = VideoStats(record=True)
    chosen = None
    whole = options.replace(start=None, end=None, max_frames=None)
    for position, (decoded, rgb, coverage) in enumerate(swap_stream(
            swapper, reader, plan, whole, fps=fps, stats=stats, mattes=True)):
        if chosen is None or shown_by(decoded.time, at):
            chosen = (position, decoded, rgb, coverage)
    if chosen is None:  # (check_start let through a time inside the clip)
        raise RuntimeError(f"no frame decoded from {begin:g} s")
    position, decoded, rgb, coverage = chosen
    swapped = len(stats.faces[position])
    frame = decoded.index + first_frame_number(target)
    timecode = frame_timecode(decoded.index, info.fps, info.timecode)
    where = f"the frame at {format_time(round(decoded.time, 3))}" + \
        (f" (timecode {timecode})" if timecode else "") + f", frame {frame} of {target.name}"
    # Found by a detection of the frame alone (a tracked face the detector missed there, and
    # bridged, counts as found).
    found = max(len(swapper.detect(decoded.rgb)), swapped)
    # (the nearest over every frame read: when none came within the threshold, neither did
    # this one)
    report = FileReport(path=output, kind="image", detected=found, swapped=swapped,
                        frames_swapped=int(swapped > 0), span=where, nearest=stats.nearest,
                        threshold=plan.threshold)
    if options.matte is not None:
        write_matte_image(options.matte, coverage, rgb.shape, output)
    if swapped:
        metadata = swapper.provenance(plan, faces_swapped=str(swapped), frame=where)
        write_image(output, finish_image(np.ascontiguousarray(rgb), options),
                    metadata=metadata)
    else:
        write_image(output, decoded.rgb)  # the frame as it is: not a swap, not labelled
    return report
