"""``facedancer models``: list, fetch, add and verify the weights the tool knows.

Thin: parsing and printing only; the work is in :mod:`facedancer_torch.models.store` and
:mod:`facedancer_torch.models.hub`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ModelError

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

HELP = """List, download, register and verify model weights (the local store is
$FACEDANCER_HOME, default ~/.cache/facedancer-torch).

Examples:

facedancer models list

HF_TOKEN=hf_... facedancer models fetch facedancer-c-hq

facedancer models add ~/Downloads/FaceDancer_config_c_HQ.h5

facedancer models verify
"""


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode="rich")

    @models_app.command("list", help="Show every known model: kind, licence, whether it is "
                        "present here and where.\n\nExample: facedancer models list")
    def list_models(
        details: bool = typer.Option(False, "--details", help="Also print each model's input "
                                     "contract, identity encoder, size, sha256 and notes."),
    ) -> None:
        from ..models.catalogue import CATALOGUE, support
        from ..models.store import ModelStore

        store = ModelStore()
        table = Table(title=f"models (store: {store.root})")
        for column in ("name", "kind", "this version", "licence", "present", "where"):
            table.add_column(column, overflow="fold")
        for entry in CATALOGUE:
            status = store.status(entry)
            table.add_row(entry.name, entry.kind.value, support(entry), entry.licence,
                          "yes" if status.present else "no" + _state_suffix(status.state),
                          status.where)
        for name in store.custom_names():
            record = store.record(name) or {}
            folder = (record.get("converted") or {}).get("dir") or \
                (record.get("source") or {}).get("path", "?")
            table.add_row(name, record.get("kind") or "?", "added by hand", "?",
                          "yes" if Path(folder).exists() else "no", folder)
        # Piped output is not folded to 80 columns: paths stay greppable.
        console = Console() if sys.stdout.isatty() else Console(width=220)
        console.print(table)
        if details:
            for entry in CATALOGUE:
                console.print(f"\n[bold]{entry.name}[/bold]: {entry.description}")
                contract = entry.input
                size = "any" if contract.size is None else f"{contract.size[0]}x{contract.size[1]}"
                console.print(f"  input: {size} {contract.channels}, {contract.normalization} -> "
                              f"{contract.value_range}; alignment: {contract.alignment}"
                              + (f"; embedding {contract.embedding_dim}-d"
                                 if contract.embedding_dim else ""))
                if entry.identity_encoder:
                    console.print(f"  identity encoder: {entry.identity_encoder}")
                console.print(f"  source: {entry.source.describe()}")
                console.print(f"  size: {entry.size_bytes or 'unknown'}; sha256: "
                              f"{entry.sha256 or 'unknown (recorded on first download)'}")
                if entry.licence_url:
                    console.print(f"  licence: {entry.licence} ({entry.licence_url})")
                for note in entry.notes:
                    console.print(f"  note: {note}")

    @models_app.command("fetch", help="Download a model from the hub, check its sha256 (recorded "
                        "on first download, verified afterwards), convert it into the store and "
                        "print the --model value to use. Resumes an interrupted download.\n\n"
                        "Example: HF_TOKEN=hf_... facedancer models fetch facedancer-c-hq")
    def fetch(
        name: str = typer.Argument(..., help="Catalogue name (see `facedancer models list`)."),
        token: str = typer.Option(None, "--token", help="Hugging Face token (default: $HF_TOKEN "
                                  "or the token saved by `hf auth login`).", show_default=False),
        force: bool = typer.Option(False, "--force", help="Download and convert again even if "
                                   "present (the sha256 check still applies)."),
        accept_new_hash: bool = typer.Option(False, "--accept-new-hash", help="The publisher "
                                             "replaced the file: record its new sha256 instead "
                                             "of refusing it (never overrides a published hash)."),
        no_convert: bool = typer.Option(False, "--no-convert", help="Only download and verify."),
    ) -> None:
        from ..models.hub import fetch_model

        path = fetch_model(name, store=_store(), token=token, force=force,
                           accept_new_hash=accept_new_hash, convert=not no_convert)
        if no_convert and path.is_file():
            typer.echo(f"ready: {path}")
            typer.echo(f"downloaded and verified; convert it with `facedancer models fetch {name}`")
            return
        _print_ready(name, path)

    @models_app.command("add", help="Register a weight file you downloaded by hand (offline "
                        "machines): record or check its sha256 and convert it into the store.\n\n"
                        "Example: facedancer models add ~/Downloads/FaceDancer_config_c_HQ.h5")
    def add(
        path: Path = typer.Argument(..., help="The .h5 file."),
        name: str = typer.Option(None, "--name", help="Catalogue name, or a new name for your own "
                                 "model (default: found from the file name)."),
        accept_new_hash: bool = typer.Option(False, "--accept-new-hash", help="Record a new "
                                             "sha256 for a name whose file changed."),
    ) -> None:
        store = _store()
        result = store.add(path, name, accept_new_hash=accept_new_hash)
        chosen = name or _name_for(store, result)
        _print_ready(chosen, result)

    @models_app.command("verify", help="Re-hash downloaded and converted files (all models, or "
                        "one) and report any that changed.\n\nExample: facedancer models verify "
                        "facedancer-c-hq")
    def verify(
        name: str = typer.Argument(None, help="One model (default: every model in the store)."),
    ) -> None:
        from ..models.store import ModelStore

        results = ModelStore().verify([name] if name else None)
        if not results:
            typer.echo("no models in the store yet (see `facedancer models list`)")
            return
        for result in results:
            typer.echo(f"{'ok    ' if result.ok else 'FAILED'} {result.name}: {result.detail}")
        failed = [r.name for r in results if not r.ok]
        if failed:
            raise ModelError(f"{len(failed)} of {len(results)} model(s) failed verification: "
                             f"{', '.join(failed)}")

    app.add_typer(models_app, name="models")


def _store():
    """The model store, handed the Keras converter (the models layer cannot import it)."""
    from ..convert.api import convert_keras_file
    from ..models.store import ModelStore

    return ModelStore(converter=convert_keras_file)


def _state_suffix(state: str) -> str:
    return "" if state == "missing" else f" ({state})"


def _name_for(store, result: Path) -> str:
    """The registry name whose converted folder or source file is ``result``."""
    registry = store.read_registry()["models"]
    for model_name, record in registry.items():
        converted = (record.get("converted") or {}).get("dir")
        source = (record.get("source") or {}).get("path")
        if str(result.resolve()) in (converted, source):
            return model_name
    return str(result)


def _print_ready(name: str, path: Path) -> None:
    from ..models.catalogue import ModelKind, find_entry
    from ..models.store import model_kind

    entry = find_entry(name)
    label = entry.name if entry is not None else name
    typer.echo(f"ready: {path}")
    kind = model_kind(label)
    if kind is ModelKind.GENERATOR or (kind is None and path.is_dir()):
        typer.echo(f"use it with: --model {label}")
    elif kind is ModelKind.IDENTITY:
        typer.echo(f"use it with: --identity-encoder {label}")
    elif kind is ModelKind.DETECTOR:
        typer.echo(f"use it with: --detector {path}")
