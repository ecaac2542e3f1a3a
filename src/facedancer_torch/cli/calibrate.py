"""``facedancer calibrate-ifsr``: measure IFSR margins for an identity encoder (docs/training.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import FacedancerError

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

_HELP = """Calibrate the IFSR margins of an identity encoder: per tapped block, the mean cosine distance between target and swap features over (target, swap) pairs (docs/reference.md §5).

Pairs come from --pairs DIR (DIR/target/NAME + DIR/swap/NAME, made by any swapper), from --generator MODEL_DIR run over --data (targets and sources of different identities), or, with --data alone, from the built-in blend-swap proxy (the source's inner face colour-matched and feathered into the target). The margins are written into the encoder's configuration (its margins file, or the config.json of an encoder directory) with a record of the data, or to --out. --report also prints the distances of contrasting pair kinds (same identity, adjacent frames, different identities) for every block.

Examples:

  facedancer calibrate-ifsr --data aligned_faces/ --count 500 --report

  facedancer calibrate-ifsr --encoder models/arcface --pairs swaps/ --out margins.json

  facedancer calibrate-ifsr --generator models/demo-generator --data shards/ --out margins.json
"""


def register(app: typer.Typer) -> None:
    @app.command("calibrate-ifsr", help=_HELP, no_args_is_help=True)
    def calibrate_ifsr(
        encoder: str = typer.Option("default", "--encoder",
                                    help="Identity encoder: a name or a converted directory."),
        pairs: Path = typer.Option(None, "--pairs",
                                   help="Folder with target/ and swap/ (or change/) crops."),
        data: Path = typer.Option(None, "--data", help="Aligned faces (folder or shards)."),
        generator: Path = typer.Option(None, "--generator",
                                       help="Generator model directory to make the swaps."),
        split: str = typer.Option("train", "--split", help="Shard split of --data."),
        count: int = typer.Option(500, "--count", help="Number of pairs drawn from --data."),
        blocks: str = typer.Option(None, "--blocks",
                                   help="Comma-separated blocks, or 'all' (default: the "
                                        "encoder's IFSR blocks)."),
        image_size: int = typer.Option(None, "--image-size",
                                       help="Size images are loaded at (default: the "
                                            "generator's, else the encoder's input size)."),
        crop_shrink: float = typer.Option(1.0, "--crop-shrink",
                                          help="Shrink factor the crops were aligned with."),
        scale: float = typer.Option(1.2, "--scale", help="IFSR scale stored with the margins."),
        out: Path = typer.Option(None, "--out",
                                 help="Write here instead of the encoder's configuration."),
        report: bool = typer.Option(False, "--report",
                                    help="Also print every block's distances for contrasting "
                                         "pair kinds (needs --data)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Measure and print, write nothing."),
        seed: int = typer.Option(0, "--seed", help="Seed of the pair sampling."),
        note: str = typer.Option(None, "--note",
                                 help="A description of the data, stored with the margins."),
        batch_size: int = typer.Option(16, "--batch-size", help="Pairs per encoder batch."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    ) -> None:
        from ..data.pairs import open_face_index
        from ..evaluate.calibrate import (PAIR_KINDS, calibrate, distance_report, folder_pairs,
                                          format_table, index_pairs, margins_document,
                                          write_margins)
        from ..models.identity.registry import load_identity_encoder

        if (pairs is None) == (data is None):
            raise FacedancerError("give either --pairs DIR or --data DATA "
                                  "(with --generator, or alone for the blend-swap proxy)")
        if generator is not None and data is None:
            raise FacedancerError("--generator needs --data (the faces to swap)")
        enc = load_identity_encoder(encoder, device=device)
        block_list = [b.strip() for b in blocks.split(",")] if blocks else None
        if block_list == ["all"]:
            block_list = list(enc.contract.feature_blocks)
        gen_model = None
        if generator is not None:
            from ..models.generator import load_generator

            gen_model = load_generator(generator, device=next(enc.parameters()).device)
            if gen_model.config.identity_encoder not in (enc.contract.name, encoder):
                typer.echo(f"warning: {generator} was trained with identity encoder "
                           f"'{gen_model.config.identity_encoder}', calibrating "
                           f"'{enc.contract.name}'", err=True)
        size = image_size or (gen_model.config.image_size if gen_model else enc.contract.input_size)
        provenance = {"command": "facedancer " + " ".join(sys.argv[1:]), "seed": seed,
                      "image_size": size, "crop_shrink": crop_shrink}
        if note:
            provenance["note"] = note
        if pairs is not None:
            batches, total = folder_pairs(pairs, size, batch_size)
            provenance.update(method="folder of (target, swap) pairs",
                              pairs_dir=str(pairs.resolve()))
        else:
            index = open_face_index(data, split)
            batches, total = index_pairs(index, "swap", count, size, seed, batch_size,
                                         generator=gen_model, encoder=enc,
                                         crop_shrink=crop_shrink)
            provenance.update(
                method=("generator swaps" if gen_model else
                        "blend-swap proxy (source inner face, colour-matched, feathered into "
                        "the target)"),
                data=str(Path(data).resolve()), data_images=len(index),
                data_identities=index.num_identities)
            if gen_model is not None:
                provenance["generator"] = str(generator.resolve())
        result = calibrate(enc, batches, block_list, crop_shrink, total, provenance)
        document = margins_document(result, scale)
        typer.echo(json.dumps(document["margins"], indent=2))
        if report:
            if data is None:
                raise FacedancerError("--report needs --data")
            kinds = [k for k in PAIR_KINDS if k != "swap"]
            table = distance_report(enc, index, kinds, count, size, result.blocks, seed,
                                    batch_size, crop_shrink)
            table = {"swap": result.distances, **table}
            typer.echo(format_table(table, result.blocks))
        if dry_run:
            return
        encoder_dir = Path(encoder) if Path(encoder).is_dir() else None
        path = write_margins(result, enc, out, scale, encoder_dir=encoder_dir)
        typer.echo(f"margins of {result.n_pairs} pairs written to {path}")
