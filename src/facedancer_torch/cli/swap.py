"""``facedancer swap``: swap faces in an image, a video or a folder (docs/reference.md §7)."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import typer

from ..errors import FacedancerError
from ..io.atomic import check_writable
# Light modules (no torch): the defaults shown in --help.
from ..swap.options import CONFIRM_FRAMES, DEFAULT_MASK, DETECT_EVERY

# The rest of the library is imported inside the command, not here: cli/__init__.py imports
# every command module at start-up, and `facedancer --help` must not wait for torch, PyAV or
# ONNX Runtime to load.

EXAMPLES = """Examples:

facedancer swap -s me.jpg -t group.jpg -o swapped.png -m models/fd

facedancer swap -s me1.jpg -s me2.jpg -t clip.mp4 -o out.mp4 --crf 20

facedancer swap -s me.jpg -t clip.mp4 -o out.mp4 --reference actor.jpg

facedancer faces clip.mp4 --at 12 --frame frame.png   (numbers the faces of the frame at 12 s)

facedancer swap -s me.jpg -t clip.mp4 -o out.mp4 --reference frame.png@3

facedancer swap --map alice.jpg=me.jpg --map bob.jpg=you.jpg -t party.mp4 -o out.mp4

facedancer swap -s me.jpg -t photos/ -o swapped/ --faces largest

facedancer swap -s me.jpg -t plate/shot_%04d.png -o out/shot_%04d.png --fps 24

facedancer swap -s me.jpg -t clip.mov -o check.png --at 1:02.5

facedancer swap -s me.jpg -t clip.mov -o out.mov --matte out_matte.mov
"""


# The --detector option's help, as swap and faces (cli/faces.py) give it.
DETECTOR_HELP = ("Face detector: retinaface (embedded) or a converted RetinaFace-Res50 folder / "
                 "catalogue name (facedancer convert).")


@contextlib.contextmanager
def _one_line_warnings():
    """Show library warnings (e.g. a generator backend falling back) as ``warning: ...``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        typer.echo(f"warning: {' '.join(str(item.message).split())}", err=True)


