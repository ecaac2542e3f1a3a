"""``facedancer make-testset``, ``evaluate``, ``evaluate-encoder`` (docs/evaluation.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import FacedancerError
from ..io.atomic import atomic_write_text

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

# make-testset and evaluate-encoder detect faces (evaluate reads the test set's crops).
_DETECTOR_HELP = ("Face detector: retinaface (embedded) or a converted RetinaFace-Res50 folder / "
                  "catalogue name (`facedancer convert RetinaFace-Res50.h5 FOLDER`).")

_MAKE_TESTSET_HELP = """Build an evaluation test set: aligned face crops plus manifest.json.

INPUT is a folder of videos (FaceForensics++ protocol: N random frames per video, the video is the identity) or of identity folders of images (e.g. LFW's images/<Name>/). Crops are 512 px at shrink 0.5 by default (the whole head; every network cuts its own crop from the centre).

Examples:

  facedancer make-testset ff++/original_sequences/youtube/c23/videos testset --frames-per-video 10

  facedancer make-testset ../shared/data/lfw/images lfw_testset --max-per-identity 5 --seed 1
"""

_EVALUATE_HELP = """Score a model with the paper's protocol: ID retrieval, pose, expression, FD/KID.

Each test image is swapped with a source of another identity (a fixed, seeded pairing written to pairs.json), then: ID retrieval top-1/top-5 with dlib's face descriptor (independent of the generator's encoder), identity cosines swap->source and swap->target per encoder, head-pose error (degrees) and expression error (% inter-ocular distance) from dlib's 68 landmarks, and non-standard FD/KID on identity-encoder features. Writes report.json, report.md, plots/*.png and examples.png into --out.

Examples:

  facedancer evaluate --model runs/exp1/export --testset testset --out reports/exp1

  facedancer evaluate --model converted/FaceDancer_C --testset testset --pairs 1000 --seed 0 --identity-encoder converted/ArcFace-Res50 --out reports/C

  facedancer evaluate --swaps other_tool_swaps --testset testset --out reports/other
"""

_COMPARE_HELP = """Compare evaluation reports of several models made on the same pairs, pair by pair.

The first report is the baseline. Prints each report's numbers, then every other report's paired differences from the baseline: mean ± standard error and 95 % interval of the per-pair pose, expression and colour-cast differences, and the pairs whose ID retrieval (top-1, top-5) one model got and the other did not, with McNemar's exact p. Reports must come from the same test set, --pairs and --seed (checked pair by pair).

Examples:

  facedancer compare-reports reports/demo reports/exp1 reports/exp2

  facedancer compare-reports reports/demo/report.json reports/exp1 --json comparison.json

  facedancer compare-reports reports/demo reports/exp* --plot tradeoff.png
"""

_EVALUATE_ENCODER_HELP = """LFW 10-fold verification accuracy of identity encoders (a check of encoders + alignment).

Every image is re-detected and re-aligned with the project's detector and template; the threshold of each fold is chosen on the other nine. Prints one line per encoder; --json writes the details (top-level "accuracy" is the first encoder's).

Examples:

  facedancer evaluate-encoder --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairs.txt --encoder default --encoder dlib

  facedancer evaluate-encoder --images lfw --pairs lfw/pairs.txt --encoder converted/ArcFace-Res50 --limit 600 --json arcface_lfw.json
