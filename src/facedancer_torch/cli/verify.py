"""``facedancer verify``: is this file synthetic media made by facedancer-torch? (docs/media.md)"""

from __future__ import annotations

import json
from pathlib import Path

import typer

# Library modules are imported inside the commands, not here: cli/__init__.py imports every
# command module at start-up, and `facedancer --help` must not wait for torch, PyAV or ONNX
# Runtime to load.

_HELP = """Check a file for the provenance tag and the invisible watermark facedancer writes.

Reads the metadata tag (tool, model, "synthetic media", time) and looks for the invisible watermark in the pixels; for a video, in FRAMES frames spread over the clip. The watermark survives one re-encode at usual quality (JPEG q75+, H.264 crf 23), also when the metadata was stripped; it does not survive resizing or cropping.

An image sequence (out/shot_%04d.png) is checked frame by frame: each frame is its own file, labelled only where a face was swapped.

Exit code: 0 when the tag or the watermark is found (in any frame of a sequence), 1 when neither is, 2 when the file cannot be read.

Examples:

  facedancer verify swapped.mp4

  facedancer verify photo.jpg --json

  facedancer verify 'out/shot_%04d.png'
"""


def register(app: typer.Typer) -> None:
    @app.command("verify", help=_HELP, no_args_is_help=True)
    def verify(
        file: Path = typer.Argument(..., metavar="FILE", help="Image, video or image "
                                    "sequence (shot_%04d.png) to check."),
        frames: int = typer.Option(16, "--frames", min=1,  # io.provenance.VERIFY_FRAMES
                                   help="Video frames to check (spread over the clip)."),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    ) -> None:
        from ..io.provenance import verify_file, verify_sequence
        from ..io.sequence import is_sequence_pattern

        if is_sequence_pattern(file) and not file.exists():
            results = verify_sequence(file)
            if as_json:
                typer.echo(json.dumps({"path": str(file), "kind": "sequence",
                                       "frames": [r.as_dict() for r in results]},
                                      indent=2, sort_keys=True))
            else:
                typer.echo(format_sequence(file, results))
            raise typer.Exit(0 if any(r.synthetic for r in results) else 1)
        result = verify_file(file, frames=frames)
        if as_json:
            typer.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            typer.echo(format_verification(result))
        raise typer.Exit(0 if result.synthetic else 1)


def format_verification(result) -> str:
    """The human-readable report of a :class:`~facedancer_torch.io.provenance.Verification`."""
    lines = [str(result.path)]
    tag = result.provenance
    if tag is None:
        lines.append("  provenance tag : not found")
    else:
        what = ", ".join(f"{k} {tag[k]}" for k in ("model", "created") if tag.get(k))
        lines.append(f"  provenance tag : found - {tag.get('content', '?')}, "
                     f"{tag.get('operation', 'made')} by {tag.get('tool', '?')} "
                     f"{tag.get('tool_version', '')}".rstrip() + (f"; {what}" if what else ""))
    mark = result.watermark
    checked = (f"{result.frames_checked} frame{'s' if result.frames_checked != 1 else ''}"
               if result.kind == "video" else "image")
    if mark is None:
        lines.append("  watermark      : not checked (no frame large enough)")
    elif mark.found:
        name = mark.payload[:3].decode("ascii", "replace")
        lines.append(f"  watermark      : found - payload {name} version {mark.version}, "
                     f"{32 - mark.bit_errors}/32 bits, z = {mark.z:.1f} ({checked})")
    else:
        lines.append(f"  watermark      : not found (z = {mark.z:.1f}, {checked})")
    if result.synthetic:
        signals = [name for name, ok in (("tag", tag is not None),
                                         ("watermark", bool(mark and mark.found))) if ok]
        lines.append(f"verdict: SYNTHETIC MEDIA made with facedancer-torch "
                     f"({' and '.join(signals)})")
    else:
        lines.append("verdict: no facedancer provenance tag or watermark found (this does not "
                     "prove the file is authentic)")
    return "\n".join(lines)


def format_sequence(pattern: Path, results: list) -> str:
    """The report of an image sequence: how many of its frames are labelled synthetic."""
    synthetic = [r for r in results if r.synthetic]
    lines = [f"{pattern}: {len(results)} frame{'s' if len(results) != 1 else ''}"]
    if synthetic:
        tagged = sum(r.provenance is not None for r in synthetic)
        marked = sum(bool(r.watermark and r.watermark.found) for r in synthetic)
        lines.append(f"  synthetic      : {len(synthetic)} ({synthetic[0].path.name} .. "
                     f"{synthetic[-1].path.name}; tag in {tagged}, watermark in {marked})")
    lines.append(f"  neither        : {len(results) - len(synthetic)} (no tag, no watermark)")
    if synthetic:
        lines.append(f"verdict: SYNTHETIC MEDIA made with facedancer-torch in {len(synthetic)} "
                     f"of {len(results)} frames")
    else:
        lines.append("verdict: no facedancer provenance tag or watermark found in any frame "
                     "(this does not prove the frames are authentic)")
    return "\n".join(lines)
