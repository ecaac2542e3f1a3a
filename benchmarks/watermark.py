"""Visibility and robustness of the invisible watermark, scheme 1 (fixed step) vs 2 (masked).

    python benchmarks/watermark.py [--frames 16] [--figure DIR]

On the shared photos and the first frames of the shared clips (../shared/data, via
facedancer_torch.testing), for each scheme of io/watermark.py:

- visibility: mean / max |change| in grey levels over the whole image and in *dark flat*
  8x8 blocks of the original (mean luma < 60, luma standard deviation < 4), in *bright flat*
  ones (mean luma > 120) of the clips' first frames, PSNR;
- robustness: z and bit errors after JPEG q75 and q50 (photos) and after one H.264 crf 23
  preset medium re-encode of FRAMES frames (io/video.py), pooled over 16 of them as
  `facedancer verify` does, plus how many single frames are found;
- false positives: the largest |z| of both decoders on the unmarked photos (also after JPEG
  q75) and on the unmarked re-encoded clips, and whether anything was found.

``--figure DIR`` writes, for the dark suit of talking_a's first frame, the difference
(amplified x16 around grey) and the marked crop (contrast stretched x4, zoomed x4) of both
schemes side by side.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np

from facedancer_torch.io import watermark as wm
from facedancer_torch.io.images import read_image
from facedancer_torch.io.provenance import VERIFY_FRAMES
from facedancer_torch.io.video import VideoWriter, read_frames
from facedancer_torch.testing import shared_path

PHOTOS = ("df_img1.jpg", "df_img12.jpg", "df_img22.jpg", "df_img44.jpg", "df_couple.jpg",
          "fnp_multiface.jpg", "fr_obama-240p.jpg", "fr_two_people.jpg", "gfp_00.jpg",
          "if_t1.jpg", "fr_lin-manuel-miranda.png", "df_selfie-many-people.jpg")
VIDEOS = ("talking_a.mp4", "talking_b.mp4", "talking_c.mp4", "talking_1face_512.mp4",
          "crowd_720p.mp4")
DARK_LUMA, BRIGHT_LUMA, FLAT_STD = 60.0, 120.0, 4.0
SUIT = (slice(520, 680), slice(40, 280))  # talking_a, first frame: the dark suit


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def dark_flat_mask(rgb: np.ndarray, bright: bool = False) -> np.ndarray:
    """Pixel mask (H, W) of the whole 8x8 blocks whose luma is flat and dark (``bright``:
    mean luma above BRIGHT_LUMA)."""
    rows, cols = rgb.shape[0] // 8, rgb.shape[1] // 8
    y = rgb[:rows * 8, :cols * 8].astype(np.float64) @ [0.299, 0.587, 0.114]
    blocks = y.reshape(rows, 8, cols, 8)
    mean = blocks.mean(axis=(1, 3))
    keep = ((mean > BRIGHT_LUMA) if bright else (mean < DARK_LUMA)) & \
        (blocks.std(axis=(1, 3)) < FLAT_STD)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[:rows * 8, :cols * 8] = np.repeat(np.repeat(keep, 8, 0), 8, 1)
    return mask


def change_stats(original: np.ndarray, marked: np.ndarray) -> dict:
    diff = np.abs(marked.astype(np.int16) - original).max(axis=2)  # same change in R, G, B
    dark = dark_flat_mask(original)
    return {"mean": diff.mean(), "max": diff.max(), "psnr": wm.psnr(original, marked),
            "dark_mean": diff[dark].mean() if dark.any() else np.nan,
            "dark_max": diff[dark].max() if dark.any() else 0, "dark_share": dark.mean(),
            **{f"bright_{k}": v for k, v in _masked(diff, dark_flat_mask(original, True)).items()}}


def _masked(diff: np.ndarray, mask: np.ndarray) -> dict:
    return {"mean": diff[mask].mean() if mask.any() else np.nan,
            "max": diff[mask].max() if mask.any() else 0, "share": mask.mean()}


def clip_frames(name: str, frames: int) -> list[np.ndarray]:
    return [f.rgb for f in read_frames(shared_path("data", "videos", name), max_frames=frames)]


def reencode(frames: list[np.ndarray], tmp: Path, crf: int = 23) -> list[np.ndarray]:
    path = tmp / "clip.mp4"
    with VideoWriter(path, 25, crf=crf, preset="medium") as writer:  # x264 defaults at 23
        for f in frames:
            writer.write(f)
    return [f.rgb for f in read_frames(path)]


def both_z(images) -> float:
    """Largest |z| of the two decoders (false-positive check)."""
    frames = [images] if isinstance(images, np.ndarray) else list(images)
    out = 0.0
    for scheme, sums in wm._pooled_votes(frames).items():
        r = wm._decide(sums, wm._default_payload(scheme), scheme)
        assert not r.found, r
        out = max(out, abs(r.z))
    return out


def fmt(values, digits=1) -> str:
    values = [v for v in values if not np.isnan(v)]
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else \
        f"{lo:.{digits}f}-{hi:.{digits}f}"


def figure(out: Path) -> None:
    from PIL import Image

    frame = clip_frames("talking_a.mp4", 1)[0]
    crop = frame[SUIT].astype(np.int16)
    tiles = []
    for scheme in (1, 2):
        marked = wm.embed_watermark(frame, scheme=scheme)[SUIT].astype(np.int16)
        amplified = np.clip(128 + 16 * (marked - crop), 0, 255).astype(np.uint8)
        stretched = np.clip(4 * marked, 0, 255).astype(np.uint8)  # dark suit made visible
        tiles.append(np.concatenate([amplified, stretched], axis=0))
    gap = np.full((tiles[0].shape[0], 8, 3), 255, np.uint8)
    grid = np.concatenate([tiles[0], gap, tiles[1]], axis=1)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(
        out / "suit_old_vs_new.png")
    zoom = np.concatenate([np.clip(4 * crop[:64, 120:184], 0, 255).astype(np.uint8)] + [
        np.clip(4 * wm.embed_watermark(frame, scheme=s)[SUIT][:64, 120:184].astype(int), 0,
                255).astype(np.uint8) for s in (1, 2)], axis=1)
    Image.fromarray(zoom).resize((zoom.shape[1] * 6, zoom.shape[0] * 6), Image.NEAREST).save(
        out / "suit_zoom_orig_old_new.png")
    print(f"figures in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    if args.figure:
        figure(args.figure)
    photos = {n: read_image(shared_path("data", "photos", n)) for n in PHOTOS}
    clips = {n: clip_frames(n, args.frames) for n in VIDEOS}
    rows = []
    for scheme in (1, 2):
        vis_p = [change_stats(rgb, wm.embed_watermark(rgb, scheme=scheme))
                 for rgb in photos.values()]
        vis_v = [change_stats(c[0], wm.embed_watermark(c[0], scheme=scheme))
                 for c in clips.values()]
        rob = {}
        for q in (75, 50):
            res = [wm.detect_watermark(jpeg(wm.embed_watermark(rgb, scheme=scheme), q))
                   for rgb in photos.values()]
            rob[q] = res
        video = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, frames in clips.items():
                decoded = reencode([wm.embed_watermark(f, scheme=scheme) for f in frames],
                                   Path(tmp))
                step = max(1, len(decoded) // VERIFY_FRAMES)
                video[name] = (wm.detect_watermark(decoded[::step][:VERIFY_FRAMES]),
                               sum(wm.detect_watermark(f).found for f in decoded), len(decoded))
            # a harder re-encode (web uploads): crf 28, the talking clip with the most flat area
            decoded = reencode([wm.embed_watermark(f, scheme=scheme)
                                for f in clips["talking_1face_512.mp4"]], Path(tmp), crf=28)
            video["crf28"] = (wm.detect_watermark(decoded[:VERIFY_FRAMES]),
                              wm.detect_watermark(decoded[:8]),
                              sum(wm.detect_watermark(f).found for f in decoded), len(decoded))
        rows.append((scheme, vis_p, vis_v, rob, video))

    print("\n| measure | scheme 1 (fixed step) | scheme 2 (masked step) |\n|---|---|---|")

    def line(label, f):
        print(f"| {label} | " + " | ".join(f(r) for r in rows) + " |")

    for kind, idx, count in (("photos", 1, len(PHOTOS)), ("first frames", 2, len(VIDEOS))):
        line(f"{kind} ({count}): mean / max \\|change\\| (grey levels)",
             lambda r: f"{fmt([s['mean'] for s in r[idx]], 2)} / "
                       f"{max(s['max'] for s in r[idx])}")
        line(f"{kind}: dark flat blocks, mean / max \\|change\\|",
             lambda r: f"{fmt([s['dark_mean'] for s in r[idx]], 2)} / "
                       f"{max(s['dark_max'] for s in r[idx])}")
        line(f"{kind}: PSNR (dB)", lambda r: fmt([s["psnr"] for s in r[idx]]))
    for name in VIDEOS:
        line(f"{name} frame 0: dark flat mean / max (share of blocks)",
             lambda r: (lambda s: f"{s['dark_mean']:.2f} / {s['dark_max']} "
                                  f"({100 * s['dark_share']:.0f} %)")(r[2][VIDEOS.index(name)]))
        line(f"{name} frame 0: bright flat (luma > {BRIGHT_LUMA:.0f}) mean / max (share)",
             lambda r: (lambda s: f"{s['bright_mean']:.2f} / {s['bright_max']} "
                                  f"({100 * s['bright_share']:.0f} %)")(r[2][VIDEOS.index(name)]))
    for q in (75, 50):
        line(f"photos after JPEG q{q}: found, z, max bit errors",
             lambda r: f"{sum(x.found for x in r[3][q])}/{len(PHOTOS)}, "
                       f"z {fmt([x.z for x in r[3][q]], 0)}, "
                       f"{max(x.bit_errors for x in r[3][q])}")
    for name in VIDEOS:
        line(f"{name}, H.264 crf 23: pooled z (bit errors), single frames found",
             lambda r: (lambda p, n, t: f"{p.z:.0f} ({p.bit_errors}), {n}/{t}")(
                 *r[4][name]))
    line(f"talking_1face_512.mp4, H.264 crf 28: z pooled over {VERIFY_FRAMES} / 8 frames "
         "(found), single frames found",
         lambda r: (lambda p, p8, n, t: f"{p.z:.0f} ({'found' if p.found else 'lost'}) / "
                    f"{p8.z:.0f} ({'found' if p8.found else 'lost'}), {n}/{t}")(
                        *r[4]["crf28"]))
    with tempfile.TemporaryDirectory() as tmp:
        fp_photos = max(max(both_z(rgb), both_z(jpeg(rgb, 75))) for rgb in photos.values())
        fp_clips = max(both_z(reencode(f, Path(tmp))[:VERIFY_FRAMES]) for f in clips.values())
    print(f"| unmarked: largest \\|z\\| of both decoders, photos (and q75) / re-encoded clips "
          f"| {fp_photos:.1f} / {fp_clips:.1f}, none found | |")


if __name__ == "__main__":
    main()
