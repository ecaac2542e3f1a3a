"""``facedancer shard``: pack a folder of aligned faces into WebDataset shards (docs/training.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

_HELP = """Pack aligned faces (ALIGNED_DIR/<identity>/<image>, as 'facedancer align' writes them) into WebDataset tar shards for training.

Writes OUT_DIR/NAME_SPLIT_00000-of-000NN.tar (original image bytes + JSON metadata per sample, every image exactly once) and OUT_DIR/NAME_manifest.json (counts, sha256 per shard). --val-identities holds out that fraction of the identities (never single images) into a 'val' split. Atomic per shard; rerun the same command after an interruption to finish it.

Examples:

  facedancer shard ~/data/vggface2_256 ~/data/shards --name vggface2

  facedancer shard faces/ shards/ --name mine --per-shard 500 --val-identities 0.05 --seed 1
"""


def register(app: typer.Typer) -> None:
    @app.command("shard", help=_HELP, no_args_is_help=True)
    def shard(
        aligned_dir: Path = typer.Argument(..., metavar="ALIGNED_DIR",
                                           help="Folder of identity folders of aligned faces."),
        out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Where shards go."),
        name: str = typer.Option(..., "--name", help="Shard set name (letters, digits, . -)."),
        split: str = typer.Option("train", "--split", help="Name of the main split."),
        per_shard: int = typer.Option(1000, "--per-shard", help="Images per shard."),
        val_identities: float = typer.Option(
            0.02, "--val-identities", help="Fraction of identities held out as 'val' (0: none)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the shuffle and the val split."),
        no_shuffle: bool = typer.Option(False, "--no-shuffle",
                                        help="Keep the sorted order inside each split."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        from ..data.shard import write_shards

        path = write_shards(aligned_dir, out_dir, name, split=split, per_shard=per_shard,
                            val_identities=val_identities, seed=seed, shuffle=not no_shuffle,
                            progress=not quiet)
        manifest = json.loads(path.read_text())
        for split_name, meta in manifest["splits"].items():
            typer.echo(f"{split_name}: {meta['images']} images, {meta['identities']} identities, "
                       f"{len(meta['shards'])} shard(s)")
        typer.echo(f"manifest: {path}")
