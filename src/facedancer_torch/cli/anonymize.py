"""``facedancer anonymize`` and ``facedancer anonymize-population`` (docs/anonymize.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import FacedancerError
from .swap import _one_line_warnings

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

EXAMPLES = """Examples:

facedancer anonymize -t crowd.jpg -o anonymized.png

facedancer anonymize -t street.mp4 -o anonymized.mp4 --seed 7

facedancer anonymize -t photos/ -o anonymized/ --strength 0.8 --seed 7
"""

POPULATION_EXAMPLES = """Examples:

facedancer anonymize-population --images ../shared/data/lfw/images -o pop.npz --hold-out 0.05

facedancer anonymize-population --images people/ -o arcface_population.npz --model models/c_hq
"""


def register(app: typer.Typer) -> None:
    @app.command("anonymize", help="Replace every face with a synthetic identity (no source "
                 "photo): images, videos or a folder of them.\n\n"
                 "Each face is swapped to a made-up person derived from its own identity "
                 "embedding; in a video each tracked person keeps one synthetic identity for "
                 "the whole clip. Without --seed every run draws new identities, so outputs of "
                 "separate runs cannot be linked; with --seed N the result is reproducible. "
                 "The output is synthetic media: its metadata tag says it was anonymized and it "
                 "carries an invisible watermark (facedancer verify reads both).\n\n" + EXAMPLES)
    def anonymize(
        target: Path = typer.Option(..., "--target", "-t",
                                    help="Image, video, folder or image sequence "
                                    "(shot_%04d.png) to anonymize."),
        output: Path = typer.Option(..., "--output", "-o", help="Output file (or folder for a "
                                    "folder target); the suffix picks the format."),
        strength: float = typer.Option(None, "--strength", help="How far each face moves "
                                       "from its own identity, 0..1 (default: the measured "
                                       "default, see docs/anonymize.md)."),
        seed: int = typer.Option(None, "--seed", help="Key of the synthetic identities "
                                 "(default: a fresh random one per run)."),
        model: str = typer.Option(None, "--model", "-m", help="Model directory or catalogue "
                                  "name (default: the embedded demo model)."),
        population: Path = typer.Option(None, "--population", help="Identity population file "
                                        "(default: the one shipped for the model's identity "
                                        "encoder; build others with anonymize-population)."),
        faces: str = typer.Option("all", "--faces", help="Which faces: 'all' or 'largest' "
                                  "(per image or frame)."),
        mask: str = typer.Option(None, "--mask", help="Blend mask parts joined by '+' (see "
                                 "facedancer swap --help; default box+hull: the occlusion part "
                                 "would keep some of the original face, docs/anonymize.md)."),
        mask_blur: float = typer.Option(None, "--mask-blur", help="Box mask blur sigma in "
                                        "pixels of a 256 crop (default 7, the reference's)."),
        mask_padding: float = typer.Option(0.0, "--mask-padding", help="Grow (>0) or shrink "
                                           "(<0) the mask box by this fraction of the crop."),
        color_match: str = typer.Option(None, "--color-match", help="Colour correction: "
                                        "local, global or none (default: as facedancer swap)."),
        identity_encoder: str = typer.Option(
            None, "--identity-encoder", help="Identity encoder name or directory (default: the "
            "one the model was trained with)."),
        crf: int = typer.Option(18, "--crf", help="H.264 quality (0 lossless .. 51 worst)."),
        preset: str = typer.Option("medium", "--preset", help="H.264 speed preset."),
        batch_size: int = typer.Option(8, "--batch-size", help="Faces per generator call."),
        max_frames: int = typer.Option(None, "--max-frames", help="Stop videos after this "
                                       "many frames."),
        matte: Path = typer.Option(None, "--matte", help="Also write the matte: how much of "
                                   "each output pixel the new faces replaced (as for "
                                   "'facedancer swap --matte')."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        backend: str = typer.Option("auto", "--backend", help="Generator runtime (see "
                                    "facedancer swap --help)."),
        no_watermark: bool = typer.Option(False, "--no-watermark", help="Do not embed the "
                                          "invisible watermark (the metadata tag stays)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        from ..swap.anonymize import DEFAULT_STRENGTH, anonymize_options, anonymize_plan
        from ..swap.checks import check_job
        from ..swap.pipeline import Swapper

        strength = DEFAULT_STRENGTH if strength is None else strength
        if not 0.0 <= strength <= 1.0:
            raise FacedancerError(f"--strength must be in [0, 1], got {strength}")
        given = {"mask": mask, "mask_blur": mask_blur, "color_match": color_match}
        options = anonymize_options(
            faces=faces, mask_padding=mask_padding, crf=crf, preset=preset,
            watermark=not no_watermark, overwrite=overwrite, max_frames=max_frames,
            batch_size=batch_size, matte=matte,
            **{k: v for k, v in given.items() if v is not None})
        # Cheap checks first: a wrong target or an existing output fails before models load.
        kind = check_job(target, output, overwrite, options.codec, matte=matte)
        if population is not None and not population.is_file():
            raise FacedancerError("identity population file does not exist", population)
        with _one_line_warnings():
            swapper = Swapper(model, identity_encoder=identity_encoder, device=device,
                              backend=backend)
        plan = anonymize_plan(swapper, strength=strength, seed=seed, faces=faces,
                              population=population)
        result = swapper.swap_path(target, output, plan, options, progress=not quiet)
        if kind == "folder":
            typer.echo(f"{output}: {result.summary()}")
            if result.failed:
                raise typer.Exit(1)
        else:
            typer.echo(result.summary())
            if result.warning():
                typer.echo(f"warning: {result.warning()}", err=True)

    @app.command("anonymize-population", help="Build the identity population file that "
                 "'facedancer anonymize' samples synthetic identities from.\n\n"
                 "Embeds the photos of a <person>/<image> folder (LFW's layout) with the "
                 "model's identity encoder through the swap pipeline's detector and alignment, "
                 "and stores only aggregate statistics (mean, principal axes and their spread, "
                 "median norm) as an .npz of plain arrays, never an individual's embedding.\n\n"
                 + POPULATION_EXAMPLES)
    def anonymize_population(
        images: Path = typer.Option(..., "--images", help="Folder of <person>/<image> "
                                    "photos (e.g. ../shared/data/lfw/images)."),
        output: Path = typer.Option(..., "--output", "-o", help="Population file to write "
                                    "(.npz)."),
        model: str = typer.Option(None, "--model", "-m", help="Model whose identity encoder "
                                  "is described (default: the embedded demo model)."),
        identity_encoder: str = typer.Option(
            None, "--identity-encoder", help="Identity encoder name or directory (default: the "
            "model's)."),
        components: int = typer.Option(128, "--components", help="Principal axes kept."),
        hold_out: float = typer.Option(0.0, "--hold-out", help="Fraction of the people left "
                                       "out (the split of 'facedancer train' and 'shard' with "
                                       "the same --seed), so that they can be benchmarked."),
        seed: int = typer.Option(0, "--seed", help="Seed of the --hold-out split."),
        max_per_identity: int = typer.Option(None, "--max-per-identity", help="Use at most "
                                             "this many photos per person."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        from ..swap.anonymize import build_population

        if output.exists() and not overwrite:
            raise FacedancerError("output already exists (pass --overwrite to replace it)",
                                  output)
        if output.suffix.lower() != ".npz":
            raise FacedancerError("the population file must end in .npz", output)
        if components < 1:
            raise FacedancerError(f"--components must be >= 1, got {components}")
        if not 0.0 <= hold_out < 1.0:
            raise FacedancerError(f"--hold-out must be in [0, 1), got {hold_out}")
        population = build_population(images, model=model, identity_encoder=identity_encoder,
                                      components=components, hold_out=hold_out, seed=seed,
                                      max_per_identity=max_per_identity, device=device,
                                      progress=not quiet)
        population.save(output)
        typer.echo(f"{output}: {population.identities} people, {population.images} photos, "
                   f"{population.components.shape[0]} axes ({population.encoder})")
