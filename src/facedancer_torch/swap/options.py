"""Options of one swap job: which faces, how they are blended, how outputs are written.

One dataclass shared by the library (:class:`~facedancer_torch.swap.pipeline.Swapper`), the
``facedancer swap`` command, the web UI and ``facedancer demo``, so that every entry point
means the same thing by the same option.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import FacedancerError
from ..io.codecs import CODEC_CHOICES

FaceMode = Literal["all", "largest"]
MAX_MASK_BLUR: float = 64.0  # a quarter of a 256 crop: beyond it the mask is a flat haze
MAX_BATCH_SIZE: int = 1024  # faces held in memory at once (videos batch several frames)
# The default blend mask: the reference box cut to the face outline, minus occluders (what
# measured best in benchmarks/quality.py; docs/swap.md explains each part).
DEFAULT_MASK: str = "box+hull+occlusion"
MASK_PARTS: tuple[str, ...] = ("box", "hull", "occlusion", "segment", "mouth", "eyes")
COLOR_MODES: tuple[str, ...] = ("none", "global", "local")
# Pixel boost (swap/boost.py) is off by default: with the shipped 128 px model it measured
# only slightly sharper (docs/swap.md), part of it pixel-level disagreement between the
# samplings, for k^2 generator calls per face.
MAX_PIXEL_BOOST: int = 4
# Identity strength (swap/source.steer_identity): how far past the source, away from the
# target's own identity, the generator's identity is pushed. Beyond 1 the direction is mostly
# "not the target" and the painted face drifts from either person.
MAX_IDENTITY_STRENGTH: float = 1.0
# Video defaults against ghost faces (docs/swap.md): faces smaller than this fraction of the
# frame's shorter side are left alone (a 128 px generator turns a 30 px background face into a
# flickering stamp), and a track is swapped only once it has this many detections.
VIDEO_MIN_FACE: float = 0.08
CONFIRM_FRAMES: int = 3
# Video: full-frame detection every this many frames, ROI re-detection of known faces in
# between (swap/video.py; chosen from benchmarks/swap_video.py, docs/swap.md).
DETECT_EVERY: int = 5


@dataclass
class SwapOptions:
    """Everything a swap job can be told besides its inputs.

    Face selection (applied in this order):

    - ``faces``: ``all`` (the reference: every detected face) or ``largest`` (only the largest
      face of each image or frame); this picks the candidates.
    - ``mapping``: ``(person photo, source photo)`` pairs; a candidate whose identity is within
      ``threshold`` of a mapped person gets that person's source; each person goes to one face
      of an image or frame, pairs taken nearest first (``swap/select.py``).
    - ``reference``: photos of one person; the ``--source`` identity goes only to the remaining
      candidate nearest to that person, if within ``threshold``. Without a reference every
      remaining candidate gets it (when a source is given at all: with ``mapping`` alone,
      unmapped faces stay untouched).
    - ``threshold``: cosine distance (``1 - cos``) between identity embeddings; ``None`` uses
      the identity encoder's own verification threshold, or 0.6 when it declares none.

    Blending (``swap/compose.py``): ``mask`` (parts joined by ``+``: ``box`` the reference's
    soft box, docs/reference.md §7; ``hull`` the face outline from 68 landmarks; ``occlusion``
    keeps what covers the face; ``segment`` the face segmenter's face region; ``mouth`` and
    ``eyes`` keep the target's own mouth / eyes: its exact lip movement, its gaze), ``mask_blur``
    (Gaussian sigma of the box in pixels of a 256 crop; ``None`` = the reference's 7),
    ``mask_padding`` (fraction of the crop size added around the box on each side, may be
    negative to shrink it), ``color_match`` (``none``, ``global``: Lab mean/std transfer, or
    ``local``: global plus a per-pixel chroma correction; ``True``/``False`` mean ``global`` /
    ``none``), ``detail`` (0..1: how much of the target's detail above the generator's
    resolution is restored), ``detail_follow`` (with a mask part that reads the landmarks,
    ``hull``, ``mouth`` or ``eyes``, and ``detail`` above 0: the target's detail is first
    moved onto the swap's eyes, brows and mouth, ``swap/follow.py``: no double lid creases
    or brows where the generator puts them elsewhere, for some sharpness), ``profile_fade``
    (fade faces turned to a profile back to the target), ``cut_fade`` (fade a face the
    picture's edge cuts back to the target as the detector's confidence in it falls,
    ``faces/masks.cut_weight``, and leave one it doubts most, or one found only turned
    there, as it is: ``swap/select.split_cut``), ``blinks``
    (with the ``hull`` mask part: an eye the target closes further than the swap does is taken
    from the target, so blinks and squints survive), ``pixel_boost``
    (``k`` > 1: run the generator on ``k x k`` sub-pixel samplings of a face at least ``k``
    times its crop size and interleave them, ``swap/boost.py``; ``k^2`` generator calls per
    face; 1 = off), ``exposure`` (a face darker than the generator's training faces is
    brightened for the generator and its swap darkened back by the same gain,
    ``swap/exposure.py``), ``identity_strength`` (0 = the source's own embedding, the
    reference; > 0 pushes the identity the generator gets away from the target face's own,
    which makes up for what the generator and the compositing keep of the target:
    ``swap/source.steer_identity``; None = what the model's ``config.json`` recommends, 0
    where it says nothing).

    Which faces are worth swapping: ``min_face_size`` (fraction of the frame's shorter side;
    ``None`` = 0 for images and :data:`VIDEO_MIN_FACE` for videos), ``confirm_frames`` (video: a
    track is swapped only once it has this many detections, looking ahead so that its first
    frames are swapped too; a face the detector lost is only bridged when it is seen again),
    ``detect_every`` (video: full-frame detection every this many frames, and in between each
    known face re-detected in a small crop around where it was; new faces are found at the next
    full detection; 1 = full detection on every frame).

    Output: ``crf``/``preset`` for H.264, ``watermark`` (invisible watermark; the provenance
    metadata tag is always written), ``overwrite`` (replace an existing output),
    ``max_frames`` (stop a video after this many frames; ``None`` = all), ``start``/``end``
    (video: swap faces only in frames from ``start`` up to ``end`` seconds; the frames before and
    after pass through unchanged, so the output keeps the clip's length and timecode and fits
    back into an edit; ``None`` = from the first / to the last frame),
    ``batch_size`` (faces per generator call; frames are batched together in videos),
    ``matte`` (also write the matte there: a grey image, or a clip of the output's frames, of
    how much of each output pixel the swapped faces replaced; ``swap/matte.py``; None = none).
    """

    faces: FaceMode = "all"
    reference: list[Path] = field(default_factory=list)
    mapping: list[tuple[Path, Path]] = field(default_factory=list)
    threshold: float | None = None
    mask: str = DEFAULT_MASK
    mask_blur: float | None = None
    mask_padding: float = 0.0
    color_match: str = "local"
    detail: float = 1.0
    detail_follow: bool = False
    profile_fade: bool = True
    cut_fade: bool = True
    blinks: bool = True
    pixel_boost: int = 1
    exposure: bool = True
    identity_strength: float | None = None
    min_face_size: float | None = None
    confirm_frames: int = CONFIRM_FRAMES
    detect_every: int = DETECT_EVERY
    crf: int = 18
    preset: str = "medium"
    codec: str = "auto"  # io.codecs: auto keeps an editor's ProRes, DNxHR, FFV1; else H.264
    fps: float | None = None  # an image sequence's frame rate (io.sequence; default 25)
    watermark: bool = True
    overwrite: bool = False
    max_frames: int | None = None
    batch_size: int = 8
    start: float | None = None
    end: float | None = None
    matte: Path | None = None

    def __post_init__(self) -> None:
        self.reference = [Path(p) for p in self.reference]
        if self.matte is not None:
            self.matte = Path(self.matte)
        self.mapping = [(Path(a), Path(b)) for a, b in self.mapping]
        if isinstance(self.color_match, bool):  # the old on/off switch
            self.color_match = "global" if self.color_match else "none"
        self.validate()

    def validate(self) -> None:
        """Raise :class:`FacedancerError` (one line) for an option value that cannot work."""
        if self.faces not in ("all", "largest"):
            raise FacedancerError(f"--faces must be 'all' or 'largest', not '{self.faces}'")
        self.mask = "+".join(mask_parts(self.mask))
        if self.color_match not in COLOR_MODES:
            raise FacedancerError(f"--color-match must be one of {', '.join(COLOR_MODES)}, "
                                  f"not '{self.color_match}'")
        if not (isinstance(self.detail, (int, float)) and 0.0 <= self.detail <= 1.0):
            raise FacedancerError(f"--detail is a strength in [0, 1], got {self.detail}")
        if self.detail_follow and not {"hull", "mouth", "eyes"} & set(self.mask.split("+")):
            # The move is read from the target's 68 landmarks, which only these parts read: a
            # flag that would do nothing is refused rather than ignored.
            raise FacedancerError(f"--detail-follow needs a mask part that reads the face's "
                                  f"landmarks (hull, mouth or eyes), not '{self.mask}'")
        if self.detail_follow and self.detail == 0:
            raise FacedancerError("--detail-follow moves the target's detail, which --detail 0 "
                                  "leaves out")
        if self.min_face_size is not None and not 0.0 <= self.min_face_size <= 1.0:
            raise FacedancerError(f"--min-face-size is a fraction of the frame's shorter side in "
                                  f"[0, 1], got {self.min_face_size}")
        if not 1 <= self.confirm_frames <= 30:
            raise FacedancerError(f"--confirm-frames must be in 1..30, got {self.confirm_frames}")
        if not 1 <= self.pixel_boost <= MAX_PIXEL_BOOST:
            raise FacedancerError(f"--pixel-boost must be in 1..{MAX_PIXEL_BOOST}, got "
                                  f"{self.pixel_boost}")
        if self.identity_strength is not None and not (
                isinstance(self.identity_strength, (int, float))
                and 0.0 <= self.identity_strength <= MAX_IDENTITY_STRENGTH):
            raise FacedancerError(f"--identity-strength must be in [0, {MAX_IDENTITY_STRENGTH:g}], "
                                  f"got {self.identity_strength}")
        if not 1 <= self.detect_every <= 100:
            raise FacedancerError(f"--detect-every must be in 1..100, got {self.detect_every}")
        if self.threshold is not None and not 0.0 < self.threshold <= 2.0:
            raise FacedancerError(f"--threshold is a cosine distance in (0, 2], got "
                                  f"{self.threshold}")
        # NaN fails every comparison, so ranges are checked as "not inside"; blur is bounded
        # above because sigma 1e9 would allocate a kernel of billions of taps.
        if self.mask_blur is not None and not 0 <= self.mask_blur <= MAX_MASK_BLUR:
            raise FacedancerError(f"--mask-blur is a sigma in pixels of a 256 crop in "
                                  f"[0, {MAX_MASK_BLUR:g}], got {self.mask_blur}")
        if not -0.25 <= self.mask_padding <= 0.5:
            raise FacedancerError(f"--mask-padding is a fraction of the crop in [-0.25, 0.5], "
                                  f"got {self.mask_padding}")
        if not 0 <= self.crf <= 51:
            raise FacedancerError(f"--crf must be in 0..51, got {self.crf}")
        if self.fps is not None and not 0.0 < self.fps <= 1000.0:
            raise FacedancerError(f"--fps must be in (0, 1000], got {self.fps}")
        if self.codec not in CODEC_CHOICES:
            raise FacedancerError(f"--codec must be one of {', '.join(CODEC_CHOICES)}, got "
                                  f"'{self.codec}'")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise FacedancerError(f"--batch-size must be in 1..{MAX_BATCH_SIZE}, got "
                                  f"{self.batch_size}")
        if self.max_frames is not None and self.max_frames < 1:
            raise FacedancerError(f"--max-frames must be >= 1, got {self.max_frames}")
        for name, value in (("--start", self.start), ("--end", self.end)):
            if value is not None and not 0.0 <= value < float("inf"):
                raise FacedancerError(f"{name} is a time in the video, 0 or later, got {value}")
        if self.start is not None and self.end is not None and not self.end > self.start:
            raise FacedancerError(f"--end ({self.end:g} s) must come after --start "
                                  f"({self.start:g} s)")

    def in_span(self, seconds: float) -> bool:
        """Whether a frame shown at ``seconds`` is inside ``start``..``end`` (end excluded)."""
        return (self.start is None or seconds >= self.start - 1e-6) and \
            (self.end is None or seconds < self.end - 1e-6)

    def span_text(self) -> str | None:
        """``"from 1:02.5 to 1:10"`` for the summary line; None without a range."""
        if self.start is None and self.end is None:
            return None
        parts = []
        if self.start is not None:
            parts.append(f"from {format_time(self.start)}")
        if self.end is not None:
            parts.append(f"to {format_time(self.end)}")
        return " ".join(parts)

    def replace(self, **changes) -> SwapOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def parse_time(text: str | float | None, name: str = "--start") -> float | None:
    """``"83.5"``, ``"1:23.5"`` or ``"0:01:23.5"`` (seconds, MM:SS, HH:MM:SS) -> seconds
    (a timecode with frames needs its clip: :func:`clip_time`)."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 3 or not all(p.strip() for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        raise FacedancerError(f"{name} is a time: seconds (83.5), MM:SS (1:23.5), HH:MM:SS or "
                              f"a timecode HH:MM:SS:FF, not '{text}'") from None
    seconds = 0.0
    for value in values:
        seconds = seconds * 60.0 + value
    return seconds


def clip_time(text: str | float | None, name: str, clip: str | Path | None = None,
              fps: float | None = None) -> float | None:
    """:func:`parse_time`, and for an SMPTE timecode with frames (``01:00:02:12``, drop-frame
    ``00:01:00;02``: ``io/timecode.py``) the seconds from the first frame of ``clip`` (a video
    or an image sequence, ``fps`` the sequence's rate) to the frame it names, counted from the
    clip's own start timecode. A timecode given without one clip is a one-line error."""
    from ..io.timecode import is_timecode, timecode_seconds

    if not is_timecode(text):
        return parse_time(text, name)
    from ..io.sequence import is_sequence_pattern, probe_clip
    from .checks import target_kind

    if clip is None or (not is_sequence_pattern(clip) and target_kind(clip) != "video"):
        raise FacedancerError(f"{name} {text}: a timecode with frames counts at a clip's frame "
                              "rate; give one clip, or the time in seconds", clip)
    info = probe_clip(clip, fps)
    return timecode_seconds(text, info.fps, info.timecode, name)


def starts_after(start: float | None, duration: float) -> bool:
    """Whether ``--start`` (``start`` seconds) lies at or after the end of a clip ``duration``
    seconds long: not one of its frames is searched (an unknown length, 0, never counts)."""
    return start is not None and duration > 0 and start >= duration


def format_time(seconds: float) -> str:
    """``83.5`` -> ``"1:23.5"``; under a minute ``"23.5 s"``."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, rest = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    head = f"{hours}:{minutes:02d}" if hours else f"{minutes}"
    second = f"{rest:05.2f}".rstrip("0").rstrip(".") if rest % 1 else f"{int(rest):02d}"
    return f"{head}:{second}"


def parse_mapping(items: list[str]) -> list[tuple[Path, Path]]:
    """``["PERSON.jpg=SOURCE.jpg", ...]`` (the ``--map`` values) to pairs of paths."""
    pairs = []
    for item in items:
        person, sep, source = item.partition("=")
        if not sep or not person or not source:
            raise FacedancerError(f"--map expects PERSON.jpg=SOURCE.jpg, got '{item}'")
        pairs.append((Path(person), Path(source)))
    return pairs


def mask_parts(spec: str) -> tuple[str, ...]:
    """``"box+hull+occlusion"`` -> ``("box", "hull", "occlusion")`` (validated, one line)."""
    parts = tuple(part.strip() for part in str(spec).lower().split("+") if part.strip())
    unknown = [p for p in parts if p not in MASK_PARTS]
    if not parts or unknown:
        raise FacedancerError(f"--mask is one or more of {', '.join(MASK_PARTS)} joined by '+', "
                              f"not '{spec}'")
    return tuple(dict.fromkeys(parts))
