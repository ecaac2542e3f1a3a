"""``facedancer faces``: the faces of a photo or of one frame of a clip, numbered from the left
as ``PHOTO@N`` counts them, with what a swap leaves alone and why (docs/swap.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import FacedancerError
from ..io.atomic import check_writable
from .swap import DETECTOR_HELP, _one_line_warnings  # (light: swap.py imports no model code)

# Library modules are imported inside the command: cli/__init__.py imports every command module
# at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX Runtime to load.

_HELP = """List the faces of a photo, or of the frame of a clip shown at --at, numbered from the left as PHOTO@N counts them (--source, --reference and --map take PHOTO@N), with the faces a swap leaves as they are and why (too small, a profile, cut by the edge).

--output writes the picture with each face's box and number drawn (green: swapped; grey: left). For a clip, --frame writes the frame itself, to name a person as --reference FRAME.png@N (the web UI's people picker does the same).

--reference PHOTO gives each face's identity distance to that person and marks the face a swap with --reference PHOTO takes (the nearest within --threshold), to see why a reference matches no one or the wrong one.

Examples:

  facedancer faces group.jpg -o numbered.png

  facedancer faces clip.mp4 --at 1:02.5 --frame frame.png -o numbered.png

  facedancer swap -s me.jpg -t clip.mp4 -o out.mp4 --reference frame.png@3

  facedancer faces clip.mp4 --at 12 --reference actor.jpg
