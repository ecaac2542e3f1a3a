"""SMPTE timecodes (``HH:MM:SS:FF``, drop-frame ``HH:MM:SS;FF``) as an editor gives a time.

An editor reads a time off the timeline or the source monitor as a timecode with frames, and
that timecode counts from the clip's own start timecode (``01:00:00:00`` on many cameras and
exports: ``VideoInfo.timecode``, which this project also writes to every swapped clip). So a
timecode given for ``--at``, ``--start`` or ``--end`` is turned into seconds from the clip's
first frame: its frame count at the clip's rate, less the start timecode's.

Drop-frame timecode (29.97 and 59.94 frames/s, written with ``;`` before the frames) skips
the frame numbers 0 and 1 (0-3 at 59.94) at the start of every minute except every tenth, so
that its clock keeps up with the real one; non-drop timecode at those rates counts every
frame and runs slow against the clock (3.6 s an hour), as editors expect of it.
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import FacedancerError

_TIMECODE = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2})\s*$")


def is_timecode(text: str | float | None) -> bool:
    """Whether ``text`` is written as a timecode with frames (four fields)."""
    return isinstance(text, str) and _TIMECODE.match(text) is not None


def timecode_frame(text: str, fps: Fraction | float, name: str = "--at",
                   drop: bool | None = None) -> int:
    """The frame number ``text`` names, counted from ``00:00:00:00`` at ``fps``; drop-frame
    when ``drop``, or with ``drop`` None when the frames are set off by ``;``. A one-line
    error when the frames field reaches the rate, or drop-frame is asked of a rate that has
    none."""
    match = _TIMECODE.match(text)
    if match is None:
        raise FacedancerError(f"{name} is not a timecode (HH:MM:SS:FF): '{text}'")
    hours, minutes, seconds, mark, frames = match.groups()
    hours, minutes, seconds, frames = int(hours), int(minutes), int(seconds), int(frames)
    nominal = max(1, round(float(fps)))  # 30 for 29.97: timecode counts whole frames
    if minutes > 59 or seconds > 59:
        raise FacedancerError(f"{name} {text}: minutes and seconds count 00-59")
    if frames >= nominal:
        raise FacedancerError(f"{name} {text}: a clip of {float(fps):g} frames/s numbers its "
                              f"frames 00-{nominal - 1:02d} in each second")
    count = ((hours * 60 + minutes) * 60 + seconds) * nominal + frames
    if drop if drop is not None else mark == ";":
        if nominal not in (30, 60) or abs(float(fps) - nominal * 1000 / 1001) > 0.01:
            raise FacedancerError(f"{name} {text}: drop-frame timecode (;) is for 29.97 and "
                                  f"59.94 frames/s; this clip runs at {float(fps):g}")
        dropped = nominal // 15  # 2 frame numbers a minute at 29.97, 4 at 59.94
        if seconds == 0 and frames < dropped and minutes % 10:
            raise FacedancerError(f"{name} {text}: drop-frame timecode skips frames "
                                  f"00-{dropped - 1:02d} of this minute")
        total_minutes = hours * 60 + minutes
        count -= dropped * (total_minutes - total_minutes // 10)
    return count


def timecode_seconds(text: str, fps: Fraction | float, start: str | None = None,
                     name: str = "--at") -> float:
    """Seconds from a clip's first frame to the frame ``text`` names: the clip runs at
    ``fps`` and its first frame carries the timecode ``start`` (None: ``00:00:00:00``). A clip
    whose start timecode is drop-frame counts ``text`` so too, however its frames are set off
    (one typed with ``:`` throughout names the same frame). A timecode before the clip's start
    is a one-line error."""
    drop = None
    first = 0
    if start and is_timecode(start):
        drop = ";" in start or None
        first = timecode_frame(start, fps, "the clip's start timecode", drop)
    frame = timecode_frame(text, fps, name, drop)
    if frame < first:
        raise FacedancerError(f"{name} {text} is before the clip's first frame: its timecode "
                              f"starts at {start}; give a timecode from there, or seconds")
    return (frame - first) / float(fps)


def frame_timecode(index: int, fps: Fraction | float, start: str | None) -> str | None:
    """The timecode of a clip's frame ``index`` (0 = its first frame, which carries ``start``),
    written as ``start`` is (``;`` before the frames for drop-frame); None when the clip has
    no start timecode. The inverse of :func:`timecode_seconds` on whole frames."""
    if not start or not is_timecode(start):
        return None
    drop = ";" in start
    nominal = max(1, round(float(fps)))
    frame = timecode_frame(start, fps, "the clip's start timecode", drop or None) + int(index)
    if drop:
        dropped = nominal // 15
        per_minute = nominal * 60 - dropped
        per_ten = nominal * 600 - dropped * 9
        tens, rest = divmod(frame, per_ten)
        frame += dropped * 9 * tens + (dropped * ((rest - dropped) // per_minute)
                                       if rest >= dropped else 0)
    seconds, frames = divmod(frame, nominal)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minutes:02d}:{seconds:02d}{';' if drop else ':'}{frames:02d}"
