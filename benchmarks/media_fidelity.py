"""What a swap keeps of its target's format: animation timing, transparency, codec, bit depth.

    python benchmarks/media_fidelity.py [--frames N] [--model DIR]

Builds targets from the shared clips and photos in a temporary folder (an animated WebP and
PNG with a one-second hold at the end, a cut-out portrait, a transparent sticker, a ProRes 4444
clip with alpha and timecode, a 10-bit FFV1 clip with a smooth 16-bit gradient, an HLG HEVC
Main 10 clip, a 16-bit PNG with a smooth gradient, JPEG photos, a black-and-white photo and
frames, a numbered image sequence),
swaps each with the shipped demo model (or ``--model``) as ``facedancer swap`` does, and
prints one table row per measure. Where the project wrote something else before (session
23), the setting that still writes it (``--codec h264``: 8-bit H.264; a JPEG output: no
alpha; ``write_image`` without ``like``: a JPEG at quality 95, 4:2:0) is measured beside the
default.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facedancer_torch.io.images import read_image
from facedancer_torch.io.provenance import read_provenance, verify_file
from facedancer_torch.io.video import VideoReader, VideoWriter, probe_video, read_frames
from facedancer_torch.io.video import to_8_bits
from facedancer_torch.swap.options import SwapOptions
from facedancer_torch.swap.pipeline import Swapper
from facedancer_torch.testing import shared_path

ROWS: list[tuple[str, str, str]] = []


def row(case: str, measure: str, value) -> None:
    ROWS.append((case, measure, str(value)))
    print(f"| {case:40s} | {measure:58s} | {value} |", flush=True)


def ellipse_alpha(height: int, width: int, blur: float = 4.0) -> np.ndarray:
    alpha = np.zeros((height, width), np.uint8)
    cv2.ellipse(alpha, (width // 2, int(height * 0.45)), (int(width * 0.33), int(height * 0.45)),
                0, 0, 360, 255, -1)
    return cv2.GaussianBlur(alpha, (0, 0), blur)


def shown_ms(path: Path) -> list[int]:
    with Image.open(path) as image:
        out = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            out.append(int(image.info.get("duration", 0)))
    return out


def animations(swapper, plan, frames, tmp: Path) -> None:
    pictures = [Image.fromarray(f) for f in frames]
    durations = [100] * (len(frames) - 1) + [1000]
    for suffix in (".webp", ".png"):
        target = tmp / f"anim{suffix}"
        pictures[0].save(target, save_all=True, append_images=pictures[1:], duration=durations,
                         loop=0)
        out = tmp / f"anim_out{suffix}"
        report = swapper.swap_path(target, out, plan, SwapOptions(), progress=False)
        case = f"animated {suffix[1:].upper()} ({len(frames)} frames)"
        row(case, "frames out / frames with a swapped face",
            f"{len(shown_ms(out))} / {report.frames_swapped}")
        row(case, "frame durations kept (last: 1000 ms)",
            f"{shown_ms(out) == durations} (last {shown_ms(out)[-1]} ms)")


def cut_out(swapper, plan, photos: Path, tmp: Path) -> None:
    rgb = read_image(photos / "fr_obama.jpg")
    alpha = ellipse_alpha(*rgb.shape[:2], blur=6)
    colour = rgb.copy()
    colour[alpha == 0] = (20, 200, 60)
    target = tmp / "cutout.png"
    Image.fromarray(np.dstack([colour, alpha]), "RGBA").save(target)
    for suffix in (".png", ".webp", ".jpg"):
        out = tmp / f"cutout_out{suffix}"
        swapper.swap_path(target, out, plan, SwapOptions(), progress=False)
        written = np.asarray(Image.open(out).convert("RGBA"))
        kept = "none (JPEG: composited onto black)" if suffix == ".jpg" else \
            f"max diff {np.abs(written[:, :, 3].astype(int) - alpha).max()}"
        mark = verify_file(out).watermark
        row(f"cut-out portrait -> {suffix[1:].upper()}", "alpha channel; watermark z",
            f"{kept}; z = {mark.z:.0f}")


def sticker(swapper, plan, frames, tmp: Path) -> None:
    alpha = ellipse_alpha(*frames[0].shape[:2], blur=3)
    pictures = [Image.fromarray(np.dstack([f, alpha]), "RGBA") for f in frames]
    target = tmp / "sticker.webp"
    pictures[0].save(target, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    for suffix in (".webp", ".gif", ".mp4"):
        out = tmp / f"sticker_out{suffix}"
        swapper.swap_path(target, out, plan, SwapOptions(preset="veryfast"), progress=False)
        if suffix == ".mp4":
            row("transparent sticker (WebP) -> MP4", "alpha", "none (composited onto black)")
            continue
        with Image.open(out) as image:
            image.seek(len(frames) // 2)
            written = np.asarray(image.convert("RGBA"))[:, :, 3]
        agree = float(np.mean((written > 127) == (alpha > 127))) * 100
        row(f"transparent sticker (WebP) -> {suffix[1:].upper()}",
            "alpha: max diff / pixels on the same side of half opacity",
            f"{np.abs(written.astype(int) - alpha).max()} / {agree:.2f} %")


def prores(swapper, plan, frames, tmp: Path) -> None:
    alpha = ellipse_alpha(*frames[0].shape[:2])
    target = tmp / "overlay.mov"
    with VideoWriter(target, 25, codec="prores_ks", profile="4444", alpha=True,
                     timecode="01:00:10:00") as writer:
        for frame in frames:
            writer.write(frame, alpha=alpha)
    for codec in ("auto", "h264"):
        out = tmp / f"overlay_{codec}.mov"
        swapper.swap_path(target, out, plan, SwapOptions(codec=codec, preset="veryfast"),
                          progress=False)
        info = probe_video(out)
        row(f"ProRes 4444 + alpha, --codec {codec}", "codec, profile, alpha, timecode, MB",
            f"{info.codec} {info.profile}, alpha {info.has_alpha}, {info.timecode}, "
            f"{out.stat().st_size / 1e6:.2f} (source {target.stat().st_size / 1e6:.2f})")


def ten_bit(swapper, plan, frames, tmp: Path) -> None:
    gradient = (np.linspace(20000, 24000, frames[0].shape[1])[None, :, None]
                * np.ones((40, 1, 3))).astype(np.uint16)
    target = tmp / "graded.mkv"
    with VideoWriter(target, 25, codec="ffv1", deep=True) as writer:
        for frame in frames:
            deep = frame.astype(np.uint16) * 257
            deep[:40] = gradient
            writer.write(to_8_bits(deep), deep=deep)
    source = next(iter(VideoReader(target, deep=True))).deep[:40]
    for codec, suffix in (("auto", ".mkv"), ("h264", ".mkv")):
        out = tmp / f"graded_{codec}{suffix}"
        swapper.swap_path(target, out, plan, SwapOptions(codec=codec, watermark=False,
                                                         preset="veryfast"), progress=False)
        first = next(iter(VideoReader(out, deep=True)))
        got = first.deep[:40] if first.deep is not None else first.rgb[:40].astype(int) * 257
        error = np.abs(got.astype(int) - source) / 64
        row(f"10-bit FFV1 gradient, --codec {codec}",
            "untouched gradient: levels (source's) / max error (10-bit codes)",
            f"{len(np.unique(got[:, :, 1]))} ({len(np.unique(source[:, :, 1]))}) / "
            f"{error.max():.1f}")


def hlg(swapper, plan, frames, tmp: Path) -> None:
    from facedancer_torch.io.probe import ColourTags

    target = tmp / "hlg.mp4"  # HEVC Main 10, BT.2020 with HLG: what a phone records as HDR
    with VideoWriter(target, 25, codec="libx265", crf=4, colour=ColourTags(9, 18, 9, 1),
                     deep=True) as writer:
        for rgb in frames:
            writer.write(rgb, deep=rgb.astype(np.uint16) * 257)
    source = [f.deep for f in VideoReader(target, deep=True)]
    for codec in ("auto", "h264"):
        out = tmp / f"hlg_{codec}.mp4"
        swapper.swap_path(target, out, plan, SwapOptions(codec=codec, watermark=False, crf=4,
                                                         preset="veryfast"), progress=False)
        info = probe_video(out)
        errors = []
        for before, after in zip(source, VideoReader(out, deep=True)):
            got = after.deep if after.deep is not None else after.rgb.astype(int) * 257
            errors.append(np.abs(got[:80, :80].astype(int) - before[:80, :80]).mean() / 64)
        row(f"HLG HEVC Main 10, --codec {codec}",
            "codec, pixels; background mean error (10-bit codes)",
            f"{info.codec} {info.pix_fmt}; {np.mean(errors):.2f}")


def sixteen_bit(swapper, plan, photos: Path, tmp: Path) -> None:
    from facedancer_torch.io.fidelity import read_image_deep

    photo = read_image(photos / "fr_obama.jpg")
    deep = photo.astype(np.uint16) * 257
    deep[:60] = (np.linspace(20000, 24000, photo.shape[1])[None, :, None]
                 * np.ones((60, 1, 3))).astype(np.uint16)
    target = tmp / "sixteen.png"
    cv2.imwrite(str(target), deep[:, :, ::-1])
    for suffix in (".png", ".tif", ".jpg"):
        out = tmp / f"sixteen_out{suffix}"
        swapper.swap_path(target, out, plan, SwapOptions(watermark=False), progress=False)
        got = read_image_deep(out)
        got = got[:60] if got is not None else read_image(out)[:60].astype(int) * 257
        error = np.abs(got.astype(int) - deep[:60]).max() / 256
        row(f"16-bit PNG gradient -> {suffix[1:].upper()}",
            "untouched gradient: levels (source's) / max error (8-bit levels)",
            f"{len(np.unique(got[:, :, 1]))} ({len(np.unique(deep[:60, :, 1]))}) / {error:.2f}")


def jpeg(swapper, plan, photos: Path, tmp: Path) -> None:
    from facedancer_torch.io.images import write_image

    options = SwapOptions(watermark=False)
    for name in ("df_img1.jpg", "fr_obama.jpg", "df_img14.jpg"):
        target = photos / name
        original = read_image(target)
        detail = swapper.swap_image_detailed(original, plan, options)
        untouched = np.all(detail.image == original, axis=2)  # pixels the swap left alone
        out = tmp / f"kept_{name}"
        swapper.swap_path(target, out, plan, options, progress=False)
        fixed = tmp / f"fixed_{name}"
        write_image(fixed, detail.image)  # what every JPEG output was: quality 95, 4:2:0
        cells = []
        for path in (out, fixed):
            moved = np.abs(read_image(path).astype(int) - original)[untouched]
            cells.append(f"{moved.mean():.3f}, {(moved.max(axis=1) > 4).mean() * 100:.2f} %, "
                         f"{path.stat().st_size / target.stat().st_size:.2f}x")
        row(f"JPEG {name} -> JPEG: own tables / fixed q95",
            "untouched pixels: mean change, > 4 levels; size", " / ".join(cells))


def black_and_white(swapper, plan, photos: Path, frames, tmp: Path) -> None:
    """A black-and-white photo (a one-channel JPEG) and black-and-white frames: the largest
    difference between channels of the swapped picture, the JPEG output's mode; with the rule
    switched off (swap/monochrome.py's tolerance below zero) beside it."""
    from facedancer_torch.swap import monochrome

    grey = cv2.cvtColor(read_image(photos / "df_img1.jpg"), cv2.COLOR_RGB2GRAY)
    photo = tmp / "bw.jpg"
    Image.fromarray(grey).save(photo, quality=90)
    picture = read_image(photo)
    bw_frames = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[:, :, None], 3, 2)
                 for f in frames]
    options = SwapOptions(watermark=False)
    cells: dict[str, list[str]] = {"photo": [], "frames": []}
    saved = monochrome.MONOCHROME_TOLERANCE
    try:
        for tolerance in (saved, -1):
            monochrome.MONOCHROME_TOLERANCE = tolerance
            swapped = swapper.swap_image(picture, plan, options).astype(int)
            out = tmp / f"bw_{tolerance}.jpg"
            swapper.swap_path(photo, out, plan, SwapOptions(), progress=False)
            with Image.open(out) as image:
                mode = image.mode
            cells["photo"].append(f"{int(np.abs(swapped - swapped[:, :, :1]).max())}, {mode}")
            spread = [np.abs(s - s[:, :, :1]).max() for s in
                      (swapper.swap_image(f, plan, options).astype(int) for f in bw_frames)]
            cells["frames"].append(str(int(max(spread))))
    finally:
        monochrome.MONOCHROME_TOLERANCE = saved
    row("black-and-white JPEG -> JPEG: default / off", "largest channel difference; output mode",
        " / ".join(cells["photo"]))
    row("black-and-white frames: default / off", "largest channel difference",
        " / ".join(cells["frames"]))