"""


def register(app: typer.Typer) -> None:
    @app.command("make-testset", help=_MAKE_TESTSET_HELP, no_args_is_help=True)
    def make_testset_command(
        input_dir: Path = typer.Argument(..., metavar="INPUT",
                                         help="Folder of videos or of identity folders."),
        out_dir: Path = typer.Argument(..., metavar="OUT", help="Test set folder to create."),
        frames_per_video: int = typer.Option(10, "--frames-per-video",
                                             help="Random frames drawn from each video."),
        max_per_identity: int = typer.Option(
            None, "--max-per-identity",
            help="Identity folders: keep at most this many images (seeded random choice)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the frame/image choice."),
        size: int = typer.Option(512, "--size", help="Crop side in pixels."),
        shrink: float = typer.Option(0.5, "--shrink",
                                     help="Template shrink factor of the crops (docs/reference.md §1)."),
        device: str = typer.Option("auto", "--device", help="Detector device."),
        detector: str = typer.Option("retinaface", "--detector", help=_DETECTOR_HELP),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        from ..evaluate.testset import make_testset
        from ..faces.detect import get_detector
        from ..swap.pipeline import detector_location

        testset = make_testset(input_dir, out_dir, frames_per_video=frames_per_video, seed=seed,
                               size=size, shrink=shrink, max_per_identity=max_per_identity,
                               detector=get_detector(detector_location(detector),
                                                     device=device),
                               progress=not quiet)
        skipped = len(testset.info.get("skipped", []))
        typer.echo(f"{len(testset.images)} crops of {len(testset.identities)} identities in "
                   f"{out_dir} ({skipped} frames/images without a usable face skipped)")

    @app.command("evaluate", help=_EVALUATE_HELP, no_args_is_help=True)
    def evaluate_command(
        testset: Path = typer.Option(..., "--testset", help="Folder made by make-testset."),
        out: Path = typer.Option(..., "--out", help="Report folder."),
        model: str = typer.Option(None, "--model",
                                  help="Generator directory (or catalogue name) to evaluate."),
        swaps: Path = typer.Option(
            None, "--swaps",
            help="Instead of --model: a folder of precomputed swaps (crops of the test set's "
                 "size) with pairs.json."),
        pairs: int = typer.Option(None, "--pairs",
                                  help="Number of pairs (default: every test image once)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the pairing and of KID subsets."),
        identity_encoder: str = typer.Option(
            None, "--identity-encoder",
            help="Encoder giving the source embedding (default: the one in the model config)."),
        encoders: list[str] = typer.Option(
            [], "--encoder", help="Extra identity encoder for the cosine table (repeatable)."),
        inception_weights: Path = typer.Option(
            None, "--inception-weights",
            help="Standard Inception FID: not supported in this version (refused)."),
        no_blend: bool = typer.Option(
            False, "--no-blend", help="Paste the whole generator crop (no soft box mask)."),
        identity_strength: float = typer.Option(
            None, "--identity-strength", help="0..1: generate with the source identity pushed "
            "away from each target's own, as facedancer swap --identity-strength (default: "
            "what the model recommends, as swap; 0 = the generator alone)."),
        examples: int = typer.Option(8, "--examples", help="Rows of examples.png (0: none)."),
        batch_size: int = typer.Option(8, "--batch-size", help="Faces per generator call."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    ) -> None:
        from ..evaluate.evaluate import run_evaluation

        report = run_evaluation(testset, out, model=model, swaps_dir=swaps, n_pairs=pairs,
                                seed=seed, identity_encoder=identity_encoder, encoders=encoders,
                                inception_weights=inception_weights, device=device,
                                batch_size=batch_size, blend=not no_blend, examples=examples,
                                overwrite=overwrite, progress=not quiet,
                                identity_strength=identity_strength)
        m = report["metrics"]
        typer.echo(f"ID retrieval top-1 {100 * m['id_retrieval']['top1']:.2f} % "
                   f"(top-5 {100 * m['id_retrieval']['top5']:.2f} %), pose "
                   f"{m['pose_error_deg']['mean']:.2f} deg, expression "
                   f"{m['expression_error']['mean']:.2f} % IOD, colour cast "
                   f"{100 * m['color_cast']['mean']:.3f} % -> {out / 'report.md'}")

    @app.command("compare-reports", help=_COMPARE_HELP, no_args_is_help=True)
    def compare_reports_command(
        reports: list[Path] = typer.Argument(..., metavar="REPORT...",
                                             help="Report folders (or report.json files) of "
                                                  "facedancer evaluate; the first is the "
                                                  "baseline."),
        json_out: Path = typer.Option(None, "--json", help="Also write the comparison here."),
        plot: Path = typer.Option(None, "--plot",
                                  help="Also draw ID top-1 against pose error (PNG): the "
                                       "trade-off between the models at a glance."),
    ) -> None:
        from ..evaluate.compare import compare_reports, format_comparison, plot_comparison

        result = compare_reports(reports)
        names = _short_names(reports)
        typer.echo(format_comparison(result, names), nl=False)
        if plot is not None:
            plot_comparison(result, plot, names)
        if json_out is not None:
            atomic_write_text(json_out, json.dumps(result, indent=1) + "\n")

    @app.command("evaluate-encoder", help=_EVALUATE_ENCODER_HELP, no_args_is_help=True)
    def evaluate_encoder_command(
        images: Path = typer.Option(..., "--images", help="LFW images folder (<Name>/<Name>_NNNN.jpg)."),
        pairs: Path = typer.Option(..., "--pairs", help="LFW pairs.txt."),
        encoder: list[str] = typer.Option(
            ["default"], "--encoder",
            help="Identity encoder name or directory, or 'dlib' (repeatable)."),
        json_out: Path = typer.Option(None, "--json", help="Write the results here."),
        limit: int = typer.Option(None, "--limit",
                                  help="Use a balanced subset of about N pairs (all folds)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        detector: str = typer.Option("retinaface", "--detector", help=_DETECTOR_HELP),
    ) -> None:
        from ..evaluate.lfw import evaluate_lfw
        from ..faces.detect import get_detector
        from ..swap.pipeline import detector_location

        if limit is not None and limit < 1:
            raise FacedancerError("--limit must be at least 1")
        result = evaluate_lfw(images, pairs, encoders=encoder, limit=limit, device=device,
                              detector=get_detector(detector_location(detector),
                                                    device=device))
        for name, values in result["encoders"].items():
            typer.echo(f"{name}: {100 * values['accuracy']:.2f} % ± {100 * values['std']:.2f} "
                       f"on {result['n_pairs']} pairs ({result['detection_failures']} images "
                       "without a detected face)")
        if json_out is not None:
            atomic_write_text(json_out, json.dumps(result, indent=1) + "\n")


def _short_names(paths: list[Path]) -> list[str]:
    """Table labels: the report folder (its parent for a report.json), or more of the path
    where two would read the same (runs/a/eval and runs/b/eval -> a/eval, b/eval)."""
    folders = [p.parent if p.suffix == ".json" else p for p in paths]
    for depth in range(1, 8):
        names = ["/".join(f.parts[-depth:]) for f in folders]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]
