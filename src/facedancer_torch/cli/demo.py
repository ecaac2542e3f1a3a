"""``facedancer demo``: swap the shipped public-domain example photos and write a result grid."""

from __future__ import annotations

from pathlib import Path

import typer

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

EXAMPLES = """Examples:

facedancer demo --output result.png

facedancer demo --output result.png --model models/my-run

facedancer demo -o mine.png --source me.jpg --target friend.jpg -m facedancer-c-hq
"""


def register(app: typer.Typer) -> None:
    @app.command("demo", help="Swap a face in the example photos shipped with the package and "
                 "write source | target | swap side by side.\n\n"
                 "Default photos: Grace Hopper (US Navy) as the source, Eileen Collins (NASA) as "
                 "the target, both public domain. The grid is synthetic media: it carries the "
                 "provenance tag and the invisible watermark like every swap output.\n\n"
                 + EXAMPLES)
    def demo(
        output: Path = typer.Option(Path("result.png"), "--output", "-o",
                                    help="Grid image to write (.png, .jpg, .webp, .tif)."),
        model: str = typer.Option(None, "--model", "-m", help="Model directory or catalogue "
                                  "name (default: the embedded demo model)."),
        source: Path = typer.Option(None, "--source", "-s", help="Photo whose identity is put "
                                    "in (default: the shipped grace_hopper.jpg)."),
        target: Path = typer.Option(None, "--target", "-t", help="Photo whose largest face is "
                                    "swapped (default: the shipped astronaut.jpg)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        backend: str = typer.Option("auto", "--backend", help="Generator runtime: auto "
                                    "(CUDA fp16; CPU bf16 where native, else ONNX Runtime "
                                    "or fused), fused, bf16, eager, onnxruntime, fp16."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    ) -> None:
        from ..demo import run_demo

        result = run_demo(output, model=model, source=source, target=target, device=device,
                          backend=backend, overwrite=overwrite)
        typer.echo(f"wrote {result.output} (source | target | swap, model {result.model}, "
                   f"{result.faces_swapped} face swapped)")
        typer.echo(f"identity cosine of the swap: to source {result.similarity_to_source:.3f}, "
                   f"to target {result.similarity_to_target:.3f} (source vs target "
                   f"{result.source_target_similarity:.3f})")