def sequence(swapper, plan, frames, tmp: Path) -> None:
    plate = tmp / "plate"
    plate.mkdir()
    for number, frame in enumerate(frames, start=101):
        Image.fromarray(frame).save(plate / f"shot_{number:04d}.png")
    out = tmp / "out" / "shot_%04d.png"
    report = swapper.swap_path(plate / "shot_%04d.png", out, plan, SwapOptions(fps=24),
                               progress=False)
    written = sorted((tmp / "out").iterdir())
    labelled = sum(read_provenance(p) is not None for p in written)
    row("image sequence shot_%04d.png", "frames written (numbers) / labelled / swapped",
        f"{len(written)} ({written[0].name}..{written[-1].name}) / {labelled} / "
        f"{report.frames_swapped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12, help="frames of each clip")
    parser.add_argument("--model", default=None, help="generator (default: the demo model)")
    args = parser.parse_args()
    videos, photos = shared_path("data", "videos"), shared_path("data", "photos")
    if videos is None or photos is None:
        raise SystemExit("../shared/data is absent")
    swapper = Swapper(args.model)
    plan = swapper.plan(photos / "fr_obama.jpg")
    frames = [cv2.resize(f.rgb, (320, 320), interpolation=cv2.INTER_AREA)
              for f in read_frames(videos / "talking_a.mp4", max_frames=args.frames)]
    print(f"| {'target':40s} | {'measure':58s} | value |")
    print(f"|{'-' * 42}|{'-' * 60}|-------|")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        animations(swapper, plan, frames, tmp)
        cut_out(swapper, plan, photos, tmp)
        sticker(swapper, plan, frames, tmp)
        prores(swapper, plan, frames, tmp)
        ten_bit(swapper, plan, frames, tmp)
        hlg(swapper, plan, frames, tmp)
        sixteen_bit(swapper, plan, photos, tmp)
        jpeg(swapper, plan, photos, tmp)
        black_and_white(swapper, plan, photos, frames, tmp)
        sequence(swapper, plan, frames, tmp)


if __name__ == "__main__":
    main()
