"""``facedancer train-segmenter``: train the occlusion-aware face segmenter (docs/segmenter.md)."""

from __future__ import annotations

from pathlib import Path

import typer

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

_HELP = """Train the occlusion-aware face segmenter on LFW with synthetic occluders.

Detects and aligns LFW photos as the swapper does (ArcFace template, shrink 1.0), labels the face region with dlib's 68 landmarks, pastes synthetic occluders (objects, hands, microphones, masks, glasses, hair) and trains a small U-Net on one CPU thread. Writes OUT/model (config.json + model.safetensors, loadable with load_face_segmenter), OUT/log.jsonl and a cache of the prepared faces (OUT/prepared_*.npz, reused by a rerun). Identities with crc32(name) % 10 == 0 are held out for benchmarks/segmenter.py.

Examples:

  facedancer train-segmenter --lfw ../shared/data/lfw/images --out runs/segmenter

  facedancer train-segmenter --lfw lfw/images --out runs/seg --steps 4000 --images 4000 --seed 1

  facedancer train-segmenter --lfw lfw/images --out runs/seg2 --images 4000 --init runs/seg/model --steps 1000 --lr 1e-3
"""


def register(app: typer.Typer) -> None:
    @app.command("train-segmenter", help=_HELP, no_args_is_help=True)
    def train_segmenter(
        lfw: Path = typer.Option(..., "--lfw", help="LFW images folder (<Name>/<Name>_NNNN.jpg)."),
        out: Path = typer.Option(..., "--out", help="Run folder (model/, log.jsonl, cache)."),
        steps: int = typer.Option(3000, "--steps", min=1, help="Optimiser steps."),
        seed: int = typer.Option(0, "--seed", help="Seed of the image choice and synthesis."),
        images: int = typer.Option(3000, "--images", min=1,
                                   help="LFW photos to prepare (training identities only)."),
        batch_size: int = typer.Option(24, "--batch-size", min=1, help="Crops per step."),
        lr: float = typer.Option(3e-3, "--lr", help="Peak AdamW learning rate (cosine decay)."),
        threads: int = typer.Option(1, "--threads", min=1, help="Torch CPU threads."),
        edge_prob: float = typer.Option(
            0.3, "--edge-prob", min=0.0, max=1.0,
            help="Chance that a held occluder (object, hand, microphone) enters from the crop's "
                 "edge."),
        sharpen_prob: float = typer.Option(
            0.0, "--sharpen-prob", min=0.0, max=1.0,
            help="Chance that a sample is sharpened whole, so that crisp skin folds and teeth "
                 "of sharp photos are learnt as face."),
        shadow_prob: float = typer.Option(
            0.0, "--shadow-prob", min=0.0, max=1.0,
            help="Chance that a sample gets a cast shadow (hair, a hat), so that shadowed skin "
                 "is learnt as face."),
        text_prob: float = typer.Option(
            0.0, "--text-prob", min=0.0, max=1.0,
            help="Chance that words are laid over a sample (a caption, a subtitle, a meme's "
                 "line), learnt as an occluder so that a swap keeps them."),
        init: Path = typer.Option(None, "--init",
                                  help="Start from this model folder (fine-tuning)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    ) -> None:
        from ..train.segmenter import SegmenterTrainConfig
        from ..train.segmenter import train_segmenter as run

        config = SegmenterTrainConfig(lfw_images=lfw, out=out, steps=steps, batch_size=batch_size,
                                      lr=lr, images=images, seed=seed, threads=threads,
                                      edge_prob=edge_prob, sharpen_prob=sharpen_prob,
                                      shadow_prob=shadow_prob, text_prob=text_prob, init=init)
        model_dir = run(config, progress=not quiet, log=typer.echo)
        typer.echo(f"model: {model_dir}")