"""


def register(app: typer.Typer) -> None:
    @app.command("faces", help=_HELP, no_args_is_help=True)
    def faces(
        target: Path = typer.Argument(..., metavar="TARGET", help="A photo, a video or an "
                                      "image sequence (shot_%04d.png)."),
        at: str = typer.Option(None, "--at", help="Clip: the frame shown at this time "
                               "(seconds, MM:SS, HH:MM:SS or a timecode HH:MM:SS:FF; "
                               "default: the first)."),
        output: Path = typer.Option(None, "--output", "-o", help="Write the picture with the "
                                    "faces' boxes and numbers drawn (.png, .jpg, ...)."),
        frame: Path = typer.Option(None, "--frame", help="Clip: write the frame as it is "
                                   "(a lossless .png keeps it exact), to name a face as "
                                   "--reference FRAME@N."),
        min_face_size: float = typer.Option(None, "--min-face-size", help="As swap's: faces "
                                            "smaller than this share of the shorter side are "
                                            "left alone (default: 0 for a photo, 0.08 for a "
                                            "clip)."),
        no_profile_fade: bool = typer.Option(False, "--no-profile-fade",
                                             help="As swap's: profiles are swapped too."),
        no_cut_fade: bool = typer.Option(False, "--no-cut-fade", help="As swap's: faces the "
                                         "edge cuts deeply are swapped too."),
        fps: float = typer.Option(None, "--fps", help="Frame rate of an image sequence."),
        reference: list[Path] = typer.Option(None, "--reference", help="As swap's: photo(s) "
                                             "of one person (PHOTO@N for one face of it); "
                                             "each face's distance to them is listed."),
        threshold: float = typer.Option(None, "--threshold", help="As swap's: the identity "
                                        "distance under which a face is the --reference "
                                        "person (default: the encoder's)."),
        model: str = typer.Option(None, "--model", "-m", help="With --reference: the model "
                                  "whose identity encoder measures (default: the demo "
                                  "model's)."),
        detector: str = typer.Option("retinaface", "--detector", help=DETECTOR_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the faces as JSON."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    ) -> None:
        from ..faces.detect import get_detector
        from ..io.images import read_image, write_image
        from ..io.sequence import first_frame_number, probe_clip
        from ..io.timecode import frame_timecode
        from ..swap.checks import (IMAGE_OUTPUT_SUFFIXES, check_output, check_start,
                                   check_target, target_kind)
        from ..swap.face_list import draw_faces, list_faces, with_reference
        from ..swap.options import SwapOptions, clip_time, format_time
        from ..swap.pipeline import Swapper, detector_location
        from ..swap.preview import frame_shown_at

        kind = target_kind(target)
        if kind == "folder":
            raise FacedancerError("give one photo or clip, not a folder", target)
        if kind == "image" and at is not None:
            raise FacedancerError("--at picks a frame of a clip; this is a photo", target)
        seconds = clip_time(at, "--at", target, fps)
        if kind == "image" and frame is not None:
            raise FacedancerError("--frame writes a frame of a clip; a photo names its own "
                                  f"faces as {target.name}@N", target)
        for path, what in ((output, "--output"), (frame, "--frame")):
            if path is None:
                continue
            if path.suffix.lower() not in IMAGE_OUTPUT_SUFFIXES:
                raise FacedancerError(f"{what} is a picture: give one of "
                                      f"{' '.join(IMAGE_OUTPUT_SUFFIXES)}", path)
            check_output(path, overwrite, target)
            check_writable(path)
        if output is not None and frame is not None and \
                output.resolve() == frame.resolve():
            raise FacedancerError("--output and --frame name the same file", output)
        check_target(target, kind)
        video = kind == "video"
        if video:
            seconds = 0.0 if seconds is None else seconds
            info = probe_clip(target, fps)
            check_start(target, info.duration, seconds, "--at")
            decoded = frame_shown_at(target, seconds, fps)
            rgb = decoded.rgb
            timecode = frame_timecode(decoded.index, info.fps, info.timecode)
            number = decoded.index + first_frame_number(target)
            where = (f"the frame at {format_time(round(decoded.time, 3))} ("
                     + (f"timecode {timecode}, " if timecode else "") + f"frame {number})")
        else:
            rgb = read_image(target)
            where = timecode = number = None
        options = SwapOptions(min_face_size=min_face_size, profile_fade=not no_profile_fade,
                              cut_fade=not no_cut_fade, fps=fps, threshold=threshold,
                              reference=list(reference or []))
        if options.reference:
            with _one_line_warnings():
                swapper = Swapper(model, detector=detector)
                plan = reference_plan(swapper, options)
            found = with_reference(swapper, rgb, list_faces(swapper.detector, rgb, options,
                                                            video), plan)
        else:
            plan = None
            found = list_faces(get_detector(detector_location(detector)), rgb, options, video)
        if frame is not None:
            write_image(frame, rgb)  # untouched: no face in it is synthetic, so no label
        if output is not None:
            write_image(output, draw_faces(rgb, found))  # boxes drawn, no face changed
        if as_json:
            typer.echo(json.dumps({"path": str(target), "kind": kind,
                                   "time": None if where is None else round(decoded.time, 6),
                                   "frame": number, "timecode": timecode,
                                   "frame_file": None if frame is None else str(frame),
                                   "faces": [face.as_dict() for face in found]}, indent=2))
            return
        typer.echo(describe(target, found, where, frame, plan))


def reference_plan(swapper, options):
    """The selection of ``options.reference`` alone: ``Swapper.plan``'s, whose ``choose``
    picks the face a swap with that ``--reference`` takes (the reference's own identity
    stands in for a source, which only says what the chosen face would get; ``plan`` takes
    the reference again from the swapper's cache)."""
    return swapper.plan(swapper.embed(options.reference, role="reference"), options)


def describe(target: Path, found: list, where: str | None, frame: Path | None,
             plan=None) -> str:
    """The listing printed for ``facedancer faces``: a header and a line per face (with a
    ``--reference`` ``plan``, each face's distance to the person, and which one is taken)."""
    name = Path(target).name
    count = f"{len(found)} face{'s' if len(found) != 1 else ''}"
    head = f"{name}: {count}" if where is None else f"{name}, {where}: {count}"
    if not found:
        return head
    if where is None:
        head += f" ({name}@N names one as --source, --reference or --map photo)"
    elif frame is not None:
        head += f" ({frame}@N names one as --reference or --map person)"
    else:
        head += (" (write the frame with --frame FRAME.png to name one as --reference or --map "
                 "person FRAME.png@N)")
    lines = [head]
    for face in found:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        turn = f", read turned {face.rotation} deg" if face.rotation else ""
        line = (f"  @{face.number:<3d} box {x0},{y0} to {x1},{y1} ({face.size:.0f} px), "
                f"score {face.score:.2f}{turn}")
        if face.distance is not None:
            line += f", {face.distance:.2f} from the reference" + (
                " (the face --reference swaps)" if face.chosen else "")
        if face.left:
            line += f": left as it is, {face.left} ({face.option} changes it)"
        elif face.weight < 1.0:
            line += (f": turned, the swap fades towards the face as it is (weight "
                     f"{face.weight:.2f}; --no-profile-fade swaps it whole)")
        lines.append(line)
    if plan is not None:
        taken = any(face.chosen for face in found)
        lines.append(f"  (--reference: the nearest face a swap takes, if within --threshold "
                     f"{plan.threshold:.2f}" + ("" if taken else "; none is here") + (
                         "; in a clip the decision is a track's, its first views averaged)"
                         if where is not None else ")"))
    if where is not None:
        lines.append("  (in a clip a face is swapped once the tracker has confirmed it: "
                     "from its --confirm-frames-th detection)")
    return "\n".join(lines)
