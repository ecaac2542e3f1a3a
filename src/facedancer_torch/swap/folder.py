"""Swap every image and video of a folder into a mirrored output folder, resumably.

``target/a/b.jpg`` becomes ``output/a/b.jpg`` (same relative path and suffix). Outputs are
written atomically, so an output that exists is complete: a rerun skips it and carries on where
an interrupted run stopped (``--overwrite`` redoes everything). A file that cannot be read is
reported and skipped; the other files are still swapped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import FacedancerError, InputError
from ..io.codecs import CODEC_FAMILIES
from ..io.images import is_image_path, is_video_path
from ..io.video import container_kind
from .checks import IMAGE_OUTPUT_SUFFIXES, VIDEO_OUTPUT_SUFFIXES
from .matte import mirrored_matte
from .options import SwapOptions


@dataclass
class FolderReport:
    """What a folder run did: outputs written, outputs already there, inputs that failed."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)  # written, but nothing was swapped

    def summary(self) -> str:
        text = (f"{len(self.written)} written, {len(self.skipped)} already done, "
                f"{len(self.failed)} failed")
        if self.unchanged:
            text += f"; nothing swapped in {len(self.unchanged)} (copied unchanged, unlabelled)"
        return text


def media_files(folder: Path, exclude: Path | None = None, *more: Path | None) -> list[Path]:
    """Images and videos under ``folder`` (recursive, sorted; hidden files and the folders
    ``exclude`` and ``more``, the outputs' and the mattes', out)."""
    excluded = [p.resolve() for p in (exclude, *more) if p is not None]
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if any(p in path.resolve().parents for p in excluded):
            continue
        if is_image_path(path) or is_video_path(path):
            files.append(path)
    return files


def swap_folder(swapper, target: str | Path, output: str | Path, source,
                options: SwapOptions, progress: bool = True) -> FolderReport:
    """Swap every image and video under ``target`` into ``output`` (mirrored paths)."""
    target, output = Path(target), Path(output)
    if not target.is_dir():
        raise InputError("target folder does not exist", target)
    if output.exists() and not output.is_dir():
        raise FacedancerError("output must be a folder when the target is a folder", output)
    if output.resolve() == target.resolve():
        raise FacedancerError("output folder is the target folder; choose another --output",
                              output)
    files = media_files(target, output, options.matte)
    if not files:
        raise InputError("no images or videos in the target folder", target)
    plan = swapper.plan(source, options)
    report = FolderReport()
    bar = None
    if progress:
        bar = tqdm(total=len(files), unit="file", desc=target.name, dynamic_ncols=True,
                   leave=False)
    try:
        for path in files:
            destination = mirrored_path(path, target, output, options.codec)
            # Each file's matte in the --matte folder as its output is in the output folder.
            matte = None if options.matte is None else \
                mirrored_matte(destination, output, options.matte, _is_video(path))
            if destination.exists() and not options.overwrite:
                report.skipped.append(destination)
            else:
                try:
                    if _is_video(path):
                        # --codec is for the video files; an animation keeps its own codec
                        own = container_kind(destination) in ("gif", "webp", "apng")
                        result = swapper.swap_video_file(
                            path, destination, plan,
                            options.replace(overwrite=True, matte=matte,
                                            codec="auto" if own else options.codec),
                            progress=False)
                    else:
                        result = swapper.swap_image_file(path, destination, plan,
                                                         options.replace(overwrite=True,
                                                                         matte=matte))
                    report.written.append(destination)
                    if not result.changed:
                        report.unchanged.append(destination)
                except FacedancerError as exc:
                    report.failed.append((path, str(exc)))
                    message = f"failed: {exc}"
                    (bar.write(message, file=sys.stderr) if bar is not None
                     else print(message, file=sys.stderr))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report


def mirrored_path(path: Path, target: Path, output: Path, codec: str = "auto") -> Path:
    """Where the output of ``path`` goes: same relative path; a suffix that cannot carry the
    provenance tag (``.bmp``) or be encoded (``.avi``, ``.wmv``...) becomes ``.png``/``.mp4``,
    and one whose container cannot hold ``--codec`` (ProRes in ``.mp4``) ``.mov`` (``.mkv``
    for FFV1)."""
    destination = output / path.relative_to(target)
    suffix = path.suffix.lower()
    if _is_video(path):
        if suffix not in VIDEO_OUTPUT_SUFFIXES:
            destination = destination.with_suffix(".mp4")
        family = CODEC_FAMILIES.get(codec)
        kind = container_kind(destination)
        if family is not None and kind not in family[1] and kind not in ("gif", "webp", "apng"):
            destination = destination.with_suffix(".mov" if "mov" in family[1] else ".mkv")
    elif suffix not in IMAGE_OUTPUT_SUFFIXES:
        destination = destination.with_suffix(".png")
    return destination


def _is_video(path: Path) -> bool:
    return is_video_path(path)
