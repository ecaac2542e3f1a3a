"""What a swap of one file did, for the command line, the web UI and folder runs.

A swap that changed nothing must say so (and must not label the file as synthetic media), and a
video swap says in how many frames a face was swapped: users check this before they trust an
output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class FileReport:
    """The result of swapping one image or video file.

    Attributes:
        path: the output file.
        kind: ``"image"`` or ``"video"``.
        detected: faces the detector found (videos: summed over frames).
        swapped: faces swapped (videos: summed over frames).
        too_small: faces left alone for being under the minimum face size (summed over frames).
        profiles: faces left alone for being turned to a profile (summed over frames).
        cut: faces left alone for being cut so deeply by the picture's edge that their
            reading is not to be trusted (``select.split_cut``; summed over frames).
        frames: frames written (1 for an image).
        frames_swapped: frames in which at least one face was swapped.
        cuts: shot cuts found in a video (``faces/shots.py``): each started its faces'
            tracks, and their ``--reference`` / ``--map`` decisions, afresh.
        span: the time range faces were swapped in (``--start`` / ``--end``), as words; for
            an image made of one frame of a clip (``--at``), which frame.
        length: a video's length in words when it ends before ``--start`` (no frame was
            searched), else None.
        nearest: with ``--reference`` / ``--map``, the smallest identity distance of a
            candidate face to a wanted person (``SelectionPlan.nearest``), else None.
        threshold: the same-person threshold those distances were held against.
    """

    path: Path
    kind: str = "image"
    detected: int = 0
    swapped: int = 0
    too_small: int = 0
    profiles: int = 0
    cut: int = 0
    frames: int = 1
    frames_swapped: int = 0
    cuts: int = 0
    span: str | None = None
    length: str | None = None
    nearest: float | None = None
    threshold: float | None = None

    @property
    def changed(self) -> bool:
        """True when at least one face was swapped (the output is synthetic media)."""
        return self.swapped > 0

    def summary(self) -> str:
        """One line: ``out.mp4: 118 of 120 frames with a swapped face (2 without) ...``."""
        if self.kind == "video":
            text = (f"{self.path}: {self.frames_swapped} of {self.frames} frames with a swapped "
                    f"face ({self.frames - self.frames_swapped} without), {self.swapped} face "
                    f"swaps in all")
            if self.span:
                text += f" (faces swapped only {self.span})"
            if self.cuts:
                text += f", {self.cuts} shot cut{'s' if self.cuts != 1 else ''} (faces " \
                        "tracked afresh after each)"
        else:
            text = f"{self.path}: {self.swapped} of {self.detected} " \
                   f"face{'s' if self.detected != 1 else ''} swapped"
            if self.span:  # a clip's frame (swap/preview.py)
                text += f" ({self.span})"
        if self.too_small:
            text += f"; {self.too_small} face{'s' if self.too_small != 1 else ''} under the " \
                    "minimum face size left alone (--min-face-size)"
        if self.profiles:
            many = self.profiles != 1
            text += f"; {self.profiles} face{'s' if many else ''} turned to a profile left as " \
                    f"{'they are' if many else 'it is'} (--no-profile-fade swaps them)"
        if self.cut:
            many = self.cut != 1
            text += f"; {self.cut} face{'s' if many else ''} cut deeply by the picture's edge " \
                    f"left as {'they are' if many else 'it is'} (--no-cut-fade swaps them)"
        return text

    def unswapped_reason(self) -> str:
        """Why nothing was swapped, in words (the CLI's warning and the web UI say it)."""
        if self.length is not None:
            return (f"the clip is {self.length} long, and faces were to be swapped only "
                    f"{self.span}")
        if not self.detected:
            return "no face was found"
        if self.nearest is not None and self.threshold is not None and \
                self.nearest > self.threshold:
            return (f"no face came within --threshold {self.threshold:.2f} of a person asked "
                    f"for with --reference or --map; the nearest was {self.nearest:.2f} apart. "
                    "If the person is there: a face turned away, small or blurred, in the "
                    "photo or the target, is read less surely, and a photo of them facing the "
                    "camera, or a higher --threshold, may match")
        # A video's faces are also swapped only once their track is confirmed.
        seen = ", seen in enough frames in a row (--confirm-frames)" \
            if self.kind == "video" else ""
        return (f"none of the {self.detected} faces found was selected, large enough{seen}, "
                "turned far enough towards the camera or read right where the picture's edge "
                "cuts it")

    def warning(self) -> str | None:
        """The warning for an output in which nothing was swapped, else None."""
        if self.changed:
            return None
        return (f"{self.path}: nothing swapped ({self.unswapped_reason()}); the output is the "
                "unchanged target, without the synthetic-media tag and watermark")