def register(app: typer.Typer) -> None:
    @app.command("swap", help="Swap faces in an image, a video or a folder of them.\n\n"
                 "The output is synthetic media: it carries a metadata tag saying so and an "
                 "invisible watermark (facedancer verify reads it). Only swap faces of people "
                 "who consented.\n\n" + EXAMPLES)
    def swap(
        source: list[Path] = typer.Option(
            None, "--source", "-s", help="Photo of the face to put in (repeat for several "
            "photos of one person: their identities are averaged). Its largest face, or "
            "PHOTO@N: the N-th face from the left."),
        target: Path = typer.Option(..., "--target", "-t",
                                    help="Image, video, folder, or image sequence "
                                    "(shot_%04d.png: swapped as a clip) to swap faces in."),
        output: Path = typer.Option(..., "--output", "-o", help="Output file (or folder for a "
                                    "folder target, or out_%04d.png for frames); the suffix "
                                    "picks the format."),
        model: str = typer.Option(None, "--model", "-m", help="Model directory or catalogue "
                                  "name (default: the embedded demo model)."),
        faces: str = typer.Option("all", "--faces", help="Which faces are candidates: 'all' "
                                  "or 'largest' (per image or frame)."),
        reference: list[Path] = typer.Option(
            None, "--reference", help="Swap only faces of this person (photo; repeat to "
            "average several)."),
        threshold: float = typer.Option(None, "--threshold", help="Identity cosine distance "
                                        "for --reference/--map matches (default: the "
                                        "encoder's own, else 0.6)."),
        mapping: list[str] = typer.Option(
            None, "--map", help="PERSON.jpg=SOURCE.jpg: faces of PERSON get SOURCE's face "
            "(repeat for several people)."),
        mask: str = typer.Option(DEFAULT_MASK, "--mask", help="Blend mask, parts joined by "
                                 "'+': box (the reference's soft box), hull (the face outline "
                                 "from 68 landmarks), occlusion (keep hands, microphones, masks "
                                 "in front of the face), segment (the segmenter's face "
                                 "region), mouth / eyes (keep the target's own: exact lip "
                                 "movement for a dub, its gaze). 'box' alone is the "
                                 "reference. See docs/swap.md."),
        mask_blur: float = typer.Option(None, "--mask-blur", help="Box mask blur sigma in "
                                        "pixels of a 256 crop (default 7, the reference's)."),
        mask_padding: float = typer.Option(0.0, "--mask-padding", help="Grow (>0) or shrink "
                                           "(<0) the mask box by this fraction of the crop."),
        color_match: str = typer.Option("local", "--color-match", help="Colour correction: "
                                        "local (global + per-pixel chroma: no colour casts), "
                                        "global (Lab mean/std), none."),
        detail: float = typer.Option(1.0, "--detail", help="0..1: how much of the target's "
                                     "detail above the model's resolution is kept (sharpness "
                                     "at the output size; a face the photo shows out of focus "
                                     "stays out of focus; 0 = the model's output only)."),
        pixel_boost: int = typer.Option(1, "--pixel-boost", help="1..4: run the model on "
                                        "N x N sub-pixel samplings of a face N times its crop "
                                        "and interleave them (more of the model's own detail, "
                                        "N^2 model calls per face; 1 = off)."),
        identity_strength: float = typer.Option(
            None, "--identity-strength", help="0..1: push the identity the model gets away "
            "from the target's own face (0 = the source's embedding, the reference; 0.5 = "
            "half the source-target difference further; one identity-encoder pass per "
            "face, in videos per tracked person). Default: what the model recommends "
            "(the demo model: 0.2; others: 0). See docs/swap.md."),
        detail_follow: bool = typer.Option(False, "--detail-follow", help="Move the "
                                           "target's detail onto the swap's eyes, brows and "
                                           "mouth first: no double lid creases or brows where "
                                           "the model puts them elsewhere than the target "
                                           "has them, for some sharpness. See docs/swap.md."),
        no_profile_fade: bool = typer.Option(False, "--no-profile-fade", help="Swap faces "
                                             "turned to a profile too (by default they fade "
                                             "back to the target)."),
        no_cut_fade: bool = typer.Option(False, "--no-cut-fade", help="Swap faces the "
                                         "picture's edge cuts deeply too (by default such a "
                                         "face fades back to the target as the detector's "
                                         "confidence in it falls: a face leaving a video "
                                         "fades out)."),
        no_blinks: bool = typer.Option(False, "--no-blinks", help="Paste the model's eyes "
                                       "even where the target closes its eyes (by default "
                                       "an eye the target closes further than the swap is "
                                       "kept from the target: blinks survive)."),
        no_exposure_gain: bool = typer.Option(False, "--no-exposure-gain", help="Give the "
                                              "model dark faces and faces under coloured "
                                              "light as they are (by default such a face is "
                                              "brightened or white-balanced for the model and "
                                              "its swap given the light back)."),
        min_face_size: float = typer.Option(None, "--min-face-size", help="Leave faces smaller "
                                            "than this fraction of the frame's shorter side "
                                            "(default: 0 for images, 0.08 for videos)."),
        confirm_frames: int = typer.Option(CONFIRM_FRAMES, "--confirm-frames", help="Video: "
                                           "detections a face needs before it is swapped "
                                           "(against false detections)."),
        detect_every: int = typer.Option(DETECT_EVERY, "--detect-every", help="Video: "
                                         "detect faces in the whole frame every N frames and "
                                         "follow them in small crops in between (1 = whole "
                                         "frame every frame; new faces are found at the next "
                                         "whole-frame detection)."),
        identity_encoder: str = typer.Option(
            None, "--identity-encoder", help="Identity encoder name or directory (default: the "
            "one the model was trained with; 'default' = the embedded default encoder)."),
        crf: int = typer.Option(18, "--crf", help="H.264 quality (0 lossless .. 51 worst)."),
        preset: str = typer.Option("medium", "--preset", help="H.264 speed preset "
                                   "(ultrafast .. veryslow)."),
        codec: str = typer.Option("auto", "--codec", help="Video codec: auto (a ProRes, "
                                  "DNxHR or FFV1 source keeps its codec and profile, a "
                                  "10-bit HDR clip becomes HEVC Main 10, anything else "
                                  "H.264; VP9 in .webm), h264, h265, prores, dnxhr, ffv1, "
                                  "vp9."),
        fps: float = typer.Option(None, "--fps", help="Frame rate of an image sequence "
                                  "target (shot_%04d.png; default 25)."),
        batch_size: int = typer.Option(8, "--batch-size", help="Faces per generator call."),
        max_frames: int = typer.Option(None, "--max-frames", help="Stop videos after this "
                                       "many frames."),
        start: str = typer.Option(None, "--start", help="Video: swap faces from this time on "
                                  "(seconds, MM:SS, HH:MM:SS, or a timecode HH:MM:SS:FF "
                                  "counted from the clip's own); the frames before pass "
                                  "through unchanged and the clip keeps its length."),
        end: str = typer.Option(None, "--end", help="Video: swap faces up to this time; the "
                                "frames after pass through unchanged."),
        at: str = typer.Option(None, "--at", help="Clip: write only the frame shown at this "
                               "time (as --start) as an image --output, "
                               "swapped as the whole clip's swap shows it (to check settings "
                               "before a render)."),
        matte: Path = typer.Option(None, "--matte", help="Also write the matte: how much of "
                                   "each output pixel the swapped faces replaced, white to "
                                   "black (an image: .png/.tif; a clip: .mp4/.mov/.mkv/.webm "
                                   "or matte_%04d.png; a folder: a folder)."),
        detector: str = typer.Option("retinaface", "--detector", help=DETECTOR_HELP),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        backend: str = typer.Option("auto", "--backend", help="Generator runtime: auto "
                                    "(CUDA fp16; CPU bf16 where native, else ONNX Runtime "
                                    "or fused), fused, bf16, eager, onnxruntime, fp16."),
        no_watermark: bool = typer.Option(False, "--no-watermark", help="Do not embed the "
                                          "invisible watermark (the metadata tag stays)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        from ..swap.checks import check_frame_job, check_job
        from ..swap.options import SwapOptions, clip_time, parse_mapping
        from ..swap.pipeline import Swapper

        options = SwapOptions(
            faces=faces, reference=list(reference or []), mapping=parse_mapping(mapping or []),
            threshold=threshold, mask=mask, mask_blur=mask_blur, mask_padding=mask_padding,
            color_match=color_match, detail=detail, detail_follow=detail_follow,
            profile_fade=not no_profile_fade,
            cut_fade=not no_cut_fade, blinks=not no_blinks, pixel_boost=pixel_boost,
            exposure=not no_exposure_gain,
            identity_strength=identity_strength, min_face_size=min_face_size,
            confirm_frames=confirm_frames, detect_every=detect_every, crf=crf, preset=preset,
            codec=codec, fps=fps, watermark=not no_watermark, overwrite=overwrite, max_frames=max_frames,
            batch_size=batch_size, start=clip_time(start, "--start", target, fps),
            end=clip_time(end, "--end", target, fps), matte=matte)
        if not source and not options.mapping:
            raise FacedancerError("give a source face with --source (or people with --map)")
        # Cheap checks first: a wrong target or an existing output fails before models load.
        frame_at = clip_time(at, "--at", target, fps)
        if frame_at is not None:
            kind = check_frame_job(target, output, options, frame_at)
        else:
            kind = check_job(target, output, overwrite, options.codec, options.start,
                             options.matte)
        check_writable(output, folder=kind == "folder")  # not after the whole video encoded
        if matte is not None:
            check_writable(matte, folder=kind == "folder")
        with _one_line_warnings():
            swapper = Swapper(model, identity_encoder=identity_encoder, device=device,
                              detector=detector,
                              backend=backend)
        plan = swapper.plan(list(source or []), options)
        if frame_at is not None:
            result = swapper.swap_clip_frame(target, output, plan, frame_at, options)
        else:
            result = swapper.swap_path(target, output, plan, options, progress=not quiet)
        if kind == "folder":
            typer.echo(f"{output}: {result.summary()}")  # failures were printed as they came
            if result.failed:
                raise typer.Exit(1)
        else:
            typer.echo(result.summary())
            if result.warning():
                typer.echo(f"warning: {result.warning()}", err=True)
