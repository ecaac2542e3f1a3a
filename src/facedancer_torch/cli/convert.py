"""``facedancer convert`` (Keras .h5 -> model directory) and ``facedancer export-onnx``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import InputError
from ..io.atomic import check_writable

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.


def register(app: typer.Typer) -> None:
    @app.command("convert")
    def convert(
        file: Path = typer.Argument(..., help="Keras .h5: a released FaceDancer_config_*.h5, a "
                                    "gen_XX.h5 checkpoint, an ArcFace ResNet50 .h5 or "
                                    "RetinaFace-Res50.h5."),
        out_dir: Path = typer.Argument(..., help="Model directory to write (config.json + "
                                       "model.safetensors)."),
        graph: Path | None = typer.Option(None, "--graph", help="The JSON graph of a "
                                          "checkpoint (gen.json); found automatically when it "
                                          "lies beside the .h5."),
        check: bool = typer.Option(True, "--check/--no-check", help="Run the converted model "
                                   "once on random input and report its output range."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR if it "
                                       "already exists."),
    ) -> None:
        """Convert the authors' Keras weights to a PyTorch model directory (no TensorFlow needed).

        Layer roles are rebuilt from the graph topology.
        Widths, mapping network and up_types are inferred from the file.

        Examples:

          facedancer convert FaceDancer_config_c_HQ.h5 models/facedancer-c-hq

          facedancer convert checkpoints/gen_300.h5 models/my-gen --graph checkpoints/gen.json

          facedancer convert RetinaFace-Res50.h5 models/retinaface-r50
        """
        from ..convert.api import convert_keras_file, find_checkpoint_graph, h5_has_graph

        _refuse_existing(out_dir, overwrite, folder=True)
        if graph is None and file.is_file() and not h5_has_graph(file):
            graph = find_checkpoint_graph(file)
            if graph is not None:
                typer.echo(f"using graph {graph}")
        out = convert_keras_file(file, out_dir, graph)
        typer.echo(f"wrote {out}")
        if check:
            _describe(out)

    @app.command("export-onnx")
    def export_onnx(
        model_dir: Path = typer.Argument(..., help="Generator model directory."),
        out: Path = typer.Argument(..., help="ONNX file to write."),
        fused: bool = typer.Option(True, "--fused/--reference", help="Export the inference-fused "
                                   "graph (same outputs to float rounding, ~40% fewer FLOPs) or "
                                   "the graph exactly as trained."),
        opset: int = typer.Option(18, help="ONNX opset (at least 18 with onnxscript)."),
        verify: bool = typer.Option(True, "--verify/--no-verify", help="Compare ONNX Runtime "
                                    "with PyTorch on a random batch of 2."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it already "
                                       "exists."),
    ) -> None:
        """Export a generator to ONNX (dynamic batch) for ONNX Runtime or other engines.

        Inputs: x_target (B, 3, S, S) in [-1, 1], z_source (B, 512) raw embedding.
        Output: y (B, 3, S, S), nominally [-1, 1].

        Example:

          facedancer export-onnx models/facedancer-c-hq facedancer.onnx
        """
        from ..convert.onnx_export import export_generator_onnx
        from ..models.generator import load_generator

        _refuse_existing(out, overwrite, folder=False)
        model = load_generator(model_dir)
        export_generator_onnx(model, out, fused=fused, opset=opset)
        typer.echo(f"wrote {out}")
        if verify:
            import numpy as np
            import torch

            from ..convert.onnx_export import onnx_session

            gen = torch.Generator().manual_seed(0)
            size = model.config.image_size
            x = torch.rand(2, 3, size, size, generator=gen) * 2 - 1
            z = torch.randn(2, model.config.z_dim, generator=gen)
            with torch.no_grad():
                ref = model(x, z).numpy()
            got = onnx_session(out).run(None, {"x_target": x.numpy(), "z_source": z.numpy()})[0]
            typer.echo(f"onnxruntime vs PyTorch: max |diff| {np.abs(got - ref).max():.2e} "
                       f"(outputs up to {np.abs(ref).max():.2f})")


def _refuse_existing(path: Path, overwrite: bool, folder: bool) -> None:
    """A model folder or file is never replaced silently, and an output that cannot be
    written is found before the work, not after it."""
    if path.exists() and not overwrite:
        raise InputError("already exists (pass --overwrite to replace it)", path)

    check_writable(path, folder=folder)


def _describe(model_dir: Path) -> None:
    import torch

    config = json.loads((model_dir / "config.json").read_text())
    typer.echo(f"kind: {config.get('kind')}")
    if config.get("kind") != "facedancer-generator":
        return
    from ..models.generator import load_generator

    model = load_generator(model_dir)
    c = model.config
    n = sum(p.numel() for p in model.parameters())
    typer.echo(f"generator: {n:,} parameters, {c.image_size} px, encoder {list(c.encoder_widths)}, "
               f"decoder {list(c.decoder_widths)}, mapping {c.mapping_depth}x{c.mapping_width}, "
               f"up_types {list(c.up_types)}")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        y = model(torch.rand(1, 3, c.image_size, c.image_size, generator=gen) * 2 - 1,
                  torch.randn(1, c.z_dim, generator=gen))
    if not torch.isfinite(y).all():
        typer.echo("warning: the converted model produced non-finite values", err=True)
    typer.echo(f"check on random input: output in [{y.min():.3f}, {y.max():.3f}]")
