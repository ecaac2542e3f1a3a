"""The ``facedancer`` command: a thin typer app that parses options and calls the library.

Each command group lives in its own module here and exposes ``register(app)``; imports of
torch and friends happen inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import errno
import importlib
import signal
import sys
import warnings

import typer

from .. import __version__
from ..errors import FacedancerError

app = typer.Typer(
    name="facedancer",
    help="FaceDancer face swapping in PyTorch: align, train, swap, evaluate.\n\n"
    "Outputs are synthetic media and are labelled as such. Only swap faces of people who "
    "consented.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Modules under facedancer_torch.cli that register commands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "align",
    "swap",
    "faces",
    "anonymize",
    "live",
    "demo",
    "ui",
    "models",
    "convert",
    "verify",
    "shard",
    "train",
    "calibrate",
    "evaluate",
    "segmenter",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facedancer-torch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """FaceDancer face swapping in PyTorch."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


_received_signal: list[int] = []


def _interrupt(signum, frame) -> None:
    """SIGTERM (``timeout``, ``docker stop``, a cancelled CI job) and SIGINT both raise
    KeyboardInterrupt, so the same cleanup runs (temporary outputs removed, workers stopped)."""
    _received_signal.append(signum)
    raise KeyboardInterrupt


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.echo(f"warning: {' '.join(str(message).split())}", err=True)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2; SIGINT and
    SIGTERM clean up and exit 130 / 143 with one line (docs/failures.md)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    warnings.showwarning = _show_warning  # library warnings as one line, not two
    try:
        app()
    except SystemExit as exc:
        # typer turns KeyboardInterrupt into a silent exit 130; say what happened
        if _received_signal or exc.code == 130:
            signum = _received_signal[-1] if _received_signal else signal.SIGINT
            typer.echo("interrupted", err=True)
            sys.exit(128 + int(signum))
        raise
    except FacedancerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        # a full disk (or quota, or file size limit) wherever it happens is the user's to fix
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}cannot write: {exc.strerror or exc}", err=True)
        sys.exit(2)
