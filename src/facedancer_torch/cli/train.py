"""``facedancer train`` and ``facedancer export`` (docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import typer

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

_TRAIN_HELP = """Train a FaceDancer generator (one G and one D step per iteration, docs/reference.md §5-6).

--config is a shipped config (tiny, demo, paper) or a YAML file; then any number of key=value overrides with the config's own keys (data=, out=, steps=, loss.ifsr=, optim.lr=, generator.mapping_depth=, ...). data= is a shard set from 'facedancer shard' or a folder of aligned faces. Runs as one process on CPU or GPU, or under torchrun with one process per GPU (DDP-style gradient averaging, NCCL on GPU, Gloo on CPU). --resume continues the run in out= from its latest checkpoint.

Examples:

  facedancer train --config demo data=faces/ out=runs/demo

  facedancer train --config paper data=shards/ out=runs/paper --dry-run

  torchrun --nproc-per-node 8 -m facedancer_torch train --config paper data=shards/ out=runs/paper --resume
"""

_EXPORT_HELP = """Write the generator of a training run as a model directory for 'facedancer swap'.

Takes the latest checkpoint of RUN_DIR (or --step N); the model records the identity encoder it was trained with.

Examples:

  facedancer export runs/demo models/demo-generator

  facedancer export runs/paper models/paper-300k --step 300000 --half
"""


def register(app: typer.Typer) -> None:
    @app.command("train", help=_TRAIN_HELP, no_args_is_help=True)
    def train(
        config: str = typer.Option(..., "--config", help="tiny, demo, paper or a YAML file."),
        overrides: list[str] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                              help="Config overrides, e.g. steps=1000."),
        resume: bool = typer.Option(False, "--resume",
                                    help="Continue from the latest checkpoint in out=."),
        dry_run: bool = typer.Option(False, "--dry-run",
                                     help="Print the resolved config and exit."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        from ..train.config import load_config

        cfg = load_config(config, overrides or [])
        if dry_run:
            typer.echo(cfg.to_yaml(), nl=False)
            return
        from ..train.distributed import init_distributed, shutdown_distributed
        from ..train.trainer import Trainer

        ctx = init_distributed(cfg.device)
        try:
            trainer = Trainer(cfg, resume=resume, progress=not quiet, ctx=ctx)
            if ctx.is_main:
                typer.echo(f"training {cfg.name}: {len(trainer.train_index)} faces "
                           f"({trainer.train_index.num_identities} identities), "
                           f"{ctx.world_size} process(es) on {ctx.device}"
                           f"{f' ({ctx.backend})' if ctx.backend else ''}, from step "
                           f"{trainer.step} to {cfg.steps}; run dir {trainer.run_dir}", err=True)
            trainer.run()
        finally:
            shutdown_distributed(ctx)

    @app.command("export", help=_EXPORT_HELP, no_args_is_help=True)
    def export(
        run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A training run directory."),
        out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Model directory to write."),
        step: int = typer.Option(None, "--step", help="Checkpoint step (default: latest)."),
        half: bool = typer.Option(False, "--half", help="Store float16 weights (half size)."),
    ) -> None:
        from ..train.export import export_generator

        path = export_generator(run_dir, out_dir, step=step, half=half)
        typer.echo(f"generator written to {path}")
