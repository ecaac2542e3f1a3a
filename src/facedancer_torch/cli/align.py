"""``facedancer align``: detect and align every face of a dataset into crops (docs/align.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import FacedancerError

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

_HELP = (
    "Detect and align faces of a dataset (images and videos) into square crops.\n\n"
    "INPUT is DATASET/<identity>/<files> or a flat folder; OUTPUT mirrors its structure. Bad "
    "files never stop the run: each input gets a line with its status and reason in "
    "OUTPUT/align_report.jsonl, and a rerun resumes (finished inputs are skipped). Under "
    "torchrun (RANK/WORLD_SIZE) or with --partition i/N each process aligns the disjoint slice "
    "i of N of the sorted inputs.\n\n"
    """Examples:

  facedancer align ~/data/vggface2/train ~/data/vggface2_256 --workers 8

  facedancer align clips/ crops/ --faces all --video-stride 25 --im-size 256

  torchrun --nproc-per-node 4 --no-python facedancer align IN OUT --workers 4
""")


def register(app: typer.Typer) -> None:
    @app.command("align", help=_HELP, no_args_is_help=True)
    def align(
        input_dir: Path = typer.Argument(..., metavar="INPUT",
                                         help="Folder of identity folders, or a flat folder."),
        output_dir: Path = typer.Argument(..., metavar="OUTPUT",
                                          help="Where crops, report and config go."),
        im_size: int = typer.Option(256, "--im-size", help="Crop side in pixels."),
        min_size: int = typer.Option(
            128, "--min-size",
            help="Skip inputs whose width or height is not above this (strict >, as the "
                 "reference)."),
        shrink_factor: float = typer.Option(
            1.0, "--shrink-factor",
            help="1.0: exact ArcFace crop; < 1 keeps more background (docs/reference.md §1)."),
        faces: str = typer.Option("largest", "--faces",
                                  help="'largest': one crop per image/frame; 'all': every face."),
        video_stride: int = typer.Option(10, "--video-stride",
                                         help="Align every K-th frame of videos."),
        workers: int = typer.Option(1, "--workers", help="Parallel worker processes."),
        partition: str = typer.Option(
            None, "--partition",
            help="i/N: align only slice i of N (default: torchrun RANK/WORLD_SIZE, else 0/1)."),
        device: str = typer.Option("auto", "--device",
                                   help="Detector device: auto, cpu, cuda or cuda:N."),
        out_format: str = typer.Option("png", "--format", help="Crop file format: png, jpg, webp."),
        score_threshold: float = typer.Option(
            None, "--score-threshold",
            help="Detector confidence threshold (default 0.7, see docs/align.md)."),
        max_side: int = typer.Option(
            640, "--max-side", help="Detect on a copy downscaled to this longest side."),
        min_face_size: float = typer.Option(
            0.0, "--min-face-size", help="Ignore detected faces smaller than this (pixels)."),
        detector: str = typer.Option(
            "retinaface", "--detector",
            help="'retinaface' (embedded MobileNet-0.25), or the authors' RetinaFace-Res50: a "
                 "folder made by `facedancer convert RetinaFace-Res50.h5 FOLDER`, or its name "
                 "in the model store (`facedancer models add/get`, e.g. retinaface-r50)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        from ..data.align_dataset import (AlignSettings, align_dataset, parse_partition,
                                          partition_from_env)
        from ..swap.pipeline import detector_location

        # A store name becomes its folder here, as for swap, ui and make-testset; the crops'
        # config.json then records the folder that aligned them.
        detector = detector_location(detector)

        settings = AlignSettings(
            im_size=im_size, min_size=min_size, shrink_factor=shrink_factor, faces=faces,
            video_stride=video_stride,
            out_format=out_format.lower().lstrip(".").replace("jpeg", "jpg"),
            score_threshold=score_threshold, max_side=max_side, min_face_size=min_face_size,
            detector=detector)
        part = parse_partition(partition) if partition else partition_from_env()
        counts = align_dataset(input_dir, output_dir, settings, workers=workers, partition=part,
                               device=device, progress=not quiet)
        typer.echo(counts.summary())
        if counts.aligned == 0 and part[1] == 1 and \
                counts.read + counts.unreadable + counts.ignored + counts.error:
            # Bad files never stop the run, but a run that aligned nothing at all has failed
            # (one slice of a partitioned run cannot tell: others may have aligned them all).

            raise FacedancerError(f"no face was aligned from any input; see the reasons in "
                                  f"{output_dir}/align_report*.jsonl", input_dir)
